package main

// What the constructor asks this program before main, in a file of its
// own: without cgo only this file drops out, and package cdaemon's own
// message says cgo is required.
//
// cdaemon_wanted: only "heartbeat" daemonizes, and not when it is asked
// for help (its usage must reach the terminal); status, stop and reload
// run in the foreground, where their output and status reach the caller.
//
// For status, stop and reload, cdaemon_wanted first hands the run to
// cdaemon_early (early.c), which does the whole command and exits before
// the Go runtime starts, or returns having done nothing, and then main
// runs it. It is called where the library's constructor asks whether to
// daemonize: after CDAEMON_* was read and checked exactly as for any run
// (so a bad setting fails the same way on both paths), and only in auto
// mode (CDAEMON=on or off: main runs it).
//
// cdaemon_default_wait: the heartbeat calls cdaemon.Ready once its file is
// open, so its launcher waits for that unless CDAEMON_WAIT says otherwise,
// and a mistake reaches the terminal.

/*
#include <string.h>

const char cdaemon_default_wait[] = "ready";

int cdaemon_early(int argc, char **argv);

int cdaemon_wanted(int argc, char **argv)
{
	if (argc >= 2 && argv[1] && (!strcmp(argv[1], "status") || !strcmp(argv[1], "stop") || !strcmp(argv[1], "reload")))
		cdaemon_early(argc, argv); // returns only to leave the command to main
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
