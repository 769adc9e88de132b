// Package rc is gotools' service manager engine (spec/rc.md): it reads
// s6-rc source directories and validates them as s6-rc-compile would
// ([Reader]), keeps a live directory over a supervision tree (Live), and
// brings sets of services up and down in dependency order with as much
// parallelism as the graph allows (Change). The rc applet is a thin
// command line around it; init runs the same engine in its own process.
//
// It deliberately has no compiled database: sources are read at init and
// update, and a resolved text snapshot (db) is kept in the live directory.
package rc
