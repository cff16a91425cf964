package tests

// cdaemon.ReopenLogs, for logrotate's create mode: after the log files
// are renamed, the daemon reopens the same paths onto stdout and stderr.
// The ctl daemon calls it on SIGHUP and writes a line to each on SIGUSR1.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// sameOpenFile reports whether descriptors a and b of pid are the same
// open file description (kcmp KCMP_FILE).
func sameOpenFile(t *testing.T, pid, a, b int) bool {
	t.Helper()
	const kcmpFile = 0
	r, _, errno := unix.Syscall6(unix.SYS_KCMP, uintptr(pid), uintptr(pid), kcmpFile, uintptr(a), uintptr(b), 0)
	require.Zero(t, errno, "kcmp")
	return r == 0
}

// hasLines waits until path holds exactly want.
func hasLines(t *testing.T, path, want string) {
	t.Helper()
	eventually(t, path+" holding "+strings.TrimSpace(want), func() bool {
		b, _ := os.ReadFile(path)
		return string(b) == want
	})
}

func TestReopenLogs(t *testing.T) {
	t.Parallel()
	t.Run("one log for both", func(t *testing.T) {
		t.Parallel()
		r, rep, _ := startCtl(t, []string{"CDAEMON_LOG=d.log", "CDAEMON_UMASK=077"})
		log := filepath.Join(r.Dir, "d.log")
		assert.Equal(t, log, rep.Info.Stdout)
		assert.Equal(t, log, rep.Info.Stderr)
		require.NoError(t, syscall.Kill(rep.PID, syscall.SIGUSR1))
		hasLines(t, log, "out 1\nerr 1\n")

		require.NoError(t, os.Rename(log, log+".1"))
		require.NoError(t, syscall.Kill(rep.PID, syscall.SIGHUP))
		hasLines(t, log, "reopened\n")
		require.NoError(t, syscall.Kill(rep.PID, syscall.SIGUSR1))
		hasLines(t, log, "reopened\nout 2\nerr 2\n")
		assert.Equal(t, "out 1\nerr 1\n", readFile(t, log+".1"), "nothing more in the rotated file")

		fi, err := os.Stat(log)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm(), "0640 whatever the umask")
		assert.True(t, sameOpenFile(t, rep.PID, 1, 2), "stdout and stderr share one open file")
		fds := procFDs(t, rep.PID)
		assert.Zero(t, fds[1].Flags&unix.O_CLOEXEC, "stdout survives exec")
		assert.Equal(t, unix.O_WRONLY|unix.O_APPEND, fds[1].Flags&(unix.O_ACCMODE|unix.O_APPEND))
		for fd, f := range fds {
			if fd > 2 {
				assert.NotEqual(t, log, f.Target, "no descriptor left over on the log")
			}
		}
	})

	t.Run("separate files, stdin and /dev/null untouched", func(t *testing.T) {
		t.Parallel()
		r, rep, _ := startCtl(t, []string{"CDAEMON_STDOUT=o.log", "CDAEMON_STDERR=e.log"})
		out, errLog := filepath.Join(r.Dir, "o.log"), filepath.Join(r.Dir, "e.log")
		require.NoError(t, os.Rename(out, out+".1"))
		require.NoError(t, os.Rename(errLog, errLog+".1"))
		require.NoError(t, syscall.Kill(rep.PID, syscall.SIGHUP))
		hasLines(t, errLog, "reopened\n")
		require.NoError(t, syscall.Kill(rep.PID, syscall.SIGUSR1))
		hasLines(t, out, "out 1\n")
		hasLines(t, errLog, "reopened\nerr 1\n")
		assert.False(t, sameOpenFile(t, rep.PID, 1, 2))
		assert.True(t, isDevNull(procFDs(t, rep.PID)[0].Info), "stdin stays /dev/null")

		r2, rep2, _ := startCtl(t, []string{"CDAEMON_STDERR=e.log"})
		require.NoError(t, syscall.Kill(rep2.PID, syscall.SIGHUP))
		hasLines(t, filepath.Join(r2.Dir, "e.log"), "reopened\n")
		assert.True(t, isDevNull(procFDs(t, rep2.PID)[1].Info), "stdout stays /dev/null")
	})

	// A path that cannot be opened: the error names it and neither
	// descriptor changes, even the one whose file could be opened.
	t.Run("error keeps the old files", func(t *testing.T) {
		t.Parallel()
		r, rep, _ := startCtl(t, []string{"CDAEMON_STDOUT=o.log", "CDAEMON_STDERR=e.log"})
		out, errLog := filepath.Join(r.Dir, "o.log"), filepath.Join(r.Dir, "e.log")
		require.NoError(t, os.Rename(out, out+".1"))
		require.NoError(t, os.Rename(errLog, errLog+".1"))
		require.NoError(t, os.Mkdir(errLog, 0o755))
		require.NoError(t, syscall.Kill(rep.PID, syscall.SIGHUP))
		hasLines(t, errLog+".1", "reopen failed: reopen "+errLog+": is a directory\n")
		require.NoError(t, syscall.Kill(rep.PID, syscall.SIGUSR1))
		hasLines(t, out+".1", "out 1\n")
		hasLines(t, errLog+".1", "reopen failed: reopen "+errLog+": is a directory\nerr 1\n")
		assert.NoFileExists(t, out, "the file it could open is not left behind")
	})

	// In a directory anyone can write to, ReopenLogs applies the start's
	// rules (files.c's open_target): a symbolic link, a hard link, a
	// file someone else owns, a directory that lost its sticky bit are
	// refused, and the daemon keeps writing to the old file.
	t.Run("shared directory", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			name  string
			plant func(t *testing.T, log, victim string)
			why   string
		}{
			{"symbolic link", func(t *testing.T, log, victim string) {
				require.NoError(t, os.Symlink(victim, log))
			}, "it is a symbolic link, in a directory anyone can write to"},
			{"hard link", func(t *testing.T, log, victim string) {
				require.NoError(t, os.Link(victim, log))
			}, "it has 2 hard links (other names for the same file), in a directory anyone can write to"},
			{"not sticky", func(t *testing.T, log, victim string) {
				require.NoError(t, os.Chmod(filepath.Dir(log), 0o777))
			}, "its directory is writable by anyone and not sticky, so anyone could replace the file"},
		}
		if os.Geteuid() == 0 {
			cases = append(cases, struct {
				name  string
				plant func(t *testing.T, log, victim string)
				why   string
			}{"someone else's file", func(t *testing.T, log, victim string) {
				require.NoError(t, os.WriteFile(log, nil, 0o666))
				require.NoError(t, os.Chown(log, 65534, 65534))
			}, "owned by uid 65534, in a directory anyone can write to"})
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				shared := filepath.Join(t.TempDir(), "shared")
				require.NoError(t, os.Mkdir(shared, 0o755))
				require.NoError(t, os.Chmod(shared, os.ModeSticky|0o777))
				log := filepath.Join(shared, "d.log")
				victim := filepath.Join(t.TempDir(), "victim")
				require.NoError(t, os.WriteFile(victim, []byte("precious\n"), 0o644))
				_, rep, _ := startCtl(t, []string{"CDAEMON_LOG=" + log})
				require.NoError(t, os.Rename(log, log+".1"))
				tc.plant(t, log, victim)
				require.NoError(t, syscall.Kill(rep.PID, syscall.SIGHUP))
				hasLines(t, log+".1", "reopen failed: reopen "+log+": refusing: "+tc.why+"\n")
				assert.Equal(t, "precious\n", readFile(t, victim))
			})
		}
	})

	// The same in a directory the service user owns or its group may
	// write to: a symbolic link it planted there after the start is not
	// followed by a daemon still running as root.
	t.Run("directory another user can write to", func(t *testing.T) {
		t.Parallel()
		needRoot(t)
		for _, d := range sharedDirs {
			t.Run(d.name, func(t *testing.T) {
				t.Parallel()
				dir := filepath.Join(t.TempDir(), "shared")
				require.NoError(t, os.Mkdir(dir, 0o755))
				d.make(t, dir)
				log := filepath.Join(dir, "d.log")
				victim := filepath.Join(t.TempDir(), "victim")
				require.NoError(t, os.WriteFile(victim, []byte("precious\n"), 0o644))
				_, rep, _ := startCtl(t, []string{"CDAEMON_LOG=" + log})
				require.NoError(t, os.Rename(log, log+".1"))
				require.NoError(t, os.Symlink(victim, log))
				require.NoError(t, os.Lchown(log, nobody, nogroup))
				require.NoError(t, syscall.Kill(rep.PID, syscall.SIGHUP))
				hasLines(t, log+".1", "reopen failed: reopen "+log+": refusing: it is a symbolic link, in "+d.why+"\n")
				assert.Equal(t, "precious\n", readFile(t, victim))
			})
		}
	})
}

// After a privilege drop (CDAEMON_USER) the daemon reopens its log as the
// user it runs as: in a directory only root may write to, a new file
// cannot be created and the daemon keeps writing to the old one, saying
// why; a file made for it (logrotate's "create 0640 nobody nogroup")
// is reopened.
func TestReopenLogsAfterPrivilegeDrop(t *testing.T) {
	t.Parallel()
	needRoot(t)
	shared := sharedDir(t)                        // for the report the daemon writes as nobody
	top, err := os.MkdirTemp("", "cdaemon-logs-") // t.TempDir's parent is 0700
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(top) })
	require.NoError(t, os.Chmod(top, 0o755))
	logDir := filepath.Join(top, "logs") // root's: nobody may not create files here
	require.NoError(t, os.Mkdir(logDir, 0o755))
	log := filepath.Join(logDir, "d.log")
	report := filepath.Join(shared, "report.json")
	r := Launch(t, ctl(t), []string{"CDAEMON_USER=nobody", "CDAEMON_LOG=" + log, "PROBE_REPORT=" + report})
	r.RequireStatus(t, 0)
	var rep ctlReport
	eventually(t, "the ctl report", func() bool {
		b, err := os.ReadFile(report)
		return err == nil && json.Unmarshal(b, &rep) == nil
	})
	r.Track(rep.PID, rep.SID)
	require.Equal(t, strconv.Itoa(nobody), strings.Fields(procStatus(t, rep.PID)["Uid"])[1], "dropped to nobody")

	require.NoError(t, os.Rename(log, log+".1"))
	require.NoError(t, syscall.Kill(rep.PID, syscall.SIGHUP))
	hasLines(t, log+".1", "reopen failed: reopen "+log+": permission denied\n")
	assert.NoFileExists(t, log)

	// As logrotate's create mode would make it for the daemon's user.
	require.NoError(t, os.WriteFile(log, nil, 0o640))
	require.NoError(t, os.Chown(log, nobody, nogroup))
	require.NoError(t, syscall.Kill(rep.PID, syscall.SIGHUP))
	hasLines(t, log, "reopened\n")
	require.NoError(t, syscall.Kill(rep.PID, syscall.SIGUSR1))
	hasLines(t, log, "reopened\nout 1\nerr 1\n")
	assert.Equal(t, "reopen failed: reopen "+log+": permission denied\n", readFile(t, log+".1"))
}

// Under CDAEMON_CHROOT the daemon reaches only what is inside its new
// root: ReopenLogs reopens a log inside it by its path there, and refuses
// one outside it rather than open the same name inside the root, which is
// another file.
func TestReopenLogsInChroot(t *testing.T) {
	t.Parallel()
	needRoot(t)
	for _, inside := range []bool{true, false} {
		t.Run(map[bool]string{true: "log inside the root", false: "log outside the root"}[inside], func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			jail := filepath.Join(dir, "jail")
			require.NoError(t, os.Mkdir(jail, 0o755))
			log := filepath.Join(dir, "d.log")
			if inside {
				log = filepath.Join(jail, "d.log")
			}
			// The same path inside the root, where a wrong reopen would
			// create the file.
			mirror := filepath.Join(jail, log)
			require.NoError(t, os.MkdirAll(filepath.Dir(mirror), 0o755))
			r := LaunchOpts(t, ctl(t), Opts{Dir: dir, Env: []string{"CDAEMON_CHROOT=jail",
				"CDAEMON_LOG=" + log, "PROBE_REPORT=/report.json"}})
			r.RequireStatus(t, 0)
			var rep ctlReport
			eventually(t, "the ctl report", func() bool {
				b, err := os.ReadFile(filepath.Join(jail, "report.json"))
				return err == nil && json.Unmarshal(b, &rep) == nil
			})
			r.Track(rep.PID, rep.SID)
			assert.Equal(t, log, rep.Info.Stderr)

			require.NoError(t, os.Rename(log, log+".1"))
			require.NoError(t, syscall.Kill(rep.PID, syscall.SIGHUP))
			if inside {
				hasLines(t, log, "reopened\n")
			} else {
				hasLines(t, log+".1", "reopen failed: reopen "+log+": outside CDAEMON_CHROOT "+jail+
					", which the daemon cannot reach\n")
				assert.NoFileExists(t, log)
			}
			assert.NoFileExists(t, mirror)
		})
	}
}
