package tests

// Status, signal and stop by pidfile (cdaemon.FindDaemon, Daemon.Signal,
// Daemon.Stop): they act only on the process that holds the pidfile's
// lock and that the file names, never on a pid merely written in it.

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cdaemon/cdaemon"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type ctlReport struct {
	PID, SID, Child int
	Info            cdaemon.State
}

func ctl(t *testing.T) string { return program(t, "ctl", "./testdata/ctl", nil) }

// startCtl starts the ctl daemon with a pidfile d.pid in the run's
// directory and returns the run, its report and the pidfile's path.
func startCtl(t *testing.T, env []string, args ...string) (*Run, ctlReport, string) {
	t.Helper()
	r := Launch(t, ctl(t), append([]string{"CDAEMON_PIDFILE=d.pid"}, env...), args...)
	r.RequireStatus(t, 0)
	return r, readCtlReport(t, r), filepath.Join(r.Dir, "d.pid")
}

func readCtlReport(t *testing.T, r *Run) ctlReport {
	t.Helper()
	var rep ctlReport
	eventually(t, "the ctl report", func() bool {
		b, err := os.ReadFile(r.Report)
		return err == nil && json.Unmarshal(b, &rep) == nil
	})
	r.Track(rep.PID, rep.SID, rep.Child)
	return rep
}

// victim starts a process that must never be signalled, and kills it at
// the end of the test.
func victim(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("sleep", "1000")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd.Process.Pid
}

// requireAlive asserts pid is alive and was not signalled (not stopped,
// not a zombie).
func requireAlive(t *testing.T, pid int) {
	t.Helper()
	st, err := procStat(pid)
	require.NoError(t, err, "pid %d is gone", pid)
	require.Contains(t, []string{"S", "R"}, st.State, "pid %d", pid)
}

func pidfileError(t *testing.T, err error) *cdaemon.PidfileError {
	t.Helper()
	var pe *cdaemon.PidfileError
	require.True(t, errors.As(err, &pe), "want a *PidfileError, got %T: %v", err, err)
	return pe
}

// The daemon is found by its pidfile, signalled and stopped; the pidfile
// is removed.
func TestFindDaemonAndStop(t *testing.T) {
	t.Parallel()
	r, rep, pidfile := startCtl(t, []string{"CDAEMON_LOG=d.log"})
	d, err := cdaemon.FindDaemon(pidfile)
	require.NoError(t, err)
	defer d.Close()
	assert.Equal(t, rep.PID, d.PID)
	assert.Equal(t, pidfile, d.Pidfile)

	require.NoError(t, d.Signal(syscall.SIGUSR1))
	eventually(t, "the daemon's line for SIGUSR1", func() bool {
		b, _ := os.ReadFile(filepath.Join(r.Dir, "d.log"))
		return string(b) == "out 1\nerr 1\n"
	})

	killed, err := d.Stop(0, hang)
	require.NoError(t, err)
	assert.False(t, killed, "SIGTERM was enough")
	assert.NoFileExists(t, pidfile)
	ws := r.WaitExit(t, rep.PID)
	assert.True(t, ws.Exited() && ws.ExitStatus() == 0, "the daemon ended on SIGTERM: %v", ws)
	assert.ErrorIs(t, d.Signal(syscall.SIGUSR1), cdaemon.ErrNotRunning, "the pidfd outlives the process")
}

// A daemon that ignores the signal is killed after the timeout.
func TestStopKillsAfterTimeout(t *testing.T) {
	t.Parallel()
	r, rep, pidfile := startCtl(t, nil, "-ignore-term")
	d, err := cdaemon.FindDaemon(pidfile)
	require.NoError(t, err)
	defer d.Close()
	killed, err := d.Stop(syscall.SIGTERM, 50*time.Millisecond)
	require.NoError(t, err)
	assert.True(t, killed)
	assert.NoFileExists(t, pidfile)
	ws := r.WaitExit(t, rep.PID)
	assert.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "%v", ws)
}

// No pidfile, a stale one, a symbolic link: nothing to act on.
func TestFindDaemonNotRunning(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, err := cdaemon.FindDaemon(filepath.Join(dir, "none.pid"))
	assert.ErrorIs(t, err, fs.ErrNotExist)

	// A stale pidfile that names a live process of someone else: the
	// pid was reused. It must not be signalled (CVE-2017-11746 class).
	other := victim(t)
	stale := filepath.Join(dir, "stale.pid")
	require.NoError(t, os.WriteFile(stale, []byte(strconv.Itoa(other)+"\n"), 0o644))
	_, err = cdaemon.FindDaemon(stale)
	require.ErrorIs(t, err, cdaemon.ErrNotRunning)
	pe := pidfileError(t, err)
	assert.Equal(t, other, pe.PID)
	assert.Empty(t, pe.Holders)
	assert.Contains(t, err.Error(), "not running (it names pid "+strconv.Itoa(other)+", which holds no lock on it)")

	link := filepath.Join(dir, "link.pid")
	require.NoError(t, os.Symlink(stale, link))
	_, err = cdaemon.FindDaemon(link)
	assert.ErrorIs(t, err, cdaemon.ErrNotPidfile)
	requireAlive(t, other)
}

// A daemon that rewrites its pidfile (one that runs as the file's owner
// can, by its path) cannot aim Signal or Stop at another process: the
// daemon found is the process that holds the lock, whatever the file
// names, and Named says what it names. Stop stops the holder and leaves
// the named process alone.
func TestRewrittenPidfileNotTrusted(t *testing.T) {
	t.Parallel()
	for _, named := range []string{"another process", "pid 1", "garbage"} {
		t.Run(named, func(t *testing.T) {
			t.Parallel()
			target := map[string]int{"pid 1": 1, "garbage": -7}[named]
			if named == "another process" {
				target = victim(t)
			}
			r, rep, pidfile := startCtl(t, nil, "-write-pid", strconv.Itoa(target))
			d, err := cdaemon.FindDaemon(pidfile)
			require.NoError(t, err)
			defer d.Close()
			assert.Equal(t, rep.PID, d.PID, "the lock's holder")
			assert.Equal(t, max(target, 0), d.Named, "the pid the file names")
			killed, err := d.Stop(0, hang)
			require.NoError(t, err)
			assert.False(t, killed)
			r.WaitExit(t, rep.PID)
			if target > 1 {
				requireAlive(t, target)
			}
			assert.NoFileExists(t, pidfile)
			assert.NoFileExists(t, cdaemon.LockFile(pidfile))
		})
	}
}

// While the launcher waits (CDAEMON_WAIT=ready) it shares the lock with
// the daemon: the one the file names is the daemon. Stopping it makes the
// launcher give up and release the lock.
func TestFindDaemonWhileLauncherWaits(t *testing.T) {
	t.Parallel()
	r := Spawn(t, ctl(t), Opts{Env: []string{"CDAEMON_PIDFILE=d.pid", "CDAEMON_WAIT=ready"}})
	rep := readCtlReport(t, r)
	pidfile := filepath.Join(r.Dir, "d.pid")
	d, err := cdaemon.FindDaemon(pidfile)
	require.NoError(t, err)
	defer d.Close()
	assert.Equal(t, rep.PID, d.PID)
	assert.NotEqual(t, r.Launcher, d.PID)
	require.False(t, r.Exited(), "the launcher still waits")

	killed, err := d.Stop(0, hang)
	require.NoError(t, err)
	assert.False(t, killed)
	r.Wait(t)
	assert.NotZero(t, r.Status, "the daemon never became ready: %s", r.Stderr)
	assert.NoFileExists(t, pidfile)
}

// A child that inherited the locked descriptor without exec keeps the
// lock after the daemon exits: Stop says so, names it, and neither kills
// it nor removes the pidfile.
func TestStopLockSharedWithChild(t *testing.T) {
	t.Parallel()
	r, rep, pidfile := startCtl(t, nil, "-share-lock")
	require.NotZero(t, rep.Child)
	d, err := cdaemon.FindDaemon(pidfile)
	require.NoError(t, err)
	defer d.Close()
	assert.Equal(t, rep.PID, d.PID, "the file names the daemon, not its child")

	_, err = d.Stop(0, 50*time.Millisecond)
	require.ErrorIs(t, err, cdaemon.ErrStillLocked)
	assert.Equal(t, []int{rep.Child}, pidfileError(t, err).Holders)
	r.WaitExit(t, rep.PID)
	requireAlive(t, rep.Child)
	assert.FileExists(t, pidfile)
}

// Stop removes the pidfile only if the path still names the file it
// found: a file put there meanwhile stays.
func TestStopKeepsReplacedPidfile(t *testing.T) {
	t.Parallel()
	r, rep, pidfile := startCtl(t, nil)
	d, err := cdaemon.FindDaemon(pidfile)
	require.NoError(t, err)
	defer d.Close()
	require.NoError(t, os.Rename(pidfile, pidfile+".old"))
	require.NoError(t, os.WriteFile(pidfile, []byte("12345\n"), 0o644))
	_, err = d.Stop(0, hang)
	require.NoError(t, err)
	r.WaitExit(t, rep.PID)
	assert.Equal(t, "12345\n", readFile(t, pidfile))
}

// A program in the foreground (CDAEMON=off) locks its pidfile too: it is
// found and stopped the same way.
func TestFindDaemonInForeground(t *testing.T) {
	t.Parallel()
	r := Spawn(t, ctl(t), Opts{Env: []string{"CDAEMON=off", "CDAEMON_PIDFILE=d.pid"}})
	rep := readCtlReport(t, r)
	require.Equal(t, r.Launcher, rep.PID, "in the foreground")
	pidfile := filepath.Join(r.Dir, "d.pid")
	d, err := cdaemon.FindDaemon(pidfile)
	require.NoError(t, err)
	defer d.Close()
	assert.Equal(t, r.Launcher, d.PID)
	killed, err := d.Stop(0, hang)
	require.NoError(t, err)
	assert.False(t, killed)
	r.Wait(t)
	r.RequireStatus(t, 0)
	assert.NoFileExists(t, pidfile)
}

// A new daemon that took the pidfile over once the old one was gone (a
// supervisor restarting it) is not waited for, and keeps its pidfile.
func TestStopAfterRestart(t *testing.T) {
	t.Parallel()
	r, rep, pidfile := startCtl(t, nil)
	d, err := cdaemon.FindDaemon(pidfile)
	require.NoError(t, err)
	defer d.Close()
	require.NoError(t, syscall.Kill(rep.PID, syscall.SIGKILL))
	r.WaitExit(t, rep.PID)
	r2 := LaunchOpts(t, ctl(t), Opts{Dir: r.Dir, Env: []string{"CDAEMON_PIDFILE=d.pid"}})
	r2.RequireStatus(t, 0)
	rep2 := readCtlReport(t, r2)

	killed, err := d.Stop(0, hang)
	require.NoError(t, err)
	assert.False(t, killed)
	assert.Equal(t, strconv.Itoa(rep2.PID)+"\n", readFile(t, pidfile), "the new daemon's pidfile stays")
	requireAlive(t, rep2.PID)
}

// A pidfile with other names (hard links) is one cdaemon never locks, so
// it is never acted on either: the file may be someone else's with the
// daemon's lock on it, or the daemon's seen through a name an attacker
// made.
func TestFindDaemonRefusesHardLinks(t *testing.T) {
	t.Parallel()
	r, rep, pidfile := startCtl(t, nil)
	link := filepath.Join(t.TempDir(), "link.pid")
	require.NoError(t, os.Link(pidfile, link))
	for _, p := range []string{pidfile, link} {
		_, err := cdaemon.FindDaemon(p)
		assert.ErrorIs(t, err, cdaemon.ErrNotPidfile, p)
	}
	require.NoError(t, os.Remove(link))
	d, err := cdaemon.FindDaemon(pidfile)
	require.NoError(t, err)
	assert.Equal(t, rep.PID, d.PID)
	d.Close()
	r.Stop(t, rep.PID)

	stale := filepath.Join(t.TempDir(), "stale.pid")
	require.NoError(t, os.WriteFile(stale, []byte("1234\n"), 0o644))
	require.NoError(t, os.Link(stale, stale+".2"))
	removed, err := cdaemon.RemoveStalePidfile(stale)
	assert.False(t, removed)
	assert.ErrorIs(t, err, cdaemon.ErrNotPidfile)
	assert.FileExists(t, stale)
}
