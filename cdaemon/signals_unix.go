//go:build unix

package main

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// signalNum is the signal named name ("SIGTERM"), or 0.
func signalNum(name string) syscall.Signal { return unix.SignalNum(name) }

// signalNameOf is sig's name ("SIGTERM"), or "".
func signalNameOf(sig syscall.Signal) string { return unix.SignalName(sig) }
