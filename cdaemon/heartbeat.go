package main

// heartbeat: the reference text's example daemon, made real. It appends
// one `date +%F-%H%M%S` line per interval to -out (relative to where it
// was started). It checks its flags and opens the file, then calls
// cdaemon.Ready; "ready" is its default wait point (hooks.go), so a
// mistake is reported on the terminal it was started from and the
// launcher exits 1. SIGTERM and SIGINT end it with status 0; SIGHUP
// reopens -out and the log files (cdaemon.ReopenLogs), for log rotation.

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cdaemon/cdaemon"
)

// cmdHeartbeat runs the daemon; it returns only after -h, which the hook
// keeps in the foreground.
func cmdHeartbeat(args []string) {
	fs := flag.NewFlagSet("cdaemon heartbeat", flag.ContinueOnError)
	out := fs.String("out", "", "`file` to append a timestamp line to (required)")
	interval := fs.Duration("interval", time.Second, "time between lines")
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return
	case err != nil:
		cdaemon.Fail(err)
	case fs.NArg() > 0:
		cdaemon.Fail(fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	case *out == "":
		cdaemon.Fail(errors.New("-out is required: the file to append heartbeats to"))
	case *interval <= 0:
		cdaemon.Fail(fmt.Errorf("-interval %v: want a positive duration", *interval))
	}
	// The daemon runs in "/": resolve a relative path where it was given.
	path := *out
	if !filepath.IsAbs(path) {
		path = filepath.Join(cdaemon.Info().Dir, path)
	}
	if err := beat(path, *interval); err != nil {
		cdaemon.Fail(err)
	}
	os.Exit(0)
}

func open(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
}

func beat(path string, interval time.Duration) error {
	f, err := open(path)
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	if err := cdaemon.Ready(); err != nil {
		return err
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case now := <-tick.C:
			// The reference text's line: date +%F-%H%M%S
			if _, err := fmt.Fprintln(f, now.Format("2006-01-02-150405")); err != nil {
				fmt.Fprintf(os.Stderr, "heartbeat: %v\n", err)
			}
		case sig := <-sigs:
			if sig != syscall.SIGHUP {
				return f.Close()
			}
			// Log rotation: the old files were moved away; start new ones.
			if err := cdaemon.ReopenLogs(); err != nil {
				fmt.Fprintf(os.Stderr, "heartbeat: %v (keeping the old log)\n", err)
			}
			nf, err := open(path)
			if err != nil {
				fmt.Fprintf(os.Stderr, "heartbeat: reopen: %v (keeping the old file)\n", err)
				continue
			}
			f.Close()
			f = nf
		}
	}
}
