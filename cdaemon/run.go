package main

import (
	"fmt"
	"io"
)

const runUsage = `usage: cdaemon run [--] PROGRAM [ARGS...]

Runs PROGRAM (found in PATH as env(1) finds it) as a daemon, configured
by the CDAEMON_* variables as a program that imports package cdaemon is:
pidfile locked for its life, stdio, CDAEMON_USER and limits, CDAEMON_LISTEN
passed as LISTEN_FDS with LISTEN_PID naming PROGRAM's pid. The launcher
returns once PROGRAM was exec'd (CDAEMON_WAIT=start, the default) or once
it sent READY=1 to NOTIFY_SOCKET (CDAEMON_WAIT=ready). PROGRAM not found:
127; not executable or a directory: 126.
`

// cmdRun is reached only when the constructor did not run a program:
// "run" with nothing to run, with an option before PROGRAM, or in a
// binary whose constructor could not exec (it says so itself otherwise).
func cmdRun(args []string, stdout io.Writer) (int, error) {
	switch {
	case len(args) == 0, len(args) == 1 && args[0] == "--":
		return exitUsage, usageError("missing PROGRAM")
	case args[0] == "-h" || args[0] == "-help" || args[0] == "--help":
		fmt.Fprint(stdout, runUsage)
		return exitOK, nil
	case args[0] == "" || args[0] == "--" && args[1] == "":
		return exitUsage, usageError("PROGRAM is empty")
	case args[0][0] == '-' && args[0] != "--":
		return exitUsage, usageError("unknown option %q before PROGRAM; use -- before a PROGRAM that starts with -", args[0])
	}
	return exitFailed, fmt.Errorf("cdaemon's constructor did not run %q (built without cgo?)", args[len(args)-1])
}
