package tests

// What a start created and its removal (created.c): one registry, one
// rule per kind of file. A failed start removes what it made, and only
// that; the tests of each kind's removal are with their subject
// (TestPidfileRemovedWhenStartFails, TestListenRemovedWhenStartFails,
// TestFailedStartLeavesNoLog).

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A failed start removes a name only while it refers to the file the
// start made: a file someone put in place of its pidfile or its socket
// file meanwhile (the same name, another file) is theirs, and stays.
func TestFailedStartRemovesOnlyWhatItMade(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := Spawn(t, probe, Opts{Dir: dir, Args: []string{"-wait-usr1"},
		Env: []string{"CDAEMON_WAIT=ready", "CDAEMON_PIDFILE=p.pid", "CDAEMON_LISTEN=unix:s.sock"}})
	pid := r.ReadReport(t).PID
	names := []string{"p.pid", "s.sock"}
	for _, name := range names {
		tmp := filepath.Join(dir, name+".new")
		require.NoError(t, os.WriteFile(tmp, []byte("someone else's\n"), 0o644))
		require.NoError(t, os.Rename(tmp, filepath.Join(dir, name)))
	}
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL)) // the start fails after the fork
	r.Wait(t)
	require.Equal(t, 128+9, r.Status, r.Stderr)
	r.RequireGone(t)
	for _, name := range names {
		assert.Equal(t, "someone else's\n", readFile(t, filepath.Join(dir, name)),
			"the failed start removed the file put in place of its %s", name)
	}
}
