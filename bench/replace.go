package main

// Replacing a running daemon under load (issue 21): an HTTP server
// (internal/drain: it drains on SIGTERM) is replaced N times in a row
// while two clients hit it as hard as they can, one opening a new
// connection for every request, one reusing keep-alive connections. Each
// way of replacing it is measured: cdaemon's CDAEMON_REPLACE=on, cdaemon
// stop then start, go-daemon's SIGTERM then start, and a server written
// for cloudflare/tableflip (SIGHUP). Every request is recorded: when it
// started, how long it took, whether it got a 200 (and from which pid),
// was refused, or failed otherwise.
//
// The variants run side by side: all servers run at once, on ports of
// their own, and the replacements come in blocks, one variant at a time
// under load, in a random order per block.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A replaceVariant is one way of replacing the running server.
type replaceVariant struct {
	name string
	prog string // the server's program key
	how  string // "replace", "stop-start", "kill-start", "hup"
	note string
}

var replaceVariants = []replaceVariant{
	{name: "cdaemon-replace", prog: "drain-cdaemon", how: "replace",
		note: "a start with CDAEMON_REPLACE=on (and CDAEMON_LISTEN, CDAEMON_WAIT=ready): the new daemon takes the old one's listening socket and lock, the old one gets SIGTERM once the new one is ready; the program is unchanged"},
	{name: "cdaemon-stop-start", prog: "drain-cdaemon", how: "stop-start",
		note: "`cdaemon stop PIDFILE`, then a start (CDAEMON_LISTEN, CDAEMON_WAIT=ready)"},
	{name: "go-daemon", prog: "drain-godaemon", how: "kill-start",
		note: "sevlyar/go-daemon v0.1.6: SIGTERM to the pid in its pidfile, wait until it is gone, start (the daemon binds the port)"},
	{name: "tableflip", prog: "drain-tableflip", how: "hup",
		note: "a server written for cloudflare/tableflip v1.2.3 (upg.Listen, upg.Ready, upg.Exit): SIGHUP to the pid in its pidfile; not daemonized"},
}

// replacePrograms are the servers (progs/drain) and the cdaemon command.
var replacePrograms = []program{
	{key: "drain-cdaemon", pkg: "./progs/drain/cdaemon", cgo: true, lib: "base"},
	{key: "drain-godaemon", pkg: "./progs/drain/godaemon"},
	{key: "drain-tableflip", pkg: "./progs/drain/tableflip"},
	{key: "cdaemon-cmd", pkg: "github.com/cdaemon/cdaemon/cdaemon", cgo: true, lib: "base"},
}

func (v *replaceVariant) String() string { return "Replace/variant=" + v.name }

// Request outcomes.
const (
	reqOK = iota
	reqRefused
	reqFailed
)

// A request is one request of the load; times in ns since the run's t0.
type request struct {
	start, dur int64
	outcome    uint8
	pid        int32
}

// One replacement: when the command started and returned, when the new
// instance answered first, when the old one had exited (ns since t0).
type replacement struct {
	cmd, ret, serve, gone int64
	oldPID, newPID        int
}

func (r replacement) end() int64 { return max(r.serve, r.gone) }

// replaceRun is everything measured for one variant.
type replaceRun struct {
	v        *replaceVariant
	reqs     []request
	repl     []replacement
	warmupNs int64 // requests before this are not counted as steady state
}

// replaceResults are the runs, by variant, in the plan's order.
type replaceResults struct {
	runs  []*replaceRun
	n     int // replacements per variant
	block int
}

// server is one variant's running server.
type server struct {
	v       *replaceVariant
	port    int
	pidfile string
	pid     int // the instance serving now
	env     []string
}

// measureReplace runs the plan's replacement variants, n replacements
// each, in blocks; nothing it started is left running when it returns.
func measureReplace(p *plan, tmp string, bins map[string]string, pr *progress) (*replaceResults, error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, err
	}
	defer killDescendants()
	t0 := time.Now()
	res := &replaceResults{n: p.replacements, block: min(10, p.replacements)}
	var servers []*server
	for i, v := range p.replace {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &server{v: v, port: port, pidfile: filepath.Join(tmp, "replace-"+strconv.Itoa(i)+".pid")}
		s.env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "BENCH_PORT=" + strconv.Itoa(port), "BENCH_PIDFILE=" + s.pidfile}
		if strings.HasPrefix(v.prog, "drain-cdaemon") {
			s.env = append(s.env, "CDAEMON=on", "CDAEMON_PIDFILE="+s.pidfile, "CDAEMON_WAIT=ready",
				"CDAEMON_LISTEN=tcp:127.0.0.1:"+strconv.Itoa(port))
		}
		pr.show("replace: starting " + v.name)
		if err := s.start(bins); err != nil {
			return nil, fmt.Errorf("%s: first start: %w", v, err)
		}
		servers = append(servers, s)
		res.runs = append(res.runs, &replaceRun{v: v})
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	for done := 0; done < res.n; done += res.block {
		k := min(res.block, res.n-done)
		order := rng.Perm(len(servers))
		for _, i := range order {
			s, run := servers[i], res.runs[i]
			pr.show(fmt.Sprintf("replace: %s, replacements %d-%d of %d", s.v.name, done+1, done+k, res.n))
			if err := s.block(bins, run, k, t0); err != nil {
				return nil, fmt.Errorf("%s: %w", s.v, err)
			}
		}
	}
	for _, s := range servers {
		if fd, err := unix.PidfdOpen(s.pid, 0); err == nil {
			unix.PidfdSendSignal(fd, unix.SIGTERM, nil, 0)
			waitPidfd(fd, 30*time.Second)
			unix.Close(fd)
			reapPid(s.pid)
		}
	}
	return res, nil
}

// steady is the time under load before the first replacement of a block
// and after each, so the steady state has samples and one replacement's
// drain does not overlap the next.
const steady = 300 * time.Millisecond

// block runs k replacements of s under load, recording into run.
func (s *server) block(bins map[string]string, run *replaceRun, k int, t0 time.Time) error {
	l := newReplaceLoad(s.port, t0)
	defer func() { run.reqs = append(run.reqs, l.stop()...) }()
	if run.warmupNs == 0 {
		run.warmupNs = int64(time.Since(t0)) + int64(steady)/3
	}
	time.Sleep(steady)
	for i := 0; i < k; i++ {
		r, err := s.replace(bins, l, t0)
		if err != nil {
			return err
		}
		run.repl = append(run.repl, r)
		time.Sleep(steady)
	}
	return nil
}

// start starts the variant's first instance and waits until it serves.
func (s *server) start(bins map[string]string) error {
	if s.v.how == "hup" {
		cmd := exec.Command(bins[s.v.prog])
		cmd.Env = s.env
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			return err
		}
		s.pid = cmd.Process.Pid // our child: reaped by reapPid when replaced
	} else if err := s.run(bins[s.v.prog]); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if pid, err := get(s.port); err == nil && (s.pid == 0 || pid == s.pid) {
			s.pid = pid
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return errors.New("the first instance never answered")
}

// run starts the server's program with its environment and waits for
// the launcher; for cdaemon-replace once the first instance runs, with
// CDAEMON_REPLACE=on.
func (s *server) run(bin string) error {
	env := s.env
	if s.v.how == "replace" && s.pid != 0 {
		env = append(env, "CDAEMON_REPLACE=on")
	}
	return runCmd(env, bin)
}

// command runs a command (cdaemon stop) with nothing of the server's
// environment: CDAEMON=on would make the cdaemon command daemonize.
func (s *server) command(argv ...string) error {
	return runCmd([]string{"PATH=/usr/local/bin:/usr/bin:/bin"}, argv...)
}

func runCmd(env []string, argv ...string) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
	return nil
}

// replace replaces the serving instance once: the command, then until
// the load got a 200 from a new pid and the old process has exited.
func (s *server) replace(bins map[string]string, l *replaceLoad, t0 time.Time) (replacement, error) {
	old := s.pid
	fd, err := unix.PidfdOpen(old, 0)
	if err != nil {
		return replacement{}, fmt.Errorf("the serving instance %d: %w", old, err)
	}
	defer unix.Close(fd)
	r := replacement{oldPID: old, cmd: int64(time.Since(t0))}
	l.watch(old, r.cmd)
	switch s.v.how {
	case "replace":
		err = s.run(bins[s.v.prog])
	case "stop-start":
		if err = s.command(bins["cdaemon-cmd"], "stop", s.pidfile); err == nil {
			err = s.run(bins[s.v.prog])
		}
	case "kill-start":
		if err = s.signalPidfile(old, unix.SIGTERM); err == nil {
			if !waitPidfd(fd, 30*time.Second) {
				err = fmt.Errorf("pid %d did not exit on SIGTERM", old)
			} else {
				err = s.run(bins[s.v.prog])
			}
		}
	case "hup":
		err = s.signalPidfile(old, unix.SIGHUP)
	}
	r.ret = int64(time.Since(t0))
	if err != nil {
		return r, err
	}
	if !waitPidfd(fd, 60*time.Second) {
		return r, fmt.Errorf("the old instance %d did not exit", old)
	}
	r.gone = int64(time.Since(t0))
	reapPid(old)
	pid, at, ok := l.waitNew(60 * time.Second)
	if !ok {
		return r, fmt.Errorf("no 200 from a new instance after replacing %d", old)
	}
	r.newPID, r.serve = pid, at
	s.pid = pid
	return r, nil
}

// signalPidfile sends sig to the pid the pidfile names, as an operator
// does (kill -TERM $(cat PIDFILE)); it must be the serving instance.
func (s *server) signalPidfile(want int, sig unix.Signal) error {
	b, err := os.ReadFile(s.pidfile)
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid != want {
		return fmt.Errorf("the pidfile names %q, not the serving instance %d", b, want)
	}
	return unix.Kill(pid, sig)
}

// get is one GET / on a new connection: the pid that answered.
func get(port int) (int, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// waitPidfd waits until the process of pidfd fd has exited.
func waitPidfd(fd int, d time.Duration) bool {
	n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(d/time.Millisecond))
	for err == unix.EINTR {
		n, err = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(d/time.Millisecond))
	}
	return n > 0
}

// reapPid reaps pid if it is our child (re-parented to us, the subreaper).
func reapPid(pid int) {
	var ws unix.WaitStatus
	for {
		if _, err := unix.Wait4(pid, &ws, 0, nil); err != unix.EINTR {
			return
		}
	}
}

// killDescendants kills and reaps every process left under us.
func killDescendants() {
	for i := 0; i < 50; i++ {
		procs := processes()
		n := 0
		for pid := range procs {
			if descends(procs, pid, os.Getpid()) {
				unix.Kill(pid, unix.SIGKILL)
				n++
			}
		}
		for {
			var ws unix.WaitStatus
			if pid, _ := unix.Wait4(-1, &ws, unix.WNOHANG, nil); pid <= 0 {
				break
			}
		}
		if n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A replaceLoad is the two clients: one opening a new connection for
// every request, as fast as it can, one reusing keep-alive connections.
// After a refused connect or a failure a client pauses 100 µs, so a
// server that is down is not met with a busy loop.
type replaceLoad struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	t0     time.Time

	mu       sync.Mutex
	reqs     []request
	old      int   // the instance being replaced
	since    int64 // when its replacement started
	newPID   int
	newAt    int64
	gotNewCh chan struct{}
}

const maxLoadRequests = 4_000_000 // per block: a bound, never reached at loopback speeds in a block

func newReplaceLoad(port int, t0 time.Time) *replaceLoad {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	l := &replaceLoad{cancel: cancel, t0: t0}
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/"
	for _, keepAlive := range []bool{false, true} {
		tr := &http.Transport{DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 1}
		l.wg.Add(1)
		go l.client(ctx, &http.Client{Transport: tr, Timeout: 30 * time.Second}, url)
	}
	return l
}

func (l *replaceLoad) client(ctx context.Context, c *http.Client, url string) {
	defer l.wg.Done()
	defer c.CloseIdleConnections()
	for ctx.Err() == nil {
		start := time.Since(l.t0)
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := c.Do(req)
		pid := 0
		if err == nil {
			var b []byte
			b, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode != 200 {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			if err == nil {
				pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
			}
		}
		if ctx.Err() != nil {
			return // stopped: not the server's failure
		}
		r := request{start: int64(start), dur: int64(time.Since(l.t0) - start), pid: int32(pid)}
		switch {
		case err == nil:
		case errors.Is(err, syscall.ECONNREFUSED):
			r.outcome = reqRefused
		default:
			r.outcome = reqFailed
		}
		l.mu.Lock()
		if len(l.reqs) >= maxLoadRequests {
			l.mu.Unlock()
			return
		}
		l.reqs = append(l.reqs, r)
		if err == nil && l.gotNewCh != nil && pid != l.old && r.start >= l.since {
			l.newPID, l.newAt = pid, r.start+r.dur
			close(l.gotNewCh)
			l.gotNewCh = nil
		}
		l.mu.Unlock()
		if err != nil {
			time.Sleep(100 * time.Microsecond)
		}
	}
}

// watch starts looking for the first 200 from a pid other than old, of a
// request made after since.
func (l *replaceLoad) watch(old int, since int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.old, l.since, l.newPID = old, since, 0
	l.gotNewCh = make(chan struct{})
}

// waitNew waits for that 200: the new pid and when the answer came.
func (l *replaceLoad) waitNew(d time.Duration) (int, int64, bool) {
	l.mu.Lock()
	ch := l.gotNewCh
	l.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-time.After(d):
			return 0, 0, false
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.newPID, l.newAt, l.newPID != 0
}

// stop ends the clients and returns every request they made.
func (l *replaceLoad) stop() []request {
	l.cancel()
	l.wg.Wait()
	return l.reqs
}
