// Command cdaemon is the heartbeat daemon of the reference text, made real:
// it appends one timestamp line per interval to a file.
//
//	go run ./cdaemon -out /tmp/heartbeat.log
//	tail -f /tmp/heartbeat.log
//
// Importing package cdaemon makes it a daemon before main runs. It checks
// its flags and opens the file, then calls cdaemon.Ready; it makes "ready"
// its default wait point (wait.go), so a bad flag or path is reported on
// the terminal it was started from and the launcher exits 1. SIGTERM and
// SIGINT end it with status 0; SIGHUP reopens the file, for log rotation.
package main

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

func main() {
	fs := flag.NewFlagSet(filepath.Base(os.Args[0]), flag.ContinueOnError)
	out := fs.String("out", "", "`file` to append a timestamp line to (required)")
	interval := fs.Duration("interval", time.Second, "time between lines")
	if err := fs.Parse(os.Args[1:]); err != nil {
		cdaemon.Fail(err)
	}
	switch {
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
	if err := run(path, *interval); err != nil {
		cdaemon.Fail(err)
	}
}

func open(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
}

func run(path string, interval time.Duration) error {
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
			// Log rotation: the old file was moved away; start a new one.
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
