package main

// What the constructor asks this program before main, in a file of its
// own: without cgo only this file drops out, and package cdaemon's own
// message says cgo is required.
//
// cdaemon_wanted: only "heartbeat" daemonizes, and not when it is asked
// for help (its usage must reach the terminal); status, stop and reload
// run in the foreground, where their output and status reach the caller.
//
// cdaemon_default_wait: the heartbeat calls cdaemon.Ready once its file is
// open, so its launcher waits for that unless CDAEMON_WAIT says otherwise,
// and a mistake reaches the terminal.

/*
#include <string.h>

const char cdaemon_default_wait[] = "ready";

int cdaemon_wanted(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "heartbeat") != 0)
		return 0;
	for (int i = 2; i < argc && argv[i]; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--"))
			break;
		if (!strcmp(a, "-h") || !strcmp(a, "-help") || !strcmp(a, "--h") || !strcmp(a, "--help"))
			return 0;
	}
	return 1;
}
*/
import "C"
