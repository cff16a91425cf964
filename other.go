//go:build !linux

package cdaemon

// What logs.go, notify.go and nocgo_linux.go do on Linux, where there is
// nothing to do: no constructor opened a log, no systemd listens.

import "time"

// reopenLogs has no log to reopen: the program runs in the foreground.
func reopenLogs() error { return nil }

// notify has no service manager to tell.
func notify(msg string) error { return nil }

// monotonic is State.Entry: 0, there is no constructor to have started.
func monotonic() time.Duration { return 0 }
