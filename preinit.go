//go:build linux && cgo

package cdaemon

// The cgo bridge: read what the constructor in cdaemon.c recorded in
// cdaemon_state, and write the daemon's last message to the launcher on
// the status pipe. The API these serve is declared in cdaemon.go, which
// builds without cgo so that its documentation renders everywhere.

/*
#include "cdaemon.h"
*/
import "C"

import (
	"errors"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

var statusFD = -1 // write end of the status pipe until released

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
		ReplacedPID: int(s.replaced_pid),
		Dir:         C.GoString(&s.dir[0]),
		Pidfile:     C.GoString(&s.pidfile[0]),
		Stdout:      C.GoString(&s.stdout_path[0]),
		Stderr:      C.GoString(&s.stderr_path[0]),
		Entry:       time.Duration(s.entry.tv_sec)*time.Second + time.Duration(s.entry.tv_nsec),
		UID:         os.Getuid(),
		GID:         os.Getgid(),
		User:        C.GoString(&s.user[0]),
		Group:       C.GoString(&s.group[0]),
		Root:        C.GoString(&s.root[0]),
	}
	state.Groups, _ = os.Getgroups()
	if ns := C.GoString(&s.notify_socket[0]); ns != "" && state.Daemonized {
		// The launcher's notify socket (CDAEMON_WAIT=ready): programs
		// that speak sd_notify (coreos/go-systemd's daemon.SdNotify)
		// read NOTIFY_SOCKET when they send. The constructor cannot add
		// it to the environment Go reads, which lies on the initial
		// stack and cannot grow.
		os.Setenv("NOTIFY_SOCKET", ns)
		state.notifySocket = ns
	}
	initListeners()
	statusFD = int(s.status_fd)
	if s.wait == C.CDAEMON_WAIT_START {
		release(C.CDAEMON_MSG_STARTED, 0, "")
	}
}

// releaseReady tells a launcher waiting in ready mode that the daemon is
// ready. Called with mu held.
func releaseReady() error { return release(C.CDAEMON_MSG_READY, 0, "") }

// releaseFailed tells a waiting launcher to print msg and exit status.
// Called with mu held.
func releaseFailed(status byte, msg string) error {
	return release(C.CDAEMON_MSG_FAILED, status, msg)
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
