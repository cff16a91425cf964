package main

// What the constructor asks this program before main, in a file of its
// own: without cgo it drops out with early.c, and hooks_nocgo.go says
// what then differs.
//
// cdaemon_wanted: "heartbeat" and "run PROGRAM" daemonize, and not when
// asked for help (their usage must reach the terminal); status, stop and
// reload run in the foreground, where their output and status reach the
// caller.
//
// For status, stop and reload, cdaemon_wanted first hands the run to
// cdaemon_early (early.c), which does the whole command and exits before
// the Go runtime starts, or returns having done nothing, and then main
// runs it. It is called where the library's constructor asks whether to
// daemonize: after CDAEMON_* was read and checked exactly as for any run
// (so a bad setting fails the same way on both paths), and only in auto
// mode (CDAEMON=on or off: main runs it).
//
// cdaemon_exec_args: for "run [--] PROGRAM [ARGS...]", where PROGRAM is
// in argv. The constructor then never returns into Go in the process
// that runs it: the daemon (or, in the foreground, this process) execs
// PROGRAM with ARGS once it is set up, before the Go runtime would start
// (exec.c in the library). "run" without a PROGRAM, or with an option
// before it, reaches main (run.go), which reports the mistake.
//
// cdaemon_default_wait: the heartbeat calls cdaemon.Ready once its file is
// open, so its launcher waits for that unless CDAEMON_WAIT says otherwise,
// and a mistake reaches the terminal. (A run that execs waits for the
// exec by default: the program it runs declares nothing.)

/*
#include <string.h>

const char cdaemon_default_wait[] = "ready";

int cdaemon_early(int argc, char **argv);

int cdaemon_exec_args(int argc, char **argv)
{
	if (argc < 3 || !argv[1] || strcmp(argv[1], "run") != 0)
		return 0;
	int i = 2;
	if (!strcmp(argv[i], "--"))
		i++;
	else if (argv[i][0] == '-')
		return 0;
	return i < argc && argv[i] && argv[i][0] ? i : 0;
}

int cdaemon_wanted(int argc, char **argv)
{
	if (argc >= 2 && argv[1] && (!strcmp(argv[1], "status") || !strcmp(argv[1], "stop") || !strcmp(argv[1], "reload")))
		cdaemon_early(argc, argv); // returns only to leave the command to main
	if (argc >= 2 && argv[1] && !strcmp(argv[1], "run"))
		return cdaemon_exec_args(argc, argv) > 0;
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

// daemonizes reports whether this build can daemonize the heartbeat.
const daemonizes = true
