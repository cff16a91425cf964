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
	ext     string // an installed program, used as it is (/bin/true)
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

// servePrograms are the same programs built with tag benchserve: given
// $BENCH_PORT they serve HTTP (internal/report/serve.go). cdaemon-cmd is
// the library's cdaemon command, whose stop the restart cases time.
var servePrograms = []program{
	{key: "floor-cgo-serve", pkg: "./progs/floor", cgo: true, tags: []string{"benchcgo", "benchserve"}, ldflags: "-linkmode external"},
	{key: "floor-cgo-static-serve", pkg: "./progs/floor", cgo: true, tags: []string{"benchcgo", "benchserve"}, ldflags: staticLD},
	{key: "cdaemon-serve", pkg: "./progs/cdaemon", cgo: true, tags: []string{"benchcdaemon", "benchserve"}, lib: "base"},
	{key: "cdaemon-static-serve", pkg: "./progs/cdaemon", cgo: true, tags: []string{"benchcdaemon", "benchserve"}, ldflags: staticLD, lib: "base"},
	{key: "naive-serve", pkg: "./progs/cdaemon", cgo: true, tags: []string{"benchnaive", "benchserve"}},
	{key: "go-daemon-serve", pkg: "./progs/godaemon", tags: []string{"benchserve"}},
	{key: "godaemon-serve", pkg: "./progs/vividcortex", tags: []string{"benchserve"}},
	{key: "cdaemon-cmd", pkg: "github.com/cdaemon/cdaemon/cdaemon", cgo: true, lib: "base"},
	{key: "forkcost", c: "forkcost.c"},
	{key: "true", ext: "/bin/true"},
}

// expPrograms are built with -exp: cdaemon from another library tree or
// with changed files, measured in the same rounds as the -base build.
var expPrograms = []program{
	{key: "exp", pkg: "./progs/cdaemon", cgo: true, tags: []string{"benchcdaemon"}, lib: "exp"},
	{key: "exp-static", pkg: "./progs/cdaemon", cgo: true, tags: []string{"benchcdaemon"}, ldflags: staticLD, lib: "exp"},
	{key: "exp-serve", pkg: "./progs/cdaemon", cgo: true, tags: []string{"benchcdaemon", "benchserve"}, lib: "exp"},
	{key: "exp-cmd", pkg: "github.com/cdaemon/cdaemon/cdaemon", cgo: true, lib: "exp"},
}

// What a case measures.
type kind int

const (
	kindStart    kind = iota // time to the daemon's main, launcher return, peak RSS
	kindResponse             // spawn to the first HTTP 200, refused connects
	kindRestart              // stop command to the new instance's first 200
	kindFork                 // fork, vfork, posix_spawn against resident memory
	kindCommand              // a command beside a running daemon (cdaemon status, stop), against /bin/true
	kindRun                  // a program that knows nothing of cdaemon, started by a daemonizer, to its first 200 (variants_run.go)
)

// A variant is one way of running a program; each is measured at every
// init weight and size it takes part in.
type variant struct {
	kind   kind
	name   string
	prog   string
	args   []string
	env    []string
	daemon bool // the report comes from a daemon, not the launcher
	sweep  bool // swept over init weights and sizes (the C programs are not)
	setsid bool // the spawner starts it in a new session
	note   string

	fg     bool   // a server that does not daemonize: the client starts at spawn
	listen bool   // the launcher binds the port: CDAEMON_LISTEN=tcp:127.0.0.1:PORT
	stop   string // restart, command: "cdaemon" (cdaemon stop PIDFILE) or "kill" (SIGTERM, wait)
	cmd    string // restart, command: the cdaemon command's program ("cdaemon-cmd", "exp-cmd")
	action string // command: "status" or "stop" of the daemon prog runs; "" runs prog alone
	needs  string // a library feature it needs: "listen" or "stop" (see features)
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

// responseVariants are the first-response cases: the undaemonized server
// and each daemonizer, at the -serve-init weights.
var responseVariants = []variant{
	{kind: kindResponse, name: "cgo", prog: "floor-cgo-serve", fg: true, note: "the server undaemonized, cgo, dynamic: the client connects from the spawn on"},
	{kind: kindResponse, name: "cgo-static", prog: "floor-cgo-static-serve", fg: true, note: "the same, static"},
	{kind: kindResponse, name: "cgo-setsid", prog: "floor-cgo-serve", fg: true, setsid: true, note: "the undaemonized server started in a session of its own (with CONFIG_SCHED_AUTOGROUP, a scheduling group of its own, as a daemon's after setsid)"},
	{kind: kindResponse, name: "cdaemon-ready", prog: "cdaemon-serve", env: []string{"CDAEMON=on", "CDAEMON_WAIT=ready"}, daemon: true, note: "cdaemon, CDAEMON_WAIT=ready: the server listens, then calls cdaemon.Ready()"},
	{kind: kindResponse, name: "cdaemon-static-ready", prog: "cdaemon-static-serve", env: []string{"CDAEMON=on", "CDAEMON_WAIT=ready"}, daemon: true, note: "the same, static"},
	{kind: kindResponse, name: "cdaemon-listen", prog: "cdaemon-serve", env: []string{"CDAEMON=on", "CDAEMON_WAIT=none"}, listen: true, needs: "listen", daemon: true, note: "cdaemon, CDAEMON_LISTEN (the launcher binds and listens before forking) and CDAEMON_WAIT=none"},
	{kind: kindResponse, name: "cdaemon-static-listen", prog: "cdaemon-static-serve", env: []string{"CDAEMON=on", "CDAEMON_WAIT=none"}, listen: true, needs: "listen", daemon: true, note: "the same, static"},
	{kind: kindResponse, name: "naive", prog: "naive-serve", daemon: true, note: "the naive recipe in the same program's constructor: the launcher exits at once, the client polls until the daemon listens (the floor of forking this server)"},
	{kind: kindResponse, name: "go-daemon", prog: "go-daemon-serve", daemon: true, note: "sevlyar/go-daemon v0.1.6: the launcher returns once the child is started; the child listens"},
	{kind: kindResponse, name: "godaemon", prog: "godaemon-serve", daemon: true, note: "VividCortex/godaemon v1.0.0: the same, after two re-execs"},
}

// restartVariants: a running daemon is stopped and started again on the
// same port and pidfile, and the client polls for the first 200.
var restartVariants = []variant{
	{kind: kindRestart, name: "cdaemon", prog: "cdaemon-serve", env: []string{"CDAEMON=on", "CDAEMON_WAIT=ready"}, stop: "cdaemon", cmd: "cdaemon-cmd", needs: "stop", daemon: true, note: "`cdaemon stop PIDFILE`, then a start with CDAEMON_WAIT=ready"},
	{kind: kindRestart, name: "cdaemon-static", prog: "cdaemon-static-serve", env: []string{"CDAEMON=on", "CDAEMON_WAIT=ready"}, stop: "cdaemon", cmd: "cdaemon-cmd", needs: "stop", daemon: true, note: "the same, static"},
	{kind: kindRestart, name: "cdaemon-listen", prog: "cdaemon-serve", env: []string{"CDAEMON=on", "CDAEMON_WAIT=none"}, listen: true, stop: "cdaemon", cmd: "cdaemon-cmd", needs: "listen,stop", daemon: true, note: "`cdaemon stop PIDFILE`, then a start with CDAEMON_LISTEN and CDAEMON_WAIT=none"},
	{kind: kindRestart, name: "cdaemon-kill", prog: "cdaemon-serve", env: []string{"CDAEMON=on", "CDAEMON_WAIT=ready"}, stop: "kill", daemon: true, note: "stopped as go-daemon is (SIGTERM to the pid in the pidfile, wait until it is gone), then a start with CDAEMON_WAIT=ready: against `cdaemon`, what the stop command costs"},
	{kind: kindRestart, name: "go-daemon", prog: "go-daemon-serve", stop: "kill", daemon: true, note: "sevlyar/go-daemon v0.1.6: SIGTERM to the pid in its pidfile, wait until it is gone (polled every 100 µs), start, poll"},
}

// expRestartVariants: with -exp, the restart with the exp build's server
// and command, in the same rounds as the cdaemon variant.
var expRestartVariants = []variant{
	{kind: kindRestart, name: "exp", prog: "exp-serve", env: []string{"CDAEMON=on", "CDAEMON_WAIT=ready"}, stop: "cdaemon", cmd: "exp-cmd", daemon: true, note: "the same as cdaemon, server and command built from the -exp library"},
}

// commandVariants: one command run beside a daemon started (not timed) on
// a port and pidfile, timed from its spawn to its exit; /bin/true is the
// floor of starting any program.
var commandVariants = []variant{
	{kind: kindCommand, name: "true", prog: "true", note: "/bin/true: the floor of starting a program and waiting for it"},
	{kind: kindCommand, name: "status", prog: "cdaemon-serve", env: []string{"CDAEMON=on", "CDAEMON_WAIT=ready"}, action: "status", cmd: "cdaemon-cmd", needs: "stop", daemon: true, note: "`cdaemon status PIDFILE` of a running daemon (exit 0)"},
	{kind: kindCommand, name: "stop", prog: "cdaemon-serve", env: []string{"CDAEMON=on", "CDAEMON_WAIT=ready"}, action: "stop", stop: "cdaemon", cmd: "cdaemon-cmd", needs: "stop", daemon: true, note: "`cdaemon stop PIDFILE` of a running daemon that exits on SIGTERM (Go's default: killed by it), until the command exits"},
	{kind: kindCommand, name: "kill", prog: "cdaemon-serve", env: []string{"CDAEMON=on", "CDAEMON_WAIT=ready"}, action: "stop", stop: "kill", daemon: true, note: "the same daemon stopped by the spawner: SIGTERM to the pid in the pidfile, poll every 100 µs until it is gone (the floor of a stop)"},
}

// expCommandVariants: with -exp, status and stop by the exp build's command.
var expCommandVariants = []variant{
	{kind: kindCommand, name: "exp-status", prog: "cdaemon-serve", env: []string{"CDAEMON=on", "CDAEMON_WAIT=ready"}, action: "status", cmd: "exp-cmd", daemon: true, note: "`cdaemon status PIDFILE` by the command built from the -exp library"},
	{kind: kindCommand, name: "exp-stop", prog: "cdaemon-serve", env: []string{"CDAEMON=on", "CDAEMON_WAIT=ready"}, action: "stop", stop: "cdaemon", cmd: "exp-cmd", daemon: true, note: "`cdaemon stop PIDFILE` by the command built from the -exp library"},
}

// forkVariant: the fork-cost program at each -forkmem size.
var forkVariant = variant{kind: kindFork, name: "forkcost", prog: "forkcost", note: "csrc/forkcost.c"}

// A bench case is a variant at one init weight and size: one measurement
// per round.
type benchCase struct {
	v    *variant
	init time.Duration
	big  bool
	mem  int // fork cost: MiB resident
}

func (c benchCase) size() string {
	if c.big {
		return "big"
	}
	return "small"
}

// String names the case: its benchmark name without "Benchmark", and
// what -only matches. The start-up cases keep their old names.
func (c benchCase) String() string {
	switch c.v.kind {
	case kindResponse:
		return fmt.Sprintf("FirstResponse/variant=%s/init=%s", c.v.name, fmtDur(c.init))
	case kindRestart:
		return fmt.Sprintf("Restart/variant=%s/init=%s", c.v.name, fmtDur(c.init))
	case kindFork:
		return fmt.Sprintf("ForkCost/rss=%dMB", c.mem)
	case kindCommand:
		return fmt.Sprintf("Command/variant=%s", c.v.name)
	case kindRun:
		return fmt.Sprintf("Run/variant=%s", c.v.name)
	}
	return fmt.Sprintf("variant=%s/init=%s/size=%s", c.v.name, fmtDur(c.init), c.size())
}

// benchName is the name in benchstat lines.
func (c benchCase) benchName() string {
	if c.v.kind == kindStart {
		return "BenchmarkStartup/" + c.String()
	}
	return "Benchmark" + c.String()
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
