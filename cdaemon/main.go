// Command cdaemon runs beside any daemon that uses package cdaemon: it
// reports on it, stops it and tells it to reload, by its pidfile, acting
// only on the process that holds the pidfile's lock (see
// cdaemon.FindDaemon). And it runs the reference text's heartbeat daemon.
//
//	cdaemon status PIDFILE
//	cdaemon stop [-timeout D] [-signal SIG] PIDFILE
//	cdaemon reload PIDFILE
//	cdaemon heartbeat -out FILE [-interval D]
//	cdaemon run [--] PROGRAM [ARGS...]
//
// run daemonizes any program (run.go): the C constructor forks as for a
// Go program and the daemon execs PROGRAM before the Go runtime starts.
//
// Only heartbeat and run daemonize (hooks.go); the others run in the foreground,
// and since the hook declines them, cdaemon takes nothing of a
// configuration in their environment: a CDAEMON_PIDFILE exported by an
// init script is left to the daemon. status, stop and reload are done
// before the Go runtime starts, in C (early.c), wherever that can give the
// same result as this Go code; everything else is left to it.
//
// status exits as LSB init scripts do: 0 running, 1 not running but the
// pidfile is left (the daemon died or exited without removing it), 3 not
// running (no pidfile), 4 unknown (the pidfile names a process that does
// not hold its lock, or the lock holder cannot be seen).
//
// stop sends SIGTERM (or -signal), waits up to -timeout (10s) for the
// daemon to exit, then sends SIGKILL and waits as long again, and removes
// the pidfile. It exits 0 when nothing runs for the pidfile afterwards,
// including when nothing ran (a stale pidfile is then removed); 1 if it
// could not stop it or the pidfile names a process that does not hold its
// lock; 4 if it may not signal the daemon or cannot see who holds the lock.
//
// reload sends SIGHUP: 0 sent, 7 not running, 4 not permitted or the lock
// holder cannot be seen, 1 other errors.
//
// A mistake in the command line (an unknown command or flag, a missing or
// extra argument, a bad signal or duration) exits 2 with a message naming
// it, as Go's flag package and LSB init scripts do; "cdaemon -h" and
// "cdaemon CMD -h" print the usage and exit 0. heartbeat reports its
// mistakes through its launcher, as every start failure: status 1.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

const usage = `usage:
  cdaemon status PIDFILE
  cdaemon stop [-timeout D] [-signal SIG] PIDFILE
  cdaemon reload PIDFILE
  cdaemon heartbeat -out FILE [-interval D]
  cdaemon run [--] PROGRAM [ARGS...]

status exits 0 running, 1 not running but a pidfile is left, 3 not
running, 4 unknown. stop exits 0 when nothing runs afterwards. reload
sends SIGHUP, 7 if not running. Command-line mistakes exit 2.
`

// Exit statuses of the commands (LSB init script actions and status).
const (
	exitOK         = 0
	exitFailed     = 1 // generic error
	exitUsage      = 2 // a mistake in the command line
	exitDeadPid    = 1 // status: not running, a pidfile is left
	exitNotRunning = 3 // status: not running
	exitUnknown    = 4 // status: unknown; actions: insufficient privilege
	exitStopped    = 7 // reload: not running
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage is a command-line mistake: its message goes with the usage.
type errUsage struct{ msg string }

func (e errUsage) Error() string { return e.msg }

func usageError(format string, args ...any) error {
	return errUsage{fmt.Sprintf(format, args...)}
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, "cdaemon: missing command\n"+usage)
		return exitUsage
	}
	cmd, args := args[0], args[1:]
	var status int
	var err error
	switch cmd {
	case "status":
		status, err = cmdStatus(args, stdout)
	case "stop":
		status, err = cmdStop(args, stdout)
	case "reload":
		status, err = cmdReload(args, stdout)
	case "heartbeat":
		cmdHeartbeat(args) // returns only after -h, in the foreground
		return exitOK
	case "run":
		status, err = cmdRun(args, stdout)
	case "-h", "-help", "--h", "--help", "help":
		fmt.Fprint(stdout, usage)
		if !daemonizes {
			fmt.Fprint(stdout, "\nThis build has no cgo: heartbeat runs in the foreground.\n")
		}
		return exitOK
	default:
		err = usageError("unknown command %q; want status, stop, reload, heartbeat or run", cmd)
	}
	var ue errUsage
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "cdaemon %s: %s\n%s", cmd, ue.msg, usage)
		return exitUsage
	case err != nil:
		fmt.Fprintf(stderr, "cdaemon %s: %v\n", cmd, err)
	}
	return status
}

// parse parses a command's flags and its one PIDFILE argument. For -h it
// prints the command's usage on stdout and returns flag.ErrHelp.
func parse(fs *flag.FlagSet, args []string, stdout io.Writer) (string, error) {
	fs.Init(fs.Name(), flag.ContinueOnError)
	fs.SetOutput(io.Discard) // run reports errors, with the usage
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stdout, "usage: cdaemon %s", fs.Name())
		fs.VisitAll(func(f *flag.Flag) {
			name, _ := flag.UnquoteUsage(f)
			fmt.Fprintf(stdout, " [-%s %s]", f.Name, name)
		})
		fmt.Fprintln(stdout, " PIDFILE")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return "", err
	}
	if err != nil {
		return "", usageError("%v", err)
	}
	switch {
	case fs.NArg() == 0:
		return "", usageError("missing PIDFILE")
	case fs.NArg() > 1:
		return "", usageError("unexpected argument %q after PIDFILE", fs.Arg(1))
	case fs.Arg(0) == "":
		return "", usageError("PIDFILE is empty")
	}
	return fs.Arg(0), nil
}
