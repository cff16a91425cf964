//go:build linux

package cdaemon

import (
	"os"

	"golang.org/x/sys/unix"
)

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
	if err == unix.ECONNREFUSED && addr == state.notifySocket {
		// The launcher's socket, and the launcher is gone (killed while
		// it waited): nobody to tell, as EPIPE on the status pipe.
		return nil
	}
	if err != nil {
		return &os.SyscallError{Syscall: "cdaemon: notify " + addr, Err: err}
	}
	return nil
}
