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
	ctx := &daemon.Context{WorkDir: "/"}
	child, err := ctx.Reborn()
	if err != nil {
		os.Stderr.WriteString("bench program: go-daemon: " + err.Error() + "\n")
		os.Exit(1)
	}
	if child != nil {
		return // the launcher
	}
	t := report.Now()
	report.Send(t)
	ctx.Release()
}
