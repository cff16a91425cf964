package tests

// The Go API on real processes: what Info reports in a daemon and in the
// foreground, `go test` of a package that imports cdaemon (property 13),
// and the refusals: package init when the constructor never ran (70), a
// build without cgo.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdaemon/cdaemon"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Info in the daemon and in the foreground.
func TestInfo(t *testing.T) {
	t.Parallel()
	for _, daemon := range []bool{true, false} {
		name := map[bool]string{true: "daemon", false: "foreground"}[daemon]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			env := []string{"CDAEMON_PIDFILE=p.pid", "CDAEMON_WAIT=ready", "CDAEMON_STDOUT=out.log"}
			if !daemon {
				env = append(env, "CDAEMON=off")
			}
			r := LaunchOpts(t, probe, Opts{Dir: dir, Env: env, Args: []string{"-ready", "-exit-after-ready"}})
			r.RequireStatus(t, 0)
			rep := r.ReadReport(t)
			info := rep.Info
			wd, err := filepath.EvalSymlinks(dir)
			require.NoError(t, err)
			assert.Equal(t, wd, info.Dir, "the launcher's working directory")
			assert.Equal(t, r.Launcher, info.LauncherPID)
			assert.Equal(t, daemon, info.Daemonized)
			assert.Equal(t, "ready", info.Wait)
			assert.Positive(t, info.Entry)
			assert.Less(t, info.Entry, rep.Now, "Entry is on CLOCK_MONOTONIC, before main")
			// The pidfile is locked in the foreground too (one
			// instance per pidfile, always).
			assert.Equal(t, filepath.Join(wd, "p.pid"), info.Pidfile)
			if daemon {
				assert.Equal(t, "auto", info.Mode)
				assert.Empty(t, info.Reason)
				assert.Equal(t, filepath.Join(wd, "out.log"), info.Stdout)
				assert.Empty(t, info.Stderr, "stderr on /dev/null")
			} else {
				assert.Equal(t, "off", info.Mode)
				assert.Equal(t, "CDAEMON=off", info.Reason)
				assert.Empty(t, info.Stdout, "stdio untouched in the foreground")
				assert.Empty(t, info.Stderr)
			}
		})
	}
}

// goEnv is our environment for running the go command, without any
// CDAEMON_* (which would configure the go test binaries it runs).
func goEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CDAEMON") {
			env = append(env, kv)
		}
	}
	return env
}

// 13. `go test` of a package that imports cdaemon runs its tests in the
// foreground: the test binary is not daemonized, its output reaches go test.
func TestGoTestRunsInForeground(t *testing.T) {
	t.Parallel()
	wd, err := os.Getwd()
	require.NoError(t, err)
	r := LaunchOpts(t, "go", Opts{Dir: wd, Env: goEnv(),
		Args: []string{"test", "-count=1", "-v", "./testdata/fgpkg"}})
	require.Equal(t, 0, r.Status, "go test failed:\n%s%s", r.Stdout, r.Stderr)
	assert.Contains(t, r.Stdout, "--- PASS: TestRunsInTheForeground")
	assert.Contains(t, r.Stdout, "fgpkg: foreground, pid")
	assert.Contains(t, r.Stdout, "reason: a go test binary")
	r.RequireGone(t)
}

// A binary whose constructor never ran must not run undaemonized: package
// init stops it with 70 and says why, whatever CDAEMON says (the
// constructor never read it). -linkmode=internal drops C constructors with
// some Go versions; where it keeps them the program simply daemonizes. The
// CDAEMON_NO_CONSTRUCTOR build always leaves the constructor out.
func TestConstructorNeverRan(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		bin      func(t *testing.T) string
		env      []string
		mayStart bool // the build may have kept the constructor
	}{
		{"-linkmode=internal", func(t *testing.T) string {
			return program(t, "probe-internal", "./testdata/probe", nil, "-ldflags=-linkmode=internal")
		}, nil, true},
		{"no constructor", noConstructorProbe, nil, false},
		{"no constructor, CDAEMON=off", noConstructorProbe, []string{"CDAEMON=off"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := Launch(t, tc.bin(t), append([]string{"CDAEMON_PIDFILE=p.pid"}, tc.env...), "-exit-after-ready")
			if tc.mayStart && r.Status == 0 {
				t.Logf("this Go version keeps the constructor under internal linking")
				rep := r.ReadReport(t)
				assert.True(t, rep.Info.Daemonized)
				return
			}
			r.RequireStatus(t, cdaemon.ExitSoftware)
			assert.Contains(t, r.Stderr, ": cdaemon: the C constructor in cdaemon.c never ran")
			assert.Contains(t, r.Stderr, "refusing to run")
			assert.NoFileExists(t, r.Report, "main ran")
			assert.NoFileExists(t, filepath.Join(r.Dir, "p.pid"))
			r.RequireGone(t)
		})
	}
}

func noConstructorProbe(t *testing.T) string {
	return program(t, "probe-noctor", "./testdata/probe",
		[]string{"CGO_CFLAGS=-O2 -g -DCDAEMON_NO_CONSTRUCTOR"})
}
