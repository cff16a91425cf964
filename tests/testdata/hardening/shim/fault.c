/*
 * fault.c: an LD_PRELOAD shim that makes one libc call fail in one of
 * cdaemon's three processes, so the tests can check every failure path.
 *
 *	HFAULT=call:role:action[:match]
 *
 * call    fork, setsid, open (open and openat), dup2, write, pwrite,
 *         ftruncate, pipe2, flock, setresuid, close_range, pidfd_open,
 *         pidfd_getfd (these three made through syscall(2), as a libc
 *         without their wrappers must)
 * role    launcher, middle, daemon or any. The process the test started
 *         is the launcher (its pid is kept at load); the child of its
 *         fork() (or clone(), the middle that shares its memory) is the
 *         middle, and the middle's child (fork or _Fork) is the daemon.
 *         A fork fault fails whichever of the three makes the process.
 * action  an errno name (EAGAIN, ENOMEM, EPERM, EIO, ENOSPC, EACCES,
 *         EMFILE, EBADF, EROFS, ENOSYS): the call fails with it;
 *         kill: the process kills itself with SIGKILL at the call;
 *         exit=N: the process _exits with N at the call;
 *         gate=PATH: the process creates PATH.reached, waits until PATH
 *         exists (at most 30 s), then makes the call.
 * match   open only: fire only when the path contains this text.
 *
 * The shim starts no thread and allocates nothing: it runs in the same
 * delicate single-threaded state as cdaemon's constructor.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static pid_t launcher; /* the pid at load */
static int forks;      /* fork()s between the launcher and this process */

__attribute__((constructor)) static void remember_launcher(void)
{
	launcher = getpid();
}
static char call[32], role[16], action[512], match[512];
static int parsed;

static void parse(void)
{
	const char *v = getenv("HFAULT");
	char *fields[4] = { call, role, action, match };
	size_t sizes[4] = { sizeof call, sizeof role, sizeof action, sizeof match };
	parsed = 1;
	if (!v)
		return;
	for (int i = 0; i < 4 && v; i++) {
		const char *end = i < 3 ? strchr(v, ':') : NULL;
		size_t n = end ? (size_t)(end - v) : strlen(v);
		if (n >= sizes[i])
			n = sizes[i] - 1;
		memcpy(fields[i], v, n);
		fields[i][n] = 0;
		v = end ? end + 1 : NULL;
	}
}

static int role_matches(void)
{
	const char *me = getpid() == launcher ? "launcher" : forks == 1 ? "middle" : "daemon";
	return !strcmp(role, "any") || !strcmp(role, me);
}

static void gate(const char *path)
{
	char reached[600];
	struct timespec ts = { 0, 5 * 1000 * 1000 };
	int fd;
	snprintf(reached, sizeof reached, "%s.reached", path);
	/* The raw system call: open() here would be the shim's own. */
	fd = (int)syscall(SYS_openat, AT_FDCWD, reached, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
	for (int i = 0; i < 6000 && access(path, F_OK) < 0; i++)
		nanosleep(&ts, NULL);
}

/* 0: make the real call; -1 with errno set: fail it. */
static int fault(const char *name, const char *path)
{
	static const struct { const char *name; int err; } errs[] = {
		{ "EAGAIN", EAGAIN }, { "ENOMEM", ENOMEM }, { "EPERM", EPERM },
		{ "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EACCES", EACCES },
		{ "EMFILE", EMFILE }, { "EBADF", EBADF }, { "EROFS", EROFS },
		{ "ENOSYS", ENOSYS },
	};
	if (!parsed)
		parse();
	if (strcmp(call, name) || !role_matches())
		return 0;
	if (path && match[0] && !strstr(path, match))
		return 0;
	if (!strcmp(action, "kill"))
		raise(SIGKILL);
	if (!strncmp(action, "exit=", 5))
		_exit(atoi(action + 5));
	if (!strncmp(action, "gate=", 5)) {
		gate(action + 5);
		return 0;
	}
	for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++)
		if (!strcmp(action, errs[i].name)) {
			errno = errs[i].err;
			return -1;
		}
	return 0;
}

#define REAL(ret, name, ...) \
	static ret (*real)(__VA_ARGS__); \
	if (!real) \
		real = (ret (*)(__VA_ARGS__))dlsym(RTLD_NEXT, name)

pid_t fork(void)
{
	REAL(pid_t, "fork", void);
	if (fault("fork", NULL) < 0)
		return -1;
	pid_t pid = real();
	if (pid == 0)
		forks++;
	return pid;
}

/* The middle that shares the launcher's memory: its forks++ is the
 * launcher's too, which still knows itself by its pid. */
struct clone_call {
	int (*fn)(void *);
	void *arg;
};
static struct clone_call clone_call;

static int cloned(void *arg)
{
	struct clone_call *c = arg;
	forks++;
	return c->fn(c->arg);
}

int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
	REAL(int, "clone", int (*)(void *), void *, int, void *, ...);
	va_list ap;
	va_start(ap, arg);
	void *ptid = va_arg(ap, void *), *tls = va_arg(ap, void *), *ctid = va_arg(ap, void *);
	va_end(ap);
	if (fault("fork", NULL) < 0)
		return -1;
	clone_call = (struct clone_call){ fn, arg };
	return real(cloned, stack, flags, &clone_call, ptid, tls, ctid);
}

pid_t _Fork(void)
{
	REAL(pid_t, "_Fork", void);
	if (fault("fork", NULL) < 0)
		return -1;
	pid_t pid = real();
	if (pid == 0)
		forks++;
	return pid;
}

pid_t setsid(void)
{
	REAL(pid_t, "setsid", void);
	return fault("setsid", NULL) < 0 ? -1 : real();
}

int dup2(int a, int b)
{
	REAL(int, "dup2", int, int);
	return fault("dup2", NULL) < 0 ? -1 : real(a, b);
}

ssize_t write(int fd, const void *buf, size_t n)
{
	REAL(ssize_t, "write", int, const void *, size_t);
	return fault("write", NULL) < 0 ? -1 : real(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	REAL(ssize_t, "pwrite", int, const void *, size_t, off_t);
	return fault("pwrite", NULL) < 0 ? -1 : real(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	REAL(ssize_t, "pwrite64", int, const void *, size_t, off_t);
	return fault("pwrite", NULL) < 0 ? -1 : real(fd, buf, n, off);
}

int ftruncate(int fd, off_t len)
{
	REAL(int, "ftruncate", int, off_t);
	return fault("ftruncate", NULL) < 0 ? -1 : real(fd, len);
}

int ftruncate64(int fd, off_t len)
{
	REAL(int, "ftruncate64", int, off_t);
	return fault("ftruncate", NULL) < 0 ? -1 : real(fd, len);
}

int pipe2(int fds[2], int flags)
{
	REAL(int, "pipe2", int *, int);
	return fault("pipe2", NULL) < 0 ? -1 : real(fds, flags);
}

int setresuid(uid_t r, uid_t e, uid_t s)
{
	REAL(int, "setresuid", uid_t, uid_t, uid_t);
	return fault("setresuid", NULL) < 0 ? -1 : real(r, e, s);
}

/* syscall(2), for SYS_close_range, SYS_pidfd_open and SYS_pidfd_getfd
 * only: an old kernel's ENOSYS. */
long syscall(long nr, ...)
{
	REAL(long, "syscall", long, ...);
	va_list ap;
	long a[6];
	va_start(ap, nr);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
#ifdef SYS_close_range
	if (nr == SYS_close_range && fault("close_range", NULL) < 0)
		return -1;
#endif
#ifdef SYS_pidfd_open
	if (nr == SYS_pidfd_open && fault("pidfd_open", NULL) < 0)
		return -1;
#endif
#ifdef SYS_pidfd_getfd
	if (nr == SYS_pidfd_getfd && fault("pidfd_getfd", NULL) < 0)
		return -1;
#endif
	return real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

int flock(int fd, int op)
{
	REAL(int, "flock", int, int);
	return fault("flock", NULL) < 0 ? -1 : real(fd, op);
}

#define OPEN(fn, realname) \
	int fn(const char *path, int flags, ...) \
	{ \
		mode_t mode = 0; \
		REAL(int, realname, const char *, int, ...); \
		if (flags & (O_CREAT | O_TMPFILE)) { \
			va_list ap; \
			va_start(ap, flags); \
			mode = va_arg(ap, mode_t); \
			va_end(ap); \
		} \
		return fault("open", path) < 0 ? -1 : real(path, flags, mode); \
	}
OPEN(open, "open")
OPEN(open64, "open64")

#define OPENAT(fn, realname) \
	int fn(int dirfd, const char *path, int flags, ...) \
	{ \
		mode_t mode = 0; \
		REAL(int, realname, int, const char *, int, ...); \
		if (flags & (O_CREAT | O_TMPFILE)) { \
			va_list ap; \
			va_start(ap, flags); \
			mode = va_arg(ap, mode_t); \
			va_end(ap); \
		} \
		return fault("open", path) < 0 ? -1 : real(dirfd, path, flags, mode); \
	}
OPENAT(openat, "openat")
OPENAT(openat64, "openat64")

int __open_2(const char *path, int flags)
{
	REAL(int, "__open_2", const char *, int);
	return fault("open", path) < 0 ? -1 : real(path, flags);
}

int __open64_2(const char *path, int flags)
{
	REAL(int, "__open64_2", const char *, int);
	return fault("open", path) < 0 ? -1 : real(path, flags);
}
