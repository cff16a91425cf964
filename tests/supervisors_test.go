package tests

// Supervisors and service managers (issue 7, item 6). A program that a
// supervisor runs must stay its child in the foreground: daemonized, it
// would exit 0 at once, the supervisor would start it again, and daemons
// would pile up. auto recognises the supervisor by its parent's name (none
// of runsv, s6-supervise, supervise, supervisord or systemd --user is PID
// 1) or by what systemd puts in the environment; CDAEMON=on still
// daemonizes under all of them.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// superviseScript is a supervisor's whole job: run the service, wait for
// it, run it again; $1 times. Each run writes its report to
// $PROBE_REPORT.<run> and its status to $PROBE_REPORT.status. The service
// runs inside the loop, so no shell replaces itself with it (as some do
// with a last command).
const superviseScript = `n=$1; shift; i=0
while [ "$i" -lt "$n" ]; do
	i=$((i + 1))
	PROBE_REPORT=$PROBE_REPORT.$i "$@"
	echo "$?" >>"$PROBE_REPORT.status"
done`

// supervisor is a fake supervisor called name: a symbolic link by that
// name to /bin/sh, which the kernel names after the link (the parent's
// comm, what cdaemon looks at). It runs the probe runs times; args go to
// the probe. A link, not a copy: writing an executable while a parallel
// test forks can make exec fail with ETXTBSY.
func supervisor(t *testing.T, name string, runs int, args ...string) (bin string, o Opts) {
	t.Helper()
	bin = filepath.Join(t.TempDir(), name)
	require.NoError(t, os.Symlink("/bin/sh", bin))
	return bin, Opts{Args: append([]string{"-c", superviseScript, name, strconv.Itoa(runs), probe}, args...)}
}

// runReport reads the report of run i (1, 2...) of a supervised probe.
func runReport(t *testing.T, r *Run, i int) Report {
	t.Helper()
	saved := r.Report
	defer func() { r.Report = saved }()
	r.Report = fmt.Sprintf("%s.%d", saved, i)
	return r.ReadReport(t)
}

var supervisorNames = []string{"runsv", "s6-supervise", "supervise", "supervisord", "systemd"}

// Under each supervisor, auto runs in the foreground as the supervisor's
// child and says which supervisor; CDAEMON=on daemonizes anyway. The
// supervisor gets the program's own exit status.
func TestSupervisorKeepsForeground(t *testing.T) {
	t.Parallel()
	for _, name := range supervisorNames {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			bin, o := supervisor(t, name, 1, "-exit", "5")
			r := LaunchOpts(t, bin, o)
			r.RequireStatus(t, 0)
			rep := runReport(t, r, 1)
			assert.False(t, rep.Info.Daemonized)
			assert.Equal(t, fmt.Sprintf("started by %s (pid %d), a supervisor", name, r.Launcher), rep.Info.Reason)
			assert.Equal(t, r.Launcher, rep.PPID, "the program is no longer the supervisor's child")
			assert.Equal(t, rep.PID, rep.Info.LauncherPID)
			assert.Equal(t, "5\n", readFile(t, r.Report+".status"), "the supervisor saw another status")
			requireNothingLeft(t, r, rep.PID)
		})
		t.Run(name+" CDAEMON=on", func(t *testing.T) {
			t.Parallel()
			bin, o := supervisor(t, name, 1)
			o.Env = []string{"CDAEMON=on"}
			r := LaunchOpts(t, bin, o)
			r.RequireStatus(t, 0)
			rep := runReport(t, r, 1)
			assert.True(t, rep.Info.Daemonized)
			assert.Empty(t, rep.Info.Reason)
			assert.NotEqual(t, r.Launcher, rep.PPID)
			assert.Equal(t, "0\n", readFile(t, r.Report+".status"), "the launcher's status")
			r.Stop(t, rep.PID)
			requireNothingLeft(t, r, rep.PID)
		})
	}
	// supervisord is a Python script: its process may be named after the
	// interpreter, with the script as the first argument.
	t.Run("supervisord under python3", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		python := filepath.Join(dir, "python3")
		require.NoError(t, os.Symlink("/bin/sh", python))
		script := filepath.Join(dir, "supervisord")
		require.NoError(t, os.WriteFile(script, []byte(superviseScript+"\n"), 0o644))
		r := LaunchOpts(t, python, Opts{Args: []string{script, "1", probe, "-exit", "0"}})
		r.RequireStatus(t, 0)
		rep := runReport(t, r, 1)
		assert.False(t, rep.Info.Daemonized)
		assert.Equal(t, fmt.Sprintf("started by supervisord (pid %d), a supervisor", r.Launcher), rep.Info.Reason)
		assert.Equal(t, r.Launcher, rep.PPID)
		requireNothingLeft(t, r, rep.PID)
	})
	// A parent whose name merely contains a supervisor's is not one.
	t.Run("not a supervisor", func(t *testing.T) {
		t.Parallel()
		bin, o := supervisor(t, "runsvdir-helper", 1)
		r := LaunchOpts(t, bin, o)
		r.RequireStatus(t, 0)
		rep := runReport(t, r, 1)
		assert.True(t, rep.Info.Daemonized, "stayed in the foreground: %s", rep.Info.Reason)
		r.Stop(t, rep.PID)
	})
}

// What systemd tells a service it starts: NOTIFY_SOCKET (Type=notify),
// SYSTEMD_EXEC_PID (systemd 248 and later) and LISTEN_PID (socket
// activation), the last two holding the service's own pid. Each keeps
// auto in the foreground; a pid that is not ours does not; CDAEMON=on
// daemonizes anyway.
func TestServiceManagerEnvironmentKeepsForeground(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		env    []string
		shell  string // run before exec'ing the probe: the probe gets sh's pid
		reason string // "" if it must daemonize
	}{
		{"NOTIFY_SOCKET", []string{"NOTIFY_SOCKET=/run/systemd/notify"}, "",
			"NOTIFY_SOCKET is set (a systemd Type=notify service)"},
		{"SYSTEMD_EXEC_PID", nil, "SYSTEMD_EXEC_PID=$$; export SYSTEMD_EXEC_PID",
			"SYSTEMD_EXEC_PID is this process (started by systemd)"},
		{"LISTEN_PID", nil, "LISTEN_PID=$$; export LISTEN_PID",
			"LISTEN_PID is this process (socket activation)"},
		{"SYSTEMD_EXEC_PID of another process", nil, "SYSTEMD_EXEC_PID=$PPID; export SYSTEMD_EXEC_PID", ""},
		{"LISTEN_PID not a pid", nil, "LISTEN_PID=$$x; export LISTEN_PID", ""},
		{"NOTIFY_SOCKET, CDAEMON=on", []string{"NOTIFY_SOCKET=/run/systemd/notify", "CDAEMON=on"}, "", ""},
		{"SYSTEMD_EXEC_PID, CDAEMON=on", []string{"CDAEMON=on"}, "SYSTEMD_EXEC_PID=$$; export SYSTEMD_EXEC_PID", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := LaunchOpts(t, probe, Opts{Env: tc.env, Shell: tc.shell, Args: []string{"-exit", "0"}})
			r.RequireStatus(t, 0)
			rep := r.ReadReport(t)
			if tc.reason != "" {
				assert.False(t, rep.Info.Daemonized)
				assert.Equal(t, tc.reason, rep.Info.Reason)
				assert.Equal(t, r.Launcher, rep.PID, "not the process the manager started")
			} else {
				assert.True(t, rep.Info.Daemonized, "stayed in the foreground: %s", rep.Info.Reason)
				assert.NotEqual(t, r.Launcher, rep.PID)
				r.WaitExit(t, rep.PID)
			}
			requireNothingLeft(t, r, rep.PID)
		})
	}
}

// runit restarting a service that keeps stopping: a supervisor that runs
// it 3 times, stopping each run with SIGTERM as `sv restart` does. There
// is one instance at a time, its child, and none once it is done.
// Daemonized, each run would exit at once and 3 daemons would pile up.
func TestSupervisorRestartsOneInstance(t *testing.T) {
	t.Parallel()
	const runs = 3
	bin, o := supervisor(t, "runsv", runs)
	o.Env = []string{"CDAEMON_PIDFILE=p.pid"}
	r := Spawn(t, bin, o)
	var seen []int
	for i := 1; i <= runs; i++ {
		rep := runReport(t, r, i)
		require.False(t, rep.Info.Daemonized, "run %d daemonized", i)
		require.Equal(t, r.Launcher, rep.PPID, "run %d is not the supervisor's child", i)
		require.NotContains(t, seen, rep.PID)
		seen = append(seen, rep.PID)
		live := slices.DeleteFunc(r.Procs(), func(pid int) bool { return pid == r.Launcher })
		require.Equal(t, []int{rep.PID}, live, "run %d: instances running", i)
		// The foreground pidfile names the one instance.
		require.Equal(t, rep.PID, pidFromFile(t, filepath.Join(r.Dir, "p.pid")))
		require.NoError(t, syscall.Kill(rep.PID, syscall.SIGTERM))
	}
	r.Wait(t)
	r.RequireStatus(t, 0)
	assert.Equal(t, strings.Repeat("0\n", runs), readFile(t, r.Report+".status"))
	requireNothingLeft(t, r, seen...)
}
