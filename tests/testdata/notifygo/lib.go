//go:build lib

package main

// Built with -tags lib the server daemonizes itself through package
// cdaemon, whose launcher waits for its READY=1 with CDAEMON_WAIT=ready.
import _ "github.com/cdaemon/cdaemon"
