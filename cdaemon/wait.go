package main

// This program calls cdaemon.Ready, so its launcher waits for it unless
// CDAEMON_WAIT says otherwise. In a file of its own: without cgo only this
// file drops out, and package cdaemon's own message says cgo is required.

/*
const char cdaemon_default_wait[] = "ready";
*/
import "C"
