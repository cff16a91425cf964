package tests

// A program's arguments decide whether it daemonizes (auto mode only): a
// request for help or the version stays in the foreground, where its
// output reaches the terminal, and a program's own cdaemon_wanted hook
// replaces that rule. CDAEMON=on and CDAEMON=off override both.

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/cdaemon/cdaemon"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type wantedReport struct {
	PID, SID int
	Info     cdaemon.State
}

func TestWantedByArguments(t *testing.T) {
	t.Parallel()
	const hookNo = "the program's cdaemon_wanted() said no"
	helpNo := func(flag string) string { return "the arguments ask for help or the version (" + flag + ")" }
	cases := []struct {
		name   string
		hook   bool // built with the cdaemon_wanted hook
		env    []string
		args   []string
		reason string // "" if it must daemonize
	}{
		{"no arguments", false, nil, nil, ""},
		{"-h", false, nil, []string{"-h"}, helpNo("-h")},
		{"-help", false, nil, []string{"-help"}, helpNo("-help")},
		{"--help", false, nil, []string{"--help"}, helpNo("--help")},
		{"-version", false, nil, []string{"-version"}, helpNo("-version")},
		{"--version", false, nil, []string{"--version"}, helpNo("--version")},
		{"--help after other arguments", false, nil, []string{"-out", "x", "--help"}, helpNo("--help")},
		{"-h after --", false, nil, []string{"--", "-h"}, ""},
		{"--version after --", false, nil, []string{"serve", "--", "--version"}, ""},
		{"only exact words", false, nil, []string{"-hh", "--helper", "-v", "help", "version=1"}, ""},
		{"--help with CDAEMON=on", false, []string{"CDAEMON=on"}, []string{"--help"}, ""},
		{"no arguments with CDAEMON=off", false, []string{"CDAEMON=off"}, nil, "CDAEMON=off"},

		{"hook says yes", true, nil, []string{"serve"}, ""},
		{"hook says no", true, nil, []string{"status"}, hookNo},
		{"hook says no, no arguments", true, nil, nil, hookNo},
		{"hook replaces the help rule", true, nil, []string{"serve", "--help"}, ""},
		{"hook says no to --help", true, nil, []string{"--help"}, hookNo},
		{"hook's no with CDAEMON=on", true, []string{"CDAEMON=on"}, []string{"status"}, ""},
		{"hook's yes with CDAEMON=off", true, []string{"CDAEMON=off"}, []string{"serve"}, "CDAEMON=off"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bin := program(t, "wanted", "./testdata/wanted", nil)
			if tc.hook {
				bin = program(t, "wanted-hook", "./testdata/wanted", nil, "-tags", "hook")
			}
			r := Launch(t, bin, tc.env, tc.args...)
			r.RequireStatus(t, 0)
			var rep wantedReport
			eventually(t, "the report", func() bool {
				b, err := os.ReadFile(r.Report)
				return err == nil && json.Unmarshal(b, &rep) == nil
			})
			r.Track(rep.PID, rep.SID)
			assert.Equal(t, tc.reason, rep.Info.Reason)
			assert.Equal(t, tc.reason == "", rep.Info.Daemonized)
			if tc.reason != "" {
				// The foreground is the launcher itself, which has exited.
				assert.Equal(t, r.Launcher, rep.PID)
				return
			}
			assert.NotEqual(t, r.Launcher, rep.PID)
			assert.NotEqual(t, rep.PID, rep.SID, "not a session leader")
			ws := r.Stop(t, rep.PID)
			require.True(t, ws.Exited(), "the daemon: %v", ws)
			assert.Equal(t, 0, ws.ExitStatus())
		})
	}
}

// A run the program's arguments decline (a CLI role, help, the version)
// is not the daemon: with the daemon's configuration in its environment it
// still takes nothing of the daemon's, neither the locked pidfile nor its
// address, so `myapp --version` works while `myapp` runs.
func TestDeclinedRunTakesNothing(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "d.pid")
	env := []string{"CDAEMON_PIDFILE=" + pidfile, "CDAEMON_LISTEN=tcp:" + ln.Addr().String()}
	daemon := Launch(t, probe, []string{"CDAEMON_PIDFILE=" + pidfile})
	daemon.RequireStatus(t, 0)
	pid := daemon.ReadReport(t).PID
	defer daemon.Stop(t, pid)

	for _, tc := range []struct {
		hook bool
		args []string
	}{{false, []string{"--version"}}, {false, []string{"-h"}}, {true, []string{"status"}}} {
		bin := program(t, "wanted", "./testdata/wanted", nil)
		if tc.hook {
			bin = program(t, "wanted-hook", "./testdata/wanted", nil, "-tags", "hook")
		}
		r := Launch(t, bin, env, tc.args...)
		r.RequireStatus(t, 0)
		var rep wantedReport
		require.NoError(t, json.Unmarshal([]byte(readFile(t, r.Report)), &rep))
		assert.Empty(t, rep.Info.Pidfile, "%v: took the pidfile", tc.args)
		assert.Equal(t, pidText(pid), readFile(t, pidfile), "%v: touched the daemon's pidfile", tc.args)
	}
	// Not declined: CDAEMON=off is the daemon in the foreground, which
	// takes the pidfile and so is refused.
	r := Launch(t, program(t, "wanted", "./testdata/wanted", nil), append(env, "CDAEMON=off"))
	r.RequireStatus(t, cdaemon.ExitTempFail)
}
