// Command notifygo is a Go server that reports readiness with
// github.com/coreos/go-systemd/v22/daemon.SdNotify, as many Go servers do,
// for the readiness tests. Built plainly it knows nothing of cdaemon (the
// tests run it under `cdaemon run`); built with -tags lib it imports
// package cdaemon, which daemonizes it (lib.go). The options are
// tests/testdata/notify/server.c's, in the same order:
//
//	-status TEXT, -extend USEC, -child MSG, -send MSG, -errno N, -exit N, -mainpid,
//	-wait-usr1, -port FILE, -touch FILE
//
// It exits 0 on SIGTERM.
package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/coreos/go-systemd/v22/daemon"
)

func notify(msg string) {
	ok, err := daemon.SdNotify(false, msg)
	if !ok || err != nil {
		fmt.Fprintf(os.Stderr, "notifygo: SdNotify(%q): %v %v\n", msg, ok, err)
		os.Exit(9)
	}
}

func main() {
	if msg := os.Getenv("NOTIFYGO_SEND"); msg != "" { // -child's child
		notify(msg)
		return
	}
	if os.Getenv("NOTIFYGO_MAIN") != "" {
		// -mainpid's child: go on once the parent sent MAINPID= and
		// exited, closing the pipe's other end.
		os.Unsetenv("NOTIFYGO_MAIN")
		f := os.NewFile(3, "mainpid")
		f.Read(make([]byte, 1))
		f.Close()
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	args := os.Args[1:]
	var portFile, touch string
	for i := 0; i < len(args); i++ {
		a, v := args[i], ""
		if i+1 < len(args) {
			v = args[i+1]
		}
		switch a {
		case "-status":
			notify("STATUS=" + v)
			i++
		case "-extend":
			notify("EXTEND_TIMEOUT_USEC=" + v)
			i++
		case "-child":
			c := exec.Command(os.Args[0])
			c.Env = append(os.Environ(), "NOTIFYGO_SEND="+v)
			c.Stderr = os.Stderr
			if err := c.Run(); err != nil {
				os.Exit(7)
			}
			notify("STATUS=child-sent")
			i++
		case "-send":
			notify(v)
			i++
		case "-errno":
			notify("ERRNO=" + v)
			<-term
			return
		case "-exit":
			n, _ := strconv.Atoi(v)
			os.Exit(n)
		case "-mainpid":
			// The rest of the arguments run in a child that becomes
			// the main process; this one reports it and exits.
			r, w, err := os.Pipe()
			if err != nil {
				os.Exit(7)
			}
			c := exec.Command(os.Args[0], args[i+1:]...)
			c.Env = append(os.Environ(), "NOTIFYGO_MAIN=1")
			c.Stderr = os.Stderr
			c.ExtraFiles = []*os.File{r}
			if err := c.Start(); err != nil {
				os.Exit(7)
			}
			notify("MAINPID=" + strconv.Itoa(c.Process.Pid))
			_ = w // closed by the exit
			os.Exit(0)
		case "-wait-usr1":
			notify("STATUS=loading")
			<-usr1
		case "-port":
			portFile = v
			i++
		case "-touch":
			touch = v
			i++
		default:
			fmt.Fprintln(os.Stderr, "notifygo: unknown option", a)
			os.Exit(2)
		}
	}
	var ln net.Listener
	if portFile != "" {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			os.Exit(6)
		}
		port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		if err := os.WriteFile(portFile, []byte(port), 0o644); err != nil {
			os.Exit(8)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				fmt.Fprintf(c, "ok %d\n", os.Getpid())
				c.Close()
			}
		}()
	}
	if touch != "" {
		if err := os.WriteFile(touch, nil, 0o644); err != nil {
			os.Exit(8)
		}
	}
	notify("READY=1")
	<-term
}
