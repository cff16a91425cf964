// Command floor is the benchmarked body without daemonizing: the floor
// that every daemonizer's time is compared with. Built three ways: pure Go
// (CGO_ENABLED=0), and with the cgo runtime (tag benchcgo, external link),
// dynamic and static, like the cdaemon builds.
package main

import (
	_ "github.com/cdaemon/cdaemon/bench/internal/heavy"
	"github.com/cdaemon/cdaemon/bench/internal/report"
	_ "github.com/cdaemon/cdaemon/bench/internal/weight"
)

func main() {
	t := report.Now()
	report.Start(t, nil)
}
