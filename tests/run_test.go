package tests

// `cdaemon run [--] PROGRAM [ARGS...]` daemonizes any program: the
// constructor of the cdaemon command forks as for a Go program, and the
// daemon execs PROGRAM before the Go runtime starts. PROGRAM is found in
// PATH as env(1) finds it; a program that cannot be run gives 127 (not
// found) or 126 (not executable, a directory) as a shell does.

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runCommand starts `cdaemon run` with args and waits for the launcher.
func runCommand(t *testing.T, env []string, args ...string) *nrun {
	t.Helper()
	dir := t.TempDir()
	nr := &nrun{dir: dir, pidfile: filepath.Join(dir, "p.pid")}
	env = append([]string{"CDAEMON_PIDFILE=" + nr.pidfile}, env...)
	nr.Run = LaunchOpts(t, heartbeat(t), Opts{Env: env, Args: append([]string{"run"}, args...), Dir: dir})
	return nr
}

// environ reads /proc/PID/environ as a map.
func environ(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	require.NoError(t, err)
	m := map[string]string{}
	for _, kv := range strings.Split(string(b), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// A program that is no Go program runs as the daemon: the pid after exec
// is the daemon's, named by the pidfile, whose lock it holds for its life
// (the locked descriptor survives exec); `cdaemon status` and `stop` work
// on it. With the default wait the launcher returns once the exec
// succeeded.
func TestRunDaemonizesAnyProgram(t *testing.T) {
	t.Parallel()
	nr := runCommand(t, nil, "sleep", "3600")
	nr.RequireStatus(t, 0)
	pid := pidFromFile(t, nr.pidfile)
	nr.Track(pid)
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	require.NoError(t, err)
	assert.Equal(t, "sleep\n", string(comm), "the daemon is the program itself")
	st, err := procStat(pid)
	require.NoError(t, err)
	assert.NotEqual(t, pid, st.SID, "not a session leader")
	assert.Equal(t, 0, st.TTYNr, "no controlling terminal")
	for k := range environ(t, pid) {
		assert.False(t, strings.HasPrefix(k, "CDAEMON"), "%s in the program's environment", k)
	}
	c := command(t, "status", nr.pidfile)
	c.RequireStatus(t, 0)
	assert.Equal(t, nr.pidfile+": running, pid "+strconv.Itoa(pid)+"\n", c.Stdout)
	c = command(t, "stop", nr.pidfile)
	c.RequireStatus(t, 0)
	ws := nr.WaitExit(t, pid)
	assert.True(t, ws.Signaled() && ws.Signal() == syscall.SIGTERM, "%v", ws)
	assert.NoFileExists(t, nr.pidfile)
}

// CDAEMON_LISTEN's sockets reach the program with socket activation's
// environment naming the program's own pid.
func TestRunPassesListeners(t *testing.T) {
	t.Parallel()
	nr := runCommand(t, []string{"CDAEMON_LISTEN=tcp:127.0.0.1:0,unix:@cdaemon-run-" + strconv.Itoa(os.Getpid())},
		"--", "sleep", "3600")
	nr.RequireStatus(t, 0)
	pid := pidFromFile(t, nr.pidfile)
	nr.Track(pid)
	env := environ(t, pid)
	assert.Equal(t, strconv.Itoa(pid), env["LISTEN_PID"])
	assert.Equal(t, "2", env["LISTEN_FDS"])
	assert.Regexp(t, `^tcp-127\.0\.0\.1-[0-9]+:unix-@cdaemon-run-[0-9]+$`, env["LISTEN_FDNAMES"])
	fds := procFDs(t, pid)
	for _, fd := range []int{3, 4} {
		assert.True(t, strings.HasPrefix(fds[fd].Target, "socket:"), "fd %d: %s", fd, fds[fd].Target)
		assert.Zero(t, fds[fd].Flags&syscall.O_CLOEXEC, "fd %d survived the exec", fd)
	}
	nr.stopDaemon2(t, pid)
}

// stopDaemon2 stops a program that dies of SIGTERM.
func (nr *nrun) stopDaemon2(t *testing.T, pid int) {
	t.Helper()
	ws := nr.Stop(t, pid)
	assert.True(t, ws.Signaled() || ws.Exited(), "%v", ws)
}

// The privilege drop happens before the exec: the program runs as nobody.
func TestRunDropsPrivileges(t *testing.T) {
	needRoot(t)
	t.Parallel()
	nr := runCommand(t, []string{"CDAEMON_USER=nobody"}, "sleep", "3600")
	nr.RequireStatus(t, 0)
	pid := pidFromFile(t, nr.pidfile)
	nr.Track(pid)
	st := procStatus(t, pid)
	assert.Equal(t, "65534\t65534\t65534\t65534", st["Uid"])
	assert.Equal(t, "0000000000000000", st["CapEff"])
	nr.stopDaemon2(t, pid)
}

// Bad input: a precise message, a shell's status, nothing left running and
// no pidfile.
func TestRunBadProgram(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	require.NoError(t, os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644))
	garbage := filepath.Join(dir, "garbage")
	require.NoError(t, os.WriteFile(garbage, []byte("\x7fELF not really"), 0o755))
	cases := []struct {
		name   string
		args   []string
		status int
		want   []string
	}{
		{"nothing to run", nil, 2, []string{"missing PROGRAM"}},
		{"only --", []string{"--"}, 2, []string{"missing PROGRAM"}},
		{"not found in PATH", []string{"no-such-program-here"}, 127,
			[]string{"no-such-program-here", "not found"}},
		{"not found by path", []string{filepath.Join(dir, "missing")}, 127,
			[]string{filepath.Join(dir, "missing"), "No such file or directory"}},
		{"not executable", []string{plain}, 126, []string{plain, "Permission denied"}},
		{"a directory", []string{dir}, 126, []string{dir, "Is a directory"}},
		{"not a program the kernel can run", []string{garbage}, 126, []string{garbage, "Exec format error"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkZombies := noNewZombies(t)
			nr := runCommand(t, nil, tc.args...)
			nr.RequireStatus(t, tc.status)
			for _, w := range tc.want {
				assert.Contains(t, nr.Stderr, w)
			}
			requireNothingLeft(t, nr.Run)
			requireNoFile(t, nr.pidfile, "a start that failed")
			checkZombies()
		})
	}
}

// A program only root may run fails after the drop to nobody, in the
// daemon: 126, the reason, nothing left.
func TestRunExecFailsAfterDrop(t *testing.T) {
	needRoot(t)
	t.Parallel()
	prog := filepath.Join(sharedDir(t), "rootonly")
	require.NoError(t, os.WriteFile(prog, []byte("#!/bin/sh\nexec sleep 3600\n"), 0o700))
	nr := runCommand(t, []string{"CDAEMON_USER=nobody"}, prog)
	nr.RequireStatus(t, 126)
	assert.Contains(t, nr.Stderr, prog)
	assert.Contains(t, nr.Stderr, "Permission denied")
	requireNothingLeft(t, nr.Run)
	requireNoFile(t, nr.pidfile, "a start that failed")
}

// A program that exits before it is started... is started: with the
// default wait the exec is the wait point. One that exits before READY=1
// gives its own status.
func TestRunProgramExitsBeforeReady(t *testing.T) {
	t.Parallel()
	nr := runCommand(t, []string{"CDAEMON_WAIT=ready"}, "sh", "-c", "exit 5")
	nr.RequireStatus(t, 5)
	assert.Contains(t, nr.Stderr, "exited with status 5 before it was ready")
	requireNothingLeft(t, nr.Run)
	requireNoFile(t, nr.pidfile, "a start that failed")
}

// systemd's own systemd-notify, exec'd as the main process. As root it
// sends with the credentials of its parent unless told --pid=self (root
// can fake them; systemd-notify uses its parent's pid by default, as it
// is usually run from the service's shell); that datagram is not the
// daemon's and is ignored. As another user the kernel refuses the fake and
// it sends as itself: the daemon.
func TestRunSystemdNotify(t *testing.T) {
	needRoot(t)
	t.Parallel()
	sn := needTool(t, "systemd-notify", "systemd")
	t.Run("ready", func(t *testing.T) {
		t.Parallel()
		nr := startCommand(t, false, []string{"sh"}, nil, "-c",
			sn+` --pid=$$ --status=loading; while [ ! -e {dir}/go ]; do sleep 0.01; done; exec `+sn+` --ready --no-block --pid=self`)
		pid := nr.daemon(t)
		nr.waitSaid(t, "loading")
		assert.False(t, nr.Exited(), "%s", nr.said(t))
		require.NoError(t, os.WriteFile(filepath.Join(nr.dir, "go"), nil, 0o644))
		nr.finish(t)
		nr.RequireStatus(t, 0)
		ws := nr.WaitExit(t, pid) // systemd-notify exits once it sent READY=1
		assert.True(t, ws.Exited() && ws.ExitStatus() == 0, "%v", ws)
	})
	t.Run("as nobody, its own credentials", func(t *testing.T) {
		t.Parallel()
		nr := startCommand(t, false, []string{sn}, []string{"CDAEMON_USER=nobody"}, "--ready")
		nr.finish(t)
		nr.RequireStatus(t, 0)
		// Without --no-block it then sends BARRIER=1 and waits for the
		// launcher to close the descriptor it passes: the launcher,
		// gone after READY=1, may no longer be there to (exit 1).
		ws := nr.WaitExit(t, pidFromFile(t, nr.pidfile))
		assert.True(t, ws.Exited(), "%v", ws)
	})
	t.Run("ERRNO", func(t *testing.T) {
		t.Parallel()
		nr := startCommand(t, false, []string{"sh"}, nil, "-c", "exec "+sn+" --pid=self ERRNO=2; sleep 3600")
		nr.finish(t)
		nr.RequireStatus(t, 1)
		assert.Contains(t, nr.Stderr, "No such file or directory")
		requireNothingLeft(t, nr.Run)
	})
	t.Run("the parent's credentials are not the daemon's", func(t *testing.T) {
		t.Parallel()
		nr := startCommand(t, false, []string{sn}, nil, "--ready")
		nr.finish(t)
		nr.RequireStatus(t, 1)
		assert.Contains(t, nr.Stderr, "not the daemon")
		assert.Contains(t, nr.Stderr, "exited with status 0 before it was ready")
		requireNothingLeft(t, nr.Run)
		requireNoFile(t, nr.pidfile, "a start that failed")
	})
}

// In the foreground (CDAEMON=off, or under a supervisor) the command
// execs PROGRAM itself, in place: PROGRAM keeps the pid the supervisor
// started, holds the pidfile's lock, and gets no CDAEMON_* variable.
func TestRunInForeground(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "p.pid")
	r := Spawn(t, heartbeat(t), Opts{Dir: dir, Env: []string{"CDAEMON=off", "CDAEMON_PIDFILE=" + pidfile},
		Args: []string{"run", "sh", "-c", "echo $$ > " + filepath.Join(dir, "sh.pid") + "; exec sleep 3600"}})
	var pid int
	eventually(t, "the program to write its pid", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "sh.pid"))
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	assert.Equal(t, r.Launcher, pid, "PROGRAM runs in the process that was started")
	assert.Equal(t, pid, pidFromFile(t, pidfile))
	eventually(t, "sh to exec sleep", func() bool {
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		return string(comm) == "sleep\n"
	})
	for k := range environ(t, pid) {
		assert.False(t, strings.HasPrefix(k, "CDAEMON"), "%s in the program's environment", k)
	}
	c := command(t, "status", pidfile)
	c.RequireStatus(t, 0)
	assert.Equal(t, pidfile+": running, pid "+strconv.Itoa(pid)+"\n", c.Stdout)
	require.NoError(t, syscall.Kill(pid, syscall.SIGTERM))
	r.Wait(t)
	assert.Equal(t, 128+int(syscall.SIGTERM), r.Status)
}
