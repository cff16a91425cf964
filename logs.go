//go:build linux

package cdaemon

import (
	"errors"
	"io/fs"

	"golang.org/x/sys/unix"
)

// reopenLogs implements ReopenLogs: open every file first, replace the
// descriptors only once all are open.
func reopenLogs() error {
	out, errPath := state.Stdout, state.Stderr
	var fds [3]int // by target descriptor; 0: leave it
	defer func() {
		for _, fd := range fds[1:] {
			if fd > 0 {
				unix.Close(fd)
			}
		}
	}()
	var err error
	var created bool
	if out != "" {
		if fds[1], created, err = openLog(out); err != nil {
			return err
		}
	}
	if errPath != "" && errPath == out {
		// One open file for both, as at start: lines stay in order.
		if fds[2], err = unix.FcntlInt(uintptr(fds[1]), unix.F_DUPFD_CLOEXEC, 3); err != nil {
			fds[2] = 0
		}
	} else if errPath != "" {
		fds[2], _, err = openLog(errPath)
	}
	if err != nil {
		if created { // leave nothing behind
			unix.Unlink(out)
		}
		var pe *fs.PathError
		if !errors.As(err, &pe) {
			err = &fs.PathError{Op: "reopen", Path: errPath, Err: err}
		}
		return err
	}
	// dup3 onto an open descriptor fails only for EBUSY (a racing open in
	// another thread, which the Go runtime does not do on 1 and 2).
	for target, fd := range fds {
		if fd > 0 {
			if err := unix.Dup3(fd, target, 0); err != nil {
				return &fs.PathError{Op: "reopen", Path: map[int]string{1: out, 2: errPath}[target], Err: err}
			}
		}
	}
	return nil
}

// openLog opens a log file as the constructor does (cdaemon.c's
// open_stdio): write-only, appending, created with mode 0640 whatever the
// umask; never blocking on a FIFO with no reader. The descriptor is above
// 2 and close-on-exec; created reports that the file did not exist.
func openLog(path string) (fd int, created bool, err error) {
	const flags = unix.O_WRONLY | unix.O_APPEND | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK
	fd, err = unix.Open(path, flags|unix.O_CREAT|unix.O_EXCL, 0o640)
	created = err == nil
	if err == unix.EEXIST {
		fd, err = unix.Open(path, flags, 0)
	}
	if err == unix.ENXIO {
		err = errors.New("a FIFO with no reader")
	}
	if err != nil {
		return -1, false, &fs.PathError{Op: "reopen", Path: path, Err: err}
	}
	fail := func(err error) (int, bool, error) {
		unix.Close(fd)
		if created {
			unix.Unlink(path)
		}
		return -1, false, &fs.PathError{Op: "reopen", Path: path, Err: err}
	}
	if created {
		// O_CREAT's mode is masked by the umask the daemon runs with.
		if err := unix.Fchmod(fd, 0o640); err != nil {
			return fail(err)
		}
	}
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err == nil {
		_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl&^unix.O_NONBLOCK)
	}
	if err != nil {
		return fail(err)
	}
	if fd <= 2 { // stdio was closed: keep the new file off 0, 1 and 2
		nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
		if err != nil {
			return fail(err)
		}
		unix.Close(fd)
		fd = nfd
	}
	return fd, created, nil
}
