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
	lib     string // "base" or "exp": built against that library source
}

const staticLD = "-linkmode external -extldflags -static"

var programs = []program{
	{key: "floor-go", pkg: "./progs/floor"},
	{key: "floor-cgo", pkg: "./progs/floor", cgo: true, tags: []string{"benchcgo"}, ldflags: "-linkmode external"},
	{key: "floor-cgo-static", pkg: "./progs/floor", cgo: true, tags: []string{"benchcgo"}, ldflags: staticLD},
	{key: "cdaemon", pkg: "./progs/cdaemon", cgo: true, tags: []string{"benchcdaemon"}, lib: "base"},
	{key: "cdaemon-static", pkg: "./progs/cdaemon", cgo: true, tags: []string{"benchcdaemon"}, ldflags: staticLD, lib: "base"},
	// The same main package with the naive recipe in its constructor.
	{key: "naive", pkg: "./progs/cdaemon", cgo: true, tags: []string{"benchnaive"}},
	{key: "naive-static", pkg: "./progs/cdaemon", cgo: true, tags: []string{"benchnaive"}, ldflags: staticLD},
	// The re-exec daemonizers are pure Go (no cgo runtime, static binaries):
	// their fastest build, the one their users get with CGO_ENABLED=0.
	{key: "go-daemon", pkg: "./progs/godaemon"},
	{key: "godaemon", pkg: "./progs/vividcortex"},
	{key: "cfork", c: "cfork.c"},
}

// expPrograms are built with -exp: cdaemon from another library tree or
// with changed files, measured in the same rounds as the -base build.
var expPrograms = []program{
	{key: "exp", pkg: "./progs/cdaemon", cgo: true, tags: []string{"benchcdaemon"}, lib: "exp"},
	{key: "exp-static", pkg: "./progs/cdaemon", cgo: true, tags: []string{"benchcdaemon"}, ldflags: staticLD, lib: "exp"},
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
	{name: "go", prog: "floor-go", sweep: true, note: "undaemonized, pure Go (floor)"},
	{name: "cgo", prog: "floor-cgo", sweep: true, note: "undaemonized, cgo runtime, dynamic (floor)"},
	{name: "cgo-static", prog: "floor-cgo-static", sweep: true, note: "undaemonized, cgo runtime, static (floor)"},
	{name: "cgo-setsid", prog: "floor-cgo", sweep: true, setsid: true, note: "undaemonized cgo floor started in a new session (a scheduling autogroup of its own, as a daemon after setsid)"},
	{name: "cdaemon-off", prog: "cdaemon", sweep: true, env: []string{"CDAEMON=off"}, note: "cdaemon binary, CDAEMON=off"},
	{name: "cdaemon", prog: "cdaemon", sweep: true, env: []string{"CDAEMON=on", "CDAEMON_WAIT=start"}, daemon: true, note: "cdaemon dynamic, CDAEMON_WAIT=start (default)"},
	{name: "cdaemon-none", prog: "cdaemon", sweep: true, env: []string{"CDAEMON=on", "CDAEMON_WAIT=none"}, daemon: true, note: "cdaemon dynamic, CDAEMON_WAIT=none"},
	{name: "cdaemon-ready", prog: "cdaemon", sweep: true, env: []string{"CDAEMON=on", "CDAEMON_WAIT=ready"}, daemon: true, note: "cdaemon dynamic, CDAEMON_WAIT=ready"},
	{name: "cdaemon-static", prog: "cdaemon-static", sweep: true, env: []string{"CDAEMON=on", "CDAEMON_WAIT=start"}, daemon: true, note: "cdaemon static, CDAEMON_WAIT=start"},
	{name: "cdaemon-static-none", prog: "cdaemon-static", sweep: true, env: []string{"CDAEMON=on", "CDAEMON_WAIT=none"}, daemon: true, note: "cdaemon static, CDAEMON_WAIT=none"},
	{name: "cdaemon-static-ready", prog: "cdaemon-static", sweep: true, env: []string{"CDAEMON=on", "CDAEMON_WAIT=ready"}, daemon: true, note: "cdaemon static, CDAEMON_WAIT=ready"},
	{name: "naive", prog: "naive", sweep: true, daemon: true, note: "the same program without cdaemon: the reference recipe (fork, setsid, chdir, umask, fork, stdio to /dev/null) in a C constructor, no checks, no waiting (the floor for forking this binary)"},
	{name: "naive-static", prog: "naive-static", sweep: true, daemon: true, note: "naive, static"},
	{name: "go-daemon", prog: "go-daemon", sweep: true, daemon: true, note: "sevlyar/go-daemon v0.1.6: re-exec once"},
	{name: "godaemon", prog: "godaemon", sweep: true, daemon: true, note: "VividCortex/godaemon v1.0.0: re-exec twice"},
	{name: "c-nofork", prog: "cfork", args: []string{"nofork"}, note: "C, no fork (fork floor)"},
	{name: "c-fork", prog: "cfork", args: []string{"fork"}, daemon: true, note: "C, the same double fork"},
}

var expVariants = []variant{
	{name: "exp", prog: "exp", sweep: true, env: []string{"CDAEMON=on", "CDAEMON_WAIT=start"}, daemon: true, note: "cdaemon dynamic built from the -exp library, CDAEMON_WAIT=start"},
	{name: "exp-none", prog: "exp", sweep: true, env: []string{"CDAEMON=on", "CDAEMON_WAIT=none"}, daemon: true, note: "cdaemon dynamic built from the -exp library, CDAEMON_WAIT=none"},
	{name: "exp-static", prog: "exp-static", sweep: true, env: []string{"CDAEMON=on", "CDAEMON_WAIT=start"}, daemon: true, note: "cdaemon static built from the -exp library, CDAEMON_WAIT=start"},
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

func fmtDur(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	return d.String()
}
