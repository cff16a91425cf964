package tests

// Property 5: the daemon's descriptors 0, 1 and 2 are /dev/null or the
// configured files, seen from outside; output appends; files cdaemon
// creates get fixed modes whatever the umask.

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/cdaemon/cdaemon"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStdioTargets checks where each of 0, 1 and 2 points for each way of
// configuring them. Paths are relative to the launcher's working
// directory (the daemon runs in /).
func TestStdioTargets(t *testing.T) {
	t.Parallel()
	const null = ""
	cases := []struct {
		name   string
		env    []string
		in     string // file name in the run's directory, or null
		out    string
		err    string
		shared bool // 1 and 2 are one open file: lines stay in order
	}{
		{"defaults", nil, null, null, null, false},
		{"CDAEMON_LOG", []string{"CDAEMON_LOG=log"}, null, "log", "log", true},
		{"separate files", []string{"CDAEMON_STDIN=in", "CDAEMON_STDOUT=out", "CDAEMON_STDERR=err"},
			"in", "out", "err", false},
		{"STDERR overrides LOG", []string{"CDAEMON_LOG=log", "CDAEMON_STDERR=err"}, null, "log", "err", false},
		{"STDOUT overrides LOG", []string{"CDAEMON_LOG=log", "CDAEMON_STDOUT=out"}, null, "out", "log", false},
		{"STDOUT and STDERR the same", []string{"CDAEMON_STDOUT=log", "CDAEMON_STDERR=log"}, null, "log", "log", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if tc.in != null {
				require.NoError(t, os.WriteFile(filepath.Join(dir, tc.in), []byte("input\n"), 0o644))
			}
			r := LaunchOpts(t, probe, Opts{Dir: dir, Env: tc.env, Args: []string{"-say", "hello"}})
			r.RequireStatus(t, 0)
			pid := r.ReadReport(t).PID
			fds := procFDs(t, pid)
			for fd, name := range []string{tc.in, tc.out, tc.err} {
				require.Contains(t, fds, fd)
				got := fds[fd]
				if name == null {
					assert.True(t, isDevNull(got.Info), "fd %d is %s, want /dev/null", fd, got.Target)
					continue
				}
				want, err := os.Stat(filepath.Join(dir, name))
				require.NoError(t, err, "fd %d's file was not created where the launcher ran", fd)
				assert.True(t, os.SameFile(want, got.Info), "fd %d is %s, want %s", fd, got.Target, name)
				if fd == 0 {
					assert.Equal(t, os.O_RDONLY, got.Flags&syscall.O_ACCMODE, "stdin opened for writing")
				} else {
					assert.NotZero(t, got.Flags&os.O_APPEND, "fd %d is not in append mode", fd)
				}
			}
			if tc.shared {
				assert.Equal(t, "stdout: hello\nstderr: hello\n", readFile(t, filepath.Join(dir, tc.out)))
			}
		})
	}
}

// Output is appended: what a log file held is kept, and two daemons (or
// two starts) writing to it interleave instead of overwriting each other.
func TestLogAppends(t *testing.T) {
	t.Parallel()
	log := filepath.Join(t.TempDir(), "daemon.log")
	require.NoError(t, os.WriteFile(log, []byte("existing line\n"), 0o600))
	for _, word := range []string{"one", "two"} {
		r := Launch(t, probe, []string{"CDAEMON_LOG=" + log}, "-say", word)
		r.RequireStatus(t, 0)
		r.ReadReport(t) // the probe writes its lines before the report
	}
	assert.Equal(t, "existing line\nstdout: one\nstderr: one\nstdout: two\nstderr: two\n", readFile(t, log))
	fi, err := os.Stat(log)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "an existing log's mode was changed")
}

// Files cdaemon creates get 0640 (logs) and 0644 (pidfile) whatever the
// launcher's umask and whatever CDAEMON_UMASK gives the daemon.
func TestCreatedFileModes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, shell, umask string }{
		{"launcher umask 077", "umask 077", ""},
		{"launcher umask 0, CDAEMON_UMASK=0777", "umask 0", "CDAEMON_UMASK=0777"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := []string{"CDAEMON_LOG=log", "CDAEMON_STDERR=err", "CDAEMON_PIDFILE=p.pid"}
			if tc.umask != "" {
				env = append(env, tc.umask)
			}
			r := LaunchOpts(t, probe, Opts{Shell: tc.shell, Env: env})
			r.RequireStatus(t, 0)
			r.ReadReport(t)
			for name, want := range map[string]os.FileMode{"log": 0o640, "err": 0o640, "p.pid": 0o644} {
				fi, err := os.Stat(filepath.Join(r.Dir, name))
				require.NoError(t, err)
				assert.Equal(t, want, fi.Mode().Perm(), name)
			}
		})
	}
}

// A launcher started with 0, 1 and 2 closed (`prog <&- >&- 2>&-`): the
// files cdaemon opens must not land on them, or dup2 would replace the
// pidfile's descriptor and the lock would go with the launcher.
func TestClosedStdioAtLaunch(t *testing.T) {
	t.Parallel()
	for _, log := range []bool{false, true} {
		t.Run(map[bool]string{false: "defaults", true: "CDAEMON_LOG"}[log], func(t *testing.T) {
			t.Parallel()
			env := []string{"CDAEMON_PIDFILE=p.pid"}
			if log {
				env = append(env, "CDAEMON_LOG=log")
			}
			r := LaunchOpts(t, probe, Opts{Env: env, Shell: "exec 0<&- 1>&- 2>&-", Args: []string{"-say", "hi"}})
			r.RequireStatus(t, 0)
			pid := r.ReadReport(t).PID
			fds := procFDs(t, pid)
			assert.True(t, isDevNull(fds[0].Info), "fd 0 is %s", fds[0].Target)
			for _, fd := range []int{1, 2} {
				if !log {
					assert.True(t, isDevNull(fds[fd].Info), "fd %d is %s", fd, fds[fd].Target)
					continue
				}
				want, err := os.Stat(filepath.Join(r.Dir, "log"))
				require.NoError(t, err)
				assert.True(t, os.SameFile(want, fds[fd].Info), "fd %d is %s", fd, fds[fd].Target)
			}
			if log {
				assert.Equal(t, "stdout: hi\nstderr: hi\n", readFile(t, filepath.Join(r.Dir, "log")))
			}

			again := LaunchOpts(t, probe, Opts{Dir: r.Dir, Env: env})
			again.RequireStatus(t, cdaemon.ExitTempFail)
			assert.Contains(t, again.Stderr, "locked by pid "+strconv.Itoa(pid))
		})
	}
}

// Logs in a directory anyone can write to (/tmp, a shared spool) follow
// the pidfile's rules, or anyone could have the daemon (often root) append
// to a file of their choosing: without the sticky bit the directory is
// refused (anyone could swap the file); in a sticky one a symbolic link is
// never followed, and a file someone else owns, or one with other names,
// is refused. Ours, existing or new, is used. In ordinary directories a
// log may be a symbolic link. Refused starts run nothing: the targets keep
// what they held.
func TestLogsInSharedDirectories(t *testing.T) {
	t.Parallel()
	const sticky = 0o777 | os.ModeSticky
	// target is a file of ours outside the directory, which a link in it
	// must not reach.
	target := func(t *testing.T) string {
		path := filepath.Join(t.TempDir(), "precious")
		require.NoError(t, os.WriteFile(path, []byte("precious\n"), 0o600))
		return path
	}
	refused := []struct {
		name, variable string
		dir            os.FileMode
		plant          func(t *testing.T, log string) (untouched func())
		why            string
	}{
		{"not sticky", "CDAEMON_STDERR", 0o777, nil, "its directory is writable by anyone and not sticky"},
		{"symbolic link", "CDAEMON_LOG", sticky, func(t *testing.T, log string) func() {
			tgt := target(t)
			require.NoError(t, os.Symlink(tgt, log))
			return func() { assert.Equal(t, "precious\n", readFile(t, tgt)) }
		}, "it is a symbolic link, in a directory anyone can write to"},
		{"dangling symbolic link", "CDAEMON_STDOUT", sticky, func(t *testing.T, log string) func() {
			tgt := filepath.Join(t.TempDir(), "created")
			require.NoError(t, os.Symlink(tgt, log))
			return func() { requireNoFile(t, tgt, "the link was followed") }
		}, "it is a symbolic link"},
		{"owned by another user", "CDAEMON_STDOUT", sticky, func(t *testing.T, log string) func() {
			if os.Geteuid() != 0 {
				t.Skip("needs root to plant a file owned by another user")
			}
			require.NoError(t, os.WriteFile(log, []byte("theirs\n"), 0o666))
			require.NoError(t, os.Chown(log, 65534, 65534))
			return func() { assert.Equal(t, "theirs\n", readFile(t, log)) }
		}, "owned by uid 65534, in a directory anyone can write to"},
		{"hard link", "CDAEMON_LOG", sticky, func(t *testing.T, log string) func() {
			tgt := target(t)
			require.NoError(t, os.Link(tgt, log))
			return func() { assert.Equal(t, "precious\n", readFile(t, tgt)) }
		}, "it has 2 hard links"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "shared")
			require.NoError(t, os.Mkdir(dir, 0o755))
			require.NoError(t, os.Chmod(dir, tc.dir))
			log := filepath.Join(dir, "daemon.log")
			untouched := func() { requireNoFile(t, log, "the start was refused") }
			if tc.plant != nil {
				untouched = tc.plant(t, log)
			}
			r := Launch(t, probe, []string{tc.variable + "=" + log}, "-say", "written")
			r.RequireStatus(t, cdaemon.ExitCantCreate)
			requireCantCreate(t, r, tc.variable, cquote(log), tc.why)
			untouched()
		})
	}

	accepted := []struct {
		name  string
		dir   os.FileMode
		link  bool   // the log is a symbolic link to a file outside
		had   string // the log's content before, "" for no file
		owner bool   // the file is created by the start
	}{
		{"sticky, ours", sticky, false, "old line\n", false},
		{"sticky, created", sticky, false, "", true},
		{"ordinary directory, symbolic link", 0o755, true, "old line\n", false},
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "shared")
			require.NoError(t, os.Mkdir(dir, 0o755))
			require.NoError(t, os.Chmod(dir, tc.dir))
			log := filepath.Join(dir, "daemon.log")
			file := log
			if tc.link {
				file = filepath.Join(t.TempDir(), "real.log")
				require.NoError(t, os.Symlink(file, log))
			}
			if tc.had != "" {
				require.NoError(t, os.WriteFile(file, []byte(tc.had), 0o600))
			}
			r := Launch(t, probe, []string{"CDAEMON_LOG=" + log}, "-say", "written")
			r.RequireStatus(t, 0)
			rep := r.ReadReport(t) // the probe writes its lines before the report
			assert.Equal(t, tc.had+"stdout: written\nstderr: written\n", readFile(t, file))
			fi, err := os.Stat(file)
			require.NoError(t, err)
			if tc.owner {
				assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
				assert.Equal(t, uint32(os.Geteuid()), fi.Sys().(*syscall.Stat_t).Uid)
			}
			r.Stop(t, rep.PID)
			requireNothingLeft(t, r, rep.PID)
		})
	}
}

// A start that fails before the fork leaves no file behind: a log it
// created is removed again, one that was there keeps what it held. (A
// start that fails after the fork keeps its log: it holds what the daemon
// said, TestFailureBeforeReady.)
func TestFailedStartLeavesNoLog(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		env    []string // relative to the run's directory; the log is "new.log" or "old.log"
		sticky bool     // the run's directory is writable by anyone, sticky
		locked bool     // p.pid is locked by a running daemon
		status int
	}{
		{"stderr cannot be opened", []string{"CDAEMON_LOG=new.log", "CDAEMON_STDERR=nodir/err"}, false, false, cdaemon.ExitCantCreate},
		{"the directory is missing", []string{"CDAEMON_STDOUT=new.log", "CDAEMON_CHDIR=missing"}, false, false, cdaemon.ExitCantCreate},
		{"the pidfile cannot be opened", []string{"CDAEMON_LOG=new.log", "CDAEMON_PIDFILE=nodir/p.pid"}, false, false, cdaemon.ExitCantCreate},
		{"already running", []string{"CDAEMON_LOG=new.log", "CDAEMON_PIDFILE=p.pid"}, false, true, cdaemon.ExitTempFail},
		{"in a sticky directory", []string{"CDAEMON_STDERR=new.log", "CDAEMON_PIDFILE=nodir/p.pid"}, true, false, cdaemon.ExitCantCreate},
		{"an existing log", []string{"CDAEMON_LOG=old.log", "CDAEMON_STDERR=nodir/err"}, false, false, cdaemon.ExitCantCreate},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if tc.sticky {
				require.NoError(t, os.Chmod(dir, 0o777|os.ModeSticky))
			}
			require.NoError(t, os.WriteFile(filepath.Join(dir, "old.log"), []byte("old line\n"), 0o600))
			if tc.locked {
				first := LaunchOpts(t, probe, Opts{Dir: dir, Env: []string{"CDAEMON_PIDFILE=p.pid"}})
				first.RequireStatus(t, 0)
				pid := pidFromFile(t, filepath.Join(dir, "p.pid"))
				first.Track(pid)
				defer first.Stop(t, pid)
			}
			r := LaunchOpts(t, probe, Opts{Dir: dir, Env: tc.env, Args: []string{"-say", "written"}})
			r.RequireStatus(t, tc.status)
			requireNothingLeft(t, r)
			requireNoFile(t, filepath.Join(dir, "new.log"), "the start that created it failed")
			assert.Equal(t, "old line\n", readFile(t, filepath.Join(dir, "old.log")))
		})
	}
}
