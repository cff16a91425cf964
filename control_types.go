package cdaemon

// What FindDaemon, RemoveStalePidfile and a Daemon report, on every
// system: the functions are in control.go (Unix) and control_nounix.go.

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Errors FindDaemon, Daemon.Signal and Daemon.Stop wrap in a *PidfileError.
var (
	// ErrNotRunning: no process holds the daemon's lock (or there is no
	// lock file beside the pidfile). The pidfile is a stale one a daemon
	// left when it exited.
	ErrNotRunning = errors.New("not running")
	// ErrNotHolder: the lock is held, but FindDaemon cannot tell which
	// holder is the daemon: several processes hold it and the pidfile
	// names none of them (a start in progress has not written its pid
	// yet), or it is held only by pid 1 or the caller itself, which
	// FindDaemon never returns as a daemon. Nothing is signalled.
	ErrNotHolder = errors.New("the pid it names does not hold its lock")
	// ErrHolderHidden: the lock is held (/proc/locks shows it) by a
	// process whose descriptors this user cannot read, or that is outside
	// this pid namespace.
	ErrHolderHidden = errors.New("locked by a process this user cannot see")
	// ErrStillLocked: Stop saw the daemon exit, but other processes still
	// hold the lock (children that inherited it). Stop signals only the
	// daemon; they are listed in PidfileError.Holders.
	ErrStillLocked = errors.New("still locked after the daemon exited")
	// ErrLocked: RemoveStalePidfile found the lock held: the pidfile is
	// not stale.
	ErrLocked = errors.New("locked: a process holds its lock, it is not stale")
	// ErrNotPidfile: the pidfile or its lock file is a symbolic link, a
	// directory, another file that is not regular, or one with other names
	// (hard links); cdaemon never locks such a file.
	ErrNotPidfile = errors.New("not a regular file with a single name")
)

// LockFile is the path of the lock file beside a pidfile: the pidfile's
// path and ".lock". A daemon holds a flock on it for its whole life; it
// is created with mode 0600, so only the daemon's starter can open it, and
// so lock it.
func LockFile(pidfile string) string { return pidfile + ".lock" }

// A PidfileError says why FindDaemon, Signal or Stop did not act, with the
// pid the file names and the processes that hold its lock.
type PidfileError struct {
	Path    string // the pidfile
	PID     int    // the pid the file names, or 0 if none
	Holders []int  // the processes that hold its lock, if any
	Err     error  // one of the Err* values, or the failing call's error
}

func (e *PidfileError) Error() string {
	msg := "cdaemon: pidfile " + e.Path + ": "
	self := slices.Contains(e.Holders, os.Getpid())
	switch {
	case errors.Is(e.Err, ErrNotHolder) && self && len(e.Holders) == 1:
		// The caller's own constructor took the pidfile: CDAEMON_PIDFILE
		// is in its environment.
		return "cdaemon: pidfile " + e.Path + ": its lock is held by this process, which " +
			"took it itself (is CDAEMON_PIDFILE set in its environment?)"
	case errors.Is(e.Err, ErrNotHolder) && len(e.Holders) == 1 && e.Holders[0] == 1:
		return msg + "its lock is held by pid 1, which is never taken for a daemon"
	case errors.Is(e.Err, ErrNotHolder) && e.PID == 0:
		msg += "it names no pid, and several processes hold its lock"
	case errors.Is(e.Err, ErrNotHolder):
		msg += "it names pid " + strconv.Itoa(e.PID) + ", which does not hold its lock, and " +
			"several processes do"
	case e.PID > 0 && errors.Is(e.Err, ErrNotRunning):
		msg += e.Err.Error() + " (it names pid " + strconv.Itoa(e.PID) + ", which holds no lock on it)"
	default:
		msg += e.Err.Error()
	}
	if len(e.Holders) > 0 {
		msg += "; its lock is held by " + pids(e.Holders)
	}
	return msg
}

func (e *PidfileError) Unwrap() error { return e.Err }

func pids(list []int) string {
	s := make([]string, len(list))
	for i, p := range list {
		s[i] = strconv.Itoa(p)
	}
	if len(s) == 1 {
		return "pid " + s[0]
	}
	return "pids " + strings.Join(s, ", ")
}

// A Daemon is a running process found by FindDaemon: the holder of the
// lock on a pidfile's lock file. On Linux it is held by a pidfd, so Signal
// and Stop reach that process or none, even once its pid is reused;
// elsewhere by its pid (see control_other.go). Close releases it.
type Daemon struct {
	PID     int    // its pid: the process that holds the lock
	Named   int    // the pid the pidfile names (0: none); PID unless the file was rewritten
	Pidfile string // the pidfile it was found by, as given to FindDaemon

	pidfd    int       // a pidfd on Linux, the pid elsewhere; -1 once closed
	dev, ino uint64    // the lock file's identity when it was found
	file     *fileStat // the pidfile's when it was found, or nil
}
