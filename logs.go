//go:build linux

package cdaemon

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// reopenLogs implements ReopenLogs: open every file first, replace the
// descriptors only once all are open.
func reopenLogs() error {
	out, errPath := state.Stdout, state.Stderr
	for _, p := range []*string{&out, &errPath} {
		var err error
		if *p, err = inRoot(*p); err != nil {
			return err
		}
	}
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

// inRoot is path as the daemon reaches it. Under CDAEMON_CHROOT the paths
// recorded at start are outside the new root: one inside it is reached
// without the root's prefix; one outside it cannot be reached at all, and
// the same name inside the root would be another file.
func inRoot(path string) (string, error) {
	if state.Root == "" || path == "" {
		return path, nil
	}
	rel, err := filepath.Rel(state.Root, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", &fs.PathError{Op: "reopen", Path: path,
			Err: errors.New("outside CDAEMON_CHROOT " + state.Root + ", which the daemon cannot reach")}
	}
	return filepath.Join("/", rel), nil
}

// openLog opens a log file as the constructor does (files.c's
// open_target): write-only, appending, created with mode 0640 whatever the
// umask; never blocking on a FIFO with no reader; and, in a shared
// directory (one a uid other than ours and root owns, or that its group or
// others may write to), only a file that is the one it opens: a symbolic
// link is not followed, and a file someone else owns or with other names
// (hard links) is refused unless this call created it; a directory anyone
// may write to must be sticky. The descriptor is above 2 and close-on-exec;
// created reports that the file did not exist.
func openLog(path string) (fd int, created bool, err error) {
	refuse := func(why string) (int, bool, error) {
		return -1, false, &fs.PathError{Op: "reopen", Path: path, Err: errors.New("refusing: " + why)}
	}
	var dir unix.Stat_t
	if unix.Stat(filepath.Dir(path), &dir) != nil {
		dir = unix.Stat_t{} // the open below says why
	}
	why, shared := sharedDir(&dir)
	if dir.Mode&unix.S_IWOTH != 0 && dir.Mode&unix.S_ISVTX == 0 {
		return refuse("its directory is writable by anyone and not sticky, so anyone could replace the file")
	}
	flags := unix.O_WRONLY | unix.O_APPEND | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK
	if shared {
		flags |= unix.O_NOFOLLOW
	}
	fd, err = unix.Open(path, flags|unix.O_CREAT|unix.O_EXCL, 0o640)
	created = err == nil
	if err == unix.EEXIST {
		fd, err = unix.Open(path, flags, 0)
	}
	switch {
	case err == unix.ENXIO:
		err = errors.New("a FIFO with no reader")
	case err == unix.ELOOP && shared:
		return refuse("it is a symbolic link, in " + why)
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
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fail(err)
	}
	if shared && !created && st.Mode&unix.S_IFMT == unix.S_IFREG {
		if int(st.Uid) != unix.Geteuid() {
			unix.Close(fd)
			return refuse(fmt.Sprintf("owned by uid %d, in %s", st.Uid, why))
		}
		if st.Nlink != 1 {
			unix.Close(fd)
			return refuse(fmt.Sprintf("it has %d hard links (other names for the same file), in %s", st.Nlink, why))
		}
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

// sharedDir reports whether a directory is shared, as cdaemon.c's
// shared_dir decides: a uid other than the euid and root owns it, or its
// group or others may write to it; why names who, for a refusal.
func sharedDir(dir *unix.Stat_t) (why string, shared bool) {
	switch euid := uint32(unix.Geteuid()); {
	case dir.Mode&unix.S_IWOTH != 0:
		return "a directory anyone can write to", true
	case dir.Uid != euid && dir.Uid != 0:
		return fmt.Sprintf("a directory owned by uid %d", dir.Uid), true
	case dir.Mode&unix.S_IWGRP != 0:
		return fmt.Sprintf("a directory group %d can write to", dir.Gid), true
	}
	return "", false
}
