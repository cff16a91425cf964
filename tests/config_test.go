package tests

// Configuration: every bad CDAEMON_* value stops the launcher with 64 and
// a message naming the variable and the value, before anything is forked
// or created; a file that cannot be opened gives 73 naming the path; and
// CDAEMON=auto/on/off decides where the program runs.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"

	"github.com/cdaemon/cdaemon"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cquote is a value as cdaemon's messages quote it: control bytes (C1
// controls included), bytes that are not UTF-8, quotes and backslashes as
// \xNN; a long value is cut, so only its start is given (without the
// closing quote).
func cquote(v string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v); {
		if i >= 100 {
			return b.String()
		}
		r, n := utf8.DecodeRuneInString(v[i:])
		switch {
		case r == utf8.RuneError && n <= 1, r < 0x20, r == 0x7f, r == '"', r == '\\':
			fmt.Fprintf(&b, "\\x%02x", v[i])
			i++
			continue
		case r >= 0x80 && r <= 0x9f:
			fmt.Fprintf(&b, "\\x%02x\\x%02x", v[i], v[i+1])
		default:
			b.WriteString(v[i : i+n])
		}
		i += n
	}
	return b.String() + `"`
}

func TestBadValues(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 4096) // PATH_MAX with its NUL: one too many
	huge := strings.Repeat("x", 100000)
	bad := map[string][]string{
		"CDAEMON": {"", "maybe", "2", "-1", "onn", " on", "on ", "on\n", "o\nn", "\x01", "auto\x7f", huge},
		"CDAEMON_WAIT": {"", "later", "readyy", "ready ", "START ", "ready\n", "a\x1bb", `"ready"`,
			"%s%n%n%n", "\xff\xfe", huge},
		"CDAEMON_TIMEOUT": {"", "abc", "10", "0", "0s", "0ms", "0.1ms", "0.5ms", "25h", "24h1ms", "-1s", "+1s",
			"1x", "1s ", " 1s", "1 s", "1s1", "1e3s", "1e400s", "0x10s", "nan", "inf", "infs", "1..5s", "s",
			".5s", "1us", "1ns", "99999999999999999999h", huge},
		"CDAEMON_UMASK": {"", "8", "0778", "1000", "7777", "00000", "-1", "+1", "0x1f", "abc", "u=rwx",
			"0 22", " 022", "022 ", huge},
		"CDAEMON_REPLACE":        {"", "maybe", "onn", "on ", "2"},
		"CDAEMON_REPLACE_SIGNAL": {"", "TERMINATE", "9", "15", "sigterm", "SIG", "SIGSTOP", "TERM ", "-TERM"},
		"CDAEMON_KEEP_FDS": {"", "0", "1", "2", "1,3", "a", "3,3", "3,", ",3", "3,,4", "99999999999", "3;4",
			"3 4", " 3", "-3", "+3", "0x3", strings.Repeat("3,", 70) + "3", huge},
	}
	for _, v := range pathVars {
		bad[v] = []string{"", long, "/" + strings.Repeat("d", 5000)}
	}
	type row struct {
		name  string
		env   []string // the bad entry last
		bin   string   // default the probe
		msg   []string // in the message besides the program's name
		other string   // a variable also set, which must not be acted on
	}
	var rows []row
	for v, values := range bad {
		for _, val := range values {
			rows = append(rows, row{name: fmt.Sprintf("%s=%.20q", v, val), env: []string{v + "=" + val},
				msg: []string{v + "=" + cquote(val), " is not valid: want "}})
		}
	}
	rows = append(rows,
		row{name: "no equals sign", env: []string{"CDAEMON_WAIT"},
			msg: []string{`CDAEMON_WAIT="" is not valid`}},
		row{name: "kept fd not open", env: []string{"CDAEMON_KEEP_FDS=3,4"},
			msg: []string{`CDAEMON_KEEP_FDS="3,4" is not valid: fd 3 is not open`}},
		row{name: "checked when CDAEMON=off", env: []string{"CDAEMON=off", "CDAEMON_WAIT=later"},
			msg: []string{`CDAEMON_WAIT="later" is not valid`}},
	)
	for _, name := range []string{"CDAEMON_FOO", "CDAEMON_", "CDAEMON_wait", "CDAEMON_LOGFILE", "CDAEMON_PIDFIL"} {
		rows = append(rows, row{name: "unknown " + name, env: []string{name + "=1"},
			msg: []string{name + " is not a cdaemon variable: want CDAEMON, CDAEMON_WAIT,"}})
	}
	// A terminal escape in a name is quoted, never sent raw to the terminal.
	rows = append(rows, row{name: "unknown name with an escape", env: []string{"CDAEMON_\x1b[2J=x"},
		msg: []string{`"CDAEMON_\x1b[2J" is not a cdaemon variable`}})
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := tc.env
			if !strings.HasPrefix(tc.env[len(tc.env)-1], "CDAEMON_PIDFILE=") {
				env = append([]string{"CDAEMON_PIDFILE=p.pid"}, env...) // must not be created
			}
			r := Launch(t, probe, env)
			r.RequireStatus(t, cdaemon.ExitUsage)
			assert.True(t, strings.HasPrefix(r.Stderr, "probe: cdaemon: "), "message: %q", r.Stderr)
			requireOneClearLine(t, r.Stderr, tc.msg...)
			r.RequireGone(t)
			assert.NoFileExists(t, r.Report, "main ran")
			assert.NoFileExists(t, filepath.Join(r.Dir, "p.pid"), "the pidfile was created")
		})
	}
}

// Valid spellings are accepted and mean what they say: one table for
// every variable, the privilege settings included.
func TestGoodValues(t *testing.T) {
	t.Parallel()
	cases := []struct {
		entry      string // the setting, then any it needs besides, space-separated
		mode, wait string
		root       bool // a privilege setting only root may make
	}{
		{"CDAEMON=1", "on", "start", false}, {"CDAEMON=true", "on", "start", false}, {"CDAEMON=Yes", "on", "start", false},
		{"CDAEMON=ON", "on", "start", false}, {"CDAEMON=auto", "auto", "start", false},
		{"CDAEMON=0", "off", "start", false}, {"CDAEMON=false", "off", "start", false}, {"CDAEMON=NO", "off", "start", false},
		{"CDAEMON_WAIT=NONE", "auto", "none", false}, {"CDAEMON_WAIT=Ready", "auto", "ready", false},
		{"CDAEMON_TIMEOUT=1m30s", "auto", "start", false}, {"CDAEMON_TIMEOUT=1.5h", "auto", "start", false},
		{"CDAEMON_TIMEOUT=1.s", "auto", "start", false}, {"CDAEMON_TIMEOUT=24h", "auto", "start", false},
		{"CDAEMON_UMASK=0", "auto", "start", false}, {"CDAEMON_UMASK=777", "auto", "start", false},
		// Replacement: on needs a pidfile; with no daemon holding it the
		// start is an ordinary one. The signal is only used by a replacement.
		{"CDAEMON_REPLACE=on CDAEMON_PIDFILE=p.pid", "auto", "start", false},
		{"CDAEMON_REPLACE=Yes CDAEMON_PIDFILE=p.pid CDAEMON_WAIT=ready", "auto", "ready", false},
		{"CDAEMON_REPLACE=1 CDAEMON=on CDAEMON_PIDFILE=p.pid", "on", "start", false},
		{"CDAEMON_REPLACE=off", "auto", "start", false}, {"CDAEMON_REPLACE=FALSE", "auto", "start", false},
		{"CDAEMON_REPLACE=0 CDAEMON_WAIT=none", "auto", "none", false},
		{"CDAEMON_REPLACE_SIGNAL=TERM", "auto", "start", false}, {"CDAEMON_REPLACE_SIGNAL=SIGINT", "auto", "start", false},
		{"CDAEMON_REPLACE_SIGNAL=QUIT", "auto", "start", false}, {"CDAEMON_REPLACE_SIGNAL=SIGHUP", "auto", "start", false},
		{"CDAEMON_REPLACE_SIGNAL=USR1", "auto", "start", false}, {"CDAEMON_REPLACE_SIGNAL=SIGUSR2", "auto", "start", false},
		{"CDAEMON_REPLACE_SIGNAL=WINCH", "auto", "start", false},
		{"CDAEMON_REPLACE_SIGNAL=SIGKILL CDAEMON_REPLACE=on CDAEMON_PIDFILE=p.pid", "auto", "start", false},
		// Privileges, limits and scheduling (as root; the drop to root is a no-op).
		{"CDAEMON_NO_NEW_PRIVS=off", "auto", "start", true}, {"CDAEMON_NO_NEW_PRIVS=YES", "auto", "start", true},
		{"CDAEMON_CORE=0", "auto", "start", true}, {"CDAEMON_NICE=-20", "auto", "start", true},
		{"CDAEMON_NICE=19", "auto", "start", true}, {"CDAEMON_NICE=0", "auto", "start", true},
		{"CDAEMON_OOM_SCORE_ADJ=1000", "auto", "start", true}, {"CDAEMON_OOM_SCORE_ADJ=0", "auto", "start", true},
		{"CDAEMON_NOFILE=64", "auto", "start", true}, {"CDAEMON_CAPS=CAP_CHOWN,kill,Sys_Admin", "auto", "start", true},
		{"CDAEMON_USER=root", "auto", "start", true}, {"CDAEMON_GROUP=0", "auto", "start", true},
	}
	for _, tc := range cases {
		t.Run(tc.entry, func(t *testing.T) {
			t.Parallel()
			if tc.root {
				needRoot(t)
			}
			r := Launch(t, probe, strings.Fields(tc.entry), "-ready", "-exit-after-ready")
			r.RequireStatus(t, 0)
			rep := r.ReadReport(t)
			assert.Equal(t, tc.mode, rep.Info.Mode)
			assert.Equal(t, tc.wait, rep.Info.Wait)
			assert.Equal(t, tc.mode != "off", rep.Info.Daemonized)
			assert.Zero(t, rep.Info.ReplacedPID, "nothing to replace: an ordinary start")
		})
	}
}

// A stdio target, the directory or the pidfile that cannot be opened:
// 73, the variable, the path and why; nothing forked, no pidfile made.
func TestUnopenableFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir() // the launcher's cwd for every row
	require.NoError(t, os.Mkdir(filepath.Join(dir, "adir"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "afile"), nil, 0o644))
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "afifo"), 0o644))
	toolong := strings.Repeat("n", 300)
	cases := []struct{ variable, path, why string }{
		{"CDAEMON_LOG", "nodir/log", "No such file or directory"},
		{"CDAEMON_LOG", "adir", "Is a directory"},
		{"CDAEMON_LOG", toolong, "File name too long"},
		{"CDAEMON_STDOUT", "afile/out", "Not a directory"},
		{"CDAEMON_STDERR", "nodir/err", "No such file or directory"},
		{"CDAEMON_STDIN", "missing", "No such file or directory"},
		{"CDAEMON_STDIN", "adir", "Is a directory"},
		{"CDAEMON_CHDIR", "missing", "No such file or directory"},
		{"CDAEMON_CHDIR", "afile", "Not a directory"},
		{"CDAEMON_PIDFILE", "nodir/p.pid", "No such file or directory"},
		{"CDAEMON_PIDFILE", "adir", "Is a directory"},
		{"CDAEMON_PIDFILE", "afifo", "not a regular file"},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s=%.20s", tc.variable, tc.path), func(t *testing.T) {
			t.Parallel()
			env := []string{tc.variable + "=" + tc.path}
			pidfile := filepath.Join(t.TempDir(), "p.pid")
			if tc.variable != "CDAEMON_PIDFILE" {
				env = append(env, "CDAEMON_PIDFILE="+pidfile)
			}
			r := LaunchOpts(t, probe, Opts{Dir: dir, Env: env})
			r.RequireStatus(t, cdaemon.ExitCantCreate)
			for _, m := range []string{"probe: cdaemon: ", tc.variable, cquote(tc.path), tc.why} {
				assert.Contains(t, r.Stderr, m)
			}
			r.RequireGone(t)
			assert.NoFileExists(t, r.Report)
			assert.NoFileExists(t, pidfile)
		})
	}
}

// probeNamed is the probe under another name (a go test binary is called
// pkg.test): a symlink, since writing a copy could make exec fail with
// ETXTBSY while a parallel test forks.
func probeNamed(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.Symlink(probe, path))
	return path
}

// pidNamespace starts the program as PID 1 of a new PID namespace (in a
// user namespace when not root), or skips where the kernel refuses.
func pidNamespace(t *testing.T) *syscall.SysProcAttr {
	t.Helper()
	attr := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	if os.Geteuid() != 0 {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	}
	c := exec.Command("/bin/true")
	c.SysProcAttr = attr
	if err := c.Run(); err != nil {
		t.Skipf("cannot make a PID namespace here: %v", err)
	}
	return attr
}

// CDAEMON=auto daemonizes except for go test binaries and programs that
// PID 1 starts (or that are PID 1); on forces it; off never does. The
// reason is reported by Info.
func TestModes(t *testing.T) {
	t.Parallel()
	shell := func(args ...string) []string { // run the probe as a child of sh, not exec'd
		return append([]string{"-c", `"$0" "$@"; exit $?`, probe}, args...)
	}
	cases := []struct {
		name   string
		bin    string // "" the probe, "test" a copy named probe.test, "sh" the probe under sh
		env    []string
		args   []string
		pidns  bool
		reason string // "" if it must daemonize
	}{
		{"auto", "", nil, nil, false, ""},
		{"on", "", []string{"CDAEMON=on"}, nil, false, ""},
		{"off", "", []string{"CDAEMON=off"}, nil, false, "CDAEMON=off"},
		{"auto in a binary named *.test", "test", nil, nil, false, "a go test binary"},
		{"auto with -test. flags", "", nil, []string{"--", "-test.run=TestX"}, false, "a go test binary"},
		{"on in a binary named *.test", "test", []string{"CDAEMON=on"}, nil, false, ""},
		{"auto started by PID 1", "sh", nil, nil, true, "started by PID 1"},
		{"auto as PID 1", "", nil, nil, true, "running as PID 1"},
		{"off as PID 1", "", []string{"CDAEMON=off"}, nil, true, "CDAEMON=off"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := Opts{Env: tc.env, Args: append([]string{"-exit", "0"}, tc.args...)}
			bin := probe
			switch tc.bin {
			case "test":
				bin = probeNamed(t, "probe.test")
			case "sh":
				bin, o.Args = "/bin/sh", shell(o.Args...)
			}
			if tc.pidns {
				o.Attr = pidNamespace(t)
			}
			r := LaunchOpts(t, bin, o)
			r.RequireStatus(t, 0)
			rep := r.ReadReport(t)
			assert.Equal(t, tc.reason == "", rep.Info.Daemonized)
			if tc.reason == "" {
				assert.Empty(t, rep.Info.Reason)
				assert.NotEqual(t, rep.Info.LauncherPID, rep.PID)
				return
			}
			assert.Contains(t, rep.Info.Reason, tc.reason)
			assert.Equal(t, rep.Info.LauncherPID, rep.PID, "ran in the foreground")
			if !tc.pidns && tc.bin != "sh" {
				assert.Equal(t, r.Launcher, rep.PID)
			}
			for _, kv := range tc.env { // the foreground is left untouched
				assert.Contains(t, rep.Env, kv)
			}
		})
	}
}
