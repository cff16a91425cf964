// Command pluginhost loads the plugin named by its argument (a build of
// ../plugin, which imports cdaemon) and reports who it is. It does not
// import cdaemon itself.
package main

import (
	"fmt"
	"os"
	"plugin"
)

func main() {
	p, err := plugin.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	d, err := p.Lookup("Daemonized")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	r, err := p.Lookup("Reason")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	daemonized := 0
	if d.(func() bool)() {
		daemonized = 1
	}
	fmt.Printf("pid=%d daemonized=%d reason=%s env=%s\n", os.Getpid(), daemonized, r.(func() string)(),
		os.Getenv("CDAEMON_WAIT"))
}
