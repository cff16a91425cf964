//go:build linux && cgo

package cdaemon

/*
#include "cdaemon.h"
*/
import "C"

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// listenFirstFD is where the CDAEMON_LISTEN sockets start, as in systemd's
// socket activation (SD_LISTEN_FDS_START).
const listenFirstFD = 3

var (
	// sockets identifies each socket the constructor placed at 3, 4, ...
	// so Listeners can tell whether its descriptor still holds it.
	sockets []unix.Stat_t

	listeners    []net.Listener
	listenersErr error
	listenersDid bool
	keptFiles    []*os.File // the descriptors' files when Listeners failed
)

// initListeners records the sockets and sets the environment of systemd's
// socket activation (sd_listen_fds(3)), so a program that supports it,
// such as one using coreos/go-systemd's activation package, finds them
// unchanged: LISTEN_PID is this process, LISTEN_FDS their number,
// LISTEN_FDNAMES a name for each, made from its address (':' and bytes
// outside printable ASCII become '-', as names may not hold them).
func initListeners() {
	l := &C.cdaemon_listeners
	n := int(l.n)
	if n == 0 {
		return
	}
	names := make([]string, n)
	for i := 0; i < n; i++ {
		addr := C.GoString(&l.addr[i][0])
		state.Listeners = append(state.Listeners, addr)
		names[i] = fdName(addr)
		var st unix.Stat_t
		unix.Fstat(listenFirstFD+i, &st) // a failure leaves a zero that never matches
		sockets = append(sockets, st)
	}
	os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	os.Setenv("LISTEN_FDS", strconv.Itoa(n))
	os.Setenv("LISTEN_FDNAMES", strings.Join(names, ":"))
}

func fdName(addr string) string {
	b := []byte(addr)
	for i, c := range b {
		if c <= ' ' || c >= 0x7f || c == ':' {
			b[i] = '-'
		}
	}
	if len(b) > 255 {
		b = b[:255]
	}
	return string(b)
}

// takeListeners is Listeners (cdaemon.go).
func takeListeners() ([]net.Listener, error) {
	mu.Lock()
	defer mu.Unlock()
	if listenersDid {
		return listeners, listenersErr
	}
	listenersDid = true
	var ls []net.Listener
	var files []*os.File
	for i, want := range sockets {
		fd := listenFirstFD + i
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Dev != want.Dev || st.Ino != want.Ino {
			listenersErr = fmt.Errorf("cdaemon: descriptor %d no longer holds the socket for %s "+
				"(something else took the CDAEMON_LISTEN descriptors first)", fd, state.Listeners[i])
			break
		}
		f := os.NewFile(uintptr(fd), state.Listeners[i])
		files = append(files, f)
		l, err := net.FileListener(f)
		if err != nil {
			listenersErr = fmt.Errorf("cdaemon: listener for %s: %w", state.Listeners[i], err)
			break
		}
		ls = append(ls, l)
	}
	if listenersErr != nil {
		for _, l := range ls {
			l.Close()
		}
		// The descriptors stay as they were: keep the files from
		// their finalizers, which would close them.
		keptFiles = files
		return nil, listenersErr
	}
	// Through the *os.File that owns each descriptor: closing the number
	// directly would leave the file's finalizer to close it again at some
	// garbage collection, when the number may be an accepted connection's.
	for _, f := range files {
		f.Close()
	}
	for _, v := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		os.Unsetenv(v)
	}
	listeners = ls
	return listeners, nil
}
