package tests

// Load: many starts at once, a storm of starts on one pidfile, and long
// start/stop cycles. Counts are modest (the machine has 2 shared cores);
// what is asserted is the outcome of every start, never how long it took.

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

const (
	concurrentStarts = 32
	stormStarts      = 32
	startStopCycles  = 200
)

// launchAll starts n programs at once and waits for every launcher.
func launchAll(t *testing.T, n int, env func(i int) []string) []*Run {
	runs := make([]*Run, n)
	for i := range runs {
		runs[i] = Spawn(t, probe, Opts{Env: env(i)})
	}
	for _, r := range runs {
		r.Wait(t)
	}
	return runs
}

// Dozens of daemons started at once, each with its own pidfile: all come
// up, each pidfile names its own daemon, and all stop cleanly.
func TestHardeningConcurrentStarts(t *testing.T) {
	slow(t)
	checkZombies := noNewZombies(t)
	dir := t.TempDir()
	runs := launchAll(t, concurrentStarts, func(i int) []string {
		return []string{fmt.Sprintf("CDAEMON_PIDFILE=%s/%d.pid", dir, i)}
	})
	pids := map[int]bool{}
	for i, r := range runs {
		require.Equal(t, 0, r.Status, "start %d: %s", i, r.Stderr)
		pid := pidFromFile(t, fmt.Sprintf("%s/%d.pid", dir, i))
		require.Equal(t, pid, r.ReadReport(t).PID, "start %d: the pidfile names its daemon", i)
		require.False(t, pids[pid])
		pids[pid] = true
	}
	for i, r := range runs {
		pid := pidFromFile(t, fmt.Sprintf("%s/%d.pid", dir, i))
		r.Stop(t, pid)
		requireNothingLeft(t, r, pid)
	}
	checkZombies()
}

// Start and stop a daemon on one pidfile again and again; every tenth
// stop is a SIGKILL, leaving a stale pidfile the next start takes over.
func TestHardeningStartStopCycles(t *testing.T) {
	slow(t)
	checkZombies := noNewZombies(t)
	pidfile := filepath.Join(t.TempDir(), "cycle.pid")
	for i := 0; i < startStopCycles; i++ {
		r := Launch(t, probe, []string{"CDAEMON_PIDFILE=" + pidfile, "CDAEMON_WAIT=none"})
		require.Equal(t, 0, r.Status, "cycle %d: %s", i, r.Stderr)
		pid := pidFromFile(t, pidfile)
		require.Contains(t, r.Procs(), pid, "cycle %d: the pidfile names a live daemon of this run", i)
		if i%10 == 9 {
			require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
			r.WaitExit(t, pid)
		} else {
			r.Stop(t, pid)
		}
		requireNothingLeft(t, r, pid)
	}
	checkZombies()
}
