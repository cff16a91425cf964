package tests

// The service files users copy (contrib/): the systemd units, checked by
// systemd-analyze and run the way systemd runs them; the init script, run
// with Debian's start-stop-daemon; the logrotate stanza, run by logrotate.
// Each file is used as shipped, with only its installed paths (binary,
// pidfile, log directory) replaced by this test's.

import (
	"bufio"
	"os"
	"os/exec"
	"os/user"
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

// installed is a contrib file with its installed paths replaced by a
// test's: the binary, the pidfile and the log directory.
type installed struct {
	bin, pidfile, logDir string
}

func install(t *testing.T) installed {
	dir := t.TempDir()
	in := installed{bin: heartbeat(t), pidfile: filepath.Join(dir, "heartbeat.pid"), logDir: filepath.Join(dir, "log")}
	require.NoError(t, os.Mkdir(in.logDir, 0o755)) // systemd's LogsDirectory=
	return in
}

func (in installed) file(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "contrib", name))
	require.NoError(t, err)
	return strings.NewReplacer("/usr/local/bin/cdaemon", in.bin, "/run/heartbeat.pid", in.pidfile,
		"/var/log/heartbeat", in.logDir).Replace(string(b))
}

// unit is the [Service] section of a systemd unit: key -> values.
func parseUnit(t *testing.T, text string) map[string][]string {
	t.Helper()
	svc := map[string][]string{}
	section := ""
	s := bufio.NewScanner(strings.NewReader(text))
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = line
		case section == "[Service]":
			k, v, ok := strings.Cut(line, "=")
			require.True(t, ok, "not key=value: %q", line)
			svc[k] = append(svc[k], v)
		}
	}
	return svc
}

// environment is what Environment= lines set (no quoting in ours).
func environment(svc map[string][]string) []string {
	var env []string
	for _, v := range svc["Environment"] {
		env = append(env, strings.Fields(v)...)
	}
	return env
}

// Both units pass systemd-analyze verify, which fails a unit with a
// mistake (shown with a missing binary).
func TestSystemdUnitsVerify(t *testing.T) {
	t.Parallel()
	analyze := needTool(t, "systemd-analyze", "systemd")
	in := install(t)
	for _, name := range []string{"heartbeat.service", "heartbeat-forking.service", "broken.service"} {
		t.Run(name, func(t *testing.T) {
			text := ""
			if name == "broken.service" {
				text = strings.ReplaceAll(in.file(t, "systemd/heartbeat.service"), in.bin, in.bin+".missing")
			} else {
				text = in.file(t, "systemd/"+name)
			}
			path := filepath.Join(t.TempDir(), name)
			require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
			out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
			if name == "broken.service" {
				require.Error(t, err, "%s", out)
				assert.Contains(t, string(out), "is not executable")
				return
			}
			require.NoError(t, err, "%s", out)
			assert.Empty(t, string(out))
		})
	}
}

// Type=forking: ExecStart with Environment= returns once the daemon is
// ready; PIDFile= then names the daemon, which holds its lock; ExecReload
// replaces it (CDAEMON_REPLACE=on): PIDFile=, read again, names the new
// daemon, which holds the lock and writes to the files that replaced the
// rotated ones, and the old one has exited; SIGTERM to the main pid stops
// it.
func TestSystemdForkingUnitRuns(t *testing.T) {
	t.Parallel()
	in := install(t)
	svc := parseUnit(t, in.file(t, "systemd/heartbeat-forking.service"))
	require.Equal(t, []string{"forking"}, svc["Type"])
	require.Equal(t, []string{in.pidfile}, svc["PIDFile"])
	env := environment(svc)
	require.Contains(t, env, "CDAEMON=on", "a forking unit needs CDAEMON=on: its parent is PID 1")
	exe := strings.Fields(svc["ExecStart"][0])
	require.Equal(t, in.bin, exe[0])

	r := Launch(t, exe[0], env, exe[1:]...)
	r.RequireStatus(t, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, in.pidfile)))
	require.NoError(t, err, "systemd reads PIDFile= once ExecStart returned")
	r.Track(pid)
	d, err := cdaemon.FindDaemon(in.pidfile)
	require.NoError(t, err)
	assert.Equal(t, pid, d.PID)
	d.Close()

	beats, log := filepath.Join(in.logDir, "beats.log"), filepath.Join(in.logDir, "heartbeat.log")
	eventually(t, "a heartbeat", func() bool { return len(lines(beats)) >= 1 })
	require.NoError(t, os.Rename(beats, beats+".1"))
	require.NoError(t, os.Rename(log, log+".1"))
	reload := strings.Fields(strings.ReplaceAll(svc["ExecReload"][0], "$MAINPID", strconv.Itoa(pid)))
	require.Contains(t, reload, "CDAEMON_REPLACE=on")
	cmd := exec.Command(reload[0], reload[1:]...)
	cmd.Env = append(os.Environ(), env...) // ExecReload= gets Environment= too
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	ws := r.WaitExit(t, pid)
	assert.True(t, ws.Exited() && ws.ExitStatus() == 0, "the replaced daemon ended on SIGTERM: %v", ws)
	pid2, err := strconv.Atoi(strings.TrimSpace(readFile(t, in.pidfile)))
	require.NoError(t, err, "systemd reads PIDFile= again after ExecReload=")
	r.Track(pid2)
	assert.NotEqual(t, pid, pid2)
	d, err = cdaemon.FindDaemon(in.pidfile)
	require.NoError(t, err)
	assert.Equal(t, pid2, d.PID, "the new daemon holds the lock")
	d.Close()
	eventually(t, "a heartbeat in the new file", func() bool { return len(lines(beats)) >= 1 })
	assert.FileExists(t, log, "the new daemon's log")

	ws = r.Stop(t, pid2) // systemd's default stop: SIGTERM to the main pid
	assert.True(t, ws.Exited() && ws.ExitStatus() == 0, "%v", ws)
}

// Type=notify: in the foreground, READY=1 once ready; ExecReload and
// SIGTERM reach the process systemd started.
func TestSystemdNotifyUnitRuns(t *testing.T) {
	t.Parallel()
	in := install(t)
	svc := parseUnit(t, in.file(t, "systemd/heartbeat.service"))
	require.Equal(t, []string{"notify"}, svc["Type"])
	sock := filepath.Join(t.TempDir(), "notify")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(fd)
	require.NoError(t, unix.Bind(fd, &unix.SockaddrUnix{Name: sock}))
	require.NoError(t, unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 60}))

	exe := strings.Fields(svc["ExecStart"][0])
	r := Spawn(t, exe[0], Opts{Env: append(environment(svc), "NOTIFY_SOCKET="+sock), Args: exe[1:]})
	buf := make([]byte, 64)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	require.NoError(t, err)
	assert.Equal(t, "READY=1", string(buf[:n]))
	require.False(t, r.Exited(), "Type=notify: the started process is the service")
	main := r.Launcher

	beats := filepath.Join(in.logDir, "beats.log")
	eventually(t, "a heartbeat", func() bool { return len(lines(beats)) >= 1 })
	require.NoError(t, os.Rename(beats, beats+".1"))
	reload := strings.Fields(strings.ReplaceAll(svc["ExecReload"][0], "$MAINPID", strconv.Itoa(main)))
	out, err := exec.Command(reload[0], reload[1:]...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	eventually(t, "a heartbeat in the new file", func() bool { return len(lines(beats)) >= 1 })

	require.NoError(t, syscall.Kill(main, syscall.SIGTERM))
	r.Wait(t)
	r.RequireStatus(t, 0)
	r.RequireGone(t)
}

// The init script, with Debian's start-stop-daemon: each LSB action and
// its status, a stale pidfile naming another process, nothing left over.
func TestInitScript(t *testing.T) {
	t.Parallel()
	needTool(t, "start-stop-daemon", "dpkg")
	in := install(t)
	script := filepath.Join(t.TempDir(), "heartbeat")
	require.NoError(t, os.WriteFile(script, []byte(in.file(t, "init.d/heartbeat")), 0o755))
	env := []string{"DAEMON=" + in.bin, "PIDFILE=" + in.pidfile, "LOGDIR=" + in.logDir, "STOP_TIMEOUT=30s",
		"PATH=/usr/sbin:/sbin:" + os.Getenv("PATH")}
	action := func(a string) *Run {
		t.Helper()
		return Launch(t, script, env, a)
	}
	daemon := func(r *Run) int { // the daemon a start left, tracked for cleanup
		t.Helper()
		pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, in.pidfile)))
		require.NoError(t, err)
		r.Track(pid)
		return pid
	}

	start := action("start")
	start.RequireStatus(t, 0)
	pid := daemon(start)
	assert.Equal(t, "heartbeat: started, pid "+strconv.Itoa(pid)+"\n", start.Stdout)
	st, err := procStat(pid)
	require.NoError(t, err)
	assert.Equal(t, os.Getpid(), st.PPID, "detached: re-parented to the subreaper")
	assert.Zero(t, st.TTYNr)
	assert.NotEqual(t, pid, st.SID)

	action("status").RequireStatus(t, 0)
	again := action("start")
	again.RequireStatus(t, 0)
	assert.Equal(t, "heartbeat: already running\n", again.Stdout)
	assert.Equal(t, strconv.Itoa(pid)+"\n", readFile(t, in.pidfile))

	beats := filepath.Join(in.logDir, "beats.log")
	eventually(t, "a heartbeat", func() bool { return len(lines(beats)) >= 1 })
	require.NoError(t, os.Rename(beats, beats+".1"))
	action("reload").RequireStatus(t, 0)
	eventually(t, "a heartbeat in the new file", func() bool { return len(lines(beats)) >= 1 })

	restart := action("restart")
	restart.RequireStatus(t, 0)
	ws := start.WaitExit(t, pid)
	assert.True(t, ws.Exited() && ws.ExitStatus() == 0, "the first daemon ended on SIGTERM: %v", ws)
	pid1 := daemon(restart)
	assert.NotEqual(t, pid, pid1)

	// upgrade: a new daemon replaces the running one, which ends once
	// the new one is ready.
	up := action("upgrade")
	up.RequireStatus(t, 0)
	ws = restart.WaitExit(t, pid1)
	assert.True(t, ws.Exited() && ws.ExitStatus() == 0, "the replaced daemon ended on SIGTERM: %v", ws)
	pid2 := daemon(up)
	assert.NotEqual(t, pid1, pid2)
	assert.Equal(t, "heartbeat: upgraded, pid "+strconv.Itoa(pid2)+"\n", up.Stdout)
	action("status").RequireStatus(t, 0)
	restart = up

	action("stop").RequireStatus(t, 0)
	ws = restart.WaitExit(t, pid2)
	assert.True(t, ws.Exited() && ws.ExitStatus() == 0, "%v", ws)
	assert.NoFileExists(t, in.pidfile)
	action("status").RequireStatus(t, 3)
	action("stop").RequireStatus(t, 0)
	action("reload").RequireStatus(t, 7)

	// After a crash the pidfile names a pid now reused by another process.
	other := victim(t)
	require.NoError(t, os.WriteFile(in.pidfile, []byte(strconv.Itoa(other)+"\n"), 0o644))
	action("status").RequireStatus(t, 1)
	start = action("start")
	start.RequireStatus(t, 0)
	pid3 := daemon(start)
	assert.NotEqual(t, other, pid3)
	action("stop").RequireStatus(t, 0)
	start.WaitExit(t, pid3)
	requireAlive(t, other)

	bad := action("frobnicate")
	bad.RequireStatus(t, 2)
	assert.Contains(t, bad.Stderr, "Usage: ")
}

// The logrotate stanza: logrotate -f renames the files, creates new ones,
// and its postrotate makes the daemon write to the new ones.
func TestLogrotateStanza(t *testing.T) {
	t.Parallel()
	logrotate := needTool(t, "logrotate", "logrotate")
	in := install(t)
	u, err := user.Current()
	require.NoError(t, err)
	g, err := user.LookupGroupId(u.Gid)
	require.NoError(t, err)
	conf := strings.ReplaceAll(in.file(t, "logrotate/heartbeat"), "root root", u.Username+" "+g.Name)
	confPath := filepath.Join(t.TempDir(), "heartbeat")
	require.NoError(t, os.WriteFile(confPath, []byte(conf), 0o644))

	r := Launch(t, in.bin, []string{"CDAEMON_PIDFILE=" + in.pidfile, "CDAEMON_LOG=" + filepath.Join(in.logDir, "heartbeat.log")},
		"heartbeat", "-out", filepath.Join(in.logDir, "beats.log"), "-interval", "10ms")
	r.RequireStatus(t, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, in.pidfile)))
	require.NoError(t, err)
	r.Track(pid)
	beats := filepath.Join(in.logDir, "beats.log")
	eventually(t, "a heartbeat", func() bool { return len(lines(beats)) >= 1 })

	state := filepath.Join(t.TempDir(), "state")
	out, err := exec.Command(logrotate, "-f", "-s", state, confPath).CombinedOutput()
	require.NoError(t, err, "%s", out)
	// The daemon may write one more line to the old file between the
	// rename and the reopen; once the new file has a line, it is done.
	eventually(t, "a heartbeat in the new file", func() bool { return len(lines(beats)) >= 1 })
	rotated := readFile(t, beats+".1")
	fi, err := os.Stat(beats)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm(), "create 0640")
	eventually(t, "more heartbeats in the new file", func() bool { return len(lines(beats)) >= 3 })
	assert.Equal(t, rotated, readFile(t, beats+".1"), "still writing to the rotated file")
	ws := r.Stop(t, pid)
	assert.True(t, ws.Exited() && ws.ExitStatus() == 0, "%v", ws)
}
