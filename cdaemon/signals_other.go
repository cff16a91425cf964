//go:build !unix

package main

import "syscall"

// Without Unix signals (Windows) the names are those package syscall
// defines; status, stop and reload find no daemon there anyway.
var signals = map[string]syscall.Signal{"SIGHUP": syscall.SIGHUP, "SIGINT": syscall.SIGINT,
	"SIGQUIT": syscall.SIGQUIT, "SIGKILL": syscall.SIGKILL, "SIGTERM": syscall.SIGTERM}

// signalNum is the signal named name ("SIGTERM"), or 0.
func signalNum(name string) syscall.Signal { return signals[name] }

// signalNameOf is sig's name ("SIGTERM"), or "".
func signalNameOf(sig syscall.Signal) string {
	for name, s := range signals {
		if s == sig {
			return name
		}
	}
	return ""
}
