// Command clib is cdaemon in a library: built with -buildmode=c-shared
// and -buildmode=c-archive and linked into the C program in ../chost,
// which must never be forked or detached by it.
package main

import "C"

import "github.com/cdaemon/cdaemon"

//export CdaemonDaemonized
func CdaemonDaemonized() C.int {
	if cdaemon.Daemonized() {
		return 1
	}
	return 0
}

//export CdaemonReason
func CdaemonReason() *C.char { return C.CString(cdaemon.Info().Reason) }

func main() {}
