//go:build benchserve

package report

import (
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
)

func init() { serve = serveHTTP }

// serveHTTP listens on 127.0.0.1:$BENCH_PORT, or takes the socket passed
// as systemd socket activation passes it (LISTEN_FDS=1 and LISTEN_PID
// this process: fd 3), as cdaemon passes a CDAEMON_LISTEN socket. It
// calls ready once it listens (or, with none, sends READY=1 to
// NOTIFY_SOCKET if that is set), reports, and answers every request with
// 200 "ok" until it is killed.
func serveHTTP(t int64, ready func() error, extra []int64) {
	ln, err := listener()
	if err != nil {
		os.Stderr.WriteString("bench program: listen: " + err.Error() + "\n")
		os.Exit(1)
	}
	if ready != nil {
		if err := ready(); err != nil {
			os.Stderr.WriteString("bench program: ready: " + err.Error() + "\n")
			os.Exit(1)
		}
	} else if addr := os.Getenv("NOTIFY_SOCKET"); addr != "" {
		// A program that knows nothing of cdaemon, run by `cdaemon run`
		// or start-stop-daemon --notify-await: sd_notify's READY=1.
		if err := notifyReady(addr); err != nil {
			os.Stderr.WriteString("bench program: READY=1: " + err.Error() + "\n")
			os.Exit(1)
		}
	}
	Send(t, extra...)
	err = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	}))
	os.Stderr.WriteString("bench program: serve: " + err.Error() + "\n")
	os.Exit(1)
}

func notifyReady(addr string) error {
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte("READY=1"))
	return err
}

func listener() (net.Listener, error) {
	if os.Getenv("LISTEN_FDS") != "" {
		if os.Getenv("LISTEN_FDS") != "1" || os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
			return nil, errors.New("want one socket passed for this process: LISTEN_FDS=" + os.Getenv("LISTEN_FDS") +
				" LISTEN_PID=" + os.Getenv("LISTEN_PID"))
		}
		f := os.NewFile(3, "listener")
		defer f.Close()
		return net.FileListener(f)
	}
	return net.Listen("tcp", "127.0.0.1:"+os.Getenv("BENCH_PORT"))
}
