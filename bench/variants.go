package main

import (
	"fmt"
	"time"
)

// A program is one binary the harness builds.
type program struct {
	key     string   // binary name; "-big" is appended for the big size
	pkg     string   // package to build, relative to the bench module
	cgo     bool     // CGO_ENABLED=1
	tags    []string // build tags
	ldflags string
	c       string // a C program: the source under csrc/, built with gcc
	exp     bool   // built with the -exp cdaemon.c
}

const staticLD = "-linkmode external -extldflags -static"

var programs = []program{
	{key: "floor-go", pkg: "./progs/floor"},
	{key: "floor-cgo", pkg: "./progs/floor", cgo: true, tags: []string{"benchcgo"}, ldflags: "-linkmode external"},
	{key: "floor-cgo-static", pkg: "./progs/floor", cgo: true, tags: []string{"benchcgo"}, ldflags: staticLD},
	{key: "cdaemon", pkg: "./progs/cdaemon", cgo: true, tags: []string{"benchcdaemon"}},
	{key: "cdaemon-static", pkg: "./progs/cdaemon", cgo: true, tags: []string{"benchcdaemon"}, ldflags: staticLD},
	// The re-exec daemonizers are pure Go (no cgo runtime, static binaries):
	// their fastest build, the one their users get with CGO_ENABLED=0.
	{key: "go-daemon", pkg: "./progs/godaemon"},
	{key: "godaemon", pkg: "./progs/vividcortex"},
	{key: "cfork", c: "cfork.c"},
}

// expPrograms and expVariants are added with -exp FILE: cdaemon built with
// FILE in place of the library's cdaemon.c, to measure a change in the
// same rounds as the current code (paired).
var expPrograms = []program{
	{key: "exp", pkg: "./progs/cdaemon", cgo: true, tags: []string{"benchcdaemon"}, exp: true},
	{key: "exp-static", pkg: "./progs/cdaemon", cgo: true, tags: []string{"benchcdaemon"}, ldflags: staticLD, exp: true},
}

var expVariants = []variant{
	{name: "exp", prog: "exp", env: []string{"CDAEMON=on", "CDAEMON_WAIT=start"}, daemon: true, sweep: true, note: "cdaemon dynamic with the -exp cdaemon.c, CDAEMON_WAIT=start"},
	{name: "exp-none", prog: "exp", env: []string{"CDAEMON=on", "CDAEMON_WAIT=none"}, daemon: true, sweep: true, note: "cdaemon dynamic with the -exp cdaemon.c, CDAEMON_WAIT=none"},
	{name: "exp-static", prog: "exp-static", env: []string{"CDAEMON=on", "CDAEMON_WAIT=start"}, daemon: true, sweep: true, note: "cdaemon static with the -exp cdaemon.c, CDAEMON_WAIT=start"},
}

// A variant is one way of running a program; each is measured at every
// init weight and size it takes part in.
type variant struct {
	name   string
	prog   string
	args   []string
	env    []string
	daemon bool // the report comes from a daemon, not the launcher
	sweep  bool // swept over init weights and sizes (the C programs are not)
	setsid bool // the spawner starts it in a new session
	note   string
}

var variants = []variant{
	{name: "go", prog: "floor-go", note: "undaemonized, pure Go (floor)"},
	{name: "cgo", prog: "floor-cgo", note: "undaemonized, cgo runtime, dynamic (floor)"},
	{name: "cgo-static", prog: "floor-cgo-static", note: "undaemonized, cgo runtime, static (floor)"},
	{name: "cgo-setsid", prog: "floor-cgo", setsid: true, note: "undaemonized cgo floor started in a new session (a scheduling autogroup of its own, as a daemon after setsid)"},
	{name: "cdaemon-off", prog: "cdaemon", env: []string{"CDAEMON=off"}, note: "cdaemon binary, CDAEMON=off"},
	{name: "cdaemon", prog: "cdaemon", env: []string{"CDAEMON=on", "CDAEMON_WAIT=start"}, daemon: true, note: "cdaemon dynamic, CDAEMON_WAIT=start (default)"},
	{name: "cdaemon-none", prog: "cdaemon", env: []string{"CDAEMON=on", "CDAEMON_WAIT=none"}, daemon: true, note: "cdaemon dynamic, CDAEMON_WAIT=none"},
	{name: "cdaemon-ready", prog: "cdaemon", env: []string{"CDAEMON=on", "CDAEMON_WAIT=ready"}, daemon: true, note: "cdaemon dynamic, CDAEMON_WAIT=ready"},
	{name: "cdaemon-static", prog: "cdaemon-static", env: []string{"CDAEMON=on", "CDAEMON_WAIT=start"}, daemon: true, note: "cdaemon static, CDAEMON_WAIT=start"},
	{name: "cdaemon-static-none", prog: "cdaemon-static", env: []string{"CDAEMON=on", "CDAEMON_WAIT=none"}, daemon: true, note: "cdaemon static, CDAEMON_WAIT=none"},
	{name: "cdaemon-static-ready", prog: "cdaemon-static", env: []string{"CDAEMON=on", "CDAEMON_WAIT=ready"}, daemon: true, note: "cdaemon static, CDAEMON_WAIT=ready"},
	{name: "go-daemon", prog: "go-daemon", daemon: true, note: "sevlyar/go-daemon v0.1.6: re-exec once"},
	{name: "godaemon", prog: "godaemon", daemon: true, note: "VividCortex/godaemon v1.0.0: re-exec twice"},
	{name: "c-nofork", prog: "cfork", args: []string{"nofork"}, note: "C, no fork (fork floor)"},
	{name: "c-fork", prog: "cfork", args: []string{"fork"}, daemon: true, note: "C, the same double fork"},
}

func init() {
	for i := range variants {
		variants[i].sweep = variants[i].prog != "cfork"
	}
}

// A bench case is a variant at one init weight and size: one measurement
// per round.
type benchCase struct {
	v    *variant
	init time.Duration
	big  bool
}

func (c benchCase) size() string {
	if c.big {
		return "big"
	}
	return "small"
}

func (c benchCase) String() string {
	return fmt.Sprintf("variant=%s/init=%s/size=%s", c.v.name, fmtDur(c.init), c.size())
}

func (c benchCase) binary() string {
	if c.big {
		return c.v.prog + "-big"
	}
	return c.v.prog
}

// cases lists every case: every swept variant at every init weight (small
// size) and at no init in the big size; the C programs once.
func cases(inits []time.Duration, sizes bool) []benchCase {
	var cs []benchCase
	for i := range variants {
		v := &variants[i]
		if !v.sweep {
			cs = append(cs, benchCase{v: v})
			continue
		}
		for _, w := range inits {
			cs = append(cs, benchCase{v: v, init: w})
		}
		if sizes {
			cs = append(cs, benchCase{v: v, big: true})
		}
	}
	return cs
}

func fmtDur(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	return d.String()
}

func findVariant(name string) *variant {
	for i := range variants {
		if variants[i].name == name {
			return &variants[i]
		}
	}
	return nil
}
