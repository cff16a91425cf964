// Command godaemon is the drain server daemonized by sevlyar/go-daemon
// (re-exec once, pidfile $BENCH_PIDFILE). The daemon binds the port
// itself, so a new instance can start only once the old one has closed
// it: replacing it is SIGTERM, wait until it is gone, start again.
package main

import (
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/cdaemon/cdaemon/bench/internal/drain"
	daemon "github.com/sevlyar/go-daemon"
)

func main() {
	ctx := &daemon.Context{WorkDir: "/", PidFileName: os.Getenv("BENCH_PIDFILE"), PidFilePerm: 0o644}
	child, err := ctx.Reborn()
	if child != nil {
		return // the launcher (see progs/godaemon for Reborn's spurious EPIPE)
	}
	if err != nil {
		drain.Fatal("go-daemon", err)
	}
	defer ctx.Release()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	ln, err := net.Listen("tcp", drain.Addr())
	if err != nil {
		drain.Fatal("listen", err)
	}
	drain.Serve(ln, nil, stop)
}
