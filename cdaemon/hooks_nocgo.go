//go:build !cgo

package main

// hooks.go without cgo, where it drops out of the build (it is C, and so
// is the constructor it answers): nothing daemonizes, so there is nothing
// for cdaemon_wanted to decline and no launcher for cdaemon_default_wait
// to hold. Every command runs in the foreground, heartbeat too (SIGTERM or
// Ctrl-C ends it); status, stop and reload work as with cgo (they are Go).
// The difference a user sees: with no hook to decline them, a CDAEMON_*
// setting in the environment stops every command with status 69, and
// plain auto prints package cdaemon's line naming cgo on Linux (set
// CDAEMON=off to say the foreground is meant). "cdaemon heartbeat -h"
// still stays quiet: package cdaemon's own help rule declines it.

// daemonizes reports whether this build can daemonize the heartbeat.
const daemonizes = false
