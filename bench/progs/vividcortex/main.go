// Command vividcortex is the benchmarked body daemonized by
// github.com/VividCortex/godaemon: MakeDaemon re-executes the program
// twice (a session leader, then the daemon) and returns only in the
// daemon, where the time is read.
package main

import (
	"os"

	"github.com/VividCortex/godaemon"
	"github.com/cdaemon/cdaemon/bench/internal/report"

	_ "github.com/cdaemon/cdaemon/bench/internal/heavy"
	_ "github.com/cdaemon/cdaemon/bench/internal/weight"
)

func main() {
	if _, _, err := godaemon.MakeDaemon(&godaemon.DaemonAttr{}); err != nil {
		os.Stderr.WriteString("bench program: godaemon: " + err.Error() + "\n")
		os.Exit(1)
	}
	t := report.Now()
	report.Start(t, nil)
}
