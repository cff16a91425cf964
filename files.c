/*
 * files.c: the daemon's stdio targets, logs and directories.
 *
 * Owns step 5 but the pidfile: CDAEMON_STDIN/STDOUT/STDERR/LOG opened
 * (FIFOs without blocking), CDAEMON_CHDIR and CDAEMON_CHROOT opened and
 * checked, the rules for a directory others can write to (shared_dir,
 * check_dir, check_file, check_stat, refuse_link: sticky, no symlink
 * followed, our own file with one name), which the pidfile, its lock file
 * and unix socket paths follow too,
 * and the absolute paths Info() and ReopenLogs() report. Also the small
 * helpers other files share: each_number (a /proc directory walked
 * without allocation), split_path, absolute.
 *
 * Runs in: the launcher, as the starting user, before the fork, with
 * umask 0, relative to the starting directory (it changes directory only
 * after everything is opened). A mistake bails with CDAEMON_EX_CANTCREAT
 * (73); a log this start created is recorded in created.c's registry so
 * a failed start removes it. The helpers are safe in every state (system
 * calls only).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "internal.h"

/* ---------------------------------------------------------------------
 * 5. Open, in the launcher and relative to its working directory, all the
 * daemon will keep: a mistake is reported on the user's terminal, before
 * anything is forked. The umask is 0 here so created files get exactly
 * the modes below.
 */

/* If the launcher was started with 0, 1 or 2 closed, the files opened
 * below would land there and be clobbered by dup2: fill them first. */
void fill_std_fds(void)
{
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			bail(CDAEMON_EX_CANTCREAT, "cannot open /dev/null: %s", strerror(errno));
}

/* Calls fn(n, arg) for each entry of directory path whose name is a
 * number, until fn returns non-zero: then 1. 0 when every entry was seen,
 * -1 if path cannot be read. Reads
 * with getdents64 into a fixed buffer: no allocation (opendir would). */
int each_number(const char *path, int (*fn)(long n, void *arg), void *arg)
{
	char buf[4096];
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	long n;
	/* Our own descriptor list shows dfd itself: skip it (a callback
	 * might close it). Another process's numbers are all theirs. */
	int own = !strcmp(path, "/proc/self/fd");
	if (dfd < 0)
		return -1;
	while ((n = syscall(SYS_getdents64, dfd, buf, sizeof buf)) > 0)
		for (long off = 0; off < n;) {
			struct {
				unsigned long long ino;
				long long off;
				unsigned short reclen;
				unsigned char type;
				char name[];
			} *d = (void *)(buf + off);
			char *end;
			off += d->reclen;
			long v = strtol(d->name, &end, 10);
			if (isdigit((unsigned char)d->name[0]) && !*end && !(own && v == dfd) &&
			    fn(v, arg)) {
				close(dfd);
				return 1;
			}
		}
	close(dfd);
	return 0;
}

/* Splits path into the directory it is in (dir, PATH_MAX bytes: "." for a
 * bare name) and returns its last component ("" if path ends in '/'). */
const char *split_path(const char *path, char *dir)
{
	const char *slash = strrchr(path, '/');
	size_t n = !slash ? 0 : slash == path ? 1 : (size_t)(slash - path);
	memcpy(dir, n ? path : ".", n ? n : 1);
	dir[n ? n : 1] = 0;
	return slash ? slash + 1 : path;
}

/* The directory path is in, looked at (zeroed if it cannot be: the open
 * that follows then says why). */
void stat_parent(const char *path, struct stat *st)
{
	char dir[PATH_MAX];
	split_path(path, dir);
	if (stat(dir, st) < 0)
		memset(st, 0, sizeof *st);
}

/*
 * A file in a directory someone else may write to is trusted only if it is
 * the one we open. A directory is shared when a uid other than ours (the
 * euid) and root owns it, or its group or others may write to it: they can
 * put a file of their choosing, or a symbolic link to one of ours, at the
 * name we are about to open as root. So there: never follow a symbolic
 * link at the last component; refuse a file someone else owns, or one with
 * other names (hard links), unless this start created it. And a directory
 * anyone can write to must be sticky (check_dir): anyone could replace the
 * file between two opens. The pidfile, its lock file, the logs, the stdio
 * targets and unix socket paths all follow these rules.
 */
int shared_dir(const struct stat *dir)
{
	return (dir->st_mode & (S_IWGRP | S_IWOTH)) ||
	       (dir->st_uid != geteuid() && dir->st_uid != 0);
}

/* Who else may write to a shared directory, for a refusal: anyone, its
 * owner, or its group. */
const char *shared_why(const struct stat *dir, char *buf, size_t size)
{
	if (dir->st_mode & S_IWOTH)
		snprintf(buf, size, "a directory anyone can write to");
	else if (dir->st_uid != geteuid() && dir->st_uid != 0)
		snprintf(buf, size, "a directory owned by uid %lu", (unsigned long)dir->st_uid);
	else
		snprintf(buf, size, "a directory group %lu can write to", (unsigned long)dir->st_gid);
	return buf;
}

void check_dir(const char *var, const char *path, const struct stat *dir)
{
	if ((dir->st_mode & S_IWOTH) && !(dir->st_mode & S_ISVTX))
		bail(CDAEMON_EX_CANTCREAT,
		     "%s: refusing %s: its directory is writable by anyone and not sticky, so anyone "
		     "could replace the file",
		     var, quote(path));
}

void check_file(const char *var, const char *path, int fd, const struct stat *dir,
		       int created)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		bail(CDAEMON_EX_CANTCREAT, "%s: cannot open %s: %s", var, quote(path), strerror(errno));
	check_stat(var, path, &st, dir, created);
}

void check_stat(const char *var, const char *path, const struct stat *st, const struct stat *dir,
		int created)
{
	char why[64];
	if (!shared_dir(dir) || created || !(S_ISREG(st->st_mode) || S_ISSOCK(st->st_mode)))
		return;
	if (st->st_uid != geteuid())
		bail(CDAEMON_EX_CANTCREAT, "%s: refusing %s: owned by uid %lu, in %s", var, quote(path),
		     (unsigned long)st->st_uid, shared_why(dir, why, sizeof why));
	if (st->st_nlink != 1)
		bail(CDAEMON_EX_CANTCREAT,
		     "%s: refusing %s: it has %lu hard links (other names for the same file), in %s",
		     var, quote(path), (unsigned long)st->st_nlink, shared_why(dir, why, sizeof why));
}

_Noreturn void refuse_link(const char *var, const char *path, const struct stat *dir)
{
	char why[64];
	bail(CDAEMON_EX_CANTCREAT, "%s: refusing %s: it is a symbolic link, in %s", var, quote(path),
	     shared_why(dir, why, sizeof why));
}

/* A log this start created goes into the registry (created.c): a start
 * that fails before the fork removes it. By its directory's descriptor,
 * taken now: the launcher changes directory before it forks. Not
 * recorded if the directory cannot be opened again (the file then stays). */
static void note_log(const char *path, int fd)
{
	char dir[PATH_MAX];
	struct stat st;
	const char *name = split_path(path, dir);
	int dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return;
	if (fstat(fd, &st) < 0) {
		close(dirfd);
		return;
	}
	note_created(CREATED_LOG, dirfd, 1, name, &st);
}

/* O_NONBLOCK only while opening: a FIFO with no reader then fails (ENXIO)
 * instead of blocking the launcher forever, and one with no writer yet
 * opens. The daemon gets the descriptor back in blocking mode. Files the
 * daemon writes follow the shared-directory rules above. */
static int open_target(const char *var, const char *path, int flags, mode_t mode)
{
	struct stat st, dir;
	int writes = (flags & O_ACCMODE) != O_RDONLY, created = 0, fd;

	stat_parent(path, &dir);
	if (writes)
		check_dir(var, path, &dir);
	if (writes && shared_dir(&dir)) {
		flags |= O_NOFOLLOW;
		fd = open(path, (flags | O_EXCL | O_CLOEXEC | O_NOCTTY | O_NONBLOCK), mode);
		created = fd >= 0;
		if (fd < 0 && errno == EEXIST)
			fd = open(path, (flags & ~O_CREAT) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	} else if (flags & O_CREAT) {
		/* Exclusively first, to know whether this start created it;
		 * EEXIST also for any symbolic link, which is then followed. */
		fd = open(path, flags | O_EXCL | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, mode);
		created = fd >= 0;
		if (fd < 0 && errno == EEXIST)
			fd = open(path, flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, mode);
	} else {
		fd = open(path, flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, mode);
	}
	if (fd < 0 && errno == ENXIO)
		bail(CDAEMON_EX_CANTCREAT, "%s: cannot open %s: a FIFO with no reader", var,
		     quote(path));
	if (fd < 0 && errno == ELOOP && (flags & O_NOFOLLOW))
		refuse_link(var, path, &dir);
	if (fd < 0)
		bail(CDAEMON_EX_CANTCREAT, "%s: cannot open %s: %s", var, quote(path), strerror(errno));
	if (created)
		note_log(path, fd);
	if (writes)
		check_file(var, path, fd, &dir, created);
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
		bail(CDAEMON_EX_CANTCREAT, "%s: cannot open %s: %s", var, quote(path), strerror(EISDIR));
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
		bail(CDAEMON_EX_CANTCREAT, "%s: cannot open %s: %s", var, quote(path), strerror(errno));
	return fd;
}

void open_stdio(const struct config *c, struct files *f)
{
	const char *out = c->out ? c->out : c->log;
	const char *err = c->err ? c->err : c->log;
	int null = -1;
	const int wflags = O_WRONLY | O_APPEND | O_CREAT;

	if (!c->in || !out || !err)
		null = open_target("/dev/null", "/dev/null", O_RDWR, 0);
	f->in = c->in ? open_target("CDAEMON_STDIN", c->in, O_RDONLY, 0) : null;
	f->out = out ? open_target(c->out ? "CDAEMON_STDOUT" : "CDAEMON_LOG", out, wflags, 0640)
		     : null;
	if (!err)
		f->err = null;
	else if (out && !strcmp(out, err))
		f->err = f->out; /* one open file: lines from both stay in order */
	else
		f->err = open_target(c->err ? "CDAEMON_STDERR" : "CDAEMON_LOG", err, wflags, 0640);
}

/* CDAEMON_CHDIR, checked now so a mistake is reported before the fork; the
 * launcher changes to it once every relative path has been opened. */
int open_dir(const struct config *c)
{
	int fd = open(c->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		bail(CDAEMON_EX_CANTCREAT, "CDAEMON_CHDIR: cannot change to %s: %s", quote(c->dir),
		     strerror(errno));
	return fd;
}

/*
 * CDAEMON_CHROOT: opened now, relative to the starting directory; the
 * launcher changes into it and the daemon chroots to "." (step 8a), so a
 * path swapped meanwhile changes nothing. CDAEMON_CHDIR is inside it:
 * checked now, resolved as the chrooted daemon will (RESOLVE_IN_ROOT keeps
 * ".." and absolute symlinks inside), entered in step 8a.
 */
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef RESOLVE_IN_ROOT
#define RESOLVE_IN_ROOT 0x10
#endif
struct open_how_ {
	uint64_t flags, mode, resolve;
};

int open_root(const struct config *c)
{
	struct open_how_ how = { O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_IN_ROOT };
	int root = open(c->root, O_PATH | O_DIRECTORY | O_CLOEXEC), dir;
	if (root < 0)
		bail(CDAEMON_EX_CANTCREAT, "CDAEMON_CHROOT: cannot open %s: %s", quote(c->root),
		     strerror(errno));
	dir = (int)syscall(SYS_openat2, root, c->dir, &how, sizeof how);
	if (dir < 0 && errno == ENOSYS) /* before Linux 5.6: without the guard */
		dir = openat(root, c->dir[0] == '/' && c->dir[1] ? c->dir + 1 : c->dir,
			     O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		bail(CDAEMON_EX_CANTCREAT, "CDAEMON_CHDIR: cannot change to %s inside CDAEMON_CHROOT %s: %s",
		     quote(c->dir), quote(c->root), strerror(errno));
	close(dir);
	return root;
}

/* path made absolute against the launcher's working directory; as given
 * if that would not fit. */
void absolute(char *dst, size_t size, const char *path)
{
	const char *dir = cdaemon_state.dir;
	const char *sep = strcmp(dir, "/") ? "/" : "";
	if (!path) {
		if (dst[0]) /* else leave it: a write to a page not yet written costs a fault */
			dst[0] = 0;
	} else if (path[0] == '/' || !dir[0] || strlen(dir) + strlen(sep) + strlen(path) >= size)
		snprintf(dst, size, "%s", path);
	else {
		size_t n = strlen(dir), m = strlen(sep);
		memcpy(dst, dir, n);
		memcpy(dst + n, sep, m);
		memcpy(dst + n + m, path, strlen(path) + 1);
	}
}

/* Info() reports the pidfile as an absolute path, and ReopenLogs()
 * reopens the log files by their absolute paths. */
void record_paths(const struct config *c)
{
	struct cdaemon_state *s = &cdaemon_state;
	absolute(s->root, sizeof s->root, c->root);
	absolute(s->pidfile, sizeof s->pidfile, c->pidfile);
	absolute(s->stdout_path, sizeof s->stdout_path, c->out ? c->out : c->log);
	absolute(s->stderr_path, sizeof s->stderr_path, c->err ? c->err : c->log);
}
