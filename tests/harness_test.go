package tests

// The harness: build the test programs once, run them as a user would,
// find the daemon they leave behind, and make sure nothing survives a test.
//
// The test binary is a child subreaper, so every daemon a test starts is
// re-parented to it when its launcher exits: the test can then wait for it
// and no daemon ever escapes to init.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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
	if out, err := goBuild(probe, "./testdata/probe"); err != nil {
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

// goBuild builds a package of this module; extra arguments go before it.
func goBuild(out, pkg string, args ...string) ([]byte, error) {
	cmd := exec.Command("go", append(append([]string{"build", "-o", out}, args...), pkg)...)
	return cmd.CombinedOutput()
}

// killChildren kills and reaps whatever is still our child (daemons a test
// forgot) and returns their pids.
func killChildren() []int {
	var left []int
	for _, pid := range children(os.Getpid()) {
		syscall.Kill(pid, syscall.SIGKILL)
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, 0, nil)
		left = append(left, pid)
	}
	return left
}

// children lists the pids whose parent is ppid.
func children(ppid int) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := procStat(pid); err == nil && st.PPID == ppid {
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

// Run is one start of a program, as a shell would do it.
type Run struct {
	Status int    // the launcher's exit status
	Stderr string // what it printed on the terminal
	Stdout string
	Token  string // PROBE_TOKEN in the program's environment
	Report string // path the probe writes its report to
	Dir    string // the test's temp dir, also the launcher's cwd
}

// Launch runs bin with env (on top of a clean environment) and args in a
// fresh temp dir, waits for the launcher to exit, and registers a cleanup
// that kills every process carrying this run's token. The probe's -report
// flag is added when bin is the probe.
func Launch(t *testing.T, bin string, env []string, args ...string) *Run {
	t.Helper()
	r := &Run{Dir: t.TempDir(), Token: fmt.Sprintf("%d-%d", os.Getpid(), tokens.Add(1))}
	r.Report = filepath.Join(r.Dir, "report.json")
	if bin == probe {
		args = append([]string{"-report", r.Report}, args...)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = r.Dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "PROBE_TOKEN=" + r.Token}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t.Cleanup(func() { r.Kill(t) })
	err := cmd.Run()
	r.Stdout, r.Stderr = stdout.String(), stderr.String()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.Status = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.Status = 128 + int(ws.Signal())
		}
	case err != nil:
		t.Fatalf("running %s: %v", bin, err)
	}
	return r
}

// Procs lists the live processes of this run (those carrying its token).
func (r *Run) Procs() []int {
	var pids []int
	want := []byte("PROBE_TOKEN=" + r.Token + "\x00")
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil || !bytes.Contains(env, want) {
			continue
		}
		if st, err := procStat(pid); err == nil && st.State != "Z" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Kill kills every process of this run and reaps the ones that are ours.
func (r *Run) Kill(t *testing.T) {
	for _, pid := range r.Procs() {
		syscall.Kill(pid, syscall.SIGKILL)
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, 0, nil)
	}
	// Zombies re-parented to us: reap them too.
	for _, pid := range children(os.Getpid()) {
		if st, err := procStat(pid); err == nil && st.State == "Z" {
			var ws syscall.WaitStatus
			syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		}
	}
}

// Stop sends SIGTERM to the daemon and waits for it to exit; it returns
// the daemon's wait status.
func (r *Run) Stop(t *testing.T, pid int) syscall.WaitStatus {
	t.Helper()
	require.NoError(t, syscall.Kill(pid, syscall.SIGTERM))
	var ws syscall.WaitStatus
	_, err := syscall.Wait4(pid, &ws, 0, nil)
	require.NoError(t, err, "the daemon %d should be our child (we are its subreaper)", pid)
	return ws
}

// eventually polls cond until it holds. The bound only keeps a broken
// build from hanging the suite; no test asserts how long anything takes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
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
	return rep
}

// RequireGone asserts that no process of this run is alive.
func (r *Run) RequireGone(t *testing.T) {
	t.Helper()
	require.Empty(t, r.Procs(), "processes of this run are still alive")
}
