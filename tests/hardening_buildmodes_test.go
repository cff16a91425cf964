package tests

// Build modes and sanitizers: the probe built statically (glibc and
// musl), as a PIE, with -race and with -asan daemonizes and runs clean;
// cdaemon linked into a host as c-shared, c-archive or plugin never forks
// or detaches that host. The library's C files pass gcc's and clang's
// static analyzers and define only cdaemon_* global symbols.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const staticLink = "-ldflags=-linkmode=external -extldflags=-static"

// requireDaemonizes starts bin (a probe build), checks it became a proper
// daemon that runs Go normally, stops it, and returns the daemon's log.
func requireDaemonizes(t *testing.T, bin string) string {
	t.Helper()
	r := Launch(t, bin, []string{"CDAEMON_LOG=daemon.log", "CDAEMON_PIDFILE=p.pid"}, "-runtime")
	require.Equal(t, 0, r.Status, "stderr: %s", r.Stderr)
	rep := r.ReadReport(t)
	assert.True(t, rep.Info.Daemonized, "reason: %s", rep.Info.Reason)
	assert.NotEqual(t, r.Launcher, rep.PID)
	assert.NotEqual(t, rep.PID, rep.SID, "not a session leader")
	assert.NotEqual(t, rep.PID, rep.PGRP, "not a group leader")
	assert.Equal(t, 0, rep.TTYNr)
	assert.Equal(t, rep.PID, pidFromFile(t, filepath.Join(r.Dir, "p.pid")))
	assert.Equal(t, "/dev/null", rep.FDs[0])
	assert.Equal(t, "/", rep.Cwd)
	for check, res := range rep.Runtime {
		assert.Equal(t, "ok", res, "runtime check %s", check)
	}
	assert.Len(t, rep.Runtime, 5)
	for _, kv := range rep.Env {
		assert.NotRegexp(t, `^CDAEMON(=|_)`, kv)
	}
	ws := r.Stop(t, rep.PID)
	assert.True(t, ws.Exited() && ws.ExitStatus() == 0, "the daemon ended with %v", ws)
	requireNothingLeft(t, r, rep.PID)
	b, err := os.ReadFile(filepath.Join(r.Dir, "daemon.log"))
	require.NoError(t, err)
	return string(b)
}

// requireTestArgsForeground runs bin with go test's flags after "--": it
// must stay in the foreground (a go test binary), as the process started.
func requireTestArgsForeground(t *testing.T, bin string) {
	t.Helper()
	r := Spawn(t, bin, Opts{Args: []string{"--", "-test.v=true", "-test.run=X"}})
	rep := r.ReadReport(t)
	assert.False(t, rep.Info.Daemonized)
	assert.Contains(t, rep.Info.Reason, "test")
	assert.Equal(t, r.Launcher, rep.PID, "in the foreground")
	require.NoError(t, syscall.Kill(r.Launcher, syscall.SIGTERM))
	r.Wait(t)
	requireNothingLeft(t, r)
}

func TestHardeningBuildModes(t *testing.T) {
	slow(t)
	cases := []struct {
		name  string
		env   []string
		flags []string
		tool  [2]string // tool and the apt package that has it
	}{
		{"pie", nil, []string{"-buildmode=pie"}, [2]string{}},
		{"static-glibc", nil, []string{staticLink}, [2]string{}},
		{"static-pie-glibc", nil, []string{"-buildmode=pie",
			"-ldflags=-linkmode=external -extldflags=-static-pie"}, [2]string{}},
		{"static-musl", []string{"CC=musl-gcc"}, []string{staticLink}, [2]string{"musl-gcc", "musl-tools"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.tool[0] != "" {
				needTool(t, tc.tool[0], tc.tool[1])
			}
			bin := goBuildVariant(t, "probe-"+tc.name, "./testdata/probe", tc.env, tc.flags...)
			if strings.Contains(tc.name, "static") {
				out, err := exec.Command("file", bin).CombinedOutput()
				if err == nil {
					require.Regexp(t, `static(ally|-pie) linked`, string(out))
				}
			}
			requireDaemonizes(t, bin)
			requireTestArgsForeground(t, bin)
		})
	}
}

var sanitizerReport = regexp.MustCompile(`WARNING: DATA RACE|ThreadSanitizer|AddressSanitizer|LeakSanitizer|runtime error`)

func TestHardeningSanitizers(t *testing.T) {
	slow(t)
	for _, flag := range []string{"-race", "-asan"} {
		t.Run(flag, func(t *testing.T) {
			bin := goBuildVariant(t, "probe"+flag, "./testdata/probe", nil, flag)
			log := requireDaemonizes(t, bin)
			assert.NotRegexp(t, sanitizerReport, log, "the daemon's log")
			// A failed start under the sanitizer: still the right status.
			r := Launch(t, bin, []string{"CDAEMON_WAIT=ready", "CDAEMON_LOG=daemon.log"}, "-exit", "3")
			assert.Equal(t, 3, r.Status, r.Stderr)
			assert.NotRegexp(t, sanitizerReport, r.Stderr)
			requireNothingLeft(t, r)
		})
	}
}

// hostOutput checks a host program ran as the process that was started,
// in the foreground, with cdaemon reporting why it did not daemonize.
func requireHostUntouched(t *testing.T, bin string, args ...string) {
	t.Helper()
	envs := [][]string{
		{"CDAEMON=auto", "CDAEMON_PIDFILE=p.pid"},
		{"CDAEMON=on", "CDAEMON_PIDFILE=p.pid"},
		// Stray and invalid variables in the host's environment are not
		// ours to judge: a library never validates, prints, exits or
		// edits environ.
		{"CDAEMON_WAIT=bogus", "CDAEMON_TYPO=1", "CDAEMON_PIDFILE=p.pid"},
	}
	for _, env := range envs {
		r := Launch(t, bin, env, args...)
		require.Equal(t, 0, r.Status, "%v: stderr: %s", env, r.Stderr)
		assert.Empty(t, r.Stderr, "%v: the library printed", env)
		assert.Equal(t, fmt.Sprintf("pid=%d daemonized=0", r.Launcher),
			strings.Join(strings.Fields(r.Stdout)[:min(2, len(strings.Fields(r.Stdout)))], " "),
			"%v: the host must run undisturbed, in the process started; stdout %q", env, r.Stdout)
		assert.Contains(t, r.Stdout, "reason=not the main executable")
		if env[0] == "CDAEMON_WAIT=bogus" {
			assert.Contains(t, r.Stdout, "env=bogus", "the host's environment was edited")
		}
		requireNoFile(t, filepath.Join(r.Dir, "p.pid"), "nothing was daemonized")
		requireNothingLeft(t, r)
	}
}

func TestHardeningLibraryHosts(t *testing.T) {
	slow(t)
	t.Run("c-shared", func(t *testing.T) {
		goBuildVariant(t, "libcdaemon.so", "./testdata/hardening/clib", nil, "-buildmode=c-shared")
		host := hbuild(t, "host-c-shared", nil, "gcc", "-o", filepath.Join(binDir, "host-c-shared"),
			"testdata/hardening/chost/host.c", "-L"+binDir, "-l:libcdaemon.so", "-Wl,-rpath,"+binDir)
		requireHostUntouched(t, host)
	})
	t.Run("c-archive", func(t *testing.T) {
		lib := goBuildVariant(t, "libcdaemon.a", "./testdata/hardening/clib", nil, "-buildmode=c-archive")
		host := hbuild(t, "host-c-archive", nil, "gcc", "-o", filepath.Join(binDir, "host-c-archive"),
			"testdata/hardening/chost/host.c", lib, "-lpthread")
		requireHostUntouched(t, host)
	})
	t.Run("plugin", func(t *testing.T) {
		plug := goBuildVariant(t, "cdaemon-plugin.so", "./testdata/hardening/plugin", nil, "-buildmode=plugin")
		host := goBuildVariant(t, "pluginhost", "./testdata/hardening/pluginhost", nil)
		requireHostUntouched(t, host, plug)
	})
}

// libraryC lists the library's C files (the package directory's *.c),
// relative to it: cgo compiles every one of them.
func libraryC(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../*.c")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for i, f := range files {
		files[i] = filepath.Base(f)
	}
	return files
}

// gcc's static analyzer with strict warnings (unoptimized, as CI would
// run it, and optimized, as cgo compiles it), and clang's analyzer, find
// nothing in any of the library's C files, with every checker on.
func TestHardeningAnalyzer(t *testing.T) {
	slow(t)
	files := libraryC(t)
	for _, opt := range []string{"-O0", "-O2"} {
		t.Run("gcc"+opt, func(t *testing.T) {
			for _, f := range files {
				cmd := exec.Command("gcc", "-fanalyzer", "-Wall", "-Wextra", "-Werror", opt,
					"-c", f, "-o", os.DevNull)
				cmd.Dir = ".."
				out, err := cmd.CombinedOutput()
				require.NoError(t, err, "gcc -fanalyzer -Wall -Wextra -Werror %s -c %s:\n%s", opt, f, out)
				assert.Empty(t, strings.TrimSpace(string(out)), f)
			}
		})
	}
	t.Run("clang", func(t *testing.T) {
		clang := needTool(t, "clang", "clang")
		for _, f := range files {
			cmd := exec.Command(clang, "--analyze", "-Xanalyzer", "-analyzer-output=text", "-Wall", "-Wextra", "-Werror", f, "-o", os.DevNull)
			cmd.Dir = ".."
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "clang --analyze %s:\n%s", f, out)
			assert.Empty(t, strings.TrimSpace(string(out)), f)
		}
	})
}

// The library's C code shares the program's link with whatever C the
// program and its other packages bring: every global symbol it defines
// is named cdaemon_* (internal.h's CDAEMON_SYM), so none can clash with
// theirs.
func TestHardeningCSymbolsPrefixed(t *testing.T) {
	slow(t)
	dir := t.TempDir()
	for _, f := range libraryC(t) {
		obj := filepath.Join(dir, strings.TrimSuffix(f, ".c")+".o")
		cmd := exec.Command("gcc", "-std=gnu11", "-O2", "-c", f, "-o", obj)
		cmd.Dir = ".."
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "gcc -c %s:\n%s", f, out)
		out, err = exec.Command("nm", "-g", "--defined-only", obj).CombinedOutput()
		require.NoError(t, err, "nm %s:\n%s", obj, out)
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			fields := strings.Fields(line)
			if len(fields) == 0 {
				continue
			}
			sym := fields[len(fields)-1]
			assert.True(t, strings.HasPrefix(sym, "cdaemon_"), "%s defines the global symbol %s", f, sym)
		}
	}
}
