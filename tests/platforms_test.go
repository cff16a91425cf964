package tests

// Where the constructor does not exist: a program built with
// CGO_ENABLED=0, which takes the same path as every system other than
// Linux (nocgo.go). It builds, runs in the foreground, keeps the API, and
// refuses with 69 whatever only the constructor could do; its pidfile
// control still works.

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/cdaemon/cdaemon"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// noCgoProbe is the probe built with CGO_ENABLED=0.
func noCgoProbe(t *testing.T) string {
	return program(t, "probe-nocgo", "./testdata/probe", []string{"CGO_ENABLED=0"})
}

// noCgoCommand is the cdaemon command built with CGO_ENABLED=0.
func noCgoCommand(t *testing.T) string {
	return program(t, "cdaemon-nocgo", "github.com/cdaemon/cdaemon/cdaemon", []string{"CGO_ENABLED=0"})
}

// Without cgo the probe builds, and its binary has no constructor: no C
// symbol of cdaemon's is in it.
func TestBuildWithoutCgo(t *testing.T) {
	t.Parallel()
	bin := noCgoProbe(t)
	b, err := os.ReadFile(bin)
	require.NoError(t, err)
	assert.NotContains(t, string(b), "cdaemon_constructor", "the C constructor is in a CGO_ENABLED=0 build")
}

// auto runs the program in the foreground, with the whole API working;
// State.Reason names cgo, and so does one line on stderr (a start that
// never returns would otherwise puzzle whoever expected a daemon).
// CDAEMON=off says the foreground is meant: no line.
func TestNoCgoRunsInForeground(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, env, mode, reason string
		note                    bool
	}{
		{"auto", "", "auto", "built without cgo (CGO_ENABLED=0)", true},
		{"auto spelled out", "CDAEMON=AUTO", "auto", "built without cgo (CGO_ENABLED=0)", true},
		{"off", "CDAEMON=no", "off", "CDAEMON=off", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var env []string
			if c.env != "" {
				env = []string{c.env}
			}
			r := Launch(t, noCgoProbe(t), env, "-ready", "-exit-after-ready")
			r.RequireStatus(t, 0)
			rep := r.ReadReport(t)
			assert.Equal(t, r.Launcher, rep.PID, "it ran in the process started")
			assert.False(t, rep.Info.Daemonized)
			assert.Equal(t, c.mode, rep.Info.Mode)
			assert.Contains(t, rep.Info.Reason, c.reason)
			assert.Equal(t, r.Launcher, rep.Info.LauncherPID)
			assert.Equal(t, r.Dir, rep.Info.Dir)
			assert.Equal(t, os.Getuid(), rep.Info.UID)
			assert.Empty(t, rep.Info.Pidfile)
			assert.Empty(t, rep.Listeners)
			if c.note {
				assert.Equal(t, "probe-nocgo: cdaemon: this program runs in the foreground: it was built "+
					"without cgo (CGO_ENABLED=0), so cdaemon's C constructor is not in it; set CDAEMON=off "+
					"to say the foreground is meant\n", r.Stderr)
			} else {
				assert.Empty(t, r.Stderr)
			}
			r.RequireGone(t)
		})
	}
}

// What only the constructor does stops the program in package init with
// 69 (ExitUnavailable), naming the variables and cgo: main never runs,
// nothing is created. A bad CDAEMON value or name is 64, as with the
// constructor; a run the arguments decline (help) takes nothing.
func TestNoCgoRefusesWhatNeedsTheConstructor(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		env    []string
		args   []string
		status int
		msg    string
	}{
		{"on", []string{"CDAEMON=on"}, nil, cdaemon.ExitUnavailable,
			"probe-nocgo: cdaemon: CDAEMON=on asks for a daemon, but this program was built without cgo " +
				"(CGO_ENABLED=0), so cdaemon's C constructor is not in it; build it with CGO_ENABLED=1 and " +
				"a C compiler; unset CDAEMON to run in the foreground\n"},
		{"on with help", []string{"CDAEMON=1"}, []string{"-h"}, cdaemon.ExitUnavailable, "CDAEMON=1 asks for a daemon"},
		{"a pidfile", []string{"CDAEMON_PIDFILE=p.pid"}, nil, cdaemon.ExitUnavailable,
			"probe-nocgo: cdaemon: CDAEMON_PIDFILE needs the constructor, but this program was built " +
				"without cgo (CGO_ENABLED=0), so cdaemon's C constructor is not in it; build it with " +
				"CGO_ENABLED=1 and a C compiler; unset it to run in the foreground\n"},
		{"settings in the foreground", []string{"CDAEMON=off", "CDAEMON_USER=nobody", "CDAEMON_LOG=p.log"}, nil,
			cdaemon.ExitUnavailable, "cdaemon: CDAEMON_LOG and CDAEMON_USER need the constructor"},
		{"a wait point", []string{"CDAEMON_WAIT=ready"}, nil, cdaemon.ExitUnavailable, "CDAEMON_WAIT needs"},
		{"listeners", []string{"CDAEMON_LISTEN=tcp:127.0.0.1:0"}, nil, cdaemon.ExitUnavailable, "CDAEMON_LISTEN needs"},
		{"bad mode", []string{"CDAEMON=maybe"}, nil, cdaemon.ExitUsage,
			"probe-nocgo: cdaemon: CDAEMON=\"maybe\" is not valid: want auto, on or off (or 1/0, true/false, yes/no)\n"},
		{"unknown name", []string{"CDAEMON_PIDFLE=p.pid"}, nil, cdaemon.ExitUsage,
			"cdaemon: CDAEMON_PIDFLE is not a cdaemon variable: want CDAEMON, CDAEMON_WAIT,"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := Launch(t, noCgoProbe(t), c.env, c.args...)
			r.RequireStatus(t, c.status)
			assert.Contains(t, r.Stderr, c.msg)
			assert.Equal(t, 1, strings.Count(r.Stderr, "\n"), "one line: %q", r.Stderr)
			assert.NoFileExists(t, r.Report, "main ran")
			ents, err := os.ReadDir(r.Dir)
			require.NoError(t, err)
			assert.Empty(t, ents, "files were created")
			r.RequireGone(t)
		})
	}

	// Asked for help, the program is not the daemon: the settings are not
	// its business, as with the constructor.
	r := Launch(t, noCgoProbe(t), []string{"CDAEMON_PIDFILE=p.pid"}, "-help")
	r.RequireStatus(t, 0)
	assert.Contains(t, r.Stderr, "Usage of")
	assert.NotContains(t, r.Stderr, "cdaemon:")
	assert.NoFileExists(t, filepath.Join(r.Dir, "p.pid"))
}

// The cdaemon command built without cgo finds, reports and stops a
// daemon by its pidfile as the cgo build does: status and stop are Go.
func TestNoCgoCommandStatusAndStop(t *testing.T) {
	t.Parallel()
	cmd := noCgoCommand(t)
	r, rep, pidfile := startCtl(t, nil)
	c := Launch(t, cmd, []string{"CDAEMON=off"}, "status", pidfile)
	c.RequireStatus(t, 0)
	assert.Equal(t, pidfile+": running, pid "+strconv.Itoa(rep.PID)+"\n", c.Stdout)
	assert.Empty(t, c.Stderr)
	c.RequireGone(t)

	c = Launch(t, cmd, []string{"CDAEMON=off"}, "stop", pidfile)
	c.RequireStatus(t, 0)
	assert.Equal(t, pidfile+": stopped pid "+strconv.Itoa(rep.PID)+"\n", c.Stdout)
	ws := r.WaitExit(t, rep.PID)
	assert.True(t, ws.Exited() || ws.Signal() == syscall.SIGTERM, "%v", ws)
	assert.NoFileExists(t, pidfile)

	c = Launch(t, cmd, []string{"CDAEMON=off"}, "status", pidfile)
	c.RequireStatus(t, 3)
	assert.Equal(t, pidfile+": not running (no pidfile)\n", c.Stdout)

	// Plain auto prints the line naming cgo, and still does its work.
	c = Launch(t, cmd, nil, "status", pidfile)
	c.RequireStatus(t, 3)
	assert.Contains(t, c.Stderr, "cdaemon-nocgo: cdaemon: this program runs in the foreground: it was built without cgo")
}

// Every variable of the constructor's table (cdaemon.c) is one the
// fallback knows: set together, each is named as needing the constructor,
// none refused as unknown.
func TestNoCgoKnowsEveryVariable(t *testing.T) {
	t.Parallel()
	var src []byte
	files, _ := filepath.Glob("../*.c")
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		src = append(src, b...)
	}
	var env, names []string
	for _, m := range regexp.MustCompile(`\{ "(CDAEMON_[A-Z_]+)", parse_`).FindAllStringSubmatch(string(src), -1) {
		env = append(env, m[1]+"=x")
		names = append(names, m[1])
	}
	require.Greater(t, len(names), 15, "the vars table was not found in the C files")
	slices.Sort(names)
	r := Launch(t, noCgoProbe(t), env)
	r.RequireStatus(t, cdaemon.ExitUnavailable)
	assert.Contains(t, r.Stderr, strings.Join(names[:len(names)-1], ", ")+" and "+names[len(names)-1]+" need the constructor")
}

// The command's help says when its build cannot daemonize the heartbeat
// (its hook is cgo, hooks_nocgo.go stands in for it).
func TestNoCgoCommandSaysHeartbeatStaysInForeground(t *testing.T) {
	t.Parallel()
	c := Launch(t, noCgoCommand(t), nil, "-h")
	c.RequireStatus(t, 0)
	assert.Contains(t, c.Stdout, "This build has no cgo: heartbeat runs in the foreground.")
	assert.Empty(t, c.Stderr, "help is declined by the arguments: no line naming cgo")
	c = Launch(t, heartbeat(t), nil, "-h")
	c.RequireStatus(t, 0)
	assert.NotContains(t, c.Stdout, "no cgo")
}

// A Linux target other than the build machine's: cross-compiled with
// Debian's cross compilers and run under qemu-user, or musl, run natively.
type target struct {
	name, cc, qemu, sysroot string
	env                     []string // GOARCH, GOARM
	ldflags                 string
}

var targets = []target{
	{name: "arm64", cc: "aarch64-linux-gnu-gcc", qemu: "qemu-aarch64", sysroot: "/usr/aarch64-linux-gnu",
		env: []string{"GOARCH=arm64"}},
	{name: "armhf", cc: "arm-linux-gnueabihf-gcc", qemu: "qemu-arm", sysroot: "/usr/arm-linux-gnueabihf",
		env: []string{"GOARCH=arm", "GOARM=7"}},
	{name: "musl", cc: "musl-gcc"},
	{name: "musl-static", cc: "musl-gcc", ldflags: "-linkmode external -extldflags -static"},
}

// probe builds the probe for the target and returns how to run it: the
// program and the arguments that come before the probe's own.
func (tg target) probe(t *testing.T) (string, []string) {
	t.Helper()
	cc := needTool(t, tg.cc, map[string]string{"musl-gcc": "musl-tools",
		"aarch64-linux-gnu-gcc":   "gcc-aarch64-linux-gnu libc6-dev-arm64-cross",
		"arm-linux-gnueabihf-gcc": "gcc-arm-linux-gnueabihf libc6-dev-armhf-cross"}[tg.cc])
	bin := program(t, "probe-"+tg.name, "./testdata/probe",
		append([]string{"CGO_ENABLED=1", "CC=" + cc}, tg.env...), "-ldflags="+tg.ldflags)
	if tg.qemu == "" {
		return bin, nil
	}
	return needTool(t, tg.qemu, "qemu-user"), []string{"-L", tg.sysroot, bin}
}

// The daemonization tests' properties, on each target: the launcher
// exits 0 once the daemon runs; seen from outside (the kernel's /proc, not
// the probe's: qemu emulates /proc/self/stat and shows 0 for the session
// and terminal there), the daemon is a new process, our child (we are its
// subreaper), in a session of its own that it does not lead, without a
// terminal, stdio on /dev/null; its pidfile names it, a second start is
// refused with 75, and bad values, Fail and an early exit give their
// statuses. What cannot run under qemu: the probe's own view of
// /proc/self/stat (emulated) and of rseq (qemu does not implement it);
// LD_PRELOAD shims other than the thread one (TestHardeningInjectedFaults),
// sanitizers and analyzers, which are checked natively only.
func TestCrossArchDaemonizes(t *testing.T) {
	t.Parallel()
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			bin, pre := tg.probe(t)
			r := Launch(t, bin, []string{"CDAEMON_PIDFILE=p.pid"}, pre...)
			r.RequireStatus(t, 0)
			rep := r.ReadReport(t)
			assert.True(t, rep.Info.Daemonized)
			assert.NotEqual(t, r.Launcher, rep.PID)
			st, err := procStat(rep.PID)
			require.NoError(t, err)
			assert.Equal(t, os.Getpid(), st.PPID, "the daemon's parent is its subreaper")
			assert.NotEqual(t, rep.PID, st.SID, "a session leader")
			assert.NotEqual(t, rep.PID, st.PGRP, "a group leader")
			assert.NotEqual(t, r.Launcher, st.SID, "in the launcher's session")
			assert.Equal(t, 0, st.TTYNr, "a controlling terminal")
			fds := procFDs(t, rep.PID)
			for fd := 0; fd <= 2; fd++ {
				assert.True(t, fds[fd].Info != nil && isDevNull(fds[fd].Info), "fd %d is %s", fd, fds[fd].Target)
			}
			pidfile := filepath.Join(r.Dir, "p.pid")
			assert.Equal(t, strconv.Itoa(rep.PID)+"\n", readFile(t, pidfile))

			again := LaunchOpts(t, bin, Opts{Env: []string{"CDAEMON_PIDFILE=" + pidfile}, Args: pre})
			again.RequireStatus(t, cdaemon.ExitTempFail)
			assert.Contains(t, again.Stderr, "already running")
			again.RequireGone(t)

			ws := r.Stop(t, rep.PID)
			assert.True(t, ws.Signaled() || ws.ExitStatus() == 0, "probe ended with %v", ws)
			r.RequireGone(t)

			for _, c := range []struct {
				env    []string
				args   []string
				status int
				msg    string
			}{
				{[]string{"CDAEMON_UMASK=0999"}, nil, cdaemon.ExitUsage, "CDAEMON_UMASK=\"0999\" is not valid"},
				// 2^32+3: a 32-bit long made it fd 3 ("fd 3 is not open").
				{[]string{"CDAEMON_KEEP_FDS=4294967299"}, nil, cdaemon.ExitUsage,
					"CDAEMON_KEEP_FDS=\"4294967299\" is not valid: want a comma-separated list"},
				{[]string{"CDAEMON_WAIT=ready"}, []string{"-fail", "no port"}, cdaemon.ExitFail, "no port"},
				{[]string{"CDAEMON_WAIT=ready"}, []string{"-exit", "3"}, 3, ""},
			} {
				t.Run(strings.Join(append(slices.Clone(c.env), c.args...), " "), func(t *testing.T) {
					if c.status != cdaemon.ExitUsage && tg.qemu != "" {
						t.Skip("under qemu-user 7.2 (Debian 12) the launcher's waitid(WNOWAIT) reads si_status 0 " +
							"for a daemon that exited 3 (the same program exits 3 in the foreground), " +
							"and Fail's daemon is left a zombie for the caller to reap: the launcher's wait for " +
							"the daemon goes through waitid, which qemu 7.2 gets wrong")
					}
					bad := Launch(t, bin, c.env, append(slices.Clone(pre), c.args...)...)
					bad.RequireStatus(t, c.status)
					assert.Contains(t, bad.Stderr, c.msg)
					bad.RequireGone(t)
				})
			}
		})
	}
}

// Under qemu-user the emulator's own thread is not the program's: the
// probe daemonizes (above), but a real second thread before main, started
// by a preloaded library built for the target, is still refused with 70,
// under qemu as natively (TestHardeningSecondThreadRefused). A static
// build loads no library: its case cannot be made.
func TestCrossArchSecondThreadRefused(t *testing.T) {
	t.Parallel()
	for _, tg := range targets {
		if tg.ldflags != "" {
			continue
		}
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			bin, pre := tg.probe(t)
			shim := hbuild(t, "thread-"+tg.name+".so", nil, tg.cc, "-Wall", "-Wextra", "-Werror", "-shared",
				"-fPIC", "-pthread", "-o", filepath.Join(binDir, "thread-"+tg.name+".so"), "testdata/hardening/shim/thread.c")
			env, args := []string{"LD_PRELOAD=" + shim}, pre
			if tg.qemu != "" { // for the program, not for qemu itself
				env, args = nil, append([]string{"-E", "LD_PRELOAD=" + shim}, pre...)
			}
			r := Launch(t, bin, append(env, "CDAEMON_PIDFILE=p.pid"), args...)
			r.RequireStatus(t, cdaemon.ExitSoftware)
			assert.Contains(t, r.Stderr, "already has 2 threads before main")
			if tg.qemu != "" {
				assert.Contains(t, r.Stderr, "qemu-user's own thread not counted")
			} else {
				assert.NotContains(t, r.Stderr, "qemu", "a real kernel taken for qemu")
			}
			assert.NoFileExists(t, filepath.Join(r.Dir, "p.pid"))
			assert.NoFileExists(t, r.Report, "main ran")
			r.RequireGone(t)
		})
	}
}
