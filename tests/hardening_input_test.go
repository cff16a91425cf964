package tests

// Hostile input: every CDAEMON_* variable with empty, garbage,
// out-of-range, overlong and path-trick values; file modes whatever the
// umask; inherited descriptors; the daemon's own descriptors.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cdaemon/cdaemon"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var pathVars = []string{"CDAEMON_PIDFILE", "CDAEMON_LOG", "CDAEMON_STDOUT", "CDAEMON_STDERR",
	"CDAEMON_STDIN", "CDAEMON_CHDIR"}

// requireOneClearLine asserts stderr is one line that names every want,
// with no raw control bytes and a bounded length.
func requireOneClearLine(t *testing.T, stderr string, want ...string) {
	t.Helper()
	require.True(t, strings.HasSuffix(stderr, "\n"), "message %q", stderr)
	line := strings.TrimSuffix(stderr, "\n")
	assert.NotContains(t, line, "\n", "one line")
	assert.LessOrEqual(t, len(line), 1024, "a bounded message")
	for _, r := range line {
		assert.False(t, r < 0x20 || r == 0x7f, "raw control byte %#x in %q", r, line)
	}
	for _, w := range want {
		assert.Contains(t, line, w)
	}
}

// Every entry of a variable is checked, also one without "=". (os/exec
// keeps only the last of repeated names, so repeats are not tried here.)
func TestHardeningBadValueAmongGoodOnes(t *testing.T) {
	for _, env := range [][]string{
		{"CDAEMON_WAIT=none", "CDAEMON_TIMEOUT=1s", "CDAEMON_WAIT=bogus"},
		{"CDAEMON_WAIT"},
	} {
		r := Launch(t, probe, env)
		assert.Equal(t, cdaemon.ExitUsage, r.Status, "%q: %s", env, r.Stderr)
		requireOneClearLine(t, r.Stderr, "CDAEMON_WAIT")
		requireNothingLeft(t, r)
	}
}

// Edge values that are valid: the daemon starts.
func TestHardeningEdgeValuesAccepted(t *testing.T) {
	for _, env := range [][]string{
		{"CDAEMON=YES"}, {"CDAEMON=True"}, {"CDAEMON=1"}, {"CDAEMON=On"}, {"CDAEMON=AUTO"},
		{"CDAEMON_WAIT=START"}, {"CDAEMON_WAIT=None"},
		{"CDAEMON_TIMEOUT=24h"}, {"CDAEMON_TIMEOUT=1000ms"},
		{"CDAEMON_TIMEOUT=1h30m15s500ms"}, {"CDAEMON_TIMEOUT=1.5h"},
		{"CDAEMON_UMASK=0"}, {"CDAEMON_UMASK=0777"}, {"CDAEMON_UMASK=777"}, {"CDAEMON_UMASK=022"},
		{"CDAEMON_CHDIR=."}, {"CDAEMON_CHDIR=/"},
		{"CDAEMONS=not ours"}, {"cdaemon_wait=not ours"},
	} {
		r := Launch(t, probe, env)
		require.Equal(t, 0, r.Status, "%q: %s", env, r.Stderr)
		pid := r.ReadReport(t).PID
		r.Stop(t, pid)
		requireNothingLeft(t, r, pid)
	}
}

// A start that must fail with 73 naming the variable: nothing left, no
// pidfile created.
func requireCantCreate(t *testing.T, r *Run, name string, want ...string) {
	t.Helper()
	assert.Equal(t, cdaemon.ExitCantCreate, r.Status, "stderr %q", r.Stderr)
	requireOneClearLine(t, r.Stderr, append([]string{name}, want...)...)
	requireNothingLeft(t, r)
	requireNoFile(t, r.Report, "the program never ran")
}

func TestHardeningStdioAndDirTricks(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "adir"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "afile"), nil, 0o644))
	for _, v := range []string{"CDAEMON_LOG", "CDAEMON_STDOUT", "CDAEMON_STDERR", "CDAEMON_STDIN"} {
		for _, p := range []string{"adir", "missing/out.log", "afile/x"} {
			t.Run(v+"="+p, func(t *testing.T) {
				r := LaunchOpts(t, probe, Opts{Dir: dir, Env: []string{v + "=" + p, "CDAEMON_PIDFILE=" + dir + "/p.pid"}})
				requireCantCreate(t, r, v, p)
				requireNoFile(t, dir+"/p.pid", "the start failed")
			})
		}
	}
	for _, p := range []string{"afile", "missing", "/proc/self/status/x"} {
		t.Run("CDAEMON_CHDIR="+p, func(t *testing.T) {
			r := LaunchOpts(t, probe, Opts{Dir: dir, Env: []string{"CDAEMON_CHDIR=" + p, "CDAEMON_PIDFILE=" + dir + "/p.pid"}})
			requireCantCreate(t, r, "CDAEMON_CHDIR", p)
			requireNoFile(t, dir+"/p.pid", "the start failed")
		})
	}
	// Relative paths are the launcher's; symlinks for logs and the
	// directory are followed (only the pidfile is never followed).
	t.Run("relative and symlinked", func(t *testing.T) {
		d := t.TempDir()
		require.NoError(t, os.Mkdir(filepath.Join(d, "real"), 0o755))
		require.NoError(t, os.Symlink("real", filepath.Join(d, "link")))
		require.NoError(t, os.Symlink("real/out.log", filepath.Join(d, "log")))
		r := LaunchOpts(t, probe, Opts{Dir: d, Args: []string{"-say", "through"},
			Env: []string{"CDAEMON_CHDIR=link", "CDAEMON_LOG=log"}})
		require.Equal(t, 0, r.Status, r.Stderr)
		rep := r.ReadReport(t)
		assert.Equal(t, filepath.Join(d, "real"), rep.Cwd)
		r.Stop(t, rep.PID)
		b, _ := os.ReadFile(filepath.Join(d, "real", "out.log"))
		assert.Contains(t, string(b), "through")
		requireNothingLeft(t, r, rep.PID)
	})
}

// A FIFO as a log with no reader, or as stdin with no writer: opening it
// blocks forever unless it is opened non-blocking. The launcher must not
// hang: no reader is an error (73, ENXIO); no writer yet is fine (stdin
// reads EOF until one comes).
func TestHardeningFifoTargetsDoNotHang(t *testing.T) {
	for _, tc := range []struct {
		v      string
		status int
	}{{"CDAEMON_LOG", 73}, {"CDAEMON_STDOUT", 73}, {"CDAEMON_STDIN", 0}} {
		t.Run(tc.v, func(t *testing.T) {
			dir := t.TempDir()
			fifo := filepath.Join(dir, "fifo")
			require.NoError(t, syscall.Mkfifo(fifo, 0o644))
			r := Spawn(t, probe, Opts{Env: []string{tc.v + "=" + fifo}})
			hung := waitBounded(t, r, 5*time.Second)
			require.False(t, hung, "the launcher hangs opening %s=%s", tc.v, fifo)
			require.Equal(t, tc.status, r.Status, r.Stderr)
			if tc.status == 0 {
				pid := r.ReadReport(t).PID
				r.Stop(t, pid)
				requireNothingLeft(t, r, pid)
			} else {
				requireOneClearLine(t, r.Stderr, tc.v, fifo)
				requireNothingLeft(t, r)
			}
		})
	}
}

// Files cdaemon creates get 0644 (pidfile) and 0640 (logs) whatever the
// launcher's umask and CDAEMON_UMASK; the daemon gets CDAEMON_UMASK.
func TestHardeningModesIgnoreUmask(t *testing.T) {
	for _, launcherUmask := range []string{"0000", "0777", "0022", "0077"} {
		for _, daemonUmask := range []string{"", "0777", "0027"} {
			t.Run(launcherUmask+"/"+daemonUmask, func(t *testing.T) {
				env := []string{"CDAEMON_PIDFILE=p.pid", "CDAEMON_STDOUT=out.log", "CDAEMON_STDERR=err.log"}
				if daemonUmask != "" {
					env = append(env, "CDAEMON_UMASK="+daemonUmask)
				}
				r := LaunchOpts(t, probe, Opts{Shell: "umask " + launcherUmask, Env: env})
				require.Equal(t, 0, r.Status, r.Stderr)
				rep := r.ReadReport(t)
				for name, want := range map[string]os.FileMode{"p.pid": 0o644, "out.log": 0o640, "err.log": 0o640} {
					fi, err := os.Stat(filepath.Join(r.Dir, name))
					require.NoError(t, err)
					assert.Equal(t, want, fi.Mode().Perm(), name)
				}
				want := 0
				if daemonUmask != "" {
					fmt.Sscanf(daemonUmask, "%o", &want)
				}
				assert.Equal(t, want, rep.Umask)
				r.Stop(t, rep.PID)
				requireNothingLeft(t, r, rep.PID)
			})
		}
	}
}

// Descriptors the launcher inherited never reach the daemon unless kept;
// every descriptor of the daemon above 2 that it did not inherit on
// purpose is close-on-exec, so programs it runs get none of them.
func TestHardeningInheritedFDs(t *testing.T) {
	for _, keep := range []string{"", "4", "3,5", "900"} {
		t.Run("keep="+keep, func(t *testing.T) {
			dir := t.TempDir()
			var files []*os.File
			for i := 0; i < 3; i++ { // fds 3, 4, 5
				f, err := os.Create(filepath.Join(dir, fmt.Sprintf("inherited%d", 3+i)))
				require.NoError(t, err)
				defer f.Close()
				files = append(files, f)
			}
			far, err := os.Create(filepath.Join(dir, "inherited900"))
			require.NoError(t, err)
			defer far.Close()
			files = append(files, make([]*os.File, 900-3-len(files))...)
			files = append(files, far) // fd 900
			env := []string{"CDAEMON_PIDFILE=p.pid"}
			if keep != "" {
				env = append(env, "CDAEMON_KEEP_FDS="+keep)
			}
			r := LaunchOpts(t, probe, Opts{Files: files, Env: env})
			require.Equal(t, 0, r.Status, r.Stderr)
			rep := r.ReadReport(t)
			kept := map[int]bool{}
			for _, k := range strings.Split(keep, ",") {
				var fd int
				if _, err := fmt.Sscan(k, &fd); err == nil {
					kept[fd] = true
				}
			}
			for fd, target := range rep.FDs {
				if strings.Contains(target, "inherited") {
					want := fmt.Sprintf("inherited%d", fd)
					assert.True(t, kept[fd] && strings.HasSuffix(target, want),
						"fd %d -> %s leaked into the daemon (kept: %q)", fd, target, keep)
				}
				if fd > 2 && !kept[fd] {
					assert.NotZero(t, rep.FDFlags[fd]&syscall.FD_CLOEXEC,
						"the daemon's fd %d -> %s is not close-on-exec", fd, target)
				}
			}
			for fd := range kept {
				assert.Contains(t, rep.FDs[fd], fmt.Sprintf("inherited%d", fd), "kept fd %d", fd)
			}
			r.Stop(t, rep.PID)
			requireNothingLeft(t, r, rep.PID)
		})
	}
}
