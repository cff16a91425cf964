/*
 * daemon.c: the middle and the daemon's set-up.
 *
 * Owns step 7 (the middle: setsid, the second fork, the daemon's pid
 * written to the pidfile and reported) and step 8 (the daemon: stdio onto
 * its targets, every inherited descriptor closed but the kept ones, the
 * listeners, the status pipe and the pidfile's, signals reset,
 * CDAEMON_* removed from the environment; the drop of 8a is called from
 * here, between the descriptors and the signals).
 *
 * Runs in: the middle and the daemon, after the fork and still
 * single-threaded, before the Go runtime exists. Only system calls and
 * their thin libc wrappers: the parent may have held any lock at the
 * fork, so no allocation, no stdio, no NSS. Failures go through bail,
 * which sends them to the launcher over the status pipe.
 *
 * It also makes the middle (clone_middle, called by the launcher), and
 * where it can, one that shares the launcher's memory; the rules of that
 * state are stricter, and are written down before clone_middle.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>

#include "internal.h"

/* ---------------------------------------------------------------------
 * 6/7. The middle without a copy of the launcher's memory.
 *
 * fork() for the middle copies the launcher's page tables and
 * write-protects its pages, only for a process that calls setsid, forks
 * and exits; and until it exits, the launcher pays a copy-on-write fault
 * for each page it writes. So where it can be, the middle is a
 * clone(CLONE_VM | CLONE_VFORK) on a small stack of its own, as
 * posix_spawn makes its child: it shares the launcher's memory, and the
 * launcher sleeps in clone until the middle has exited, so nothing else
 * runs in that memory meanwhile. Only the daemon's fork copies.
 *
 * The states, and what each may call:
 *
 *   launcher, in clone_middle: asleep in the kernel until the middle
 *     exits. When it wakes it resets what the middle wrote for the daemon
 *     (forked, status_fd): those are the launcher's too.
 *   shared middle (shared_middle_main, middle): runs in the
 *     launcher's memory, on its own stack, with the launcher's thread
 *     control block (so its errno is the launcher's, and the tid glibc
 *     keeps there is the launcher's). It may write only what the daemon
 *     must inherit (forked, status_fd), and call only what takes no lock
 *     and allocates nothing: system calls through their libc wrappers
 *     (setsid, sigaction, sigprocmask, close, pwrite, ftruncate, write,
 *     kill, _exit), snprintf and strerror into its own buffers (the C
 *     locale's messages: no translation is loaded), and _Fork, which,
 *     unlike fork, runs no atfork handler and takes no libc lock (glibc
 *     2.34, musl 1.2.3). Not malloc, not stdio, not raise or pthread_*
 *     (they trust the tid). A failure goes through bail to the status
 *     pipe, as from a forked middle. Its rseq registration is gone: the
 *     kernel drops it for a CLONE_VM child.
 *   daemon, forked by _Fork in the shared middle: a copy of the launcher's
 *     memory as the launcher left it in clone, with its own tid (_Fork set
 *     it) and robust list, on the middle's stack. It jumps back into
 *     fork_middle's frame on the launcher's stack (daemon_jmp), which is
 *     intact in its copy, and there first registers glibc's rseq area
 *     again (restore_rseq); then it is a daemon like any other.
 *
 * A plain fork() makes the middle instead where that cannot be done
 * right: no _Fork in libc (glibc before 2.34, musl before 1.2.3); a
 * sanitizer build (its shadow stacks do not survive the jump); or glibc
 * registered rseq on an architecture whose RSEQ_SIG this file does not
 * know, so the daemon could not register it again.
 */

extern pid_t _Fork(void) __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));
extern const ptrdiff_t __rseq_offset __attribute__((weak));

/* The signature glibc registers its rseq area with (RSEQ_SIG). */
#if defined(__x86_64__) || defined(__i386__)
#define CDAEMON_RSEQ_SIG 0x53053053
#elif defined(__aarch64__)
#define CDAEMON_RSEQ_SIG 0xd428bc00
#elif defined(__powerpc__)
#define CDAEMON_RSEQ_SIG 0x0fe5000b
#elif defined(__s390__)
#define CDAEMON_RSEQ_SIG 0xb2ff0fff
#elif defined(__riscv)
#define CDAEMON_RSEQ_SIG 0xf1401073
#endif

/* What the middle may use: bail formats into buffers of 8 KiB and more. */
#define MIDDLE_STACK (64 * 1024)

void *daemon_jmp[5]; /* __builtin_setjmp's buffer: fork_middle's frame */

static void middle(const sigset_t *stop, int shared);

/* The start of struct rseq (linux/rseq.h): what glibc and the kernel
 * read when a thread registers. */
struct rseq_head {
	uint32_t cpu_id_start;
	int32_t cpu_id; /* -1 uninitialized, -2 registration failed (glibc) */
	uint64_t rseq_cs;
	uint32_t flags;
};

/* glibc's rseq area of this thread, or NULL if libc registers none (musl,
 * glibc before 2.35, or rseq turned off by the glibc.pthread.rseq
 * tunable). */
static struct rseq_head *rseq_area(void)
{
	if (!&__rseq_size || !&__rseq_offset || __rseq_size == 0)
		return NULL;
	return (struct rseq_head *)((char *)__builtin_thread_pointer() + __rseq_offset);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CDAEMON_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CDAEMON_SANITIZED 1
#endif
#endif

int middle_can_share(void)
{
#ifdef CDAEMON_SANITIZED
	return 0;
#else
	if (!_Fork)
		return 0;
	/* qemu-user makes a CLONE_VFORK child with fork: the launcher would
	 * run on beside a middle that shares nothing, and so misread how its
	 * daemon ended (TestCrossArchDaemonizes). */
	if (under_qemu_user())
		return 0;
#ifndef CDAEMON_RSEQ_SIG
	const struct rseq_head *r = rseq_area();
	if (r && r->cpu_id >= 0)
		return 0; /* registered, and the daemon could not register it again */
#endif
	return 1;
#endif
}

struct middle_args {
	const sigset_t *stop;
	const int *pipefd;
};

/* The shared middle, on its own stack: step 7, and in the daemon the jump
 * back to the launcher's stack. */
static int shared_middle_main(void *arg)
{
	const struct middle_args *m = arg;
	forked = 1;
	status_fd = m->pipefd[1];
	close(m->pipefd[0]); /* the middle's own copy of the descriptor table */
	middle(m->stop, 1); /* returns in the daemon only */
	__builtin_longjmp(daemon_jmp, 1);
}

/* In the launcher: make the middle sharing our memory, and return its pid
 * once it has exited (-1 and errno if it could not be made).
 *
 * The middle's stack is an array in this frame, on the launcher's own
 * stack, as musl's posix_spawn does it: the launcher does not run while
 * the middle does (CLONE_VFORK), the pages at the top of the array are
 * most often resident already, and no mapping is made, protected and
 * removed on every start. The daemon, forked on it, leaves it for
 * fork_middle's frame above; what it then calls overwrites it. */
pid_t clone_middle(const sigset_t *stop, const int pipefd[2])
{
	struct middle_args arg = { stop, pipefd };
	char stack[MIDDLE_STACK] __attribute__((aligned(16)));
	pid_t pid = clone(shared_middle_main, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, &arg);
	int e = errno;
	forked = 0; /* the middle set them for the daemon */
	status_fd = -1;
	errno = e;
	return pid;
}

/* The daemon of a shared middle, first thing: register glibc's rseq area
 * again, as glibc registers a thread's (rseq_register_current_thread), if
 * the launcher's was registered. */
void restore_rseq(void)
{
#if defined(SYS_rseq) && defined(CDAEMON_RSEQ_SIG)
	struct rseq_head *r = rseq_area();
	if (!r || r->cpu_id < 0)
		return; /* the launcher had none: glibc's registration failed */
	r->cpu_id = -1;
	r->cpu_id_start = 0;
	r->rseq_cs = 0;
	r->flags = 0;
	if (syscall(SYS_rseq, r, __rseq_size < 32 ? 32 : __rseq_size, 0, CDAEMON_RSEQ_SIG) < 0)
		r->cpu_id = -2;
#endif
}

/* ---------------------------------------------------------------------
 * 7. The middle process: leave the terminal's session, then fork again so
 * the daemon is not a session leader and can never acquire a controlling
 * terminal by opening one. Its failures reach the launcher through bail.
 */

/* shared: this middle shares the launcher's memory, and so forks the
 * daemon with _Fork. It is an argument, not a static variable set around
 * clone(): glibc declares clone leaf (__THROW), so the compiler takes it
 * that clone calls nothing of this file back and drops such a store (it
 * did: every shared middle called fork(), ran the program's fork
 * handlers in the launcher's memory, and took libc's locks there). */
static void middle(const sigset_t *stop, int shared)
{
	char pid_text[16];
	if (setsid() < 0)
		bail(CDAEMON_EX_OSERR, "setsid: %s", strerror(errno));
	/* When the middle (a session leader) exits, the daemon's process group
	 * is orphaned; POSIX then sends SIGHUP to it if any member is stopped.
	 * Ignore SIGHUP until the daemon has reset its signals (step 8), and
	 * only then unblock the launcher's stop signals: a blocked SIGHUP is
	 * kept pending, not ignored, and would kill the daemon at its reset. */
	signal(SIGHUP, SIG_IGN);
	sigprocmask(SIG_UNBLOCK, stop, NULL);
	pid_t pid = shared ? _Fork() : fork();
	if (pid < 0)
		bail(CDAEMON_EX_OSERR, "fork: %s", strerror(errno));
	if (pid == 0)
		return;
	/* A replacement names the new daemon only once it is ready: the
	 * launcher writes it then (replace.c). */
	if (pidfile.fd >= 0 && !replacing && pidfile_write(pid) < 0) {
		int e = errno;
		kill(pid, SIGKILL);
		bail(CDAEMON_EX_CANTCREAT, "CDAEMON_PIDFILE: cannot write the pid: %s", strerror(e));
	}
	snprintf(pid_text, sizeof pid_text, "%d", (int)pid);
	if (send_msg(status_fd, CDAEMON_MSG_PID, 0, pid_text) < 0) {
		/* The launcher would never learn the daemon's pid: in wait=none
		 * it would take our exit for success. Fail the start instead. */
		int e = errno;
		kill(pid, SIGKILL);
		bail(CDAEMON_EX_OSERR, "status pipe: cannot report the daemon's pid: %s", strerror(e));
	}
	_exit(0);
}

/* The middle made by fork(). */
void run_middle(const sigset_t *stop)
{
	middle(stop, 0);
}

/* ---------------------------------------------------------------------
 * 8. The daemon: from here on this process is the program. Detach stdio,
 * close what was inherited, give the Go runtime clean signal state and an
 * environment without our variables, then return from the constructor.
 */

static void redirect_stdio(const struct files *f)
{
	const int src[3] = { f->in, f->out, f->err };
	for (int fd = 0; fd <= 2; fd++) {
		/* dup2 onto itself is a no-op that keeps O_CLOEXEC: clear it. */
		int r = src[fd] == fd ? fcntl(fd, F_SETFD, 0) : dup2(src[fd], fd);
		if (r < 0)
			bail(CDAEMON_EX_OSERR, "dup2: %s", strerror(errno));
	}
}

struct fd_range {
	unsigned lo, hi;
};

static int close_in_range(long fd, void *arg)
{
	const struct fd_range *r = arg;
	if (fd >= (long)r->lo && fd <= (long)r->hi)
		close((int)fd);
	return 0;
}

/* close_range(2), or on kernels before 5.9 a walk of /proc/self/fd: a
 * loop to the descriptor limit could take 2^30 steps. */
static void close_range_(unsigned lo, unsigned hi)
{
	struct fd_range r = { lo, hi };
#ifdef SYS_close_range
	if (syscall(SYS_close_range, lo, hi, 0) == 0)
		return;
#endif
	if (each_number("/proc/self/fd", close_in_range, &r) < 0)
		bail(CDAEMON_EX_OSERR,
		     "cannot close inherited descriptors: no close_range and /proc/self/fd "
		     "cannot be read (%s)",
		     strerror(errno));
}

/* Close every fd above 2 except the kept ones, the status pipe and the
 * pidfile (whose open description holds the lock). */
static void close_inherited_fds(const struct config *c, int wfd)
{
	int keep[MAX_KEEP_FDS + 2 + MAX_LISTEN], n = 0;
	for (int i = 0; i < c->nkeep; i++)
		keep[n++] = c->keep[i];
	for (int i = 0; i < c->nlisten; i++)
		keep[n++] = 3 + i; /* step 5a put the listeners there */
	if (wfd >= 0)
		keep[n++] = wfd;
	if (pidfile.fd >= 0)
		keep[n++] = pidfile.fd;
	for (int i = 1; i < n; i++) /* insertion sort: n is small */
		for (int j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
			int t = keep[j];
			keep[j] = keep[j - 1];
			keep[j - 1] = t;
		}
	unsigned lo = 3;
	for (int i = 0; i < n; i++) {
		if ((unsigned)keep[i] > lo)
			close_range_(lo, keep[i] - 1);
		lo = keep[i] + 1;
	}
	close_range_(lo, ~0U);
}

/* daemon(7): reset every signal to its default and unblock them all.
 * SIGHUP was ignored by the middle; others may be inherited from the
 * launcher's parent (nohup, a shell's trap ''). */
static void reset_signals(void)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t none;
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &dfl, NULL); /* EINVAL for libc-reserved: fine */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Remove CDAEMON_* in place. Go reads its environment from the same
 * array on the initial stack that environ points to, so it never sees
 * them, and children the daemon starts do not daemonize by accident
 * with the daemon's settings. The strings themselves are zeroed where
 * execve put them (between the pointer arrays and AT_EXECFN, the last
 * string on the stack), so /proc/PID/environ and `ps e` do not show
 * them either; a string from setenv or putenv elsewhere is left alone. */
static void strip_environment(void)
{
	/* The array must keep its length: the Go runtime finds the auxiliary
	 * vector (page size, vDSO) just past the NULL that ends it, and a
	 * NULL moved up makes it read stale pointers as auxv entries. Freed
	 * slots become empty strings, which Go's os.Environ skips. */
	static char empty[] = "";
	char **r = environ, **w = environ;
	char **end = environ;
	const char *execfn = (const char *)getauxval(AT_EXECFN);
	while (*end)
		end++;
	for (; *r; r++) {
		if (!is_ours(*r))
			*w++ = *r;
		else if (*r > (char *)end && *r < execfn)
			memset(*r, 0, strlen(*r));
	}
	while (w < r)
		*w++ = empty;
}

void become_daemon(const struct config *c, const struct files *f)
{
	redirect_stdio(f);
	if (c->wait == CDAEMON_WAIT_NONE) {
		close(status_fd); /* the launcher waits only for the middle's report */
		status_fd = -1;
	}
	close_inherited_fds(c, status_fd);
	drop_privileges(c); /* 8a */
	reset_signals();
	strip_environment();
	if (pidfile.dirfd >= 0 || pidfile.wfd >= 0) /* closed with the inherited descriptors */
		pidfile.dirfd = pidfile.wfd = -1;   /* (a write would copy the page for nothing) */
	cdaemon_state.daemonized = 1;
	cdaemon_state.status_fd = status_fd;
}
