//go:build unix && !linux && !aix

package cdaemon

// What control.go needs, where the kernel neither shows who holds a lock
// (Linux's /proc/PID/fdinfo) nor gives a process descriptor that outlives
// its pid (pidfd): the BSDs, macOS, Solaris, AIX. There a lock is still
// seen to be held or free (flock), but not by whom: the pid the file names
// is taken for the holder when the file is locked and that process is
// alive, and it is signalled by its pid, which the kernel could have given
// to another process since (a daemon that exited, and a new process with
// its pid, between FindDaemon and Signal). cdaemon's constructor runs on
// Linux only, so such a pidfile was made by another program that keeps the
// same convention (LockFile: a lock file beside the pidfile, flocked for
// the daemon's life).

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// openProcess checks that pid exists (ESRCH if not) and returns it: the
// process is known by its pid alone.
func openProcess(pid int) (int, error) {
	if err := unix.Kill(pid, 0); err == unix.ESRCH {
		return -1, err
	}
	return pid, nil
}

// signalProcess sends sig to the process pid (ESRCH: it exited). A
// closed Daemon's pid is -1, which kill(2) takes for every process: EBADF,
// as a closed pidfd gives.
func signalProcess(pid int, sig syscall.Signal) error {
	if pid <= 0 {
		return unix.EBADF
	}
	return unix.Kill(pid, sig)
}

// signalCall names the call signalProcess makes, for errors.
const signalCall = "kill"

// locked reports whether the lock file at path, if it is still dev:ino,
// is locked: a shared lock it cannot take is held by someone else (one it
// can take is released at once). known is false when the file cannot be
// opened (mode 0600: another user's daemon), so the lock cannot be seen.
func locked(path string, dev, ino uint64) (held, known bool) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return false, err == unix.ENOENT
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || uint64(st.Dev) != dev || uint64(st.Ino) != ino {
		return false, true // replaced meanwhile: not the lock examined
	}
	return unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB) == unix.EWOULDBLOCK, true
}

// lockHolders cannot list the holders: when the file is locked, or its
// lock cannot be seen, they are hidden.
func lockHolders(path string, dev, ino uint64) (holders []int, hidden bool) {
	held, known := locked(path, dev, ino)
	return nil, held || !known
}

// holds reports whether the lock file is locked and pid is alive: pid is
// then taken for the holder.
func holds(path string, pid int, dev, ino uint64) bool {
	held, _ := locked(path, dev, ino)
	return held && unix.Kill(pid, 0) != unix.ESRCH
}

// lockedInProc reports whether the lock file is locked, or cannot be seen.
func lockedInProc(path string, dev, ino uint64) bool {
	held, known := locked(path, dev, ino)
	return held || !known
}

// exited waits up to timeout for the daemon to exit and reports whether it
// has. A zombie still counts as alive here: its parent, init, reaps it.
func (d *Daemon) exited(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for pause := time.Millisecond; ; pause = min(2*pause, 50*time.Millisecond) {
		if d.pidfd <= 0 || unix.Kill(d.pidfd, 0) == unix.ESRCH {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		time.Sleep(min(pause, time.Until(deadline)))
	}
}

// Close releases the daemon. The Daemon must not be used after.
func (d *Daemon) Close() error {
	d.pidfd = -1
	return nil
}
