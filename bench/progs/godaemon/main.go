// Command godaemon is the benchmarked body daemonized by
// github.com/sevlyar/go-daemon: the program runs once as the launcher,
// which re-executes itself; the child runs main again, and Reborn returns
// in it after reading the context from the launcher. The time is read
// there, where the daemon's own code starts.
package main

import (
	"os"

	"github.com/cdaemon/cdaemon/bench/internal/report"
	daemon "github.com/sevlyar/go-daemon"

	_ "github.com/cdaemon/cdaemon/bench/internal/heavy"
	_ "github.com/cdaemon/cdaemon/bench/internal/weight"
)

func main() {
	// The restart cases give a pidfile, as an operator would.
	ctx := &daemon.Context{WorkDir: "/", PidFileName: os.Getenv("BENCH_PIDFILE"), PidFilePerm: 0o644}
	child, err := ctx.Reborn()
	if child != nil {
		// The launcher. Reborn can return an error here although the
		// daemon started: it writes the context and then "\n\n" to the
		// child's stdin, and a child that has already decoded the context
		// and put /dev/null on fd 0 makes the second write fail with
		// EPIPE. The daemon runs and reports all the same.
		return
	}
	if err != nil {
		os.Stderr.WriteString("bench program: go-daemon: " + err.Error() + "\n")
		os.Exit(1)
	}
	t := report.Now()
	report.Start(t, nil)
	ctx.Release()
}
