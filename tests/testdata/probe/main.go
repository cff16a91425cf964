// Command probe is the program the integration tests daemonize. It
// imports cdaemon, looks at itself from the inside once the daemon runs,
// writes what it saw as JSON to -report (default $PROBE_REPORT), and then
// behaves as asked: stay up until SIGTERM, fail, exit or panic before
// Ready, wait for SIGUSR1 before Ready, start a child, serve a socket.
package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cdaemon/cdaemon"
	"golang.org/x/sys/unix"
)

// Report is what the daemon saw of itself. The tests decode it with the
// same type (tests/report_test.go keeps a copy in sync).
type Report struct {
	PID, PPID, SID, PGRP int
	TTYNr, TPGID         int
	DevTTYErr            string // error opening /dev/tty ("" if it opened)
	PtyCTTY              bool   // opening a pty slave made it our terminal
	PtyErr               string
	FDs                  map[int]string // fd -> readlink target
	FDFlags              map[int]int    // fd -> F_GETFD flags
	Umask                int
	Cwd                  string
	SigIgn, SigBlk       string
	Env                  []string
	Info                 cdaemon.State
	Runtime              map[string]string // check -> "ok" or the error
	Now                  time.Duration     // CLOCK_MONOTONIC when the report was made
	StartSigBlk          uint64            // blocked signals before the Go runtime started
	StartSigIgn          uint64            // ignored signals before the Go runtime started
	Rseq                 int               // main thread's rseq: 1 registered, 0 not, -1 no rseq in libc
	Setuid0              string            // error of setuid(0) on one thread ("" if it worked)
	Listeners            []string          // -serve-listeners: the listeners' addresses
	ListenersErr         string            // -serve-listeners: Listeners' error
	ListenersTwice       bool              // a second Listeners call returned the same listeners
	Activation           []string          // -activation: "name addr" of each socket found
}

func main() {
	report := flag.String("report", os.Getenv("PROBE_REPORT"), "write the self-report to this `file`")
	ready := flag.Bool("ready", false, "call cdaemon.Ready (twice: it is idempotent) after the report")
	exitAfterReady := flag.Bool("exit-after-ready", false, "exit 0 after Ready instead of waiting for SIGTERM")
	waitUSR1 := flag.Bool("wait-usr1", false, "wait for SIGUSR1 before Ready; implies -ready")
	ignoreTerm := flag.Bool("ignore-term", false, "ignore SIGTERM: only SIGKILL stops the probe")
	onTerm := flag.String("on-term", "", "create this `file` when SIGTERM stops the probe")
	child := flag.Bool("child", false, "start a child process (sleep) before Ready")
	childSetsid := flag.Bool("child-setsid", false, "start a child process (sleep) in a session of its own before Ready")
	setsid := flag.Bool("setsid", false, "leave the daemon's session (setsid) before Ready")
	swapDir := flag.String("swap-dir", "", "`DIR:TARGET`: rename DIR to DIR.old and put a symbolic link to TARGET in its place before Ready, as a hostile daemon could")
	listen := flag.String("listen", "", "listen on this TCP `address` before Ready; write the port to -report.port")
	fail := flag.String("fail", "", "call cdaemon.Fail with this message before Ready")
	exit := flag.Int("exit", -1, "exit with this status before Ready")
	doPanic := flag.Bool("panic", false, "panic before Ready")
	runtimeChecks := flag.Bool("runtime", false, "exercise goroutines, timers, network, signals and os/exec")
	pty := flag.Bool("pty", false, "open a pty without O_NOCTTY and see if it becomes the controlling terminal")
	say := flag.String("say", "", "write this line to stdout and to stderr")
	status := flag.String("status", "", "write these bytes (`hex`) to the status pipe, as a hostile daemon could")
	shareLock := flag.Bool("share-lock", false, "start a child (sleep) that inherits the locked descriptor on the lock file")
	serveListeners := flag.Bool("serve-listeners", false, "serve the sockets cdaemon.Listeners returns")
	activation := flag.Bool("activation", false, "serve the sockets systemd socket activation passes, "+
		"found as coreos/go-systemd's activation.Listeners finds them (before -serve-listeners)")
	flag.Parse()

	// Registered first, so no signal a test sends is lost.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	if *ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
	}

	r := inspect()
	if *pty {
		r.PtyCTTY, r.PtyErr = openPty()
	}
	if *runtimeChecks {
		r.Runtime = exercise()
	}
	if *say != "" {
		fmt.Fprintln(os.Stdout, "stdout: "+*say)
		fmt.Fprintln(os.Stderr, "stderr: "+*say)
	}
	var ln net.Listener
	if *listen != "" {
		var err error
		if ln, err = net.Listen("tcp", *listen); err != nil {
			cdaemon.Fail(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		write(*report+".port", []byte(strconv.Itoa(port)))
		go serve(ln)
	}
	if *activation {
		for _, f := range activationFiles() {
			l, err := net.FileListener(f)
			if err != nil {
				cdaemon.Fail(err)
			}
			f.Close()
			r.Activation = append(r.Activation, f.Name()+" "+l.Addr().String())
			go serve(l)
		}
	}
	if *serveListeners {
		ls, err := cdaemon.Listeners()
		if err != nil {
			r.ListenersErr = err.Error()
		}
		again, err2 := cdaemon.Listeners()
		r.ListenersTwice = err2 == nil && len(again) == len(ls)
		for i, l := range ls {
			r.ListenersTwice = r.ListenersTwice && again[i] == l
			r.Listeners = append(r.Listeners, l.Addr().Network()+" "+l.Addr().String())
			go serve(l)
		}
	}
	if *child {
		if err := exec.Command("sleep", "3600").Start(); err != nil {
			cdaemon.Fail(err)
		}
	}
	if *childSetsid {
		c := exec.Command("sleep", "3600")
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := c.Start(); err != nil {
			cdaemon.Fail(err)
		}
	}
	if dir, target, ok := strings.Cut(*swapDir, ":"); ok {
		if err := os.Rename(dir, dir+".old"); err != nil {
			cdaemon.Fail(err)
		}
		if err := os.Symlink(target, dir); err != nil {
			cdaemon.Fail(err)
		}
	}
	if *setsid {
		if _, err := syscall.Setsid(); err != nil {
			cdaemon.Fail(err)
		}
	}
	if *shareLock {
		if err := shareLockWithChild(r.Info.Pidfile + ".lock"); err != nil {
			cdaemon.Fail(err)
		}
	}
	if *status != "" {
		if err := writeStatusPipe(*status); err != nil {
			cdaemon.Fail(err)
		}
	}
	if *report != "" {
		b, _ := json.MarshalIndent(r, "", "  ")
		write(*report, b)
	}
	switch {
	case *fail != "":
		cdaemon.Fail(errors.New(*fail))
	case *exit >= 0:
		os.Exit(*exit)
	case *doPanic:
		panic("probe: panic before ready")
	}
	if *waitUSR1 {
		<-usr1
	}
	if *ready || *waitUSR1 {
		for i := 0; i < 2; i++ {
			if err := cdaemon.Ready(); err != nil {
				fmt.Fprintln(os.Stderr, "probe: Ready:", err)
				os.Exit(3)
			}
		}
	}
	if *exitAfterReady {
		return
	}
	if *ignoreTerm {
		for {
			time.Sleep(time.Hour)
		}
	}
	<-sigs
	if *onTerm != "" {
		os.WriteFile(*onTerm, nil, 0o644)
	}
}

// write creates the file atomically so a reader never sees half of it.
func write(path string, b []byte) {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		cdaemon.Fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		cdaemon.Fail(err)
	}
}

// activationFiles is coreos/go-systemd's activation.Files(true) (v22),
// copied so the tests need no dependency: what a program that supports
// systemd's socket activation sees.
func activationFiles() []*os.File {
	defer os.Unsetenv("LISTEN_PID")
	defer os.Unsetenv("LISTEN_FDS")
	defer os.Unsetenv("LISTEN_FDNAMES")
	pid, err := strconv.Atoi(os.Getenv("LISTEN_PID"))
	if err != nil || pid != os.Getpid() {
		return nil
	}
	nfds, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || nfds == 0 {
		return nil
	}
	names := strings.Split(os.Getenv("LISTEN_FDNAMES"), ":")
	files := make([]*os.File, 0, nfds)
	for fd := 3; fd < 3+nfds; fd++ {
		syscall.CloseOnExec(fd)
		name := "LISTEN_FD_" + strconv.Itoa(fd)
		if offset := fd - 3; offset < len(names) && len(names[offset]) > 0 {
			name = names[offset]
		}
		files = append(files, os.NewFile(uintptr(fd), name))
	}
	return files
}

func serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		fmt.Fprintln(c, "hello from", os.Getpid())
		c.Close()
	}
}

func inspect() Report {
	r := Report{
		PID: os.Getpid(), PPID: os.Getppid(), PGRP: syscall.Getpgrp(),
		FDs: map[int]string{}, FDFlags: map[int]int{}, Info: cdaemon.Info(),
		Env: os.Environ(),
	}
	r.StartSigBlk, r.StartSigIgn = startSignals()
	r.Rseq = rseq
	// Raw, on this thread only: syscall.Setuid would try every thread.
	if _, _, e := unix.RawSyscall(unix.SYS_SETUID, 0, 0, 0); e != 0 {
		r.Setuid0 = e.Error()
	}
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) == nil {
		r.Now = time.Duration(ts.Nano())
	}
	r.SID, _ = unix.Getsid(0)
	if stat, err := os.ReadFile("/proc/self/stat"); err == nil {
		// Fields after the command name, which is in parentheses.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
		r.TTYNr, _ = strconv.Atoi(f[4])
		r.TPGID, _ = strconv.Atoi(f[5])
	}
	if f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0); err != nil {
		r.DevTTYErr = err.Error()
	} else {
		f.Close()
	}
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		fd, _ := strconv.Atoi(e.Name())
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil {
			continue // the fd ReadDir itself used
		}
		r.FDs[fd] = target
		r.FDFlags[fd], _ = unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	}
	r.Cwd, _ = os.Getwd()
	if f, err := os.Open("/proc/self/status"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			k, v, _ := strings.Cut(s.Text(), ":")
			v = strings.TrimSpace(v)
			switch k {
			case "Umask":
				u, _ := strconv.ParseInt(v, 8, 32)
				r.Umask = int(u)
			case "SigIgn":
				r.SigIgn = v
			case "SigBlk":
				r.SigBlk = v
			}
		}
		f.Close()
	}
	return r
}

// ptys keeps the pty open: if it became our controlling terminal, closing
// it would hang it up and SIGHUP us.
var ptys []*os.File

// openPty opens a new pty slave without O_NOCTTY, as a careless library
// might, and reports whether the process gained a controlling terminal.
func openPty() (bool, string) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		return false, err.Error()
	}
	ptys = append(ptys, m)
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		return false, err.Error()
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		return false, err.Error()
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR, 0) // no O_NOCTTY
	if err != nil {
		return false, err.Error()
	}
	ptys = append(ptys, s)
	_, err = unix.IoctlGetInt(int(s.Fd()), unix.TIOCGPGRP) // works only on our ctty
	if tty, e := os.OpenFile("/dev/tty", os.O_RDWR, 0); e == nil {
		tty.Close()
		return true, ""
	}
	return err == nil, ""
}

// exercise checks the Go runtime works in the daemon.
func exercise() map[string]string {
	res := map[string]string{}
	check := func(name string, f func() error) {
		if err := f(); err != nil {
			res[name] = err.Error()
		} else {
			res[name] = "ok"
		}
	}
	check("goroutines", func() error {
		done := make(chan int)
		for i := 0; i < 100; i++ {
			go func(i int) { done <- i }(i)
		}
		sum := 0
		for i := 0; i < 100; i++ {
			sum += <-done
		}
		if sum != 4950 {
			return fmt.Errorf("sum %d", sum)
		}
		return nil
	})
	check("timers", func() error {
		select {
		case <-time.After(10 * time.Millisecond):
			return nil
		case <-time.After(30 * time.Second):
			return errors.New("timer did not fire")
		}
	})
	check("network", func() error {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer ln.Close()
		go func() {
			if c, err := ln.Accept(); err == nil {
				c.Write([]byte("pong\n"))
				c.Close()
			}
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		line, err := bufio.NewReader(c).ReadString('\n')
		if line != "pong\n" {
			return fmt.Errorf("read %q, %v", line, err)
		}
		return nil
	})
	check("signal.Notify", func() error {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGUSR1, syscall.SIGHUP)
		defer signal.Stop(c)
		for _, sig := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGHUP} {
			syscall.Kill(os.Getpid(), sig)
			select {
			case got := <-c:
				if got != sig {
					return fmt.Errorf("got %v, want %v", got, sig)
				}
			case <-time.After(30 * time.Second):
				return fmt.Errorf("%v not delivered", sig)
			}
		}
		return nil
	})
	check("os/exec", func() error {
		out, err := exec.Command("/bin/sh", "-c", "echo $((6*7))").Output()
		if err != nil {
			return err
		}
		if strings.TrimSpace(string(out)) != "42" {
			return fmt.Errorf("output %q", out)
		}
		return nil
	})
	return res
}

// writeStatusPipe writes raw bytes to the status pipe: the only pipe among
// the daemon's descriptors while the launcher waits.
func writeStatusPipe(hexBytes string) error {
	b, err := hex.DecodeString(hexBytes)
	if err != nil {
		return err
	}
	for fd := 3; fd < 64; fd++ {
		if l, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd)); strings.HasPrefix(l, "pipe:") {
			_, err := unix.Write(fd, b)
			return err
		}
	}
	return errors.New("probe: no status pipe")
}

var sharedLock *os.File

// shareLockWithChild starts sleep with the locked descriptor on the lock
// file (the same open file description) as its fd 3, so the lock outlives
// the daemon.
func shareLockWithChild(pidfile string) error {
	for fd := 3; fd < 64; fd++ {
		if l, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd)); l == pidfile {
			sharedLock = os.NewFile(uintptr(fd), pidfile) // kept: no finalizer closes it
			cmd := exec.Command("sleep", "3600")
			cmd.ExtraFiles = []*os.File{sharedLock}
			return cmd.Start()
		}
	}
	return errors.New("probe: the lock file is not open")
}
