// Command plugin is cdaemon in a Go plugin, loaded by ../pluginhost: the
// host must never be forked or detached by it.
package main

import "github.com/cdaemon/cdaemon"

func Daemonized() bool { return cdaemon.Daemonized() }

func Reason() string { return cdaemon.Info().Reason }

func main() {}
