// Command cdaemon is the drain server daemonized by cdaemon: it serves
// the CDAEMON_LISTEN socket (bound by the launcher, or taken over from
// the daemon it replaces with CDAEMON_REPLACE=on), calls cdaemon.Ready
// once it serves, and drains on SIGTERM.
package main

import (
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/cdaemon/cdaemon"
	"github.com/cdaemon/cdaemon/bench/internal/drain"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	ls, err := cdaemon.Listeners()
	if err == nil && len(ls) != 1 {
		err = errors.New("want one CDAEMON_LISTEN address")
	}
	if err != nil {
		cdaemon.Fail(err)
	}
	drain.Serve(ls[0], cdaemon.Ready, stop)
}
