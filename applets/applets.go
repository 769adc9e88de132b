// Package applets is the one table of gotools' applets and their s6
// aliases: main.go dispatches through it, "gotools --list" prints it, and
// install.sh makes its symlinks from that output.
package applets

import (
	"github.com/gotools-dev/gotools/applets/backgroundwatch"
	"github.com/gotools-dev/gotools/applets/containerinit"
	"github.com/gotools-dev/gotools/applets/envdir"
	"github.com/gotools-dev/gotools/applets/fdholder"
	"github.com/gotools-dev/gotools/applets/fdrestore"
	"github.com/gotools-dev/gotools/applets/lockd"
	"github.com/gotools-dev/gotools/applets/lockdhelper"
	logapplet "github.com/gotools-dev/gotools/applets/log"
	"github.com/gotools-dev/gotools/applets/rc"
	"github.com/gotools-dev/gotools/applets/setlock"
	"github.com/gotools-dev/gotools/applets/shmlock"
	"github.com/gotools-dev/gotools/applets/supervise"
	"github.com/gotools-dev/gotools/applets/svc"
	"github.com/gotools-dev/gotools/applets/svok"
	"github.com/gotools-dev/gotools/applets/svscan"
	"github.com/gotools-dev/gotools/applets/svscanctl"
	"github.com/gotools-dev/gotools/applets/svstat"
	"github.com/gotools-dev/gotools/applets/svwait"
	"github.com/gotools-dev/gotools/applets/tai64n"
	"github.com/gotools-dev/gotools/applets/tai64nlocal"
	"github.com/gotools-dev/gotools/applets/withcontenv"
	"github.com/gotools-dev/gotools/lib/cli"
)

// All lists every applet, in the order "gotools --list" prints them.
var All = []cli.Applet{
	backgroundwatch.Applet,
	supervise.Applet,
	svstat.Applet,
	svok.Applet,
	svc.Applet,
	svwait.Applet,
	svscan.Applet,
	svscanctl.Applet,
	setlock.Applet,
	lockd.Applet,
	lockdhelper.Applet,
	shmlock.Applet,
	fdrestore.Applet,
	fdholder.StoreApplet,
	fdholder.RetrieveApplet,
	fdholder.DeleteApplet,
	fdholder.ListApplet,
	fdholder.GetdumpApplet,
	fdholder.SetdumpApplet,
	fdholder.TransferdumpApplet,
	fdholder.DaemonApplet,
	fdholder.FullDaemonApplet,
	logapplet.Applet,
	tai64n.Applet,
	tai64nlocal.Applet,
	rc.Applet,
	containerinit.Applet,
	envdir.Applet,
	withcontenv.Applet,
	withcontenv.PrintApplet,
}
