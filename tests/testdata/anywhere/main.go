// Command anywhere uses every function of package cdaemon's API, so that
// building it for a GOOS/GOARCH (.ci/run's cross-build step) proves the
// whole API compiles there. Run, it prints cdaemon.Info as JSON and, with
// a pidfile argument, what FindDaemon says of it.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/cdaemon/cdaemon"
)

func main() {
	if len(os.Args) > 1 {
		d, err := cdaemon.FindDaemon(os.Args[1])
		var pe *cdaemon.PidfileError
		switch {
		case err == nil:
			fmt.Println("running, pid", d.PID)
			if len(os.Args) > 2 && os.Args[2] == "stop" {
				_, err = d.Stop(syscall.SIGTERM, 10*time.Second)
				fmt.Println("stopped:", err)
			} else if len(os.Args) > 2 {
				fmt.Println("signalled:", d.Signal(syscall.SIGTERM))
			}
			d.Close()
		case errors.As(err, &pe):
			fmt.Println("not found:", pe.Err, pe.PID, pe.Holders)
		default:
			_, rerr := cdaemon.RemoveStalePidfile(os.Args[1])
			fmt.Println("not found:", err, rerr)
		}
		return
	}
	ls, err := cdaemon.Listeners()
	if err != nil || ls != nil {
		cdaemon.Fail(fmt.Errorf("listeners without CDAEMON_LISTEN: %v %v", ls, err))
	}
	if err := cdaemon.ReopenLogs(); err != nil {
		cdaemon.Fail(err)
	}
	if err := cdaemon.Ready(); err != nil {
		cdaemon.Fail(err)
	}
	b, _ := json.Marshal(struct {
		Daemonized bool
		Info       cdaemon.State
		Exit       []int
	}{cdaemon.Daemonized(), cdaemon.Info(), []int{cdaemon.ExitFail, cdaemon.ExitUsage,
		cdaemon.ExitNoUser, cdaemon.ExitUnavailable, cdaemon.ExitSoftware, cdaemon.ExitOSErr,
		cdaemon.ExitCantCreate, cdaemon.ExitTempFail, cdaemon.ExitNoPerm}})
	fmt.Println(string(b))
	_ = []error{cdaemon.ErrNotRunning, cdaemon.ErrNotHolder, cdaemon.ErrHolderHidden,
		cdaemon.ErrStillLocked, cdaemon.ErrLocked, cdaemon.ErrNotPidfile}
}
