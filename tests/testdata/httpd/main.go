// Command httpd is the server the replacement tests replace under load: a
// real net/http server on the CDAEMON_LISTEN sockets that drains on its
// stop signal (it closes its listeners, answers every connection it has
// accepted, then http.Server.Shutdown closes the idle keep-alive ones)
// and exits 0.
// Every response is the serving process's pid and a newline.
//
// It writes its pid, cdaemon.Info and its listeners' socket inodes to
// $PROBE_REPORT (JSON) before it calls cdaemon.Ready. Flags make the
// start fail the ways a replacement must survive.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/cdaemon/cdaemon"
	"golang.org/x/sys/unix"
)

func main() {
	delay := flag.Duration("delay", 0, "time each request takes: requests are in flight when the stop signal comes")
	fail := flag.String("fail", "", "call cdaemon.Fail with this text instead of becoming ready")
	exit := flag.Int("exit", -1, "exit with this status before becoming ready")
	kill := flag.Bool("kill", false, "kill itself with SIGKILL before becoming ready")
	hang := flag.Bool("hang", false, "never become ready (the launcher's CDAEMON_TIMEOUT ends it)")
	ignoreTerm := flag.Bool("ignore-term", false, "ignore SIGTERM: only SIGKILL ends it")
	drain := flag.String("drain-signal", "TERM", "the signal it drains and exits on: TERM, INT, QUIT, HUP, USR1 or USR2")
	undumpable := flag.Bool("undumpable", false, "prctl(PR_SET_DUMPABLE, 0): no other process of its user may take its descriptors")
	flag.Parse()
	env := os.Environ() // before Listeners takes the LISTEN_* variables

	sigs := map[string]syscall.Signal{"TERM": syscall.SIGTERM, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT,
		"HUP": syscall.SIGHUP, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2}
	sig, ok := sigs[*drain]
	if !ok {
		cdaemon.Fail(fmt.Errorf("-drain-signal %q: not one of TERM, INT, QUIT, HUP, USR1, USR2", *drain))
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, sig)
	if *ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
	}
	if *undumpable {
		if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
			cdaemon.Fail(err)
		}
	}

	ls, err := cdaemon.Listeners()
	if err != nil || len(ls) == 0 {
		cdaemon.Fail(fmt.Errorf("want CDAEMON_LISTEN sockets: %v", err))
	}
	// A descriptor opened now takes the lowest free number, which
	// Listeners just freed (3): it must survive garbage collections.
	probe, err := os.Open("/dev/null")
	if err != nil {
		cdaemon.Fail(err)
	}
	for i := 0; i < 3; i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // finalizers run
	}
	var st unix.Stat_t
	survives := unix.Fstat(int(probe.Fd()), &st) == nil
	rep := struct {
		PID             int
		ProbeFD         int
		ProbeSurvivesGC bool
		Info            cdaemon.State
		Inodes          []uint64 // of the listeners, in CDAEMON_LISTEN's order
		Env             []string
	}{PID: os.Getpid(), Info: cdaemon.Info(), Env: env, ProbeFD: int(probe.Fd()), ProbeSurvivesGC: survives}
	for _, l := range ls {
		rep.Inodes = append(rep.Inodes, inode(l))
	}
	b, _ := json.Marshal(rep)
	if err := os.WriteFile(os.Getenv("PROBE_REPORT"), b, 0o644); err != nil {
		cdaemon.Fail(err)
	}

	switch {
	case *fail != "":
		cdaemon.Fail(fmt.Errorf("%s", *fail))
	case *exit >= 0:
		os.Exit(*exit)
	case *kill:
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	case *hang:
		select {}
	}

	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(*delay)
			w.Write(pid)
		})}
	d := track(srv)
	var serving sync.WaitGroup
	for _, l := range ls {
		serving.Add(1)
		go func() { defer serving.Done(); srv.Serve(l) }()
	}
	if err := cdaemon.Ready(); err != nil {
		cdaemon.Fail(err)
	}
	<-stop
	// Drain: accept no more (the socket stays open in the daemon that
	// replaces this one, which accepts what is queued), answer every
	// connection accepted so far, then shut down. Shutdown alone would
	// drop a request it reads after it began: net/http closes such a
	// connection unanswered.
	for _, l := range ls {
		l.Close()
	}
	serving.Wait() // every accepted connection is tracked now
	srv.SetKeepAlivesEnabled(false)
	d.wait(time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "httpd: shutdown:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "httpd: drained on", sig)
}

// conns tracks the server's connections that are new (accepted, no
// request read yet) or active (a request being answered).
type conns struct {
	mu   sync.Mutex
	busy map[net.Conn]bool
}

func track(srv *http.Server) *conns {
	d := &conns{busy: map[net.Conn]bool{}}
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		d.mu.Lock()
		defer d.mu.Unlock()
		if s == http.StateNew || s == http.StateActive {
			d.busy[c] = true
		} else {
			delete(d.busy, c)
		}
	}
	return d
}

// wait waits until no connection is new or active, at most d.
func (d *conns) wait(max time.Duration) {
	for end := time.Now().Add(max); time.Now().Before(end); time.Sleep(time.Millisecond) {
		d.mu.Lock()
		n := len(d.busy)
		d.mu.Unlock()
		if n == 0 {
			return
		}
	}
}

// inode is the socket's inode number, as /proc/net/tcp and
// /proc/PID/fd show it.
func inode(l net.Listener) uint64 {
	sc, ok := l.(syscall.Conn)
	if !ok {
		return 0
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	var st unix.Stat_t
	rc.Control(func(fd uintptr) { unix.Fstat(int(fd), &st) })
	return st.Ino
}
