package tests

// The harness: build the test programs once, run them as a user would,
// find the daemon they leave behind, and make sure nothing survives a test.
//
// The test binary is a child subreaper, so every daemon a test starts is
// re-parented to it when its launcher exits: the test can then wait for it
// and no daemon ever escapes to init. Tests run in parallel, so a run only
// ever reaps processes it knows to be its own: another test may be waiting
// for its daemon at the same moment.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cdaemon/cdaemon"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Report mirrors testdata/probe's Report.
type Report struct {
	PID, PPID, SID, PGRP int
	TTYNr, TPGID         int
	DevTTYErr            string
	PtyCTTY              bool
	PtyErr               string
	FDs                  map[int]string
	FDFlags              map[int]int
	Umask                int
	Cwd                  string
	SigIgn, SigBlk       string
	Env                  []string
	Info                 cdaemon.State
	Runtime              map[string]string
	Now                  time.Duration
	StartSigBlk          uint64
	StartSigIgn          uint64
	Rseq                 int
	Setuid0              string
	Listeners            []string
	ListenersErr         string
	ListenersTwice       bool
	Activation           []string
}

var (
	binDir string // built programs
	probe  string // path of the probe binary
	tokens atomic.Int64
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if cdaemon.Daemonized() {
		// Our launcher waits for this (foreground.go): fail the start,
		// so go test fails rather than pass having run nothing.
		cdaemon.Fail(errors.New("the tests' own test binary daemonized, so no test can " +
			"report: CDAEMON=on in the environment, or the cdaemon_wanted hook was ignored"))
	}
	// Started as a background job of a non-interactive shell, go test
	// and so this binary have SIGINT and SIGQUIT ignored, and every
	// program a test runs would inherit that (a launcher keeps an
	// ignored stop signal ignored, as it must). A handler instead is
	// reset to the default by exec: programs start as from a terminal.
	for _, sig := range []os.Signal{syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP, syscall.SIGTERM} {
		if signal.Ignored(sig) {
			signal.Notify(make(chan os.Signal, 1), sig)
		}
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "tests: cannot become a child subreaper:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "cdaemon-tests-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	probe = filepath.Join(dir, "probe")
	if out, err := goBuild(probe, "./testdata/probe", nil); err != nil {
		fmt.Fprintf(os.Stderr, "tests: building the probe: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	if left := killChildren(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "tests: processes were left running and have been killed: %v\n", left)
		code = 1
	}
	return code
}

// goBuild builds a package of this module with extra environment; extra
// arguments go before the package.
func goBuild(out, pkg string, env []string, args ...string) ([]byte, error) {
	cmd := exec.Command("go", append(append([]string{"build", "-o", out}, args...), pkg)...)
	cmd.Env = append(os.Environ(), env...)
	return cmd.CombinedOutput()
}

var builds sync.Map // binary name -> *build

type build struct {
	once sync.Once
	out  []byte
	err  error
}

// program builds pkg once per suite as binDir/name, with extra build
// environment and arguments, and returns the binary's path.
func program(t *testing.T, name, pkg string, env []string, args ...string) string {
	t.Helper()
	path := filepath.Join(binDir, name)
	b, _ := builds.LoadOrStore(name, &build{})
	bb := b.(*build)
	bb.once.Do(func() { bb.out, bb.err = goBuild(path, pkg, env, args...) })
	require.NoError(t, bb.err, "building %s:\n%s", pkg, bb.out)
	return path
}

// killChildren kills and reaps whatever is still our child (daemons a test
// forgot) and describes them: pid, state and name.
func killChildren() []string {
	var left []string
	for _, pid := range children(os.Getpid()) {
		st, _ := procStat(pid)
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		syscall.Kill(pid, syscall.SIGKILL)
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, 0, nil)
		left = append(left, fmt.Sprintf("%d (%s %s)", pid, st.State, strings.TrimSpace(string(comm))))
	}
	return left
}

// children lists the pids whose parent is ppid.
func children(ppid int) []int {
	return processes(func(pid int, st Stat) bool { return st.PPID == ppid })
}

// processes lists the pids in /proc for which match holds.
func processes(match func(pid int, st Stat) bool) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := procStat(pid); err == nil && match(pid, st) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Stat is the part of /proc/PID/stat the tests look at.
type Stat struct {
	State                         string
	PPID, PGRP, SID, TTYNr, TPGID int
}

func procStat(pid int) (Stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Stat{}, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	atoi := func(i int) int { n, _ := strconv.Atoi(f[i]); return n }
	return Stat{State: f[0], PPID: atoi(1), PGRP: atoi(2), SID: atoi(3), TTYNr: atoi(4), TPGID: atoi(5)}, nil
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	st, err := procStat(pid)
	return err == nil && st.State != "Z"
}

// procStatus reads /proc/PID/status: "Umask", "SigIgn", "Threads"...
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	m := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// FD is one open descriptor of a process, seen from outside.
type FD struct {
	Target string      // readlink of /proc/PID/fd/N
	Info   os.FileInfo // stat of what it refers to (nil for anon inodes gone)
	Flags  int         // open flags from /proc/PID/fdinfo/N (O_CLOEXEC included)
}

// procFDs lists the open descriptors of pid from outside.
func procFDs(t *testing.T, pid int) map[int]FD {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	fds := map[int]FD{}
	for _, e := range ents {
		n, _ := strconv.Atoi(e.Name())
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		fd := FD{Target: target}
		fd.Info, _ = os.Stat(filepath.Join(dir, e.Name()))
		if info, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%d", pid, n)); err == nil {
			for _, line := range strings.Split(string(info), "\n") {
				if v, ok := strings.CutPrefix(line, "flags:"); ok {
					f, _ := strconv.ParseInt(strings.TrimSpace(v), 8, 64)
					fd.Flags = int(f)
				}
			}
		}
		fds[n] = fd
	}
	return fds
}

// isDevNull reports whether fi is the character device 1,3.
func isDevNull(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && fi.Mode()&os.ModeCharDevice != 0 && st.Rdev == unix.Mkdev(1, 3)
}

// Opts says how to start a program; the zero value starts it plainly, in
// the run's temp dir, with stdout and stderr captured.
type Opts struct {
	Env   []string             // on top of PATH, PROBE_TOKEN and PROBE_REPORT
	Args  []string             // the program's arguments
	Shell string               // run first in sh: sh -c 'Shell; exec "$0" "$@"' prog args...
	Block []syscall.Signal     // signals blocked when the program starts
	Files []*os.File           // passed as descriptors 3, 4, ...
	Dir   string               // working directory instead of the run's temp dir
	Stdio *os.File             // stdin, stdout and stderr instead of /dev/null and pipes
	Attr  *syscall.SysProcAttr // session, namespaces...
}

// Run is one start of a program, as a shell would do it.
type Run struct {
	Status   int    // the launcher's exit status
	Stderr   string // what it printed on the terminal
	Stdout   string
	Token    string // PROBE_TOKEN in the program's environment
	Report   string // path the probe writes its report to (PROBE_REPORT)
	Dir      string // the test's temp dir, by default the launcher's cwd
	Launcher int    // pid of the process started

	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	waitErr        error
	done           chan struct{}

	mu   sync.Mutex
	seen map[int]int // pid -> pidfd of this run's processes: only these are ever reaped
}

// Launch runs bin with env (on top of a clean environment) and args in a
// fresh temp dir and waits for the launcher to exit.
func Launch(t *testing.T, bin string, env []string, args ...string) *Run {
	t.Helper()
	return LaunchOpts(t, bin, Opts{Env: env, Args: args})
}

// LaunchOpts runs bin as o says and waits for the launcher to exit.
func LaunchOpts(t *testing.T, bin string, o Opts) *Run {
	t.Helper()
	r := Spawn(t, bin, o)
	r.Wait(t)
	return r
}

// Spawn starts bin as o says and returns at once; Wait waits for the
// launcher. A cleanup kills every process carrying this run's token.
func Spawn(t *testing.T, bin string, o Opts) *Run {
	t.Helper()
	r := &Run{Dir: t.TempDir(), Token: fmt.Sprintf("%d-%d", os.Getpid(), tokens.Add(1)),
		done: make(chan struct{})}
	r.Report = filepath.Join(r.Dir, "report.json")
	cmd := exec.Command(bin, o.Args...)
	if o.Shell != "" {
		cmd = exec.Command("/bin/sh", append([]string{"-c", o.Shell + `; exec "$0" "$@"`, bin}, o.Args...)...)
	}
	cmd.Dir = r.Dir
	if o.Dir != "" {
		cmd.Dir = o.Dir
	}
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "PROBE_TOKEN=" + r.Token,
		"PROBE_REPORT=" + r.Report}, o.Env...)
	if o.Stdio != nil {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = o.Stdio, o.Stdio, o.Stdio
	} else {
		cmd.Stdout, cmd.Stderr = &r.stdout, &r.stderr
		// A daemon that kept the launcher's stdout or stderr would make
		// a shell's $(...) hang; Wait then reports it instead of hanging.
		cmd.WaitDelay = hang
	}
	cmd.ExtraFiles = o.Files
	cmd.SysProcAttr = o.Attr
	r.cmd = cmd
	t.Cleanup(func() {
		r.Kill(t)
		<-r.done
	})
	err := startBlocked(cmd, o.Block)
	if err != nil {
		close(r.done)
		t.Fatalf("starting %s: %v", bin, err)
	}
	r.Launcher = cmd.Process.Pid
	go func() {
		r.waitErr = cmd.Wait()
		close(r.done)
	}()
	return r
}

// startBlocked starts cmd with sigs blocked. A child inherits the signal
// mask of the thread that forks it, so block them on a locked thread.
func startBlocked(cmd *exec.Cmd, sigs []syscall.Signal) error {
	if len(sigs) == 0 {
		return cmd.Start()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var set, old unix.Sigset_t
	for _, s := range sigs {
		set.Val[(s-1)/64] |= 1 << ((uint(s) - 1) % 64)
	}
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, &old); err != nil {
		return err
	}
	defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	return cmd.Start()
}

// hang bounds waiting for a launcher or a state. No test asserts how long
// anything takes; the bound only turns a hang (a launcher that never
// returns, a daemon that never gets there) into a failure.
const hang = 60 * time.Second

// Wait waits for the launcher to exit and records its status and output.
func (r *Run) Wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(hang):
		r.cmd.Process.Kill()
		<-r.done
		t.Fatalf("the launcher did not exit (killed after %v); it said: %s", hang, r.stderr.String())
	}
	r.Stdout, r.Stderr = r.stdout.String(), r.stderr.String()
	var ee *exec.ExitError
	switch err := r.waitErr; {
	case errors.Is(err, exec.ErrWaitDelay):
		t.Fatalf("the launcher exited but its stdout or stderr stayed open: a process it left kept them")
	case errors.As(err, &ee):
		r.Status = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.Status = 128 + int(ws.Signal())
		}
	case err != nil:
		t.Fatalf("waiting for the launcher: %v", err)
	}
}

// Exited reports whether the launcher has exited (without waiting).
func (r *Run) Exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// Track records pids as this run's, so Kill kills and reaps them whatever
// they became (a daemon that exited by itself, a child re-parented to us,
// a middle process orphaned by a killed launcher). A pid counts only if
// it carries the run's token, or has none left (it is exiting or a zombie)
// and is a child of ours or of the launcher, unreaped, so not reused. It
// is then held by a pidfd: a pid reused later is never mistaken for it.
func (r *Run) Track(pids ...int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[int]int{}
	}
	for _, pid := range pids {
		if _, ok := r.seen[pid]; ok || pid <= 0 || pid == r.Launcher || !r.owns(pid) {
			continue
		}
		if fd, err := unix.PidfdOpen(pid, 0); err == nil && r.owns(pid) {
			r.seen[pid] = fd
		} else if err == nil {
			unix.Close(fd)
		}
	}
}

// owns reports whether pid is this run's process now.
func (r *Run) owns(pid int) bool {
	st, err := procStat(pid)
	if err != nil {
		return false
	}
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if st.State == "Z" || err != nil || len(env) == 0 {
		return st.PPID == os.Getpid() || (r.Launcher > 0 && st.PPID == r.Launcher)
	}
	return bytes.Contains(env, []byte("PROBE_TOKEN="+r.Token+"\x00"))
}

// Procs lists the live processes of this run (those carrying its token).
func (r *Run) Procs() []int {
	want := []byte("PROBE_TOKEN=" + r.Token + "\x00")
	pids := processes(func(pid int, _ Stat) bool {
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		return err == nil && bytes.Contains(env, want) && alive(pid)
	})
	r.Track(pids...)
	return pids
}

// Kill kills every process of this run and reaps the ones that are ours.
// The launcher is left to its Wait. Each process seen is waited for
// through its pidfd until it has exited, so none is missed while it dies
// (neither alive nor yet a zombie); by then the children of a dead parent
// are ours, so reaping the tracked zombies leaves nothing behind.
func (r *Run) Kill(t *testing.T) {
	defer r.untrack()
	for round := 0; round < 10; round++ {
		live := r.Procs()
		for _, pid := range live {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		r.mu.Lock()
		fds := make([]int, 0, len(r.seen))
		for _, fd := range r.seen {
			fds = append(fds, fd)
		}
		r.mu.Unlock()
		for _, fd := range fds {
			unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		}
		for _, fd := range fds {
			if !exited(fd) {
				t.Errorf("a process of run %s survives SIGKILL", r.Token)
			}
		}
		for _, fd := range fds {
			var si unix.Siginfo
			unix.Waitid(unix.P_PIDFD, fd, &si, unix.WEXITED|unix.WNOHANG, nil) // ECHILD: not ours
		}
		if len(live) == 0 {
			return
		}
	}
	t.Errorf("processes of run %s survive SIGKILL: %v", r.Token, r.Procs())
}

// exited waits until the process of pidfd fd has exited. The bound only
// keeps an unkillable process from hanging the suite.
func exited(fd int) bool {
	for deadline := time.Now().Add(hang); time.Now().Before(deadline); {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 1000)
		if n > 0 || (err != nil && err != unix.EINTR) {
			return true
		}
	}
	return false
}

// untrack closes the pidfds.
func (r *Run) untrack() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for pid, fd := range r.seen {
		unix.Close(fd)
		delete(r.seen, pid)
	}
}

// WaitExit waits for pid, a process of this run that is our child (a
// daemon whose launcher has exited), to end, and returns its status.
func (r *Run) WaitExit(t *testing.T, pid int) syscall.WaitStatus {
	t.Helper()
	var ws syscall.WaitStatus
	_, err := syscall.Wait4(pid, &ws, 0, nil)
	require.NoError(t, err, "the daemon %d should be our child (we are its subreaper)", pid)
	return ws
}

// Stop sends SIGTERM to the daemon and waits for it to exit; it returns
// the daemon's wait status.
func (r *Run) Stop(t *testing.T, pid int) syscall.WaitStatus {
	t.Helper()
	require.NoError(t, syscall.Kill(pid, syscall.SIGTERM))
	return r.WaitExit(t, pid)
}

// eventually polls cond until it holds, or fails the test after hang.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(hang); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("gave up waiting: %s", what)
}

// ReadReport waits for the probe's report and decodes it.
func (r *Run) ReadReport(t *testing.T) Report {
	t.Helper()
	var b []byte
	eventually(t, "the probe's report "+r.Report, func() bool {
		var err error
		b, err = os.ReadFile(r.Report)
		return err == nil
	})
	var rep Report
	require.NoError(t, json.Unmarshal(b, &rep))
	// The daemon, and the middle process whose pid is its session id.
	r.Track(rep.PID, rep.SID)
	return rep
}

// RequireGone asserts that no process of this run is alive.
func (r *Run) RequireGone(t *testing.T) {
	t.Helper()
	require.Empty(t, r.Procs(), "processes of this run are still alive")
}

// RequireStatus asserts the launcher's exit status, showing what it said.
func (r *Run) RequireStatus(t *testing.T, want int) {
	t.Helper()
	require.Equal(t, want, r.Status, "launcher stderr: %s", r.Stderr)
}

// readFile returns the content of path, failing the test if it is unreadable.
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}
