/*
 * cdaemon.c: make the program a daemon before the Go runtime starts.
 *
 * A constructor runs from the C start-up code while the process is still
 * single-threaded, so fork() is safe: the Go runtime has not started a
 * thread yet, and it boots only once, in the daemon. The steps below happen
 * in the order this file lists them:
 *
 *   launcher   1. read and validate CDAEMON_*        (bad value: exit 64)
 *              2. decide whether to daemonize         (auto skips tests, init)
 *              3. refuse unsafe states                (threads: exit 70)
 *              4. open stdio targets and the pidfile  (exit 73, locked: 75)
 *              5. fork; wait on the status pipe       (exit with the outcome)
 *   middle     6. setsid, fork again, write the pidfile, report the pid
 *   daemon     7. stdio, fds, signals, environment; return to start Go
 *
 * Everything up to the first fork fails synchronously on the user's
 * terminal; after it, failures travel back through the status pipe. The
 * daemon is made by libc's fork(), never a raw clone: glibc keeps thread
 * state (the tid in the thread control block, its locks) that fork() resets
 * for the child and the Go runtime (through cgo's pthread_create) relies on.
 * The middle, which runs no Go and only exits, is made by vfork().
 *
 * No allocation: fixed buffers, no stdio except the final fflush.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cdaemon.h"

#ifndef W_EXITCODE /* glibc has it; musl does not */
#define W_EXITCODE(ret, sig) ((ret) << 8 | (sig))
#endif

extern char **environ;

struct cdaemon_state cdaemon_state = { .status_fd = -1 };

/* How long a stopped daemon gets between SIGTERM and SIGKILL. */
#define GRACE_MS 2000
#define MAX_KEEP_FDS 64

struct config {
	int mode, wait;
	long long timeout_ms;
	const char *pidfile, *log, *out, *err, *in, *dir;
	mode_t umask;
	int keep[MAX_KEEP_FDS];
	int nkeep;
	const char *keep_text;
};

/* ---------------------------------------------------------------------
 * Reporting. Messages go to fd 2, prefixed with the program's name, and
 * the process leaves with _exit: a half-started process must not run
 * atexit handlers or flush stdio buffers it shares with others.
 */

static char prog[64] = "cdaemon";

static void vsay(const char *fmt, va_list ap)
{
	char buf[2 * PATH_MAX];
	int n = snprintf(buf, sizeof buf, "%s: %s", prog, fmt[0] == '\1' ? "" : "cdaemon: ");
	fmt += fmt[0] == '\1';
	n += vsnprintf(buf + n, sizeof buf - n - 1, fmt, ap);
	if (n > (int)sizeof buf - 2)
		n = sizeof buf - 2;
	buf[n++] = '\n';
	(void)!write(2, buf, n);
}

static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
}

static _Noreturn void bail(int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
	_exit(status);
}

/* A value as it appears in messages: quoted, control bytes escaped, long
 * values cut. Two buffers, so a message can quote two values. */
static const char *quote(const char *s)
{
	static char bufs[2][160];
	static int which;
	char *b = bufs[which ^= 1], *p = b;
	*p++ = '"';
	for (; *s && p < b + sizeof bufs[0] - 8; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\')
			p += sprintf(p, "\\x%02x", ch);
		else
			*p++ = ch;
	}
	if (*s)
		p += sprintf(p, "...");
	*p++ = '"';
	*p = 0;
	return b;
}

/* ---------------------------------------------------------------------
 * 1. Read and validate CDAEMON_*. Every value is checked even when it
 * will not be used, and a name that is not ours but looks like it (a
 * typo) is an error too: nothing is silently ignored.
 */

static int parse_mode(const char *v, struct config *c)
{
	static const char *on[] = { "on", "1", "true", "yes" };
	static const char *off[] = { "off", "0", "false", "no" };
	if (!strcasecmp(v, "auto")) {
		c->mode = CDAEMON_MODE_AUTO;
		return 0;
	}
	for (int i = 0; i < 4; i++) {
		if (!strcasecmp(v, on[i])) {
			c->mode = CDAEMON_MODE_ON;
			return 0;
		}
		if (!strcasecmp(v, off[i])) {
			c->mode = CDAEMON_MODE_OFF;
			return 0;
		}
	}
	return -1;
}

static int parse_wait(const char *v, struct config *c)
{
	static const char *names[] = { "none", "start", "ready" };
	for (int i = 0; i < 3; i++)
		if (!strcasecmp(v, names[i])) {
			c->wait = i;
			return 0;
		}
	return -1;
}

/* A decimal number, digits[.digits] as documented; strtod would also
 * take 1e3, 0x10, inf and nan. */
static const char *parse_decimal(const char *p, double *n)
{
	double scale = 1;
	if (!isdigit((unsigned char)*p))
		return NULL;
	for (*n = 0; isdigit((unsigned char)*p); p++)
		*n = *n * 10 + (*p - '0');
	if (*p == '.')
		for (p++; isdigit((unsigned char)*p); p++)
			*n += (*p - '0') * (scale /= 10);
	return p;
}

/* A Go-style duration made of ms, s, m and h terms: 500ms, 30s, 1m30s, 1.5h. */
static int parse_timeout(const char *v, struct config *c)
{
	double ms = 0;
	const char *p = v;
	if (!*p)
		return -1;
	while (*p) {
		double n;
		if (!(p = parse_decimal(p, &n)))
			return -1;
		if (!strncmp(p, "ms", 2))
			ms += n, p += 2;
		else if (*p == 's')
			ms += n * 1e3, p++;
		else if (*p == 'm')
			ms += n * 60e3, p++;
		else if (*p == 'h')
			ms += n * 3600e3, p++;
		else
			return -1;
	}
	if (!(ms >= 1 && ms <= 24 * 3600e3))
		return -1;
	c->timeout_ms = (long long)ms;
	return 0;
}

static int parse_umask(const char *v, struct config *c)
{
	unsigned m = 0;
	if (!*v || strlen(v) > 4)
		return -1;
	for (const char *p = v; *p; p++) {
		if (*p < '0' || *p > '7')
			return -1;
		m = m * 8 + (*p - '0');
	}
	if (m > 0777)
		return -1;
	c->umask = m;
	return 0;
}

/* "3,4,10": open descriptors above 2, each named once. */
static int parse_keep_fds(const char *v, struct config *c)
{
	const char *p = v;
	c->nkeep = 0;
	c->keep_text = v;
	for (;;) {
		long fd = 0;
		if (!isdigit((unsigned char)*p))
			return -1;
		for (; isdigit((unsigned char)*p); p++)
			if ((fd = fd * 10 + (*p - '0')) > INT_MAX)
				return -1;
		if (fd <= 2 || c->nkeep == MAX_KEEP_FDS)
			return -1;
		for (int i = 0; i < c->nkeep; i++)
			if (c->keep[i] == fd)
				return -1;
		c->keep[c->nkeep++] = (int)fd;
		if (!*p)
			return 0;
		if (*p++ != ',')
			return -1;
	}
}

static int parse_path(const char *v, const char **dst)
{
	if (!*v || strlen(v) >= PATH_MAX)
		return -1;
	*dst = v;
	return 0;
}

static int parse_pidfile(const char *v, struct config *c) { return parse_path(v, &c->pidfile); }
static int parse_log(const char *v, struct config *c) { return parse_path(v, &c->log); }
static int parse_stdout(const char *v, struct config *c) { return parse_path(v, &c->out); }
static int parse_stderr(const char *v, struct config *c) { return parse_path(v, &c->err); }
static int parse_stdin(const char *v, struct config *c) { return parse_path(v, &c->in); }
static int parse_chdir(const char *v, struct config *c) { return parse_path(v, &c->dir); }

#define PATH_WANT "want a path of at most 4095 bytes (unset the variable for the default)"

static const struct var {
	const char *name;
	int (*parse)(const char *value, struct config *c);
	const char *want;
} vars[] = {
	{ "CDAEMON", parse_mode, "want auto, on or off (or 1/0, true/false, yes/no)" },
	{ "CDAEMON_WAIT", parse_wait, "want none, start or ready" },
	{ "CDAEMON_TIMEOUT", parse_timeout,
	  "want a duration from 1ms to 24h such as 500ms, 30s, 1m30s or 2h" },
	{ "CDAEMON_PIDFILE", parse_pidfile, PATH_WANT },
	{ "CDAEMON_LOG", parse_log, PATH_WANT },
	{ "CDAEMON_STDOUT", parse_stdout, PATH_WANT },
	{ "CDAEMON_STDERR", parse_stderr, PATH_WANT },
	{ "CDAEMON_STDIN", parse_stdin, PATH_WANT },
	{ "CDAEMON_CHDIR", parse_chdir, PATH_WANT },
	{ "CDAEMON_UMASK", parse_umask, "want an octal mask from 0 to 0777 such as 022" },
	{ "CDAEMON_KEEP_FDS", parse_keep_fds,
	  "want a comma-separated list of distinct descriptors above 2, such as 3,4" },
};

#define NVARS (sizeof vars / sizeof vars[0])

/* "CDAEMON=..." and "CDAEMON_*=..." are ours; "CDAEMONS=..." is not. */
static int is_ours(const char *entry)
{
	return !strncmp(entry, "CDAEMON", 7) && (entry[7] == '=' || entry[7] == '_');
}

/*
 * A program that calls Ready() can make "ready" its default wait point,
 * like a //go:debug line sets a GODEBUG default, by defining in a cgo
 * preamble of its main package:
 *	const char cdaemon_default_wait[] = "ready";
 * CDAEMON_WAIT still overrides it. Weak: most programs define nothing.
 */
extern const char cdaemon_default_wait[] __attribute__((weak));

static void read_config(struct config *c)
{
	*c = (struct config){
		.mode = CDAEMON_MODE_AUTO,
		.wait = CDAEMON_WAIT_START,
		.timeout_ms = 90000,
		.dir = "/",
		.umask = 0,
	};
	if (cdaemon_default_wait && parse_wait(cdaemon_default_wait, c) < 0)
		bail(CDAEMON_EX_SOFTWARE,
		     "the program's cdaemon_default_wait=%s is not valid: want none, start or ready",
		     quote(cdaemon_default_wait));
	for (char **e = environ; *e; e++) {
		if (!is_ours(*e))
			continue;
		const char *eq = strchr(*e, '=');
		size_t len = eq ? (size_t)(eq - *e) : strlen(*e);
		const struct var *v = NULL;
		for (size_t i = 0; i < NVARS; i++)
			if (strlen(vars[i].name) == len && !strncmp(vars[i].name, *e, len))
				v = &vars[i];
		if (!v) {
			/* The name as typed, or quoted like a value if it has
			 * control bytes (a terminal escape must not reach the tty). */
			char name[65];
			size_t n = len < sizeof name - 1 ? len : sizeof name - 1;
			int plain = 1;
			memcpy(name, *e, n);
			name[n] = 0;
			for (size_t i = 0; i < n; i++)
				if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
					plain = 0;
			bail(CDAEMON_EX_USAGE,
			     "%s is not a cdaemon variable: want CDAEMON, CDAEMON_WAIT, "
			     "CDAEMON_TIMEOUT, CDAEMON_PIDFILE, CDAEMON_LOG, CDAEMON_STDOUT, "
			     "CDAEMON_STDERR, CDAEMON_STDIN, CDAEMON_CHDIR, CDAEMON_UMASK "
			     "or CDAEMON_KEEP_FDS",
			     plain ? name : quote(name));
		}
		if (!eq || v->parse(eq + 1, c) < 0)
			bail(CDAEMON_EX_USAGE, "%s=%s is not valid: %s", v->name,
			     quote(eq ? eq + 1 : ""), v->want);
	}
	/* Kept descriptors must exist now: keeping a closed one is a typo. */
	for (int i = 0; i < c->nkeep; i++)
		if (fcntl(c->keep[i], F_GETFD) < 0)
			bail(CDAEMON_EX_USAGE, "CDAEMON_KEEP_FDS=%s is not valid: fd %d is not open",
			     quote(c->keep_text), c->keep[i]);
}

/* ---------------------------------------------------------------------
 * 2. Decide. `auto` stays in the foreground where daemonizing would be
 * wrong; nothing ever forks a process that merely loaded us as a library.
 */

static int args_argc;
static char **args_argv;

#ifndef __GLIBC__
/* musl calls constructors without arguments: read them from /proc. */
static void load_args(void)
{
	static char buf[8192];
	static char *argv[64];
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	for (char *p = buf; p < buf + n && args_argc < 63; p += strlen(p) + 1)
		argv[args_argc++] = p;
	args_argv = argv;
}
#endif

static void set_prog_name(void)
{
	if (args_argc < 1 || !args_argv[0])
		return;
	const char *base = strrchr(args_argv[0], '/');
	snprintf(prog, sizeof prog, "%s", base ? base + 1 : args_argv[0]);
}

/* go test runs its binaries with -test.* flags; they are named *.test. */
static int is_test_binary(void)
{
	size_t n = strlen(prog);
	if (n > 5 && !strcmp(prog + n - 5, ".test"))
		return 1;
	for (int i = 1; i < args_argc; i++)
		if (!strncmp(args_argv[i], "-test.", 6) || !strncmp(args_argv[i], "--test.", 7))
			return 1;
	return 0;
}

/*
 * Is this code in a Go program's own executable? Not in a c-shared or
 * plugin build: then it is in a library the host loaded. Nor in a
 * c-archive linked into a C program: the constructor is then in the host's
 * executable, so Go's build info (what `go version -m` prints) must tell.
 * It is a 16-byte aligned block in the writable data that starts with
 * "\xff Go buildinf:"; flag 2 means two varint-prefixed strings follow at
 * offset 32, the Go version and the module information, which has a line
 * "build\t-buildmode=c-archive".
 */
/* Plain loops, not memcmp/memmem: this reads a whole data segment, C
 * globals' sanitizer redzones included, on purpose. */
__attribute__((no_sanitize_address)) static int has_at(const unsigned char *p,
							 const unsigned char *hi, const char *s)
{
	for (; *s; s++, p++)
		if (p >= hi || *p != (unsigned char)*s)
			return 0;
	return 1;
}

__attribute__((no_sanitize_address)) static int archive_mode(const unsigned char *lo,
							       const unsigned char *hi)
{
	const unsigned char *p = (const unsigned char *)(((uintptr_t)lo + 15) & ~(uintptr_t)15);
	for (; p + 32 <= hi; p += 16) {
		if (p[0] != 0xff || !has_at(p, hi, "\xff Go buildinf:") || !(p[15] & 2))
			continue;
		const unsigned char *q = p + 32;
		for (int s = 0; s < 2; s++) {
			uint64_t len = 0;
			for (int shift = 0; q < hi && shift < 64; shift += 7) {
				len |= (uint64_t)(*q & 0x7f) << shift;
				if (!(*q++ & 0x80))
					break;
			}
			if (len > (uint64_t)(hi - q))
				return 0;
			for (const unsigned char *r = q; s == 1 && r < q + len; r++)
				if (*r == 'b' && has_at(r, q + len, "build\t-buildmode=c-archive\n"))
					return 1;
			q += len;
		}
		return 0;
	}
	return 0;
}

/* dl_iterate_phdr visits the main program first: look at it, then stop. */
static int main_program(struct dl_phdr_info *info, size_t size, void *verdict)
{
	int in_it = 0;
	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && (uintptr_t)main_program >= lo &&
		    (uintptr_t)main_program < lo + ph->p_memsz)
			in_it = 1;
	}
	*(const char **)verdict = in_it ? NULL : "not the main executable (a c-shared or plugin build)";
	for (int i = 0; in_it && i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		const unsigned char *lo = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W) && archive_mode(lo, lo + ph->p_filesz))
			*(const char **)verdict =
				"not the main executable (a c-archive linked into a C program)";
	}
	return 1;
}

static const char *library_host(void)
{
	const char *verdict = NULL;
	dl_iterate_phdr(main_program, &verdict);
	return verdict;
}

/*
 * A program decides from its arguments whether to daemonize by defining,
 * in a cgo preamble of its main package,
 *	int cdaemon_wanted(int argc, char **argv);
 * non-zero: daemonize. Consulted in auto mode only. Weak: most programs
 * define nothing, and then a request for help or the version stays in the
 * foreground, where its output reaches the terminal.
 */
extern int cdaemon_wanted(int argc, char **argv) __attribute__((weak));

static const char *asks_help(void)
{
	static const char *flags[] = { "-h", "-help", "--help", "-version", "--version" };
	static char why[96];
	for (int i = 1; i < args_argc && args_argv[i]; i++) {
		if (!strcmp(args_argv[i], "--"))
			return NULL;
		for (size_t j = 0; j < sizeof flags / sizeof flags[0]; j++)
			if (!strcmp(args_argv[i], flags[j])) {
				snprintf(why, sizeof why, "the arguments ask for help or the version (%s)",
					 flags[j]);
				return why;
			}
	}
	return NULL;
}

/* Why the program's arguments say not to daemonize, or NULL. */
static const char *program_says_no(void)
{
	if (cdaemon_wanted)
		return cdaemon_wanted(args_argc, args_argv) ? NULL
							    : "the program's cdaemon_wanted() said no";
	return asks_help();
}

/* Why not to daemonize, or NULL to go ahead. */
static const char *skip_reason(const struct config *c)
{
	const char *why;
	if (c->mode == CDAEMON_MODE_OFF)
		return "CDAEMON=off";
	if (c->mode == CDAEMON_MODE_AUTO && is_test_binary())
		return "a go test binary";
	if (c->mode == CDAEMON_MODE_AUTO && (why = program_says_no()))
		return why;
	if (c->mode == CDAEMON_MODE_AUTO && getpid() == 1)
		return "running as PID 1";
	if (c->mode == CDAEMON_MODE_AUTO && getppid() == 1)
		return "started by PID 1 (init or a service manager)";
	/* Last, as it reads the most: never fork a host that loaded us. */
	return library_host();
}

/* ---------------------------------------------------------------------
 * 3. Refuse unsafe states. fork() copies only the calling thread; if
 * another thread already exists (a preloaded library, a constructor that
 * started one), the daemon would inherit its locks held and never released.
 */

static void check_single_thread(void)
{
	struct stat st;
	/* procfs gives a task directory 2 + (number of threads) links. */
	if (stat("/proc/self/task", &st) == 0 && st.st_nlink != 3)
		bail(CDAEMON_EX_SOFTWARE,
		     "cannot daemonize safely: the process already has %ld threads before main "
		     "(a preloaded library or constructor started them); set CDAEMON=off to run in "
		     "the foreground",
		     (long)st.st_nlink - 2);
}

/* ---------------------------------------------------------------------
 * 4. Open, in the launcher and relative to its working directory, all the
 * daemon will keep: a mistake is reported on the user's terminal, before
 * anything is forked. The umask is 0 here so created files get exactly
 * the modes below.
 */

struct files {
	int in, out, err;   /* stdio targets */
	int pidfile;        /* locked, or -1 */
	int created;        /* the pidfile did not exist before */
};

/* If the launcher was started with 0, 1 or 2 closed, the files opened
 * below would land there and be clobbered by dup2: fill them first. */
static void fill_std_fds(void)
{
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			bail(CDAEMON_EX_CANTCREAT, "cannot open /dev/null: %s", strerror(errno));
}

/* O_NONBLOCK only while opening: a FIFO with no reader then fails (ENXIO)
 * instead of blocking the launcher forever, and one with no writer yet
 * opens. The daemon gets the descriptor back in blocking mode. */
static int open_target(const char *var, const char *path, int flags, mode_t mode)
{
	struct stat st;
	int fd = open(path, flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, mode);
	if (fd < 0 && errno == ENXIO)
		bail(CDAEMON_EX_CANTCREAT, "%s: cannot open %s: a FIFO with no reader", var,
		     quote(path));
	if (fd < 0)
		bail(CDAEMON_EX_CANTCREAT, "%s: cannot open %s: %s", var, quote(path), strerror(errno));
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
		bail(CDAEMON_EX_CANTCREAT, "%s: cannot open %s: %s", var, quote(path), strerror(EISDIR));
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
		bail(CDAEMON_EX_CANTCREAT, "%s: cannot open %s: %s", var, quote(path), strerror(errno));
	return fd;
}

static void open_stdio(const struct config *c, struct files *f)
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
static int open_dir(const struct config *c)
{
	int fd = open(c->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		bail(CDAEMON_EX_CANTCREAT, "CDAEMON_CHDIR: cannot change to %s: %s", quote(c->dir),
		     strerror(errno));
	return fd;
}

/* The pid in a pidfile someone else holds, for the message. */
static long read_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	return strtol(buf, NULL, 10);
}

/* Bail after the pidfile was opened: remove it if this start created it
 * (created: its path, NULL otherwise). */
static _Noreturn void pidfile_bail(const char *created, int status, const char *fmt, ...)
{
	va_list ap;
	if (created)
		unlink(created);
	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
	_exit(status);
}

/* The directory the pidfile is in (zeroed if it cannot be looked at: the
 * open below then says why). */
static void stat_parent(const char *path, struct stat *st)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n = !slash ? 0 : slash == path ? 1 : (size_t)(slash - path);
	memcpy(dir, n ? path : ".", n ? n : 1);
	dir[n ? n : 1] = 0;
	if (stat(dir, st) < 0)
		memset(st, 0, sizeof *st);
}

/*
 * The pidfile is locked with flock: the lock belongs to the open file
 * description, which fork shares, so it passes from the launcher to the
 * daemon and lasts until the daemon's last copy closes. O_CLOEXEC keeps it
 * from programs the daemon runs. O_NOFOLLOW: never write through a symlink.
 *
 * A lock only means something on the one file every start finds at the
 * path. So: refuse a directory anyone may write to without the sticky bit
 * (anyone could swap the file); in a sticky one (/tmp) refuse a file
 * someone else planted; refuse a file with other names (a hard link: the
 * pid would be written into someone else's file); after locking, check
 * the path still names the locked file (a failed start may have removed
 * it meanwhile) or start over; and empty it, so a start refused meanwhile
 * never names a stale pid.
 */
static void open_pidfile(const struct config *c, struct files *f)
{
	struct stat st, dir, now;
	int fd;
	const char *path = c->pidfile;

	f->pidfile = -1;
	f->created = 0;
	if (!path)
		return;
	stat_parent(path, &dir);
	if ((dir.st_mode & S_IWOTH) && !(dir.st_mode & S_ISVTX))
		bail(CDAEMON_EX_CANTCREAT,
		     "CDAEMON_PIDFILE: refusing %s: its directory is writable by anyone and not sticky, "
		     "so anyone could replace the file",
		     quote(path));
	for (;;) {
		const char *mine;
		for (;;) {
			fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
				  0644);
			f->created = fd >= 0;
			if (fd >= 0 || errno != EEXIST)
				break;
			fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
			if (fd >= 0 || errno != ENOENT)
				break; /* ENOENT: removed since; create it again */
		}
		if (fd < 0 && errno == ELOOP)
			bail(CDAEMON_EX_CANTCREAT, "CDAEMON_PIDFILE: refusing %s: it is a symbolic link",
			     quote(path));
		if (fd < 0)
			bail(CDAEMON_EX_CANTCREAT, "CDAEMON_PIDFILE: cannot open %s: %s", quote(path),
			     strerror(errno));
		mine = f->created ? path : NULL;
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
			pidfile_bail(mine, CDAEMON_EX_CANTCREAT,
				     "CDAEMON_PIDFILE: refusing %s: not a regular file", quote(path));
		if (st.st_nlink != 1)
			bail(CDAEMON_EX_CANTCREAT,
			     "CDAEMON_PIDFILE: refusing %s: it has %lu hard links (other names for "
			     "the same file)",
			     quote(path), (unsigned long)st.st_nlink);
		if (!f->created && (dir.st_mode & S_IWOTH) && st.st_uid != geteuid())
			bail(CDAEMON_EX_CANTCREAT,
			     "CDAEMON_PIDFILE: refusing %s: owned by uid %lu, in a directory anyone "
			     "can write to",
			     quote(path), (unsigned long)st.st_uid);
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			long pid = read_pid(fd);
			if (errno != EWOULDBLOCK)
				pidfile_bail(mine, CDAEMON_EX_CANTCREAT,
					     "CDAEMON_PIDFILE: cannot lock %s: %s", quote(path),
					     strerror(errno));
			/* Locked by another start, even one that opened the file
			 * we just created: it is theirs, never remove it. */
			if (pid > 0)
				bail(CDAEMON_EX_TEMPFAIL, "already running: %s is locked by pid %ld",
				     quote(path), pid);
			bail(CDAEMON_EX_TEMPFAIL, "already running: %s is locked by a starting daemon",
			     quote(path));
		}
		if (lstat(path, &now) == 0 && now.st_dev == st.st_dev && now.st_ino == st.st_ino)
			break;
		close(fd); /* removed or replaced before we locked it */
	}
	if (ftruncate(fd, 0) < 0)
		pidfile_bail(f->created ? path : NULL, CDAEMON_EX_CANTCREAT,
			     "CDAEMON_PIDFILE: cannot write %s: %s", quote(path), strerror(errno));
	f->pidfile = fd;
}

/* path made absolute against the launcher's working directory; as given
 * if that would not fit. */
static void absolute(char *dst, size_t size, const char *path)
{
	const char *dir = cdaemon_state.dir;
	const char *sep = strcmp(dir, "/") ? "/" : "";
	if (!path)
		dst[0] = 0;
	else if (path[0] == '/' || !dir[0] || strlen(dir) + strlen(sep) + strlen(path) >= size)
		snprintf(dst, size, "%s", path);
	else {
		size_t n = strlen(dir), m = strlen(sep);
		memcpy(dst, dir, n);
		memcpy(dst + n, sep, m);
		memcpy(dst + n + m, path, strlen(path) + 1);
	}
}

/* Info() reports the pidfile as an absolute path, the launcher needs it
 * after chdir to remove the file if the start fails, and ReopenLogs()
 * reopens the log files by their absolute paths. */
static void record_paths(const struct config *c)
{
	struct cdaemon_state *s = &cdaemon_state;
	absolute(s->pidfile, sizeof s->pidfile, c->pidfile);
	absolute(s->stdout_path, sizeof s->stdout_path, c->out ? c->out : c->log);
	absolute(s->stderr_path, sizeof s->stderr_path, c->err ? c->err : c->log);
}

/* ---------------------------------------------------------------------
 * Status pipe messages (format in cdaemon.h).
 */

static int send_msg(int fd, int type, int status, const char *payload)
{
	unsigned char buf[CDAEMON_MSG_HEADER + CDAEMON_MSG_MAX];
	size_t n = payload ? strlen(payload) : 0;
	if (n > CDAEMON_MSG_MAX)
		n = CDAEMON_MSG_MAX;
	buf[0] = type;
	buf[1] = status;
	buf[2] = n & 0xff;
	buf[3] = n >> 8;
	memcpy(buf + CDAEMON_MSG_HEADER, payload, n);
	return write(fd, buf, CDAEMON_MSG_HEADER + n) < 0 ? -1 : 0;
}

/* After the first fork: report to the launcher, which prints it. */
static _Noreturn void fail_to(int fd, int status, const char *what)
{
	char msg[256];
	snprintf(msg, sizeof msg, "cdaemon: %s: %s", what, strerror(errno));
	send_msg(fd, CDAEMON_MSG_FAILED, status, msg);
	_exit(status);
}

/* ---------------------------------------------------------------------
 * 5. The launcher: wait on the status pipe until the daemon reaches the
 * wait point, then exit 0. It never returns into the program: the Go
 * runtime never starts here.
 *
 * The launcher is a child subreaper, so when the middle process exits the
 * daemon is re-parented to it, and waitpid sees how the daemon ended if it
 * dies before the wait point. Once the launcher exits, the daemon passes
 * to init (or the nearest subreaper above).
 */

struct launcher {
	const struct config *c;
	const struct files *f;
	pid_t middle, daemon; /* daemon: -1 until the middle reports it */
};

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/*
 * Wait until child pid has ended, without reaping it (WNOWAIT): while it
 * is an unreaped zombie its pid, and so its process group id, cannot be
 * reused, which keeps kill(-group) aimed at our processes. Returns 1 and
 * the wait status, or 0 at the deadline.
 */
static int wait_exit(pid_t pid, long long deadline, int *status)
{
	for (;;) {
		siginfo_t si;
		si.si_pid = 0;
		if (waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 && errno != EINTR) {
			*status = 0; /* not our child (any more): nothing to wait for */
			return 1;
		}
		if (si.si_pid == pid) {
			*status = si.si_code == CLD_EXITED ? W_EXITCODE(si.si_status, 0)
							   : W_EXITCODE(0, si.si_status);
			return 1;
		}
		if (now_ms() >= deadline)
			return 0;
		usleep(1000);
	}
}

/*
 * The start failed: make sure nothing of it is left, then exit. A daemon
 * that is ending by itself (it sent Fail) gets GRACE_MS to do so; one
 * that is not (a timeout) gets SIGTERM at once; then GRACE_MS more, then
 * SIGKILL. Its process group (the session the
 * middle made, whose id is the middle's pid) is killed last, for anything
 * the daemon started; the middle is reaped only after that, so the group
 * id cannot have been reused.
 */
static _Noreturn void launcher_fail(struct launcher *l, int status, int ending)
{
	pid_t group = l->middle;
	int st;
	if (l->daemon > 0 && !wait_exit(l->daemon, now_ms() + (ending ? GRACE_MS : 0), &st)) {
		kill(-group, SIGTERM);
		if (!wait_exit(l->daemon, now_ms() + GRACE_MS, &st))
			kill(-group, SIGKILL);
	}
	kill(-group, SIGKILL);
	/* Reap the middle, the daemon and the daemon's children, which were
	 * re-parented to us (we are their subreaper). */
	for (long long end = now_ms() + 10 * GRACE_MS; now_ms() < end;) {
		pid_t pid = waitpid(-1, &st, WNOHANG);
		if (pid < 0 && errno != EINTR)
			break; /* ECHILD: none left */
		if (pid == 0)
			usleep(1000);
	}
	/* The launcher still shares the lock, so the pidfile is ours to
	 * remove; check the path still names the same file. */
	struct stat a, b;
	const char *path = cdaemon_state.pidfile;
	if (l->f->pidfile >= 0 && fstat(l->f->pidfile, &a) == 0 && lstat(path, &b) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino)
		unlink(path);
	_exit(status);
}

static const char *wait_point(int wait)
{
	return wait == CDAEMON_WAIT_READY ? "ready" : wait == CDAEMON_WAIT_START ? "started" : "forked";
}

/* The status pipe closed before the wait point: say how the daemon (or,
 * if it was never reported, the middle process) ended and exit with its
 * status, 128+signal if it was killed. */
static _Noreturn void launcher_eof(struct launcher *l)
{
	int st, status;
	const char *who = l->daemon > 0 ? "the daemon" : "the intermediate process";
	pid_t pid = l->daemon > 0 ? l->daemon : l->middle;

	/* The pipe reads EOF when the middle's descriptors close, which the
	 * kernel does before it re-parents the middle's child, the daemon, to
	 * us: until the middle has exited, waitid on the daemon fails with
	 * ECHILD. So wait for the middle first (without reaping it). */
	if (l->daemon > 0)
		wait_exit(l->middle, now_ms() + GRACE_MS, &st);
	if (!wait_exit(pid, now_ms() + GRACE_MS, &st)) {
		say("%s (pid %d) closed its status pipe before it was %s; stopping it", who, (int)pid,
		    wait_point(l->c->wait));
		launcher_fail(l, CDAEMON_EX_FAIL, 0);
	}
	if (WIFSIGNALED(st)) {
		int sig = WTERMSIG(st);
		status = 128 + sig;
		say("%s (pid %d) was killed by signal %d (%s) before it was %s", who, (int)pid, sig,
		    strsignal(sig), wait_point(l->c->wait));
	} else {
		status = WEXITSTATUS(st);
		say("%s (pid %d) exited with status %d before it was %s", who, (int)pid, status,
		    wait_point(l->c->wait));
		if (status == 0) /* it did not start: never tell the shell it did */
			status = CDAEMON_EX_FAIL;
	}
	launcher_fail(l, status, 1);
}

static _Noreturn void launcher_timeout(struct launcher *l)
{
	say("the daemon (pid %d) was not %s within CDAEMON_TIMEOUT (%lld ms); stopping it",
	    (int)l->daemon, wait_point(l->c->wait), l->c->timeout_ms);
	launcher_fail(l, CDAEMON_EX_FAIL, 0);
}

static _Noreturn void launcher_done(struct launcher *l)
{
	/* The middle exits right after it reports the pid: reap it, so
	 * starting a daemon leaves no zombie behind. */
	while (waitpid(l->middle, NULL, 0) < 0 && errno == EINTR)
		;
	_exit(CDAEMON_EX_OK);
}

/* Handle one message; return to keep waiting. */
static void launcher_msg(struct launcher *l, const unsigned char *m, size_t len)
{
	char text[CDAEMON_MSG_MAX + 1];
	memcpy(text, m + CDAEMON_MSG_HEADER, len);
	text[len] = 0;
	switch (m[0]) {
	case CDAEMON_MSG_PID:
		l->daemon = (pid_t)atoi(text);
		if (l->c->wait == CDAEMON_WAIT_NONE)
			launcher_done(l);
		break;
	case CDAEMON_MSG_STARTED:
		if (l->c->wait <= CDAEMON_WAIT_START)
			launcher_done(l);
		break;
	case CDAEMON_MSG_READY:
		launcher_done(l);
	case CDAEMON_MSG_FAILED: /* the text carries its own "cdaemon: " if ours */
		say("\1%s", text);
		launcher_fail(l, m[1] ? m[1] : CDAEMON_EX_FAIL, 1);
	}
}

static _Noreturn void run_launcher(const struct config *c, const struct files *f, pid_t middle,
				   int rfd)
{
	struct launcher l = { c, f, middle, -1 };
	unsigned char buf[2 * (CDAEMON_MSG_HEADER + CDAEMON_MSG_MAX)];
	size_t have = 0;
	long long deadline = now_ms() + c->timeout_ms;

	for (;;) {
		long long left = deadline - now_ms();
		struct pollfd p = { .fd = rfd, .events = POLLIN };
		if (left <= 0)
			launcher_timeout(&l);
		if (poll(&p, 1, left > 1000000 ? 1000000 : (int)left) <= 0)
			continue;
		ssize_t n = read(rfd, buf + have, sizeof buf - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			launcher_eof(&l);
		have += n;
		/* Whole messages only; a partial one waits for the rest. */
		while (have >= CDAEMON_MSG_HEADER) {
			size_t len = buf[2] | buf[3] << 8;
			if (have < CDAEMON_MSG_HEADER + len)
				break;
			launcher_msg(&l, buf, len);
			have -= CDAEMON_MSG_HEADER + len;
			memmove(buf, buf + CDAEMON_MSG_HEADER + len, have);
		}
	}
}

/* ---------------------------------------------------------------------
 * 6. The middle process: leave the terminal's session, then fork again so
 * the daemon is not a session leader and can never acquire a controlling
 * terminal by opening one.
 */

static pid_t run_middle(const struct files *f, int wfd)
{
	char pid_text[16];
	if (setsid() < 0)
		fail_to(wfd, CDAEMON_EX_OSERR, "setsid");
	/* When the middle (a session leader) exits, the daemon's process group
	 * is orphaned; POSIX then sends SIGHUP to it if any member is stopped.
	 * Ignore SIGHUP until the daemon has reset its signals (step 7). */
	signal(SIGHUP, SIG_IGN);
	pid_t pid = fork();
	if (pid < 0)
		fail_to(wfd, CDAEMON_EX_OSERR, "fork");
	if (pid == 0)
		return 0;
	if (f->pidfile >= 0) {
		int n = snprintf(pid_text, sizeof pid_text, "%d\n", (int)pid);
		if (ftruncate(f->pidfile, 0) < 0 || pwrite(f->pidfile, pid_text, n, 0) != n) {
			int e = errno;
			kill(pid, SIGKILL);
			errno = e;
			fail_to(wfd, CDAEMON_EX_CANTCREAT, "CDAEMON_PIDFILE: cannot write the pid");
		}
	}
	snprintf(pid_text, sizeof pid_text, "%d", (int)pid);
	if (send_msg(wfd, CDAEMON_MSG_PID, 0, pid_text) < 0) {
		/* The launcher would never learn the daemon's pid: in wait=none
		 * it would take our exit for success. Fail the start instead. */
		int e = errno;
		kill(pid, SIGKILL);
		errno = e;
		fail_to(wfd, CDAEMON_EX_OSERR, "status pipe: cannot report the daemon's pid");
	}
	_exit(0);
}

/* ---------------------------------------------------------------------
 * 7. The daemon: from here on this process is the program. Detach stdio,
 * close what was inherited, give the Go runtime clean signal state and an
 * environment without our variables, then return from the constructor.
 */

static void redirect_stdio(const struct files *f, int wfd)
{
	const int src[3] = { f->in, f->out, f->err };
	for (int fd = 0; fd <= 2; fd++) {
		/* dup2 onto itself is a no-op that keeps O_CLOEXEC: clear it. */
		int r = src[fd] == fd ? fcntl(fd, F_SETFD, 0) : dup2(src[fd], fd);
		if (r < 0)
			fail_to(wfd, CDAEMON_EX_OSERR, "dup2");
	}
}

static int close_range_(unsigned lo, unsigned hi)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, lo, hi, 0) == 0)
		return 0;
#endif
	/* Kernels before 5.9: close one by one up to the limit. */
	long max = sysconf(_SC_OPEN_MAX);
	for (long fd = lo; fd <= (long)hi && fd < (max > 0 ? max : 65536); fd++)
		close((int)fd);
	return 0;
}

/* Close every fd above 2 except the kept ones, the status pipe and the
 * pidfile (whose open description holds the lock). */
static void close_inherited_fds(const struct config *c, const struct files *f, int wfd)
{
	int keep[MAX_KEEP_FDS + 2], n = 0;
	for (int i = 0; i < c->nkeep; i++)
		keep[n++] = c->keep[i];
	if (wfd >= 0)
		keep[n++] = wfd;
	if (f->pidfile >= 0)
		keep[n++] = f->pidfile;
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

static void become_daemon(const struct config *c, const struct files *f, int wfd)
{
	redirect_stdio(f, wfd);
	if (c->wait == CDAEMON_WAIT_NONE) {
		close(wfd); /* the launcher waits only for the middle's report */
		wfd = -1;
	}
	close_inherited_fds(c, f, wfd);
	reset_signals();
	strip_environment();
	cdaemon_state.daemonized = 1;
	cdaemon_state.status_fd = wfd;
}

/* ---------------------------------------------------------------------
 * The constructor. Priority 101 runs it before the main program's other
 * constructors, so whatever they start happens once, in the daemon.
 *
 * Built with -DCDAEMON_NO_CONSTRUCTOR (CGO_CFLAGS), it is not one: the
 * tests use that to check package init refuses a binary whose constructor
 * never ran, as -linkmode=internal can make, and fuzzers call the steps.
 */

#ifdef CDAEMON_NO_CONSTRUCTOR
#define CDAEMON_CONSTRUCTOR __attribute__((unused))
#else
#define CDAEMON_CONSTRUCTOR __attribute__((constructor(101)))
#endif

CDAEMON_CONSTRUCTOR static void cdaemon_constructor(int argc, char **argv)
{
	struct cdaemon_state *s = &cdaemon_state;
	struct config c;
	struct files f;
	int pipefd[2];

	clock_gettime(CLOCK_MONOTONIC, &s->entry);
	s->ran = 1;
	s->launcher_pid = getpid();
#ifdef __GLIBC__
	args_argc = argc;
	args_argv = argv;
#else
	(void)argc, (void)argv;
	load_args();
#endif
	set_prog_name();
	/* Info().Dir, in the foreground too: programs resolve relative
	 * paths against it whether or not they daemonized. */
	if (!getcwd(s->dir, sizeof s->dir))
		s->dir[0] = 0;

	read_config(&c); /* 1 */
	s->mode = c.mode;
	s->wait = c.wait;
	const char *reason = skip_reason(&c); /* 2 */
	if (reason) {
		snprintf(s->reason, sizeof s->reason, "%s", reason);
		return;
	}
	check_single_thread(); /* 3 */

	fill_std_fds(); /* 4 */
	umask(0);
	open_stdio(&c, &f);
	int dir = open_dir(&c);
	open_pidfile(&c, &f); /* last: a failure below removes it */
	record_paths(&c);
	const char *created = f.created ? s->pidfile : NULL;
	if (fchdir(dir) < 0)
		pidfile_bail(created, CDAEMON_EX_CANTCREAT, "CDAEMON_CHDIR: cannot change to %s: %s",
			     quote(c.dir), strerror(errno));
	close(dir);
	umask(c.umask);

	if (pipe2(pipefd, O_CLOEXEC) < 0) /* 5 */
		pidfile_bail(created, CDAEMON_EX_OSERR, "pipe: %s", strerror(errno));
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	fflush(NULL); /* buffered output must not be written twice */
	/*
	 * vfork, not fork: the middle process only calls setsid, forks the
	 * daemon and exits, so it need not copy the launcher's address space
	 * (nor tear the copy down when it exits): 0.1-0.2 ms less per start
	 * (bench/, -exp). It runs in the launcher's memory while the launcher
	 * is suspended, which is safe because it never returns from this
	 * function: run_middle ends in _exit, and returns only in the daemon,
	 * which a real fork() gave memory of its own. Its signal dispositions
	 * and descriptor table are its own (vfork shares neither), so setsid,
	 * SIGHUP and the closes touch only it.
	 */
	pid_t middle = vfork();
	if (middle < 0)
		pidfile_bail(created, CDAEMON_EX_OSERR, "fork: %s", strerror(errno));
	if (middle > 0) {
		close(pipefd[1]);
		run_launcher(&c, &f, middle, pipefd[0]);
	}

	close(pipefd[0]);
	run_middle(&f, pipefd[1]); /* 6: returns in the daemon only */
	become_daemon(&c, &f, pipefd[1]); /* 7 */
}
