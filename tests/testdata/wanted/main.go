// Command wanted reports how the constructor decided for its arguments:
// it writes its pid, session and cdaemon.Info to $PROBE_REPORT as JSON,
// then, as a daemon, waits for SIGTERM; in the foreground it exits 0. It
// parses no flags, so -h or --version reach it as plain arguments. Built
// with -tags hook it defines cdaemon_wanted (hook.go).
package main

import (
	"encoding/json"
	"os"
	"os/signal"
	"syscall"

	"github.com/cdaemon/cdaemon"
	"golang.org/x/sys/unix"
)

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	b, err := json.Marshal(struct {
		PID, SID int
		Info     cdaemon.State
	}{os.Getpid(), sid(), cdaemon.Info()})
	if err == nil {
		err = os.WriteFile(os.Getenv("PROBE_REPORT"), b, 0o644)
	}
	if err != nil {
		cdaemon.Fail(err)
	}
	if cdaemon.Daemonized() {
		<-sigs
	}
}

func sid() int {
	s, _ := unix.Getsid(0)
	return s
}
