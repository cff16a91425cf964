/*
 * created.c: what this start created, and its removal.
 *
 * Owns the records of the files a start made: the log files open_target
 * created and the unix socket files bind_listeners bound. A start that
 * fails before the fork removes them (bail); a start that fails after it
 * removes the sockets (launcher_fail) but keeps the logs, which hold what
 * the daemon said. A file is removed only while its name still refers to
 * the file this start made (device and inode), sockets through their
 * directory's descriptor, never by a path someone may have changed. The
 * pidfile's own record is its handle (pidfile.c).
 *
 * Runs in: the launcher (and a foreground run), before and after the
 * fork, as the starting user; never in the middle or the daemon, which
 * inherit the records but must not act on them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

/* Log files this start created, by absolute path (the launcher changes
 * directory before it forks) and identity: a start that fails before the
 * fork removes them, if the name still refers to the file it created.
 * After the fork a log is kept: it holds what the daemon said. */
static struct created_log {
	char path[PATH_MAX];
	dev_t dev;
	ino_t ino;
} created_logs[2];
static int ncreated_logs;

void note_created_log(const char *path, int fd)
{
	struct created_log *l = &created_logs[ncreated_logs];
	struct stat st;
	if (ncreated_logs == 2 || fstat(fd, &st) < 0)
		return;
	absolute(l->path, sizeof l->path, path);
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	ncreated_logs++;
}

void remove_created_logs(void)
{
	for (int i = 0; i < ncreated_logs; i++) {
		struct created_log *l = &created_logs[i];
		struct stat st;
		if (lstat(l->path, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino)
			unlink(l->path);
	}
	ncreated_logs = 0;
}

/*
 * Unix socket files this start created: a failed start removes them
 * (step 5a binds them, after the pidfile). Each through its directory's
 * descriptor, taken when it was bound, and only while the name still
 * refers to the socket made: after the fork the daemon, perhaps less
 * privileged, may have put a symbolic link in place of a directory on
 * the path, and a removal by path would follow it to another file.
 */
static struct created_socket {
	int dirfd;
	char name[NAME_MAX + 1];
	dev_t dev;
	ino_t ino;
} created_sockets[MAX_LISTEN];
static int ncreated_sockets;

void note_created_socket(const char *path)
{
	struct created_socket *cs = &created_sockets[ncreated_sockets];
	struct stat st;
	char dir[PATH_MAX];
	snprintf(cs->name, sizeof cs->name, "%s", split_path(path, dir));
	cs->dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cs->dirfd < 0 || fstatat(cs->dirfd, cs->name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISSOCK(st.st_mode)) {
		int e = cs->dirfd < 0 ? errno : ENOTSOCK;
		unlink(path); /* before the fork: the path is still the one bound */
		bail(CDAEMON_EX_OSERR, "CDAEMON_LISTEN: cannot keep track of %s: %s", quote(path),
		     strerror(e));
	}
	cs->dev = st.st_dev;
	cs->ino = st.st_ino;
	ncreated_sockets++;
}

void remove_created_sockets(void)
{
	for (int i = 0; i < ncreated_sockets; i++) {
		struct created_socket *cs = &created_sockets[i];
		struct stat st;
		if (fstatat(cs->dirfd, cs->name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    st.st_dev == cs->dev && st.st_ino == cs->ino)
			unlinkat(cs->dirfd, cs->name, 0);
	}
	ncreated_sockets = 0;
}

/* The start succeeded in the foreground: the sockets stay, and so that no
 * descriptor leaks into the program, the directories are let go. */
void settle_created_sockets(void)
{
	for (int i = 0; i < ncreated_sockets; i++)
		close(created_sockets[i].dirfd);
	ncreated_sockets = 0;
}
