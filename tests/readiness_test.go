package tests

// Readiness through systemd's notify protocol (sd_notify(3)): with
// CDAEMON_WAIT=ready the launcher offers a socket in NOTIFY_SOCKET and
// returns when the daemon sends READY=1 there. The servers are real
// clients of the protocol nobody here wrote the client side of: a Go
// server using coreos/go-systemd's daemon.SdNotify (daemonized by the
// library, and under `cdaemon run`), a C server with a raw socket, a
// Python server with a socket and with python3-systemd, and systemd's own
// systemd-notify exec'd as the main process. Every datagram is input from
// a process that may be hostile: only the daemon's pid is heard.

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// notifier is a server that speaks the protocol, with the options of
// testdata/notify/server.c.
type notifier struct {
	name    string
	argv    func(t *testing.T) []string // the program and its first arguments
	lib     bool                        // daemonizes itself through package cdaemon, else `cdaemon run`
	mainpid bool                        // has -mainpid
}

func notifyGo(t *testing.T, tags ...string) string {
	name := "notifygo"
	args := []string{"-C", "testdata/notifygo", "build"}
	if len(tags) > 0 {
		name += "-" + strings.Join(tags, "-")
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	return hbuild(t, name, nil, "go", append(args, "-o", filepath.Join(binDir, name), ".")...)
}

func notifyC(t *testing.T) string {
	return hbuild(t, "notify-server", nil, "gcc", "-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror",
		"-o", filepath.Join(binDir, "notify-server"), "testdata/notify/server.c")
}

// debianPython is Debian's python3, which has python3-systemd (a pyenv
// python first in PATH would not).
func debianPython(t *testing.T, module string) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		needTool(t, "/usr/bin/python3", "python3")
	}
	if module != "" && exec.Command(py, "-c", "import "+module).Run() != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s cannot import %s: CI must install python3-systemd", py, module)
		}
		t.Skipf("%s cannot import %s (apt-get install python3-systemd); skipping", py, module)
	}
	return py
}

func pythonServer(t *testing.T) string {
	src, err := filepath.Abs("testdata/notify/server.py")
	require.NoError(t, err)
	return src
}

var notifiers = []notifier{
	{name: "go-systemd/library", lib: true, mainpid: true,
		argv: func(t *testing.T) []string { return []string{notifyGo(t, "lib")} }},
	{name: "go-systemd/run", mainpid: true,
		argv: func(t *testing.T) []string { return []string{notifyGo(t)} }},
	{name: "c/run", mainpid: true,
		argv: func(t *testing.T) []string { return []string{notifyC(t)} }},
	{name: "python-socket/run",
		argv: func(t *testing.T) []string { return []string{debianPython(t, ""), pythonServer(t)} }},
	{name: "python3-systemd/run",
		argv: func(t *testing.T) []string {
			return []string{debianPython(t, "systemd.daemon"), pythonServer(t), "-lib"}
		}},
}

// nrun is one start of a notifier; the launcher's stderr goes to a file
// the test can watch while the launcher waits.
type nrun struct {
	*Run
	dir, pidfile, stderr string
}

// startNotifier spawns n with CDAEMON_WAIT=ready and a pidfile, and
// returns at once.
func startNotifier(t *testing.T, n notifier, env []string, args ...string) *nrun {
	t.Helper()
	return startCommand(t, n.lib, n.argv(t), env, args...)
}

// startCommand spawns argv (with args after it) as a daemon: by itself
// when lib, else under `cdaemon run --`.
func startCommand(t *testing.T, lib bool, argv, env []string, args ...string) *nrun {
	t.Helper()
	dir := t.TempDir()
	nr := &nrun{dir: dir, pidfile: filepath.Join(dir, "p.pid"), stderr: filepath.Join(dir, "stderr")}
	f, err := os.OpenFile(nr.stderr, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	require.NoError(t, err)
	defer f.Close()
	for i, a := range args { // the daemon runs in /: files go in the test's directory
		args[i] = strings.ReplaceAll(a, "{dir}", dir)
	}
	bin, all := argv[0], append(argv[1:], args...)
	if !lib {
		bin, all = heartbeat(t), append([]string{"run", "--", argv[0]}, all...)
	}
	env = append([]string{"CDAEMON_WAIT=ready", "CDAEMON_PIDFILE=" + nr.pidfile}, env...)
	nr.Run = Spawn(t, bin, Opts{Env: env, Args: all, Dir: dir, Stdio: f})
	return nr
}

// said is what the launcher printed so far.
func (nr *nrun) said(t *testing.T) string { return readFile(t, nr.stderr) }

// waitSaid waits until the launcher printed want.
func (nr *nrun) waitSaid(t *testing.T, want string) {
	t.Helper()
	eventually(t, fmt.Sprintf("the launcher to print %q (it printed %q)", want, nr.said(t)), func() bool {
		return strings.Contains(nr.said(t), want) || nr.Exited()
	})
	require.Contains(t, nr.said(t), want)
}

// finish waits for the launcher and records what it printed.
func (nr *nrun) finish(t *testing.T) {
	t.Helper()
	nr.Wait(t)
	nr.Stderr = nr.said(t)
}

// daemon is the pid the pidfile names, tracked as this run's.
func (nr *nrun) daemon(t *testing.T) int {
	t.Helper()
	var pid int
	eventually(t, "the pidfile "+nr.pidfile, func() bool {
		b, err := os.ReadFile(nr.pidfile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && strings.HasSuffix(string(b), "\n") && pid > 0
	})
	nr.Track(pid)
	return pid
}

// ask connects to the port the server wrote and returns its answer.
func ask(t *testing.T, portFile string) string {
	t.Helper()
	port, err := os.ReadFile(portFile)
	require.NoError(t, err, "the server writes its port before READY=1")
	c, err := net.Dial("tcp", "127.0.0.1:"+string(port))
	require.NoError(t, err, "the server listens once it said READY=1")
	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	return strings.TrimSpace(line)
}

// stopDaemon stops the daemon of a finished start and checks it exits 0.
func (nr *nrun) stopDaemon(t *testing.T, pid int) {
	t.Helper()
	ws := nr.Stop(t, pid)
	assert.True(t, ws.Exited() && ws.ExitStatus() == 0, "the server ends on SIGTERM: %v", ws)
}

// The launcher returns after READY=1, not before: while the server loads
// it waits (and shows the server's STATUS=), and the moment it returns the
// server answers on the port it bound itself, as the daemon's own pid.
func TestReadinessLauncherReturnsAfterReady(t *testing.T) {
	t.Parallel()
	for _, n := range notifiers {
		t.Run(n.name, func(t *testing.T) {
			t.Parallel()
			checkZombies := noNewZombies(t)
			nr := startNotifier(t, n, nil, "-status", "starting up", "-wait-usr1", "-port", "{dir}/port")
			pid := nr.daemon(t)
			nr.waitSaid(t, "loading")
			assert.False(t, nr.Exited(), "the launcher returned before READY=1: %s", nr.said(t))
			requireNoFile(t, filepath.Join(nr.dir, "port"), "the server has not loaded yet")
			require.NoError(t, syscall.Kill(pid, syscall.SIGUSR1))
			nr.finish(t)
			nr.RequireStatus(t, 0)
			assert.Equal(t, fmt.Sprintf("ok %d", pid), ask(t, filepath.Join(nr.dir, "port")))
			assert.Contains(t, nr.Stderr, "starting up", "STATUS= is shown while waiting")
			nr.stopDaemon(t, pid)
			checkZombies()
		})
	}
}

// ERRNO= before READY=1 is a failed start: status 1 with the error's
// text, nothing left running, no pidfile.
func TestReadinessErrnoFailsTheStart(t *testing.T) {
	t.Parallel()
	for _, n := range notifiers {
		t.Run(n.name, func(t *testing.T) {
			t.Parallel()
			nr := startNotifier(t, n, nil, "-errno", "98")
			nr.finish(t)
			nr.RequireStatus(t, 1)
			assert.Contains(t, nr.Stderr, "ERRNO=98")
			assert.Contains(t, nr.Stderr, "Address already in use")
			requireNothingLeft(t, nr.Run)
			requireNoFile(t, nr.pidfile, "the failed start's pidfile")
		})
	}
}

// A server that exits before READY=1 gives its exit status.
func TestReadinessCrashBeforeReadyFails(t *testing.T) {
	t.Parallel()
	for _, n := range notifiers {
		t.Run(n.name, func(t *testing.T) {
			t.Parallel()
			nr := startNotifier(t, n, nil, "-status", "about to fail", "-exit", "3")
			nr.finish(t)
			nr.RequireStatus(t, 3)
			assert.Contains(t, nr.Stderr, "exited with status 3 before it was ready")
			requireNothingLeft(t, nr.Run)
			requireNoFile(t, nr.pidfile, "the failed start's pidfile")
		})
	}
}

// A second process sending READY=1 (here the server's own child, which
// inherited NOTIFY_SOCKET) is not the daemon: ignored, with a note. The
// server says STATUS=child-sent after its child exited, so the launcher
// has read the child's datagram by then.
func TestReadinessIgnoresOtherProcesses(t *testing.T) {
	t.Parallel()
	for _, n := range notifiers {
		t.Run(n.name, func(t *testing.T) {
			t.Parallel()
			nr := startNotifier(t, n, nil, "-child", "READY=1", "-wait-usr1", "-port", "{dir}/port")
			pid := nr.daemon(t)
			nr.waitSaid(t, "loading")
			assert.False(t, nr.Exited(), "a child's READY=1 released the launcher: %s", nr.said(t))
			assert.Contains(t, nr.said(t), "child-sent")
			assert.Contains(t, nr.said(t), "not the daemon")
			require.NoError(t, syscall.Kill(pid, syscall.SIGUSR1))
			nr.finish(t)
			nr.RequireStatus(t, 0)
			assert.Equal(t, fmt.Sprintf("ok %d", pid), ask(t, filepath.Join(nr.dir, "port")))
			nr.stopDaemon(t, pid)
		})
	}
}

// EXTEND_TIMEOUT_USEC= extends CDAEMON_TIMEOUT, as systemd extends its
// start timeout: the launcher still waits after the first timeout passed.
func TestReadinessExtendTimeout(t *testing.T) {
	t.Parallel()
	n := notifiers[2] // the C server: the timeout starts at the launcher
	nr := startNotifier(t, n, []string{"CDAEMON_TIMEOUT=3s"}, "-extend", "120000000", "-wait-usr1")
	start := time.Now()
	pid := nr.daemon(t)
	nr.waitSaid(t, "loading")
	time.Sleep(time.Until(start.Add(4 * time.Second)))
	assert.False(t, nr.Exited(), "the launcher timed out despite EXTEND_TIMEOUT_USEC: %s", nr.said(t))
	require.NoError(t, syscall.Kill(pid, syscall.SIGUSR1))
	nr.finish(t)
	nr.RequireStatus(t, 0)
	nr.stopDaemon(t, pid)
}

// The launcher shows each STATUS= once per change, escaped.
func TestReadinessStatusShownOncePerChange(t *testing.T) {
	t.Parallel()
	nr := startNotifier(t, notifiers[2], nil, "-status", "phase one", "-status", "phase one",
		"-status", "phase \x1b[2J two", "-wait-usr1")
	pid := nr.daemon(t)
	nr.waitSaid(t, "loading")
	said := nr.said(t)
	assert.Equal(t, 1, strings.Count(said, "phase one"), "%s", said)
	assert.Contains(t, said, `phase \x1b[2J two`)
	assert.NotContains(t, said, "\x1b")
	require.NoError(t, syscall.Kill(pid, syscall.SIGUSR1))
	nr.finish(t)
	nr.RequireStatus(t, 0)
	nr.stopDaemon(t, pid)
}

// MAINPID= names a child of the daemon as the main process: the pidfile
// follows it, the launcher listens to it (and no longer to the process
// that exited), and its READY=1 releases the launcher.
func TestReadinessMainPIDFollowsChild(t *testing.T) {
	t.Parallel()
	for _, n := range notifiers {
		if !n.mainpid {
			continue
		}
		t.Run(n.name, func(t *testing.T) {
			t.Parallel()
			nr := startNotifier(t, n, nil, "-mainpid", "-wait-usr1", "-port", "{dir}/port")
			nr.waitSaid(t, "loading") // from the child: heard only as the main process
			m := regexp.MustCompile(`the daemon \(pid ([0-9]+)\): loading`).FindStringSubmatch(nr.said(t))
			require.NotNil(t, m, "%s", nr.said(t))
			child, _ := strconv.Atoi(m[1])
			// The daemon that named it exited: the pidfile names the child.
			assert.Equal(t, child, pidFromFile(t, nr.pidfile))
			nr.Track(child)
			assert.False(t, nr.Exited(), "%s", nr.said(t))
			require.NoError(t, syscall.Kill(child, syscall.SIGUSR1))
			nr.finish(t)
			nr.RequireStatus(t, 0)
			assert.Equal(t, fmt.Sprintf("ok %d", child), ask(t, filepath.Join(nr.dir, "port")))
			require.NoError(t, syscall.Kill(child, syscall.SIGTERM))
			eventually(t, "the new main process to exit", func() bool { return !alive(child) })
		})
	}
}

// Messages from the daemon that end the start, or are refused.
func TestReadinessMessages(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		args   []string
		status int
		want   []string
	}{
		{"EXIT_STATUS fails", []string{"-send", "EXIT_STATUS=42"}, 1, []string{"EXIT_STATUS=42"}},
		{"STOPPING before ready fails", []string{"-send", "STOPPING=1"}, 1, []string{"STOPPING=1"}},
		{"ERRNO that is no number is ignored", []string{"-send", "ERRNO=x"}, 0, nil},
		{"MAINPID of a process not the daemon's descendant is ignored",
			[]string{"-send", "MAINPID=1"}, 0, []string{"MAINPID=1", "not a descendant"}},
		{"unknown lines are ignored", []string{"-send", "FDSTORE=1\nX-CUSTOM=2\nWATCHDOG=1"}, 0, nil},
		{"an oversized datagram is dropped", []string{"-send", "READY=1\nSTATUS=" + strings.Repeat("x", 20000),
			"-wait-usr1"}, -1, []string{"dropped"}},
		{"a line without = is ignored", []string{"-send", "not a line\nSTATUS=after it"}, 0, []string{"after it"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			nr := startNotifier(t, notifiers[2], nil, tc.args...)
			if tc.status < 0 { // still waiting: the datagram did nothing
				pid := nr.daemon(t)
				nr.waitSaid(t, "loading")
				assert.False(t, nr.Exited())
				require.NoError(t, syscall.Kill(pid, syscall.SIGUSR1))
				tc.status = 0
			}
			nr.finish(t)
			nr.RequireStatus(t, tc.status)
			for _, w := range tc.want {
				assert.Contains(t, nr.Stderr, w)
			}
			if tc.status != 0 {
				requireNothingLeft(t, nr.Run)
				requireNoFile(t, nr.pidfile, "the failed start's pidfile")
				return
			}
			nr.stopDaemon(t, nr.daemon(t))
		})
	}
}

// The datagram parser (readiness.c's notify_parse) under libFuzzer, from
// the corpus kept in testdata/notify/corpus (replayed with gcc's
// sanitizers everywhere, fuzzed for CDAEMON_FUZZ_SECONDS with clang).
func TestReadinessFuzzParser(t *testing.T) {
	slow(t)
	fuzzTarget(t, "fuzz-notify", "testdata/notify/fuzz_notify.c", "testdata/notify/corpus")
}

// After the launcher exited nobody binds the socket's name: the daemon's
// later STATUS= and WATCHDOG=1 fail with ECONNREFUSED, and it runs on.
func TestReadinessLaterSendsFailQuietly(t *testing.T) {
	t.Parallel()
	nr := startNotifier(t, notifiers[2], nil, "-port", "{dir}/port", "-later", "{dir}/later")
	nr.finish(t)
	nr.RequireStatus(t, 0)
	pid := nr.daemon(t)
	require.NoError(t, syscall.Kill(pid, syscall.SIGUSR2))
	later := filepath.Join(nr.dir, "later")
	eventually(t, "the server to try its later send", func() bool {
		b, err := os.ReadFile(later)
		return err == nil && len(b) > 0
	})
	assert.Equal(t, "Connection refused", readFile(t, later))
	assert.Equal(t, fmt.Sprintf("ok %d", pid), ask(t, filepath.Join(nr.dir, "port")))
	nr.stopDaemon(t, pid)
}
