//go:build benchcgo

package main

import _ "runtime/cgo" // the cgo runtime, as in a program that imports cdaemon
