/*
 * readiness.c: the launcher's notification socket, systemd's sd_notify(3)
 * protocol, for CDAEMON_WAIT=ready. It owns the socket, the parser of its
 * datagrams and the rule of whose datagrams are heard; launcher.c acts on
 * what they say (DESIGN.md, "The notify socket").
 *
 * Runs in the launcher only, before the Go runtime exists:
 * notify_open before the first fork (the name goes to the daemon in
 * cdaemon_state.notify_socket; the daemon closes the descriptor with the
 * other inherited ones), notify_recv and is_descendant while it waits.
 * notify_parse is pure: no state, no system call, no allocation, so the
 * fuzzer (tests/testdata/notify/fuzz_notify.c) calls it as it is.
 *
 * The socket is SOCK_DGRAM in the abstract namespace under a random name:
 * nothing is created on disk, so nothing is left behind whatever way the
 * launcher ends, and a daemon in a chroot or after a privilege drop can
 * still reach it. Anyone in the network namespace who learns the name
 * (/proc/net/unix lists it) may send to it, so every datagram is hostile
 * input: SO_PASSCRED makes the kernel attach the sender's pid, and only
 * datagrams from the main process (the daemon, or the descendant it named
 * with MAINPID=) are acted on, as systemd's NotifyAccess=main. After the
 * launcher exits nobody binds the name: a send fails with ECONNREFUSED,
 * which sd_notify returns and programs ignore.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include <sys/un.h>

/*
 * Parse one datagram of n bytes: newline-separated KEY=VALUE lines, the
 * last value of a key winning, as systemd reads them. Returns 0 and fills
 * *m, or -1 with *why for a datagram to drop whole: empty, or holding a
 * NUL byte (systemd drops those too). A line with an unknown key, without
 * '=', or with a value its key does not take (READY=0, ERRNO=x, a pid out
 * of range) is counted in m->ignored and changes nothing.
 */
int notify_parse(const char *buf, size_t n, struct notify_msg *m, const char **why)
{
	*m = (struct notify_msg){ .errno_ = -1, .exit_status = -1, .extend_usec = -1 };
	if (n == 0)
		return *why = "an empty datagram", -1;
	if (memchr(buf, 0, n))
		return *why = "a datagram holding a NUL byte", -1;
	for (const char *p = buf, *end = buf + n; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		const char *eq = memchr(p, '=', (size_t)(eol - p));
		size_t klen = eq ? (size_t)(eq - p) : 0;
		const char *v = eq ? eq + 1 : eol;
		size_t vlen = (size_t)(eol - v);
		long long num = -1;
		/* A decimal value: digits only, no sign, no overflow. */
		if (eq && vlen > 0 && vlen <= 18) {
			num = 0;
			for (size_t i = 0; i < vlen && num >= 0; i++)
				num = v[i] >= '0' && v[i] <= '9' ? num * 10 + (v[i] - '0') : -1;
		}
#define KEY(k) (klen == sizeof k - 1 && !memcmp(p, k, klen))
		if (KEY("READY") && vlen == 1 && v[0] == '1')
			m->ready = 1;
		else if (KEY("STOPPING") && vlen == 1 && v[0] == '1')
			m->stopping = 1;
		else if (KEY("STATUS"))
			m->status = v, m->status_len = vlen;
		else if (KEY("ERRNO") && num >= 0 && num <= INT_MAX)
			m->errno_ = num;
		else if (KEY("EXIT_STATUS") && num >= 0 && num <= 255)
			m->exit_status = num;
		else if (KEY("EXTEND_TIMEOUT_USEC") && num >= 0)
			m->extend_usec = num;
		else if (KEY("MAINPID") && num >= 1 && num <= INT_MAX)
			m->mainpid = num;
		else if (eol > p)
			m->ignored++;
#undef KEY
		p = eol + 1;
	}
	return 0;
}

int notify_fd = -1;

/* Step 5b, in the launcher before the fork: with CDAEMON_WAIT=ready offer
 * the daemon a notify socket, unless a supervisor gave one (the daemon
 * then notifies the supervisor; the launcher waits for Ready's message on
 * the status pipe, as before). */
void notify_setup(const struct config *c)
{
	if (c->wait != CDAEMON_WAIT_READY || getenv("NOTIFY_SOCKET"))
		return;
	notify_fd = notify_open(cdaemon_state.notify_socket, sizeof cdaemon_state.notify_socket);
	if (notify_fd < 0)
		bail(CDAEMON_EX_OSERR, "CDAEMON_WAIT=ready: cannot make the notify socket: %s",
		     strerror(errno));
}

/* The socket, bound under a random abstract name; name gets it as
 * NOTIFY_SOCKET spells it ("@" for the leading NUL). -1 with errno. */
int notify_open(char *name, size_t size)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)
		goto fail;
	for (int tries = 0;; tries++) {
		unsigned char r[12];
		struct sockaddr_un un = { .sun_family = AF_UNIX };
		if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
			/* No entropy yet (early boot): the pid and time are
			 * unique, if guessable; the credentials still decide. */
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			long long x[2] = { ts.tv_nsec ^ (long long)getpid() << 32, ts.tv_sec + tries };
			memcpy(r, x, sizeof r);
		}
		int len = snprintf(un.sun_path + 1, sizeof un.sun_path - 1, "cdaemon/notify/%d/", (int)getpid());
		for (size_t i = 0; i < sizeof r; i++)
			len += snprintf(un.sun_path + 1 + len, sizeof un.sun_path - 1 - (size_t)len, "%02x", r[i]);
		if (bind(fd, (struct sockaddr *)&un, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len)) == 0) {
			snprintf(name, size, "@%s", un.sun_path + 1);
			return fd;
		}
		if (errno != EADDRINUSE || tries >= 8)
			goto fail;
	}
fail:;
	int e = errno;
	close(fd);
	errno = e;
	return -1;
}

/*
 * Read one queued datagram into buf (NOTIFY_MAX bytes). Returns 0 when
 * none is queued, else 1 with *pid the sender's pid (0 if the kernel gave
 * none) and either 0 in *ok and *m parsed, or -1 in *ok and *why: longer
 * than NOTIFY_MAX (cut by the kernel: dropped, not half read) or
 * malformed. Descriptors passed along (SCM_RIGHTS: sd_notify_barrier's
 * BARRIER=1, FDSTORE=1) are closed at once: nothing is kept, and a
 * barrier's sender sees its pipe closed and goes on.
 */
int notify_recv(int fd, char *buf, struct notify_msg *m, pid_t *pid, int *ok, const char **why)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(16 * sizeof(int))];
	} ctl;
	struct iovec iov = { buf, NOTIFY_MAX };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
			     .msg_controllen = sizeof ctl.b };
	ssize_t n;
	do
		n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return 0; /* EAGAIN: none left (or an error the next poll repeats) */
	*pid = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET)
			continue;
		if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
			struct ucred u;
			memcpy(&u, CMSG_DATA(c), sizeof u);
			*pid = u.pid;
		} else if (c->cmsg_type == SCM_RIGHTS) {
			size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < nfd; i++) {
				int rfd;
				memcpy(&rfd, CMSG_DATA(c) + i * sizeof(int), sizeof rfd);
				close(rfd);
			}
		}
	}
	*ok = -1;
	if ((size_t)n > NOTIFY_MAX || (mh.msg_flags & MSG_TRUNC))
		*why = "a datagram longer than " NOTIFY_MAX_TEXT " bytes";
	else
		*ok = notify_parse(buf, (size_t)n < NOTIFY_MAX ? (size_t)n : NOTIFY_MAX, m, why);
	return 1;
}

/* The parent of pid, from /proc/PID/stat, or -1. */
static long parent_of(long pid)
{
	char path[64], stat[512];
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	const char *p = strrchr(read_small(path, stat, sizeof stat), ')');
	/* ") S PPID ...": the command name may hold anything, ')' too. */
	if (!p || !p[1] || !p[2] || !p[3])
		return -1;
	char *end;
	long ppid = strtol(p + 3, &end, 10);
	return end == p + 3 ? -1 : ppid;
}

/* Whether pid is a descendant of ancestor (a child, a grandchild...),
 * walking up the parents; a pid that exits meanwhile is none. The
 * launcher is the start's subreaper: a process of the daemon's tree whose
 * parent exited is re-parented to it, as the child a daemon names in
 * MAINPID= just before it exits is. So a process whose parent is the
 * launcher, other than the middle, counts too: nothing else is ever
 * re-parented to it. */
int is_descendant(pid_t pid, pid_t ancestor, pid_t middle)
{
	long p = pid, self = getpid();
	for (int depth = 0; depth < 256 && p > 1; depth++) {
		long child = p;
		p = parent_of(p);
		if (p == ancestor || (p == self && child != middle))
			return 1;
	}
	return 0;
}
