/*
 * pidfile.c: the pidfile handle.
 *
 * Owns CDAEMON_PIDFILE and its lock file, PIDFILE.lock: opening both under
 * the rules below (pidfile_take, pidfile_check: the one place they are
 * kept), the lock (a flock on a read-only descriptor on the lock file, the
 * only one the daemon keeps), saying who holds it when another start has
 * it ("already running", 75), writing the pid, and settling the handle
 * when a start succeeds. Their removal when a start fails is created.c's:
 * pidfile_open records each file there once it is this start's, the lock
 * file first, so the pidfile goes first.
 *
 * Runs in: the launcher, as the starting user (open); the middle (write:
 * the daemon's pid, through the writable descriptor, which the daemon
 * never keeps); a foreground run (open, write its own pid, settle, after
 * the privilege drop so a failed drop still removes the files). After the
 * fork only system calls.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "internal.h"

/*
 * The pidfile handle, in the spirit of FreeBSD's pidfile(3):
 * pidfile_open takes the lock and the file, pidfile_write puts a pid in,
 * pidfile_settle keeps only the locked descriptor for the process's life.
 * When a start fails the registry of created files (created.c) takes both
 * away: pidfile_open records each there as soon as it is this start's
 * (created, or a stale one taken over under the lock), and forgets it
 * when it is not.
 *
 * The lock that says "already running" is a flock on a lock file beside
 * the pidfile, PIDFILE.lock, created with mode 0600: only the starter (its
 * euid) can open it, so only the daemon can hold it. The pidfile itself
 * stays 0644 for everyone's tools, and a flock anyone takes on it decides
 * nothing. The lock belongs to the open file description, which fork
 * shares, so it passes from the launcher to the daemon and lasts until the
 * daemon's last copy closes; that descriptor is read-only (a daemon that
 * dropped its privileges cannot write the file, and has no descriptor on
 * the pidfile at all), and O_CLOEXEC keeps it from programs the daemon
 * runs. The handle keeps its directory open, so removal works after chdir
 * (the registry removes through it), a file only while its name still
 * refers to the file locked or opened: the pidfile first, then the lock
 * file, while the launcher still holds the lock.
 *
 * A lock only means something on the one file every start finds at the
 * path. So, for the lock file and the pidfile alike: never follow a
 * symbolic link; refuse a file with other names (a hard link: the pid
 * would be written into someone else's file); apply the shared-directory
 * rules; after locking, check the name still refers to the locked file (a
 * failed start may have removed it meanwhile) or start over; and empty the
 * pidfile, so it never names a stale pid while we start.
 */
struct pidfh pidfile = { .fd = -1, .wfd = -1, .dirfd = -1 }; /* struct pidfh: internal.h */

/* The pid a pidfile names: decimal digits and a newline, or 0. It is
 * input from whoever wrote the file. */
static long read_pid(int fd)
{
	char buf[32];
	char *end;
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	if (n <= 0 || !isdigit((unsigned char)buf[0]))
		return 0;
	buf[n] = 0;
	errno = 0;
	long pid = strtol(buf, &end, 10);
	if (errno || (*end && strcmp(end, "\n")) || pid < 1 || pid > INT_MAX)
		return 0;
	return pid;
}

/* The pid the pidfile at name in dirfd names, or 0: read without
 * following a link or blocking on a FIFO, from a regular file only. */
static long read_pidfile(int dirfd, const char *name)
{
	struct stat st;
	long pid = 0;
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		pid = read_pid(fd);
	close(fd);
	return pid;
}

struct holder {
	dev_t dev;
	ino_t ino;
	long pid;  /* out: the process found holding the lock */
	long fd;   /* scratch: the fd being looked at */
};

/* Does the open file description at /proc/<pid>/fd/<fd> hold a flock on
 * the file? fdinfo lists the locks of that very description. */
static int fd_holds_lock(long fd, void *arg)
{
	struct holder *h = arg;
	char path[64], info[1024];
	struct stat st;
	snprintf(path, sizeof path, "/proc/%ld/fd/%ld", h->pid, fd);
	if (stat(path, &st) < 0 || st.st_dev != h->dev || st.st_ino != h->ino)
		return 0;
	snprintf(path, sizeof path, "/proc/%ld/fdinfo/%ld", h->pid, fd);
	int ifd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = ifd < 0 ? -1 : read(ifd, info, sizeof info - 1);
	if (ifd >= 0)
		close(ifd);
	info[n > 0 ? n : 0] = 0;
	return strstr(info, "lock:") && strstr(info, "FLOCK");
}

static int holds_lock(long pid, void *arg)
{
	struct holder *h = arg;
	char path[64];
	if (pid == getpid())
		return 0;
	h->pid = pid;
	snprintf(path, sizeof path, "/proc/%ld/fd", pid);
	return each_number(path, fd_holds_lock, h) == 1;
}

/* "already running": say which process holds the lock. The pidfile names
 * a pid, but whoever wrote it may be gone (a child that inherited the lock
 * holds it) or may have lied: name the holder the kernel shows. fd is the
 * lock file's. */
static _Noreturn void refuse_locked(const char *path, int fd)
{
	struct stat st;
	struct holder h = { 0 };
	char raw[32], comm[64], proc[64];
	long named = read_pidfile(pidfile.dirfd, pidfile.name);

	if (fstat(fd, &st) == 0) {
		h.dev = st.st_dev;
		h.ino = st.st_ino;
	}
	if (named > 0 && holds_lock(named, &h))
		bail(CDAEMON_EX_TEMPFAIL, "already running: %s is locked by pid %ld", quote(path),
		     named);
	if (each_number("/proc", holds_lock, &h) == 1) {
		snprintf(proc, sizeof proc, "/proc/%ld/comm", h.pid);
		read_small(proc, raw, sizeof raw);
		escape(comm, sizeof comm, raw, strlen(raw));
		if (named > 0)
			bail(CDAEMON_EX_TEMPFAIL,
			     "already running: %s is locked by pid %ld (%s), not by pid %ld that it "
			     "names",
			     quote(path), h.pid, comm, named);
		/* No pid yet: a start holds it, in its launcher, middle or daemon. */
		bail(CDAEMON_EX_TEMPFAIL,
		     "already running: %s is locked by a starting daemon (process %ld, %s)",
		     quote(path), h.pid, comm);
	}
	if (named > 0)
		bail(CDAEMON_EX_TEMPFAIL,
		     "already running: %s is locked by a process this user cannot see (pid %ld, "
		     "which it names, does not hold the lock)",
		     quote(path), named);
	bail(CDAEMON_EX_TEMPFAIL, "already running: %s is locked by a starting daemon", quote(path));
}

/*
 * Opens name in the handle's directory, for the pidfile or its lock file
 * (path, for messages): created exclusively if it is not there (mode), else
 * the file there, never through a symbolic link, without blocking on a
 * FIFO; refused unless it is a regular file with one name that passes the
 * shared-directory rules. *created: this call made it.
 */
int pidfile_take(const char *path, const char *name, int flags, mode_t mode,
		 const struct stat *dir, int *created, struct stat *st)
{
	int fd;
	for (;;) {
		fd = openat(pidfile.dirfd, name, flags | O_CREAT | O_EXCL, mode);
		*created = fd >= 0;
		if (fd >= 0 || errno != EEXIST)
			break;
		fd = openat(pidfile.dirfd, name, flags | O_NONBLOCK);
		if (fd >= 0 || errno != ENOENT)
			break; /* ENOENT: removed since; create it again */
	}
	if (fd < 0 && errno == ELOOP && shared_dir(dir))
		refuse_link("CDAEMON_PIDFILE", path, dir);
	if (fd < 0 && errno == ELOOP)
		bail(CDAEMON_EX_CANTCREAT, "CDAEMON_PIDFILE: refusing %s: it is a symbolic link",
		     quote(path));
	if (fd < 0)
		bail(CDAEMON_EX_CANTCREAT, "CDAEMON_PIDFILE: cannot open %s: %s", quote(path),
		     strerror(errno));
	if (fstat(fd, st) < 0)
		bail(CDAEMON_EX_CANTCREAT, "CDAEMON_PIDFILE: cannot open %s: %s", quote(path),
		     strerror(errno));
	return fd;
}

/* The checks pidfile_take's caller makes once the handle holds the file,
 * as what bail removes only if this start created it. */
void pidfile_check(const char *path, int fd, const struct stat *st, const struct stat *dir,
		   int created)
{
	char why[64];
	if (!S_ISREG(st->st_mode))
		bail(CDAEMON_EX_CANTCREAT, "CDAEMON_PIDFILE: refusing %s: not a regular file",
		     quote(path));
	if (st->st_nlink != 1)
		bail(CDAEMON_EX_CANTCREAT,
		     "CDAEMON_PIDFILE: refusing %s: it has %lu hard links (other names for the same "
		     "file)%s%s",
		     quote(path), (unsigned long)st->st_nlink, shared_dir(dir) ? ", in " : "",
		     shared_dir(dir) ? shared_why(dir, why, sizeof why) : "");
	check_file("CDAEMON_PIDFILE", path, fd, dir, created);
}

/*
 * Takes the lock: opens (or creates, 0600) the lock file read-only and
 * flocks it; 75 naming the holder if another process holds it. Until it
 * returns, the handle's lock is this start's only if locked is set.
 */
static void pidfile_lock(const char *path, const struct stat *dir)
{
	struct pidfh *pf = &pidfile;
	struct stat st, now;
	char lockpath[PATH_MAX + 8];
	int created;

	snprintf(lockpath, sizeof lockpath, "%s.lock", path);
	for (;;) {
		int fd = pidfile_take(lockpath, pf->lock, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
				      0600, dir, &created, &st);
		pf->fd = fd;
		pf->ldev = st.st_dev;
		pf->lino = st.st_ino;
		if (created) /* ours: a failure from here on removes it */
			note_created(CREATED_LOCK, pf->dirfd, 0, pf->lock, &st);
		/* Before the lock: a file someone else made is refused (73),
		 * whether or not they hold a lock on it, and stays. */
		pidfile_check(lockpath, fd, &st, dir, created);
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			if (errno != EWOULDBLOCK)
				bail(CDAEMON_EX_CANTCREAT, "CDAEMON_PIDFILE: cannot lock %s: %s",
				     quote(lockpath), strerror(errno));
			/* Locked by another start, even one that opened the file
			 * we just created: it is theirs, never remove it. */
			forget_created(CREATED_LOCK);
			refuse_locked(path, fd);
		}
		if (!created) /* a stale one, taken over: ours to remove too */
			note_created(CREATED_LOCK, pf->dirfd, 0, pf->lock, &st);
		if (fstatat(pf->dirfd, pf->lock, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
		    now.st_dev == st.st_dev && now.st_ino == st.st_ino)
			return;
		/* Removed or replaced before we locked it: not ours to remove. */
		forget_created(CREATED_LOCK);
		pf->fd = -1;
		close(fd);
	}
}

/*
 * taken: for a replacement (replace.c), the running daemon's locked
 * lock-file descriptor, copied: the lock is shared with it, so the lock
 * file is not locked again and the pidfile is opened under the same rules
 * but not emptied, nor recorded for removal: it goes on naming the running
 * daemon until the new one is ready. -1 otherwise.
 */
void pidfile_open(const char *path, int taken)
{
	struct pidfh *pf = &pidfile;
	struct stat st, dir;
	char dirname[PATH_MAX];
	const char *name = split_path(path, dirname);

	snprintf(pf->name, sizeof pf->name, "%s", name);
	snprintf(pf->lock, sizeof pf->lock, "%s.lock", name);
	pf->dirfd = open(dirname, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (pf->dirfd < 0 || !*name)
		bail(CDAEMON_EX_CANTCREAT, "CDAEMON_PIDFILE: cannot open %s: %s", quote(path),
		     strerror(*name ? errno : EISDIR));
	if (fstat(pf->dirfd, &dir) < 0)
		memset(&dir, 0, sizeof dir);
	check_dir("CDAEMON_PIDFILE", path, &dir);
	if (taken >= 0) {
		struct stat t, now;
		if (fstat(taken, &t) < 0 || fstatat(pf->dirfd, pf->lock, &now, AT_SYMLINK_NOFOLLOW) < 0 ||
		    t.st_dev != now.st_dev || t.st_ino != now.st_ino)
			bail(CDAEMON_EX_TEMPFAIL,
			     "CDAEMON_REPLACE: the lock file of %s was replaced while the running daemon "
			     "was taken over; try again",
			     quote(path));
		/* The running daemon's lock file gets every start's rules: one
		 * another user owns in a shared directory is theirs (73), and
		 * so are the process and sockets that hold it. Nothing of the
		 * old daemon has been touched yet. */
		char lockpath[PATH_MAX + 8];
		snprintf(lockpath, sizeof lockpath, "%s.lock", path);
		pidfile_check(lockpath, taken, &t, &dir, 0);
		pf->fd = taken;
		pf->ldev = t.st_dev;
		pf->lino = t.st_ino;
	} else
		pidfile_lock(path, &dir);
	/* Holding the lock, the pidfile is ours to take over: no other
	 * start writes or removes it meanwhile. */
	pf->wfd = pidfile_take(path, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0644, &dir,
			       &pf->created, &st);
	pf->dev = st.st_dev;
	pf->ino = st.st_ino;
	if (pf->created) /* ours: a failure from here on removes it */
		note_created(CREATED_PIDFILE, pf->dirfd, 0, name, &st);
	pidfile_check(path, pf->wfd, &st, &dir, pf->created); /* someone else's stays */
	if (taken >= 0)
		return; /* the running daemon's: kept as it is (replace.c rewrites it) */
	if (!pf->created) /* a stale one, taken over under the lock: ours to remove */
		note_created(CREATED_PIDFILE, pf->dirfd, 0, name, &st);
	if (ftruncate(pf->wfd, 0) < 0)
		bail(CDAEMON_EX_CANTCREAT, "CDAEMON_PIDFILE: cannot write %s: %s", quote(path),
		     strerror(errno));
}

/* The pid and a newline: written first, then the file cut to that length,
 * so it never reads empty in between. -1 with errno on failure. */
int pidfile_write(pid_t pid)
{
	char text[16];
	int n = snprintf(text, sizeof text, "%d\n", (int)pid);
	if (pwrite(pidfile.wfd, text, n, 0) != n)
		return -1;
	return ftruncate(pidfile.wfd, n);
}

/* The start succeeded: keep only the locked descriptor. */
void pidfile_settle(void)
{
	if (pidfile.dirfd >= 0)
		close(pidfile.dirfd);
	if (pidfile.wfd >= 0)
		close(pidfile.wfd);
	pidfile.dirfd = pidfile.wfd = -1;
}
