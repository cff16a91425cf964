package tests

// The cdaemon command's status, stop and reload, as an init script or an
// operator runs them: LSB exit statuses, and no signal to any process but
// the one that holds the pidfile's lock.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// command runs `cdaemon args...` in the foreground and returns its run.
func command(t *testing.T, args ...string) *Run {
	t.Helper()
	r := Launch(t, heartbeat(t), nil, args...)
	r.RequireGone(t) // it never daemonizes
	return r
}

func TestCommandStatus(t *testing.T) {
	t.Parallel()
	r, rep, pidfile := startCtl(t, nil)
	c := command(t, "status", pidfile)
	c.RequireStatus(t, 0)
	assert.Equal(t, pidfile+": running, pid "+strconv.Itoa(rep.PID)+"\n", c.Stdout)

	require.NoError(t, syscall.Kill(rep.PID, syscall.SIGKILL))
	r.WaitExit(t, rep.PID)
	c = command(t, "status", pidfile)
	c.RequireStatus(t, 1)
	assert.Equal(t, pidfile+": not running, but the pidfile is left (no process holds its lock)\n", c.Stdout)

	require.NoError(t, os.Remove(pidfile))
	c = command(t, "status", pidfile)
	c.RequireStatus(t, 3)
	assert.Equal(t, pidfile+": not running (no pidfile)\n", c.Stdout)

	// A pidfile that names another process than its lock holder: the
	// holder runs, and status says the file names another.
	other := victim(t)
	_, rep2, pidfile2 := startCtl(t, nil, "-write-pid", strconv.Itoa(other))
	c = command(t, "status", pidfile2)
	c.RequireStatus(t, 0)
	assert.Equal(t, pidfile2+": running, pid "+strconv.Itoa(rep2.PID)+", which holds its lock (the pidfile names pid "+
		strconv.Itoa(other)+")\n", c.Stdout)
	requireAlive(t, other)

	// CDAEMON_PIDFILE in its environment (an init script that exports
	// it) does not make the command take the pidfile: its
	// cdaemon_wanted says this run is not the daemon, so cdaemon leaves
	// pidfile, listeners and privileges alone.
	missing := filepath.Join(t.TempDir(), "missing.pid")
	c = Launch(t, heartbeat(t), []string{"CDAEMON_PIDFILE=" + pidfile2}, "status", pidfile2)
	c.RequireStatus(t, 0)
	c = Launch(t, heartbeat(t), []string{"CDAEMON_PIDFILE=" + missing}, "status", missing)
	c.RequireStatus(t, 3)
	assert.NoFileExists(t, missing)
}

func TestCommandStop(t *testing.T) {
	t.Parallel()
	t.Run("running", func(t *testing.T) {
		t.Parallel()
		r, rep, pidfile := startCtl(t, nil)
		c := command(t, "stop", pidfile)
		c.RequireStatus(t, 0)
		assert.Equal(t, pidfile+": stopped pid "+strconv.Itoa(rep.PID)+"\n", c.Stdout)
		ws := r.WaitExit(t, rep.PID)
		assert.True(t, ws.Exited() && ws.ExitStatus() == 0, "ended on SIGTERM: %v", ws)
		assert.NoFileExists(t, pidfile)
		command(t, "status", pidfile).RequireStatus(t, 3)
		c = command(t, "stop", pidfile)
		c.RequireStatus(t, 0)
		assert.Equal(t, pidfile+": not running\n", c.Stdout)
	})
	t.Run("-signal INT", func(t *testing.T) {
		t.Parallel()
		r, rep, pidfile := startCtl(t, nil)
		command(t, "stop", "-signal", "INT", pidfile).RequireStatus(t, 0)
		ws := r.WaitExit(t, rep.PID)
		assert.True(t, ws.Signaled() && ws.Signal() == syscall.SIGINT, "%v", ws)
	})
	t.Run("ignores SIGTERM", func(t *testing.T) {
		t.Parallel()
		r, rep, pidfile := startCtl(t, nil, "-ignore-term")
		c := command(t, "stop", "-timeout", "50ms", pidfile)
		c.RequireStatus(t, 0)
		assert.Equal(t, pidfile+": pid "+strconv.Itoa(rep.PID)+" did not exit within 50ms of SIGTERM: killed it (SIGKILL)\n", c.Stdout)
		ws := r.WaitExit(t, rep.PID)
		assert.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "%v", ws)
		assert.NoFileExists(t, pidfile)
	})
	// A stale pidfile naming a live process: that process is not touched,
	// and the stale file is removed.
	t.Run("stale pidfile", func(t *testing.T) {
		t.Parallel()
		other := victim(t)
		pidfile := filepath.Join(t.TempDir(), "stale.pid")
		require.NoError(t, os.WriteFile(pidfile, []byte(strconv.Itoa(other)+"\n"), 0o644))
		c := command(t, "stop", pidfile)
		c.RequireStatus(t, 0)
		assert.Equal(t, pidfile+": not running; removed the stale pidfile\n", c.Stdout)
		assert.NoFileExists(t, pidfile)
		requireAlive(t, other)
	})
	// A daemon that rewrote its pidfile to name another process: the
	// daemon, which holds the lock, is stopped; the process named is not
	// touched; both files are removed.
	t.Run("rewritten pidfile", func(t *testing.T) {
		t.Parallel()
		other := victim(t)
		r, rep, pidfile := startCtl(t, nil, "-write-pid", strconv.Itoa(other))
		c := command(t, "stop", pidfile)
		c.RequireStatus(t, 0)
		assert.Equal(t, pidfile+": stopped pid "+strconv.Itoa(rep.PID)+"\n", c.Stdout)
		r.WaitExit(t, rep.PID)
		requireAlive(t, other)
		assert.NoFileExists(t, pidfile)
		assert.NoFileExists(t, pidfile+".lock")
	})
	t.Run("lock kept by a child", func(t *testing.T) {
		t.Parallel()
		r, rep, pidfile := startCtl(t, nil, "-share-lock")
		c := command(t, "stop", "-timeout", "50ms", pidfile)
		c.RequireStatus(t, 1)
		assert.Contains(t, c.Stderr, "still locked after the daemon exited; its lock is held by pid "+strconv.Itoa(rep.Child))
		r.WaitExit(t, rep.PID)
		requireAlive(t, rep.Child)
	})
}

func TestCommandReload(t *testing.T) {
	t.Parallel()
	r, rep, pidfile := startCtl(t, []string{"CDAEMON_LOG=d.log"})
	c := command(t, "reload", pidfile)
	c.RequireStatus(t, 0)
	assert.Equal(t, pidfile+": sent SIGHUP to pid "+strconv.Itoa(rep.PID)+"\n", c.Stdout)
	hasLines(t, filepath.Join(r.Dir, "d.log"), "reopened\n")

	require.NoError(t, syscall.Kill(rep.PID, syscall.SIGKILL))
	r.WaitExit(t, rep.PID)
	c = command(t, "reload", pidfile)
	c.RequireStatus(t, 7)
	assert.Contains(t, c.Stderr, "cdaemon reload: "+pidfile+": not running")
	require.NoError(t, os.Remove(pidfile))
	command(t, "reload", pidfile).RequireStatus(t, 7)
}

// Command-line mistakes: 2 and a message naming the mistake; -h: 0.
func TestCommandUsage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args   []string
		status int
		msg    string
	}{
		{nil, 2, "cdaemon: missing command"},
		{[]string{"start"}, 2, `cdaemon start: unknown command "start"; want status, stop, reload, heartbeat or run`},
		{[]string{"status"}, 2, "cdaemon status: missing PIDFILE"},
		{[]string{"status", "a", "b"}, 2, `cdaemon status: unexpected argument "b" after PIDFILE`},
		{[]string{"status", ""}, 2, "cdaemon status: PIDFILE is empty"},
		{[]string{"reload", "-x", "p"}, 2, "cdaemon reload: flag provided but not defined: -x"},
		{[]string{"stop", "-signal", "FOO", "p"}, 2, `cdaemon stop: -signal "FOO": unknown signal; want a name such as TERM, INT or SIGQUIT, or a number`},
		{[]string{"stop", "-signal", "0", "p"}, 2, "cdaemon stop: -signal 0: want a signal number from 1 to 64"},
		{[]string{"stop", "-timeout", "0s", "p"}, 2, "cdaemon stop: -timeout 0s: want a positive duration, such as 10s"},
		{[]string{"stop", "-timeout", "soon", "p"}, 2, `cdaemon stop: invalid value "soon" for flag -timeout: parse error`},
		{[]string{"-h"}, 0, ""},
		{[]string{"stop", "-h"}, 0, ""},
	}
	for _, tc := range cases {
		c := command(t, tc.args...)
		c.RequireStatus(t, tc.status)
		if tc.status == 0 {
			assert.Contains(t, c.Stdout, "usage:", "%q", tc.args)
			assert.Empty(t, c.Stderr)
			continue
		}
		assert.Contains(t, c.Stderr, tc.msg+"\n", "%q", tc.args)
		assert.Contains(t, c.Stderr, "usage:", "%q", tc.args)
		assert.Empty(t, c.Stdout)
	}
}

// A user who cannot see the daemon's descriptors (root's daemon, run as
// nobody) gets "unknown" (4) from status and "insufficient privilege" (4)
// from stop and reload; nothing is signalled. Their own daemon, an
// unprivileged user finds and stops.
func TestCommandAsAnotherUser(t *testing.T) {
	t.Parallel()
	needRoot(t)
	sharedDir(t) // makes the built programs executable by nobody
	dir, err := os.MkdirTemp("", "cdaemon-cmd-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	pidfile := filepath.Join(dir, "d.pid")
	r := Launch(t, ctl(t), []string{"CDAEMON_PIDFILE=" + pidfile})
	r.RequireStatus(t, 0)
	rep := readCtlReport(t, r)

	for _, tc := range []struct{ cmd, msg string }{
		{"status", "cdaemon status: status unknown: cdaemon: pidfile " + pidfile + ": locked by a process this user cannot see"},
		{"stop", "cdaemon stop: cdaemon: pidfile " + pidfile + ": locked by a process this user cannot see"},
		{"reload", "cdaemon reload: cdaemon: pidfile " + pidfile + ": locked by a process this user cannot see"},
	} {
		c := LaunchOpts(t, heartbeat(t), Opts{Dir: dir, Attr: asNobody(), Args: []string{tc.cmd, pidfile}})
		c.RequireStatus(t, 4)
		assert.Equal(t, tc.msg+"\n", c.Stderr)
		c.RequireGone(t)
	}
	requireAlive(t, rep.PID)
	assert.FileExists(t, pidfile)

	// Their own daemon, they see and stop.
	require.NoError(t, os.Chmod(dir, os.ModeSticky|0o777))
	own := filepath.Join(dir, "own.pid")
	report := filepath.Join(dir, "own.json")
	r2 := LaunchOpts(t, ctl(t), Opts{Dir: dir, Attr: asNobody(),
		Env: []string{"CDAEMON_PIDFILE=" + own, "PROBE_REPORT=" + report}})
	r2.RequireStatus(t, 0)
	var rep2 ctlReport
	eventually(t, "the ctl report", func() bool {
		b, err := os.ReadFile(report)
		return err == nil && json.Unmarshal(b, &rep2) == nil
	})
	r2.Track(rep2.PID, rep2.SID)
	c := LaunchOpts(t, heartbeat(t), Opts{Dir: dir, Attr: asNobody(), Args: []string{"status", own}})
	c.RequireStatus(t, 0)
	c = LaunchOpts(t, heartbeat(t), Opts{Dir: dir, Attr: asNobody(), Args: []string{"stop", own}})
	c.RequireStatus(t, 0)
	assert.Equal(t, own+": stopped pid "+strconv.Itoa(rep2.PID)+"\n", c.Stdout)
	r2.WaitExit(t, rep2.PID)
	assert.NoFileExists(t, own)
}

// status, stop and reload run in C before the Go runtime starts
// (cdaemon/early.c): stop waits for the daemon's exit on its pidfd in a
// process of one thread, which a Go program never is once its runtime
// has started (it starts sysmon and the GC's workers at once).
func TestCommandStopWaitsWithoutGoRuntime(t *testing.T) {
	t.Parallel()
	r, rep, pidfile := startCtl(t, nil, "-ignore-term")
	c := Spawn(t, heartbeat(t), Opts{Args: []string{"stop", "-timeout", "3s", pidfile}})
	eventually(t, "the stop command waiting in poll", func() bool {
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", c.Launcher))
		for _, e := range ents {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/wchan", c.Launcher, e.Name()))
			if strings.Contains(string(b), "poll") {
				return true
			}
		}
		return false
	})
	assert.Equal(t, "1", procStatus(t, c.Launcher)["Threads"], "threads of the waiting stop command")
	c.Wait(t)
	c.RequireStatus(t, 0)
	assert.Equal(t, pidfile+": pid "+strconv.Itoa(rep.PID)+" did not exit within 3s of SIGTERM: killed it (SIGKILL)\n", c.Stdout)
	ws := r.WaitExit(t, rep.PID)
	assert.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "%v", ws)
	assert.NoFileExists(t, pidfile)
}

// The C path and the Go path (CDAEMON=off: the constructor does nothing,
// main runs the command) give the same status and the same words, for
// what the C path handles and for what it leaves to Go.
func TestCommandSameWithoutGoRuntime(t *testing.T) {
	t.Parallel()
	type setup func(t *testing.T) (pidfile string, pids []int)
	running := func(args ...string) setup {
		return func(t *testing.T) (string, []int) {
			_, rep, pidfile := startCtl(t, nil, args...)
			return pidfile, []int{rep.PID, rep.Child}
		}
	}
	missing := func(t *testing.T) (string, []int) { return filepath.Join(t.TempDir(), "none.pid"), nil }
	stale := func(t *testing.T) (string, []int) {
		other := victim(t)
		pidfile := filepath.Join(t.TempDir(), "stale.pid")
		require.NoError(t, os.WriteFile(pidfile, []byte(strconv.Itoa(other)+"\n"), 0o644))
		return pidfile, []int{other}
	}
	rewritten := func(t *testing.T) (string, []int) {
		other := victim(t)
		_, rep, pidfile := startCtl(t, nil, "-write-pid", strconv.Itoa(other))
		return pidfile, []int{other, rep.PID}
	}
	cases := []struct {
		name  string
		setup setup
		args  []string
	}{
		{"status running", running(), []string{"status", "PIDFILE"}},
		{"status -- running", running(), []string{"status", "--", "PIDFILE"}},
		{"status missing", missing, []string{"status", "PIDFILE"}},
		{"status stale", stale, []string{"status", "PIDFILE"}},
		{"status rewritten", rewritten, []string{"status", "PIDFILE"}},
		{"reload running", running(), []string{"reload", "PIDFILE"}},
		{"reload missing", missing, []string{"reload", "PIDFILE"}},
		{"reload stale", stale, []string{"reload", "PIDFILE"}},
		{"stop running", running(), []string{"stop", "PIDFILE"}},
		{"stop flags", running(), []string{"stop", "--signal=int", "-timeout=1.5s", "PIDFILE"}},
		{"stop numbered signal", running(), []string{"stop", "-signal", "+2", "-timeout", "1m0.5s", "PIDFILE"}},
		{"stop ignoring SIGTERM", running("-ignore-term"), []string{"stop", "-timeout", "20ms", "-signal", "SIGTERM", "PIDFILE"}},
		{"stop ignoring SIGTERM, fraction", running("-ignore-term"), []string{"stop", "-timeout", ".0255s", "PIDFILE"}},
		{"stop lock kept by a child", running("-share-lock"), []string{"stop", "-timeout", "30ms", "PIDFILE"}},
		{"stop missing", missing, []string{"stop", "PIDFILE"}},
		{"stop stale", stale, []string{"stop", "PIDFILE"}},
		{"stop rewritten", rewritten, []string{"stop", "PIDFILE"}},
		{"stop bad timeout", missing, []string{"stop", "-timeout", "-1s", "PIDFILE"}},
		{"stop bad signal", missing, []string{"stop", "-signal", "65", "PIDFILE"}},
		{"stop missing value", missing, []string{"stop", "PIDFILE", "-timeout"}},
		{"status -h", missing, []string{"status", "-h"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got [2]string
			for i, env := range [][]string{nil, {"CDAEMON=off"}} {
				pidfile, pids := tc.setup(t)
				args := slices.Clone(tc.args)
				for j := range args {
					args[j] = strings.ReplaceAll(args[j], "PIDFILE", pidfile)
				}
				c := Launch(t, heartbeat(t), env, args...)
				c.RequireGone(t)
				got[i] = fmt.Sprintf("status %d\nstdout: %s\nstderr: %s", c.Status, c.Stdout, c.Stderr)
				got[i] = strings.ReplaceAll(got[i], pidfile, "PIDFILE")
				for k, pid := range pids {
					if pid == 0 {
						continue
					}
					got[i] = strings.ReplaceAll(got[i], strconv.Itoa(pid), fmt.Sprintf("PID%d", k))
				}
			}
			assert.Equal(t, got[1], got[0], "the C path (first) against the Go path")
		})
	}
}
