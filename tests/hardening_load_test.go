package tests

// Load: many starts at once, a storm of starts on one pidfile, and long
// start/stop cycles. Counts are modest (the machine has 2 shared cores);
// what is asserted is the outcome of every start, never how long it took.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
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

var lockedBy = regexp.MustCompile(`locked by pid (\d+)`)

// A storm of starts on one pidfile: exactly one daemon, 75 for all the
// others, and a 75 that names a pid names the daemon that won. Run on a
// new pidfile and on a stale one (left by a daemon that was killed) whose
// old pid must not be named as the runner.
func TestHardeningStormOnOnePidfile(t *testing.T) {
	for _, stale := range []bool{false, true} {
		t.Run(fmt.Sprintf("stale=%v", stale), func(t *testing.T) {
			checkZombies := noNewZombies(t)
			pidfile := filepath.Join(t.TempDir(), "storm.pid")
			if stale {
				require.NoError(t, os.WriteFile(pidfile, []byte("999999999\n"), 0o644))
			}
			runs := launchAll(t, stormStarts, func(int) []string {
				return []string{"CDAEMON_PIDFILE=" + pidfile}
			})
			var winners []*Run
			for _, r := range runs {
				switch r.Status {
				case 0:
					winners = append(winners, r)
				case 75:
					assert.Contains(t, r.Stderr, "already running")
					assert.Contains(t, r.Stderr, pidfile)
				default:
					t.Errorf("status %d: %s", r.Status, r.Stderr)
				}
			}
			require.Len(t, winners, 1, "exactly one daemon")
			pid := pidFromFile(t, pidfile)
			require.Equal(t, pid, winners[0].ReadReport(t).PID)
			for _, r := range runs {
				if m := lockedBy.FindStringSubmatch(r.Stderr); m != nil {
					named, _ := strconv.Atoi(m[1])
					assert.Equal(t, pid, named, "a refused start named a pid that is not the daemon: %s", r.Stderr)
				}
				if r != winners[0] {
					requireNothingLeft(t, r)
				}
			}
			winners[0].Stop(t, pid)
			requireNothingLeft(t, winners[0], pid)
			checkZombies()
		})
	}
}

// Start and stop a daemon on one pidfile again and again; every tenth
// stop is a SIGKILL, leaving a stale pidfile the next start takes over.
func TestHardeningStartStopCycles(t *testing.T) {
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

// A start that opened the pidfile just before a failed start removed it
// must not lock the removed file: it would run a daemon whose pidfile is
// gone, and the next start would run a second one. The fault shim holds
// the second launcher right before flock until the first start is over.
func TestHardeningPidfileRemovedBeforeLock(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "p.pid")
	gate := filepath.Join(dir, "gate")

	a := Spawn(t, probe, Opts{Args: []string{"-wait-usr1"},
		Env: []string{"CDAEMON_WAIT=ready", "CDAEMON_PIDFILE=" + pidfile}})
	apid := a.ReadReport(t).PID

	b := Spawn(t, probe, Opts{Env: []string{"CDAEMON_PIDFILE=" + pidfile,
		"LD_PRELOAD=" + faultShim(t), "HFAULT=flock:launcher:gate=" + gate}})
	eventually(t, "the second launcher at flock", func() bool {
		_, err := os.Stat(gate + ".reached")
		return err == nil
	})

	require.NoError(t, syscall.Kill(apid, syscall.SIGKILL)) // the first start fails
	a.Wait(t)
	require.Equal(t, 128+9, a.Status, a.Stderr)
	requireNoFile(t, pidfile, "the failed start removed its pidfile")

	require.NoError(t, os.WriteFile(gate, nil, 0o644))
	b.Wait(t)
	require.Equal(t, 0, b.Status, b.Stderr)
	bpid := b.ReadReport(t).PID
	defer b.Stop(t, bpid)
	_, err := os.Stat(pidfile)
	require.NoError(t, err, "the running daemon's pidfile must exist")
	assert.Equal(t, bpid, pidFromFile(t, pidfile))

	c := Launch(t, probe, []string{"CDAEMON_PIDFILE=" + pidfile})
	assert.Equal(t, 75, c.Status, "a second daemon started: %s", c.Stderr)
	requireNothingLeft(t, c)
}

// The pid a refused start names is the running daemon's, never a stale
// pid left in the file: the first launcher is held (by the fault shim)
// after it locked the pidfile and before the pid is written.
func TestHardeningRefusedStartNamesNoStalePid(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "p.pid")
	gate := filepath.Join(dir, "gate")
	require.NoError(t, os.WriteFile(pidfile, []byte("999999999\n"), 0o644))

	a := Spawn(t, probe, Opts{Env: []string{"CDAEMON_PIDFILE=" + pidfile,
		"LD_PRELOAD=" + faultShim(t), "HFAULT=ftruncate:middle:gate=" + gate}})
	eventually(t, "the first start between lock and pid", func() bool {
		_, err := os.Stat(gate + ".reached")
		return err == nil
	})
	b := Launch(t, probe, []string{"CDAEMON_PIDFILE=" + pidfile})
	assert.Equal(t, 75, b.Status, b.Stderr)
	assert.NotContains(t, b.Stderr, "999999999", "names a pid that is not running")
	requireNothingLeft(t, b)

	require.NoError(t, os.WriteFile(gate, nil, 0o644))
	a.Wait(t)
	require.Equal(t, 0, a.Status, a.Stderr)
	pid := pidFromFile(t, pidfile)
	a.Stop(t, pid)
	requireNothingLeft(t, a, pid)
}
