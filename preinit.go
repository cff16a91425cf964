//go:build linux && cgo

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
// The configuration is read from CDAEMON_* environment variables, because
// nothing of Go exists yet when they are needed; see README.md for the
// table. An invalid value stops the program before anything is forked,
// with a message and exit status 64.
//
// The package needs cgo, external linking and Linux.
package cdaemon

/*
#include "cdaemon.h"
*/
import "C"

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Exit statuses of the launcher and of the program when cdaemon stops it.
const (
	ExitUsage      = C.CDAEMON_EX_USAGE     // invalid CDAEMON_* value
	ExitSoftware   = C.CDAEMON_EX_SOFTWARE  // cannot run safely: threads, constructor never ran
	ExitOSErr      = C.CDAEMON_EX_OSERR     // fork, setsid, pipe or dup2 failed
	ExitCantCreate = C.CDAEMON_EX_CANTCREAT // a stdio target, the pidfile or the directory
	ExitNoUser     = C.CDAEMON_EX_NOUSER    // CDAEMON_USER or CDAEMON_GROUP unknown
	ExitTempFail   = C.CDAEMON_EX_TEMPFAIL  // already running: the pidfile is locked, or an address in use
	ExitNoPerm     = C.CDAEMON_EX_NOPERM    // a setting the starting user may not make
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
	// Dir is the working directory the program was started in. Relative
	// paths given to the program (flags, arguments) should be resolved
	// against it: the daemon runs in CDAEMON_CHDIR ("/").
	Dir string
	// Pidfile is the absolute path of the locked pidfile, or "".
	Pidfile string
	// Entry is CLOCK_MONOTONIC when the constructor started.
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
	// directory. Paths in Dir and Pidfile are outside it.
	Root string
	// Listeners are the CDAEMON_LISTEN sockets as bound, in the order of
	// their descriptors 3, 4, ...: "tcp:127.0.0.1:8080" (the port the
	// kernel chose for port 0), "tcp:[::1]:8080", "unix:/absolute/path"
	// or "unix:@abstract". Listeners returns them as net.Listeners.
	Listeners []string
}

var (
	state State

	mu       sync.Mutex
	statusFD = -1    // write end of the status pipe until released
	notified = false // READY=1 sent to the service manager
)

func init() {
	s := &C.cdaemon_state
	if s.ran == 0 {
		os.Stderr.WriteString(filepath.Base(os.Args[0]) + ": cdaemon: the C constructor in " +
			"cdaemon.c never ran, so the program cannot daemonize (was it linked with " +
			"-ldflags=-linkmode=internal? cdaemon needs external linking); refusing to run\n")
		os.Exit(ExitSoftware)
	}
	state = State{
		Mode:        [...]string{"auto", "on", "off"}[s.mode],
		Wait:        [...]string{"none", "start", "ready"}[s.wait],
		Daemonized:  s.daemonized != 0,
		Reason:      C.GoString(&s.reason[0]),
		LauncherPID: int(s.launcher_pid),
		Dir:         C.GoString(&s.dir[0]),
		Pidfile:     C.GoString(&s.pidfile[0]),
		Entry:       time.Duration(s.entry.tv_sec)*time.Second + time.Duration(s.entry.tv_nsec),
		UID:         os.Getuid(),
		GID:         os.Getgid(),
		User:        C.GoString(&s.user[0]),
		Group:       C.GoString(&s.group[0]),
		Root:        C.GoString(&s.root[0]),
	}
	state.Groups, _ = os.Getgroups()
	initListeners(s)
	statusFD = int(s.status_fd)
	if s.wait == C.CDAEMON_WAIT_START {
		release(C.CDAEMON_MSG_STARTED, 0, "")
	}
}

// release sends the launcher its last message and closes the status pipe.
// The launcher may be gone (killed while it waited): the write then fails
// with EPIPE, which the Go runtime reports instead of raising SIGPIPE, and
// that is no error for the daemon. Called with mu held, or from init.
func release(typ byte, status byte, msg string) error {
	if statusFD < 0 {
		return nil
	}
	if len(msg) > C.CDAEMON_MSG_MAX {
		msg = msg[:C.CDAEMON_MSG_MAX]
	}
	buf := append([]byte{typ, status, byte(len(msg)), byte(len(msg) >> 8)}, msg...)
	_, err := unix.Write(statusFD, buf)
	unix.Close(statusFD)
	statusFD = -1
	if err != nil && !errors.Is(err, unix.EPIPE) {
		return &os.SyscallError{Syscall: "cdaemon: write status pipe", Err: err}
	}
	return nil
}

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
	if rerr := release(C.CDAEMON_MSG_READY, 0, ""); err == nil {
		err = rerr
	}
	return err
}

// notify sends a sd_notify(3) message to the service manager, if any.
func notify(msg string) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		// x/sys/unix maps a leading '@' to the abstract namespace.
		err = unix.Sendto(fd, []byte(msg), 0, &unix.SockaddrUnix{Name: addr})
		unix.Close(fd)
	}
	if err != nil {
		return &os.SyscallError{Syscall: "cdaemon: notify " + addr, Err: err}
	}
	return nil
}

// Fail reports that the start failed and exits the program with status 1.
// It does not return. If the launcher is still waiting it prints err on the
// terminal the program was started from and exits 1 too; err is also
// written to the program's stderr (the log, in the daemon). Use it for
// errors before Ready, such as a port that cannot be bound.
func Fail(err error) {
	msg := "start failed"
	if err != nil {
		msg = err.Error()
	}
	mu.Lock()
	release(C.CDAEMON_MSG_FAILED, 1, msg)
	mu.Unlock()
	os.Stderr.WriteString(filepath.Base(os.Args[0]) + ": " + msg + "\n")
	os.Exit(1)
}
