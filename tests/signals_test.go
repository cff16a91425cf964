package tests

// Signals to a launcher that waits (issue 7, item 5). While the launcher
// waits for the wait point, SIGINT, SIGTERM, SIGHUP and SIGQUIT stop the
// start: the daemon is stopped, the pidfile removed, the launcher says
// which signal and exits 128+n. A signal it inherited as ignored stays
// ignored; a closed stderr does not kill it; an inherited SIGCHLD=SIG_IGN
// does not hide how the daemon died.

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cdaemon/cdaemon"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// sigIgnored reports whether sig is in the SigIgn mask of a
// /proc/PID/status line's value (hex, bit sig-1).
func sigIgnored(t *testing.T, mask string, sig syscall.Signal) bool {
	t.Helper()
	m, err := strconv.ParseUint(strings.TrimSpace(mask), 16, 64)
	require.NoError(t, err, "SigIgn %q", mask)
	return m&(1<<(uint(sig)-1)) != 0
}

// waitingStart starts the probe with CDAEMON_WAIT=ready and a pidfile,
// and returns once its daemon runs, not ready: the launcher is waiting.
func waitingStart(t *testing.T, o Opts) (*Run, Report) {
	t.Helper()
	o.Env = append(o.Env, "CDAEMON_WAIT=ready", "CDAEMON_PIDFILE=p.pid")
	o.Args = append(o.Args, "-wait-usr1")
	r := Spawn(t, probe, o)
	rep := r.ReadReport(t)
	require.True(t, rep.Info.Daemonized)
	require.False(t, r.Exited(), "the launcher returned before the daemon was ready")
	return r, rep
}

// requireStopped asserts a start stopped by sig: status 128+sig, one line
// naming the signal, no process or zombie of it, no pidfile.
func requireStopped(t *testing.T, r *Run, rep Report, stderr string, sig syscall.Signal) {
	t.Helper()
	r.RequireStatus(t, 128+int(sig))
	assert.Contains(t, stderr, "probe: cdaemon: interrupted by "+unix.SignalName(sig)+
		" while waiting for the daemon to be ready; stopping it")
	// The daemon, and the middle process (its session id): reaped.
	requireNothingLeft(t, r, rep.PID, rep.SID)
	requireNoFile(t, filepath.Join(r.Dir, "p.pid"), "the start was stopped")
}

// Each stop signal, sent to the launcher as kill(1) or a service script
// would, stops the half-started daemon instead of leaving it running with
// the pidfile locked.
func TestSignalStopsWaitingLauncher(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT} {
		t.Run(unix.SignalName(sig), func(t *testing.T) {
			t.Parallel()
			r, rep := waitingStart(t, Opts{})
			require.NoError(t, syscall.Kill(r.Launcher, sig))
			r.Wait(t)
			requireStopped(t, r, rep, r.Stderr, sig)
		})
	}
}

// An impatient user at a terminal: the launcher is the terminal's
// foreground process group, and Ctrl-C typed into it (the pty turns ^C
// into SIGINT for that group) stops the start. The message reaches the
// terminal.
func TestCtrlCStopsWaitingLauncher(t *testing.T) {
	t.Parallel()
	master, slave := openPty(t)
	r, rep := waitingStart(t, Opts{Stdio: slave,
		Attr: &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}})
	slave.Close()
	// Read the terminal all along, so the launcher never blocks on it.
	said := make(chan string, 1)
	go func() {
		var b strings.Builder
		master.SetReadDeadline(time.Now().Add(hang)) // only so a hang cannot last
		sc := bufio.NewScanner(master)
		for sc.Scan() { // ends with EIO once no process has the terminal open
			b.WriteString(sc.Text() + "\n")
		}
		said <- b.String()
	}()

	st, err := procStat(r.Launcher)
	require.NoError(t, err)
	require.Equal(t, r.Launcher, st.TPGID, "the launcher is not the terminal's foreground group")
	_, err = master.Write([]byte{0x03}) // ^C
	require.NoError(t, err)
	r.Wait(t)
	requireStopped(t, r, rep, <-said, syscall.SIGINT)
}

// nohup: SIGHUP inherited as ignored stays ignored; the launcher keeps
// waiting, and SIGTERM still stops the start. Both are sent before the
// launcher can act on either: had SIGHUP been taken, it would be the
// signal named (the lower number is read first).
func TestIgnoredSignalStaysIgnored(t *testing.T) {
	t.Parallel()
	nohup, err := exec.LookPath("nohup")
	require.NoError(t, err)
	o := Opts{Env: []string{"CDAEMON_WAIT=ready", "CDAEMON_PIDFILE=p.pid"}, Args: []string{probe, "-wait-usr1"}}
	r := Spawn(t, nohup, o)
	rep := r.ReadReport(t)
	require.True(t, rep.Info.Daemonized)
	require.True(t, sigIgnored(t, procStatus(t, r.Launcher)["SigIgn"], syscall.SIGHUP),
		"nohup did not leave SIGHUP ignored in the launcher")

	require.NoError(t, syscall.Kill(r.Launcher, syscall.SIGHUP))
	require.NoError(t, syscall.Kill(r.Launcher, syscall.SIGTERM))
	r.Wait(t)
	requireStopped(t, r, rep, r.Stderr, syscall.SIGTERM)
	assert.NotContains(t, r.Stderr, "SIGHUP")
}

// A launcher whose stderr is a pipe nobody reads any more (`prog 2>&1 |
// head -0`, a closed log pipe): writing its message raises SIGPIPE, which
// must not kill it. Its status still says what happened.
func TestClosedStderrDoesNotKillLauncher(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		env    []string
		args   []string
		status int
	}{
		{"bad value", []string{"CDAEMON_WAIT=soon"}, nil, cdaemon.ExitUsage},
		{"Fail", []string{"CDAEMON_WAIT=ready"}, []string{"-fail", "cannot bind :80"}, cdaemon.ExitFail},
		{"success", []string{"CDAEMON_WAIT=ready"}, []string{"-ready"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rd, wr, err := os.Pipe()
			require.NoError(t, err)
			rd.Close()
			// The shell records that SIGPIPE is not ignored (or nothing
			// here could fail), then makes the dead pipe stderr.
			r := LaunchOpts(t, probe, Opts{Env: append(tc.env, "CDAEMON_PIDFILE=p.pid"), Args: tc.args,
				Files: []*os.File{wr},
				Shell: `sed -n 's/^SigIgn:[[:space:]]*//p' /proc/$$/status >sigign; exec 2>&3 3>&-`})
			wr.Close()
			require.False(t, sigIgnored(t, readFile(t, filepath.Join(r.Dir, "sigign")), syscall.SIGPIPE))
			r.RequireStatus(t, tc.status)
			if tc.status != 0 {
				requireNothingLeft(t, r)
				requireNoFile(t, filepath.Join(r.Dir, "p.pid"), "the start failed")
				return
			}
			rep := r.ReadReport(t)
			assert.Equal(t, rep.PID, pidFromFile(t, filepath.Join(r.Dir, "p.pid")))
			ws := r.Stop(t, rep.PID)
			assert.True(t, ws.Exited() && ws.ExitStatus() == 0, "the daemon ended with %v", ws)
		})
	}
}

// A launcher started with SIGCHLD ignored (some service scripts, a parent
// that set it and forgot): the kernel would reap its children itself and
// every early death would read as "exited with status 0". The daemon
// that exits 3 before it is ready must be reported as that. env(1) execs
// the probe with SIGCHLD ignored (sh cannot: dash resets it). The test
// sees the disposition on the launcher itself: started with stdin closed,
// the launcher first fills it with /dev/null, and the fault shim holds it
// at that open, before it prepares to fork.
func TestIgnoredSIGCHLDKeepsExitStatus(t *testing.T) {
	t.Parallel()
	env, err := exec.LookPath("env")
	require.NoError(t, err)
	gate := filepath.Join(t.TempDir(), "gate")
	r := Spawn(t, env, Opts{Args: []string{"--ignore-signal=CHLD", probe, "-exit", "3"}, Shell: "exec 0<&-",
		Env: []string{"CDAEMON_WAIT=ready", "CDAEMON_PIDFILE=p.pid",
			"LD_PRELOAD=" + faultShim(t), "HFAULT=open:launcher:gate=" + gate + ":/dev/null"}})
	eventually(t, "the launcher held as it opens /dev/null", func() bool {
		_, err := os.Stat(gate + ".reached")
		return err == nil || r.Exited()
	})
	if r.Exited() {
		r.Wait(t)
		t.Fatalf("the launcher was not held (status %d): %s", r.Status, r.Stderr)
	}
	require.True(t, sigIgnored(t, procStatus(t, r.Launcher)["SigIgn"], syscall.SIGCHLD),
		"the launcher does not have SIGCHLD ignored")
	require.NoError(t, os.WriteFile(gate, nil, 0o644))

	r.Wait(t)
	rep := r.ReadReport(t)
	r.RequireStatus(t, 3)
	assert.Contains(t, r.Stderr, "exited with status 3 before it was ready")
	requireNothingLeft(t, r, rep.PID, rep.SID)
	requireNoFile(t, filepath.Join(r.Dir, "p.pid"), "the start failed")
}

// A stop signal that comes while the launcher opens its files, before it
// forks: the start ends there, with nothing forked and the pidfile and log
// it created removed, instead of the launcher dying and leaving them. The
// fault shim holds the launcher at its pipe2, after it opened everything.
func TestSignalBeforeForkStopsStart(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT} {
		t.Run(unix.SignalName(sig), func(t *testing.T) {
			t.Parallel()
			gate := filepath.Join(t.TempDir(), "gate")
			r := Spawn(t, probe, Opts{Env: []string{"CDAEMON_PIDFILE=p.pid", "CDAEMON_LOG=new.log",
				"LD_PRELOAD=" + faultShim(t), "HFAULT=pipe2:launcher:gate=" + gate}})
			eventually(t, "the launcher held before it forks", func() bool {
				_, err := os.Stat(gate + ".reached")
				return err == nil
			})
			require.FileExists(t, filepath.Join(r.Dir, "p.pid"))
			require.FileExists(t, filepath.Join(r.Dir, "new.log"))
			require.NoError(t, syscall.Kill(r.Launcher, sig))
			require.NoError(t, os.WriteFile(gate, nil, 0o644))
			r.Wait(t)
			r.RequireStatus(t, 128+int(sig))
			requireOneClearLine(t, r.Stderr, "probe: cdaemon: interrupted by "+unix.SignalName(sig)+
				" before the daemon was started")
			requireNothingLeft(t, r)
			requireNoFile(t, filepath.Join(r.Dir, "p.pid"), "the start was stopped")
			requireNoFile(t, filepath.Join(r.Dir, "new.log"), "the start was stopped")
			requireNoFile(t, r.Report, "nothing was started")
		})
	}
}
