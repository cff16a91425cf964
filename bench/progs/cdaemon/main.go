// Command cdaemon is the benchmarked body daemonized in a C constructor,
// built two ways from one main package:
//
//   - with cdaemon (tag benchcdaemon, lib.go): the constructor has already
//     forked twice when main starts; with CDAEMON_WAIT=ready the launcher
//     returns when Ready is called, right after the time is read.
//   - with the naive recipe (tag benchnaive, naive.c): the reference text's
//     steps in a constructor of this same binary, without cdaemon, without
//     checks and without waiting. It is the floor for forking this binary.
package main

import (
	"os"

	_ "github.com/cdaemon/cdaemon/bench/internal/heavy"
	"github.com/cdaemon/cdaemon/bench/internal/report"
	_ "github.com/cdaemon/cdaemon/bench/internal/weight"
)

func main() {
	t := report.Now()
	if why := checkDaemonized(); why != "" {
		os.Stderr.WriteString("bench program: " + why + "\n")
		os.Exit(3)
	}
	report.Start(t, ready, entry())
}
