package tests

// CDAEMON_LISTEN: the launcher binds and listens, the daemon (or the
// foreground process) finds the sockets at 3, 4, ... with the environment
// of systemd's socket activation; cdaemon.Listeners returns them. A client
// that connects once a CDAEMON_WAIT=none launcher returned is queued, not
// refused. Bind failures: 75 for an address in use, 73 otherwise, nothing
// left behind.

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cdaemon/cdaemon"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// freePort is a TCP port free on 127.0.0.1 now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// The sockets at 3, 4, ... in the given order, as Listeners and
// Info report them, serving; in the daemon and in the foreground.
func TestListeners(t *testing.T) {
	t.Parallel()
	for _, daemon := range []bool{true, false} {
		name := map[bool]string{true: "daemon", false: "foreground"}[daemon]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			abstract := fmt.Sprintf("cdaemon-test-%d-%s", os.Getpid(), name)
			env := []string{"CDAEMON_LISTEN=tcp:127.0.0.1:0,tcp:[::1]:0,unix:s.sock,unix:@" + abstract,
				"CDAEMON_WAIT=ready"}
			if !daemon {
				env = append(env, "CDAEMON=off")
			}
			r := Spawn(t, probe, Opts{Dir: dir, Env: env, Args: []string{"-serve-listeners", "-ready"}})
			rep := r.ReadReport(t)
			if daemon {
				r.Wait(t)
				r.RequireStatus(t, 0)
			} else {
				assert.Equal(t, r.Launcher, rep.PID, "in the foreground")
			}
			resolved, err := filepath.EvalSymlinks(dir)
			require.NoError(t, err)
			l := rep.Info.Listeners
			require.Len(t, l, 4, "Info().Listeners")
			assert.Regexp(t, `^tcp:127\.0\.0\.1:[1-9][0-9]*$`, l[0])
			assert.Regexp(t, `^tcp:\[::1\]:[1-9][0-9]*$`, l[1])
			assert.Equal(t, "unix:"+filepath.Join(resolved, "s.sock"), l[2])
			assert.Equal(t, "unix:@"+abstract, l[3])

			// Each a listening socket at 3 + its position, close-on-exec.
			for i := range l {
				assert.True(t, strings.HasPrefix(rep.FDs[3+i], "socket:"), "fd %d: %s", 3+i, rep.FDs[3+i])
				assert.Equal(t, syscall.FD_CLOEXEC, rep.FDFlags[3+i]&syscall.FD_CLOEXEC, "fd %d", 3+i)
			}
			assert.Empty(t, rep.ListenersErr)
			assert.True(t, rep.ListenersTwice, "a second Listeners call returns the same listeners")
			port0 := strings.TrimPrefix(l[0], "tcp:127.0.0.1:")
			port1 := strings.TrimPrefix(l[1], "tcp:[::1]:")
			assert.Equal(t, []string{"tcp 127.0.0.1:" + port0, "tcp [::1]:" + port1,
				"unix " + filepath.Join(resolved, "s.sock"), "unix @" + abstract}, rep.Listeners)

			// The socket activation environment.
			assert.Contains(t, rep.Env, "LISTEN_PID="+strconv.Itoa(rep.PID))
			assert.Contains(t, rep.Env, "LISTEN_FDS=4")
			assert.Contains(t, rep.Env, "LISTEN_FDNAMES=tcp-127.0.0.1-"+port0+":tcp-[--1]-"+port1+
				":unix-"+filepath.Join(resolved, "s.sock")+":unix-@"+abstract)

			for _, a := range []struct{ network, addr string }{
				{"tcp", "127.0.0.1:" + port0}, {"tcp", "[::1]:" + port1},
				{"unix", filepath.Join(dir, "s.sock")}, {"unix", "@" + abstract},
			} {
				assert.Equal(t, fmt.Sprintf("hello from %d\n", rep.PID), hello(t, a.network, a.addr), "%v", a)
			}
		})
	}
}

// A program written for systemd's socket activation (the algorithm of
// coreos/go-systemd's activation.Files, copied into the probe) finds the
// sockets, named, and serves them unchanged.
func TestListenersSocketActivation(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	r := Launch(t, probe, []string{fmt.Sprintf("CDAEMON_LISTEN=tcp:127.0.0.1:%d,unix:a.sock", port),
		"CDAEMON_WAIT=ready"}, "-activation", "-ready")
	r.RequireStatus(t, 0)
	rep := r.ReadReport(t)
	resolved, err := filepath.EvalSymlinks(r.Dir)
	require.NoError(t, err)
	sock := filepath.Join(resolved, "a.sock")
	assert.Equal(t, []string{fmt.Sprintf("tcp-127.0.0.1-%d 127.0.0.1:%d", port, port), "unix-" + sock + " " + sock},
		rep.Activation)
	assert.Equal(t, fmt.Sprintf("hello from %d\n", rep.PID), hello(t, "tcp", fmt.Sprintf("127.0.0.1:%d", port)))
	assert.Equal(t, fmt.Sprintf("hello from %d\n", rep.PID), hello(t, "unix", sock))
}

// Whoever takes the descriptors first has them: after the socket
// activation code took them, Listeners says so instead of wrapping
// whatever the descriptors hold now.
func TestListenersTakenFirstByActivation(t *testing.T) {
	t.Parallel()
	r := Launch(t, probe, []string{"CDAEMON_LISTEN=tcp:127.0.0.1:0", "CDAEMON_WAIT=ready"},
		"-activation", "-serve-listeners", "-ready")
	r.RequireStatus(t, 0)
	rep := r.ReadReport(t)
	require.Len(t, rep.Activation, 1)
	assert.Empty(t, rep.Listeners)
	assert.Contains(t, rep.ListenersErr, "cdaemon: descriptor 3 no longer holds the socket for "+
		rep.Info.Listeners[0])
}

// The sockets listen before the daemon exists: with CDAEMON_WAIT=none a
// client that connects right after the launcher returned, while the
// daemon has not even started its Go runtime (PROBE_HOLD keeps it in the
// probe's constructor), is queued, and served once the daemon runs.
func TestListenQueuedBeforeDaemonRuns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hold := filepath.Join(dir, "hold")
	require.NoError(t, os.WriteFile(hold, nil, 0o644))
	port := freePort(t)
	r := LaunchOpts(t, probe, Opts{Dir: dir, Env: []string{"CDAEMON_WAIT=none", "PROBE_HOLD=" + hold,
		fmt.Sprintf("CDAEMON_LISTEN=unix:q.sock,tcp:127.0.0.1:%d", port)}, Args: []string{"-serve-listeners"}})
	r.RequireStatus(t, 0)
	var conns []net.Conn
	for _, a := range [][2]string{{"unix", filepath.Join(dir, "q.sock")}, {"tcp", fmt.Sprintf("127.0.0.1:%d", port)}} {
		c, err := net.Dial(a[0], a[1])
		require.NoError(t, err, "connecting to %v right after the launcher returned", a)
		defer c.Close()
		require.NoError(t, c.SetDeadline(time.Now().Add(hang))) // a hang is a failure
		conns = append(conns, c)
	}
	assert.NoFileExists(t, r.Report, "the daemon's main has not run yet")
	require.NoError(t, os.Remove(hold))
	rep := r.ReadReport(t)
	for _, c := range conns {
		b := make([]byte, 100)
		n, _ := c.Read(b)
		assert.Equal(t, fmt.Sprintf("hello from %d\n", rep.PID), string(b[:n]))
	}
}

// Root's launcher binds a port below 1024 for a daemon that runs as
// nobody without any capability.
func TestListenPrivilegedPortForNobody(t *testing.T) {
	t.Parallel()
	needRoot(t)
	shared := sharedDir(t)
	report := filepath.Join(shared, "report.json")
	port := freeLowPort(t)
	r := Launch(t, probe, []string{"CDAEMON_USER=nobody", fmt.Sprintf("CDAEMON_LISTEN=tcp:127.0.0.1:%d", port),
		"CDAEMON_WAIT=ready", "PROBE_REPORT=" + report}, "-serve-listeners", "-ready")
	r.RequireStatus(t, 0)
	r.Report = report
	rep := r.ReadReport(t)
	st := procStatus(t, rep.PID)
	assert.Equal(t, "65534\t65534\t65534\t65534", st["Uid"])
	assert.Equal(t, capHex(), st["CapEff"])
	assert.Equal(t, fmt.Sprintf("hello from %d\n", rep.PID), hello(t, "tcp", fmt.Sprintf("127.0.0.1:%d", port)))
}

// CDAEMON_KEEP_FDS names descriptors above the listeners': kept there,
// the listeners at 3, 4.
func TestListenWithKeptFDs(t *testing.T) {
	t.Parallel()
	var files []*os.File
	for i := 0; i < 3; i++ {
		f, err := os.Open(os.DevNull)
		require.NoError(t, err)
		defer f.Close()
		files = append(files, f)
	}
	r := LaunchOpts(t, probe, Opts{Files: files, Env: []string{"CDAEMON_KEEP_FDS=5",
		"CDAEMON_LISTEN=unix:k1.sock,unix:k2.sock"}, Args: []string{"-exit", "0"}})
	r.RequireStatus(t, 0)
	rep := r.ReadReport(t)
	assert.True(t, strings.HasPrefix(rep.FDs[3], "socket:"), "fd 3: %s", rep.FDs[3])
	assert.True(t, strings.HasPrefix(rep.FDs[4], "socket:"), "fd 4: %s", rep.FDs[4])
	assert.Equal(t, os.DevNull, rep.FDs[5], "the kept descriptor")
}

// A unix socket file nothing accepts on is stale (a daemon that is gone
// left it): it is replaced, as a stale pidfile is taken over. One that a
// process serves is in use.
func TestListenStaleUnixSocket(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "stale.sock"), Net: "unix"})
	require.NoError(t, err)
	stale.SetUnlinkOnClose(false)
	stale.Close()
	require.FileExists(t, filepath.Join(dir, "stale.sock"))
	r := LaunchOpts(t, probe, Opts{Dir: dir, Env: []string{"CDAEMON_LISTEN=unix:stale.sock", "CDAEMON_WAIT=ready"},
		Args: []string{"-serve-listeners", "-ready"}})
	r.RequireStatus(t, 0)
	rep := r.ReadReport(t)
	assert.Equal(t, fmt.Sprintf("hello from %d\n", rep.PID), hello(t, "unix", filepath.Join(dir, "stale.sock")))

	// Now it is served: a second start finds it in use.
	r2 := LaunchOpts(t, probe, Opts{Dir: dir, Env: []string{"CDAEMON_LISTEN=unix:stale.sock"}})
	r2.RequireStatus(t, cdaemon.ExitTempFail)
	requireOneClearLine(t, r2.Stderr, `CDAEMON_LISTEN: "unix:stale.sock" is in use`)
	r2.RequireGone(t)
}

// Bind failures and refusals: the status, one line naming the address,
// no process and neither the pidfile nor a socket file this start made.
func TestListenRefusals(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { busy.Close() }) // after the parallel subtests
	busyAddr := "tcp:" + busy.Addr().String()
	cases := []struct {
		name   string
		env    []string
		files  int // descriptors passed at 3, 4, ...
		status int
		msg    string
	}{
		{"address in use", []string{"CDAEMON_LISTEN=unix:first.sock," + busyAddr}, 0, cdaemon.ExitTempFail,
			`CDAEMON_LISTEN: "` + busyAddr + `" is in use`},
		{"address in use in the foreground", []string{"CDAEMON=off", "CDAEMON_LISTEN=unix:first.sock," + busyAddr}, 0, cdaemon.ExitTempFail,
			`CDAEMON_LISTEN: "` + busyAddr + `" is in use`},
		{"no such directory", []string{"CDAEMON_LISTEN=unix:first.sock,unix:no/such/dir.sock"}, 0, cdaemon.ExitCantCreate,
			`CDAEMON_LISTEN: cannot listen on "unix:no/such/dir.sock": No such file or directory`},
		{"a file that is not a socket", []string{"CDAEMON_LISTEN=unix:first.sock,unix:plain"}, 0, cdaemon.ExitCantCreate,
			`CDAEMON_LISTEN: cannot listen on "unix:plain": File exists`},
		{"address not local", []string{"CDAEMON_LISTEN=unix:first.sock,tcp:192.0.2.1:80"}, 0, cdaemon.ExitCantCreate,
			`CDAEMON_LISTEN: cannot listen on "tcp:192.0.2.1:80": Cannot assign requested address`},
		{"kept descriptor taken by a listener", []string{"CDAEMON_KEEP_FDS=4", "CDAEMON_LISTEN=unix:a,unix:b"}, 2, cdaemon.ExitUsage,
			`CDAEMON_KEEP_FDS="4" is not valid: fd 4 is taken by CDAEMON_LISTEN, whose sockets are descriptors 3 to 4`},
		{"descriptor 3 open in the foreground", []string{"CDAEMON=off", "CDAEMON_LISTEN=unix:first.sock"}, 1, cdaemon.ExitUsage,
			`CDAEMON_LISTEN: in the foreground the listeners go to descriptors 3 to 3, as systemd passes them, ` +
				`but descriptor 3 is already open`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var files []*os.File
			for i := 0; i < tc.files; i++ {
				f, err := os.Open(os.DevNull)
				require.NoError(t, err)
				defer f.Close()
				files = append(files, f)
			}
			dir := t.TempDir()
			if tc.name == "a file that is not a socket" {
				require.NoError(t, os.WriteFile(filepath.Join(dir, "plain"), []byte("mine"), 0o644))
			}
			r := LaunchOpts(t, probe, Opts{Dir: dir, Files: files, Env: append([]string{"CDAEMON_PIDFILE=p.pid"}, tc.env...)})
			r.RequireStatus(t, tc.status)
			assert.True(t, strings.HasPrefix(r.Stderr, "probe: cdaemon: "), "message: %q", r.Stderr)
			requireOneClearLine(t, r.Stderr, tc.msg)
			r.RequireGone(t)
			assert.NoFileExists(t, r.Report, "main ran")
			ents, err := os.ReadDir(dir)
			require.NoError(t, err)
			var left []string
			for _, e := range ents {
				left = append(left, e.Name())
			}
			if tc.name == "a file that is not a socket" {
				assert.Equal(t, "mine", readFile(t, filepath.Join(dir, "plain")), "the file is left alone")
				assert.Equal(t, []string{"plain"}, left, "left behind: the pidfile or a socket file")
				return
			}
			assert.Empty(t, left, "left behind: the pidfile or a socket file")
		})
	}
}

// A start that fails after the fork (the daemon calls Fail before Ready)
// removes the socket files it made, like the pidfile.
func TestListenRemovedWhenStartFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := LaunchOpts(t, probe, Opts{Dir: dir, Env: []string{"CDAEMON_PIDFILE=p.pid", "CDAEMON_WAIT=ready",
		"CDAEMON_LISTEN=unix:f.sock,tcp:127.0.0.1:0"}, Args: []string{"-fail", "no good"}})
	r.RequireStatus(t, cdaemon.ExitFail)
	assert.Contains(t, r.Stderr, "no good")
	r.RequireGone(t)
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var left []string
	for _, e := range ents {
		if e.Name() != "report.json" {
			left = append(left, e.Name())
		}
	}
	assert.Empty(t, left, "left behind")
}

// The socket files a failed start removes are the ones it made, whatever
// the daemon did to the path meanwhile: here the daemon, dropped to
// nobody, replaced a directory on the path, which it may write, with a
// symbolic link to a directory of root's, where a file has the socket's
// name. The launcher, still root, must not remove that file.
func TestListenRemovalFollowsNoSwappedDirectory(t *testing.T) {
	t.Parallel()
	needRoot(t)
	top := sharedDir(t)
	require.NoError(t, os.Chmod(top, 0o755))
	own := filepath.Join(top, "own") // the daemon's user may write here
	require.NoError(t, os.MkdirAll(filepath.Join(own, "sub"), 0o755))
	require.NoError(t, os.Chown(own, nobody, nogroup))
	victim := filepath.Join(top, "root") // root's
	require.NoError(t, os.Mkdir(victim, 0o755))
	precious := filepath.Join(victim, "f.sock")
	require.NoError(t, os.WriteFile(precious, []byte("root's\n"), 0o644))

	sub := filepath.Join(own, "sub")
	r := LaunchOpts(t, probe, Opts{Env: []string{"CDAEMON_USER=nobody", "CDAEMON_WAIT=ready",
		"CDAEMON_LISTEN=unix:" + filepath.Join(sub, "f.sock"), "PROBE_REPORT=" + filepath.Join(sharedDir(t), "report.json")},
		Args: []string{"-swap-dir", sub + ":" + victim, "-fail", "no good"}})
	r.RequireStatus(t, cdaemon.ExitFail)
	assert.Contains(t, r.Stderr, "no good")
	r.RequireGone(t)
	assert.Equal(t, "root's\n", readFile(t, precious), "the launcher removed a file through the daemon's link")
	fi, err := os.Lstat(filepath.Join(own, "sub.old", "f.sock"))
	if err == nil {
		t.Errorf("the socket the start made is left behind, renamed with its directory: %v", fi.Mode())
	}
}
