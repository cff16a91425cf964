package cdaemon

// What control.go needs of Linux: who holds a lock (/proc/PID/fdinfo),
// and processes held by a pidfd, so a reused pid is never signalled.
// control_other.go does without both, less surely.

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// openProcess opens a pidfd on pid (ESRCH: no such process).
func openProcess(pid int) (int, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil && err != unix.ESRCH {
		return -1, os.NewSyscallError("pidfd_open", err)
	}
	return fd, err
}

// signalProcess sends sig to the process of pidfd fd (ESRCH: it exited).
func signalProcess(fd int, sig syscall.Signal) error {
	return unix.PidfdSendSignal(fd, sig, nil, 0)
}

// signalCall names the call signalProcess makes, for errors.
const signalCall = "pidfd_send_signal"

// lockHolders lists the processes that hold a flock on the file dev:ino,
// from /proc/PID/fdinfo; hidden reports that some process's descriptors
// could not be read (another user's, without privilege).
func lockHolders(_ string, dev, ino uint64) (holders []int, hidden bool) {
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
func holds(_ string, pid int, dev, ino uint64) bool {
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
		if unix.Stat(dir+"/fd/"+e.Name(), &st) != nil || uint64(st.Dev) != dev || st.Ino != ino {
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
func lockedInProc(_ string, dev, ino uint64) bool {
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

// Close releases the daemon's pidfd. The Daemon must not be used after.
func (d *Daemon) Close() error {
	if d.pidfd < 0 {
		return nil
	}
	err := unix.Close(d.pidfd)
	d.pidfd = -1
	return err
}
