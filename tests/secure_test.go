package tests

// Secure execution: a setuid or setgid program that imports cdaemon takes
// its environment from a less privileged user. Any CDAEMON_* variable is
// refused with 77 before anything is opened or forked; without one, the
// program runs with its built-in defaults.

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdaemon/cdaemon"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// privileged copies the probe into a directory anyone may enter, owned by
// root with the given set-id bits, and returns the directory and the copy.
func privileged(t *testing.T, bits os.FileMode) (dir, bin string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a setuid-root program (CI runs as root)")
	}
	// Not t.TempDir: its parent is private to root, and nobody must be
	// able to run the program.
	dir, err := os.MkdirTemp("", "cdaemon-setid-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	bin = filepath.Join(dir, "probe-setid")
	src, err := os.Open(probe)
	require.NoError(t, err)
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_WRONLY|os.O_CREATE, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(dst, src)
	require.NoError(t, err)
	require.NoError(t, dst.Close())
	require.NoError(t, os.Chmod(bin, 0o755|bits))
	return dir, bin
}

// nobodyIn runs the program as nobody:nogroup in dir.
func nobodyIn(dir string, env []string) Opts {
	return Opts{Dir: dir, Env: env, Attr: asNobody()}
}

func TestSecureExecutionRefusesSettings(t *testing.T) {
	t.Parallel()
	for _, bits := range []os.FileMode{os.ModeSetuid, os.ModeSetgid} {
		dir, bin := privileged(t, bits)
		// A file only root may write, which the attacker would have the
		// program overwrite with its pid, and one it would create.
		victim := filepath.Join(dir, "victim")
		require.NoError(t, os.WriteFile(victim, []byte("precious\n"), 0o644))
		created := filepath.Join(dir, "created.log")
		for _, env := range [][]string{
			{"CDAEMON_PIDFILE=" + victim},
			{"CDAEMON_LOG=" + created},
			{"CDAEMON_STDOUT=" + created, "CDAEMON_PIDFILE=" + victim},
			{"CDAEMON=off"},
			{"CDAEMON_TYPO=1"},
		} {
			name := bits.String() + "/" + strings.Join(env, ",")
			t.Run(name, func(t *testing.T) {
				r := LaunchOpts(t, bin, nobodyIn(dir, env))
				r.RequireStatus(t, cdaemon.ExitNoPerm)
				variable := env[0][:strings.IndexByte(env[0], '=')]
				requireOneClearLine(t, r.Stderr, variable+" is refused", "setuid")
				r.RequireGone(t)
				assert.NoFileExists(t, r.Report, "main ran")
				assert.Equal(t, "precious\n", readFile(t, victim), "the root-owned file was written")
				assert.NoFileExists(t, created, "a file was created")
			})
		}
	}
}

func TestSecureExecutionDefaults(t *testing.T) {
	t.Parallel()
	dir, bin := privileged(t, os.ModeSetuid)
	r := LaunchOpts(t, bin, nobodyIn(dir, nil))
	r.RequireStatus(t, 0)
	rep := r.ReadReport(t)
	assert.True(t, rep.Info.Daemonized, "no CDAEMON_*: the built-in defaults, which daemonize")
	assert.Empty(t, rep.Info.Pidfile)
	r.Stop(t, rep.PID)
}
