package tests

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Properties 1-3 and 14 of DESIGN.md on a plain start with the defaults.
func TestDaemonIsDetached(t *testing.T) {
	r := Launch(t, probe, nil)
	require.Equal(t, 0, r.Status, "launcher stderr: %s", r.Stderr)
	rep := r.ReadReport(t)

	// 1. A new pid, parented to us (the subreaper); the launcher is gone.
	launcher := rep.Info.LauncherPID
	assert.NotEqual(t, launcher, rep.PID)
	st, err := procStat(rep.PID)
	require.NoError(t, err)
	assert.Equal(t, os.Getpid(), st.PPID, "seen from outside, after the launcher exited")
	assert.True(t, rep.Info.Daemonized)
	_, err = procStat(launcher)
	assert.Error(t, err, "the launcher %d should have exited", launcher)

	// 2. Neither a session leader nor a process-group leader.
	assert.NotEqual(t, rep.PID, rep.SID)
	assert.NotEqual(t, rep.PID, rep.PGRP)

	// 3. No controlling terminal.
	assert.Equal(t, 0, rep.TTYNr)
	assert.Equal(t, -1, rep.TPGID)
	assert.NotEmpty(t, rep.DevTTYErr, "/dev/tty opened in the daemon")

	// 14. No CDAEMON_* in the daemon's environment.
	for _, kv := range rep.Env {
		assert.NotRegexp(t, `^CDAEMON(=|_)`, kv)
	}

	ws := r.Stop(t, rep.PID)
	assert.True(t, ws.Signaled() || ws.ExitStatus() == 0, "probe ended with %v", ws)
	r.RequireGone(t)
}
