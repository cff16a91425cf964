package tests

// A local attacker against a daemon root starts (issue 17): the user
// nobody, reached with setpriv as an unprivileged user would be, tries to
// block every start by locking the pidfile, to have root write through a
// link or into a file of theirs in a directory they can write, and a
// pidfile that names another process tries to aim root's stop, reload and
// status elsewhere. Each attack fails: no start blocked, nothing written
// through a link, no unrelated process signalled, nothing left behind.

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/cdaemon/cdaemon"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// needNobody skips unless the test can act as the attacker: root, to
// drop to nobody, and setpriv.
func needNobody(t *testing.T) {
	t.Helper()
	needRoot(t)
	if u, err := user.Lookup("nobody"); err != nil || u.Uid != strconv.Itoa(nobody) {
		t.Skipf("no user nobody with uid %d to attack as (%v)", nobody, err)
	}
	needTool(t, "setpriv", "util-linux")
}

// asAttacker is sh -c script run as nobody/nogroup with no other groups.
func asAttacker(script string, args ...string) *exec.Cmd {
	return exec.Command("setpriv", append([]string{"--reuid=nobody", "--regid=nogroup",
		"--clear-groups", "sh", "-c", script, "attacker"}, args...)...)
}

// attack runs script as nobody to its end; it must succeed.
func attack(t *testing.T, script string, args ...string) {
	t.Helper()
	out, err := asAttacker(script, args...).CombinedOutput()
	require.NoError(t, err, "the attacker's %q: %s", script, out)
}

// attackerLocks has nobody take `flock -s` on each path it can open
// and hold it, in one process (the shell's descriptors, then sleep's),
// until the test ends; it returns that process's pid once the locks are
// taken. A path it cannot open (a lock file only its owner may read) is
// skipped, as an attacker would.
func attackerLocks(t *testing.T, paths ...string) int {
	t.Helper()
	script := ""
	for i := range paths {
		fd := strconv.Itoa(3 + i) // dash: descriptors 0 to 9
		script += "if command exec " + fd + `<"$` + strconv.Itoa(i+1) + `" 2>/dev/null; then flock -s ` + fd + " || exit 1; fi; "
	}
	cmd := asAttacker(script+"echo locked; exec sleep 1000", paths...)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err, "the attacker did not take its locks")
	require.Equal(t, "locked\n", line)
	return cmd.Process.Pid
}

// reachable is a directory of root's (0755) the attacker can enter.
func reachable(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cdaemon-attack-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	return dir
}

// lockFile is where the daemon's lock is, beside its pidfile.
func lockFile(pidfile string) string { return pidfile + ".lock" }

// Anyone may read the pidfile, so anyone may flock it: that decides
// nothing. The lock that says "already running" is on a file only the
// starter can open. After a daemon died by SIGKILL, leaving its files, and
// nobody locked them all they can: a root start still succeeds, status
// answers for it, and a second start by root is still refused with 75.
func TestAttackerLockingThePidfileBlocksNoStart(t *testing.T) {
	t.Parallel()
	needNobody(t)
	dir := reachable(t)
	pidfile := filepath.Join(dir, "d.pid")
	env := []string{"CDAEMON_PIDFILE=" + pidfile}
	first := LaunchOpts(t, ctl(t), Opts{Dir: dir, Env: env})
	first.RequireStatus(t, 0)
	dead := readCtlReport(t, first).PID
	require.NoError(t, syscall.Kill(dead, syscall.SIGKILL))
	first.WaitExit(t, dead)
	require.FileExists(t, pidfile, "a killed daemon leaves its pidfile")

	attacker := attackerLocks(t, pidfile, lockFile(pidfile))
	r := LaunchOpts(t, ctl(t), Opts{Dir: dir, Env: env})
	r.RequireStatus(t, 0)
	rep := readCtlReport(t, r)
	assert.Equal(t, pidText(rep.PID), readFile(t, pidfile))

	c := command(t, "status", pidfile)
	c.RequireStatus(t, 0)
	assert.Equal(t, pidfile+": running, pid "+strconv.Itoa(rep.PID)+"\n", c.Stdout)

	again := LaunchOpts(t, ctl(t), Opts{Dir: dir, Env: env})
	again.RequireStatus(t, cdaemon.ExitTempFail)
	assert.Contains(t, again.Stderr, "locked by pid "+strconv.Itoa(rep.PID))
	again.RequireGone(t)

	c = command(t, "stop", pidfile)
	c.RequireStatus(t, 0)
	r.WaitExit(t, rep.PID)
	requireNoFile(t, pidfile, "stopped")
	requireNoFile(t, lockFile(pidfile), "stopped")
	requireAlive(t, attacker)
}

// sharedDirs are directories the attacker can write to that root's start
// may be pointed at: one the service user owns (0755), one root owns that
// the service user's group may write to. why is how a refusal names the
// directory.
var sharedDirs = []struct {
	name string
	make func(t *testing.T, dir string)
	why  string
}{
	{"owned by nobody", func(t *testing.T, dir string) {
		require.NoError(t, os.Chown(dir, nobody, nogroup))
	}, "a directory owned by uid 65534"},
	{"writable by its group", func(t *testing.T, dir string) {
		require.NoError(t, os.Chown(dir, 0, nogroup))
		require.NoError(t, os.Chmod(dir, 0o775))
	}, "a directory group 65534 can write to"},
}

// sharedTarget is one path a start opens before it drops privileges.
type sharedTarget struct {
	name  string
	file  string // the name in the directory
	env   func(path string) []string
	plant string // the name the attacker plants, relative to file
}

var sharedTargets = []sharedTarget{
	{"CDAEMON_LOG", "app.log", func(p string) []string { return []string{"CDAEMON_LOG=" + p} }, ""},
	{"CDAEMON_STDOUT", "app.out", func(p string) []string { return []string{"CDAEMON_STDOUT=" + p} }, ""},
	{"CDAEMON_STDERR", "app.err", func(p string) []string { return []string{"CDAEMON_STDERR=" + p} }, ""},
	{"CDAEMON_PIDFILE", "app.pid", func(p string) []string { return []string{"CDAEMON_PIDFILE=" + p} }, ""},
	{"CDAEMON_PIDFILE", "app.pid", func(p string) []string { return []string{"CDAEMON_PIDFILE=" + p} }, ".lock"},
	{"CDAEMON_LISTEN", "app.sock", func(p string) []string { return []string{"CDAEMON_LISTEN=unix:" + p} }, ""},
}

func (s sharedTarget) label() string {
	if s.plant != "" {
		return "lock file"
	}
	return s.name
}

// staleSocket leaves a unix socket file at path that nothing listens on.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	require.NoError(t, err)
	l.SetUnlinkOnClose(false)
	l.Close()
}

// A directory another user can write to is shared: there root's start
// never follows a symbolic link at the last component (the attacker could
// point it at any file of root's), refuses a file that user owns (it
// could be a hard link or become one at any moment) and a file with other
// names, for the logs, the stdio targets, the pidfile, its lock file and
// unix sockets (a stale one is not unlinked either). Each refusal is 73,
// one line naming the path and the directory's owner or group; the file
// linked to keeps its content, what was planted stays, nothing runs.
func TestSharedDirectoryRefusesAttackersFiles(t *testing.T) {
	t.Parallel()
	needNobody(t)
	plants := []struct {
		name string
		on   string // "files", "sockets" or "both"
		// plant puts a file at path; untouched checks it and what it
		// points to after the refusal.
		plant func(t *testing.T, path string) (untouched func())
		why   string
	}{
		{"symbolic link to root's file", "both", func(t *testing.T, path string) func() {
			target := filepath.Join(t.TempDir(), "precious")
			require.NoError(t, os.WriteFile(target, []byte("precious\n"), 0o600))
			attack(t, `ln -s "$1" "$2"`, target, path)
			return func() {
				assert.Equal(t, "precious\n", readFile(t, target), "written through the link")
				link, err := os.Readlink(path)
				assert.NoError(t, err)
				assert.Equal(t, target, link)
			}
		}, "it is a symbolic link"},
		{"dangling symbolic link", "both", func(t *testing.T, path string) func() {
			target := filepath.Join(reachable(t), "created")
			attack(t, `ln -s "$1" "$2"`, target, path)
			return func() { requireNoFile(t, target, "created through the link") }
		}, "it is a symbolic link"},
		{"the attacker's file", "files", func(t *testing.T, path string) func() {
			attack(t, `echo theirs >"$1"`, path)
			return func() { assert.Equal(t, "theirs\n", readFile(t, path)) }
		}, "owned by uid 65534"},
		{"the attacker's stale socket", "sockets", func(t *testing.T, path string) func() {
			staleSocket(t, path)
			require.NoError(t, os.Lchown(path, nobody, nogroup))
			var before unix.Stat_t
			require.NoError(t, unix.Lstat(path, &before))
			return func() {
				var now unix.Stat_t
				require.NoError(t, unix.Lstat(path, &now), "the stale socket was removed")
				assert.Equal(t, before.Ino, now.Ino, "the stale socket was replaced")
			}
		}, "owned by uid 65534"},
		{"hard link to root's file", "files", func(t *testing.T, path string) func() {
			target := filepath.Join(t.TempDir(), "precious")
			require.NoError(t, os.WriteFile(target, []byte("precious\n"), 0o600))
			require.NoError(t, os.Link(target, path))
			return func() { assert.Equal(t, "precious\n", readFile(t, target)) }
		}, "it has 2 hard links"},
	}
	for _, d := range sharedDirs {
		for _, s := range sharedTargets {
			for _, p := range plants {
				if p.on != "both" && p.on != map[bool]string{false: "files", true: "sockets"}[s.name == "CDAEMON_LISTEN"] {
					continue
				}
				t.Run(d.name+"/"+s.label()+"/"+p.name, func(t *testing.T) {
					t.Parallel()
					dir := filepath.Join(reachable(t), "shared")
					require.NoError(t, os.Mkdir(dir, 0o755))
					d.make(t, dir)
					path := filepath.Join(dir, s.file)
					untouched := p.plant(t, path+s.plant)
					r := Launch(t, probe, s.env(path), "-say", "written")
					requireCantCreate(t, r, s.name, path+s.plant, p.why, d.why)
					untouched()
					if s.plant != "" {
						requireNoFile(t, path, "the start was refused")
					}
				})
			}
		}
	}
}

// What a start creates in a shared directory, or finds there owned by
// root with one name, it uses; a symbolic link in root's own directory is
// followed as before.
func TestSharedDirectoryKeepsRootsOwnFiles(t *testing.T) {
	t.Parallel()
	needNobody(t)
	for _, d := range sharedDirs {
		for _, existing := range []bool{false, true} {
			t.Run(d.name+map[bool]string{false: "/created", true: "/root's files"}[existing], func(t *testing.T) {
				t.Parallel()
				dir := filepath.Join(reachable(t), "shared")
				require.NoError(t, os.Mkdir(dir, 0o755))
				d.make(t, dir)
				log, pidfile, sock := filepath.Join(dir, "app.log"), filepath.Join(dir, "app.pid"), filepath.Join(dir, "app.sock")
				had := ""
				if existing {
					had = "old line\n"
					require.NoError(t, os.WriteFile(log, []byte(had), 0o640))
					require.NoError(t, os.WriteFile(pidfile, []byte("12345\n"), 0o644))
					require.NoError(t, os.WriteFile(lockFile(pidfile), nil, 0o600))
					staleSocket(t, sock)
				}
				r := Launch(t, probe, []string{"CDAEMON_LOG=" + log, "CDAEMON_PIDFILE=" + pidfile,
					"CDAEMON_LISTEN=unix:" + sock}, "-say", "written")
				r.RequireStatus(t, 0)
				rep := r.ReadReport(t)
				assert.Equal(t, had+"stdout: written\nstderr: written\n", readFile(t, log))
				assert.Equal(t, pidText(rep.PID), readFile(t, pidfile))
				fi, err := os.Lstat(sock)
				require.NoError(t, err)
				assert.Equal(t, os.ModeSocket, fi.Mode().Type())
				r.Stop(t, rep.PID)
				requireNothingLeft(t, r, rep.PID)
			})
		}
	}
	t.Run("symbolic link in root's directory", func(t *testing.T) {
		t.Parallel()
		dir := reachable(t)
		real := filepath.Join(t.TempDir(), "real.log")
		require.NoError(t, os.Symlink(real, filepath.Join(dir, "app.log")))
		r := Launch(t, probe, []string{"CDAEMON_LOG=" + filepath.Join(dir, "app.log")}, "-say", "written")
		r.RequireStatus(t, 0)
		rep := r.ReadReport(t)
		assert.Equal(t, "stdout: written\nstderr: written\n", readFile(t, real))
		r.Stop(t, rep.PID)
		requireNothingLeft(t, r, rep.PID)
	})
}

// tampers are what a pidfile may hold while its daemon runs: anyone who
// could write it (the daemon itself, running as root) may have aimed it
// at another process, a pid that is gone, or nothing.
func tampers(t *testing.T) (other int, list []struct {
	name, text string
	named      int // the pid it names, 0 for none
}) {
	other = victim(t)
	gone := exec.Command("true")
	require.NoError(t, gone.Run())
	dead := gone.ProcessState.Pid()
	return other, []struct {
		name, text string
		named      int
	}{
		{"names a live unrelated process", pidText(other), other},
		{"names a dead pid", pidText(dead), dead},
		{"empty", "", 0},
		{"garbage", "not a pid\x00\n", 0},
	}
}

// A pidfile rewritten while its daemon runs does not hide the daemon from
// root's tools, nor aim them elsewhere: status names the process that
// holds the lock and says the file names another; stop and Daemon.Stop
// stop that process, leave the one named alone, remove the pidfile and
// the lock file and succeed; reload signals the holder.
func TestTamperedPidfileActsOnTheLockHolder(t *testing.T) {
	t.Parallel()
	other, list := tampers(t)
	t.Cleanup(func() { requireAlive(t, other) }) // before the victim is killed
	for _, tc := range list {
		names := "the pidfile names no pid"
		if tc.named != 0 {
			names = "the pidfile names pid " + strconv.Itoa(tc.named)
		}
		t.Run(tc.name+"/status", func(t *testing.T) {
			t.Parallel()
			_, rep, pidfile := startCtl(t, nil)
			require.NoError(t, os.WriteFile(pidfile, []byte(tc.text), 0o644))
			c := command(t, "status", pidfile)
			c.RequireStatus(t, 0)
			assert.Equal(t, pidfile+": running, pid "+strconv.Itoa(rep.PID)+", which holds its lock ("+names+")\n", c.Stdout)
			requireAlive(t, rep.PID)
		})
		t.Run(tc.name+"/cdaemon stop", func(t *testing.T) {
			t.Parallel()
			r, rep, pidfile := startCtl(t, nil)
			require.NoError(t, os.WriteFile(pidfile, []byte(tc.text), 0o644))
			c := command(t, "stop", pidfile)
			c.RequireStatus(t, 0)
			assert.Equal(t, pidfile+": stopped pid "+strconv.Itoa(rep.PID)+"\n", c.Stdout)
			ws := r.WaitExit(t, rep.PID)
			assert.True(t, ws.Exited() && ws.ExitStatus() == 0, "ended on SIGTERM: %v", ws)
			requireNoFile(t, pidfile, "stopped")
			requireNoFile(t, lockFile(pidfile), "stopped")
		})
		t.Run(tc.name+"/Daemon.Stop", func(t *testing.T) {
			t.Parallel()
			r, rep, pidfile := startCtl(t, nil)
			require.NoError(t, os.WriteFile(pidfile, []byte(tc.text), 0o644))
			d, err := cdaemon.FindDaemon(pidfile)
			require.NoError(t, err)
			defer d.Close()
			assert.Equal(t, rep.PID, d.PID, "the lock's holder")
			assert.Equal(t, tc.named, d.Named, "the pid the file names")
			killed, err := d.Stop(0, hang)
			require.NoError(t, err)
			assert.False(t, killed)
			r.WaitExit(t, rep.PID)
			requireNoFile(t, pidfile, "stopped")
			requireNoFile(t, lockFile(pidfile), "stopped")
		})
		t.Run(tc.name+"/reload", func(t *testing.T) {
			t.Parallel()
			r, rep, pidfile := startCtl(t, []string{"CDAEMON_LOG=d.log"})
			require.NoError(t, os.WriteFile(pidfile, []byte(tc.text), 0o644))
			c := command(t, "reload", pidfile)
			c.RequireStatus(t, 0)
			assert.Equal(t, pidfile+": sent SIGHUP to pid "+strconv.Itoa(rep.PID)+"\n", c.Stdout)
			hasLines(t, filepath.Join(r.Dir, "d.log"), "reopened\n")
		})
	}
}
