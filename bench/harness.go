package main

import (
	"bufio"
	"fmt"
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
	launcherPID      int
	daemonPID        int
	daemonSID        int
	launcherRSS      int64 // kB: the launcher's ru_maxrss
	daemonRSS        int64 // kB: the daemon's VmHWM
}

func (s sample) toMain() int64 { return s.main - s.spawn }
func (s sample) toRet() int64  { return s.ret - s.spawn }

// A harness runs programs one at a time through the spawner and collects
// their reports. It is a child subreaper: every daemon, every intermediate
// process, is re-parented to it when its parent exits, and it reaps them.
type harness struct {
	dir   string // temp dir: the socket, the spawner's log
	bins  map[string]string
	sock  int
	spawn *exec.Cmd
	req   *os.File
	resp  *bufio.Reader
	log   string
	seq   int

	reports chan []string

	mu     sync.Mutex
	cond   *sync.Cond
	reaped map[int]bool
	done   bool
	reaper sync.WaitGroup
}

func newHarness(dir string, bins map[string]string) (*harness, error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("prctl PR_SET_CHILD_SUBREAPER: %w", err)
	}
	h := &harness{dir: dir, bins: bins, reports: make(chan []string, 16), reaped: map[int]bool{}}
	h.cond = sync.NewCond(&h.mu)

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
	h.req, h.resp = inW, bufio.NewReader(outR)
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

// run runs one case once: spawn the launcher, wait for it to return and
// for the report, then for every process of the run to be gone.
func (h *harness) run(c benchCase) (sample, error) {
	h.seq++
	token := strconv.Itoa(h.seq)
	var env []string
	if c.v.setsid {
		env = append(env, "BENCH_SPAWN_SETSID=1") // first: the spawner looks there
	}
	env = append(env,
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"BENCH_SOCK="+filepath.Join(h.dir, "report.sock"),
		"BENCH_TOKEN="+token,
		"BENCH_INIT="+c.init.String(),
	)
	env = append(env, c.v.env...)
	argv := append([]string{h.bins[c.binary()]}, c.v.args...)
	timeout := 20*time.Second + 6*c.init
	deadline := time.Now().Add(timeout)

	var s sample
	if err := h.request(argv, env); err != nil {
		return s, err
	}
	// The spawner answers when the launcher has exited.
	type answer struct {
		f   []string
		err error
	}
	ans := make(chan answer, 1)
	go func() {
		line, err := h.resp.ReadString('\n')
		ans <- answer{strings.Fields(line), err}
	}()
	var rep []string
	var a answer
	for rep == nil || a.f == nil {
		select {
		case a = <-ans:
			if a.err != nil {
				return s, fmt.Errorf("%s: spawner: %v (see %s)", c, a.err, h.log)
			}
			if len(a.f) != 5 {
				return s, fmt.Errorf("%s: spawner said %q", c, a.f)
			}
			if st := unix.WaitStatus(atoi(a.f[3])); !st.Exited() || st.ExitStatus() != 0 {
				h.killAll()
				return s, fmt.Errorf("%s: launcher ended with %v: %s", c, describe(st), h.tail())
			}
		case r := <-h.reports:
			if len(r) >= 5 && r[0] == token {
				rep = r
			}
		case <-time.After(time.Until(deadline)):
			h.killAll()
			return s, fmt.Errorf("%s: no report within %v: %s", c, timeout, h.tail())
		}
	}
	s.launcherPID = atoi(a.f[0])
	s.spawn, s.ret = atoi64(a.f[1]), atoi64(a.f[2])
	s.launcherRSS = atoi64(a.f[4])
	s.main, s.daemonPID, s.daemonSID, s.daemonRSS = atoi64(rep[1]), atoi(rep[2]), atoi(rep[3]), atoi64(rep[4])
	if len(rep) > 5 {
		s.entry = atoi64(rep[5])
	}
	if c.v.daemon {
		if s.daemonPID == s.launcherPID {
			return s, fmt.Errorf("%s: reported from the launcher (pid %d), not a daemon", c, s.daemonPID)
		}
		if !h.waitReaped(s.daemonPID, deadline) {
			h.killAll()
			return s, fmt.Errorf("%s: daemon %d did not exit", c, s.daemonPID)
		}
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

func (h *harness) request(argv, env []string) error {
	var b []byte
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
