// Command cdaemon is the benchmarked body daemonized by cdaemon: the
// constructor has already forked twice when main starts. With
// CDAEMON_WAIT=ready the launcher returns when Ready is called, right
// after the time is read.
package main

import (
	"os"

	"github.com/cdaemon/cdaemon"
	_ "github.com/cdaemon/cdaemon/bench/internal/heavy"
	"github.com/cdaemon/cdaemon/bench/internal/report"
	_ "github.com/cdaemon/cdaemon/bench/internal/weight"
)

func main() {
	t := report.Now()
	if cdaemon.Daemonized() == (os.Getenv("CDAEMON") == "off") {
		os.Stderr.WriteString("bench program: cdaemon: unexpected state: " + cdaemon.Info().Reason + "\n")
		os.Exit(3)
	}
	if err := cdaemon.Ready(); err != nil {
		cdaemon.Fail(err)
	}
	report.Send(t, int64(cdaemon.Info().Entry))
}
