//go:build cgo && linux

/*
 * early.c: `cdaemon status`, `stop` and `reload` before the Go runtime
 * starts.
 *
 * State: the library's constructor (cdaemon.c) calls this program's
 * cdaemon_wanted (hooks.go), and for these three commands it calls
 * cdaemon_early, still in that constructor: one thread, no Go runtime,
 * libc fully usable (malloc, stdio, opendir), but nothing of Go exists and
 * nothing here may call into it. The library has read CDAEMON_* and, as
 * for any run the program declines, takes nothing of it.
 *
 * Either cdaemon_early does the whole command and _exits with its status,
 * or it returns having done nothing (no signal sent, no file removed) and
 * the Go implementation (operate.go over cdaemon.FindDaemon) runs the
 * command from the start. The rule that keeps the two the same: this file
 * handles only the outcomes it reproduces exactly, the messages and
 * statuses of operate.go and main.go byte for byte, and returns for
 * everything else before acting. Handled here:
 *
 *   - the command lines status PIDFILE, reload PIDFILE and
 *     stop [-timeout D] [-signal SIG] PIDFILE (flags as Go's flag package
 *     takes them: -f v, -f=v, --f, "--"), where D is a positive duration
 *     and SIG a signal name or number 1..64. Every usage error and -h
 *     goes to Go.
 *   - no pidfile and no lock file (lstat: ENOENT): status 3, stop 0
 *     ("not running"), reload 7;
 *   - the pidfile names a process (not 1, not this one) that holds the
 *     flock on the lock file beside it, PIDFILE.lock (its
 *     /proc/PID/fdinfo shows it), held by a pidfd: status 0, reload
 *     SIGHUP, stop: the signal, a wait for the exit on the pidfd with
 *     poll, SIGKILL after -timeout, then the pidfile and the lock file
 *     removed under the lock (Daemon.Stop's rules, including the wait for
 *     other lock holders and its messages).
 * Go gets: a stale pidfile, one naming another process than the holder or
 * none, a symbolic link or hard-linked file, a holder this user cannot
 * see, a signal this user may not send, any unexpected error before a
 * signal was sent.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

int cdaemon_early(int argc, char **argv);

/* Exit statuses: main.go's. */
enum { EX_OK = 0, EX_FAILED = 1, EX_NOTRUNNING = 3, EX_UNKNOWN = 4, EX_STOPPED = 7 };

/* Daemon.Stop waits this long after SIGKILL at least (control.go's killWait). */
#define KILL_WAIT_NS (10LL * 1000000000LL)

/* ------------------------------------------------------------------ output */

/* Whole lines with one write each, unbuffered as Go's os.Stdout is. */
static void out(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(int fd, const char *fmt, ...)
{
	char buf[8192];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof buf)
		n = sizeof buf - 1;
	for (char *p = buf; n > 0;) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= w;
	}
}

/* An errno as Go's syscall.Errno.Error() says it (zerrors_linux.go). */
static const char *goerr(int e)
{
	switch (e) {
	case EPERM: return "operation not permitted";
	case ENOENT: return "no such file or directory";
	case ESRCH: return "no such process";
	case EIO: return "input/output error";
	case EACCES: return "permission denied";
	case EBUSY: return "device or resource busy";
	case EEXIST: return "file exists";
	case ENOTDIR: return "not a directory";
	case EISDIR: return "is a directory";
	case EINVAL: return "invalid argument";
	case ENOSPC: return "no space left on device";
	case EROFS: return "read-only file system";
	case ENAMETOOLONG: return "file name too long";
	case ELOOP: return "too many levels of symbolic links";
	case ENOLCK: return "no locks available";
	case ENOMEM: return "cannot allocate memory";
	case EMFILE: return "too many open files";
	}
	static char buf[128];
	snprintf(buf, sizeof buf, "%s", strerror(e));
	buf[0] = tolower((unsigned char)buf[0]);
	return buf;
}

/* ------------------------------------------------- durations, as Go's time */

/*
 * time.ParseDuration for what -timeout takes here: [+]N[.F]unit..., units
 * ns us ms s m h, no overflow. 0 and the nanoseconds, or -1 for anything
 * else (a sign, µs, overflow, an error): Go then parses it.
 */
static int parse_duration(const char *s, int64_t *d)
{
	static const struct { const char *name; uint64_t ns; } units[] = {
		{ "ns", 1ULL }, { "us", 1000ULL }, { "ms", 1000000ULL },
		{ "s", 1000000000ULL }, { "m", 60000000000ULL }, { "h", 3600000000000ULL },
	};
	uint64_t total = 0;
	if (*s == '+')
		s++;
	if (!strcmp(s, "0")) {
		*d = 0;
		return 0;
	}
	if (!*s)
		return -1;
	while (*s) {
		if (!(isdigit((unsigned char)*s) || *s == '.'))
			return -1;
		uint64_t v = 0, f = 0;
		double scale = 1;
		int pre = 0, post = 0;
		while (isdigit((unsigned char)*s)) {
			if (v > (UINT64_C(1) << 62) / 10)
				return -1;
			v = v * 10 + (uint64_t)(*s++ - '0');
			pre = 1;
		}
		if (*s == '.') {
			s++;
			for (int digits = 0; isdigit((unsigned char)*s); digits++) {
				if (digits == 18)
					return -1; /* where Go's fraction could overflow */
				f = f * 10 + (uint64_t)(*s++ - '0');
				scale *= 10;
				post = 1;
			}
		}
		if (!pre && !post)
			return -1;
		size_t n = 0;
		while (s[n] && s[n] != '.' && !isdigit((unsigned char)s[n]))
			n++;
		if (!n)
			return -1; /* missing unit */
		uint64_t unit = 0;
		for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
			if (strlen(units[i].name) == n && !strncmp(s, units[i].name, n))
				unit = units[i].ns;
		if (!unit)
			return -1;
		s += n;
		if (v > (UINT64_C(1) << 62) / unit)
			return -1;
		v *= unit;
		if (f > 0) {
			v += (uint64_t)((double)f * ((double)unit / scale));
			if (v > (UINT64_C(1) << 62))
				return -1;
		}
		total += v;
		if (total > (UINT64_C(1) << 62))
			return -1;
	}
	*d = (int64_t)total;
	return 0;
}

/* Go's fmtFrac and fmtInt: right to left into buf ending at w. */
static int fmt_frac(char *buf, int w, uint64_t *v, int prec)
{
	int print = 0;
	for (int i = 0; i < prec; i++) {
		int digit = (int)(*v % 10);
		print = print || digit != 0;
		if (print)
			buf[--w] = (char)('0' + digit);
		*v /= 10;
	}
	if (print)
		buf[--w] = '.';
	return w;
}

static int fmt_int(char *buf, int w, uint64_t v)
{
	if (v == 0)
		buf[--w] = '0';
	while (v > 0) {
		buf[--w] = (char)('0' + v % 10);
		v /= 10;
	}
	return w;
}

/* time.Duration.String for d >= 0. */
static const char *duration_string(int64_t d, char out[40])
{
	char buf[40];
	int w = sizeof buf;
	uint64_t u = (uint64_t)d;
	if (u < 1000000000ULL) {
		int prec;
		buf[--w] = 's';
		if (u == 0) {
			buf[--w] = '0';
			goto done;
		} else if (u < 1000ULL) {
			prec = 0;
			buf[--w] = 'n';
		} else if (u < 1000000ULL) {
			prec = 3;
			buf[--w] = (char)0xb5; /* U+00B5 MICRO SIGN, as Go writes it */
			buf[--w] = (char)0xc2;
		} else {
			prec = 6;
			buf[--w] = 'm';
		}
		w = fmt_frac(buf, w, &u, prec);
		w = fmt_int(buf, w, u);
	} else {
		buf[--w] = 's';
		w = fmt_frac(buf, w, &u, 9);
		w = fmt_int(buf, w, u % 60);
		u /= 60;
		if (u > 0) {
			buf[--w] = 'm';
			w = fmt_int(buf, w, u % 60);
			u /= 60;
			if (u > 0) {
				buf[--w] = 'h';
				w = fmt_int(buf, w, u);
			}
		}
	}
done:
	memcpy(out, buf + w, sizeof buf - w);
	out[sizeof buf - w] = 0;
	return out;
}

/* ------------------------------------------------------------------ signals */

/* x/sys/unix's signalList: the names SignalNum and SignalName know. */
static const struct { int num; const char *name; } signals[] = {
	{ SIGHUP, "SIGHUP" }, { SIGINT, "SIGINT" }, { SIGQUIT, "SIGQUIT" }, { SIGILL, "SIGILL" },
	{ SIGTRAP, "SIGTRAP" }, { SIGABRT, "SIGABRT" }, { SIGBUS, "SIGBUS" }, { SIGFPE, "SIGFPE" },
	{ SIGKILL, "SIGKILL" }, { SIGUSR1, "SIGUSR1" }, { SIGSEGV, "SIGSEGV" }, { SIGUSR2, "SIGUSR2" },
	{ SIGPIPE, "SIGPIPE" }, { SIGALRM, "SIGALRM" }, { SIGTERM, "SIGTERM" },
#ifdef SIGSTKFLT
	{ SIGSTKFLT, "SIGSTKFLT" },
#endif
	{ SIGCHLD, "SIGCHLD" }, { SIGCONT, "SIGCONT" }, { SIGSTOP, "SIGSTOP" }, { SIGTSTP, "SIGTSTP" },
	{ SIGTTIN, "SIGTTIN" }, { SIGTTOU, "SIGTTOU" }, { SIGURG, "SIGURG" }, { SIGXCPU, "SIGXCPU" },
	{ SIGXFSZ, "SIGXFSZ" }, { SIGVTALRM, "SIGVTALRM" }, { SIGPROF, "SIGPROF" },
	{ SIGWINCH, "SIGWINCH" }, { SIGIO, "SIGIO" }, { SIGPWR, "SIGPWR" }, { SIGSYS, "SIGSYS" },
};

/* operate.go's parseSignal: TERM, SIGTERM, sigterm or 15; -1 for what it
 * refuses (Go then says why) or what is not plain ASCII. */
static int parse_signal(const char *s)
{
	const char *p = s;
	if (*p == '+' || *p == '-')
		p++;
	if (*p && strspn(p, "0123456789") == strlen(p)) {
		if (strlen(p) > 9)
			return -1;
		long n = strtol(s, NULL, 10);
		return n >= 1 && n <= 64 ? (int)n : -1;
	}
	char name[32];
	size_t len = strlen(s);
	if (len + 4 > sizeof name)
		return -1;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return -1;
	snprintf(name, sizeof name, "%s%s", strncasecmp(s, "SIG", 3) ? "SIG" : "", s);
	for (char *q = name; *q; q++)
		*q = (char)toupper((unsigned char)*q);
	for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
		if (!strcmp(name, signals[i].name))
			return signals[i].num;
	return -1;
}

/* operate.go's signalName. */
static const char *signal_name(int sig, char buf[32])
{
	for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
		if (signals[i].num == sig)
			return signals[i].name;
	snprintf(buf, 32, "signal %d", sig);
	return buf;
}

/* ------------------------------------------------------------ command line */

struct cmdline {
	const char *path;
	int64_t timeout; /* ns */
	int sig;
};

/*
 * Go's flag.FlagSet.Parse for stop's two flags (none for status and
 * reload), then main.go's parse: one PIDFILE, not empty. 0, or -1 for
 * anything Go reports or treats otherwise (an error, -h, a value this
 * file does not parse): nothing is done here then.
 */
static int parse_args(int stop, int argc, char **argv, struct cmdline *c)
{
	int i = 0;
	c->timeout = 10LL * 1000000000LL;
	c->sig = SIGTERM;
	while (i < argc) {
		const char *s = argv[i];
		if (strlen(s) < 2 || s[0] != '-')
			break;
		const char *name = s + 1;
		if (s[1] == '-') {
			name++;
			if (!s[2]) {
				i++;
				break; /* "--" */
			}
		}
		if (!stop || !*name || *name == '-' || *name == '=')
			return -1;
		i++;
		const char *eq = strchr(name, '=');
		size_t n = eq ? (size_t)(eq - name) : strlen(name);
		const char *value;
		if (eq)
			value = eq + 1;
		else if (i < argc)
			value = argv[i++];
		else
			return -1; /* flag needs an argument */
		if (n == 7 && !strncmp(name, "timeout", 7)) {
			if (parse_duration(value, &c->timeout) < 0 || c->timeout <= 0)
				return -1;
		} else if (n == 6 && !strncmp(name, "signal", 6)) {
			if ((c->sig = parse_signal(value)) < 0)
				return -1;
		} else {
			return -1;
		}
	}
	if (argc - i != 1 || !argv[i][0])
		return -1;
	c->path = argv[i];
	return 0;
}

/* ------------------------------------------------------------ the daemon */

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* control.go's readPid: decimal digits and a newline, or 0; -1 if the
 * file cannot be read or is not the one examined. */
static long read_pid(const char *path, const struct stat *st)
{
	struct stat now;
	char buf[33];
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -1;
	if (fstat(fd, &now) < 0 || now.st_dev != st->st_dev || now.st_ino != st->st_ino) {
		close(fd);
		return -1;
	}
	ssize_t n = pread(fd, buf, 32, 0);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = 0;
	/* strconv.Atoi: an optional sign (a '+' is refused after), digits. */
	if (n == 0 || n > 18 || !isdigit((unsigned char)buf[0]) || strspn(buf, "0123456789") != (size_t)n)
		return 0;
	long pid = strtol(buf, NULL, 10);
	return pid > 0 && pid <= INT_MAX ? pid : 0;
}

/* An entry of getdents64(2)'s buffer (struct linux_dirent64). */
struct dirent_entry {
	uint64_t ino;
	int64_t off;
	unsigned short reclen;
	unsigned char type;
	char name[];
};

/* Is this fdinfo text a flock's (a line "lock:\t1: FLOCK  ADVISORY  WRITE
 * 4242 fe:00:9977989 0 EOF")? */
static int shows_flock(char *info)
{
	for (char *line = info; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		if (!strncmp(line, "lock:", 5) && memmem(line, len, " FLOCK ", 7))
			return 1;
	}
	return 0;
}

/* control.go's holdsErr: does process pid have a descriptor on the file
 * dev:ino whose fdinfo shows a flock? -1 if its descriptors cannot be
 * listed (gone, or another user's), with errno. The descriptors are read
 * with getdents64 into a buffer on the stack and each is looked up
 * relative to the open /proc/PID/fd: one path component a descriptor,
 * no allocation (a stop's time goes mostly here). */
static int holds(long pid, dev_t dev, ino_t ino)
{
	char path[64], info[4096];
	char buf[4096] __attribute__((aligned(8)));
	snprintf(path, sizeof path, "/proc/%ld/fd", pid);
	int dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return -1;
	int found = 0;
	long n;
	while (!found && (n = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
		for (long off = 0; !found && off < n;) {
			const struct dirent_entry *e = (const struct dirent_entry *)(buf + off);
			struct stat st;
			if (e->reclen <= offsetof(struct dirent_entry, name) || e->reclen > n - off)
				break; /* not what the kernel writes: stop, found or not */
			off += e->reclen;
			if (e->name[0] == '.' || fstatat(dir, e->name, &st, 0) < 0 || st.st_dev != dev ||
			    st.st_ino != ino)
				continue;
			snprintf(path, sizeof path, "/proc/%ld/fdinfo/%s", pid, e->name);
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				continue;
			size_t got = 0;
			ssize_t r;
			while (got < sizeof info - 1 && (r = read(fd, info + got, sizeof info - 1 - got)) > 0)
				got += r;
			close(fd);
			info[got] = 0;
			found = shows_flock(info);
		}
	}
	close(dir);
	return found;
}

/* Holders of the lock on dev:ino, every process scanned (control.go's
 * lockHolders), in os.ReadDir's order: by name. */
struct pids {
	long *v;
	size_t n, cap;
};

static int by_name(const void *a, const void *b)
{
	char x[24], y[24];
	snprintf(x, sizeof x, "%ld", *(const long *)a);
	snprintf(y, sizeof y, "%ld", *(const long *)b);
	return strcmp(x, y);
}

static void lock_holders(dev_t dev, ino_t ino, struct pids *h)
{
	h->n = 0;
	DIR *d = opendir("/proc");
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		char *end;
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		long pid = strtol(e->d_name, &end, 10);
		if (*end || holds(pid, dev, ino) != 1)
			continue;
		if (h->n == h->cap) {
			size_t cap = h->cap ? 2 * h->cap : 16;
			long *v = realloc(h->v, cap * sizeof *v);
			if (!v)
				break;
			h->v = v;
			h->cap = cap;
		}
		h->v[h->n++] = pid;
	}
	closedir(d);
	qsort(h->v, h->n, sizeof *h->v, by_name);
}

static const char *pid_list(const struct pids *h, char *buf, size_t size)
{
	size_t w = snprintf(buf, size, "%s", h->n == 1 ? "pid " : "pids ");
	for (size_t i = 0; i < h->n && w < size; i++)
		w += snprintf(buf + w, size - w, "%s%ld", i ? ", " : "", h->v[i]);
	return buf;
}

struct daemon {
	long pid;
	int pidfd;
	dev_t dev;   /* the lock file's */
	ino_t ino;
	dev_t fdev;  /* the pidfile's */
	ino_t fino;
};

/* The lock file beside a pidfile (control.go's LockFile), or NULL if the
 * name is too long. */
static const char *lock_file(const char *path, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s.lock", path);
	return n < 0 || (size_t)n >= size ? NULL : buf;
}

/* Has the process exited within timeout_ns (0: now)? control.go's exited:
 * poll on the pidfd, which is readable once the process has exited. */
static int exited(int pidfd, long long timeout_ns)
{
	long long deadline = now_ns() + timeout_ns;
	for (;;) {
		long long left = deadline - now_ns();
		long long ms = left > 0 ? left / 1000000 : 0;
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		int n = poll(&p, 1, (int)(ms < (1LL << 30) ? ms : (1LL << 30)));
		if (n > 0)
			return 1;
		if (n < 0 && errno != EINTR)
			return 0;
		if (n == 0 && ms == 0)
			return 0;
	}
}

/*
 * FindDaemon's way to a daemon, for the cases this file handles: 1 found
 * (d filled in), 0 no pidfile (lstat: ENOENT), -1 anything else (Go
 * decides and says what).
 */
static int find_daemon(const char *path, struct daemon *d)
{
	struct stat st, lk;
	char buf[PATH_MAX + 8];
	const char *lock = lock_file(path, buf, sizeof buf);
	if (!lock)
		return -1;
	if (lstat(path, &st) < 0) {
		if (errno != ENOENT)
			return -1;
		return lstat(lock, &lk) < 0 && errno == ENOENT ? 0 : -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1)
		return -1;
	if (lstat(lock, &lk) < 0 || !S_ISREG(lk.st_mode) || lk.st_nlink != 1)
		return -1;
	long named = read_pid(path, &st);
	if (named <= 1 || named == getpid())
		return -1;
	int fd = (int)syscall(SYS_pidfd_open, (pid_t)named, 0);
	if (fd < 0)
		return -1;
	/* The pidfd first, then the lock and the exit: the pid was not reused
	 * between the two if the process it names holds the lock and lives. */
	if (holds(named, lk.st_dev, lk.st_ino) != 1 || exited(fd, 0)) {
		close(fd);
		return -1;
	}
	*d = (struct daemon){ .pid = named, .pidfd = fd, .dev = lk.st_dev, .ino = lk.st_ino,
			      .fdev = st.st_dev, .fino = st.st_ino };
	return 1;
}

static int send_signal(const struct daemon *d, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, d->pidfd, sig, NULL, 0);
}

/* ---------------------------------------------------------------- commands */

static int cmd_status(const struct cmdline *c)
{
	struct daemon d;
	switch (find_daemon(c->path, &d)) {
	case 1:
		out(1, "%s: running, pid %ld\n", c->path, d.pid);
		return EX_OK;
	case 0:
		out(1, "%s: not running (no pidfile)\n", c->path);
		return EX_NOTRUNNING;
	}
	return -1;
}

static int cmd_reload(const struct cmdline *c)
{
	struct daemon d;
	switch (find_daemon(c->path, &d)) {
	case 1:
		if (send_signal(&d, SIGHUP) == 0) {
			out(1, "%s: sent SIGHUP to pid %ld\n", c->path, d.pid);
			return EX_OK;
		}
		if (errno == ESRCH) {
			out(2, "cdaemon reload: %s: not running: cdaemon: pidfile %s: not running (it names pid %ld, which holds no lock on it)\n",
			    c->path, c->path, d.pid);
			return EX_STOPPED;
		}
		close(d.pidfd);
		return -1; /* nothing sent: Go says why */
	case 0:
		out(2, "cdaemon reload: %s: not running: lstat %s: no such file or directory\n", c->path, c->path);
		return EX_STOPPED;
	}
	return -1;
}

/* An error of stop after a signal was sent: exit 4 for what privileges
 * decide, 1 otherwise (main.go's actionStatus). */
static int stop_failed(int e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int stop_failed(int e, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	out(2, "cdaemon stop: %s\n", msg);
	return e == EPERM || e == EACCES ? EX_UNKNOWN : EX_FAILED;
}

/*
 * control.go's removeUnlocked(path, want, file): holding the lock, the
 * pidfile if it is still the one found, then the lock file. 0 removed or
 * not ours to remove (gone, replaced, a link), 1 locked by someone, -1
 * failed (reported, *status set).
 */
static int remove_unlocked(const char *path, const struct daemon *d, int *status)
{
	struct stat st, now;
	char buf[PATH_MAX + 8];
	const char *lock = lock_file(path, buf, sizeof buf);
	int fd = lock ? open(lock, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY) : -1;
	if (fd < 0 && (!lock || errno == ENOENT || errno == ELOOP))
		return 0;
	if (fd < 0) {
		int e = errno;
		*status = stop_failed(e, "open %s: %s", lock, goerr(e));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		*status = stop_failed(e, "fstat %s: %s", lock, goerr(e));
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_dev != d->dev || st.st_ino != d->ino) {
		close(fd);
		return 0; /* another file at the path now */
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK)
			return 1;
		*status = stop_failed(e, "flock %s: %s", lock, goerr(e));
		return -1;
	}
	int r = 0;
	if (lstat(lock, &now) < 0 || now.st_dev != st.st_dev || now.st_ino != st.st_ino) {
		close(fd);
		return 0; /* removed or replaced meanwhile */
	}
	if (lstat(path, &now) == 0 && now.st_dev == d->fdev && now.st_ino == d->fino &&
	    unlink(path) < 0 && errno != ENOENT) {
		int e = errno;
		*status = stop_failed(e, "remove %s: %s", path, goerr(e));
		r = -1;
	}
	if (r == 0 && unlink(lock) < 0 && errno != ENOENT) {
		int e = errno;
		*status = stop_failed(e, "remove %s: %s", lock, goerr(e));
		r = -1;
	}
	close(fd);
	return r;
}

static int cmd_stop(const struct cmdline *c)
{
	struct daemon d;
	char dur[40], sbuf[32];
	switch (find_daemon(c->path, &d)) {
	case 0: {
		/* RemoveStalePidfile: nothing to remove if both are still absent. */
		struct stat st;
		char buf[PATH_MAX + 8];
		if (lstat(c->path, &st) == 0 || errno != ENOENT ||
		    lstat(lock_file(c->path, buf, sizeof buf), &st) == 0 || errno != ENOENT)
			return -1; /* one appeared meanwhile: Go decides */
		out(1, "%s: not running\n", c->path);
		return EX_OK;
	}
	case -1:
		return -1;
	}

	/* Daemon.Stop. Nothing is sent yet: a refused signal goes to Go. */
	if (send_signal(&d, c->sig) < 0 && errno != ESRCH) {
		close(d.pidfd);
		return -1;
	}
	int killed = 0;
	if (!exited(d.pidfd, c->timeout)) {
		killed = 1;
		if (send_signal(&d, SIGKILL) < 0 && errno != ESRCH) {
			int e = errno;
			return stop_failed(e, "pidfd_send_signal killed: %s", goerr(e));
		}
		long long wait = c->timeout > KILL_WAIT_NS ? c->timeout : KILL_WAIT_NS;
		if (!exited(d.pidfd, wait))
			return stop_failed(0, "cdaemon: pidfile %s: pid %ld survived SIGKILL for %s", c->path, d.pid,
					   duration_string(wait, dur));
	}
	/* Gone. Most often the lock was the daemon's alone: taking it says so
	 * at once and the file is removed under it; a lock still held sends us
	 * through every process's descriptors, until the deadline. */
	long long deadline = now_ns() + c->timeout;
	struct pids h = { 0 };
	int status = EX_OK;
	for (long long pause = 1000000;; pause = pause * 2 < 100000000 ? pause * 2 : 100000000) {
		int r = remove_unlocked(c->path, &d, &status);
		if (r < 0)
			return status;
		if (r == 0)
			break;
		lock_holders(d.dev, d.ino, &h);
		if (h.n == 0)
			break; /* held where we cannot see: not ours to remove */
		struct stat st;
		if (lstat(c->path, &st) == 0) {
			long named = read_pid(c->path, &st);
			int other = 0;
			for (size_t i = 0; i < h.n; i++)
				other |= named != d.pid && h.v[i] == named;
			if (other)
				break; /* a new daemon took the file over */
		}
		if (now_ns() > deadline) {
			char list[1024];
			return stop_failed(0, "cdaemon: pidfile %s: still locked after the daemon exited; its lock is held by %s",
					   c->path, pid_list(&h, list, sizeof list));
		}
		struct timespec ts = { pause / 1000000000, pause % 1000000000 };
		nanosleep(&ts, NULL);
	}
	if (killed)
		out(1, "%s: pid %ld did not exit within %s of %s: killed it (SIGKILL)\n", c->path, d.pid,
		    duration_string(c->timeout, dur), signal_name(c->sig, sbuf));
	else
		out(1, "%s: stopped pid %ld\n", c->path, d.pid);
	return EX_OK;
}

/*
 * Runs argv[1] if it is status, stop or reload and this file can do all of
 * it, and _exits with the command's status; returns having done nothing
 * otherwise.
 */
int cdaemon_early(int argc, char **argv)
{
	struct cmdline c;
	int status = -1;
	if (argc < 2 || !argv[1])
		return 0;
	const char *cmd = argv[1];
	int stop = !strcmp(cmd, "stop");
	if (!stop && strcmp(cmd, "status") && strcmp(cmd, "reload"))
		return 0;
	if (parse_args(stop, argc - 2, argv + 2, &c) < 0)
		return 0;
	if (!strcmp(cmd, "status"))
		status = cmd_status(&c);
	else if (stop)
		status = cmd_stop(&c);
	else
		status = cmd_reload(&c);
	if (status < 0)
		return 0;
	_exit(status);
}
