package tests

// The cdaemon command's status, stop and reload, as an init script or an
// operator runs them: LSB exit statuses, and no signal to any process but
// the one that holds the pidfile's lock.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
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

	// A pidfile that names another process than its lock holder.
	other := victim(t)
	_, rep2, pidfile2 := startCtl(t, nil, "-write-pid", strconv.Itoa(other))
	c = command(t, "status", pidfile2)
	c.RequireStatus(t, 4)
	assert.Equal(t, "cdaemon status: status unknown: cdaemon: pidfile "+pidfile2+": it names pid "+
		strconv.Itoa(other)+", which does not hold its lock; its lock is held by pid "+strconv.Itoa(rep2.PID)+"\n", c.Stderr)
	requireAlive(t, other)

	// CDAEMON_PIDFILE in its environment (an init script that exports
	// it) does not make the command take the pidfile: its
	// cdaemon_wanted says this run is not the daemon, so cdaemon leaves
	// pidfile, listeners and privileges alone.
	missing := filepath.Join(t.TempDir(), "missing.pid")
	c = Launch(t, heartbeat(t), []string{"CDAEMON_PIDFILE=" + pidfile2}, "status", pidfile2)
	c.RequireStatus(t, 4)
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
	// A daemon that rewrote its pidfile to name another process: nothing
	// is signalled, status 1, and the message says who holds the lock.
	t.Run("rewritten pidfile", func(t *testing.T) {
		t.Parallel()
		other := victim(t)
		_, rep, pidfile := startCtl(t, nil, "-write-pid", strconv.Itoa(other))
		c := command(t, "stop", pidfile)
		c.RequireStatus(t, 1)
		assert.Contains(t, c.Stderr, "it names pid "+strconv.Itoa(other)+", which does not hold its lock; its lock is held by pid "+strconv.Itoa(rep.PID))
		requireAlive(t, other)
		requireAlive(t, rep.PID)
		assert.FileExists(t, pidfile)
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
		{[]string{"start"}, 2, `cdaemon start: unknown command "start"; want status, stop, reload or heartbeat`},
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
