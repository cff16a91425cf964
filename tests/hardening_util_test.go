package tests

// Helpers for the hardening tests (issue 4): building program variants
// and C helpers once per test binary, and checking that a run left
// nothing behind. Programs are started with the harness's Start/Launch.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var (
	hbuildMu   sync.Mutex
	hbuildDone = map[string]error{}
	hbuildOut  = map[string]string{}
)

// hbuild runs a build command once per test binary and returns out, the
// path it produces in binDir. A failed build fails every test that needs it.
func hbuild(t *testing.T, out string, env []string, name string, args ...string) string {
	t.Helper()
	path := filepath.Join(binDir, out)
	hbuildMu.Lock()
	defer hbuildMu.Unlock()
	err, done := hbuildDone[out]
	if !done {
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), env...)
		b, e := cmd.CombinedOutput()
		err, hbuildOut[out] = e, string(b)
		hbuildDone[out] = err
	}
	require.NoError(t, err, "building %s: %s %s\n%s", out, name, strings.Join(args, " "), hbuildOut[out])
	return path
}

// goBuildVariant builds a package of this module with extra go build flags.
func goBuildVariant(t *testing.T, out, pkg string, env []string, flags ...string) string {
	t.Helper()
	args := append(append([]string{"build", "-o", filepath.Join(binDir, out)}, flags...), pkg)
	return hbuild(t, out, env, "go", args...)
}

// faultShim and threadShim are the LD_PRELOAD shims in testdata/hardening/shim.
func faultShim(t *testing.T) string {
	return hbuild(t, "fault.so", nil, "gcc", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
		"-o", filepath.Join(binDir, "fault.so"), "testdata/hardening/shim/fault.c", "-ldl")
}

// atforkShim builds the LD_PRELOAD shim that logs the fork handlers that
// run (testdata/hardening/shim/atfork.c) to $SHIM_ATFORK_LOG.
func atforkShim(t *testing.T) string {
	return hbuild(t, "atfork.so", nil, "gcc", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
		"-pthread", "-o", filepath.Join(binDir, "atfork.so"), "testdata/hardening/shim/atfork.c")
}

func threadShim(t *testing.T) string {
	return hbuild(t, "thread.so", nil, "gcc", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
		"-pthread", "-o", filepath.Join(binDir, "thread.so"), "testdata/hardening/shim/thread.c")
}

// needTool finds a tool that a fresh machine may lack. Under CI=true a
// missing tool fails the test (CI must install the package); elsewhere the
// test is skipped with the command that installs it.
func needTool(t *testing.T, tool, aptPkg string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed: CI must run `apt-get install -y %s`", tool, aptPkg)
	}
	t.Skipf("%s is not installed (apt-get install %s); skipping", tool, aptPkg)
	return ""
}

// waitBounded waits for the launcher, but kills it if it has not exited
// after limit: a launcher that hangs is the bug the caller tests for. The
// bound is a hang detector, not a timing assertion.
func waitBounded(t *testing.T, r *Run, limit time.Duration) (hung bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !r.Exited(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			hung = true
			syscall.Kill(r.Launcher, syscall.SIGKILL)
			break
		}
	}
	r.Wait(t)
	return hung
}

// pidFromFile reads a pidfile: a decimal pid and a newline.
func pidFromFile(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Regexp(t, `^[1-9][0-9]*\n$`, string(b), "pidfile %s", path)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// requireNothingLeft asserts a run left no process (alive or zombie) and
// that none of the given pids still exists, not even as a zombie: every
// process the test made must be reaped.
func requireNothingLeft(t *testing.T, r *Run, pids ...int) {
	t.Helper()
	require.Empty(t, r.Procs(), "processes of this run are still alive")
	for _, pid := range pids {
		if pid <= 0 {
			continue
		}
		if st, err := procStat(pid); err == nil {
			t.Fatalf("process %d is still there (state %s, parent %d)", pid, st.State, st.PPID)
		}
	}
}

// zombieChildren lists our children that are zombies: processes some
// code forgot to reap.
func zombieChildren() []int {
	var z []int
	for _, pid := range children(os.Getpid()) {
		if st, err := procStat(pid); err == nil && st.State == "Z" {
			z = append(z, pid)
		}
	}
	return z
}

// noNewZombies snapshots our zombie children and returns a check that no
// new one appeared since (a leftover of another test is not this one's).
func noNewZombies(t *testing.T) func() {
	before := map[int]bool{}
	for _, pid := range zombieChildren() {
		before[pid] = true
	}
	// Tests run in parallel, and each is our child until os/exec reaps
	// it: a zombie another test is about to reap is not a leak. A leaked
	// one nobody will reap, so it is still there after the grace.
	added := func() []int {
		var z []int
		for _, pid := range zombieChildren() {
			if !before[pid] {
				z = append(z, pid)
			}
		}
		return z
	}
	return func() {
		t.Helper()
		z := added()
		for deadline := time.Now().Add(10 * time.Second); len(z) > 0 && time.Now().Before(deadline); z = added() {
			time.Sleep(20 * time.Millisecond)
		}
		require.Empty(t, z, "zombies left: a process was not reaped")
	}
}

// requireNoFile asserts path does not exist.
func requireNoFile(t *testing.T, path, why string) {
	t.Helper()
	_, err := os.Lstat(path)
	require.True(t, os.IsNotExist(err), "%s should not exist (%s): %v", path, why, err)
}

// slow skips a test that builds many variants or runs hundreds of starts
// under go test -short, for a quick run; CI and the README's command run
// everything.
func slow(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("slow; runs without -short")
	}
}
