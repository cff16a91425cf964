//go:build !cgo || !linux

package cdaemon

// The program without the constructor: on a system other than Linux, or on
// Linux built with CGO_ENABLED=0 (cdaemon.c is C, and only a cgo build
// links it). The package still builds and its API works, but nothing can
// daemonize: the program runs in the foreground, as CDAEMON=off runs it,
// and never silently where a daemon was asked for:
//
//   - CDAEMON=on, or any other CDAEMON_* variable (a pidfile, logs,
//     listeners, privileges, limits, the launcher's wait: what only the
//     constructor does), stops the program in package init with a message
//     naming the variables and why, and status ExitUnavailable (69); a run
//     the arguments decline (help, the version) takes nothing and is not
//     stopped, as with the constructor;
//   - a bad CDAEMON value or an unknown CDAEMON_* name is ExitUsage (64),
//     with the constructor's messages;
//   - auto stays in the foreground and State.Reason says why; on Linux it
//     also prints one line on stderr naming cgo, unless a supervisor, a
//     go test binary or the arguments would have kept the program in the
//     foreground anyway: a user who expected a daemon would otherwise find
//     a start command that never returns.

import (
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// vars are the constructor's variables (cdaemon.c's vars table; a test
// keeps them equal).
var vars = []string{"CDAEMON", "CDAEMON_WAIT", "CDAEMON_TIMEOUT", "CDAEMON_PIDFILE",
	"CDAEMON_LOG", "CDAEMON_STDOUT", "CDAEMON_STDERR", "CDAEMON_STDIN", "CDAEMON_CHDIR",
	"CDAEMON_UMASK", "CDAEMON_KEEP_FDS", "CDAEMON_USER", "CDAEMON_GROUP", "CDAEMON_CAPS",
	"CDAEMON_CHROOT", "CDAEMON_NO_NEW_PRIVS", "CDAEMON_NOFILE", "CDAEMON_CORE", "CDAEMON_NICE",
	"CDAEMON_OOM_SCORE_ADJ", "CDAEMON_LISTEN", "CDAEMON_REPLACE", "CDAEMON_REPLACE_SIGNAL"}

func init() {
	dir, _ := os.Getwd()
	state = State{Mode: "auto", Wait: "start", LauncherPID: os.Getpid(), Dir: dir,
		Entry: monotonic(), UID: os.Getuid(), GID: os.Getgid()}
	state.Groups, _ = os.Getgroups()

	reason := "not Linux (" + runtime.GOOS + "/" + runtime.GOARCH + "): cdaemon's constructor runs on Linux only"
	missing := "cdaemon daemonizes on Linux only, and this is " + runtime.GOOS + "/" + runtime.GOARCH
	if runtime.GOOS == "linux" {
		reason = "built without cgo (CGO_ENABLED=0): cdaemon's C constructor is not in this program"
		missing = "this program was built without cgo (CGO_ENABLED=0), so cdaemon's C " +
			"constructor is not in it; build it with CGO_ENABLED=1 and a C compiler"
	}
	var others []string // CDAEMON_* set besides CDAEMON, by name
	for _, kv := range os.Environ() {
		name, value, hasValue := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "CDAEMON") || (len(name) > 7 && name[7] != '_') {
			continue
		}
		switch {
		case !slices.Contains(vars, name):
			n := len(vars)
			stop(ExitUsage, nameOf(name)+" is not a cdaemon variable: want "+
				strings.Join(vars[:n-1], ", ")+" or "+vars[n-1])
		case name != "CDAEMON":
			others = append(others, name)
		case !hasValue || parseMode(value) == "":
			stop(ExitUsage, "CDAEMON="+strconv.Quote(value)+" is not valid: want auto, on or off "+
				"(or 1/0, true/false, yes/no)")
		default:
			state.Mode = parseMode(value)
		}
	}
	slices.Sort(others)
	declined := state.Mode == "auto" && asksHelp() != ""
	switch {
	case state.Mode == "on":
		stop(ExitUnavailable, "CDAEMON="+os.Getenv("CDAEMON")+" asks for a daemon, but "+missing+
			"; unset CDAEMON to run in the foreground")
	case len(others) > 0 && !declined:
		what := strings.Join(others, ", ") + " needs"
		if len(others) > 1 {
			what = strings.Join(others[:len(others)-1], ", ") + " and " + others[len(others)-1] + " need"
		}
		stop(ExitUnavailable, what+" the constructor, but "+missing+"; unset "+
			map[bool]string{true: "them", false: "it"}[len(others) > 1]+" to run in the foreground")
	}
	switch {
	case state.Mode == "off":
		state.Reason = "CDAEMON=off"
	case testBinary():
		state.Reason = "a go test binary"
	case declined:
		state.Reason = asksHelp()
	default:
		state.Reason = reason
		if runtime.GOOS == "linux" && !supervised() {
			say("this program runs in the foreground: it was built without cgo (CGO_ENABLED=0), " +
				"so cdaemon's C constructor is not in it; set CDAEMON=off to say the foreground is meant")
		}
	}
}

// parseMode is CDAEMON's value as State.Mode reports it, or "".
func parseMode(v string) string {
	switch strings.ToLower(v) {
	case "auto":
		return "auto"
	case "on", "1", "true", "yes":
		return "on"
	case "off", "0", "false", "no":
		return "off"
	}
	return ""
}

// nameOf is a variable's name for a message: as typed, or quoted if it
// has bytes that must be escaped.
func nameOf(name string) string {
	for i := 0; i < len(name); i++ {
		if name[i] < 0x21 || name[i] >= 0x7f {
			return strconv.Quote(name)
		}
	}
	return name
}

// say prints "prog: cdaemon: msg" on stderr, as the constructor does.
func say(msg string) {
	os.Stderr.WriteString(filepath.Base(os.Args[0]) + ": cdaemon: " + msg + "\n")
}

// stop ends the program in package init, as the constructor would have.
func stop(status int, msg string) {
	say(msg)
	os.Exit(status)
}

// testBinary reports a go test binary: -test.* arguments or a *.test name.
func testBinary() bool {
	if strings.HasSuffix(filepath.Base(os.Args[0]), ".test") {
		return true
	}
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-test.") || strings.HasPrefix(a, "--test.") {
			return true
		}
	}
	return false
}

// asksHelp says why the arguments ask for help or the version, or "".
func asksHelp() string {
	for _, a := range os.Args[1:] {
		if a == "--" {
			break
		}
		switch a {
		case "-h", "-help", "--help", "-version", "--version":
			return "the arguments ask for help or the version (" + a + ")"
		}
	}
	return ""
}

// supervised reports what would keep auto in the foreground on Linux with
// the constructor: PID 1 or its child, systemd's variables, a supervisor
// as the parent.
func supervised() bool {
	pid, ppid := os.Getpid(), os.Getppid()
	if pid == 1 || ppid == 1 || os.Getenv("NOTIFY_SOCKET") != "" ||
		os.Getenv("SYSTEMD_EXEC_PID") == strconv.Itoa(pid) || os.Getenv("LISTEN_PID") == strconv.Itoa(pid) {
		return true
	}
	comm, _ := os.ReadFile("/proc/" + strconv.Itoa(ppid) + "/comm")
	switch strings.TrimSpace(string(comm)) {
	case "runsv", "s6-supervise", "supervise", "supervisord", "systemd":
		return true
	}
	return false
}

// No launcher waits, and no constructor bound listeners.
func releaseReady() error                         { return nil }
func releaseFailed(status byte, msg string) error { return nil }
func takeListeners() ([]net.Listener, error)      { return nil, nil }
