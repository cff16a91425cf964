//go:build benchnaive

package main

/*
extern long long bench_naive_entry;
*/
import "C"

import (
	"os"

	"golang.org/x/sys/unix"
)

// checkDaemonized: the naive recipe always daemonizes; a session leader
// here means its second fork did not happen.
func checkDaemonized() string {
	if sid, _ := unix.Getsid(0); sid == os.Getpid() {
		return "naive: the daemon is a session leader"
	}
	return ""
}

func ready() error { return nil }

func entry() int64 { return int64(C.bench_naive_entry) }
