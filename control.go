//go:build linux

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
	"bufio"
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
// lock on a pidfile's lock file. It is held by a pidfd, so Signal and Stop
// reach that process or none, even once its pid is reused. Close releases
// it.
type Daemon struct {
	PID     int    // its pid: the process that holds the lock
	Named   int    // the pid the pidfile names (0: none); PID unless the file was rewritten
	Pidfile string // the pidfile it was found by, as given to FindDaemon

	pidfd    int
	dev, ino uint64       // the lock file's identity when it was found
	file     *unix.Stat_t // the pidfile's when it was found, or nil
}

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
	// Most often the pid the file names holds the lock: no scan of every
	// process. Otherwise the scan decides.
	pid := 0
	if named > 1 && named != os.Getpid() && holds(named, lock.Dev, lock.Ino) {
		pid = named
	}
	var holders []int
	if pid == 0 {
		var hidden bool
		holders, hidden = lockHolders(lock.Dev, lock.Ino)
		candidates := slices.DeleteFunc(slices.Clone(holders), func(p int) bool { return p <= 1 || p == os.Getpid() })
		switch {
		case len(holders) == 0 && (hidden || lockedInProc(lock.Dev, lock.Ino)):
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
	fd, err := unix.PidfdOpen(pid, 0)
	if err == nil {
		d := &Daemon{PID: pid, Named: named, Pidfile: path, pidfd: fd, dev: lock.Dev, ino: lock.Ino, file: file}
		if holds(pid, lock.Dev, lock.Ino) && !d.exited(0) {
			return d, nil
		}
		d.Close()
	} else if !errors.Is(err, unix.ESRCH) {
		return nil, &PidfileError{Path: path, PID: named, Holders: holders, Err: os.NewSyscallError("pidfd_open", err)}
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

// lockHolders lists the processes that hold a flock on the file dev:ino,
// from /proc/PID/fdinfo; hidden reports that some process's descriptors
// could not be read (another user's, without privilege).
func lockHolders(dev, ino uint64) (holders []int, hidden bool) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		h, err := holdsErr(pid, dev, ino)
		if h {
			holders = append(holders, pid)
		}
		hidden = hidden || errors.Is(err, fs.ErrPermission)
	}
	return holders, hidden
}

// holds reports whether process pid holds a flock on the file dev:ino.
func holds(pid int, dev, ino uint64) bool {
	h, _ := holdsErr(pid, dev, ino)
	return h
}

func holdsErr(pid int, dev, ino uint64) (bool, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	ents, err := os.ReadDir(dir + "/fd")
	if err != nil {
		return false, err
	}
	for _, e := range ents {
		var st unix.Stat_t
		if unix.Stat(dir+"/fd/"+e.Name(), &st) != nil || st.Dev != dev || st.Ino != ino {
			continue
		}
		info, err := os.ReadFile(dir + "/fdinfo/" + e.Name())
		if err != nil {
			continue // closed meanwhile
		}
		for _, line := range strings.Split(string(info), "\n") {
			// lock:	1: FLOCK  ADVISORY  WRITE 4242 fe:00:9977989 0 EOF
			if strings.HasPrefix(line, "lock:") && strings.Contains(line, " FLOCK ") {
				return true, nil
			}
		}
	}
	return false, nil
}

// lockedInProc reports whether /proc/locks shows a flock on dev:ino. It
// lists every lock in the system, whoever holds it, but names only the
// process that took it (the launcher, long gone), so it tells only whether
// the file is locked.
func lockedInProc(dev, ino uint64) bool {
	f, err := os.Open("/proc/locks")
	if err != nil {
		return false
	}
	defer f.Close()
	// 1: FLOCK  ADVISORY  WRITE 4242 fe:00:9977989 0 EOF
	want := fmt.Sprintf(" %02x:%02x:%d ", unix.Major(dev), unix.Minor(dev), ino)
	s := bufio.NewScanner(f)
	for s.Scan() {
		if line := s.Text(); strings.Contains(line, " FLOCK ") && strings.Contains(line, want) {
			return true
		}
	}
	return false
}

// Signal sends sig to the daemon. It fails with ErrNotRunning (in a
// *PidfileError) if the daemon has exited since FindDaemon found it, and
// with an *os.SyscallError for other errors, such as EPERM when the caller
// may not signal it.
func (d *Daemon) Signal(sig syscall.Signal) error {
	err := unix.PidfdSendSignal(d.pidfd, sig, nil, 0)
	if errors.Is(err, unix.ESRCH) {
		return &PidfileError{Path: d.Pidfile, PID: d.PID, Err: ErrNotRunning}
	}
	if err != nil {
		return os.NewSyscallError("pidfd_send_signal "+sig.String(), err)
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
	want := &unix.Stat_t{Dev: d.dev, Ino: d.ino}
	for pause := time.Millisecond; ; pause = min(2*pause, 100*time.Millisecond) {
		_, err := removeUnlocked(d.Pidfile, want, d.file)
		if errors.Is(err, ErrNotPidfile) {
			return killed, nil // another lock file at the path now
		}
		if !errors.Is(err, ErrLocked) {
			return killed, err // removed, or it could not be
		}
		holders, _ := lockHolders(d.dev, d.ino)
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

// exited waits up to timeout for the daemon to exit and reports whether it
// has (a zombie has: it holds no descriptor any more).
func (d *Daemon) exited(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		ms := max(time.Until(deadline).Milliseconds(), 0)
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(d.pidfd), Events: unix.POLLIN}}, int(min(ms, 1<<30)))
		if n > 0 {
			return true
		}
		if err != nil && err != unix.EINTR {
			return false
		}
		if err == nil && ms == 0 {
			return false
		}
	}
}

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

// Close releases the daemon's pidfd. The Daemon must not be used after.
func (d *Daemon) Close() error {
	if d.pidfd < 0 {
		return nil
	}
	err := unix.Close(d.pidfd)
	d.pidfd = -1
	return err
}
