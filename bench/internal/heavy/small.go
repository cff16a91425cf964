//go:build !benchbig

// Package heavy sets a benchmarked program's size. Built without the
// benchbig tag it is empty: the small program. With it (heavy.go), the
// program links in large parts of the standard library, whose packages
// run their own init, and a generated 24 MiB table: a binary of tens of MB.
package heavy
