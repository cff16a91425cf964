//go:build unix && !aix

package cdaemon

// Status, signal and stop by pidfile, acting only on the process that
// holds the daemon's lock. The pid written in the pidfile is a claim, not
// a fact: a daemon that exited leaves its pid behind for the kernel to
// reuse, and whoever may write the file may write any pid into it (the
// CVE-2017-11746 class: a root "stop" aimed at another process). The lock
// is a fact the kernel keeps: /proc/PID/fdinfo/N shows a "lock:" line on
// every descriptor that refers to the open file holding a flock, in every
// process that shares it. It is taken on the lock file beside the pidfile
// (PIDFILE.lock, mode 0600), which only the daemon's starter can open, so
// only the daemon and what it passed its descriptor to can hold it; a lock
// anyone takes on the pidfile (0644) decides nothing.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// fileStat is what identifies a file (Daemon's pidfile).
type fileStat = unix.Stat_t

// FindDaemon finds the daemon that runs for the pidfile at path: the
// process that holds the flock on its lock file (LockFile(path)), whatever
// the pidfile says. The lock may be shared by several processes (a
// launcher still waiting for its daemon, a child that inherited the
// descriptor without exec); then the one the pidfile names is the daemon,
// and the others are only listed in errors. A daemon whose pidfile names
// another process, a dead one or none is found all the same, with Named
// saying what the file names. A program that locked its pidfile in the
// foreground is found the same way.
//
// FindDaemon never trusts the pid in the file alone. It fails with:
//   - an *fs.PathError if path cannot be examined (fs.ErrNotExist: no
//     pidfile and no lock file, so nothing runs);
//   - ErrNotPidfile if the pidfile or the lock file is a symbolic link,
//     not a regular file, or a file with other names (hard links);
//   - ErrNotRunning if no process holds the lock, or there is no lock
//     file (a stale pidfile);
//   - ErrNotHolder if several processes hold the lock and the file names
//     none of them (a start in progress), or only pid 1 or the caller
//     itself holds it, with the holders;
//   - ErrHolderHidden if the lock is held by processes this user cannot
//     see (another user's, without privilege; another pid namespace).
//
// The Err* values come wrapped in a *PidfileError.
func FindDaemon(path string) (*Daemon, error) {
	return findDaemon(path, 3)
}

// findDaemon is FindDaemon, looking again up to tries times when the
// process found exits before it is held.
func findDaemon(path string, tries int) (*Daemon, error) {
	file, named, err := examinePidfile(path)
	if err != nil {
		return nil, err
	}
	lock, err := examine(LockFile(path))
	if errors.Is(err, fs.ErrNotExist) {
		if file == nil {
			return nil, &fs.PathError{Op: "lstat", Path: path, Err: unix.ENOENT}
		}
		return nil, &PidfileError{Path: path, PID: named, Err: ErrNotRunning}
	}
	if err != nil {
		return nil, notPidfile(path, err)
	}
	lockPath, lockDev, lockIno := LockFile(path), uint64(lock.Dev), uint64(lock.Ino) // int32 Dev on some systems
	// Most often the pid the file names holds the lock: no scan of every
	// process. Otherwise the scan decides.
	pid := 0
	if named > 1 && named != os.Getpid() && holds(lockPath, named, lockDev, lockIno) {
		pid = named
	}
	var holders []int
	if pid == 0 {
		var hidden bool
		holders, hidden = lockHolders(lockPath, lockDev, lockIno)
		candidates := slices.DeleteFunc(slices.Clone(holders), func(p int) bool { return p <= 1 || p == os.Getpid() })
		switch {
		case len(holders) == 0 && (hidden || lockedInProc(lockPath, lockDev, lockIno)):
			return nil, &PidfileError{Path: path, PID: named, Err: ErrHolderHidden}
		case len(holders) == 0 && file == nil:
			// A lock file a stop or a failed removal left, and no pidfile.
			return nil, &fs.PathError{Op: "lstat", Path: path, Err: unix.ENOENT}
		case len(holders) == 0:
			return nil, &PidfileError{Path: path, PID: named, Err: ErrNotRunning}
		case slices.Contains(candidates, named):
			pid = named
		case len(candidates) == 1:
			pid = candidates[0]
		default:
			return nil, &PidfileError{Path: path, PID: named, Holders: holders, Err: ErrNotHolder}
		}
	}
	// A pid can be reused between the scan and pidfd_open: open the pidfd
	// first, then check the process it names holds the lock and is still
	// alive (so the pid was not reused between the two).
	fd, err := openProcess(pid)
	if err == nil {
		d := &Daemon{PID: pid, Named: named, Pidfile: path, pidfd: fd, dev: lockDev, ino: lockIno, file: file}
		if holds(lockPath, pid, lockDev, lockIno) && !d.exited(0) {
			return d, nil
		}
		d.Close()
	} else if !errors.Is(err, unix.ESRCH) {
		return nil, &PidfileError{Path: path, PID: named, Holders: holders, Err: err}
	}
	if tries > 1 {
		return findDaemon(path, tries-1) // it exited meanwhile: look again
	}
	return nil, &PidfileError{Path: path, PID: named, Err: ErrNotRunning}
}

// examinePidfile looks at the pidfile: nil if there is none, else its
// identity and the pid it names (0 if none).
func examinePidfile(path string) (*unix.Stat_t, int, error) {
	st, err := examine(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, notPidfile(path, err)
	}
	named, err := readPid(path, st)
	if err != nil {
		return nil, 0, err
	}
	return st, named, nil
}

// errNotRegular: examine found a file cdaemon never locks.
var errNotRegular = errors.New("not regular")

// examine lstats path: an *fs.PathError, errNotRegular if it is not a
// regular file with a single name, else its identity.
func examine(path string) (*unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink != 1 {
		return nil, errNotRegular
	}
	return &st, nil
}

// notPidfile is the error for what examine found wrong at path, a
// pidfile or its lock file.
func notPidfile(pidfile string, err error) error {
	if !errors.Is(err, errNotRegular) {
		return err
	}
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path != pidfile {
		return &PidfileError{Path: pidfile, Err: fmt.Errorf("its lock file %s is %w", pe.Path, ErrNotPidfile)}
	}
	return &PidfileError{Path: pidfile, Err: ErrNotPidfile}
}

// readPid reads the pid a pidfile names: decimal digits and a newline, or
// 0 if it holds anything else. It reads the file it examined (st), without
// following a link or blocking on a FIFO swapped in meanwhile.
func readPid(path string, st *unix.Stat_t) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return 0, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil || now.Dev != st.Dev || now.Ino != st.Ino {
		return 0, &fs.PathError{Op: "open", Path: path, Err: errors.New("replaced while being read")}
	}
	buf := make([]byte, 32)
	n, err := unix.Pread(fd, buf, 0)
	if err != nil {
		return 0, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	s := strings.TrimSuffix(string(buf[:max(n, 0)]), "\n")
	pid, err := strconv.Atoi(s)
	if err != nil || pid <= 0 || s[0] == '+' {
		return 0, nil
	}
	return pid, nil
}

// Signal sends sig to the daemon. It fails with ErrNotRunning (in a
// *PidfileError) if the daemon has exited since FindDaemon found it, and
// with an *os.SyscallError for other errors, such as EPERM when the caller
// may not signal it.
func (d *Daemon) Signal(sig syscall.Signal) error {
	err := signalProcess(d.pidfd, sig)
	if errors.Is(err, unix.ESRCH) {
		return &PidfileError{Path: d.Pidfile, PID: d.PID, Err: ErrNotRunning}
	}
	if err != nil {
		return os.NewSyscallError(signalCall+" "+sig.String(), err)
	}
	return nil
}

// Stop stops the daemon: it sends sig (SIGTERM if 0), waits up to timeout
// for the daemon to exit, sends SIGKILL if it has not and waits for the
// exit again (timeout, but at least 10 s: SIGKILL cannot be caught, only
// delayed by a loaded machine). Then it waits, within timeout, until no
// process holds the lock, takes the lock itself and, holding it, removes
// the pidfile if the path still names the file FindDaemon found, then the
// lock file if its path still names the file locked. A new daemon that
// took the files over once this one was gone (a supervisor restarted it)
// is neither waited for nor signalled, and keeps them. killed reports
// that SIGKILL was needed. A daemon that has already exited counts as
// stopped. What the pidfile names plays no part: a process it names that
// is not the daemon is never signalled.
//
// Stop signals only the daemon. It fails with:
//   - an *os.SyscallError if a signal cannot be sent (EPERM);
//   - ErrStillLocked, with the holders, if the daemon exited but other
//     processes still hold the lock (children it forked without exec);
//   - an error saying the daemon survived SIGKILL (a process stuck in the
//     kernel);
//   - an *fs.PathError if the pidfile or the lock file cannot be removed.
func (d *Daemon) Stop(sig syscall.Signal, timeout time.Duration) (killed bool, err error) {
	if sig == 0 {
		sig = unix.SIGTERM
	}
	if err := d.Signal(sig); err != nil && !errors.Is(err, ErrNotRunning) {
		return false, err
	}
	if !d.exited(timeout) {
		killed = true
		if err := d.Signal(unix.SIGKILL); err != nil && !errors.Is(err, ErrNotRunning) {
			return true, err
		}
		// SIGKILL cannot be caught; on a loaded machine the exit can
		// still take a moment, so the wait is not the caller's timeout.
		if !d.exited(max(timeout, killWait)) {
			return true, &PidfileError{Path: d.Pidfile, PID: d.PID,
				Err: fmt.Errorf("pid %d survived SIGKILL for %v", d.PID, max(timeout, killWait))}
		}
	}
	// The daemon is gone; a launcher still waiting for it exits on its
	// own, a child that inherited the lock may not. A new daemon that took
	// the files over (a supervisor restarted it) is not ours to wait for.
	// Most often the lock was the daemon's alone: taking it ourselves
	// says so at once, and the files are removed under it; only a lock
	// still held sends us looking through every process's descriptors.
	deadline := time.Now().Add(timeout)
	want := fileID(d.dev, d.ino)
	for pause := time.Millisecond; ; pause = min(2*pause, 100*time.Millisecond) {
		_, err := removeUnlocked(d.Pidfile, want, d.file)
		if errors.Is(err, ErrNotPidfile) {
			return killed, nil // another lock file at the path now
		}
		if !errors.Is(err, ErrLocked) {
			return killed, err // removed, or it could not be
		}
		holders, _ := lockHolders(LockFile(d.Pidfile), d.dev, d.ino)
		if len(holders) == 0 {
			return killed, nil // held where we cannot see: not ours to remove
		}
		if st, err := examine(d.Pidfile); err == nil {
			named, _ := readPid(d.Pidfile, st)
			if named != d.PID && slices.Contains(holders, named) {
				return killed, nil
			}
		}
		if time.Now().After(deadline) {
			return killed, &PidfileError{Path: d.Pidfile, PID: d.PID, Holders: holders, Err: ErrStillLocked}
		}
		time.Sleep(pause)
	}
}

// killWait is how long Stop waits for a process to exit after SIGKILL.
const killWait = 10 * time.Second

// RemoveStalePidfile removes the pidfile at path and its lock file if no
// process holds the lock: what a daemon that exited leaves behind. It
// takes the lock itself while it removes them (creating the lock file,
// mode 0600, if a pidfile has none), so a start that tries to take the
// files over meanwhile is refused as already running (and the next one
// creates new files), and it never removes a file a daemon holds. removed
// is false if there was no file. It fails with:
//   - ErrLocked (in a *PidfileError) if a process holds the lock;
//   - ErrNotPidfile if the pidfile or the lock file is a symbolic link,
//     not a regular file, or a file with other names (hard links);
//   - an *fs.PathError if a file cannot be opened, locked or removed.
func RemoveStalePidfile(path string) (removed bool, err error) {
	file, err := examine(path)
	if errors.Is(err, fs.ErrNotExist) {
		file = nil
	} else if err != nil {
		return false, notPidfile(path, err)
	}
	return removeUnlocked(path, nil, file)
}

// removeUnlocked removes the pidfile path and its lock file, holding the
// lock: the pidfile if it is still file (none if nil), the lock file if it
// is want (dev and inode; any regular file if nil, and then one is made if
// there is none and file is not nil).
func removeUnlocked(path string, want, file *unix.Stat_t) (bool, error) {
	lock := LockFile(path)
	const flags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC | unix.O_NOCTTY
	fd, err := unix.Open(lock, flags, 0)
	if err == unix.ENOENT && want == nil && file != nil {
		fd, err = unix.Open(lock, flags|unix.O_CREAT|unix.O_EXCL, 0o600)
		if err == unix.EEXIST {
			fd, err = unix.Open(lock, flags, 0)
		}
	}
	if err == unix.ENOENT {
		return false, nil
	}
	if err == unix.ELOOP {
		return false, notPidfile(path, &fs.PathError{Op: "open", Path: lock, Err: errNotRegular})
	}
	if err != nil {
		return false, &fs.PathError{Op: "open", Path: lock, Err: err}
	}
	defer unix.Close(fd)
	var st, now unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, &fs.PathError{Op: "fstat", Path: lock, Err: err}
	}
	same := func(a, b *unix.Stat_t) bool { return a.Dev == b.Dev && a.Ino == b.Ino }
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink != 1 || (want != nil && !same(&st, want)) {
		return false, notPidfile(path, &fs.PathError{Op: "open", Path: lock, Err: errNotRegular})
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err == unix.EWOULDBLOCK {
		return false, &PidfileError{Path: path, Err: ErrLocked}
	} else if err != nil {
		return false, &fs.PathError{Op: "flock", Path: lock, Err: err}
	}
	if unix.Lstat(lock, &now) != nil || !same(&now, &st) {
		return false, nil // removed or replaced meanwhile
	}
	// The pidfile first, then the lock: a start that comes between finds
	// the lock file gone or held, never a pidfile without its lock.
	removed := false
	if file != nil && unix.Lstat(path, &now) == nil && same(&now, file) {
		if err := unix.Unlink(path); err != nil && err != unix.ENOENT {
			return false, &fs.PathError{Op: "remove", Path: path, Err: err}
		}
		removed = true
	}
	if err := unix.Unlink(lock); err != nil && err != unix.ENOENT {
		return removed, &fs.PathError{Op: "remove", Path: lock, Err: err}
	}
	return true, nil
}

// fileID is a Stat_t that holds only a file's identity, for removeUnlocked.
func fileID(dev, ino uint64) *unix.Stat_t {
	var st unix.Stat_t
	setTo(&st.Dev, dev)
	setTo(&st.Ino, ino)
	return &st
}

// setTo stores v in a field whose integer type differs by system.
func setTo[T ~int32 | ~uint32 | ~int64 | ~uint64](field *T, v uint64) { *field = T(v) }
