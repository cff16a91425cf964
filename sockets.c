/*
 * sockets.c: CDAEMON_LISTEN binding.
 *
 * Owns step 5a: descriptors 3 .. 3+n-1 held before anything else is
 * opened, each address bound and listening at its final descriptor, a
 * stale unix socket file replaced (in a directory others can write to,
 * only a socket of the starting user's with one name: files.c's rules),
 * and the addresses as bound recorded for
 * Info() (cdaemon_listeners). A socket file it made is noted in created.c.
 *
 * Runs in: the launcher (and a foreground run), as the starting user,
 * before the fork and before the privilege drop (so root's launcher binds
 * a port below 1024 for a daemon that will not be root), after the
 * pidfile (whose lock names a running daemon) and before the launcher
 * changes directory (relative unix paths).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "internal.h"

/* ---------------------------------------------------------------------
 * 5a. Listeners. The launcher binds and listens as the starting user, so
 * root's launcher binds a port below 1024 for a daemon that will not be
 * root, and before the fork, so a client that connects the moment the
 * launcher returns is queued in the backlog, not refused. Each socket
 * lands at its final descriptor, 3 + its position, as systemd's socket
 * activation passes them; package cdaemon's init sets LISTEN_FDS,
 * LISTEN_PID and LISTEN_FDNAMES.
 */

/*
 * Hold descriptors 3 .. 3+n-1 with /dev/null before anything else is
 * opened, so nothing lands there and bind_listeners can put each socket
 * in its place. In the daemon whatever was inherited there would be
 * closed anyway (CDAEMON_KEEP_FDS may not name them); in the foreground
 * it belongs to someone, so it is refused.
 */
void reserve_listen_fds(const struct config *c, int foreground)
{
	int n = c->nlisten, null, hold;
	if (!n)
		return;
	for (int fd = 3; foreground && fd < 3 + n; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			bail(CDAEMON_EX_USAGE,
			     "CDAEMON_LISTEN: in the foreground the listeners go to descriptors 3 to %d, "
			     "as systemd passes them, but descriptor %d is already open",
			     2 + n, fd);
	null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	hold = null < 0 ? -1 : fcntl(null, F_DUPFD_CLOEXEC, 3 + n);
	if (hold < 0)
		bail(CDAEMON_EX_OSERR, "cannot open /dev/null: %s", strerror(errno));
	close(null);
	for (int fd = 3; fd < 3 + n; fd++)
		if (dup3(hold, fd, O_CLOEXEC) < 0)
			bail(CDAEMON_EX_OSERR, "CDAEMON_LISTEN: dup3 to %d: %s", fd, strerror(errno));
	close(hold);
}

/* The address as bound, for Info(): the port the kernel chose for 0, an
 * absolute path for a relative unix one. */
static void record_listener(int i, const struct listen_addr *l, int fd)
{
	char *dst = cdaemon_listeners.addr[i], host[INET6_ADDRSTRLEN] = "";
	size_t size = sizeof cdaemon_listeners.addr[i];
	struct sockaddr_storage ss = { 0 };
	socklen_t len = sizeof ss;
	const struct sockaddr_un *un = (const struct sockaddr_un *)&l->addr;
	if (l->addr.ss_family == AF_UNIX) {
		if (!un->sun_path[0]) {
			snprintf(dst, size, "unix:@%.*s", (int)(l->len - sizeof(sa_family_t) - 1),
				 un->sun_path + 1);
		} else {
			memcpy(dst, "unix:", 5);
			absolute(dst + 5, size - 5, un->sun_path);
		}
		return;
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 || len > sizeof ss)
		memcpy(&ss, &l->addr, sizeof ss);
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 a;
		memcpy(&a, &ss, sizeof a);
		inet_ntop(AF_INET6, &a.sin6_addr, host, sizeof host);
		snprintf(dst, size, "tcp:[%s]:%u", host, ntohs(a.sin6_port));
	} else {
		struct sockaddr_in a;
		memcpy(&a, &ss, sizeof a);
		inet_ntop(AF_INET, &a.sin_addr, host, sizeof host);
		snprintf(dst, size, "tcp:%s:%u", host, ntohs(a.sin_port));
	}
}

/* A unix socket file nothing accepts on (a daemon that is gone left it):
 * stale, like an unlocked pidfile. */
static int stale_socket(const struct sockaddr_un *un, socklen_t len)
{
	struct stat st;
	int fd, r;
	if (!un->sun_path[0] || lstat(un->sun_path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return 0;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	r = connect(fd, (const struct sockaddr *)un, len);
	close(fd);
	return r < 0 && errno == ECONNREFUSED;
}

/* A unix socket path in a shared directory (files.c's shared_dir): the
 * file there may be someone else's. Never bind over, or unlink as stale,
 * a symbolic link, a socket someone else owns or one with other names. */
static void check_socket_path(const struct listen_addr *l)
{
	const struct sockaddr_un *un = (const struct sockaddr_un *)&l->addr;
	char path[sizeof un->sun_path + 1];
	struct stat dir, st;
	if (l->addr.ss_family != AF_UNIX || !un->sun_path[0])
		return;
	memcpy(path, un->sun_path, sizeof un->sun_path);
	path[sizeof un->sun_path] = 0;
	stat_parent(path, &dir);
	if (!shared_dir(&dir) || lstat(path, &st) < 0)
		return;
	if (S_ISLNK(st.st_mode))
		refuse_link("CDAEMON_LISTEN", l->text, &dir);
	check_stat("CDAEMON_LISTEN", l->text, &st, &dir, 0);
}

/* A listening socket for l, or -1 with errno; *made: it created a file. */
static int bind_one(const struct listen_addr *l, mode_t mask, int *made)
{
	struct sockaddr_storage ss;
	struct sockaddr_un *un = (struct sockaddr_un *)&ss;
	socklen_t len = l->len;
	int one = 1, r, retried = 0, fd, unix_file;

	/* A relative unix path is bound by its absolute name where that
	 * fits, so the socket's own address (getsockname, Go's Addr) says
	 * where it is. */
	memcpy(&ss, &l->addr, sizeof ss);
	unix_file = ss.ss_family == AF_UNIX && un->sun_path[0];
	if (unix_file && un->sun_path[0] != '/') {
		char abs[PATH_MAX];
		absolute(abs, sizeof abs, un->sun_path);
		if (strlen(abs) < sizeof un->sun_path) {
			memcpy(un->sun_path, abs, strlen(abs) + 1);
			len = offsetof(struct sockaddr_un, sun_path) + strlen(abs) + 1;
		}
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* As every server (and Go's net.Listen) does: a restart may bind
	 * while connections of the previous instance are in TIME_WAIT. */
	if (!unix_file && ss.ss_family != AF_UNIX)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	for (;;) {
		/* A unix socket file gets 0777 less CDAEMON_UMASK. */
		mode_t old = umask(mask);
		r = bind(fd, (const struct sockaddr *)&ss, len);
		umask(old);
		if (r == 0 || errno != EADDRINUSE || !unix_file || retried++)
			break;
		struct stat st;
		if (lstat(un->sun_path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
			errno = EEXIST; /* a file that is not a socket: not "in use" */
			break;
		}
		if (!stale_socket(un, len)) {
			errno = EADDRINUSE;
			break;
		}
		unlink(un->sun_path);
	}
	*made = r == 0 && unix_file;
	if (r < 0 || listen(fd, SOMAXCONN) < 0) {
		int e = errno;
		if (*made)
			unlink(un->sun_path);
		*made = 0;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* A unix socket file this start bound goes into the registry (created.c),
 * through its directory's descriptor, taken now: after the fork the
 * daemon, perhaps less privileged, may put a symbolic link in place of a
 * directory on the path, and a removal by path would follow it. */
static void note_socket(const char *path)
{
	struct stat st;
	char dir[PATH_MAX];
	const char *name = split_path(path, dir);
	int dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0 || fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISSOCK(st.st_mode)) {
		int e = dirfd < 0 ? errno : ENOTSOCK;
		unlink(path); /* before the fork: the path is still the one bound */
		bail(CDAEMON_EX_OSERR, "CDAEMON_LISTEN: cannot keep track of %s: %s", quote(path),
		     strerror(e));
	}
	note_created(CREATED_SOCKET, dirfd, 1, name, &st);
}

/* Bind and listen at 3, 4, ...; on failure bail removes the pidfile and
 * the socket files this start made. */
void bind_listeners(const struct config *c)
{
	for (int i = 0; i < c->nlisten; i++) {
		const struct listen_addr *l = &c->listen[i];
		check_socket_path(l);
		/* The daemon being replaced has it: the same socket (replace.c). */
		int made = 0, fd = replace_listener(i);
		if (fd < 0)
			fd = bind_one(l, c->umask, &made);
		if (fd < 0 && errno == EADDRINUSE)
			bail(CDAEMON_EX_TEMPFAIL, "CDAEMON_LISTEN: %s is in use", quote(l->text));
		if (fd < 0)
			bail(CDAEMON_EX_CANTCREAT, "CDAEMON_LISTEN: cannot listen on %s: %s",
				     quote(l->text), strerror(errno));
		record_listener(i, l, fd);
		/* By its absolute path: the launcher changes directory next. */
		if (made)
			note_socket(cdaemon_listeners.addr[i] + 5);
		if (dup3(fd, 3 + i, O_CLOEXEC) < 0)
			bail(CDAEMON_EX_OSERR, "CDAEMON_LISTEN: dup3 to %d: %s", 3 + i,
				     strerror(errno));
		close(fd);
	}
	cdaemon_listeners.n = c->nlisten;
}
