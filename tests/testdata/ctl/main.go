// Command ctl is the daemon the control tests stop, signal and rotate. It
// writes its pid, its session, cdaemon.Info and the pid of any child it
// started to $PROBE_REPORT as JSON, then serves signals until SIGTERM:
//
//	SIGHUP   cdaemon.ReopenLogs(); "reopened" or the error on stderr
//	SIGUSR1  one line "out N" on stdout and "err N" on stderr
//
// Flags make it misbehave the ways a pidfile's readers must survive.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/cdaemon/cdaemon"
	"golang.org/x/sys/unix"
)

func main() {
	ignoreTerm := flag.Bool("ignore-term", false, "ignore SIGTERM: only SIGKILL stops it")
	writePid := flag.Int("write-pid", 0, "write this `pid` into the pidfile, as a compromised daemon still running as root could")
	share := flag.Bool("share-lock", false, "start a child (sleep) that inherits the locked descriptor on the lock file and outlives the daemon")
	flag.Parse()

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGUSR1)
	if *ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
	}
	rep := struct {
		PID, SID, Child int
		Info            cdaemon.State
	}{PID: os.Getpid(), Info: cdaemon.Info()}
	rep.SID, _ = unix.Getsid(0)

	if *writePid != 0 || *share {
		pf := pidfileFD()
		if *writePid != 0 {
			// By its path: the locked descriptor is read-only (a daemon
			// that dropped its privileges cannot rewrite the file at
			// all); one that still runs as its launcher's user can.
			w, err := os.OpenFile(cdaemon.Info().Pidfile, os.O_WRONLY, 0)
			if err != nil {
				cdaemon.Fail(err)
			}
			b := []byte(strconv.Itoa(*writePid) + "\n")
			if _, err := w.WriteAt(b, 0); err != nil {
				cdaemon.Fail(err)
			}
			if err := w.Truncate(int64(len(b))); err != nil {
				cdaemon.Fail(err)
			}
			w.Close()
		}
		if *share {
			cmd := exec.Command("sleep", "1000")
			cmd.ExtraFiles = []*os.File{pf} // fd 3 in the child, same open file: same lock
			if err := cmd.Start(); err != nil {
				cdaemon.Fail(err)
			}
			rep.Child = cmd.Process.Pid
		}
	}
	b, err := json.Marshal(rep)
	if err == nil {
		err = os.WriteFile(os.Getenv("PROBE_REPORT"), b, 0o644)
	}
	if err != nil {
		cdaemon.Fail(err)
	}
	n := 0
	for sig := range sigs {
		switch sig {
		case syscall.SIGTERM:
			return
		case syscall.SIGHUP:
			if err := cdaemon.ReopenLogs(); err != nil {
				fmt.Fprintln(os.Stderr, "reopen failed:", err)
			} else {
				fmt.Fprintln(os.Stderr, "reopened")
			}
		case syscall.SIGUSR1:
			n++
			fmt.Printf("out %d\n", n)
			fmt.Fprintf(os.Stderr, "err %d\n", n)
		}
	}
}

// pidfileFD finds the descriptor the daemon keeps on its lock file.
func pidfileFD() *os.File {
	want := cdaemon.Info().Pidfile + ".lock"
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if target, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); target == want {
			fd, _ := strconv.Atoi(e.Name())
			return os.NewFile(uintptr(fd), want)
		}
	}
	cdaemon.Fail(fmt.Errorf("no descriptor on the lock file %s", want))
	return nil
}
