package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// A sample is one run of one case.
type sample struct {
	spawn, ret, main int64 // CLOCK_MONOTONIC ns: spawned, launcher returned, daemon main
	entry            int64 // cdaemon's constructor entry (0 if not reported)
	runDelay         int64 // ns the daemon's main thread waited for a CPU before main (0: not reported)
	launcherPID      int
	daemonPID        int
	daemonSID        int
	launcherRSS      int64 // kB: the launcher's ru_maxrss
	daemonRSS        int64 // kB: the daemon's VmHWM

	first        int64 // first response, restart: when the first HTTP 200 arrived
	refused      int   // connects refused before it
	stop0, stop1 int64 // restart: the stop command spawned, returned (spawn: the new start)

	forkNs, writesNs, vforkNs, spawnNs int64 // fork cost (see csrc/forkcost.c)
	rssKB                              int64 // fork cost: VmRSS when it forked
}

func (s sample) toMain() int64 { return s.main - s.spawn }
func (s sample) toRet() int64  { return s.ret - s.spawn }

// spawnAnswer is one line from the spawner, split into fields.
type spawnAnswer struct {
	f   []string
	err error
}

// A harness runs programs one at a time through the spawner and collects
// their reports. It is a child subreaper: every daemon, every intermediate
// process, is re-parented to it when its parent exits, and it reaps them.
type harness struct {
	dir     string // temp dir: the socket, the spawner's log
	runDir  string // where the pidfiles go: on a tmpfs if there is one (see pidfileDir)
	bins    map[string]string
	sock    int
	spawn   *exec.Cmd
	req     *os.File
	answers chan spawnAnswer
	log     string
	seq     int

	reports chan []string

	mu     sync.Mutex
	cond   *sync.Cond
	reaped map[int]bool
	done   bool
	reaper sync.WaitGroup
}

func newHarness(dir, pidParent string, bins map[string]string) (*harness, error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("prctl PR_SET_CHILD_SUBREAPER: %w", err)
	}
	h := &harness{dir: dir, bins: bins, reports: make(chan []string, 16), reaped: map[int]bool{}}
	h.cond = sync.NewCond(&h.mu)
	h.runDir = dir
	if pidParent != "" {
		d, err := os.MkdirTemp(pidParent, "cdaemon-bench-")
		if err != nil {
			return nil, err
		}
		h.runDir = d
	}

	path := filepath.Join(dir, "report.sock")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind %s: %w", path, err)
	}
	h.sock = fd
	go h.receive()

	// The spawner: requests on a pipe to its stdin, answers from its stdout,
	// the programs' output (errors only) in a log file.
	h.log = filepath.Join(dir, "programs.log")
	logf, err := os.Create(h.log)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	h.spawn = exec.Command(bins["spawn"])
	h.spawn.Stdin, h.spawn.Stdout, h.spawn.Stderr = inR, outW, logf
	if err := h.spawn.Start(); err != nil {
		return nil, err
	}
	inR.Close()
	outW.Close()
	h.req = inW
	h.answers = make(chan spawnAnswer, 4)
	go func() {
		resp := bufio.NewReader(outR)
		for {
			line, err := resp.ReadString('\n')
			h.answers <- spawnAnswer{strings.Fields(line), err}
			if err != nil {
				return
			}
		}
	}()
	// From here on the reaper owns wait4: it reaps the spawner too, so the
	// harness never calls exec.Cmd.Wait.
	h.reaper.Add(1)
	go h.reap()
	return h, nil
}

func (h *harness) receive() {
	buf := make([]byte, 512)
	for {
		n, _, err := unix.Recvfrom(h.sock, buf, 0)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return // closed
		}
		select {
		case h.reports <- strings.Fields(string(buf[:n])):
		default: // nobody waiting: a stray report from a timed-out run
		}
	}
}

// reap waits for any child: the spawner, and every orphan re-parented here.
func (h *harness) reap() {
	defer h.reaper.Done()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		h.mu.Lock()
		if err == nil {
			h.reaped[pid] = true
			h.cond.Broadcast()
		}
		done := h.done
		h.mu.Unlock()
		switch {
		case err == unix.EINTR || err == nil:
		case done:
			return
		default: // ECHILD: nothing to reap right now
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// waitReaped waits until pid has been reaped, up to the deadline.
func (h *harness) waitReaped(pid int, deadline time.Time) bool {
	t := time.AfterFunc(time.Until(deadline), func() { h.mu.Lock(); h.cond.Broadcast(); h.mu.Unlock() })
	defer t.Stop()
	h.mu.Lock()
	defer h.mu.Unlock()
	for !h.reaped[pid] && time.Now().Before(deadline) {
		h.cond.Wait()
	}
	ok := h.reaped[pid]
	delete(h.reaped, pid)
	return ok
}

// run runs one case once, by its kind; when it returns, every process of
// the run is gone.
func (h *harness) run(c benchCase) (sample, error) {
	deadline := time.Now().Add(20*time.Second + 6*c.init)
	var s sample
	var err error
	switch c.v.kind {
	case kindStart:
		s, err = h.runStart(c, deadline)
	case kindResponse:
		s, err = h.runResponse(c, deadline)
	case kindRestart:
		s, err = h.runRestart(c, deadline)
	case kindFork:
		s, err = h.runFork(c, deadline)
	case kindCommand:
		s, err = h.runCommand(c, deadline)
	case kindRun:
		s, err = h.runRun(c, deadline)
	}
	if err != nil {
		h.killAll()
		return s, fmt.Errorf("%s: %w", c, err)
	}
	// Intermediate processes (godaemon's first child) may still be on
	// their way out: the next run starts when none is left.
	for len(h.children()) > 0 {
		if time.Now().After(deadline) {
			h.killAll()
			return s, fmt.Errorf("%s: processes left behind", c)
		}
		time.Sleep(200 * time.Microsecond)
	}
	return s, nil
}

// runStart: spawn the launcher, wait for it to return and for the report,
// then for the daemon to exit.
func (h *harness) runStart(c benchCase, deadline time.Time) (sample, error) {
	mode := "run"
	if c.v.setsid {
		mode = "setsid"
	}
	token := h.token()
	l, err := h.launch(mode, h.argv(c), h.env(c, token), token, deadline)
	if err != nil {
		return sample{}, err
	}
	s := l.sample()
	if c.v.daemon {
		if s.daemonPID == s.launcherPID {
			return s, fmt.Errorf("reported from the launcher (pid %d), not a daemon", s.daemonPID)
		}
		if !h.waitReaped(s.daemonPID, deadline) {
			return s, fmt.Errorf("daemon %d did not exit", s.daemonPID)
		}
	}
	return s, nil
}

// runResponse: start the server, the spawner's client polls it from the
// launcher's return (from the spawn for a server that does not
// daemonize) to the first HTTP 200; then kill the server.
func (h *harness) runResponse(c benchCase, deadline time.Time) (sample, error) {
	port, err := freePort()
	if err != nil {
		return sample{}, err
	}
	token := h.token()
	l, err := h.startServer(c, port, "", token, deadline)
	if err != nil {
		return sample{}, err
	}
	s := l.sample()
	return s, h.stopServer(c, s, deadline)
}

// startServer starts c's server on port (with pidfile if not "") and
// waits for its first 200.
func (h *harness) startServer(c benchCase, port int, pidfile, token string, deadline time.Time) (launched, error) {
	env := h.env(c, token, "BENCH_PORT="+strconv.Itoa(port))
	if c.v.listen {
		env = append(env, "CDAEMON_LISTEN=tcp:127.0.0.1:"+strconv.Itoa(port))
	}
	if pidfile != "" {
		env = append(env, "CDAEMON_PIDFILE="+pidfile, "BENCH_PIDFILE="+pidfile)
	}
	mode := "http:" + strconv.Itoa(port)
	switch {
	case c.v.fg && c.v.setsid:
		mode = "http-fg-setsid:" + strconv.Itoa(port)
	case c.v.fg:
		mode = "http-fg:" + strconv.Itoa(port)
	}
	argv := h.argv(c)
	if c.v.kind == kindRun {
		argv = h.runArgv(c, pidfile)
	}
	l, err := h.launch(mode, argv, env, token, deadline)
	if err != nil {
		return l, err
	}
	if atoi64(l.a[5]) == 0 {
		return l, fmt.Errorf("no HTTP 200 from 127.0.0.1:%d: %s", port, h.tail())
	}
	if c.v.daemon && atoi(l.rep[2]) == atoi(l.a[0]) {
		return l, fmt.Errorf("served from the launcher (pid %s), not a daemon", l.a[0])
	}
	return l, nil
}

// stopServer kills the server of s and waits until it is gone: the
// daemon, reaped here, or the undaemonized server, reaped by the spawner.
func (h *harness) stopServer(c benchCase, s sample, deadline time.Time) error {
	if c.v.fg {
		unix.Kill(s.launcherPID, unix.SIGKILL)
		_, err := h.answer(deadline) // the spawner reaped it
		return err
	}
	unix.Kill(s.daemonPID, unix.SIGKILL)
	if !h.waitReaped(s.daemonPID, deadline) {
		return fmt.Errorf("daemon %d did not exit", s.daemonPID)
	}
	return nil
}

// runRestart: start a server (not timed), then time the stop command and
// a new start on the same port and pidfile until the new instance's
// first 200.
func (h *harness) runRestart(c benchCase, deadline time.Time) (sample, error) {
	port, err := freePort()
	if err != nil {
		return sample{}, err
	}
	pidfile := filepath.Join(h.runDir, "restart-"+strconv.Itoa(h.seq)+".pid")
	defer os.Remove(pidfile)
	token := h.token()
	old, err := h.startServer(c, port, pidfile, token, deadline)
	if err != nil {
		return sample{}, fmt.Errorf("first start: %w", err)
	}
	oldPID := atoi(old.rep[2])

	var stop launched
	switch c.v.stop {
	case "cdaemon":
		stop, err = h.launch("run", []string{h.bins[c.v.cmd], "stop", pidfile}, []string{"PATH=/usr/local/bin:/usr/bin:/bin"}, "", deadline)
	case "kill":
		stop, err = h.launch("kill:"+pidfile, nil, nil, "", deadline)
	}
	if err != nil {
		return sample{}, fmt.Errorf("stop: %w", err)
	}
	if !h.waitReaped(oldPID, deadline) {
		return sample{}, fmt.Errorf("the first instance %d did not exit after the stop", oldPID)
	}
	token = h.token()
	l, err := h.startServer(c, port, pidfile, token, deadline)
	if err != nil {
		return sample{}, fmt.Errorf("second start: %w", err)
	}
	s := l.sample()
	s.stop0, s.stop1 = atoi64(stop.a[1]), atoi64(stop.a[2])
	return s, h.stopServer(c, s, deadline)
}

// runCommand: /bin/true alone; or a daemon started (not timed) on a port
// and pidfile, then the command timed from its spawn to its exit (which
// must be 0: running, stopped), then the daemon killed (status) or waited
// for (stop).
func (h *harness) runCommand(c benchCase, deadline time.Time) (sample, error) {
	if c.v.action == "" {
		l, err := h.launch("run", h.argv(c), []string{"PATH=/usr/local/bin:/usr/bin:/bin"}, "", deadline)
		return l.sample(), err
	}
	port, err := freePort()
	if err != nil {
		return sample{}, err
	}
	pidfile := filepath.Join(h.runDir, "command-"+strconv.Itoa(h.seq)+".pid")
	defer os.Remove(pidfile)
	d, err := h.startServer(c, port, pidfile, h.token(), deadline)
	if err != nil {
		return sample{}, fmt.Errorf("start: %w", err)
	}
	ds := d.sample()
	var l launched
	if c.v.stop == "kill" {
		l, err = h.launch("kill:"+pidfile, nil, nil, "", deadline)
	} else {
		l, err = h.launch("run", []string{h.bins[c.v.cmd], c.v.action, pidfile}, []string{"PATH=/usr/local/bin:/usr/bin:/bin"}, "", deadline)
	}
	if err != nil {
		h.stopServer(c, ds, deadline)
		return sample{}, fmt.Errorf("%s: %w", c.v.action, err)
	}
	s := l.sample()
	if c.v.action == "status" {
		return s, h.stopServer(c, ds, deadline)
	}
	if !h.waitReaped(ds.daemonPID, deadline) {
		return s, fmt.Errorf("the daemon %d did not exit after the stop", ds.daemonPID)
	}
	return s, nil
}

// runFork: the fork-cost program at c.mem MiB.
func (h *harness) runFork(c benchCase, deadline time.Time) (sample, error) {
	token := h.token()
	l, err := h.launch("run", []string{h.bins[c.v.prog], strconv.Itoa(c.mem)}, h.env(c, token), token, deadline)
	if err != nil {
		return sample{}, err
	}
	if len(l.rep) != 10 {
		return sample{}, fmt.Errorf("forkcost reported %q", l.rep)
	}
	s := l.sample()
	s.forkNs, s.writesNs, s.vforkNs, s.spawnNs, s.rssKB = atoi64(l.rep[5]), atoi64(l.rep[6]), atoi64(l.rep[7]), atoi64(l.rep[8]), atoi64(l.rep[9])
	return s, nil
}

func (h *harness) token() string {
	h.seq++
	return strconv.Itoa(h.seq)
}

func (h *harness) argv(c benchCase) []string {
	return append([]string{h.bins[c.binary()]}, c.v.args...)
}

func (h *harness) env(c benchCase, token string, extra ...string) []string {
	env := []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"BENCH_SOCK=" + filepath.Join(h.dir, "report.sock"),
		"BENCH_TOKEN=" + token,
		"BENCH_INIT=" + c.init.String(),
	}
	return append(append(env, c.v.env...), extra...)
}

// pidfileParent is where the restart and command cases put their
// pidfiles (in a directory of their own): /run or /dev/shm if that is a
// tmpfs, as /run is where a system keeps pidfiles; "" for the temp dir.
// On a disk file system the last close of a removed file frees its
// blocks: on this project's VM (ext4 mounted with discard) that close took
// 0.4 to 2 ms, paid by whichever process removes the pidfile (cdaemon stop
// does, go-daemon's operator does not): the disk's cost, not the
// daemonizer's.
func pidfileParent() string {
	for _, d := range []string{"/run", "/dev/shm"} {
		var st unix.Statfs_t
		if unix.Statfs(d, &st) == nil && st.Type == unix.TMPFS_MAGIC && unix.Access(d, unix.W_OK) == nil {
			return d
		}
	}
	return ""
}

// freePort is a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// launched is one request to the spawner and what came back: its answer
// (pid t_spawn t_return status maxrss t_first refused) and the program's
// report (token t_main pid sid vmhwm [extra...]), nil if none was awaited.
type launched struct {
	a, rep []string
}

func (l launched) sample() sample {
	s := sample{launcherPID: atoi(l.a[0]), spawn: atoi64(l.a[1]), ret: atoi64(l.a[2]), launcherRSS: atoi64(l.a[4]),
		first: atoi64(l.a[5]), refused: atoi(l.a[6])}
	if l.rep != nil {
		s.main, s.daemonPID, s.daemonSID, s.daemonRSS = atoi64(l.rep[1]), atoi(l.rep[2]), atoi(l.rep[3]), atoi64(l.rep[4])
		if len(l.rep) >= 6 { // not from the C programs
			s.runDelay = atoi64(l.rep[5])
		}
		if len(l.rep) == 7 {
			s.entry = atoi64(l.rep[6])
		}
	}
	return s
}

// launch sends one request to the spawner and waits for its answer and,
// if token is not "", for the report tagged with it. A program that did
// not exit 0 is an error.
func (h *harness) launch(mode string, argv, env []string, token string, deadline time.Time) (launched, error) {
	var l launched
	if err := h.request(mode, argv, env); err != nil {
		return l, err
	}
	for l.a == nil || (token != "" && l.rep == nil) {
		select {
		case a := <-h.answers:
			if a.err != nil {
				return l, fmt.Errorf("spawner: %v (see %s)", a.err, h.log)
			}
			if len(a.f) != 7 {
				return l, fmt.Errorf("spawner said %q", a.f)
			}
			if st := unix.WaitStatus(atoi(a.f[3])); !st.Exited() || st.ExitStatus() != 0 {
				return l, fmt.Errorf("%s ended with %v: %s", argv, describe(st), h.tail())
			}
			l.a = a.f
		case r := <-h.reports:
			if len(r) >= 5 && r[0] == token {
				l.rep = r
			}
		case <-time.After(time.Until(deadline)):
			return l, fmt.Errorf("no answer or no report by the deadline: %s", h.tail())
		}
	}
	return l, nil
}

// answer waits for the spawner's next answer line.
func (h *harness) answer(deadline time.Time) ([]string, error) {
	select {
	case a := <-h.answers:
		return a.f, a.err
	case <-time.After(time.Until(deadline)):
		return nil, fmt.Errorf("no answer from the spawner by the deadline")
	}
}

func (h *harness) request(mode string, argv, env []string) error {
	b := append([]byte(mode), 0)
	for _, v := range [][]string{argv, env} {
		b = append(b, strconv.Itoa(len(v))...)
		b = append(b, 0)
		for _, s := range v {
			b = append(b, s...)
			b = append(b, 0)
		}
	}
	_, err := h.req.Write(b)
	return err
}

// children lists this process's children other than the spawner: the
// orphans of the runs.
func (h *harness) children() []int {
	var kids []int
	self := os.Getpid()
	for pid, ppid := range processes() {
		if ppid == self && pid != h.spawn.Process.Pid {
			kids = append(kids, pid)
		}
	}
	return kids
}

// killAll kills every descendant but the spawner (which is idle between
// runs): launchers, intermediates, daemons in their own sessions. Being a
// subreaper, every one of them is a descendant.
func (h *harness) killAll() {
	for i := 0; i < 50; i++ {
		procs := processes()
		n := 0
		for pid := range procs {
			if pid != h.spawn.Process.Pid && descends(procs, pid, os.Getpid()) {
				unix.Kill(pid, unix.SIGKILL)
				n++
			}
		}
		if n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// close stops the spawner and kills and reaps whatever is left.
func (h *harness) close() {
	if h.req != nil {
		h.req.Close()
	}
	if h.spawn != nil && h.spawn.Process != nil {
		if !h.waitReaped(h.spawn.Process.Pid, time.Now().Add(2*time.Second)) {
			h.spawn.Process.Kill()
		}
	}
	h.killAll()
	h.mu.Lock()
	h.done = true
	h.mu.Unlock()
	for end := time.Now().Add(5 * time.Second); len(processChildren()) > 0 && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond) // the reaper takes them
	}
	h.reaper.Wait()
	unix.Close(h.sock)
	if h.runDir != h.dir {
		os.RemoveAll(h.runDir)
	}
}

// processes maps every pid to its parent, from /proc.
func processes() map[int]int {
	m := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 {
			m[pid] = atoi(f[1])
		}
	}
	return m
}

func processChildren() []int {
	var kids []int
	for pid, ppid := range processes() {
		if ppid == os.Getpid() {
			kids = append(kids, pid)
		}
	}
	return kids
}

func descends(procs map[int]int, pid, ancestor int) bool {
	for i := 0; i < 64 && pid > 1; i++ {
		pid = procs[pid]
		if pid == ancestor {
			return true
		}
	}
	return false
}

// tail is the end of the programs' output, for error messages.
func (h *harness) tail() string {
	b, _ := os.ReadFile(h.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	if len(b) == 0 {
		return "no output from the programs"
	}
	return "the programs said:\n" + string(b)
}

func describe(st unix.WaitStatus) string {
	if st.Signaled() {
		return "signal " + st.Signal().String()
	}
	return "exit status " + strconv.Itoa(st.ExitStatus())
}

func atoi(s string) int     { n, _ := strconv.Atoi(s); return n }
func atoi64(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }
