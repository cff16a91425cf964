package cdaemon_test

import (
	"errors"
	"fmt"
	"log"
	"net"

	"github.com/cdaemon/cdaemon"
)

// Info tells what the constructor did before main. A go test binary, like
// this example's, runs in the foreground and Info says why; in a daemon
// Reason is empty and Dir is where the program was started (the daemon
// itself runs in /).
func ExampleInfo() {
	info := cdaemon.Info()
	fmt.Println("daemonized:", info.Daemonized)
	fmt.Println("reason:", info.Reason)
	fmt.Println("mode:", info.Mode, "wait:", info.Wait)
	// Output:
	// daemonized: false
	// reason: a go test binary
	// mode: auto wait: start
}

// Daemonized lets a program behave differently in the foreground, for
// example log with timestamps only when nobody watches a terminal.
func ExampleDaemonized() {
	if cdaemon.Daemonized() {
		log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	}
	fmt.Println("daemonized:", cdaemon.Daemonized())
	// Output: daemonized: false
}

// Ready releases a launcher started with CDAEMON_WAIT=ready: call it once
// the program can serve, so a client that runs right after the launcher
// returned connects at once. A failure before Ready goes to Fail, which
// the launcher prints on the user's terminal. In the foreground, Ready
// does nothing (but tell a service manager through NOTIFY_SOCKET).
func ExampleReady() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cdaemon.Fail(err)
	}
	defer ln.Close()
	if err := cdaemon.Ready(); err != nil {
		cdaemon.Fail(err)
	}
	fmt.Println("serving")
	// Output: serving
}

// Fail reports a start that cannot go on: the launcher prints the message
// and exits 1 (the program exits 1 too). Fail does not return.
func ExampleFail() {
	if _, err := net.Listen("tcp", "256.0.0.1:80"); err != nil {
		cdaemon.Fail(errors.New("cannot listen: " + err.Error()))
	}
}
