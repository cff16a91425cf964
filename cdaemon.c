/*
 * cdaemon.c: make the program a daemon before the Go runtime starts.
 *
 * A constructor runs from the C start-up code while the process is still
 * single-threaded, so fork() is safe: the Go runtime has not started a
 * thread yet, and it boots only once, in the daemon. The steps below happen
 * in the order this file lists them:
 *
 *   launcher   0. a library in someone else's process? do nothing at all
 *              1. refuse CDAEMON_* in a secure-execution process (exit 77)
 *              2. read and validate CDAEMON_*        (bad value: exit 64)
 *              3. decide whether to daemonize         (auto: tests, supervisors)
 *              4. refuse unsafe states                (threads: exit 70)
 *              5. open stdio targets and the pidfile  (exit 73, locked: 75)
 *              6. fork; wait on the status pipe       (exit with the outcome)
 *   middle     7. setsid, fork again, write the pidfile, report the pid
 *   daemon     8. stdio, fds, signals, environment; return to start Go
 *
 * Everything up to the first fork fails synchronously on the user's
 * terminal; after it, failures travel back through the status pipe. Both
 * go through bail(), which knows which side of the fork it is on.
 *
 * Both children are made by libc's fork(), never vfork or a raw clone:
 * glibc keeps per-thread state that fork() keeps right for the child and
 * the Go runtime relies on (the tid in the thread control block, its locks,
 * and the rseq registration, which the kernel drops for a CLONE_VM child
 * and which a child of that child would then never get back).
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
#include <sys/auxv.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
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
	const char *timeout_text;
	const char *pidfile, *log, *out, *err, *in, *dir;
	mode_t umask;
	int keep[MAX_KEEP_FDS];
	int nkeep;
	const char *keep_text;
};

/* ---------------------------------------------------------------------
 * Reporting: one error path. bail() ends the start wherever it is. Before
 * the first fork it prints on the user's terminal and removes the pidfile
 * this start took; after it (in the middle or the daemon) it sends the
 * message through the status pipe, and the launcher prints it. Either way
 * the process leaves with _exit: a half-started process must not run
 * atexit handlers or flush stdio buffers it shares with others.
 */

static char prog[64] = "cdaemon";
static int forked;         /* this is the middle or the daemon */
static int status_fd = -1; /* then: the status pipe's write end, or -1 */

/* Write to fd 2 without dying of SIGPIPE if it is a closed pipe: block
 * SIGPIPE around the write and take back one that the write raised. */
static void write_stderr(const char *buf, size_t n)
{
	sigset_t pipe, old, pending;
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	sigprocmask(SIG_BLOCK, &pipe, &old);
	sigpending(&pending);
	int was_pending = sigismember(&pending, SIGPIPE);
	if (write(2, buf, n) < 0 && errno == EPIPE && !was_pending) {
		const struct timespec zero = { 0, 0 };
		sigtimedwait(&pipe, NULL, &zero);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
}

/*
 * Text as it may reach a terminal: bytes below 0x20, 0x7f, C1 controls
 * and bytes that are not UTF-8 become \xNN, so a value or a message from
 * the daemon can carry no terminal escape; with quoting, so do '\\' and
 * '"'. Returns the length written, at most size-1; cut text ends in "...".
 */
static size_t escape_text(char *dst, size_t size, const char *src, size_t len, int quoting)
{
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)src[i];
		size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
				     : (c & 0xf8) == 0xf0 ? 4 : 0;
		int plain = n == 1 && c >= 0x20 && c != 0x7f && !(quoting && (c == '\\' || c == '"'));
		if (n > 1 && i + n <= len) {
			plain = c >= 0xc2 && c <= 0xf4;
			for (size_t k = 1; k < n; k++)
				plain &= ((unsigned char)src[i + k] & 0xc0) == 0x80;
			/* U+0080..U+009F are the C1 controls (0x9b is CSI). */
			plain &= !(c == 0xc2 && (unsigned char)src[i + 1] < 0xa0);
		}
		if (!plain)
			n = 1;
		if (o + (plain ? n : 4) + 4 > size) {
			memcpy(dst + o, "...", 3);
			o += 3;
			break;
		}
		if (plain)
			memcpy(dst + o, src + i, n), o += n;
		else
			o += snprintf(dst + o, 5, "\\x%02x", c);
		i += n;
	}
	dst[o] = 0;
	return o;
}

static size_t escape(char *dst, size_t size, const char *src, size_t len)
{
	return escape_text(dst, size, src, len, 0);
}

/* A value as it appears in messages: quoted and escaped. Two buffers, so a
 * message can quote two values. */
static const char *quote(const char *s)
{
	static char bufs[2][160];
	static int which;
	char *b = bufs[which ^= 1];
	size_t n;
	b[0] = '"';
	n = 1 + escape_text(b + 1, sizeof bufs[0] - 3, s, strlen(s), 1);
	b[n++] = '"';
	b[n] = 0;
	return b;
}

/* "prog: text\n" on fd 2, text escaped: it may come from the daemon. */
static void print_line(const char *text, size_t len)
{
	char buf[2 * PATH_MAX + 256];
	size_t n = snprintf(buf, sizeof buf, "%s: ", prog);
	n += escape(buf + n, sizeof buf - n - 1, text, len);
	buf[n++] = '\n';
	write_stderr(buf, n);
}

static void vformat(char *buf, size_t size, const char *fmt, va_list ap)
{
	int n = snprintf(buf, size, "cdaemon: ");
	vsnprintf(buf + n, size - n, fmt, ap);
}

/* A message from the launcher itself. */
__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
	char buf[2 * PATH_MAX];
	va_list ap;
	va_start(ap, fmt);
	vformat(buf, sizeof buf, fmt, ap);
	va_end(ap);
	print_line(buf, strlen(buf));
}

static int send_msg(int fd, int type, int status, const char *payload);
static void pidfile_remove(void);

__attribute__((format(printf, 2, 3))) static _Noreturn void bail(int status, const char *fmt, ...)
{
	char buf[2 * PATH_MAX];
	va_list ap;
	va_start(ap, fmt);
	vformat(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (forked && status_fd >= 0)
		send_msg(status_fd, CDAEMON_MSG_FAILED, status, buf);
	else
		print_line(buf, strlen(buf)); /* after the fork: to the daemon's log */
	if (!forked)
		pidfile_remove();
	_exit(status);
}

/* ---------------------------------------------------------------------
 * 0. A library in someone else's process? Decided before anything else:
 * a c-shared, c-archive or plugin build must not read the host's
 * environment, print, exit or touch environ, whatever it holds.
 */

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

/* Why this is not a Go program's own executable, or NULL if it is. */
static const char *library_host(void)
{
	const char *verdict = NULL;
	dl_iterate_phdr(main_program, &verdict);
	return verdict;
}

/* ---------------------------------------------------------------------
 * 1. Secure execution (setuid, setgid, file capabilities: AT_SECURE). The
 * environment then belongs to a less privileged user: CDAEMON_PIDFILE
 * would write our pid into any file, CDAEMON_LOG create one anywhere. Any
 * CDAEMON_* is refused before anything is opened; without one the program
 * runs with its built-in defaults.
 */

/* "CDAEMON=..." and "CDAEMON_*=..." are ours; "CDAEMONS=..." is not. */
static int is_ours(const char *entry)
{
	return !strncmp(entry, "CDAEMON", 7) && (entry[7] == '=' || entry[7] == '_');
}

/* The variable's name for a message: as typed, or quoted like a value if
 * it has bytes that must be escaped. */
static const char *name_of(const char *entry)
{
	static char name[96];
	const char *eq = strchr(entry, '=');
	size_t len = eq ? (size_t)(eq - entry) : strlen(entry);
	if (len >= sizeof name)
		len = sizeof name - 1;
	memcpy(name, entry, len);
	name[len] = 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)name[i] < 0x21 || (unsigned char)name[i] >= 0x7f)
			return quote(name);
	return name;
}

static void refuse_secure_environment(void)
{
	if (!getauxval(AT_SECURE))
		return;
	for (char **e = environ; *e; e++)
		if (is_ours(*e))
			bail(CDAEMON_EX_NOPERM,
			     "%s is refused: this program runs with privileges its user does not have "
			     "(setuid, setgid or file capabilities), and cdaemon takes no settings from "
			     "such a user's environment; unset it",
			     name_of(*e));
}

/* ---------------------------------------------------------------------
 * 2. Read and validate CDAEMON_*. Every value is checked even when it
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
	c->timeout_text = v;
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
		.timeout_text = "90s",
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
			char names[512];
			size_t n = 0;
			for (size_t i = 0; i < NVARS; i++)
				n += snprintf(names + n, sizeof names - n, "%s%s",
					      i == 0 ? "" : i == NVARS - 1 ? " or " : ", ", vars[i].name);
			bail(CDAEMON_EX_USAGE, "%s is not a cdaemon variable: want %s", name_of(*e),
			     names);
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
 * 3. Decide. `auto` stays in the foreground where daemonizing would be
 * wrong: a test binary, a program asked for help, a process a service
 * manager or supervisor started (it would see the exit and start another).
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
	base = base ? base + 1 : args_argv[0];
	escape(prog, sizeof prog, base, strlen(base));
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

/* The first line of a small /proc file, or "" if it cannot be read. */
static const char *read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, size - 1);
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return buf;
}

/* An environment variable that holds exactly our pid. */
static int names_us(const char *var)
{
	const char *v = getenv(var);
	char *end;
	if (!v || !*v)
		return 0;
	errno = 0;
	long pid = strtol(v, &end, 10);
	return !*end && !errno && pid == getpid();
}

/*
 * Started by a service manager or a supervisor: run in the foreground, as
 * daemon(7) asks of new-style daemons. systemd's system instance is PID 1;
 * its user instance, runit's runsv, s6-supervise, daemontools' supervise
 * and supervisord are not, so the parent is named by what it runs.
 */
static const char *supervised(void)
{
	static const char *supervisors[] = { "runsv", "s6-supervise", "supervise",
					     "supervisord", "systemd" };
	static char why[128];
	char path[64], comm[32], cmd[256];
	pid_t ppid = getppid();

	if (getpid() == 1)
		return "running as PID 1";
	if (ppid == 1)
		return "started by PID 1 (init or a service manager)";
	if (getenv("NOTIFY_SOCKET"))
		return "NOTIFY_SOCKET is set (a systemd Type=notify service)";
	if (names_us("SYSTEMD_EXEC_PID"))
		return "SYSTEMD_EXEC_PID is this process (started by systemd)";
	if (names_us("LISTEN_PID"))
		return "LISTEN_PID is this process (socket activation)";
	snprintf(path, sizeof path, "/proc/%d/comm", (int)ppid);
	read_small(path, comm, sizeof comm);
	/* supervisord is a Python script: its comm may be the interpreter's,
	 * and then the script is the first argument. */
	snprintf(path, sizeof path, "/proc/%d/cmdline", (int)ppid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, cmd, sizeof cmd - 1);
	if (fd >= 0)
		close(fd);
	cmd[n > 0 ? n : 0] = 0;
	const char *arg1 = n > 0 && strlen(cmd) + 1 < (size_t)n ? cmd + strlen(cmd) + 1 : "";
	const char *script = strrchr(arg1, '/') ? strrchr(arg1, '/') + 1 : arg1;
	for (size_t i = 0; i < sizeof supervisors / sizeof supervisors[0]; i++) {
		const char *s = supervisors[i];
		if (!strcmp(comm, s) || (!strncmp(comm, "python", 6) && !strcmp(script, s))) {
			snprintf(why, sizeof why, "started by %s (pid %d), a supervisor", s, (int)ppid);
			return why;
		}
	}
	return NULL;
}

/* Why not to daemonize, or NULL to go ahead. */
static const char *skip_reason(const struct config *c)
{
	const char *why;
	if (c->mode == CDAEMON_MODE_OFF)
		return "CDAEMON=off";
	if (c->mode == CDAEMON_MODE_ON)
		return NULL;
	if (is_test_binary())
		return "a go test binary";
	if ((why = program_says_no()))
		return why;
	return supervised();
}

/* ---------------------------------------------------------------------
 * 4. Refuse unsafe states. fork() copies only the calling thread; if
 * another thread already exists (a preloaded library, a constructor that
 * started one), the daemon would inherit its locks held and never released.
 */

static void check_single_thread(void)
{
	struct stat st;
	/* procfs gives a task directory 2 + (number of threads) links. */
	if (stat("/proc/self/task", &st) < 0)
		bail(CDAEMON_EX_SOFTWARE,
		     "cannot daemonize safely: /proc/self/task cannot be read (%s), so the process's "
		     "threads cannot be counted; mount /proc, or set CDAEMON=off to run in the "
		     "foreground",
		     strerror(errno));
	if (st.st_nlink != 3)
		bail(CDAEMON_EX_SOFTWARE,
		     "cannot daemonize safely: the process already has %ld threads before main "
		     "(a preloaded library or constructor started them); set CDAEMON=off to run in "
		     "the foreground",
		     (long)st.st_nlink - 2);
}

/* ---------------------------------------------------------------------
 * 5. Open, in the launcher and relative to its working directory, all the
 * daemon will keep: a mistake is reported on the user's terminal, before
 * anything is forked. The umask is 0 here so created files get exactly
 * the modes below.
 */

struct files {
	int in, out, err; /* stdio targets */
};

/* If the launcher was started with 0, 1 or 2 closed, the files opened
 * below would land there and be clobbered by dup2: fill them first. */
static void fill_std_fds(void)
{
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			bail(CDAEMON_EX_CANTCREAT, "cannot open /dev/null: %s", strerror(errno));
}

/* Calls fn(n, arg) for each entry of directory path whose name is a
 * number, until fn returns non-zero: then 1. 0 when every entry was seen,
 * -1 if path cannot be read. Reads
 * with getdents64 into a fixed buffer: no allocation (opendir would). */
static int each_number(const char *path, int (*fn)(long n, void *arg), void *arg)
{
	char buf[4096];
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	long n;
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
			if (isdigit((unsigned char)d->name[0]) && !*end && v != dfd && fn(v, arg)) {
				close(dfd);
				return 1;
			}
		}
	close(dfd);
	return 0;
}

/* The directory path is in, looked at (zeroed if it cannot be: the open
 * that follows then says why). */
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
 * A file in a directory anyone may write to is trusted only if it is the
 * one we open. So there: refuse a directory without the sticky bit (anyone
 * could replace the file); never follow a symbolic link (anyone could
 * point it at a file of ours); refuse a file someone else owns, or one
 * with other names (hard links), unless this start created it.
 */
static int shared_dir(const struct stat *dir)
{
	return dir->st_mode & S_IWOTH;
}

static void check_dir(const char *var, const char *path, const struct stat *dir)
{
	if (shared_dir(dir) && !(dir->st_mode & S_ISVTX))
		bail(CDAEMON_EX_CANTCREAT,
		     "%s: refusing %s: its directory is writable by anyone and not sticky, so anyone "
		     "could replace the file",
		     var, quote(path));
}

static void check_file(const char *var, const char *path, int fd, const struct stat *dir,
		       int created)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		bail(CDAEMON_EX_CANTCREAT, "%s: cannot open %s: %s", var, quote(path), strerror(errno));
	if (!shared_dir(dir) || created || !S_ISREG(st.st_mode))
		return;
	if (st.st_uid != geteuid())
		bail(CDAEMON_EX_CANTCREAT,
		     "%s: refusing %s: owned by uid %lu, in a directory anyone can write to", var,
		     quote(path), (unsigned long)st.st_uid);
	if (st.st_nlink != 1)
		bail(CDAEMON_EX_CANTCREAT,
		     "%s: refusing %s: it has %lu hard links (other names for the same file), in a "
		     "directory anyone can write to",
		     var, quote(path), (unsigned long)st.st_nlink);
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
	} else {
		fd = open(path, flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, mode);
	}
	if (fd < 0 && errno == ENXIO)
		bail(CDAEMON_EX_CANTCREAT, "%s: cannot open %s: a FIFO with no reader", var,
		     quote(path));
	if (fd < 0 && errno == ELOOP && (flags & O_NOFOLLOW))
		bail(CDAEMON_EX_CANTCREAT,
		     "%s: refusing %s: it is a symbolic link, in a directory anyone can write to", var,
		     quote(path));
	if (fd < 0)
		bail(CDAEMON_EX_CANTCREAT, "%s: cannot open %s: %s", var, quote(path), strerror(errno));
	if (writes)
		check_file(var, path, fd, &dir, created);
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

/*
 * The pidfile handle, in the spirit of FreeBSD's pidfile(3):
 * pidfile_open takes the file and its lock, pidfile_write puts a pid in,
 * pidfile_remove takes the file away when a start fails, pidfile_settle
 * keeps only the locked descriptor for the process's life.
 *
 * The lock is a flock: it belongs to the open file description, which
 * fork shares, so it passes from the launcher to the daemon and lasts
 * until the daemon's last copy closes. O_CLOEXEC keeps it from programs
 * the daemon runs. The handle keeps its directory open, so removal works
 * after chdir, and removes only while the name still refers to the file
 * it locked (or created).
 *
 * A lock only means something on the one file every start finds at the
 * path. So: never follow a symbolic link; refuse a file with other names
 * (a hard link: the pid would be written into someone else's file); apply
 * the shared-directory rules; after locking, check the name still refers
 * to the locked file (a failed start may have removed it meanwhile) or
 * start over; and empty it, so it never names a stale pid while we start.
 */
static struct pidfh {
	int fd;                 /* open and locked, or -1 */
	int dirfd;              /* its directory (O_PATH), or -1 */
	char name[PATH_MAX];    /* its name in dirfd */
	dev_t dev;
	ino_t ino;
	int created, locked;
} pidfile = { .fd = -1, .dirfd = -1 };

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

/* "already running": say which process holds the lock. The file names a
 * pid, but whoever wrote it may be gone (a child that inherited the lock
 * holds it) or may have lied: name the holder the kernel shows. */
static _Noreturn void refuse_locked(const char *path, int fd)
{
	struct stat st;
	struct holder h = { 0 };
	char raw[32], comm[64], proc[64];
	long named = read_pid(fd);

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

static void pidfile_open(const char *path)
{
	struct pidfh *pf = &pidfile;
	struct stat st, dir, now;
	char dirname[PATH_MAX];
	const char *slash = strrchr(path, '/');
	const char *name = slash ? slash + 1 : path;
	size_t n = !slash ? 0 : slash == path ? 1 : (size_t)(slash - path);
	int fd;

	memcpy(dirname, n ? path : ".", n ? n : 1);
	dirname[n ? n : 1] = 0;
	snprintf(pf->name, sizeof pf->name, "%s", name);
	pf->dirfd = open(dirname, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (pf->dirfd < 0 || !*name)
		bail(CDAEMON_EX_CANTCREAT, "CDAEMON_PIDFILE: cannot open %s: %s", quote(path),
		     strerror(*name ? errno : EISDIR));
	if (fstat(pf->dirfd, &dir) < 0)
		memset(&dir, 0, sizeof dir);
	check_dir("CDAEMON_PIDFILE", path, &dir);
	for (;;) {
		const int flags = O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY;
		pf->created = pf->locked = 0;
		for (;;) {
			fd = openat(pf->dirfd, name, flags | O_CREAT | O_EXCL, 0644);
			pf->created = fd >= 0;
			if (fd >= 0 || errno != EEXIST)
				break;
			fd = openat(pf->dirfd, name, flags | O_NONBLOCK);
			if (fd >= 0 || errno != ENOENT)
				break; /* ENOENT: removed since; create it again */
		}
		if (fd < 0 && errno == ELOOP)
			bail(CDAEMON_EX_CANTCREAT, "CDAEMON_PIDFILE: refusing %s: it is a symbolic link",
			     quote(path));
		if (fd < 0)
			bail(CDAEMON_EX_CANTCREAT, "CDAEMON_PIDFILE: cannot open %s: %s", quote(path),
			     strerror(errno));
		if (fstat(fd, &st) < 0)
			bail(CDAEMON_EX_CANTCREAT, "CDAEMON_PIDFILE: cannot open %s: %s", quote(path),
			     strerror(errno));
		pf->fd = fd;
		pf->dev = st.st_dev;
		pf->ino = st.st_ino;
		if (!S_ISREG(st.st_mode))
			bail(CDAEMON_EX_CANTCREAT, "CDAEMON_PIDFILE: refusing %s: not a regular file",
			     quote(path));
		if (st.st_nlink != 1)
			bail(CDAEMON_EX_CANTCREAT,
			     "CDAEMON_PIDFILE: refusing %s: it has %lu hard links (other names for "
			     "the same file)",
			     quote(path), (unsigned long)st.st_nlink);
		check_file("CDAEMON_PIDFILE", path, fd, &dir, pf->created);
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			if (errno != EWOULDBLOCK)
				bail(CDAEMON_EX_CANTCREAT, "CDAEMON_PIDFILE: cannot lock %s: %s",
				     quote(path), strerror(errno));
			/* Locked by another start, even one that opened the file
			 * we just created: it is theirs, never remove it. */
			pf->created = 0;
			refuse_locked(path, fd);
		}
		pf->locked = 1;
		if (fstatat(pf->dirfd, name, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
		    now.st_dev == st.st_dev && now.st_ino == st.st_ino)
			break;
		/* Removed or replaced before we locked it: not ours to remove. */
		pf->fd = -1;
		close(fd);
	}
	if (ftruncate(fd, 0) < 0)
		bail(CDAEMON_EX_CANTCREAT, "CDAEMON_PIDFILE: cannot write %s: %s", quote(path),
		     strerror(errno));
}

/* The pid and a newline: written first, then the file cut to that length,
 * so it never reads empty in between. -1 with errno on failure. */
static int pidfile_write(pid_t pid)
{
	char text[16];
	int n = snprintf(text, sizeof text, "%d\n", (int)pid);
	if (pwrite(pidfile.fd, text, n, 0) != n)
		return -1;
	return ftruncate(pidfile.fd, n);
}

/* A failed start takes its pidfile away: only one this start created or
 * locked, and only while its name still refers to that file. */
static void pidfile_remove(void)
{
	struct pidfh *pf = &pidfile;
	struct stat st;
	if (pf->fd < 0 || !(pf->created || pf->locked))
		return;
	if (fstatat(pf->dirfd, pf->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == pf->dev &&
	    st.st_ino == pf->ino)
		unlinkat(pf->dirfd, pf->name, 0);
}

/* The start succeeded: keep only the locked descriptor. */
static void pidfile_settle(void)
{
	if (pidfile.dirfd >= 0)
		close(pidfile.dirfd);
	pidfile.dirfd = -1;
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

/* Info() reports the pidfile as an absolute path, and ReopenLogs()
 * reopens the log files by their absolute paths. */
static void record_paths(const struct config *c)
{
	struct cdaemon_state *s = &cdaemon_state;
	absolute(s->pidfile, sizeof s->pidfile, c->pidfile);
	absolute(s->stdout_path, sizeof s->stdout_path, c->out ? c->out : c->log);
	absolute(s->stderr_path, sizeof s->stderr_path, c->err ? c->err : c->log);
}

/* ---------------------------------------------------------------------
 * Status pipe messages (format in cdaemon.h). The launcher trusts no byte
 * of them: the daemon may run with fewer privileges than the launcher,
 * and whatever runs in it may write to the pipe.
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

struct msg {
	int type, status;
	size_t len;
	const char *text; /* len bytes, not NUL-terminated */
	long pid;         /* CDAEMON_MSG_PID's payload */
};

/*
 * Parse the message at the front of buf[0..have). Returns its whole
 * length; 0 if more bytes are needed; -1 with *why if it is malformed
 * (an unknown type, a length over CDAEMON_MSG_MAX, a status or payload a
 * message of its type does not have, a pid that is not one).
 */
static long parse_msg(const unsigned char *buf, size_t have, struct msg *m, const char **why)
{
	if (have < CDAEMON_MSG_HEADER)
		return 0;
	m->type = buf[0];
	m->status = buf[1];
	m->len = buf[2] | (size_t)buf[3] << 8;
	m->text = (const char *)buf + CDAEMON_MSG_HEADER;
	m->pid = 0;
	if (m->type != CDAEMON_MSG_PID && m->type != CDAEMON_MSG_STARTED &&
	    m->type != CDAEMON_MSG_READY && m->type != CDAEMON_MSG_FAILED)
		return *why = "a message of unknown type", -1;
	if (m->len > CDAEMON_MSG_MAX)
		return *why = "a message longer than the protocol allows", -1;
	if (m->type != CDAEMON_MSG_FAILED && m->status)
		return *why = "a status on a message that has none", -1;
	if ((m->type == CDAEMON_MSG_STARTED || m->type == CDAEMON_MSG_READY) && m->len)
		return *why = "text on a message that has none", -1;
	if (m->type == CDAEMON_MSG_PID && (m->len < 1 || m->len > 10))
		return *why = "a pid message without a pid", -1;
	if (have < CDAEMON_MSG_HEADER + m->len)
		return 0;
	for (size_t i = 0; m->type == CDAEMON_MSG_PID && i < m->len; i++) {
		if (!isdigit((unsigned char)m->text[i]))
			return *why = "a pid message without a pid", -1;
		m->pid = m->pid * 10 + (m->text[i] - '0');
	}
	if (m->type == CDAEMON_MSG_PID && (m->pid < 2 || m->pid > INT_MAX))
		return *why = "a pid message without a pid", -1;
	return CDAEMON_MSG_HEADER + m->len;
}

/* ---------------------------------------------------------------------
 * 6. The launcher: wait on the status pipe until the daemon reaches the
 * wait point, then exit 0. It never returns into the program: the Go
 * runtime never starts here.
 *
 * The launcher is a child subreaper, so when the middle process exits the
 * daemon is re-parented to it, and waitpid sees how the daemon ended if it
 * dies before the wait point. Once the launcher exits, the daemon passes
 * to init (or the nearest subreaper above). While it waits, SIGINT,
 * SIGTERM, SIGHUP and SIGQUIT stop the start: they arrive through a
 * signalfd (blocked before the fork, so none is lost in between).
 */

struct launcher {
	const struct config *c;
	pid_t middle, daemon; /* daemon: -1 until the middle reports it */
	int reached;          /* the wait point the daemon reported */
};

static const int stop_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

/* Before the fork: block the stop signals the launcher will read (one
 * inherited as ignored, as nohup and background jobs have it, stays
 * ignored), and let SIGCHLD be seen: an inherited SIG_IGN makes the
 * kernel reap children itself, and every early death would read as
 * "exited 0". The children undo both: the daemon resets all signals. */
static void prepare_signals(sigset_t *set)
{
	struct sigaction sa, dfl = { .sa_handler = SIG_DFL };
	sigemptyset(set);
	for (size_t i = 0; i < sizeof stop_signals / sizeof stop_signals[0]; i++)
		if (sigaction(stop_signals[i], NULL, &sa) == 0 && sa.sa_handler != SIG_IGN)
			sigaddset(set, stop_signals[i]);
	sigprocmask(SIG_BLOCK, set, NULL);
	sigaction(SIGCHLD, &dfl, NULL);
}

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
 * that is not gets SIGTERM at once; then GRACE_MS more, then SIGKILL. Its
 * process group (the session the middle made, whose id is the middle's
 * pid) is killed last, for anything the daemon started; the middle is
 * reaped only after that, so the group id cannot have been reused.
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
	pidfile_remove(); /* the launcher still shares the lock */
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
	const char *t = l->c->timeout_text;
	if (l->daemon <= 0)
		say("the intermediate process (pid %d) did not report the daemon's pid within "
		    "CDAEMON_TIMEOUT (%s); stopping it",
		    (int)l->middle, t);
	else if (l->c->wait == CDAEMON_WAIT_READY)
		say("the daemon (pid %d) was not ready within CDAEMON_TIMEOUT (%s): the program never "
		    "called cdaemon.Ready(); stopping it",
		    (int)l->daemon, t);
	else
		say("the daemon (pid %d) was not started within CDAEMON_TIMEOUT (%s): its Go runtime "
		    "and package init did not finish; stopping it",
		    (int)l->daemon, t);
	launcher_fail(l, CDAEMON_EX_FAIL, 0);
}

static _Noreturn void launcher_interrupted(struct launcher *l, int sig)
{
	static const char *names[] = { [SIGINT] = "SIGINT", [SIGTERM] = "SIGTERM",
				       [SIGHUP] = "SIGHUP", [SIGQUIT] = "SIGQUIT" };
	say("interrupted by %s while waiting for the daemon%s to be %s; stopping it",
	    names[sig], l->daemon > 0 ? "" : " process", wait_point(l->c->wait));
	launcher_fail(l, 128 + sig, 0);
}

static _Noreturn void launcher_protocol_error(struct launcher *l, const char *why)
{
	say("the daemon (pid %d) broke the status protocol: %s; stopping it",
	    (int)(l->daemon > 0 ? l->daemon : l->middle), why);
	launcher_fail(l, CDAEMON_EX_SOFTWARE, 0);
}

static _Noreturn void launcher_done(struct launcher *l)
{
	/* The middle exits right after it reports the pid: reap it, so
	 * starting a daemon leaves no zombie behind. */
	while (waitpid(l->middle, NULL, 0) < 0 && errno == EINTR)
		;
	_exit(CDAEMON_EX_OK);
}

/* Act on one well-formed message; return to keep waiting. The pid comes
 * once, from the middle. The daemon may report before it arrives (the
 * middle can be slow to run): a failure ends the start at once, a wait
 * point reached is acted on when the pid is known. */
static void launcher_msg(struct launcher *l, const struct msg *m)
{
	switch (m->type) {
	case CDAEMON_MSG_PID:
		if (l->daemon > 0)
			launcher_protocol_error(l, "a second pid message");
		l->daemon = (pid_t)m->pid;
		break;
	case CDAEMON_MSG_STARTED:
		l->reached = l->reached > CDAEMON_WAIT_START ? l->reached : CDAEMON_WAIT_START;
		break;
	case CDAEMON_MSG_READY:
		l->reached = CDAEMON_WAIT_READY;
		break;
	case CDAEMON_MSG_FAILED:
		print_line(m->text, m->len);
		launcher_fail(l, m->status ? m->status : CDAEMON_EX_FAIL, 1);
	}
	if (l->daemon > 0 && l->reached >= l->c->wait)
		launcher_done(l);
}

static _Noreturn void run_launcher(const struct config *c, const sigset_t *sigs, pid_t middle,
				   int rfd)
{
	struct launcher l = { c, middle, -1, CDAEMON_WAIT_NONE };
	unsigned char buf[2 * (CDAEMON_MSG_HEADER + CDAEMON_MSG_MAX)];
	size_t have = 0;
	long long deadline = now_ms() + c->timeout_ms;
	int sfd = signalfd(-1, sigs, SFD_CLOEXEC);

	for (;;) {
		long long left = deadline - now_ms();
		struct pollfd p[2] = { { .fd = rfd, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
		struct signalfd_siginfo si;
		if (left <= 0)
			launcher_timeout(&l);
		if (poll(p, sfd >= 0 ? 2 : 1, left > 1000000 ? 1000000 : (int)left) <= 0)
			continue;
		if ((p[1].revents & POLLIN) && read(sfd, &si, sizeof si) == sizeof si)
			launcher_interrupted(&l, (int)si.ssi_signo);
		if (!p[0].revents)
			continue;
		ssize_t n = read(rfd, buf + have, sizeof buf - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			launcher_eof(&l);
		have += n;
		/* Whole messages only; a partial one waits for the rest. */
		for (;;) {
			struct msg m;
			const char *why;
			long len = parse_msg(buf, have, &m, &why);
			if (len < 0)
				launcher_protocol_error(&l, why);
			if (len == 0)
				break;
			launcher_msg(&l, &m);
			have -= len;
			memmove(buf, buf + len, have);
		}
	}
}

/* ---------------------------------------------------------------------
 * 7. The middle process: leave the terminal's session, then fork again so
 * the daemon is not a session leader and can never acquire a controlling
 * terminal by opening one. Its failures reach the launcher through bail.
 */

static void run_middle(const sigset_t *stop)
{
	char pid_text[16];
	if (setsid() < 0)
		bail(CDAEMON_EX_OSERR, "setsid: %s", strerror(errno));
	/* When the middle (a session leader) exits, the daemon's process group
	 * is orphaned; POSIX then sends SIGHUP to it if any member is stopped.
	 * Ignore SIGHUP until the daemon has reset its signals (step 8), and
	 * only then unblock the launcher's stop signals: a blocked SIGHUP is
	 * kept pending, not ignored, and would kill the daemon at its reset. */
	signal(SIGHUP, SIG_IGN);
	sigprocmask(SIG_UNBLOCK, stop, NULL);
	pid_t pid = fork();
	if (pid < 0)
		bail(CDAEMON_EX_OSERR, "fork: %s", strerror(errno));
	if (pid == 0)
		return;
	if (pidfile.fd >= 0 && pidfile_write(pid) < 0) {
		int e = errno;
		kill(pid, SIGKILL);
		bail(CDAEMON_EX_CANTCREAT, "CDAEMON_PIDFILE: cannot write the pid: %s", strerror(e));
	}
	snprintf(pid_text, sizeof pid_text, "%d", (int)pid);
	if (send_msg(status_fd, CDAEMON_MSG_PID, 0, pid_text) < 0) {
		/* The launcher would never learn the daemon's pid: in wait=none
		 * it would take our exit for success. Fail the start instead. */
		int e = errno;
		kill(pid, SIGKILL);
		bail(CDAEMON_EX_OSERR, "status pipe: cannot report the daemon's pid: %s", strerror(e));
	}
	_exit(0);
}

/* ---------------------------------------------------------------------
 * 8. The daemon: from here on this process is the program. Detach stdio,
 * close what was inherited, give the Go runtime clean signal state and an
 * environment without our variables, then return from the constructor.
 */

static void redirect_stdio(const struct files *f)
{
	const int src[3] = { f->in, f->out, f->err };
	for (int fd = 0; fd <= 2; fd++) {
		/* dup2 onto itself is a no-op that keeps O_CLOEXEC: clear it. */
		int r = src[fd] == fd ? fcntl(fd, F_SETFD, 0) : dup2(src[fd], fd);
		if (r < 0)
			bail(CDAEMON_EX_OSERR, "dup2: %s", strerror(errno));
	}
}

struct fd_range {
	unsigned lo, hi;
};

static int close_in_range(long fd, void *arg)
{
	const struct fd_range *r = arg;
	if (fd >= (long)r->lo && fd <= (long)r->hi)
		close((int)fd);
	return 0;
}

/* close_range(2), or on kernels before 5.9 a walk of /proc/self/fd: a
 * loop to the descriptor limit could take 2^30 steps. */
static void close_range_(unsigned lo, unsigned hi)
{
	struct fd_range r = { lo, hi };
#ifdef SYS_close_range
	if (syscall(SYS_close_range, lo, hi, 0) == 0)
		return;
#endif
	if (each_number("/proc/self/fd", close_in_range, &r) < 0)
		bail(CDAEMON_EX_OSERR,
		     "cannot close inherited descriptors: no close_range and /proc/self/fd "
		     "cannot be read (%s)",
		     strerror(errno));
}

/* Close every fd above 2 except the kept ones, the status pipe and the
 * pidfile (whose open description holds the lock). */
static void close_inherited_fds(const struct config *c, int wfd)
{
	int keep[MAX_KEEP_FDS + 2], n = 0;
	for (int i = 0; i < c->nkeep; i++)
		keep[n++] = c->keep[i];
	if (wfd >= 0)
		keep[n++] = wfd;
	if (pidfile.fd >= 0)
		keep[n++] = pidfile.fd;
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

static void become_daemon(const struct config *c, const struct files *f)
{
	redirect_stdio(f);
	if (c->wait == CDAEMON_WAIT_NONE) {
		close(status_fd); /* the launcher waits only for the middle's report */
		status_fd = -1;
	}
	close_inherited_fds(c, status_fd);
	reset_signals();
	strip_environment();
	pidfile.dirfd = -1; /* closed with the inherited descriptors */
	cdaemon_state.daemonized = 1;
	cdaemon_state.status_fd = status_fd;
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

/* Staying in the foreground: a pidfile still means one instance. It holds
 * this process's pid, locked for its life, under the same rules. */
static void stay_in_foreground(const struct config *c)
{
	if (!c->pidfile)
		return;
	mode_t old = umask(0);
	pidfile_open(c->pidfile);
	if (pidfile_write(getpid()) < 0)
		bail(CDAEMON_EX_CANTCREAT, "CDAEMON_PIDFILE: cannot write %s: %s", quote(c->pidfile),
		     strerror(errno));
	pidfile_settle();
	umask(old);
}

/* Steps 4 and 5: everything the daemon keeps is opened, and the launcher
 * is in CDAEMON_CHDIR with CDAEMON_UMASK set. */
static void open_everything(const struct config *c, struct files *f)
{
	fill_std_fds();
	umask(0);
	open_stdio(c, f);
	int dir = open_dir(c);
	if (c->pidfile)
		pidfile_open(c->pidfile);
	if (fchdir(dir) < 0)
		bail(CDAEMON_EX_CANTCREAT, "CDAEMON_CHDIR: cannot change to %s: %s", quote(c->dir),
		     strerror(errno));
	close(dir);
	umask(c->umask);
}

CDAEMON_CONSTRUCTOR static void cdaemon_constructor(int argc, char **argv)
{
	struct cdaemon_state *s = &cdaemon_state;
	struct config c;
	struct files f;
	sigset_t sigs;
	int pipefd[2];

	clock_gettime(CLOCK_MONOTONIC, &s->entry);
	s->ran = 1;
	s->launcher_pid = getpid();
	const char *reason = library_host(); /* 0 */
	if (reason) {
		snprintf(s->reason, sizeof s->reason, "%s", reason);
		return;
	}
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

	refuse_secure_environment(); /* 1 */
	read_config(&c);             /* 2 */
	s->mode = c.mode;
	s->wait = c.wait;
	record_paths(&c);
	if ((reason = skip_reason(&c))) { /* 3 */
		snprintf(s->reason, sizeof s->reason, "%s", reason);
		s->stdout_path[0] = s->stderr_path[0] = 0; /* stdio is left alone */
		stay_in_foreground(&c);
		return;
	}
	check_single_thread(); /* 4 */
	open_everything(&c, &f); /* 5 */

	if (pipe2(pipefd, O_CLOEXEC) < 0) /* 6 */
		bail(CDAEMON_EX_OSERR, "pipe: %s", strerror(errno));
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	prepare_signals(&sigs);
	fflush(NULL); /* buffered output must not be written twice */
	pid_t middle = fork();
	if (middle < 0)
		bail(CDAEMON_EX_OSERR, "fork: %s", strerror(errno));
	if (middle > 0) {
		close(pipefd[1]);
		run_launcher(&c, &sigs, middle, pipefd[0]);
	}

	forked = 1;
	status_fd = pipefd[1];
	close(pipefd[0]);
	run_middle(&sigs); /* 7: returns in the daemon only */
	become_daemon(&c, &f); /* 8 */
}
