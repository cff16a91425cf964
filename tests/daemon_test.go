package tests

import (
	"fmt"
	"os"
	"strings"
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

// go run builds the program into a temporary directory that it deletes
// when the program returns (or, since Go 1.24, into its build cache), and
// turns every exit status into 1. A daemon go run starts still runs; the
// launcher says so on the terminal, once, recommending go build. The test
// runs it twice: the first may build, the second runs the cached binary.
func TestGoRunSaysToBuild(t *testing.T) {
	t.Parallel()
	wd, err := os.Getwd()
	require.NoError(t, err)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CDAEMON") && !strings.HasPrefix(kv, "PROBE_") {
			env = append(env, kv)
		}
	}
	for i := 0; i < 2; i++ {
		r := LaunchOpts(t, "go", Opts{Dir: wd, Env: env, Args: []string{"run", "./testdata/probe"}})
		r.RequireStatus(t, 0)
		rep := r.ReadReport(t)
		requireOneClearLine(t, r.Stderr, "/probe\" runs from go run's ", "go run reports every failure as exit status 1",
			"build it with go build")
		require.True(t, alive(rep.PID), "the daemon runs on")
		if strings.Contains(r.Stderr, "temporary directory") {
			exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", rep.PID))
			require.NoError(t, err)
			assert.True(t, strings.HasSuffix(exe, " (deleted)"), "go run removed its binary: %s", exe)
		} else {
			assert.Contains(t, r.Stderr, "go run's build cache")
		}
		r.Stop(t, rep.PID)
	}

	plain := Launch(t, probe, nil)
	plain.RequireStatus(t, 0)
	assert.Empty(t, plain.Stderr, "a built binary says nothing")
	plain.Stop(t, plain.ReadReport(t).PID)
}
