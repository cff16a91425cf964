package main

// status, stop and reload: thin over cdaemon.FindDaemon, mapping its
// outcomes to LSB exit statuses. They act on the process that holds the
// daemon's lock, whatever pid the pidfile names.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cdaemon/cdaemon"
)

func cmdStatus(args []string, stdout io.Writer) (int, error) {
	path, err := parse(flag.NewFlagSet("status", flag.ContinueOnError), args, stdout)
	if err != nil {
		return 0, err
	}
	d, err := cdaemon.FindDaemon(path)
	switch {
	case err == nil:
		defer d.Close()
		switch {
		case d.Named == d.PID:
			fmt.Fprintf(stdout, "%s: running, pid %d\n", path, d.PID)
		case d.Named == 0:
			fmt.Fprintf(stdout, "%s: running, pid %d, which holds its lock (the pidfile names no pid)\n", path, d.PID)
		default:
			fmt.Fprintf(stdout, "%s: running, pid %d, which holds its lock (the pidfile names pid %d)\n", path, d.PID, d.Named)
		}
		return exitOK, nil
	case errors.Is(err, fs.ErrNotExist):
		fmt.Fprintf(stdout, "%s: not running (no pidfile)\n", path)
		return exitNotRunning, nil
	case errors.Is(err, cdaemon.ErrNotRunning):
		fmt.Fprintf(stdout, "%s: not running, but the pidfile is left (no process holds its lock)\n", path)
		return exitDeadPid, nil
	}
	return exitUnknown, fmt.Errorf("status unknown: %w", err)
}

func cmdStop(args []string, stdout io.Writer) (int, error) {
	flags := flag.NewFlagSet("stop", flag.ContinueOnError)
	timeout := flags.Duration("timeout", 10*time.Second, "how long to wait for the daemon to exit before SIGKILL, and after it")
	sigName := flags.String("signal", "TERM", "the `signal` that asks the daemon to stop: a name (TERM, SIGINT) or a number")
	path, err := parse(flags, args, stdout)
	if err != nil {
		return 0, err
	}
	sig, err := parseSignal(*sigName)
	if err != nil {
		return 0, err
	}
	if *timeout <= 0 {
		return 0, usageError("-timeout %v: want a positive duration, such as 10s", *timeout)
	}
	d, err := cdaemon.FindDaemon(path)
	if errors.Is(err, cdaemon.ErrNotRunning) || errors.Is(err, fs.ErrNotExist) {
		removed, rerr := cdaemon.RemoveStalePidfile(path)
		if rerr != nil {
			return exitFailed, rerr
		}
		if removed {
			fmt.Fprintf(stdout, "%s: not running; removed the stale pidfile\n", path)
		} else {
			fmt.Fprintf(stdout, "%s: not running\n", path)
		}
		return exitOK, nil
	}
	if err != nil {
		return actionStatus(err), err
	}
	defer d.Close()
	killed, err := d.Stop(sig, *timeout)
	if err != nil {
		return actionStatus(err), err
	}
	if killed {
		fmt.Fprintf(stdout, "%s: pid %d did not exit within %v of %s: killed it (SIGKILL)\n", path, d.PID, *timeout, signalName(sig))
	} else {
		fmt.Fprintf(stdout, "%s: stopped pid %d\n", path, d.PID)
	}
	return exitOK, nil
}

func cmdReload(args []string, stdout io.Writer) (int, error) {
	path, err := parse(flag.NewFlagSet("reload", flag.ContinueOnError), args, stdout)
	if err != nil {
		return 0, err
	}
	d, err := cdaemon.FindDaemon(path)
	if err == nil {
		defer d.Close()
		err = d.Signal(syscall.SIGHUP)
	}
	switch {
	case err == nil:
		fmt.Fprintf(stdout, "%s: sent SIGHUP to pid %d\n", path, d.PID)
		return exitOK, nil
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, cdaemon.ErrNotRunning):
		return exitStopped, fmt.Errorf("%s: not running: %w", path, err)
	}
	return actionStatus(err), err
}

// actionStatus is an action's LSB status for an error: 4 for what the
// caller's privileges decide, 1 for the rest.
func actionStatus(err error) int {
	if errors.Is(err, cdaemon.ErrHolderHidden) || errors.Is(err, syscall.EPERM) || errors.Is(err, fs.ErrPermission) {
		return exitUnknown
	}
	return exitFailed
}

// parseSignal accepts TERM, SIGTERM, sigterm or 15.
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 64 {
			return 0, usageError("-signal %s: want a signal number from 1 to 64", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := signalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, usageError("-signal %q: unknown signal; want a name such as TERM, INT or SIGQUIT, or a number", s)
}

func signalName(sig syscall.Signal) string {
	if name := signalNameOf(sig); name != "" {
		return name
	}
	return "signal " + strconv.Itoa(int(sig))
}
