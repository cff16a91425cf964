//go:build !benchnaive

package main

import (
	"os"

	"github.com/cdaemon/cdaemon"
)

// checkDaemonized says what is wrong if cdaemon did not do what CDAEMON asked.
func checkDaemonized() string {
	if cdaemon.Daemonized() == (os.Getenv("CDAEMON") == "off") {
		return "cdaemon: unexpected state: " + cdaemon.Info().Reason
	}
	return ""
}

func ready() error { return cdaemon.Ready() }

// entry is CLOCK_MONOTONIC at the constructor's entry, in ns.
func entry() int64 { return int64(cdaemon.Info().Entry) }
