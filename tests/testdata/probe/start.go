package main

/*
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

uint64_t probe_start_blocked, probe_start_ignored;

// A second constructor. It runs after cdaemon's (which has priority 101),
// so in the daemon it runs after the fork and before the Go runtime
// starts. It records the signal state cdaemon hands to the runtime (which
// then hides it: Go keeps an inherited ignored SIGHUP but unblocks what it
// needs). While the file named by PROBE_HOLD exists it waits: a test can
// then look at a daemon that exists but has not started Go yet.
__attribute__((constructor)) static void probe_start(void)
{
	sigset_t set;
	sigprocmask(SIG_SETMASK, NULL, &set);
	for (int sig = 1; sig <= 64; sig++) {
		struct sigaction sa;
		if (sigismember(&set, sig) == 1)
			probe_start_blocked |= 1ULL << (sig - 1);
		if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
			probe_start_ignored |= 1ULL << (sig - 1);
	}
	const char *path = getenv("PROBE_HOLD");
	while (path && access(path, F_OK) == 0)
		usleep(1000);
}
*/
import "C"

// startSignals returns the blocked and ignored signals (bit sig-1 set, as
// in /proc/PID/status) when the Go runtime was about to start.
func startSignals() (blocked, ignored uint64) {
	return uint64(C.probe_start_blocked), uint64(C.probe_start_ignored)
}
