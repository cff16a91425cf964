package tests

// Faults: libc calls failing in each of the three processes (injected by
// an LD_PRELOAD shim), the daemon dying before the wait point, the
// launcher dying while it waits, full and read-only file systems, and a
// second thread before the constructor. Every failed start must give the
// documented status and a clear message, and leave nothing behind: no
// process, no zombie, no pidfile.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/cdaemon/cdaemon"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The daemon's pid, once the probe's report exists.
func reportPID(t *testing.T, r *Run) int {
	t.Helper()
	return r.ReadReport(t).PID
}

func TestHardeningInjectedFaults(t *testing.T) {
	shim := faultShim(t)
	cases := []struct {
		name   string
		fault  string // HFAULT; {dir} is the run's directory
		env    []string
		status int
		msg    []string
	}{
		{"fork in launcher", "fork:launcher:EAGAIN", nil, cdaemon.ExitOSErr,
			[]string{"fork", "Resource temporarily unavailable"}},
		{"fork in middle", "fork:middle:EAGAIN", nil, cdaemon.ExitOSErr,
			[]string{"fork", "Resource temporarily unavailable"}},
		{"setsid in middle", "setsid:middle:EPERM", nil, cdaemon.ExitOSErr,
			[]string{"setsid", "Operation not permitted"}},
		{"open log", "open:launcher:EACCES:out.log", []string{"CDAEMON_LOG=out.log"}, cdaemon.ExitCantCreate,
			[]string{"CDAEMON_LOG", "out.log", "Permission denied"}},
		{"open stdin", "open:launcher:EIO:in.txt", []string{"CDAEMON_STDIN=in.txt"}, cdaemon.ExitCantCreate,
			[]string{"CDAEMON_STDIN", "in.txt", "Input/output error"}},
		{"open pidfile", "open:launcher:EACCES:p.pid", nil, cdaemon.ExitCantCreate,
			[]string{"CDAEMON_PIDFILE", "p.pid", "Permission denied"}},
		{"open /dev/null", "open:launcher:EMFILE:/dev/null", nil, cdaemon.ExitCantCreate,
			[]string{"/dev/null", "Too many open files"}},
		{"open chdir", "open:launcher:EACCES:wd", []string{"CDAEMON_CHDIR=wd"}, cdaemon.ExitCantCreate,
			[]string{"CDAEMON_CHDIR", "Permission denied"}},
		{"pipe", "pipe2:launcher:EMFILE", nil, cdaemon.ExitOSErr,
			[]string{"pipe", "Too many open files"}},
		{"flock", "flock:launcher:EIO", nil, cdaemon.ExitCantCreate,
			[]string{"CDAEMON_PIDFILE", "lock", "Input/output error"}},
		{"pidfile write, disk full", "pwrite:middle:ENOSPC", nil, cdaemon.ExitCantCreate,
			[]string{"pid", "No space left on device"}},
		{"pidfile truncate", "ftruncate:middle:EIO", nil, cdaemon.ExitCantCreate,
			[]string{"pid", "Input/output error"}},
		{"dup2 in daemon", "dup2:daemon:EBADF", nil, cdaemon.ExitOSErr,
			[]string{"dup2", "Bad file descriptor"}},
		{"middle killed", "setsid:middle:kill", nil, 128 + 9,
			[]string{"intermediate process", "signal 9"}},
		{"daemon killed before start", "dup2:daemon:kill", nil, 128 + 9,
			[]string{"daemon", "signal 9"}},
		{"daemon exits before start", "dup2:daemon:exit=5", nil, 5,
			[]string{"daemon", "status 5"}},
		{"status pipe write in middle, wait=none", "write:middle:EIO",
			[]string{"CDAEMON_WAIT=none"}, -1, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkZombies := noNewZombies(t)
			env := append([]string{"LD_PRELOAD=" + shim, "HFAULT=" + tc.fault,
				"CDAEMON_PIDFILE=p.pid"}, tc.env...)
			r := Launch(t, probe, env)
			pidfile := filepath.Join(r.Dir, "p.pid")
			if tc.status < 0 {
				assert.NotEqual(t, 0, r.Status, "a start that could not report must not succeed; stderr: %s", r.Stderr)
			} else {
				assert.Equal(t, tc.status, r.Status, "stderr: %s", r.Stderr)
			}
			for _, m := range tc.msg {
				assert.Contains(t, r.Stderr, m)
			}
			assert.Equal(t, 1, strings.Count(r.Stderr, "\n"), "one line of explanation: %q", r.Stderr)
			requireNothingLeft(t, r)
			requireNoFile(t, pidfile, "the start failed")
			requireNoFile(t, r.Report, "the program's main never ran")
			checkZombies()
		})
	}
}

// The daemon killed right after the fork, again and again: the launcher
// sees the status pipe close as the middle exits, maybe before the daemon
// is re-parented to it; it must still report the signal (never "status
// 0", never success) and reap the daemon.
func TestHardeningDaemonKilledEarlyRepeated(t *testing.T) {
	shim := faultShim(t)
	checkZombies := noNewZombies(t)
	for i := 0; i < 40; i++ {
		r := Launch(t, probe, []string{"LD_PRELOAD=" + shim, "HFAULT=dup2:daemon:kill"})
		require.Equal(t, 128+9, r.Status, "run %d: %s", i, r.Stderr)
		require.Contains(t, r.Stderr, "killed by signal 9", "run %d", i)
		requireNothingLeft(t, r)
	}
	checkZombies()
}

// A write to the status pipe that fails in the middle process, with the
// default wait: either the start succeeds with a daemon running and its
// pid in the pidfile, or it fails and leaves nothing. Never half of each.
func TestHardeningStatusWriteFailsWaitStart(t *testing.T) {
	r := Launch(t, probe, []string{"LD_PRELOAD=" + faultShim(t),
		"HFAULT=write:middle:EIO", "CDAEMON_PIDFILE=p.pid"})
	pidfile := filepath.Join(r.Dir, "p.pid")
	if r.Status == 0 {
		pid := pidFromFile(t, pidfile)
		require.Equal(t, pid, reportPID(t, r))
		r.Stop(t, pid)
	} else {
		requireNoFile(t, pidfile, "the start failed")
	}
	requireNothingLeft(t, r)
}

// The daemon ends before the wait point: the launcher exits with the
// daemon's own status (128+signal when killed), says so, and removes the
// pidfile; the daemon is reaped.
func TestHardeningDaemonDiesBeforeReady(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		status int
		msg    string
	}{
		{"exit", []string{"-exit", "3"}, 3, "exited with status 3 before it was ready"},
		{"panic", []string{"-panic"}, 2, "exited with status 2 before it was ready"},
		{"Fail", []string{"-fail", "cannot bind :80"}, 1, "cannot bind :80"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := LaunchOpts(t, probe, Opts{Args: tc.args,
				Env: []string{"CDAEMON_WAIT=ready", "CDAEMON_PIDFILE=p.pid"}})
			assert.Equal(t, tc.status, r.Status, "stderr: %s", r.Stderr)
			assert.Contains(t, r.Stderr, tc.msg)
			pid := reportPID(t, r)
			requireNothingLeft(t, r, pid)
			requireNoFile(t, filepath.Join(r.Dir, "p.pid"), "the start failed")
		})
	}
	t.Run("killed", func(t *testing.T) {
		r := Spawn(t, probe, Opts{Args: []string{"-wait-usr1"},
			Env: []string{"CDAEMON_WAIT=ready", "CDAEMON_PIDFILE=p.pid"}})
		pid := reportPID(t, r)
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
		r.Wait(t)
		assert.Equal(t, 128+9, r.Status, "stderr: %s", r.Stderr)
		assert.Contains(t, r.Stderr, "killed by signal 9")
		requireNothingLeft(t, r, pid)
		requireNoFile(t, filepath.Join(r.Dir, "p.pid"), "the start failed")
	})
}

// A daemon that exits 0 before it was ready did not start: the launcher
// must not report success to the shell (an init script would think the
// service is up). DESIGN.md says "its own exit status"; for 0 that is a
// lie, so the proposal maps it to 1.
func TestHardeningDaemonExitZeroBeforeReady(t *testing.T) {
	r := LaunchOpts(t, probe, Opts{Args: []string{"-exit", "0"},
		Env: []string{"CDAEMON_WAIT=ready", "CDAEMON_PIDFILE=p.pid"}})
	assert.NotEqual(t, 0, r.Status, "stderr: %s", r.Stderr)
	assert.Contains(t, r.Stderr, "exited with status 0 before it was ready")
	requireNothingLeft(t, r, reportPID(t, r))
	requireNoFile(t, filepath.Join(r.Dir, "p.pid"), "the start failed")
}

// The launcher is killed while it waits for Ready: the daemon lives on,
// keeps its pidfile, and a later Ready() returns nil (the probe exits 3 if
// Ready fails, 0 after Ready and SIGTERM).
func TestHardeningLauncherKilledWhileWaiting(t *testing.T) {
	r := Spawn(t, probe, Opts{Args: []string{"-wait-usr1"},
		Env: []string{"CDAEMON_WAIT=ready", "CDAEMON_PIDFILE=p.pid"}})
	dir := r.Dir
	pid := reportPID(t, r)
	require.NoError(t, syscall.Kill(r.Launcher, syscall.SIGKILL))
	r.Wait(t)
	require.Equal(t, 128+9, r.Status)

	st, err := procStat(pid)
	require.NoError(t, err, "the daemon died with its launcher")
	assert.NotEqual(t, "Z", st.State)
	assert.Equal(t, os.Getpid(), st.PPID, "re-parented to the subreaper above the launcher")
	assert.Equal(t, pid, pidFromFile(t, filepath.Join(dir, "p.pid")))

	require.NoError(t, syscall.Kill(pid, syscall.SIGUSR1)) // -> Ready()
	require.NoError(t, syscall.Kill(pid, syscall.SIGTERM)) // then exit 0
	var ws syscall.WaitStatus
	_, err = syscall.Wait4(pid, &ws, 0, nil)
	require.NoError(t, err)
	assert.True(t, ws.Exited() && ws.ExitStatus() == 0,
		"Ready() with the launcher gone must return nil and leave the daemon running: %v", ws)
	requireNothingLeft(t, r, pid)
}

// mountTmpfs mounts a tmpfs of one page at a fresh directory, made read
// only if ro; it is unmounted when the test ends.
func mountTmpfs(t *testing.T, ro bool) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	require.NoError(t, os.Mkdir(dir, 0o755))
	flags := uintptr(0)
	if ro {
		flags = unix.MS_RDONLY
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", flags, "size=4k,mode=0755"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mounting a tmpfs (CI runs as root): %v", err)
		}
		t.Skipf("cannot mount a tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// fill writes to dir until the file system is full.
func fill(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	require.NoError(t, err)
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			require.ErrorIs(t, err, syscall.ENOSPC)
			return
		}
	}
}

func TestHardeningFullDisk(t *testing.T) {
	// The pidfile on a full file system: creating it works, writing the
	// pid does not. 73, a message, nothing left, and no pidfile.
	t.Run("pidfile", func(t *testing.T) {
		mnt := mountTmpfs(t, false)
		fill(t, mnt)
		pidfile := filepath.Join(mnt, "p.pid")
		r := Launch(t, probe, []string{"CDAEMON_PIDFILE=" + pidfile})
		assert.Equal(t, cdaemon.ExitCantCreate, r.Status, "stderr: %s", r.Stderr)
		assert.Contains(t, r.Stderr, "No space left on device")
		requireNothingLeft(t, r)
		requireNoFile(t, pidfile, "the start failed")
	})
	// The log on a full file system (or /dev/full): cdaemon cannot know
	// before the program writes, so the start itself succeeds; but a start
	// failure must still reach the user's terminal through the launcher.
	for _, where := range []string{"tmpfs", "/dev/full"} {
		t.Run("log on "+where, func(t *testing.T) {
			log := "/dev/full"
			if where == "tmpfs" {
				mnt := mountTmpfs(t, false)
				log = filepath.Join(mnt, "out.log")
				require.NoError(t, os.WriteFile(log, nil, 0o640)) // the inode exists
				fill(t, mnt)
			}
			r := Launch(t, probe, []string{"CDAEMON_LOG=" + log, "CDAEMON_WAIT=ready"},
				"-say", "hello", "-fail", "disk trouble")
			assert.Equal(t, 1, r.Status, "stderr: %s", r.Stderr)
			assert.Contains(t, r.Stderr, "disk trouble", "Fail's message reaches the terminal")
			requireNothingLeft(t, r, reportPID(t, r))

			r = Launch(t, probe, []string{"CDAEMON_LOG=" + log}, "-say", "hello")
			require.Equal(t, 0, r.Status, "stderr: %s", r.Stderr)
			pid := reportPID(t, r)
			r.Stop(t, pid)
			requireNothingLeft(t, r, pid)
		})
	}
}

// An unwritable log directory: 73 naming the path and the errno, and no
// process. A read-only mount, since root ignores permission bits.
func TestHardeningUnwritableLogDir(t *testing.T) {
	mnt := mountTmpfs(t, true)
	for _, v := range []string{"CDAEMON_LOG", "CDAEMON_STDOUT", "CDAEMON_STDERR"} {
		t.Run(v, func(t *testing.T) {
			log := filepath.Join(mnt, "out.log")
			r := Launch(t, probe, []string{v + "=" + log, "CDAEMON_PIDFILE=p.pid"})
			assert.Equal(t, cdaemon.ExitCantCreate, r.Status, "stderr: %s", r.Stderr)
			assert.Contains(t, r.Stderr, v)
			assert.Contains(t, r.Stderr, log)
			assert.Contains(t, r.Stderr, "Read-only file system")
			requireNothingLeft(t, r)
			requireNoFile(t, filepath.Join(r.Dir, "p.pid"), "the start failed")
		})
	}
}

// A thread started before the constructor (by a preloaded library): fork
// would copy only one of them, so cdaemon refuses with 70 and forks
// nothing; CDAEMON=off runs in the foreground as asked.
func TestHardeningSecondThreadRefused(t *testing.T) {
	shim := threadShim(t)
	for _, mode := range []string{"auto", "on"} {
		t.Run(mode, func(t *testing.T) {
			r := Launch(t, probe, []string{"LD_PRELOAD=" + shim, "CDAEMON=" + mode, "CDAEMON_PIDFILE=p.pid"})
			assert.Equal(t, cdaemon.ExitSoftware, r.Status, "stderr: %s", r.Stderr)
			assert.Contains(t, r.Stderr, "2 threads")
			assert.Contains(t, r.Stderr, "CDAEMON=off")
			requireNothingLeft(t, r)
			requireNoFile(t, filepath.Join(r.Dir, "p.pid"), "nothing was started")
			requireNoFile(t, r.Report, "main never ran")
		})
	}
	t.Run("off", func(t *testing.T) {
		r := Spawn(t, probe, Opts{Env: []string{"LD_PRELOAD=" + shim, "CDAEMON=off"}})
		rep := r.ReadReport(t)
		assert.False(t, rep.Info.Daemonized)
		assert.Equal(t, r.Launcher, rep.PID, "in the foreground")
		require.NoError(t, syscall.Kill(r.Launcher, syscall.SIGTERM))
		r.Wait(t)
		requireNothingLeft(t, r)
	})
}

// Without /proc (a chroot or a container that did not mount it) a start
// still knows the process has one thread: the kernel says so
// (unshare(CLONE_THREAD) succeeds only then), so it daemonizes. With a
// second thread the kernel says no, and only /proc/self/task could tell
// how many and whether one is qemu-user's: refused with 70 and a message
// saying /proc cannot be read, with nothing forked or created, rather
// than daemonizing unchecked. The probe runs in its own mount namespace
// (made private by os/exec) with an empty tmpfs on /proc.
func TestHardeningNoProc(t *testing.T) {
	attr := &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	try := exec.Command("/bin/sh", "-c", "mount -t tmpfs none /proc && test ! -e /proc/self")
	try.SysProcAttr = attr
	if out, err := try.CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("a mount namespace with an empty /proc (CI runs as root): %v %s", err, out)
		}
		t.Skipf("cannot make a mount namespace with an empty /proc (needs root): %v %s", err, out)
	}
	t.Run("daemonizes", func(t *testing.T) {
		r := LaunchOpts(t, probe, Opts{Attr: attr, Shell: "mount -t tmpfs none /proc || exit 99",
			Env: []string{"CDAEMON=on", "CDAEMON_PIDFILE=p.pid", "CDAEMON_LOG=log"}})
		r.RequireStatus(t, 0)
		assert.Empty(t, r.Stderr)
		rep := r.ReadReport(t)
		assert.True(t, rep.Info.Daemonized, "reason: %s", rep.Info.Reason)
		assert.NotEqual(t, r.Launcher, rep.PID)
		assert.Equal(t, strconv.Itoa(rep.PID), strings.TrimSpace(readFile(t, filepath.Join(r.Dir, "p.pid"))))
		r.Stop(t, rep.PID)
		requireNothingLeft(t, r)
	})
	shim := threadShim(t)
	for _, mode := range []string{"auto", "on"} {
		t.Run("second thread/"+mode, func(t *testing.T) {
			r := LaunchOpts(t, probe, Opts{Attr: attr, Shell: "mount -t tmpfs none /proc || exit 99",
				Env: []string{"LD_PRELOAD=" + shim, "CDAEMON=" + mode, "CDAEMON_PIDFILE=p.pid", "CDAEMON_LOG=log"}})
			r.RequireStatus(t, cdaemon.ExitSoftware)
			requireOneClearLine(t, r.Stderr, "probe: cdaemon: cannot daemonize safely: /proc/self/task cannot be read",
				"mount /proc", "CDAEMON=off")
			requireNothingLeft(t, r)
			requireNoFile(t, filepath.Join(r.Dir, "p.pid"), "nothing was started")
			requireNoFile(t, filepath.Join(r.Dir, "log"), "nothing was opened")
			requireNoFile(t, r.Report, "main never ran")
		})
	}
}
