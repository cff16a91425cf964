package tests

// Privileges, confinement and limits (CDAEMON_USER, CDAEMON_GROUP,
// CDAEMON_CAPS, CDAEMON_CHROOT, CDAEMON_NO_NEW_PRIVS, CDAEMON_NOFILE,
// CDAEMON_CORE, CDAEMON_NICE, CDAEMON_OOM_SCORE_ADJ): applied before the
// Go runtime exists, so every thread it starts has them (property 18),
// asserted from /proc on each task; every bad value and refusal, with
// nothing left behind. The suite runs as root in CI and drops to
// nobody/nogroup.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"math/rand"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cdaemon/cdaemon"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const nobody, nogroup = 65534, 65534

// needRoot skips where the test cannot change users: CI runs as root.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("changing users needs root; CI runs the suite as root")
	}
}

var openBinDir sync.Once

// sharedDir is a sticky directory anyone may write to, as /tmp is, for
// what a process that dropped to nobody writes (its report) and for
// launchers started as nobody. The programs become executable by all.
func sharedDir(t *testing.T) string {
	t.Helper()
	openBinDir.Do(func() { os.Chmod(binDir, 0o755) })
	dir, err := os.MkdirTemp("", "cdaemon-shared-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, os.ModeSticky|0o777)) // 0o1777 would lose the sticky bit
	return dir
}

// asNobody starts a launcher as nobody/nogroup with no other groups.
func asNobody() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nogroup}}
}

// tasks reads /proc/PID/task/*/status of every thread of pid.
func tasks(t *testing.T, pid int) map[string]map[string]string {
	t.Helper()
	dirs, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	require.NoError(t, err)
	all := map[string]map[string]string{}
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "status"))
		require.NoError(t, err)
		m := map[string]string{}
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				m[k] = strings.TrimSpace(v)
			}
		}
		all[filepath.Base(d)] = m
	}
	return all
}

// taskNice is the nice value of thread tid of pid (field 19 of its stat).
func taskNice(t *testing.T, pid int, tid string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, tid))
	require.NoError(t, err)
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	n, err := strconv.Atoi(f[19-3])
	require.NoError(t, err)
	return n
}

// limit is the soft and hard value of a /proc/PID/limits line.
func limit(t *testing.T, pid int, name string) (string, string) {
	t.Helper()
	for _, line := range strings.Split(readFile(t, fmt.Sprintf("/proc/%d/limits", pid)), "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok {
			f := strings.Fields(rest)
			return f[0], f[1]
		}
	}
	t.Fatalf("no %q in /proc/%d/limits", name, pid)
	return "", ""
}

// capHex is a capability set as /proc/PID/status shows it.
func capHex(caps ...int) string {
	var set uint64
	for _, c := range caps {
		set |= 1 << c
	}
	return fmt.Sprintf("%016x", set)
}

const capNetBindService, capSysNice = 10, 23

// freeLowPort finds a TCP port below 1024 free on 127.0.0.1 now.
func freeLowPort(t *testing.T) int {
	t.Helper()
	start := 600 + rand.Intn(400)
	for i := 0; i < 400; i++ {
		port := 600 + (start+i)%424
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no free port below 1024")
	return 0
}

// hello connects to addr and returns the probe's greeting line.
func hello(t *testing.T, network, addr string) string {
	t.Helper()
	c, err := net.Dial(network, addr)
	require.NoError(t, err, "connecting to %s %s", network, addr)
	defer c.Close()
	// A socket that listens but that nobody serves queues the connection:
	// bound the read, so that is a failure, not a hang.
	require.NoError(t, c.SetDeadline(time.Now().Add(hang)))
	b := make([]byte, 100)
	n, _ := c.Read(b)
	return string(b[:n])
}

// Everything the drop promises, on every thread the Go runtime started,
// in the daemon and in the foreground (where the process is the same
// single-threaded process before the runtime starts, so it drops too).
func TestDropPrivileges(t *testing.T) {
	t.Parallel()
	needRoot(t)
	for _, daemon := range []bool{true, false} {
		name := map[bool]string{true: "daemon", false: "foreground"}[daemon]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			shared := sharedDir(t)
			logDir := t.TempDir() // 0700 root: nobody cannot enter it
			log := filepath.Join(logDir, "log")
			port := freeLowPort(t)
			env := []string{"CDAEMON_USER=nobody", "CDAEMON_CAPS=net_bind_service",
				"CDAEMON_NO_NEW_PRIVS=on", "CDAEMON_NOFILE=4321", "CDAEMON_CORE=on", "CDAEMON_NICE=7",
				"CDAEMON_OOM_SCORE_ADJ=567", "CDAEMON_LOG=" + log, "CDAEMON_PIDFILE=p.pid",
				"CDAEMON_WAIT=ready", "PROBE_REPORT=" + filepath.Join(shared, "report.json")}
			if !daemon {
				env = append(env, "CDAEMON=off")
			}
			var r *Run
			var rep Report
			if daemon {
				r = LaunchOpts(t, probe, Opts{Env: env, Args: []string{"-runtime", "-ready", "-say", "after the drop",
					"-listen", fmt.Sprintf("127.0.0.1:%d", port)}})
				r.RequireStatus(t, 0)
				r.Report = filepath.Join(shared, "report.json")
				rep = r.ReadReport(t)
			} else {
				stdio, err := os.OpenFile(log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
				require.NoError(t, err)
				defer stdio.Close()
				r = Spawn(t, probe, Opts{Env: env, Stdio: stdio, Args: []string{"-runtime", "-ready", "-say",
					"after the drop", "-listen", fmt.Sprintf("127.0.0.1:%d", port)}})
				r.Report = filepath.Join(shared, "report.json")
				rep = r.ReadReport(t)
				assert.Equal(t, r.Launcher, rep.PID, "in the foreground")
			}
			pid := rep.PID

			// Ids, groups and capabilities of every thread.
			threads := tasks(t, pid)
			require.Greater(t, len(threads), 1, "the Go runtime has started threads")
			want := fmt.Sprintf("%d\t%d\t%d\t%d", nobody, nobody, nobody, nobody)
			for tid, st := range threads {
				assert.Equal(t, want, st["Uid"], "thread %s", tid)
				assert.Equal(t, want, st["Gid"], "thread %s", tid)
				assert.Equal(t, strconv.Itoa(nogroup), st["Groups"], "thread %s", tid)
				for _, set := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
					assert.Equal(t, capHex(capNetBindService), st[set], "thread %s %s", tid, set)
				}
				assert.Equal(t, "1", st["NoNewPrivs"], "thread %s", tid)
				assert.Equal(t, 7, taskNice(t, pid, tid), "thread %s nice", tid)
			}
			assert.Equal(t, "operation not permitted", rep.Setuid0, "setuid(0) in the daemon")

			// Limits and the oom score.
			soft, hard := limit(t, pid, "Max open files")
			assert.Equal(t, []string{"4321", "4321"}, []string{soft, hard})
			soft, hard = limit(t, pid, "Max core file size")
			assert.Equal(t, []string{"unlimited", "unlimited"}, []string{soft, hard})
			assert.Equal(t, "567\n", readFile(t, fmt.Sprintf("/proc/%d/oom_score_adj", pid)))
			dumpable, err := os.Stat(fmt.Sprintf("/proc/%d/status", pid))
			require.NoError(t, err)
			assert.Equal(t, uint32(nobody), dumpable.Sys().(*syscall.Stat_t).Uid,
				"dumpable after the uid change: its /proc files are its own")

			// The port below 1024 the daemon bound itself with its capability.
			assert.Contains(t, hello(t, "tcp", fmt.Sprintf("127.0.0.1:%d", port)), fmt.Sprintf("hello from %d", pid))

			// What Info reports.
			assert.Equal(t, nobody, rep.Info.UID)
			assert.Equal(t, nogroup, rep.Info.GID)
			assert.Equal(t, []int{nogroup}, rep.Info.Groups)
			assert.Equal(t, "nobody", rep.Info.User)
			assert.Equal(t, "nogroup", rep.Info.Group)

			// The pidfile stays root's, 0644, holding the process's pid.
			pf, err := os.Stat(filepath.Join(r.Dir, "p.pid"))
			require.NoError(t, err)
			assert.Equal(t, uint32(0), pf.Sys().(*syscall.Stat_t).Uid)
			assert.Equal(t, os.FileMode(0o644), pf.Mode().Perm())
			assert.Equal(t, fmt.Sprintf("%d\n", pid), readFile(t, filepath.Join(r.Dir, "p.pid")))

			// The log in a directory only root can enter is written after
			// the drop (in the foreground: its stdio, opened by the test).
			eventually(t, "the log line", func() bool {
				b, _ := os.ReadFile(log)
				return strings.Contains(string(b), "stderr: after the drop")
			})
		})
	}
}

// CDAEMON_CORE=off: no core dumps (soft and hard 0); without CDAEMON_CORE=on
// the uid change leaves the daemon undumpable, so its /proc files stay
// root's and no other process of its user can ptrace it.
func TestCoreOff(t *testing.T) {
	t.Parallel()
	needRoot(t)
	shared := sharedDir(t)
	report := filepath.Join(shared, "report.json")
	r := Launch(t, probe, []string{"CDAEMON_USER=nobody", "CDAEMON_CORE=off", "CDAEMON_NOFILE=64",
		"CDAEMON_WAIT=ready", "PROBE_REPORT=" + report}, "-ready")
	r.RequireStatus(t, 0)
	r.Report = report
	rep := r.ReadReport(t)
	soft, hard := limit(t, rep.PID, "Max core file size")
	assert.Equal(t, []string{"0", "0"}, []string{soft, hard})
	soft, hard = limit(t, rep.PID, "Max open files")
	assert.Equal(t, []string{"64", "64"}, []string{soft, hard})
	st, err := os.Stat(fmt.Sprintf("/proc/%d/status", rep.PID))
	require.NoError(t, err)
	assert.Equal(t, uint32(0), st.Sys().(*syscall.Stat_t).Uid, "not dumpable: /proc/PID is root's")
}

// Groups and ids in each combination of CDAEMON_USER and CDAEMON_GROUP.
func TestDropIds(t *testing.T) {
	t.Parallel()
	needRoot(t)
	// What the test process has, and so a launcher it starts: root's
	// capabilities (all, or what a container left) and groups.
	self := procStatus(t, os.Getpid())
	all, groups := self["CapPrm"], self["Groups"]
	ids := func(n int) string { return fmt.Sprintf("%d\t%d\t%d\t%d", n, n, n, n) }
	cases := []struct {
		name             string
		env              []string
		uid, gid         int
		groups, caps     string
		user, group      string
		bounding, setuid string
	}{
		{"user by name", []string{"CDAEMON_USER=nobody"}, nobody, nogroup, "65534", capHex(), "nobody", "nogroup",
			capHex(), "operation not permitted"},
		{"user by uid", []string{"CDAEMON_USER=65534"}, nobody, nogroup, "65534", capHex(), "nobody", "nogroup",
			capHex(), "operation not permitted"},
		{"user and group", []string{"CDAEMON_USER=nobody", "CDAEMON_GROUP=daemon"}, nobody, 1, "1", capHex(),
			"nobody", "daemon", capHex(), "operation not permitted"},
		{"a uid the database does not know", []string{"CDAEMON_USER=12345", "CDAEMON_GROUP=23456"}, 12345, 23456,
			"", capHex(), "", "", capHex(), "operation not permitted"},
		{"group alone", []string{"CDAEMON_GROUP=nogroup"}, 0, nogroup, "", all, "", "nogroup", self["CapBnd"], ""},
		{"caps alone: root keeps its uid", []string{"CDAEMON_CAPS=cap_net_bind_service,SYS_NICE"}, 0, 0, groups,
			capHex(capNetBindService, capSysNice), "", "", capHex(capNetBindService, capSysNice), ""},
		{"caps none", []string{"CDAEMON_CAPS=none"}, 0, 0, groups, capHex(), "", "", capHex(), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			shared := sharedDir(t)
			report := filepath.Join(shared, "report.json")
			r := Launch(t, probe, append(tc.env, "PROBE_REPORT="+report, "CDAEMON_WAIT=ready"), "-runtime", "-ready")
			r.RequireStatus(t, 0)
			r.Report = report
			rep := r.ReadReport(t)
			for tid, st := range tasks(t, rep.PID) {
				assert.Equal(t, ids(tc.uid), st["Uid"], "thread %s", tid)
				assert.Equal(t, ids(tc.gid), st["Gid"], "thread %s", tid)
				assert.Equal(t, tc.groups, st["Groups"], "thread %s", tid)
				for _, set := range []string{"CapPrm", "CapEff"} {
					assert.Equal(t, tc.caps, st[set], "thread %s %s", tid, set)
				}
				assert.Equal(t, tc.bounding, st["CapBnd"], "thread %s", tid)
				assert.Equal(t, "0", st["NoNewPrivs"], "thread %s: only on request", tid)
			}
			assert.Equal(t, tc.setuid, rep.Setuid0)
			assert.Equal(t, tc.uid, rep.Info.UID)
			assert.Equal(t, tc.gid, rep.Info.GID)
			assert.Equal(t, tc.user, rep.Info.User)
			assert.Equal(t, tc.group, rep.Info.Group)
		})
	}
}

// CDAEMON_CHROOT: the root and working directory of the daemon (and of a
// foreground process), with CDAEMON_CHDIR inside it.
func TestChroot(t *testing.T) {
	t.Parallel()
	needRoot(t)
	for _, daemon := range []bool{true, false} {
		name := map[bool]string{true: "daemon", false: "foreground"}[daemon]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			root := sharedDir(t)
			require.NoError(t, os.Mkdir(filepath.Join(root, "sub"), 0o755))
			env := []string{"CDAEMON_CHROOT=" + root, "CDAEMON_CHDIR=/sub", "CDAEMON_USER=nobody",
				"PROBE_REPORT=/report.json", "CDAEMON_WAIT=ready"}
			if !daemon {
				env = append(env, "CDAEMON=off")
			}
			r := Spawn(t, probe, Opts{Env: env, Args: []string{"-ready"}})
			r.Report = filepath.Join(root, "report.json") // /report.json inside the root
			rep := r.ReadReport(t)
			resolved, err := filepath.EvalSymlinks(root)
			require.NoError(t, err)
			got, err := os.Readlink(fmt.Sprintf("/proc/%d/root", rep.PID))
			require.NoError(t, err)
			assert.Equal(t, resolved, got, "/proc/PID/root")
			got, err = os.Readlink(fmt.Sprintf("/proc/%d/cwd", rep.PID))
			require.NoError(t, err)
			assert.Equal(t, filepath.Join(resolved, "sub"), got, "/proc/PID/cwd")
			assert.Equal(t, "/sub", rep.Cwd, "the working directory seen inside")
			assert.Equal(t, root, rep.Info.Root)
			assert.Equal(t, daemon, rep.Info.Daemonized)
			if daemon {
				r.Wait(t)
				r.RequireStatus(t, 0)
			}
		})
	}
}

// Every bad value of the new variables: 64, naming the variable, the value
// and what is allowed; nothing forked or created.
func TestPrivilegeBadValues(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("x", 100000)
	bad := map[string][]string{
		"CDAEMON_USER": {"", "-x", "a b", "a:b", "x$y", "4294967295", "99999999999", "é", "a/b", "\x1b[2J",
			strings.Repeat("u", 256), huge},
		"CDAEMON_GROUP": {"", "-g", "g g", "4294967295", "-1", "g,h", huge},
		"CDAEMON_CAPS": {"", "bogus", "cap_", "cap_bogus", "net_bind_service,", ",net_bind_service",
			"net_bind_service,,chown", "net_bind_service,net_bind_service", "NET BIND", "none,chown", "all",
			"41", huge},
		"CDAEMON_CHROOT":        {"", "/" + strings.Repeat("d", 5000)},
		"CDAEMON_NO_NEW_PRIVS":  {"", "maybe", "2", "on "},
		"CDAEMON_CORE":          {"", "unlimited", "0x1", "yes please"},
		"CDAEMON_NOFILE":        {"", "63", "0", "-1", "1073741761", "99999999999999", "1k", "64 ", "+64", "0x100"},
		"CDAEMON_NICE":          {"", "-21", "20", "+1", "1.5", "--1", "-", "nice"},
		"CDAEMON_OOM_SCORE_ADJ": {"", "-1001", "1001", "+5", "5x", "-"},
		"CDAEMON_LISTEN": {"", "tcp", "tcp:", "tcp:80", "tcp::80", "tcp:localhost:80", "tcp:127.0.0.1",
			"tcp:127.0.0.1:", "tcp:127.0.0.1:65536", "tcp:127.0.0.1:-1", "tcp:127.0.0.1:http", "tcp:1.2.3:80",
			"tcp:[::1]", "tcp:[::1]80", "tcp:[::1:80", "tcp:[1.2.3.4]:80", "tcp:::1:80", "udp:127.0.0.1:53",
			"unix:", "unix", "UNIX:x", "unix:" + strings.Repeat("s", 108), "tcp:127.0.0.1:80,",
			",tcp:127.0.0.1:80", strings.Repeat("unix:a,", 32) + "unix:a", huge},
	}
	type row struct{ name, entry, msg string }
	var rows []row
	for v, values := range bad {
		for _, val := range values {
			rows = append(rows, row{fmt.Sprintf("%s=%.20q", v, val), v + "=" + val, v + "=" + cquote(val)})
		}
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := Launch(t, probe, []string{"CDAEMON_PIDFILE=p.pid", "CDAEMON_LISTEN=unix:s.sock", tc.entry})
			r.RequireStatus(t, cdaemon.ExitUsage)
			assert.True(t, strings.HasPrefix(r.Stderr, "probe: cdaemon: "), "message: %q", r.Stderr)
			requireOneClearLine(t, r.Stderr, tc.msg, " is not valid: want ")
			r.RequireGone(t)
			assert.NoFileExists(t, r.Report, "main ran")
			assert.NoFileExists(t, filepath.Join(r.Dir, "p.pid"), "the pidfile was created")
			assert.NoFileExists(t, filepath.Join(r.Dir, "s.sock"), "the socket was created")
		})
	}
}

// The names of every variable, from config.c's table, in the message for
// one it does not know.
func TestUnknownVariableListsAll(t *testing.T) {
	t.Parallel()
	r := Launch(t, probe, []string{"CDAEMON_USERS=nobody"})
	r.RequireStatus(t, cdaemon.ExitUsage)
	requireOneClearLine(t, r.Stderr, `CDAEMON_USERS is not a cdaemon variable: want CDAEMON, CDAEMON_WAIT, `+
		`CDAEMON_TIMEOUT, CDAEMON_PIDFILE, CDAEMON_LOG, CDAEMON_STDOUT, CDAEMON_STDERR, CDAEMON_STDIN, `+
		`CDAEMON_CHDIR, CDAEMON_UMASK, CDAEMON_KEEP_FDS, CDAEMON_USER, CDAEMON_GROUP, CDAEMON_CAPS, `+
		`CDAEMON_CHROOT, CDAEMON_NO_NEW_PRIVS, CDAEMON_NOFILE, CDAEMON_CORE, CDAEMON_NICE, `+
		`CDAEMON_OOM_SCORE_ADJ, CDAEMON_LISTEN, CDAEMON_REPLACE or CDAEMON_REPLACE_SIGNAL`)
}

// Refusals before anything is forked: an unknown user or group (67), a
// setting the starting user may not make (77, the launcher run as
// nobody), a missing chroot (73). The status, one line naming the
// variable, and no process, pidfile or socket file left.
func TestPrivilegeRefusals(t *testing.T) {
	t.Parallel()
	needRoot(t)
	cases := []struct {
		name   string
		env    []string
		nobody bool   // run the launcher as nobody
		shell  string // run first in sh
		status int
		msg    []string
	}{
		{"unknown user", []string{"CDAEMON_USER=no_such_user_x"}, false, "", cdaemon.ExitNoUser,
			[]string{`CDAEMON_USER="no_such_user_x": no such user`}},
		{"unknown group", []string{"CDAEMON_USER=nobody", "CDAEMON_GROUP=no_such_group_x"}, false, "", cdaemon.ExitNoUser,
			[]string{`CDAEMON_GROUP="no_such_group_x": no such group`}},
		{"unknown uid without a group", []string{"CDAEMON_USER=12345"}, false, "", cdaemon.ExitNoUser,
			[]string{`CDAEMON_USER="12345": uid 12345 is not in the user database`, "set CDAEMON_GROUP"}},
		{"missing chroot", []string{"CDAEMON_CHROOT=no/such/dir"}, false, "", cdaemon.ExitCantCreate,
			[]string{`CDAEMON_CHROOT: cannot open "no/such/dir": No such file or directory`}},
		{"chdir missing inside the chroot", []string{"CDAEMON_CHROOT=.", "CDAEMON_CHDIR=/no/such"}, false, "", cdaemon.ExitCantCreate,
			[]string{`CDAEMON_CHDIR: cannot change to "/no/such" inside CDAEMON_CHROOT "."`}},
		{"more files than fs.nr_open", []string{"CDAEMON_NOFILE=1073741760"}, false, "", cdaemon.ExitNoPerm,
			[]string{`CDAEMON_NOFILE="1073741760": cannot set it: Operation not permitted`}},
		{"user as nobody", []string{"CDAEMON_USER=root"}, true, "", cdaemon.ExitNoPerm,
			[]string{`CDAEMON_USER="root": changing the user needs root (CAP_SETUID)`, "(uid 65534)"}},
		{"group as nobody", []string{"CDAEMON_GROUP=root"}, true, "", cdaemon.ExitNoPerm,
			[]string{`CDAEMON_GROUP="root": changing the group needs root (CAP_SETGID)`}},
		{"caps as nobody", []string{"CDAEMON_CAPS=net_bind_service"}, true, "", cdaemon.ExitNoPerm,
			[]string{`CDAEMON_CAPS="net_bind_service": keeping cap_net_bind_service needs it in the permitted set`}},
		{"no caps as nobody", []string{"CDAEMON_CAPS=none"}, true, "", cdaemon.ExitNoPerm,
			[]string{`CDAEMON_CAPS="none": dropping the other capabilities from the bounding set needs root`}},
		{"chroot as nobody", []string{"CDAEMON_CHROOT=."}, true, "", cdaemon.ExitNoPerm,
			[]string{`CDAEMON_CHROOT=".": chroot needs root (CAP_SYS_CHROOT)`}},
		{"nice as nobody", []string{"CDAEMON_NICE=-5"}, true, "", cdaemon.ExitNoPerm,
			[]string{`CDAEMON_NICE="-5": cannot set it: Permission denied`}},
		{"oom score as nobody", []string{"CDAEMON_OOM_SCORE_ADJ=-500"}, true, "", cdaemon.ExitNoPerm,
			[]string{`CDAEMON_OOM_SCORE_ADJ="-500": cannot set it: Permission denied`}},
		{"nofile above the hard limit as nobody", []string{"CDAEMON_NOFILE=4096"}, true, "ulimit -n 1024", cdaemon.ExitNoPerm,
			[]string{`CDAEMON_NOFILE="4096": cannot set it: Operation not permitted`}},
		{"core above the hard limit as nobody", []string{"CDAEMON_CORE=on"}, true, "ulimit -c 0", cdaemon.ExitNoPerm,
			[]string{`CDAEMON_CORE="on": cannot make core dumps unlimited: Operation not permitted`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := sharedDir(t)
			env := append([]string{"CDAEMON_PIDFILE=p.pid", "CDAEMON_LISTEN=unix:s.sock"}, tc.env...)
			o := Opts{Dir: dir, Env: env, Shell: tc.shell}
			if tc.nobody {
				o.Attr = asNobody()
			}
			r := LaunchOpts(t, probe, o)
			r.RequireStatus(t, tc.status)
			assert.True(t, strings.HasPrefix(r.Stderr, "probe: cdaemon: "), "message: %q", r.Stderr)
			requireOneClearLine(t, r.Stderr, tc.msg...)
			r.RequireGone(t)
			assert.NoFileExists(t, filepath.Join(dir, "report.json"), "main ran")
			assert.NoFileExists(t, filepath.Join(dir, "p.pid"), "the pidfile was left")
			assert.NoFileExists(t, filepath.Join(dir, "s.sock"), "the socket file was left")
		})
	}
}

// A static glibc or a musl build cannot read the user database: numbers
// work, a name is refused with a message saying why.
func TestStaticBuildIds(t *testing.T) {
	t.Parallel()
	slow(t) // two static builds
	needRoot(t)
	for _, tc := range []struct {
		name string
		env  []string
		tool [2]string
	}{
		{"static-glibc", nil, [2]string{}},
		{"static-musl", []string{"CC=musl-gcc"}, [2]string{"musl-gcc", "musl-tools"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.tool[0] != "" {
				needTool(t, tc.tool[0], tc.tool[1])
			}
			static := goBuildVariant(t, "probe-"+tc.name, "./testdata/probe", tc.env, staticLink)
			r := Launch(t, static, []string{"CDAEMON_USER=nobody"})
			r.RequireStatus(t, cdaemon.ExitUsage)
			requireOneClearLine(t, r.Stderr, `CDAEMON_USER="nobody" is a name, and this program cannot read `+
				`the user database: it is linked statically or with musl`)
			r.RequireGone(t)

			r = Launch(t, static, []string{"CDAEMON=off", "CDAEMON_USER=65534", "CDAEMON_GROUP=nogroup"})
			r.RequireStatus(t, cdaemon.ExitUsage)
			requireOneClearLine(t, r.Stderr, `CDAEMON_GROUP="nogroup" is a name`)

			r = Launch(t, static, []string{"CDAEMON_USER=65534"})
			r.RequireStatus(t, cdaemon.ExitNoUser)
			requireOneClearLine(t, r.Stderr, `uid 65534 is not in the user database (which this static or `+
				`musl build cannot read), so it has no primary group: set CDAEMON_GROUP too`)

			shared := sharedDir(t)
			report := filepath.Join(shared, "report.json")
			r = Launch(t, static, []string{"CDAEMON_USER=65534", "CDAEMON_GROUP=65534", "PROBE_REPORT=" + report,
				"CDAEMON_WAIT=ready"}, "-ready")
			r.RequireStatus(t, 0)
			r.Report = report
			rep := r.ReadReport(t)
			for tid, st := range tasks(t, rep.PID) {
				assert.Equal(t, "65534\t65534\t65534\t65534", st["Uid"], "thread %s", tid)
				assert.Equal(t, "65534\t65534\t65534\t65534", st["Gid"], "thread %s", tid)
				assert.Equal(t, "", st["Groups"], "thread %s: no groups without the database", tid)
			}
			assert.Empty(t, rep.Info.User)
		})
	}
}

// README's "Starting as root", run as written there: root's launcher binds
// a port below 1024 and root's shell opens the key (0600, in a directory
// only root can enter) at descriptor 4; the daemon serves HTTPS as nobody.
func TestStartingAsRootExample(t *testing.T) {
	t.Parallel()
	needRoot(t)
	asroot := program(t, "asroot", "./testdata/asroot", nil)
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	site := filepath.Join(t.TempDir(), "site.pem") // the directory is 0700 root
	require.NoError(t, os.WriteFile(site, append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})...), 0o600))

	port := freeLowPort(t)
	r := LaunchOpts(t, asroot, Opts{Shell: "exec 4<" + site, Env: []string{"CDAEMON_USER=nobody",
		fmt.Sprintf("CDAEMON_LISTEN=tcp:127.0.0.1:%d", port), "CDAEMON_KEEP_FDS=4", "CDAEMON_WAIT=ready",
		"CDAEMON_NO_NEW_PRIVS=on", "CDAEMON_PIDFILE=site.pid"}})
	r.RequireStatus(t, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, filepath.Join(r.Dir, "site.pid"))))
	require.NoError(t, err)
	r.Track(pid)
	assert.Equal(t, "65534\t65534\t65534\t65534", procStatus(t, pid)["Uid"])

	pool := x509.NewCertPool()
	pool.AddCert(must(x509.ParseCertificate(der)))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/", port))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("hello from pid %d, uid %d\n", pid, nobody), string(body))
	client.CloseIdleConnections()
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// A daemon that dropped its privileges keeps its lock through a read-only
// descriptor on the lock file (root's, 0600), and none on the pidfile: it
// cannot rewrite the file its root launcher made (and that root's tools,
// `kill $(cat pidfile)`, systemd's PIDFile=, start-stop-daemon, trust) to
// aim them at another process. In the daemon and in the foreground.
func TestPidfileReadOnlyAfterDrop(t *testing.T) {
	t.Parallel()
	needRoot(t)
	for _, daemon := range []bool{true, false} {
		name := map[bool]string{true: "daemon", false: "foreground"}[daemon]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			shared := sharedDir(t)
			report := filepath.Join(shared, "report.json")
			env := []string{"CDAEMON_USER=nobody", "CDAEMON_PIDFILE=p.pid", "CDAEMON_WAIT=ready",
				"PROBE_REPORT=" + report}
			if !daemon {
				env = append(env, "CDAEMON=off")
			}
			r := Spawn(t, probe, Opts{Env: env, Args: []string{"-ready"}})
			r.Report = report
			rep := r.ReadReport(t)
			pidfile := filepath.Join(r.Dir, "p.pid")
			resolved, err := filepath.EvalSymlinks(pidfile)
			require.NoError(t, err)
			var held []int
			for n, fd := range procFDs(t, rep.PID) {
				assert.NotEqual(t, resolved, fd.Target, "fd %d on the pidfile", n)
				if fd.Target != resolved+".lock" {
					continue
				}
				held = append(held, n)
				assert.Equal(t, os.O_RDONLY, fd.Flags&syscall.O_ACCMODE,
					"fd %d on the lock file must be read-only (flags %#o)", n, fd.Flags)
				info := readFile(t, fmt.Sprintf("/proc/%d/fdinfo/%d", rep.PID, n))
				assert.Contains(t, info, "FLOCK", "fd %d holds the lock", n)
			}
			assert.Len(t, held, 1, "one descriptor on the lock file")
			assert.Equal(t, fmt.Sprintf("%d\n", rep.PID), readFile(t, pidfile))
			lock, err := os.Stat(pidfile + ".lock")
			require.NoError(t, err)
			assert.Equal(t, uint32(0), lock.Sys().(*syscall.Stat_t).Uid, "the lock file is root's")
			assert.Equal(t, os.FileMode(0o600), lock.Mode().Perm(), "only root can open the lock file")
		})
	}
}
