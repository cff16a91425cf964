package cdaemon

// Plan 9 has notes, not signals: package syscall has no Signal type, so
// Daemon has no Signal or Stop method here, and no Daemon is ever found.

import "errors"

// FindDaemon is unsupported here: errors.ErrUnsupported, in a *PidfileError.
func FindDaemon(path string) (*Daemon, error) {
	return nil, &PidfileError{Path: path, Err: errors.ErrUnsupported}
}

// RemoveStalePidfile is unsupported here: errors.ErrUnsupported, in a
// *PidfileError.
func RemoveStalePidfile(path string) (removed bool, err error) {
	return false, &PidfileError{Path: path, Err: errors.ErrUnsupported}
}

// Close releases the daemon.
func (d *Daemon) Close() error { return nil }

// fileStat is what identifies a file: nothing, here.
type fileStat struct{}
