// Command tableflip is the drain server written for cloudflare/tableflip
// v1.2.3, as its documentation shows: it listens through the upgrader,
// upgrades on SIGHUP (tableflip starts the new binary with the
// listeners, waits until it calls Ready, then Exit fires in the old one),
// writes its pid to $BENCH_PIDFILE once ready, and drains when it is
// replaced or on SIGTERM. It does not daemonize: the harness starts it in
// a session of its own.
package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/cdaemon/cdaemon/bench/internal/drain"
	"github.com/cloudflare/tableflip"
)

func main() {
	upg, err := tableflip.New(tableflip.Options{PIDFile: os.Getenv("BENCH_PIDFILE")})
	if err != nil {
		drain.Fatal("tableflip", err)
	}
	defer upg.Stop()
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGHUP, syscall.SIGTERM)
		for s := range sig {
			if s == syscall.SIGTERM {
				upg.Stop()
				return
			}
			if err := upg.Upgrade(); err != nil {
				os.Stderr.WriteString("drain server: upgrade: " + err.Error() + "\n")
			}
		}
	}()
	ln, err := upg.Listen("tcp", drain.Addr())
	if err != nil {
		drain.Fatal("listen", err)
	}
	stop := make(chan os.Signal)
	go func() { <-upg.Exit(); close(stop) }()
	drain.Serve(ln, upg.Ready, stop)
}
