// Package drain is the HTTP server the replacement cases replace under
// load: every response is the serving process's pid and a newline, and on
// its stop signal it drains (see Serve) and returns.
// The programs in progs/drain run it under each daemonizer.
package drain

import (
	"context"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// Serve serves ln, calls ready (if not nil) once it does, and drains when
// stop is closed or receives: it closes ln (the socket stays open where a
// replacement took a copy, and its queue goes to the new instance),
// answers every connection it had accepted (keep-alive off), then
// http.Server.Shutdown closes the idle ones. It returns when that is
// done. Shutdown alone would drop a request it reads after it began:
// net/http closes such a connection unanswered.
func Serve(ln net.Listener, ready func() error, stop <-chan os.Signal) {
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(pid) })}
	var mu sync.Mutex
	busy := map[net.Conn]bool{} // new (no request read yet) or active
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		if s == http.StateNew || s == http.StateActive {
			busy[c] = true
		} else {
			delete(busy, c)
		}
	}
	served := make(chan struct{})
	go func() { defer close(served); srv.Serve(ln) }()
	if ready != nil {
		if err := ready(); err != nil {
			Fatal("ready", err)
		}
	}
	<-stop
	ln.Close()
	<-served // every accepted connection is tracked now
	srv.SetKeepAlivesEnabled(false)
	for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(time.Millisecond) {
		mu.Lock()
		n := len(busy)
		mu.Unlock()
		if n == 0 {
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		Fatal("shutdown", err)
	}
}

// Addr is the address to listen on: 127.0.0.1:$BENCH_PORT.
func Addr() string { return "127.0.0.1:" + os.Getenv("BENCH_PORT") }

// Fatal reports err on stderr (the harness's log) and exits 1.
func Fatal(what string, err error) {
	os.Stderr.WriteString("drain server: " + what + ": " + err.Error() + "\n")
	os.Exit(1)
}
