package tests

// Property 10 (the launcher exits only at the wait point) and the part of
// property 11 about starts that fail after the fork: the launcher's status
// says how, its stderr says why, and nothing is left behind.

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Where each wait point lies: a daemon that exits with 3 in main has
// already released its launcher with none and start, not with ready.
func TestWaitPointOrder(t *testing.T) {
	t.Parallel()
	for wait, status := range map[string]int{"none": 0, "start": 0, "ready": 3} {
		t.Run(wait, func(t *testing.T) {
			t.Parallel()
			r := Launch(t, probe, []string{"CDAEMON_WAIT=" + wait}, "-exit", "3")
			r.RequireStatus(t, status)
			pid := r.ReadReport(t).PID
			if status == 0 {
				ws := r.WaitExit(t, pid) // the daemon itself did exit 3
				assert.Equal(t, 3, ws.ExitStatus())
			}
		})
	}
}

// hold makes the probe's second constructor wait before the Go runtime
// starts until release is called.
func hold(t *testing.T) (env string, release func()) {
	path := filepath.Join(t.TempDir(), "hold")
	require.NoError(t, os.WriteFile(path, nil, 0o644))
	return "PROBE_HOLD=" + path, func() { os.Remove(path) }
}

// none: the launcher returns once the daemon exists and its pid is in the
// pidfile, before the daemon's Go runtime has started (it is held in a C
// constructor, single-threaded). start: the launcher waits for it.
func TestWaitNoneAndStart(t *testing.T) {
	t.Parallel()
	t.Run("none", func(t *testing.T) {
		t.Parallel()
		holdEnv, release := hold(t)
		defer release()
		r := Launch(t, probe, []string{holdEnv, "CDAEMON_WAIT=none", "CDAEMON_PIDFILE=p.pid"})
		r.RequireStatus(t, 0)
		// Read once, no retry: the pid must be there when the launcher returns.
		text := readFile(t, filepath.Join(r.Dir, "p.pid"))
		require.Regexp(t, `^[1-9][0-9]*\n$`, text)
		pid, _ := strconv.Atoi(strings.TrimSpace(text))
		r.Track(pid)
		require.True(t, alive(pid))
		assert.Equal(t, "1", procStatus(t, pid)["Threads"], "the Go runtime already started")
		assert.NoFileExists(t, r.Report)

		release()
		rep := r.ReadReport(t)
		assert.Equal(t, pid, rep.PID)
		assert.Equal(t, "none", rep.Info.Wait)
	})
	t.Run("start", func(t *testing.T) {
		t.Parallel()
		holdEnv, release := hold(t)
		defer release()
		r := Spawn(t, probe, Opts{Env: []string{holdEnv, "CDAEMON_PIDFILE=p.pid"}})
		var pid int
		eventually(t, "the daemon's pid in the pidfile", func() bool {
			b, _ := os.ReadFile(filepath.Join(r.Dir, "p.pid"))
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			return pid > 0
		})
		r.Track(pid)
		assert.Equal(t, "1", procStatus(t, pid)["Threads"])
		assert.False(t, r.Exited(), "the launcher exited before the daemon's Go runtime started")

		release()
		r.Wait(t)
		r.RequireStatus(t, 0)
		assert.Equal(t, pid, r.ReadReport(t).PID)
	})
}

// ready: once the launcher has returned, the daemon's socket accepts at
// once: one connection, no retry.
func TestReadyServesAtOnce(t *testing.T) {
	t.Parallel()
	r := Launch(t, probe, []string{"CDAEMON_WAIT=ready"}, "-listen", "127.0.0.1:0", "-ready")
	r.RequireStatus(t, 0)
	port := readFile(t, r.Report+".port") // written before Ready: no waiting
	c, err := net.Dial("tcp", "127.0.0.1:"+port)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(hang))) // a hang is a failure
	line, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	assert.Regexp(t, `^hello from [0-9]+\n$`, line)
}

// CDAEMON_TIMEOUT: a daemon that does not reach the wait point in time is
// stopped, with whatever it started, and the launcher exits 1 saying so.
// It gets SIGTERM first, so a daemon that handles it can clean up.
func TestTimeout(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		wait string
		args []string
		held bool // before the Go runtime starts
		term bool // the probe handles SIGTERM: it must see one
		msg  string
	}{
		{"ready never called", "ready", nil, false, true, "was not ready within CDAEMON_TIMEOUT (300ms): the program never called cdaemon.Ready()"},
		{"SIGTERM ignored", "ready", []string{"-ignore-term"}, false, false, "was not ready"},
		{"a child started", "ready", []string{"-child"}, false, true, "was not ready"},
		// Outside the daemon's process group: the launcher, their
		// subreaper, must still find and stop them.
		{"a child in a session of its own", "ready", []string{"-child-setsid"}, false, true, "was not ready"},
		{"the daemon left its session", "ready", []string{"-setsid"}, false, true, "was not ready"},
		{"start never reached", "start", nil, true, false, "was not started within CDAEMON_TIMEOUT (300ms): its Go runtime and package init did not finish"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			term := filepath.Join(dir, "got-sigterm")
			env := []string{"CDAEMON_TIMEOUT=300ms", "CDAEMON_PIDFILE=p.pid", "CDAEMON_WAIT=" + tc.wait}
			if tc.held {
				holdEnv, release := hold(t)
				defer release()
				env = append(env, holdEnv)
			}
			r := LaunchOpts(t, probe, Opts{Dir: dir, Env: env, Args: append([]string{"-on-term", term}, tc.args...)})
			r.RequireStatus(t, 1)
			assert.Contains(t, r.Stderr, tc.msg)
			assert.Contains(t, r.Stderr, "CDAEMON_TIMEOUT (300ms)")
			r.RequireGone(t)
			assert.NoFileExists(t, filepath.Join(dir, "p.pid"))
			// The probe writes its report after it installs its SIGTERM
			// handler: with a report, a SIGTERM was caught, not fatal.
			if _, err := os.Stat(r.Report); tc.term && err == nil {
				assert.FileExists(t, term, "the daemon was not sent SIGTERM before SIGKILL")
			} else if tc.term {
				t.Logf("the timeout came before the probe handled SIGTERM: not checked")
			}
		})
	}
}

// The daemon fails before ready: the launcher exits with the documented
// status and prints why on the terminal it was started from; the daemon's
// own stderr (the log) gets the details; nothing is left.
func TestFailureBeforeReady(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		args   []string
		kill   syscall.Signal // sent to the daemon once it reported
		status int
		msg    string // on the launcher's stderr, with the daemon's pid unless it is Fail's
		log    string // in the daemon's log
	}{
		{"Fail", []string{"-fail", "cannot bind :80"}, 0, 1, "probe: cannot bind :80\n", "probe: cannot bind :80\n"},
		{"exit", []string{"-exit", "3"}, 0, 3, "exited with status 3 before it was ready", ""},
		{"exit with a child", []string{"-exit", "4", "-child"}, 0, 4, "exited with status 4", ""},
		{"exit with a child in a session of its own", []string{"-exit", "5", "-child-setsid"}, 0, 5, "exited with status 5", ""},
		{"panic", []string{"-panic"}, 0, 2, "exited with status 2 before it was ready", "panic: probe: panic before ready"},
		{"SIGKILL", []string{"-wait-usr1"}, syscall.SIGKILL, 128 + 9, "killed by signal 9", ""},
		{"SIGHUP", []string{"-wait-usr1"}, syscall.SIGHUP, 128 + 1, "killed by signal 1", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := Spawn(t, probe, Opts{Env: []string{"CDAEMON_WAIT=ready", "CDAEMON_LOG=log"}, Args: tc.args})
			rep := r.ReadReport(t)
			if tc.kill != 0 {
				require.NoError(t, syscall.Kill(rep.PID, tc.kill))
			}
			r.Wait(t)
			r.RequireStatus(t, tc.status)
			assert.Contains(t, r.Stderr, tc.msg)
			if tc.name != "Fail" {
				assert.Contains(t, r.Stderr, fmt.Sprintf("(pid %d)", rep.PID), "the message names the daemon")
			}
			assert.Contains(t, readFile(t, filepath.Join(r.Dir, "log")), tc.log)
			r.RequireGone(t)
		})
	}
}

// Status 71: an operating-system resource runs out. With few descriptors
// allowed, the launcher fails either opening its files (73) or making the
// status pipe (71), each with a message and nothing left behind, until
// there are enough.
func TestOutOfDescriptors(t *testing.T) {
	t.Parallel()
	seen := map[int]bool{}
	for n := 4; ; n++ { // with 3 the dynamic loader cannot open libc
		require.Less(t, n, 32, "the launcher never started with few descriptors")
		r := LaunchOpts(t, probe, Opts{Shell: fmt.Sprintf("ulimit -n %d", n), Args: []string{"-exit", "0"},
			Env: []string{"CDAEMON_PIDFILE=p.pid"}})
		if r.Status == 0 {
			// Started; with so few descriptors its Go code may then
			// fail, which is not cdaemon's business. Reap it.
			pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, filepath.Join(r.Dir, "p.pid"))))
			require.NoError(t, err)
			r.WaitExit(t, pid)
			break
		}
		assert.Contains(t, []int{71, 73}, r.Status, "limit %d: %s", n, r.Stderr)
		assert.Contains(t, r.Stderr, "Too many open files", "limit %d", n)
		r.RequireGone(t)
		seen[r.Status] = true
		if r.Status == 71 {
			assert.Contains(t, r.Stderr, "pipe")
		}
	}
	assert.True(t, seen[71], "no limit made the pipe fail: %v", seen)
}
