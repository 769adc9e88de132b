// Package rc is gotools' service manager engine (spec/rc.md): it reads
// s6-rc source directories and validates them as s6-rc-compile would
// ([Reader], [Check]), keeps a live directory over a supervision tree
// ([Init], [Open], [Live]), brings sets of services up and down in
// dependency order with as much parallelism as the graph allows
// ([Live.Change]), and switches a live set to new sources ([Update]).
// The rc applet is a thin command line around it; init runs the same
// engine in its own process.
//
// It deliberately has no compiled database: sources are read at init and
// update, and a resolved text snapshot (db) is kept in the live directory.
//
// # Use from a host process (init, PID 1)
//
//	o := rc.Options{Live: "/run/s6-rc", Verbose: 1, Warn: warn, Info: info,
//		Environ: treeEnv, HostSignals: true, Spawn: spawnAndRegister}
//	err := rc.Init("/run/service", sources, o)    // exit codes as rc init
//	l, err := rc.Open(o.Live, true, false)        // takes the live lock
//	defer l.Close()
//	err = l.Record(true, "fix-attrs", "legacy-cont-init")
//	o.Up = true
//	err = l.Change(ctx, []string{"top"}, o)        // ctx: deadline, cancel on SIGTERM
//	o.Up, o.All = false, true
//	err = l.Change(ctx, nil, o)                    // rc -da change
//
// Errors carry rc's exit codes ([exitcode.Of]): 1 some transitions failed,
// 2 timed out (ctx's deadline or Options.Timeout), 3 unknown name, 4 bad
// live directory, 111 system error. With HostSignals the engine installs
// no signal handler; the host cancels ctx on its first SIGTERM (no new
// transition starts, longruns going up are put down, running scripts are
// waited for). Options.Spawn lets a host that reaps every child with
// wait4(-1) start the oneshot scripts itself (it may also give them stdin
// /dev/null through proc.Attr.Files) and hand back their wait status.
// Change sets the process umask to the one recorded by Init.
package rc
