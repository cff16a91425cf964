package tests

// The cdaemon command: the reference text's heartbeat daemon. It appends
// `date +%F-%H%M%S` lines to -out (relative to where it was started),
// reopens the file on SIGHUP, ends with 0 on SIGTERM or SIGINT, and waits
// for Ready by default so that its mistakes reach the terminal.

import (
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

func heartbeat(t *testing.T) string {
	return program(t, "cdaemon", "github.com/cdaemon/cdaemon/cdaemon", nil)
}

// lines returns the complete lines of path ("" if it does not exist).
func lines(path string) []string {
	b, _ := os.ReadFile(path)
	s := string(b)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.Split(s[:i], "\n")
	}
	return nil
}

// startHeartbeat starts the command with a relative -out and returns the
// run, the daemon's pid and the absolute path of its file.
func startHeartbeat(t *testing.T, env ...string) (*Run, int, string) {
	t.Helper()
	r := Launch(t, heartbeat(t), append([]string{"CDAEMON_PIDFILE=hb.pid"}, env...),
		"heartbeat", "-out", "hb.log", "-interval", "10ms")
	r.RequireStatus(t, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, filepath.Join(r.Dir, "hb.pid"))))
	require.NoError(t, err)
	r.Track(pid)
	return r, pid, filepath.Join(r.Dir, "hb.log")
}

// It runs as the reference text's `ps -ef` shows it: parent 1 (here the
// subreaper), no terminal; and writes its lines where it was started.
func TestHeartbeatWrites(t *testing.T) {
	t.Parallel()
	_, pid, out := startHeartbeat(t)
	st, err := procStat(pid)
	require.NoError(t, err)
	assert.Equal(t, os.Getpid(), st.PPID)
	assert.Zero(t, st.TTYNr)
	assert.NotEqual(t, pid, st.SID)

	eventually(t, "three heartbeat lines in "+out, func() bool { return len(lines(out)) >= 3 })
	var prev time.Time
	for _, line := range lines(out) {
		require.Regexp(t, `^[0-9]{4}-[0-9]{2}-[0-9]{2}-[0-9]{6}$`, line)
		ts, err := time.ParseInLocation("2006-01-02-150405", line, time.Local)
		require.NoError(t, err, "not date +%%F-%%H%%M%%S: %q", line)
		assert.False(t, ts.Before(prev), "lines out of order")
		prev = ts
	}
}

// Log rotation: after the file is moved away, SIGHUP makes the daemon
// write to a new file at the same path, and no longer to the old one.
func TestHeartbeatReopensOnSIGHUP(t *testing.T) {
	t.Parallel()
	_, pid, out := startHeartbeat(t)
	eventually(t, "a first line", func() bool { return len(lines(out)) >= 1 })
	rotated := out + ".1"
	require.NoError(t, os.Rename(out, rotated))
	require.NoError(t, syscall.Kill(pid, syscall.SIGHUP))

	eventually(t, "a line in the reopened file", func() bool { return len(lines(out)) >= 1 })
	old := readFile(t, rotated)
	eventually(t, "more lines in the reopened file", func() bool { return len(lines(out)) >= 3 })
	assert.Equal(t, old, readFile(t, rotated), "still writing to the rotated file")
	assert.True(t, alive(pid))
}

// SIGTERM and SIGINT end it cleanly, with status 0.
func TestHeartbeatStops(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			r, pid, out := startHeartbeat(t)
			eventually(t, "a first line", func() bool { return len(lines(out)) >= 1 })
			require.NoError(t, syscall.Kill(pid, sig))
			ws := r.WaitExit(t, pid)
			assert.True(t, ws.Exited() && ws.ExitStatus() == 0, "ended with %v", ws)
			r.RequireGone(t)
		})
	}
}

// Its mistakes are reported on the terminal with status 1, because it
// waits for Ready by default; CDAEMON_WAIT=start overrides that, and the
// launcher then returns 0 before main has looked at the flags.
func TestHeartbeatBadArguments(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		env    []string
		args   []string
		status int
		msg    string
	}{
		{"no -out", nil, nil, 1, "-out is required"},
		{"zero interval", nil, []string{"-out", "x", "-interval", "0s"}, 1, "-interval 0s: want a positive duration"},
		{"unopenable -out", nil, []string{"-out", "nodir/x"}, 1, "nodir/x: no such file or directory"},
		{"extra argument", nil, []string{"-out", "x", "more"}, 1, `unexpected argument "more"`},
		{"unknown flag", nil, []string{"-bogus"}, 1, "flag provided but not defined: -bogus"},
		{"CDAEMON_WAIT=start overrides", []string{"CDAEMON_WAIT=start"}, nil, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := Launch(t, heartbeat(t), append([]string{"CDAEMON_PIDFILE=hb.pid"}, tc.env...),
				append([]string{"heartbeat"}, tc.args...)...)
			r.RequireStatus(t, tc.status)
			assert.Contains(t, r.Stderr, tc.msg)
			if tc.status == 0 {
				// The daemon found the mistake after the launcher left.
				pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, filepath.Join(r.Dir, "hb.pid"))))
				require.NoError(t, err)
				r.Track(pid)
				assert.Equal(t, 1, r.WaitExit(t, pid).ExitStatus())
			}
			r.RequireGone(t)
		})
	}
}

// SIGHUP also reopens the daemon's own log (cdaemon.ReopenLogs): after
// both files are moved away, the message about an -out it cannot reopen
// lands in the new log, not the rotated one.
func TestHeartbeatReopensLogOnSIGHUP(t *testing.T) {
	t.Parallel()
	r, pid, out := startHeartbeat(t, "CDAEMON_LOG=hb.err")
	log := filepath.Join(r.Dir, "hb.err")
	eventually(t, "a first line", func() bool { return len(lines(out)) >= 1 })
	require.NoError(t, os.Rename(log, log+".1"))
	require.NoError(t, os.Rename(out, out+".1"))
	require.NoError(t, os.Mkdir(out, 0o755)) // -out cannot be reopened
	require.NoError(t, syscall.Kill(pid, syscall.SIGHUP))
	eventually(t, "the reopen error in the new log", func() bool { return len(lines(log)) >= 1 })
	assert.Equal(t, []string{"heartbeat: reopen: open " + out + ": is a directory (keeping the old file)"}, lines(log))
	assert.Empty(t, readFile(t, log+".1"), "nothing in the rotated log")
	assert.True(t, alive(pid))
}

// Asked for help, it stays in the foreground (the cdaemon_wanted hook),
// so the usage reaches the terminal; nothing is left running.
func TestHeartbeatHelpInForeground(t *testing.T) {
	t.Parallel()
	for _, h := range []string{"-h", "-help", "--help"} {
		t.Run(h, func(t *testing.T) {
			t.Parallel()
			r := Launch(t, heartbeat(t), []string{"CDAEMON_PIDFILE=hb.pid"}, "heartbeat", "-out", "x", h)
			r.RequireStatus(t, 0)
			assert.Contains(t, r.Stderr, "Usage of cdaemon heartbeat:")
			assert.Contains(t, r.Stderr, "-interval duration")
			assert.NoFileExists(t, filepath.Join(r.Dir, "x"))
			r.RequireGone(t)
		})
	}
}
