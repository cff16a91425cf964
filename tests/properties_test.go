package tests

// DESIGN.md's properties 4, 6, 7, 8, 12, 14 and 15, each on a real daemon
// and, where the kernel shows it, seen from outside (/proc) rather than
// as the daemon reports itself. Where a property could hold by accident
// (the launcher had nothing to reset), a control row runs the same start
// in the foreground (CDAEMON=off) and shows the probe sees the difference.

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// 4. Opening a pty without O_NOCTTY does not give the daemon a controlling
// terminal: it is not a session leader (the second fork).
func TestPtyNotAcquired(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		o    Opts
		want bool
	}{
		{"daemon", Opts{Args: []string{"-pty"}}, false},
		// What the daemon would be without the second fork.
		{"control: foreground session leader", Opts{Env: []string{"CDAEMON=off"},
			Args: []string{"-pty", "-exit", "0"}, Attr: &syscall.SysProcAttr{Setsid: true}}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := LaunchOpts(t, probe, tc.o)
			r.RequireStatus(t, 0)
			rep := r.ReadReport(t)
			require.Empty(t, rep.PtyErr)
			assert.Equal(t, tc.want, rep.PtyCTTY, "the pty became the controlling terminal")
		})
	}
}

// 6. No inherited descriptor survives, whatever its kind or number, except
// those in CDAEMON_KEEP_FDS; the lock file's stays, close-on-exec, and the
// status pipe is gone once the launcher was released.
func TestInheritedFDsClosed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := func(name string) *os.File {
		f, err := os.Create(filepath.Join(dir, name))
		require.NoError(t, err)
		t.Cleanup(func() { f.Close() })
		return f
	}
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	defer pr.Close()
	defer pw.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	sock, err := ln.(*net.TCPListener).File()
	require.NoError(t, err)
	defer sock.Close()

	// Descriptors 3..150 in the launcher; nil entries are closed there.
	files := make([]*os.File, 148)
	files[0] = file("fd3")
	files[1] = file("fd4")     // kept
	files[2] = pw              // fd 5: a pipe
	files[3] = sock            // fd 6: a socket
	files[97] = file("fd100")  // far above the others
	files[100] = file("fd103") // kept
	files[147] = file("fd150") // above every kept one
	kept := map[int]*os.File{4: files[1], 103: files[100]}

	r := LaunchOpts(t, probe, Opts{Files: files,
		Env: []string{"CDAEMON_KEEP_FDS=103,4", "CDAEMON_PIDFILE=p.pid"}})
	r.RequireStatus(t, 0)
	pid := r.ReadReport(t).PID
	fds := procFDs(t, pid)

	for n, f := range kept {
		want, err := f.Stat()
		require.NoError(t, err)
		if assert.Contains(t, fds, n, "kept fd %d was closed", n) {
			assert.True(t, os.SameFile(want, fds[n].Info), "fd %d is not the kept file: %s", n, fds[n].Target)
		}
	}
	for i, f := range files {
		if f == nil || kept[3+i] == f {
			continue
		}
		want, err := f.Stat()
		require.NoError(t, err)
		for n, fd := range fds {
			assert.False(t, fd.Info != nil && os.SameFile(want, fd.Info),
				"inherited fd %d (%s) survives as fd %d", 3+i, fd.Target, n)
		}
	}
	lock, err := os.Stat(filepath.Join(r.Dir, "p.pid.lock"))
	require.NoError(t, err)
	found := false
	for n, fd := range fds {
		assert.False(t, strings.HasPrefix(fd.Target, "pipe:"), "fd %d is a pipe: the status pipe was not closed", n)
		if fd.Info != nil && os.SameFile(lock, fd.Info) {
			found = true
			assert.NotZero(t, fd.Flags&unix.O_CLOEXEC, "the lock file's fd %d would leak its lock into programs the daemon runs", n)
		}
	}
	assert.True(t, found, "the daemon does not hold its lock file open (the lock)")
}

// 6. The status pipe is closed in the daemon as soon as the launcher is
// released: at once with none, after package init with start, after Ready
// with ready; until then it is the launcher's pipe.
func TestStatusPipeReleased(t *testing.T) {
	t.Parallel()
	pipes := func(fds map[int]FD) []string {
		var p []string
		for _, fd := range fds {
			if strings.HasPrefix(fd.Target, "pipe:") {
				p = append(p, fd.Target)
			}
		}
		return p
	}
	for _, wait := range []string{"none", "start"} {
		t.Run(wait, func(t *testing.T) {
			t.Parallel()
			r := Launch(t, probe, []string{"CDAEMON_WAIT=" + wait})
			r.RequireStatus(t, 0)
			rep := r.ReadReport(t)
			for n, target := range rep.FDs {
				assert.NotContains(t, target, "pipe:", "fd %d when main started", n)
			}
			assert.Empty(t, pipes(procFDs(t, rep.PID)))
		})
	}
	t.Run("ready", func(t *testing.T) {
		t.Parallel()
		r := Spawn(t, probe, Opts{Env: []string{"CDAEMON_WAIT=ready"}, Args: []string{"-wait-usr1"}})
		rep := r.ReadReport(t)
		held := pipes(procFDs(t, rep.PID))
		require.Len(t, held, 1, "before Ready the daemon holds the status pipe")
		assert.Contains(t, pipes(procFDs(t, r.Launcher)), held[0], "it is the launcher's pipe")
		assert.False(t, r.Exited(), "the launcher exited before Ready")

		require.NoError(t, syscall.Kill(rep.PID, syscall.SIGUSR1)) // Ready
		r.Wait(t)
		r.RequireStatus(t, 0)
		// Ready writes, then closes: the launcher may be gone first.
		eventually(t, "the daemon to close the status pipe after Ready", func() bool {
			return len(pipes(procFDs(t, rep.PID))) == 0
		})
	})
}

// 7. The umask and working directory are the configured ones (defaults 0
// and /); a relative CDAEMON_CHDIR is resolved against the launcher's
// working directory.
func TestUmaskAndDirectory(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	sub := filepath.Join(base, "sub")
	require.NoError(t, os.Mkdir(sub, 0o755))
	cases := []struct {
		name      string
		env       []string
		umask     string
		cwd       string
		launcherD string
	}{
		{"defaults", nil, "0000", "/", ""},
		{"configured", []string{"CDAEMON_UMASK=027", "CDAEMON_CHDIR=" + sub}, "0027", sub, ""},
		{"relative dir, one digit", []string{"CDAEMON_UMASK=7", "CDAEMON_CHDIR=sub"}, "0007", sub, base},
		{"everything masked", []string{"CDAEMON_UMASK=0777"}, "0777", "/", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The launcher's own umask must not leak through either.
			r := LaunchOpts(t, probe, Opts{Env: tc.env, Dir: tc.launcherD, Shell: "umask 022"})
			r.RequireStatus(t, 0)
			pid := r.ReadReport(t).PID
			assert.Equal(t, tc.umask, procStatus(t, pid)["Umask"])
			cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
			require.NoError(t, err)
			want, err := filepath.EvalSymlinks(tc.cwd)
			require.NoError(t, err)
			assert.Equal(t, want, cwd)
		})
	}
}

// sigbits is a signal set as /proc/PID/status shows it: bit sig-1.
func sigbits(sigs ...syscall.Signal) uint64 {
	var b uint64
	for _, s := range sigs {
		b |= 1 << (uint(s) - 1)
	}
	return b
}

// 8. The daemon starts with no signal ignored or blocked, even when the
// launcher inherited them (nohup, a shell's trap ”, a blocked mask), and
// SIGHUP, ignored by the middle while it forks, is not left ignored. The
// probe records the state before the Go runtime starts, which the runtime
// would otherwise carry on: it keeps an ignored SIGHUP or SIGINT ignored,
// and starts its threads with the inherited mask.
func TestSignalsReset(t *testing.T) {
	t.Parallel()
	ignored := sigbits(syscall.SIGHUP, syscall.SIGINT)
	blocked := []syscall.Signal{syscall.SIGUSR2, syscall.SIGTERM, syscall.SIGALRM}
	cases := []struct {
		name   string
		shell  string
		block  []syscall.Signal
		env    []string
		args   []string
		daemon bool
	}{
		{"plain start", "", nil, nil, nil, true},
		{"ignored and blocked in the launcher", "trap '' HUP INT", blocked, nil, nil, true},
		{"control: the same in the foreground", "trap '' HUP INT", blocked,
			[]string{"CDAEMON=off"}, []string{"-exit", "0"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := LaunchOpts(t, probe, Opts{Shell: tc.shell, Block: tc.block, Env: tc.env, Args: tc.args})
			r.RequireStatus(t, 0)
			rep := r.ReadReport(t)
			if !tc.daemon {
				assert.Equal(t, sigbits(blocked...), rep.StartSigBlk&sigbits(blocked...), "the launcher's mask was not set up")
				assert.Equal(t, ignored, rep.StartSigIgn&ignored, "the launcher's ignored signals were not set up")
				return
			}
			assert.Zero(t, rep.StartSigBlk, "signals blocked when Go starts: %#x", rep.StartSigBlk)
			assert.Zero(t, rep.StartSigIgn, "signals ignored when Go starts: %#x", rep.StartSigIgn)
			assert.Equal(t, "0000000000000000", procStatus(t, rep.PID)["SigIgn"], "seen from outside")
		})
	}
}

// 12. The Go runtime works in the daemon.
func TestGoRuntimeWorks(t *testing.T) {
	t.Parallel()
	r := Launch(t, probe, nil, "-runtime")
	r.RequireStatus(t, 0)
	rep := r.ReadReport(t)
	require.True(t, rep.Info.Daemonized)
	for _, check := range []string{"goroutines", "timers", "network", "signal.Notify", "os/exec"} {
		assert.Equal(t, "ok", rep.Runtime[check], check)
	}
}

// 14. However many variables are set, none is left in the daemon's
// environment (nor in its children's: they get os.Environ), the
// configuration still took effect, look-alike names that are not ours are
// kept, and the Go runtime starts (it finds the auxiliary vector past the
// end of the environment, so the array must keep its length).
func TestEnvironmentStripped(t *testing.T) {
	t.Parallel()
	all := []string{"CDAEMON=on", "CDAEMON_WAIT=ready", "CDAEMON_TIMEOUT=1m", "CDAEMON_PIDFILE=p.pid",
		"CDAEMON_LOG=log", "CDAEMON_STDOUT=out", "CDAEMON_STDERR=err", "CDAEMON_STDIN=/dev/null",
		"CDAEMON_CHDIR=.", "CDAEMON_UMASK=022", "CDAEMON_KEEP_FDS=3"}
	for _, n := range []int{1, 2, 3, 4, 5, len(all)} {
		t.Run(fmt.Sprintf("%d variables", n), func(t *testing.T) {
			t.Parallel()
			keep, err := os.Open("/dev/null")
			require.NoError(t, err)
			defer keep.Close()
			env := append([]string{"CDAEMONS=not ours"}, all[len(all)-n:]...)
			env = append(env, "XCDAEMON_WAIT=not ours")
			r := LaunchOpts(t, probe, Opts{Files: []*os.File{keep}, Args: []string{"-ready"}, Env: env})
			r.RequireStatus(t, 0)
			rep := r.ReadReport(t)
			for _, kv := range rep.Env {
				assert.NotRegexp(t, `^CDAEMON(=|_)`, kv)
			}
			assert.NotContains(t, rep.Env, "")
			assert.Contains(t, rep.Env, "CDAEMONS=not ours")
			assert.Contains(t, rep.Env, "XCDAEMON_WAIT=not ours")
			assert.Contains(t, rep.Env, "PROBE_TOKEN="+r.Token)
			assert.True(t, rep.Info.Daemonized)
			// Seen from outside too (ps e): the strings are wiped.
			environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", rep.PID))
			require.NoError(t, err)
			assert.NotRegexp(t, `(^|\x00)CDAEMON(=|_)`, string(environ))
			assert.Contains(t, string(environ), "CDAEMONS=not ours")
			if n == len(all) {
				assert.Equal(t, "on", rep.Info.Mode)
				assert.Equal(t, "ready", rep.Info.Wait)
				assert.Equal(t, filepath.Join(rep.Info.Dir, "p.pid"), rep.Info.Pidfile)
			}
		})
	}
}

// openPty opens a new pseudo-terminal. The ioctls go through the raw
// connection: File.Fd would make the master blocking, and the test reads
// it with a deadline.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { master.Close() })
	raw, err := master.SyscallConn()
	require.NoError(t, err)
	var n int
	require.NoError(t, raw.Control(func(fd uintptr) {
		if err = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); err == nil {
			n, err = unix.IoctlGetInt(int(fd), unix.TIOCGPTN)
		}
	}))
	require.NoError(t, err)
	slave, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	return master, slave
}

// 15. Started from a shell on a terminal, the daemon survives the
// terminal's hangup and a SIGHUP to the shell's session and process group.
// SIGHUP is at its default action in the daemon (property 8), so only being
// elsewhere protects it.
func TestSurvivesTerminalHangup(t *testing.T) {
	t.Parallel()
	master, slave := openPty(t)
	// The shell is a session leader with the pty as its controlling
	// terminal, like a login shell; it runs the program and stays.
	r := Spawn(t, "/bin/sh", Opts{Stdio: slave,
		Args: []string{"-c", `"$0" "$@"; echo "launcher status $?"; read line`, probe, "-listen", "127.0.0.1:0"},
		Attr: &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}})
	slave.Close()
	session := r.Launcher

	// Bounded only so a broken build cannot hang the suite.
	require.NoError(t, master.SetReadDeadline(time.Now().Add(hang)))
	var said strings.Builder
	for sc := bufio.NewScanner(master); sc.Scan(); {
		said.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "launcher status") {
			break
		}
	}
	require.Contains(t, said.String(), "launcher status 0")
	rep := r.ReadReport(t)
	st, err := procStat(rep.PID)
	require.NoError(t, err)
	require.NotEqual(t, session, st.SID, "the daemon is in the terminal's session")
	require.Zero(t, st.TTYNr)

	master.Close() // hangup: SIGHUP to the session's leader and foreground group
	r.Wait(t)
	for _, pid := range sessionMembers(session) {
		syscall.Kill(pid, syscall.SIGHUP)
	}
	syscall.Kill(-session, syscall.SIGHUP) // the group, if anything is left in it

	port := readFile(t, r.Report+".port")
	c, err := net.Dial("tcp", "127.0.0.1:"+port)
	require.NoError(t, err, "the daemon no longer serves")
	require.NoError(t, c.SetDeadline(time.Now().Add(hang))) // a hang is a failure
	line, err := bufio.NewReader(c).ReadString('\n')
	c.Close()
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("hello from %d\n", rep.PID), line)
	// SIGTERM after SIGHUP: had SIGHUP been fatal it would be seen first.
	ws := r.Stop(t, rep.PID)
	assert.True(t, ws.Exited() && ws.ExitStatus() == 0, "the daemon ended with %v", ws)
}

// The window between the middle's setsid and the daemon's signal reset.
// When a process group is orphaned while a member is stopped, the kernel
// sends the group SIGHUP, then SIGCONT; the classic recipe ignores SIGHUP
// in the middle so the daemon survives that. (Linux does not send them
// when the middle exits, as the middle's group is orphaned from the start
// by its setsid; anyone may still signal the group.) The test makes the
// window: the fault shim holds the daemon at its first step, before any
// reset; the test stops it, waits for the middle to exit, sends the group
// SIGHUP and SIGCONT as the kernel would, and lets the daemon go on. It
// must then start and run, with SIGHUP no longer ignored.
func TestSurvivesHangupWhileStarting(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	gate := filepath.Join(dir, "gate")
	pidfile := filepath.Join(dir, "p.pid")
	r := Spawn(t, probe, Opts{Args: []string{"-listen", "127.0.0.1:0"}, Env: []string{
		"CDAEMON_PIDFILE=" + pidfile, "LD_PRELOAD=" + faultShim(t), "HFAULT=dup2:daemon:gate=" + gate}})
	eventually(t, "the daemon held before its first dup2", func() bool {
		_, err := os.Stat(gate + ".reached")
		return err == nil
	})
	pid := pidFromFile(t, pidfile)
	st, err := procStat(pid)
	require.NoError(t, err)
	group := st.PGRP
	r.Track(pid, group)
	require.NotEqual(t, r.Launcher, group, "the daemon is still in the launcher's group")

	require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
	eventually(t, "the daemon stopped", func() bool {
		st, err := procStat(pid)
		return err == nil && st.State == "T"
	})
	eventually(t, "the middle process exited", func() bool { return !alive(group) })
	require.NoError(t, syscall.Kill(-group, syscall.SIGHUP))
	require.NoError(t, syscall.Kill(-group, syscall.SIGCONT))
	require.NoError(t, os.WriteFile(gate, nil, 0o644))

	r.Wait(t)
	r.RequireStatus(t, 0)
	rep := r.ReadReport(t)
	require.Equal(t, pid, rep.PID)
	assert.Zero(t, rep.StartSigIgn, "signals ignored when Go starts: %#x", rep.StartSigIgn)
	port := readFile(t, r.Report+".port")
	c, err := net.Dial("tcp", "127.0.0.1:"+port)
	require.NoError(t, err, "the daemon does not serve")
	require.NoError(t, c.SetDeadline(time.Now().Add(hang))) // a hang is a failure
	line, err := bufio.NewReader(c).ReadString('\n')
	c.Close()
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("hello from %d\n", pid), line)
	ws := r.Stop(t, pid)
	assert.True(t, ws.Exited() && ws.ExitStatus() == 0, "the daemon ended with %v", ws)
}

// sessionMembers lists the live processes in session sid.
func sessionMembers(sid int) []int {
	return processes(func(_ int, st Stat) bool { return st.SID == sid && st.State != "Z" })
}

// 16. The daemon's main thread is in the state a plain process's is:
// glibc's rseq area is registered with the kernel. A middle process made
// by vfork (CLONE_VM) loses the registration, and a daemon forked from it
// inherits the loss while glibc believes it registered: sched_getcpu goes
// stale and per-CPU allocators lose their abort protection. The probe asks
// the kernel from its package init, which runs on the main thread.
func TestMainThreadLikePlainProcess(t *testing.T) {
	t.Parallel()
	plain := Launch(t, probe, []string{"CDAEMON=off"}, "-exit", "0")
	plain.RequireStatus(t, 0)
	want := plain.ReadReport(t).Rseq
	require.NotEqual(t, 0, want, "a plain process has no rseq registration")

	r := Launch(t, probe, nil)
	r.RequireStatus(t, 0)
	rep := r.ReadReport(t)
	assert.Equal(t, want, rep.Rseq, "rseq registration of the daemon's main thread (1: registered, 0: lost, -1: libc has none)")
	r.Stop(t, rep.PID)
}

// The middle that shares the launcher's memory forks the daemon with
// _Fork, so no fork handler runs (pthread_atfork's: a preloaded malloc's
// or tracer's, which take their locks and write their state), neither in
// the middle, where it would run in the launcher's memory, nor in the
// daemon. A preloaded shim logs its loading and every handler that runs;
// a shell that forks with the shim loaded shows it logs them.
func TestMiddleRunsNoForkHandlers(t *testing.T) {
	t.Parallel()
	shim := atforkShim(t)
	dir := t.TempDir()
	control := filepath.Join(dir, "control")
	sh := exec.Command("/bin/sh", "-c", "(/bin/true)") // a subshell: fork(), not vfork
	sh.Env = append(os.Environ(), "LD_PRELOAD="+shim, "SHIM_ATFORK_LOG="+control)
	require.NoError(t, sh.Run())
	require.Contains(t, readFile(t, control), "child ", "the shim logs a fork's handlers")

	log := filepath.Join(dir, "log")
	r := Launch(t, probe, []string{"CDAEMON=on", "LD_PRELOAD=" + shim, "SHIM_ATFORK_LOG=" + log})
	r.RequireStatus(t, 0)
	rep := r.ReadReport(t)
	require.True(t, rep.Info.Daemonized, "reason: %s", rep.Info.Reason)
	r.Stop(t, rep.PID)
	got := readFile(t, log)
	require.Contains(t, got, "loaded ", "the shim was loaded in the probe")
	for _, h := range []string{"prepare ", "parent ", "child "} {
		assert.NotContains(t, got, h, "fork handlers ran while daemonizing")
	}
}

// A start reads nothing from /proc on its way to main unless a setting
// asks for it: the thread count is the kernel's answer to
// unshare(CLONE_THREAD), not /proc/self/task, and qemu-user is looked for
// only where that answer was no. strace -f records every path that the
// launcher, the middle and the daemon name, the daemon's until the
// probe's own constructor runs after cdaemon's (its access of
// PROBE_HOLD): what comes after is the program's.
func TestStartReadsNoProc(t *testing.T) {
	t.Parallel()
	strace := needTool(t, "strace", "strace")
	dir := t.TempDir()
	trace, marker := filepath.Join(dir, "trace"), filepath.Join(dir, "no-hold")
	r := Spawn(t, strace, Opts{
		Args: []string{"-f", "-qq", "-o", trace, "-e", "trace=%file", probe},
		Env:  []string{"CDAEMON=on", "CDAEMON_PIDFILE=p.pid", "CDAEMON_LOG=log", "PROBE_HOLD=" + marker},
	})
	rep := r.ReadReport(t)
	require.True(t, rep.Info.Daemonized, "reason: %s", rep.Info.Reason)
	r.Kill(t)

	ours := map[string]bool{} // pids seen before the daemon reached the marker
	var procs []string
	ended := false
	for _, line := range strings.Split(readFile(t, trace), "\n") {
		pid, call, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if !ended {
			ours[pid] = true
		}
		if !ours[pid] || ended && pid == strconv.Itoa(rep.PID) {
			continue
		}
		if strings.Contains(call, strconv.Quote(marker)) {
			ended = true
			continue
		}
		if strings.Contains(call, `"/proc`) {
			procs = append(procs, line)
		}
	}
	require.True(t, ended, "the daemon's constructor never ended in the trace:\n%s", readFile(t, trace))
	assert.Empty(t, procs, "paths in /proc named before main")
}

// 6, on a kernel without close_range (before 5.9): the daemon still closes
// every inherited descriptor, one above the descriptor limit included (a
// parent can lower its soft limit after opening it), by walking
// /proc/self/fd rather than counting up to a limit that may be 2^30. The
// fault shim makes close_range fail with ENOSYS.
func TestInheritedFDsClosedWithoutCloseRange(t *testing.T) {
	t.Parallel()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("needs bash for descriptors above 9")
	}
	wrapper := filepath.Join(t.TempDir(), "wrapper")
	require.NoError(t, os.WriteFile(wrapper, []byte("#!"+bash+`
ulimit -n 4096 && exec 3000</dev/null && exec 9</dev/null && ulimit -Sn 1024 && exec "$PROBE" "$@"
`), 0o755))
	r := LaunchOpts(t, wrapper, Opts{Env: []string{"PROBE=" + probe, "CDAEMON_PIDFILE=p.pid",
		"LD_PRELOAD=" + faultShim(t), "HFAULT=close_range:any:ENOSYS"}})
	r.RequireStatus(t, 0)
	pid := r.ReadReport(t).PID
	fds := procFDs(t, pid)
	assert.NotContains(t, fds, 9, "inherited fd 9 survived")
	assert.NotContains(t, fds, 3000, "inherited fd 3000, above the soft limit, survived")
	r.Stop(t, pid)
}
