package main

/*
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
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

// Is the calling thread's rseq area registered with the kernel, as glibc
// (2.35 and later) registers it for every thread? 1: yes; 0: no (the
// state a CLONE_VM child leaves: glibc believes it registered, the kernel
// has forgotten); -1: this libc registers none. Asked by registering
// glibc's own area again: the kernel says EBUSY (or EINVAL for another
// length) when one is registered; if it accepts, none was, and the test
// registration is undone.
extern const unsigned int __rseq_size __attribute__((weak));
extern const ptrdiff_t __rseq_offset __attribute__((weak));

#if defined(__x86_64__) || defined(__i386__)
#define PROBE_RSEQ_SIG 0x53053053
#elif defined(__aarch64__)
#define PROBE_RSEQ_SIG 0xd428bc00
#endif

static int probe_rseq(void)
{
#if defined(SYS_rseq) && defined(PROBE_RSEQ_SIG)
	if (!&__rseq_size || __rseq_size == 0)
		return -1;
	void *area = (char *)__builtin_thread_pointer() + __rseq_offset;
	if (syscall(SYS_rseq, area, 32, 0, PROBE_RSEQ_SIG) == 0) {
		syscall(SYS_rseq, area, 32, 1, PROBE_RSEQ_SIG);
		return 0;
	}
	return errno == EBUSY || errno == EINVAL || errno == EPERM;
#else
	return -1;
#endif
}
*/
import "C"

// rseq is probe_rseq's answer on the main thread: package init runs
// there, locked to it, before main.
var rseq = int(C.probe_rseq())

// startSignals returns the blocked and ignored signals (bit sig-1 set, as
// in /proc/PID/status) when the Go runtime was about to start.
func startSignals() (blocked, ignored uint64) {
	return uint64(C.probe_start_blocked), uint64(C.probe_start_ignored)
}
