/*
 * created.c: the one registry of what this start created, and its removal.
 *
 * Owns the record of every file a start made or took over: the lock file
 * beside the pidfile and the pidfile (ones it created, or stale ones it
 * locked and emptied), the log files it created, the unix socket files it
 * bound. Each is recorded when it is made, by its
 * directory's descriptor, its name there and its identity (device and
 * inode); it is removed only while that name still refers to that file,
 * and through that descriptor: never by a path, which the daemon (perhaps
 * less privileged) or anyone who can write to a directory on it may have
 * changed since. A file this start did not make (an existing log, a
 * pidfile another start holds) is never recorded, so never removed.
 *
 * One rule per kind of file, for every way a start can end (rules[]):
 *
 *                  fails before the fork   fails after the fork   succeeds
 *                  (bail in the launcher   (launcher_fail)        (launcher_done,
 *                   or the foreground)                             settle_created)
 *   pidfile        removed                 removed                kept
 *   lock file      removed                 removed                kept
 *   socket file    removed                 removed                kept
 *   log file       removed                 kept: it holds what    kept
 *                                          the daemon said
 *
 * Files are removed newest first, so a file goes before the lock that
 * guards it (pidfile_open records the lock file first: the pidfile, then
 * its lock file).
 *
 * Runs in: the launcher and a foreground run, as the starting user,
 * before the privilege drop; removal also after the fork, in the launcher
 * (which still holds the pidfile's lock), and on a foreground run's
 * failed drop. The middle and the daemon inherit the registry but never
 * act on it (bail there leaves removal to the launcher); the daemon
 * closes its descriptors with every other inherited one. System calls
 * only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

static const struct rule {
	const char *what;
	int after_fork; /* removed when the start fails after the fork too */
} rules[] = {
	[CREATED_PIDFILE] = { "pidfile", 1 },
	[CREATED_LOCK] = { "lock file", 1 },
	[CREATED_SOCKET] = { "socket file", 1 },
	[CREATED_LOG] = { "log file", 0 },
};

/* At most two logs, the pidfile and its lock, the listeners' sockets. */
#define MAX_CREATED (4 + MAX_LISTEN)

static struct created {
	int kind;               /* CREATED_* */
	int dirfd;              /* its directory (O_PATH) */
	int own_dirfd;          /* dirfd was opened for this record: closed when it settles */
	char name[NAME_MAX + 1];
	dev_t dev;
	ino_t ino;
} created[MAX_CREATED];
static int ncreated;

void note_created(int kind, int dirfd, int own_dirfd, const char *name, const struct stat *st)
{
	struct created *c = &created[ncreated];
	if (ncreated == MAX_CREATED) /* more than the configuration allows */
		bail(CDAEMON_EX_SOFTWARE, "cannot keep track of the %s %s: more than %d files created",
		     rules[kind].what, quote(name), MAX_CREATED);
	c->kind = kind;
	c->dirfd = dirfd;
	c->own_dirfd = own_dirfd;
	snprintf(c->name, sizeof c->name, "%s", name);
	c->dev = st->st_dev;
	c->ino = st->st_ino;
	ncreated++;
}

void forget_created(int kind)
{
	for (int i = 0; i < ncreated; i++) {
		if (created[i].kind != kind)
			continue;
		if (created[i].own_dirfd)
			close(created[i].dirfd);
		memmove(&created[i], &created[i + 1], (ncreated - i - 1) * sizeof created[0]);
		ncreated--;
		i--;
	}
}

void remove_created(int after_fork)
{
	for (int i = ncreated - 1; i >= 0; i--) {
		const struct created *c = &created[i];
		struct stat st;
		if (after_fork && !rules[c->kind].after_fork)
			continue;
		if (fstatat(c->dirfd, c->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == c->dev &&
		    st.st_ino == c->ino)
			unlinkat(c->dirfd, c->name, 0);
	}
	ncreated = 0;
}

void settle_created(void)
{
	for (int i = 0; i < ncreated; i++)
		if (created[i].own_dirfd)
			close(created[i].dirfd);
	ncreated = 0;
}
