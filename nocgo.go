//go:build !cgo || !linux

package cdaemon

const _ = "cdaemon requires cgo on Linux: build with CGO_ENABLED=1 and a C compiler" + 0
