/*
 * replace.c: CDAEMON_REPLACE=on, replacing a running daemon without
 * closing its listening sockets.
 *
 * Owns the take-over of the daemon that holds the lock (the one the
 * pidfile names): the ptrace-access check (pidfd_getfd refused: 77 before
 * anything changes; no pidfd_open or pidfd_getfd: 69), the copy of its
 * lock-file descriptor (the flock lives on the open file description, so
 * the copy holds the lock too), the copies of its listening sockets that
 * match CDAEMON_LISTEN addresses (sockets.c puts them at 3, 4, ... instead
 * of binding), and the hand-over once the new daemon is ready: the pidfile
 * rewritten in place (the new pid at offset 0, then cut to its length),
 * the old daemon signalled through its pidfd (CDAEMON_REPLACE_SIGNAL,
 * SIGTERM by default) and waited for (CDAEMON_TIMEOUT, then SIGKILL).
 * Until then the old daemon is not touched: a start that fails leaves it
 * serving on its sockets, holding its lock and named in the pidfile (unless
 * the pidfile was gone by the time it was opened: this start made one, and
 * its failure removes it), and replace_note says which.
 *
 * Runs in: the launcher only, as the starting user: replace_take in step
 * 5, before the pidfile and the listeners (nothing is created before it
 * decides); replace_hand_over in step 6, once the daemon reached its wait
 * point; replace_note on every failure path of the launcher. The middle
 * only reads `replacing` (it does not write the pidfile then); the daemon
 * inherits nothing of this file but the lock descriptor, which pidfile.c's
 * handle holds, and its listeners.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <netinet/in.h>

#include "internal.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

pid_t replacing; /* the daemon being replaced, or 0 */

static struct {
	int pidfd;            /* the old daemon, or -1 */
	int sock[MAX_LISTEN]; /* its listening socket for each address, or -1 */
	char pidfile[PATH_MAX];
} old = { .pidfd = -1 };

/* The signals CDAEMON_REPLACE_SIGNAL may name (config.c parses them). */
const struct replace_signal replace_signals[] = {
	{ "TERM", SIGTERM }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "HUP", SIGHUP },
	{ "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "WINCH", SIGWINCH }, { "KILL", SIGKILL },
	{ NULL, 0 },
};

static const char *signal_name(int sig)
{
	for (const struct replace_signal *s = replace_signals; s->name; s++)
		if (s->sig == sig)
			return s->name;
	return "?";
}

static int pidfd_open_(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

static int pidfd_getfd_(int pidfd, long fd) { return (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0); }

static int pidfd_signal(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* The pid the pidfile names, or 0: read-only, never trusted further than
 * to find out which process to check. */
static long named_pid(const char *path)
{
	char buf[32], *end;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return 0;
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	close(fd);
	if (n <= 0 || buf[0] < '0' || buf[0] > '9')
		return 0;
	buf[n] = 0;
	errno = 0;
	long pid = strtol(buf, &end, 10);
	if (errno || (*end && strcmp(end, "\n")) || pid < 1 || pid > INT_MAX)
		return 0;
	return pid;
}

/* Is the lock held? 1 held, 0 free (or no lock file: nothing runs), -1
 * cannot tell (the lock file is another user's). */
static int lock_held(const char *lockpath)
{
	int fd = open(lockpath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	int r = flock(fd, LOCK_EX | LOCK_NB);
	int held = r < 0 && errno == EWOULDBLOCK;
	close(fd); /* drops the lock if we took it */
	return r < 0 && !held ? -1 : held;
}

/* kernel.yama.ptrace_scope, for the message: its value, or "" */
static const char *ptrace_scope(char *buf, size_t size)
{
	char raw[16];
	read_small("/proc/sys/kernel/yama/ptrace_scope", raw, sizeof raw);
	raw[strcspn(raw, "\n")] = 0;
	if (!raw[0])
		snprintf(buf, size, "; this kernel has no Yama, so kernel.yama.ptrace_scope does not apply");
	else
		snprintf(buf, size, "; kernel.yama.ptrace_scope is %s", raw);
	return buf;
}

/*
 * May we take descriptors from the process? pidfd_getfd checks ptrace
 * access (PTRACE_MODE_ATTACH_REALCREDS) before it looks at the number, so
 * asking for a descriptor no process has answers the question alone:
 * EBADF yes, EPERM no, ENOSYS a kernel before 5.6.
 */
static void check_access(long pid, const char *pidfile)
{
	char scope[128];
	int fd = pidfd_getfd_(old.pidfd, INT_MAX);
	if (fd >= 0) {
		close(fd);
		return;
	}
	if (errno == ENOSYS)
		bail(CDAEMON_EX_UNAVAILABLE,
		     "CDAEMON_REPLACE: cannot take over the daemon (pid %ld, named in %s): this kernel has "
		     "no pidfd_getfd, which takes its descriptors (Linux 5.6 and later)",
		     pid, quote(pidfile));
	if (errno == EPERM || errno == EACCES)
		bail(CDAEMON_EX_NOPERM,
		     "CDAEMON_REPLACE: cannot take over the daemon (pid %ld, named in %s): taking its "
		     "descriptors is not permitted (%s): it needs ptrace access, which root has, and its "
		     "own user only while it is dumpable and kernel.yama.ptrace_scope allows it (0)%s",
		     pid, quote(pidfile), strerror(errno), ptrace_scope(scope, sizeof scope));
	/* EBADF: allowed. ESRCH: it has just exited; the lock decides. */
}

/* The address a CDAEMON_LISTEN entry binds, as getsockname would show it:
 * a relative unix path is bound by its absolute name where that fits
 * (sockets.c does the same). */
static void bound_address(const struct listen_addr *l, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_un *un = (struct sockaddr_un *)ss;
	memcpy(ss, &l->addr, sizeof *ss);
	*len = l->len;
	if (ss->ss_family == AF_UNIX && un->sun_path[0] && un->sun_path[0] != '/') {
		char abs[PATH_MAX];
		absolute(abs, sizeof abs, un->sun_path);
		if (strlen(abs) < sizeof un->sun_path) {
			memcpy(un->sun_path, abs, strlen(abs) + 1);
			*len = offsetof(struct sockaddr_un, sun_path) + strlen(abs) + 1;
		}
	}
}

/* Does the socket fd listen on the address? Same family, a stream socket
 * that accepts, bound to the same address. A TCP port 0 matches nothing:
 * it names no port. */
static int same_listener(int fd, const struct listen_addr *l)
{
	struct sockaddr_storage want, got;
	socklen_t wlen, glen = sizeof got;
	int v = 0;
	socklen_t vl = sizeof v;
	bound_address(l, &want, &wlen);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) < 0 || !v)
		return 0;
	vl = sizeof v;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vl) < 0 || v != SOCK_STREAM)
		return 0;
	vl = sizeof v;
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &vl) < 0 || v != want.ss_family)
		return 0;
	memset(&got, 0, sizeof got);
	if (getsockname(fd, (struct sockaddr *)&got, &glen) < 0 || got.ss_family != want.ss_family)
		return 0;
	if (want.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)&want, *b = (const void *)&got;
		return a->sin_port && a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
	}
	if (want.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)&want, *b = (const void *)&got;
		return a->sin6_port && a->sin6_port == b->sin6_port &&
		       !memcmp(&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr) &&
		       a->sin6_scope_id == b->sin6_scope_id;
	}
	/* AF_UNIX: the same name, byte for byte (an abstract one has no NUL). */
	size_t off = offsetof(struct sockaddr_un, sun_path);
	const struct sockaddr_un *a = (const void *)&want, *b = (const void *)&got;
	size_t an = wlen - off, bn = glen - off;
	if (a->sun_path[0]) {
		an = strnlen(a->sun_path, an);
		bn = strnlen(b->sun_path, bn);
	}
	return an == bn && !memcmp(a->sun_path, b->sun_path, an);
}

/* What the walk of the old daemon's descriptors looks for. */
struct walk {
	long pid;
	const struct config *c;
	dev_t lock_dev;
	ino_t lock_ino;
	int lock;            /* out: our copy of its locked lock-file descriptor, or -1 */
	ino_t seen[256];     /* socket inodes looked at already */
	int nseen;
};

static int look_at_fd(long fd, void *arg)
{
	struct walk *w = arg;
	char path[64], target[64];
	struct stat st;
	snprintf(path, sizeof path, "/proc/%ld/fd/%ld", w->pid, fd);
	ssize_t n = readlink(path, target, sizeof target - 1);
	if (n <= 0 || stat(path, &st) < 0)
		return 0; /* closed meanwhile */
	target[n] = 0;
	if (S_ISSOCK(st.st_mode)) {
		for (int i = 0; i < w->nseen; i++)
			if (w->seen[i] == st.st_ino)
				return 0; /* the same socket at another number */
		if (w->nseen < (int)(sizeof w->seen / sizeof w->seen[0]))
			w->seen[w->nseen++] = st.st_ino;
		int copy = pidfd_getfd_(old.pidfd, fd);
		if (copy < 0)
			return 0;
		for (int i = 0; i < w->c->nlisten; i++)
			if (old.sock[i] < 0 && same_listener(copy, &w->c->listen[i])) {
				old.sock[i] = copy;
				return 0;
			}
		close(copy);
		return 0;
	}
	if (w->lock >= 0 || st.st_dev != w->lock_dev || st.st_ino != w->lock_ino)
		return 0;
	int copy = pidfd_getfd_(old.pidfd, fd);
	struct stat cst;
	/* The description that holds the lock: flock on it succeeds (it
	 * holds LOCK_EX already), on any other it would block. */
	if (copy >= 0 && fstat(copy, &cst) == 0 && cst.st_dev == w->lock_dev &&
	    cst.st_ino == w->lock_ino && flock(copy, LOCK_EX | LOCK_NB) == 0) {
		w->lock = copy;
		return 0;
	}
	if (copy >= 0)
		close(copy);
	return 0;
}

/* Let go of everything taken: the start goes on as an ordinary one, or
 * is refused by the pidfile's own rules. */
static void let_go(void)
{
	for (int i = 0; i < MAX_LISTEN; i++)
		if (old.sock[i] >= 0) {
			close(old.sock[i]);
			old.sock[i] = -1;
		}
	if (old.pidfd >= 0)
		close(old.pidfd);
	old.pidfd = -1;
	replacing = 0;
}

/*
 * Step 5, before the pidfile: if the lock is held by the daemon the
 * pidfile names, take its lock-file descriptor and its listeners. Returns
 * the copy of the locked descriptor (the daemon keeps it), or -1 when
 * there is nothing to replace: the start is then an ordinary one, and
 * pidfile_open decides (free: it starts; held by another process: 75).
 * Another replacement of the same daemon going on at the same time is
 * refused (75): an OFD lock on the lock file, which only its owner can
 * open for writing, marks the one in progress.
 */
int replace_take(const struct config *c, const char *lockpath)
{
	for (int i = 0; i < MAX_LISTEN; i++)
		old.sock[i] = -1;
	snprintf(old.pidfile, sizeof old.pidfile, "%s", c->pidfile);
	long pid = named_pid(c->pidfile);
	if (pid <= 0 || lock_held(lockpath) == 0)
		return -1;
	old.pidfd = pidfd_open_((pid_t)pid);
	if (old.pidfd < 0 && errno == ENOSYS)
		bail(CDAEMON_EX_UNAVAILABLE,
		     "CDAEMON_REPLACE: cannot take over the daemon (pid %ld, named in %s): this kernel has "
		     "no pidfd_open (Linux 5.3 and later; taking its descriptors needs 5.6)",
		     pid, quote(c->pidfile));
	if (old.pidfd < 0)
		return -1; /* gone: whoever holds the lock is not the daemon it names */
	check_access(pid, c->pidfile);

	struct walk w = { .pid = pid, .c = c, .lock = -1 };
	struct stat st;
	int mark = open(lockpath, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (mark < 0 || fstat(mark, &st) < 0) {
		if (mark >= 0)
			close(mark);
		let_go();
		return -1; /* pidfile_open says why it cannot have the lock file */
	}
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	if (fcntl(mark, F_OFD_SETLK, &fl) < 0)
		bail(CDAEMON_EX_TEMPFAIL,
		     "CDAEMON_REPLACE: another start is already replacing the daemon (pid %ld) of %s",
		     pid, quote(c->pidfile));
	/* mark stays open, close-on-exec, until the launcher exits: the
	 * daemon closes it with the inherited descriptors. */
	w.lock_dev = st.st_dev;
	w.lock_ino = st.st_ino;
	char dir[64];
	snprintf(dir, sizeof dir, "/proc/%ld/fd", pid);
	if (each_number(dir, look_at_fd, &w) < 0 || w.lock < 0) {
		/* It does not hold the lock (another process does), or it
		 * exited meanwhile: not a daemon to replace. */
		if (w.lock >= 0)
			close(w.lock);
		let_go();
		return -1;
	}
	replacing = (pid_t)pid;
	cdaemon_state.replaced_pid = (int)pid;
	return w.lock;
}

/* The old daemon's listening socket for address i, or -1: bind it. The
 * caller owns it. */
int replace_listener(int i)
{
	int fd = replacing ? old.sock[i] : -1;
	old.sock[i] = -1;
	return fd;
}

/* On every failure of a replacing start: the old daemon was left alone.
 * Its pidfile too, unless it was gone when pidfile_open came to it: then
 * this start created one, which the failure removes (created.c). */
void replace_note(void)
{
	if (!replacing)
		return;
	struct pollfd p = { .fd = old.pidfd, .events = POLLIN };
	if (poll(&p, 1, 0) == 1)
		say("the daemon being replaced (pid %d) exited meanwhile", (int)replacing);
	else if (pidfile.created)
		say("the daemon being replaced (pid %d) is still running: it keeps its sockets and its "
		    "lock; %s was missing, and the one this start made is removed",
		    (int)replacing, quote(old.pidfile));
	else
		say("the daemon being replaced (pid %d) is still running: it keeps its sockets and its "
		    "lock, and %s still names it",
		    (int)replacing, quote(old.pidfile));
}

/* Wait until the old daemon has exited: 1, or 0 at the deadline. */
static int wait_gone(long long ms)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		long long left = ms - ((t.tv_sec - t0.tv_sec) * 1000LL + (t.tv_nsec - t0.tv_nsec) / 1000000);
		struct pollfd p = { .fd = old.pidfd, .events = POLLIN };
		if (left <= 0)
			return 0;
		int r = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
		if (r == 1 || (r < 0 && errno != EINTR))
			return 1;
	}
}

/*
 * Step 6, the new daemon reached its wait point: name it in the pidfile
 * (write, then cut: never empty), then stop the old one and wait until it
 * has exited. Returns 0, or -1 with errno if the pidfile cannot be
 * written: the old daemon is then still untouched.
 */
int replace_hand_over(const struct config *c, pid_t daemon)
{
	if (pidfile_write(daemon) < 0)
		return -1;
	int sig = c->replace_signal;
	if (pidfd_signal(old.pidfd, sig) < 0)
		return 0; /* ESRCH: it exited by itself meanwhile */
	if (wait_gone(c->timeout_ms))
		return 0;
	pidfd_signal(old.pidfd, SIGKILL);
	say("the replaced daemon (pid %d) did not exit within CDAEMON_TIMEOUT (%s) after SIG%s: "
	    "killed it (SIGKILL)",
	    (int)replacing, c->timeout_text, signal_name(sig));
	wait_gone(10000);
	return 0;
}
