package main

// The "run" cases (issue 20): a program that knows nothing of cdaemon, a
// C server and a pure Go server, started by a daemonizer: `cdaemon run`,
// Debian's start-stop-daemon and daemonize(1). Each case is the time from
// the command's spawn to the server's first HTTP 200; the client polls
// from the command's return. The daemonizer is the variant's cmd; its
// command line is runArgv's.

import (
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// runPrograms are the servers and the daemonizers that run them.
var runPrograms = []program{
	{key: "cserve", c: "cserve.c"},
	{key: "floor-go-serve", pkg: "./progs/floor", tags: []string{"benchserve"}},
	{key: "start-stop-daemon", ext: "/sbin/start-stop-daemon"},
	{key: "daemonize", ext: "/usr/bin/daemonize"},
}

var runVariants = func() []variant {
	var vs []variant
	for _, srv := range []struct{ name, prog, what string }{
		{"c", "cserve", "the C server"},
		{"go", "floor-go-serve", "the pure Go server"},
	} {
		vs = append(vs,
			variant{kind: kindRun, name: srv.name, prog: srv.prog, fg: true,
				note: srv.what + " undaemonized: the client connects from the spawn on"},
			variant{kind: kindRun, name: "run-" + srv.name, prog: srv.prog, cmd: "cdaemon-cmd", daemon: true,
				env: []string{"CDAEMON_WAIT=start"}, needs: "run",
				note: "`cdaemon run` with CDAEMON_WAIT=start: the launcher returns once the exec succeeded; the client polls"},
			variant{kind: kindRun, name: "run-ready-" + srv.name, prog: srv.prog, cmd: "cdaemon-cmd", daemon: true,
				env: []string{"CDAEMON_WAIT=ready"}, needs: "run",
				note: "`cdaemon run` with CDAEMON_WAIT=ready: the launcher returns once the server sent READY=1 to NOTIFY_SOCKET"},
			variant{kind: kindRun, name: "run-listen-" + srv.name, prog: srv.prog, cmd: "cdaemon-cmd", daemon: true,
				env: []string{"CDAEMON_WAIT=start"}, listen: true, needs: "run",
				note: "`cdaemon run` with CDAEMON_LISTEN (bound before the fork, passed with LISTEN_PID) and CDAEMON_WAIT=start"},
			variant{kind: kindRun, name: "ssd-notify-" + srv.name, prog: srv.prog, cmd: "start-stop-daemon", daemon: true,
				note: "start-stop-daemon --start --background --make-pidfile --notify-await: returns on READY=1"},
			variant{kind: kindRun, name: "ssd-" + srv.name, prog: srv.prog, cmd: "start-stop-daemon", daemon: true,
				note: "start-stop-daemon --start --background --make-pidfile: returns after its fork; the client polls"},
			variant{kind: kindRun, name: "daemonize-" + srv.name, prog: srv.prog, cmd: "daemonize", daemon: true,
				note: "daemonize -p PIDFILE: returns after its fork; the client polls"},
		)
	}
	return vs
}()

// runArgv is the command line of a run case: the daemonizer (c.v.cmd)
// with the server, or the server alone.
func (h *harness) runArgv(c benchCase, pidfile string) []string {
	srv := h.bins[c.v.prog]
	switch c.v.cmd {
	case "cdaemon-cmd":
		return []string{h.bins[c.v.cmd], "run", "--", srv}
	case "start-stop-daemon":
		argv := []string{h.bins[c.v.cmd], "--start", "--quiet", "--background", "--make-pidfile", "--pidfile", pidfile}
		if len(c.v.name) > 11 && c.v.name[:11] == "ssd-notify-" {
			argv = append(argv, "--notify-await")
		}
		return append(argv, "--exec", srv)
	case "daemonize":
		return []string{h.bins[c.v.cmd], "-p", pidfile, srv}
	}
	return []string{srv}
}

// runRun: start the server through its daemonizer, with a pidfile (as
// each is used: start-stop-daemon --make-pidfile, daemonize -p,
// CDAEMON_PIDFILE), wait for its first 200, then kill it.
func (h *harness) runRun(c benchCase, deadline time.Time) (sample, error) {
	port, err := freePort()
	if err != nil {
		return sample{}, err
	}
	pidfile := filepath.Join(h.runDir, "run-"+strconv.Itoa(h.seq)+".pid")
	defer os.Remove(pidfile)
	l, err := h.startServer(c, port, pidfile, h.token(), deadline)
	if err != nil {
		return sample{}, err
	}
	s := l.sample()
	return s, h.stopServer(c, s, deadline)
}
