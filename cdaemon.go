// Package cdaemon makes a Go program a Unix daemon before the Go runtime
// starts. Importing it is enough:
//
//	import _ "github.com/cdaemon/cdaemon"
//
// A C constructor (cdaemon.c) runs from the C start-up code while the
// process is still single-threaded. It forks twice, calls setsid, changes
// directory, sets the umask, points stdin, stdout and stderr at /dev/null
// or the configured files, closes inherited descriptors and resets signal
// state. The Go runtime then boots once, in the daemon, and main.main runs
// there. The original process (the launcher) stays a small C process that
// waits for the daemon to reach a wait point and exits with the outcome, so
// the shell that started the program knows whether the daemon came up.
//
// Daemonizing needs Linux, cgo and external linking (the default with
// cgo). The package builds everywhere else too, and with CGO_ENABLED=0:
// there the program runs in the foreground with the whole API (Info says
// why in State.Reason; on Linux one line on stderr names cgo), pidfile
// control works wherever flock does, and CDAEMON=on or any other CDAEMON_*
// setting, which only the constructor can honour, stops the program in
// package init with ExitUnavailable (69). A binary whose constructor never
// ran (some -ldflags=-linkmode=internal builds) stops in package init
// with ExitSoftware rather than run undaemonized.
//
// # Configuration
//
// The configuration is read from environment variables, like GODEBUG,
// because nothing of Go exists yet when it is needed. Every value is
// validated: a bad value, an empty value or an unknown CDAEMON_* name stops
// the program before anything is forked, with a message naming the
// variable, the value and what is allowed, and status ExitUsage (64).
//
//	variable            values                                      default
//	CDAEMON             auto, on, off (also 1/0, true/false,        auto
//	                    yes/no)
//	CDAEMON_WAIT        none: the launcher exits once the daemon    start, or the
//	                    exists and its pid is in the pidfile;       program's own
//	                    start: once the daemon's package init ran;  default
//	                    ready: once the program calls Ready or
//	                    sends READY=1 to NOTIFY_SOCKET
//	CDAEMON_TIMEOUT     how long the launcher waits, 1ms-24h;       90s
//	                    then it stops the daemon and exits 1
//	CDAEMON_PIDFILE     path; holds the daemon's pid and a newline  none
//	                    (0644); the daemon holds a flock on
//	                    PATH.lock (0600) for its whole life
//	CDAEMON_LOG         path for both stdout and stderr (append)    /dev/null
//	CDAEMON_STDOUT,     paths; override CDAEMON_LOG and /dev/null   /dev/null
//	CDAEMON_STDERR,
//	CDAEMON_STDIN
//	CDAEMON_CHDIR       the daemon's working directory              /
//	CDAEMON_UMASK       octal 0-0777                                0
//	CDAEMON_KEEP_FDS    comma list of open descriptors above 2      none
//	                    (and above the listeners') to keep
//	CDAEMON_USER        user name or uid; supplementary groups      unchanged
//	                    from the user database
//	CDAEMON_GROUP       group name or gid                           the user's
//	                                                                primary group
//	CDAEMON_CAPS        none, or a comma list of capabilities       all dropped
//	                    (net_bind_service): kept in every set,      with USER
//	                    the bounding set cut to them
//	CDAEMON_CHROOT      directory; CDAEMON_CHDIR is inside it       none
//	CDAEMON_NO_NEW_PRIVS on/off: PR_SET_NO_NEW_PRIVS                off
//	CDAEMON_NOFILE      RLIMIT_NOFILE, soft and hard, 64-2^30-64    unchanged
//	CDAEMON_CORE        off: no core dumps; on: unlimited, and      unchanged
//	                    dumpable after the uid change
//	CDAEMON_NICE        -20-19, for every thread                    unchanged
//	CDAEMON_OOM_SCORE_ADJ -1000-1000                                unchanged
//	CDAEMON_LISTEN      comma list: tcp:HOST:PORT (numeric IPv4),   none
//	                    tcp:[IPv6]:PORT, unix:PATH, unix:@NAME;
//	                    bound before the fork, at fds 3, 4, ...
//	CDAEMON_REPLACE     on/off: take over from the daemon that      off
//	                    holds the pidfile's lock (see Replacing a
//	                    running daemon); needs CDAEMON_PIDFILE and
//	                    CDAEMON_WAIT start or ready
//	CDAEMON_REPLACE_SIGNAL the signal the replaced daemon gets:     TERM
//	                    TERM, INT, QUIT, HUP, USR1, USR2, WINCH,
//	                    KILL (SIG prefix optional)
//
// # Privileges and listeners
//
// Everything that can fail does so before anything is forked, as the
// starting user: the user and group are looked up (ExitNoUser if unknown;
// names need a dynamically linked glibc, static and musl builds take
// numbers), each setting is checked against the process's capabilities
// (ExitNoPerm), the limits, nice value and oom score are set on the
// launcher so the kernel decides, the chroot directory is opened and the
// CDAEMON_LISTEN addresses are bound and listening (ExitTempFail if in
// use, ExitCantCreate otherwise). The daemon then chroots, sets groups,
// gid and uid and cuts its capabilities while it is still
// single-threaded, before the Go runtime starts: every thread has the new
// ids, which Go itself cannot arrange (setuid is per thread on Linux, and
// syscall.AllThreadsSyscall refuses cgo programs). A process that stays in
// the foreground gets the same on itself. The listeners are at
// descriptors 3, 4, ... with systemd's socket-activation environment; see
// Listeners.
//
// Paths are resolved against the directory the program was started in
// (State.Dir): the launcher opens them before it forks. Created files get
// fixed modes whatever the umask: pidfile 0644, its lock file 0600, logs
// 0640. The pidfile and its lock file are never opened through a symbolic
// link or a second hard link. In a shared directory (one a uid other than
// the starting user's and root owns, or that its group or others may write
// to), no path the launcher opens (pidfile, lock file, logs, stdio targets,
// unix socket paths) is followed through a symbolic link at its last
// component, and a file someone else owns or with other names is refused
// (ExitCantCreate) unless the start created it.
//
// In auto mode the program stays in the foreground where daemonizing would
// be wrong: a go test binary; a process a service manager or supervisor
// started: PID 1 or a child of PID 1 (init, a service manager), a child of
// runsv, s6-supervise, supervise, supervisord or systemd (the user
// manager), or one with NOTIFY_SOCKET set or SYSTEMD_EXEC_PID or LISTEN_PID
// holding its pid; arguments that ask for help or the
// version (-h, -help, --help, -version, --version before "--"); or a
// program whose own cdaemon_wanted function says no. A program defines it
// in a cgo preamble of its main package to decide from its arguments
// (non-zero: daemonize):
//
//	/*
//	int cdaemon_wanted(int argc, char **argv) { return argc > 1 && argv[1][0] == 's'; }
//	*/
//	import "C"
//
// CDAEMON=on and CDAEMON=off override every such decision. A library build
// (c-shared, c-archive, plugin) never forks its host. State.Reason says why
// a process stayed in the foreground.
//
// A program makes "ready" its default wait point (CDAEMON_WAIT still
// overrides it) with, in a cgo preamble of its main package:
//
//	/*
//	const char cdaemon_default_wait[] = "ready";
//	*/
//	import "C"
//
// # Operating a daemon
//
// FindDaemon finds the daemon that runs for a pidfile: the process that
// holds the lock on its lock file (LockFile), which only the daemon's
// starter can open, whatever pid the pidfile names. Daemon.Signal and
// Daemon.Stop act on that process through a pidfd, so a reused pid, or a
// process a rewritten pidfile names, is never signalled. ReopenLogs reopens the log files
// after rotation. The cdaemon command (github.com/cdaemon/cdaemon/cdaemon)
// offers them as status, stop and reload, with LSB exit statuses.
//
// # Replacing a running daemon
//
// With CDAEMON_REPLACE=on a start replaces the daemon that holds the
// pidfile's lock (and that the pidfile names) instead of refusing: the
// launcher copies that daemon's locked descriptor and its listening
// sockets for the CDAEMON_LISTEN addresses with pidfd_getfd (which needs
// ptrace access to it: root, or its own user while it is dumpable and
// kernel.yama.ptrace_scope allows it; otherwise ExitNoPerm before
// anything changes, ExitUnavailable before Linux 5.6), hands the sockets
// to the new daemon at 3, 4, ... in the new list's order (an address the
// old one lacks is bound afresh), starts it as usual and waits for its
// wait point. Only then does it write the new pid over the old one in the
// pidfile (in place: never empty), send the old daemon SIGTERM
// (CDAEMON_REPLACE_SIGNAL) through a pidfd and wait for it to exit
// (CDAEMON_TIMEOUT, then SIGKILL). The listening sockets are never closed,
// so no connection is refused. If the new daemon fails before its wait
// point, the old one is untouched and the launcher says it still runs.
// State.ReplacedPID tells the new daemon which pid it replaced. Nothing
// else is carried over: connections the old daemon accepted stay with it
// to drain, as do its other descriptors, memory and timers. A program
// drains by closing its listeners, answering what it accepted, and then
// calling http.Server.Shutdown (which alone drops a request it reads
// after it began).
//
// # Exit statuses
//
// The launcher exits with one of the Exit constants below (from
// sysexits.h), 0 when the daemon reached the wait point, or, if the daemon
// died before that, the daemon's own exit status (1 if it was 0: it is not
// up) or 128+signal. A launcher interrupted while it waits, by SIGINT,
// SIGTERM, SIGHUP or SIGQUIT, stops the daemon and exits 128+signal too.
// In every non-zero case it prints why on its stderr and leaves no
// process of the start running.
package cdaemon

import (
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Exit statuses of the launcher, and of the program when cdaemon stops it.
// They are the values of cdaemon.h's CDAEMON_EX_* enum (a test keeps them
// equal).
const (
	ExitFail        = 1  // the program called Fail, or the wait for the wait point timed out
	ExitUsage       = 64 // invalid CDAEMON_* value
	ExitSoftware    = 70 // cannot run safely (threads before main, or more than one and no /proc to count them; the constructor never ran), or the daemon broke the status protocol
	ExitOSErr       = 71 // fork, setsid, pipe or dup2 failed
	ExitNoUser      = 67 // CDAEMON_USER or CDAEMON_GROUP is not in the user database
	ExitUnavailable = 69 // a daemon or a setting was asked for where the constructor does not exist (not Linux, or built without cgo); or CDAEMON_REPLACE on a kernel without pidfd_open or pidfd_getfd (before Linux 5.6)
	ExitCantCreate  = 73 // a stdio target, the pidfile, the CDAEMON_CHDIR or CDAEMON_CHROOT directory cannot be opened, or a CDAEMON_LISTEN address cannot be bound
	ExitTempFail    = 75 // already running: the pidfile's lock file is locked, or a CDAEMON_LISTEN address is in use
	ExitNoPerm      = 77 // a setting the starting user may not make, or a CDAEMON_* variable in a setuid, setgid or file-capability program
)

// State is what the constructor did, as Info reports it.
type State struct {
	// Mode is the CDAEMON setting: "auto", "on" or "off".
	Mode string
	// Wait is the CDAEMON_WAIT setting: "none", "start" or "ready".
	Wait string
	// Daemonized reports whether this process is the daemon.
	Daemonized bool
	// Reason says why the process did not daemonize; empty if it did.
	Reason string
	// LauncherPID is the pid the program was started with.
	LauncherPID int
	// ReplacedPID is the pid of the daemon this one replaces
	// (CDAEMON_REPLACE=on), or 0 for an ordinary start. That daemon is
	// still running while this one starts: it received its signal only
	// once this one was ready, and it may still be draining the
	// connections it had accepted. The listeners came from it.
	ReplacedPID int
	// Dir is the working directory the program was started in. Relative
	// paths given to the program (flags, arguments) should be resolved
	// against it: the daemon runs in CDAEMON_CHDIR ("/").
	Dir string
	// Pidfile is the absolute path of the pidfile, or "". The daemon
	// holds the lock on LockFile(Pidfile).
	Pidfile string
	// Stdout and Stderr are the absolute paths of the files the daemon's
	// stdout and stderr were opened on (CDAEMON_LOG, CDAEMON_STDOUT,
	// CDAEMON_STDERR), or "" for /dev/null and in the foreground.
	Stdout, Stderr string
	// Entry is CLOCK_MONOTONIC when the constructor started (when
	// package init ran, in a Linux program without cgo; 0 elsewhere).
	Entry time.Duration
	// UID, GID and Groups are the ids the process runs with, read in
	// package init: after the change CDAEMON_USER and CDAEMON_GROUP ask
	// for, which the constructor made for every thread.
	UID, GID int
	Groups   []int
	// User and Group are the names CDAEMON_USER and CDAEMON_GROUP (or
	// the user's primary group) resolved to; "" if unset, or for an id
	// the user database does not know.
	User, Group string
	// Root is CDAEMON_CHROOT, absolute, or "": the process's root
	// directory. Dir, Pidfile, Stdout and Stderr are outside it.
	Root string
	// Listeners are the CDAEMON_LISTEN sockets as bound, in the order of
	// their descriptors 3, 4, ...: "tcp:127.0.0.1:8080" (with the port
	// the kernel chose for port 0), "tcp:[::1]:8080",
	// "unix:/absolute/path" or "unix:@abstract". The function Listeners
	// returns them as net.Listeners.
	Listeners []string

	notifySocket string // the launcher's NOTIFY_SOCKET (CDAEMON_WAIT=ready), or ""
}

var (
	state State // filled by package init from the constructor's record

	mu       sync.Mutex
	notified = false // READY=1 sent to the service manager
)

// Daemonized reports whether this process is the daemon the constructor
// made. It is false in the foreground: CDAEMON=off, a go test binary, a
// process started by PID 1, a library build. Info tells why.
func Daemonized() bool { return state.Daemonized }

// Info reports what the constructor did.
func Info() State { return state }

// Ready tells the launcher that the daemon is ready: with CDAEMON_WAIT=ready
// the launcher then exits 0. Call it once the program can serve (sockets
// listening, files open). If NOTIFY_SOCKET is set (a systemd Type=notify
// service, which runs in the foreground) it also sends READY=1 there.
//
// With CDAEMON_WAIT=ready the launcher itself offers a NOTIFY_SOCKET
// (set in package init): a program that sends READY=1 there, through
// coreos/go-systemd's daemon.SdNotify or any sd_notify(3) client, is
// ready without calling Ready, and STATUS=, ERRNO=, EXIT_STATUS=,
// STOPPING=1, EXTEND_TIMEOUT_USEC= and MAINPID= are understood (README,
// "Readiness"). Ready sends READY=1 there and on the status pipe, and the
// first releases the launcher. After the launcher exits, sends to that
// socket fail with ECONNREFUSED: nobody binds its name any more.
// With other wait modes and on every call after the first it does nothing.
// If the launcher is gone (killed while it waited) Ready returns nil and
// the daemon runs on. It returns an error only if the status pipe or the
// notify socket cannot be written for another reason.
func Ready() error {
	mu.Lock()
	defer mu.Unlock()
	var err error
	if !notified {
		notified = true
		err = notify("READY=1")
	}
	if rerr := releaseReady(); err == nil {
		err = rerr
	}
	return err
}

// Fail reports that the start failed and exits the program with status
// ExitFail. It does not return. If the launcher is still waiting it prints
// err on the terminal the program was started from and exits ExitFail too;
// err is also written to the program's stderr (the log, in the daemon).
// Use it for errors before Ready, such as a port that cannot be bound.
func Fail(err error) {
	msg := "start failed"
	if err != nil {
		msg = err.Error()
	}
	mu.Lock()
	releaseFailed(ExitFail, msg)
	mu.Unlock()
	os.Stderr.WriteString(filepath.Base(os.Args[0]) + ": " + msg + "\n")
	os.Exit(ExitFail)
}

// ReopenLogs reopens the files the daemon's stdout and stderr were opened
// on at start (State.Stdout and State.Stderr: the absolute paths of
// CDAEMON_LOG, CDAEMON_STDOUT, CDAEMON_STDERR) onto descriptors 1 and 2,
// as logrotate's create mode needs: the old file was renamed, and the
// daemon must write to a new one at the same path. Call it when the daemon
// is told to (SIGHUP, through signal.Notify). It opens each path as the
// constructor did (write-only, appending, created with mode 0640 whatever
// the umask), and one open file for both when both name the same path, so
// their lines stay in order. In a shared directory (one a uid other than
// the daemon's and root owns, or its group or others may write to) it
// applies the start's rules: a symbolic link, a file with other hard links
// or a file another user owns is refused, and a directory anyone may write
// to must be sticky. A
// descriptor on /dev/null, and every descriptor in the foreground, is left
// alone. Under CDAEMON_CHROOT a file inside the new root is reopened by its
// path there; one outside it cannot be reached, which is an error.
//
// On error ReopenLogs changes neither descriptor: the daemon keeps writing
// to the old files. The error is an *fs.PathError naming the path that
// could not be opened and why (a directory the daemon's user may not write
// to, a FIFO with no reader, a directory now at the path, a refusal above).
func ReopenLogs() error { return reopenLogs() }

// Listeners returns the sockets CDAEMON_LISTEN bound, in its order, as
// net.Listeners; nil and no error without CDAEMON_LISTEN. The launcher
// bound them as the starting user (so root binds a port below 1024 for a
// daemon that runs as nobody) and they listened before the daemon
// existed: connections made since then wait in their backlog.
//
// They are at descriptors 3, 4, ... with LISTEN_PID, LISTEN_FDS and
// LISTEN_FDNAMES set as systemd's socket activation sets them, so a
// program that uses coreos/go-systemd's activation package (or
// sd_listen_fds) instead finds them unchanged. The first call to either
// takes the descriptors over: Listeners closes them (each listener has a
// close-on-exec descriptor of its own) and removes the LISTEN_* variables,
// as activation.Listeners does. Later calls return the same listeners and
// error.
//
// It fails, returning no listener, if a descriptor no longer holds its
// socket (something else took the descriptors first) or net.FileListener
// fails.
func Listeners() ([]net.Listener, error) { return takeListeners() }
