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
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>

#include "internal.h"

/* ---------------------------------------------------------------------
 * 7. The middle process: leave the terminal's session, then fork again so
 * the daemon is not a session leader and can never acquire a controlling
 * terminal by opening one. Its failures reach the launcher through bail.
 */

void run_middle(const sigset_t *stop)
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
	pid_t pid = fork();
	if (pid < 0)
		bail(CDAEMON_EX_OSERR, "fork: %s", strerror(errno));
	if (pid == 0)
		return;
	if (pidfile.fd >= 0 && pidfile_write(pid) < 0) {
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
	pidfile.dirfd = pidfile.wfd = -1; /* closed with the inherited descriptors */
	cdaemon_state.daemonized = 1;
	cdaemon_state.status_fd = status_fd;
}
