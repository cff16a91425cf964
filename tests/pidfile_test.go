package tests

// The pidfile, all of it (property 9 and more): it holds the daemon's pid
// and a newline, is locked for the daemon's whole life (a second start
// fails with 75 naming the process that holds the lock), is taken over
// when stale, is never written through a symlink or a hard link nor where
// others can swap it, is not inherited by the daemon's children, goes away
// when a start fails, means one instance in the foreground too, and holds
// through a storm of concurrent starts.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/cdaemon/cdaemon"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pidText is what a pidfile holds for pid.
func pidText(pid int) string { return strconv.Itoa(pid) + "\n" }

func TestPidfileLockedWhileRunning(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "p.pid")
	env := []string{"CDAEMON_PIDFILE=p.pid"} // relative to the launcher's cwd
	first := LaunchOpts(t, probe, Opts{Dir: dir, Env: env})
	first.RequireStatus(t, 0)
	rep := first.ReadReport(t)
	assert.Equal(t, pidText(rep.PID), readFile(t, path))
	assert.Equal(t, path, rep.Info.Pidfile, "Info reports the absolute path")

	// The launcher is gone: the daemon alone holds the lock now.
	second := LaunchOpts(t, probe, Opts{Dir: dir, Env: env})
	second.RequireStatus(t, cdaemon.ExitTempFail)
	assert.Contains(t, second.Stderr, `"p.pid"`)
	assert.Contains(t, second.Stderr, "locked by pid "+strconv.Itoa(rep.PID))
	second.RequireGone(t)
	assert.Equal(t, pidText(rep.PID), readFile(t, path), "the failed start touched the pidfile")
	assert.True(t, alive(rep.PID))

	// Once the daemon is gone its pidfile is stale: the next start takes it.
	first.Stop(t, rep.PID)
	third := LaunchOpts(t, probe, Opts{Dir: dir, Env: env})
	third.RequireStatus(t, 0)
	assert.Equal(t, pidText(third.ReadReport(t).PID), readFile(t, path))
}

// A pidfile left by a daemon that died (no lock) is taken over, whatever it
// held: the new content is exactly the new pid, not written over the old
// (the pid is written, then the file cut to its length). The same holds
// for a program that stays in the foreground: it writes its own pid.
func TestPidfileStaleTakenOver(t *testing.T) {
	t.Parallel()
	for name, old := range map[string]string{
		"longer pid": "12345678901\n",
		"empty":      "",
		"garbage":    "not a pid at all, and quite a long line of it\n",
	} {
		for _, fg := range []bool{false, true} {
			t.Run(name+map[bool]string{false: "", true: ", foreground"}[fg], func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				path := filepath.Join(dir, "p.pid")
				require.NoError(t, os.WriteFile(path, []byte(old), 0o644))
				if !fg {
					r := LaunchOpts(t, probe, Opts{Dir: dir, Env: []string{"CDAEMON_PIDFILE=" + path}})
					r.RequireStatus(t, 0)
					assert.Equal(t, pidText(r.ReadReport(t).PID), readFile(t, path))
					return
				}
				r := Spawn(t, probe, Opts{Dir: dir, Env: []string{"CDAEMON=off", "CDAEMON_PIDFILE=" + path}})
				rep := r.ReadReport(t) // the pidfile is written before main
				require.Equal(t, r.Launcher, rep.PID, "in the foreground")
				assert.Equal(t, pidText(rep.PID), readFile(t, path))
				require.NoError(t, syscall.Kill(r.Launcher, syscall.SIGTERM))
				r.Wait(t)
				r.RequireStatus(t, 0)
			})
		}
	}
}

// The lock belongs to the daemon, not to what it runs: a child the daemon
// started (which may outlive it) does not keep the pidfile locked.
func TestPidfileLockNotInherited(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := []string{"CDAEMON_PIDFILE=p.pid"}
	r := LaunchOpts(t, probe, Opts{Dir: dir, Env: env, Args: []string{"-child"}})
	r.RequireStatus(t, 0)
	pid := r.ReadReport(t).PID
	var child int
	eventually(t, "the daemon's child", func() bool {
		for _, p := range r.Procs() {
			if st, err := procStat(p); err == nil && st.PPID == pid {
				child = p
			}
		}
		return child != 0
	})
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	r.WaitExit(t, pid)
	require.True(t, alive(child), "the child should outlive the daemon")

	next := LaunchOpts(t, probe, Opts{Dir: dir, Env: env})
	next.RequireStatus(t, 0)
}

// A symbolic link is refused (73), whether it points to a file or nowhere,
// and what it points to is neither written nor created.
func TestPidfileSymlinkRefused(t *testing.T) {
	t.Parallel()
	for _, dangling := range []bool{false, true} {
		name := map[bool]string{false: "to a file", true: "dangling"}[dangling]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			target := filepath.Join(dir, "target")
			if !dangling {
				require.NoError(t, os.WriteFile(target, []byte("precious\n"), 0o600))
			}
			link := filepath.Join(dir, "p.pid")
			require.NoError(t, os.Symlink(target, link))

			r := LaunchOpts(t, probe, Opts{Dir: dir, Env: []string{"CDAEMON_PIDFILE=p.pid"}})
			r.RequireStatus(t, cdaemon.ExitCantCreate)
			assert.Contains(t, r.Stderr, `"p.pid"`)
			assert.Contains(t, r.Stderr, "symbolic link")
			r.RequireGone(t)
			if dangling {
				_, err := os.Lstat(target)
				assert.True(t, os.IsNotExist(err), "the link's target was created")
			} else {
				assert.Equal(t, "precious\n", readFile(t, target))
				fi, err := os.Stat(target)
				require.NoError(t, err)
				assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
			}
			fi, err := os.Lstat(link)
			require.NoError(t, err)
			assert.Equal(t, os.ModeSymlink, fi.Mode().Type(), "the link was replaced")
		})
	}
}

// A start that fails does not leave a pidfile behind (a stale pidfile it
// took over included); a start refused before anything was forked never
// creates one.
func TestPidfileRemovedWhenStartFails(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		env    []string
		args   []string
		stale  bool
		status int
	}{
		{"Fail before Ready", []string{"CDAEMON_WAIT=ready"}, []string{"-fail", "no"}, false, 1},
		{"exit before Ready", []string{"CDAEMON_WAIT=ready"}, []string{"-exit", "3"}, false, 3},
		{"exit before Ready, stale pidfile", []string{"CDAEMON_WAIT=ready"}, []string{"-exit", "3"}, true, 3},
		{"timeout", []string{"CDAEMON_WAIT=ready", "CDAEMON_TIMEOUT=100ms"}, nil, false, 1},
		{"bad value", []string{"CDAEMON_UMASK=9"}, nil, false, 64},
		{"unopenable log", []string{"CDAEMON_LOG=nodir/log"}, nil, false, 73},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "p.pid")
			if tc.stale {
				require.NoError(t, os.WriteFile(path, []byte("1\n"), 0o644))
			}
			r := LaunchOpts(t, probe, Opts{Dir: dir, Args: tc.args,
				Env: append([]string{"CDAEMON_PIDFILE=p.pid"}, tc.env...)})
			r.RequireStatus(t, tc.status)
			r.RequireGone(t)
			_, err := os.Lstat(path)
			assert.True(t, os.IsNotExist(err), "the pidfile is left after a failed start")
			_, err = os.Lstat(path + ".lock")
			assert.True(t, os.IsNotExist(err), "the lock file is left after a failed start")
		})
	}
}

// In the foreground the pidfile still means one instance: the process
// locks it and writes its own pid, under the same rules and refusals.
func TestPidfileInForeground(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "p.pid")
	env := []string{"CDAEMON=off", "CDAEMON_PIDFILE=" + path}
	first := Spawn(t, probe, Opts{Env: env})
	eventually(t, "the foreground probe reported", func() bool {
		_, err := os.Stat(first.Report)
		return err == nil
	})
	rep := first.ReadReport(t)
	assert.False(t, rep.Info.Daemonized)
	assert.Equal(t, first.Launcher, rep.PID, "still the process started")
	assert.Equal(t, pidText(first.Launcher), readFile(t, path))
	assert.Equal(t, path, rep.Info.Pidfile)
	fds := procFDs(t, first.Launcher)
	locked := 0
	for n, fd := range fds {
		assert.NotEqual(t, path, fd.Target, "fd %d on the pidfile: only the lock file stays open", n)
		if fd.Target == path+".lock" {
			locked++
		}
	}
	assert.Equal(t, 1, locked, "one descriptor holds the lock: %v", fds)

	for _, mode := range []string{"off", "on"} {
		second := Launch(t, probe, []string{"CDAEMON=" + mode, "CDAEMON_PIDFILE=" + path})
		second.RequireStatus(t, cdaemon.ExitTempFail)
		requireOneClearLine(t, second.Stderr, "already running", "locked by pid "+strconv.Itoa(first.Launcher))
		second.RequireGone(t)
	}
	assert.Equal(t, pidText(first.Launcher), readFile(t, path), "a refused start touched the pidfile")

	link := filepath.Join(dir, "link.pid")
	require.NoError(t, os.Symlink(path, link))
	r := Launch(t, probe, []string{"CDAEMON=off", "CDAEMON_PIDFILE=" + link})
	r.RequireStatus(t, cdaemon.ExitCantCreate)
	requireOneClearLine(t, r.Stderr, "symbolic link")

	require.NoError(t, syscall.Kill(first.Launcher, syscall.SIGTERM))
	first.Wait(t)
	again := Launch(t, probe, []string{"CDAEMON=off", "CDAEMON_PIDFILE=" + path}, "-exit", "0")
	again.RequireStatus(t, 0)
	assert.Equal(t, pidText(again.Launcher), readFile(t, path), "the stale pidfile is taken over")
}

// "Already running" names the daemon whatever descriptor number its lock
// has: here the daemon opened a log first, so its locked descriptor has
// the number the refused launcher's own scan of /proc/PID/fd gets.
func TestPidfileRefusalSeesEveryDescriptor(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := LaunchOpts(t, probe, Opts{Dir: dir, Env: []string{"CDAEMON_PIDFILE=p.pid", "CDAEMON_LOG=log"}})
	first.RequireStatus(t, 0)
	daemon := first.ReadReport(t).PID
	second := LaunchOpts(t, probe, Opts{Dir: dir, Env: []string{"CDAEMON_PIDFILE=p.pid"}})
	second.RequireStatus(t, cdaemon.ExitTempFail)
	requireOneClearLine(t, second.Stderr, "already running")
	assert.True(t, strings.HasSuffix(second.Stderr, `"p.pid" is locked by pid `+strconv.Itoa(daemon)+"\n"),
		"names the daemon as the holder: %s", second.Stderr)
	second.RequireGone(t)
}

// "Already running" names the process the kernel shows holding the lock,
// never a pid merely written in the file: here the daemon is dead and a
// child that inherited its locked descriptor holds the lock.
func TestPidfileRefusalNamesTheLockHolder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "p.pid")
	first := Launch(t, probe, []string{"CDAEMON_PIDFILE=" + path, "CDAEMON_WAIT=ready"}, "-share-lock", "-ready")
	first.RequireStatus(t, 0)
	daemon := first.ReadReport(t).PID
	var holder int
	eventually(t, "the child holding the lock", func() bool {
		for _, pid := range first.Procs() {
			if comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); string(comm) == "sleep\n" {
				holder = pid
			}
		}
		return holder != 0
	})
	require.NoError(t, syscall.Kill(daemon, syscall.SIGKILL))
	first.WaitExit(t, daemon)
	require.Equal(t, pidText(daemon), readFile(t, path), "the file still names the dead daemon")

	second := Launch(t, probe, []string{"CDAEMON_PIDFILE=" + path})
	second.RequireStatus(t, cdaemon.ExitTempFail)
	requireOneClearLine(t, second.Stderr, "already running",
		"locked by pid "+strconv.Itoa(holder)+" (sleep), not by pid "+strconv.Itoa(daemon)+" that it names")
	second.RequireGone(t)
}

func TestHardeningPidfileTricks(t *testing.T) {
	// Symbolic links, to a file or dangling: TestPidfileSymlinkRefused.
	// A hard link is a second name for someone else's file: the pid would
	// be written into it (/etc/passwd in a sticky /tmp attack).
	t.Run("hard link", func(t *testing.T) {
		dir := t.TempDir()
		target := filepath.Join(dir, "precious")
		require.NoError(t, os.WriteFile(target, []byte("precious\n"), 0o644))
		require.NoError(t, os.Link(target, filepath.Join(dir, "p.pid")))
		r := LaunchOpts(t, probe, Opts{Dir: dir, Env: []string{"CDAEMON_PIDFILE=p.pid"}})
		requireCantCreate(t, r, "CDAEMON_PIDFILE", "link")
		b, _ := os.ReadFile(target)
		assert.Equal(t, "precious\n", string(b), "the other name's content is untouched")
	})
	for name, mk := range map[string]func(path string) error{
		"directory": func(p string) error { return os.Mkdir(p, 0o755) },
		"fifo":      func(p string) error { return syscall.Mkfifo(p, 0o644) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, mk(filepath.Join(dir, "p.pid")))
			r := LaunchOpts(t, probe, Opts{Dir: dir, Env: []string{"CDAEMON_PIDFILE=p.pid"}})
			requireCantCreate(t, r, "CDAEMON_PIDFILE")
		})
	}
	for _, p := range []string{"/dev/null", "missing/p.pid", "p.pid/", "/proc/self/status"} {
		t.Run(p, func(t *testing.T) {
			r := Launch(t, probe, []string{"CDAEMON_PIDFILE=" + p})
			requireCantCreate(t, r, "CDAEMON_PIDFILE")
		})
	}
}

// A pidfile in a world-writable directory. Without the sticky bit anyone
// can replace the file, so the lock proves nothing: refused. In a sticky
// directory (/tmp) others cannot touch our file, but one they planted
// there first (to keep us from starting, or to have us write through it)
// is refused; ours, stale or new, is fine.
func TestHardeningPidfileInWorldWritableDir(t *testing.T) {
	mkdir := func(mode os.FileMode) string {
		dir := filepath.Join(t.TempDir(), "run")
		require.NoError(t, os.Mkdir(dir, 0o755))
		require.NoError(t, os.Chmod(dir, mode))
		return dir
	}
	t.Run("not sticky", func(t *testing.T) {
		dir := mkdir(0o777)
		r := Launch(t, probe, []string{"CDAEMON_PIDFILE=" + dir + "/p.pid"})
		requireCantCreate(t, r, "CDAEMON_PIDFILE", "writable")
		requireNoFile(t, dir+"/p.pid", "refused")
	})
	t.Run("sticky, planted by another user", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to plant a file owned by another user")
		}
		dir := mkdir(0o777 | os.ModeSticky)
		pidfile := dir + "/p.pid"
		require.NoError(t, os.WriteFile(pidfile, []byte("1\n"), 0o666))
		require.NoError(t, os.Chown(pidfile, 65534, 65534))
		r := Launch(t, probe, []string{"CDAEMON_PIDFILE=" + pidfile})
		requireCantCreate(t, r, "CDAEMON_PIDFILE", "owned by")
		b, _ := os.ReadFile(pidfile)
		assert.Equal(t, "1\n", string(b))
	})
	for _, stale := range []bool{false, true} {
		t.Run(fmt.Sprintf("sticky, ours, stale=%v", stale), func(t *testing.T) {
			dir := mkdir(0o777 | os.ModeSticky)
			pidfile := dir + "/p.pid"
			if stale {
				require.NoError(t, os.WriteFile(pidfile, []byte("garbage"), 0o644))
			}
			r := Launch(t, probe, []string{"CDAEMON_PIDFILE=" + pidfile})
			require.Equal(t, 0, r.Status, r.Stderr)
			pid := pidFromFile(t, pidfile)
			r.Stop(t, pid)
			requireNothingLeft(t, r, pid)
		})
	}
}

var lockedBy = regexp.MustCompile(`locked by pid (\d+)`)

// A storm of starts on one pidfile: exactly one daemon, 75 for all the
// others, and a 75 that names a pid names the daemon that won. Run on a
// new pidfile and on a stale one (left by a daemon that was killed) whose
// old pid must not be named as the runner.
func TestHardeningStormOnOnePidfile(t *testing.T) {
	slow(t)
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
	assert.Equal(t, cdaemon.ExitTempFail, c.Status, "a second daemon started: %s", c.Stderr)
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
		"LD_PRELOAD=" + faultShim(t), "HFAULT=pwrite:middle:gate=" + gate}})
	eventually(t, "the first start between lock and pid", func() bool {
		_, err := os.Stat(gate + ".reached")
		return err == nil
	})
	b := Launch(t, probe, []string{"CDAEMON_PIDFILE=" + pidfile})
	assert.Equal(t, cdaemon.ExitTempFail, b.Status, b.Stderr)
	assert.NotContains(t, b.Stderr, "999999999", "names a pid that is not running")
	requireNothingLeft(t, b)

	require.NoError(t, os.WriteFile(gate, nil, 0o644))
	a.Wait(t)
	require.Equal(t, 0, a.Status, a.Stderr)
	pid := pidFromFile(t, pidfile)
	a.Stop(t, pid)
	requireNothingLeft(t, a, pid)
}

// A privilege drop that fails in the foreground, after the pidfile was
// taken, removes it like any failed start (the fault shim fails setresuid
// after every check passed).
func TestPidfileRemovedWhenForegroundDropFails(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop privileges")
	}
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "p.pid")
	r := Launch(t, probe, []string{"CDAEMON=off", "CDAEMON_USER=nobody", "CDAEMON_PIDFILE=" + pidfile,
		"LD_PRELOAD=" + faultShim(t), "HFAULT=setresuid:launcher:EPERM"})
	assert.NotEqual(t, 0, r.Status, "stderr: %s", r.Stderr)
	requireOneClearLine(t, r.Stderr, "setresuid")
	requireNoFile(t, pidfile, "the failed start's pidfile")
	requireNothingLeft(t, r)
}
