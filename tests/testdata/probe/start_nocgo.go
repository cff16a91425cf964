//go:build !cgo

package main

// Built without cgo (TestNoCgo*), the probe has no constructor of its own
// to look at the start: it reports no signals and no rseq.

var rseq = -1

func startSignals() (blocked, ignored uint64) { return 0, 0 }
