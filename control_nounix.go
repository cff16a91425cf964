//go:build (!unix || aix) && !plan9

package cdaemon

// Without flock (Windows, WebAssembly, AIX) there is no pidfile lock to find
// a daemon by: every call says so.

import (
	"errors"
	"syscall"
	"time"
)

// FindDaemon is unsupported here: errors.ErrUnsupported, in a *PidfileError.
func FindDaemon(path string) (*Daemon, error) {
	return nil, &PidfileError{Path: path, Err: errors.ErrUnsupported}
}

// RemoveStalePidfile is unsupported here: errors.ErrUnsupported, in a
// *PidfileError.
func RemoveStalePidfile(path string) (removed bool, err error) {
	return false, &PidfileError{Path: path, Err: errors.ErrUnsupported}
}

// Signal is unsupported here (no Daemon is ever found).
func (d *Daemon) Signal(sig syscall.Signal) error {
	return &PidfileError{Path: d.Pidfile, PID: d.PID, Err: errors.ErrUnsupported}
}

// Stop is unsupported here (no Daemon is ever found).
func (d *Daemon) Stop(sig syscall.Signal, timeout time.Duration) (killed bool, err error) {
	return false, d.Signal(sig)
}

// Close releases the daemon.
func (d *Daemon) Close() error { return nil }

// fileStat is what identifies a file: nothing, here.
type fileStat struct{}
