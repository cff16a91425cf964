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
 *             4a. look the user up, check privileges, (unknown: 67, not
 *                 set limits, nice and oom score       allowed: 77)
 *              5. open stdio targets and the pidfile  (exit 73, locked: 75)
 *             5a. bind and listen at fds 3, 4, ...    (in use: 75, else 73)
 *              6. fork; wait on the status pipe       (exit with the outcome)
 *   middle     7. setsid, fork again, write the pidfile, report the pid
 *   daemon     8. stdio, fds, signals, environment;
 *             8a. chroot, groups, gid, uid, capabilities; return to start Go
 *
 * A foreground process does 4a, 5a (and its pidfile) and 8a on itself.
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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/auxv.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cdaemon.h"

#ifndef W_EXITCODE /* glibc has it; musl does not */
#define W_EXITCODE(ret, sig) ((ret) << 8 | (sig))
#endif

extern char **environ;

struct cdaemon_state cdaemon_state = { .status_fd = -1 };
struct cdaemon_listeners cdaemon_listeners;

/* How long a stopped daemon gets between SIGTERM and SIGKILL. */
#define GRACE_MS 2000
#define MAX_KEEP_FDS 64
#define MAX_LISTEN CDAEMON_MAX_LISTEN

/* One CDAEMON_LISTEN address, parsed. */
struct listen_addr {
	char text[128];                /* as given, for messages */
	struct sockaddr_storage addr;
	socklen_t len;
};

struct config {
	int mode, wait;
	long long timeout_ms;
	const char *timeout_text;
	const char *pidfile, *log, *out, *err, *in, *dir;
	mode_t umask;
	int keep[MAX_KEEP_FDS];
	int nkeep;
	const char *keep_text;
	/* Privileges and limits; -1 (or NULL, or UNSET) where not set. */
	const char *user, *group, *root;
	long long caps;              /* bit n: capability n is kept */
	const char *caps_text;
	int no_new_privs, core;
	long long nofile, nice, oom;
	struct listen_addr listen[MAX_LISTEN];
	int nlisten;
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
static void remove_created_sockets(void);
static void remove_created_logs(void);

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
	if (!forked) {
		pidfile_remove();
		remove_created_sockets();
		remove_created_logs();
	}
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
static int parse_chroot(const char *v, struct config *c) { return parse_path(v, &c->root); }

#define UNSET LLONG_MIN

/* on/off, spelled as CDAEMON accepts them: 1, 0 or -1 for neither. */
static int parse_bool(const char *v)
{
	static const char *on[] = { "on", "1", "true", "yes" };
	static const char *off[] = { "off", "0", "false", "no" };
	for (int i = 0; i < 4; i++) {
		if (!strcasecmp(v, on[i]))
			return 1;
		if (!strcasecmp(v, off[i]))
			return 0;
	}
	return -1;
}

static int parse_no_new_privs(const char *v, struct config *c)
{
	return (c->no_new_privs = parse_bool(v)) < 0 ? -1 : 0;
}

static int parse_core(const char *v, struct config *c)
{
	return (c->core = parse_bool(v)) < 0 ? -1 : 0;
}

/* A decimal integer from lo to hi: digits, a leading '-' only if lo < 0. */
static int parse_int(const char *v, long long lo, long long hi, long long *dst)
{
	const char *p = v;
	long long n = 0;
	int neg = *p == '-' && lo < 0;
	p += neg;
	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++)
		if ((n = n * 10 + (*p - '0')) > 1LL << 40) /* beyond every range here */
			return -1;
	if (*p)
		return -1;
	n = neg ? -n : n;
	if (n < lo || n > hi)
		return -1;
	*dst = n;
	return 0;
}

/* The kernel refuses more than fs.nr_open (at most 2^30 - 64, as ints
 * and bitmaps allow); the Go runtime and stdio need a few. */
#define NOFILE_MIN 64
#define NOFILE_MAX 1073741760

static int parse_nofile(const char *v, struct config *c)
{
	return parse_int(v, NOFILE_MIN, NOFILE_MAX, &c->nofile);
}

static int parse_nice(const char *v, struct config *c) { return parse_int(v, -20, 19, &c->nice); }
static int parse_oom(const char *v, struct config *c) { return parse_int(v, -1000, 1000, &c->oom); }

/*
 * A user or group: a number below 2^32 - 1 ((uid_t)-1 means "unchanged"
 * to the kernel), or a name as useradd and the user databases allow:
 * letters, digits, '.', '_', '-', '@', not starting with '-', perhaps
 * ending in '$' (machine accounts).
 */
static int is_numeric_id(const char *v)
{
	long long n;
	return parse_int(v, 0, 4294967294LL, &n) == 0;
}

static int parse_id(const char *v, const char **dst)
{
	size_t n = strlen(v);
	if (is_numeric_id(v)) {
		*dst = v;
		return 0;
	}
	if (!n || n > 255 || v[0] == '-' || strspn(v, "0123456789") == n)
		return -1; /* all digits: a number out of range, not a name */
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = v[i];
		if (!(isalnum(ch) || ch == '.' || ch == '_' || ch == '-' || ch == '@' ||
		      (ch == '$' && i == n - 1)))
			return -1;
	}
	*dst = v;
	return 0;
}

static int parse_user(const char *v, struct config *c) { return parse_id(v, &c->user); }
static int parse_group(const char *v, struct config *c) { return parse_id(v, &c->group); }

/* Capability names, indexed by number, as <linux/capability.h> has them
 * (not included: musl builds have no kernel headers). */
static const char *const cap_names[] = {
	"chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid",
	"setuid", "setpcap", "linux_immutable", "net_bind_service", "net_broadcast",
	"net_admin", "net_raw", "ipc_lock", "ipc_owner", "sys_module", "sys_rawio",
	"sys_chroot", "sys_ptrace", "sys_pacct", "sys_admin", "sys_boot", "sys_nice",
	"sys_resource", "sys_time", "sys_tty_config", "mknod", "lease", "audit_write",
	"audit_control", "setfcap", "mac_override", "mac_admin", "syslog", "wake_alarm",
	"block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
};
#define NCAPS (int)(sizeof cap_names / sizeof cap_names[0])
enum {
	CAP_SETGID_ = 6, CAP_SETUID_ = 7, CAP_SETPCAP_ = 8, CAP_SYS_CHROOT_ = 18,
};

/* "net_bind_service,cap_sys_nice" (any case, cap_ optional), or "none". */
static int parse_caps(const char *v, struct config *c)
{
	const char *p = v;
	c->caps = 0;
	c->caps_text = v;
	if (!strcasecmp(v, "none"))
		return 0;
	for (;;) {
		size_t n = strcspn(p, ",");
		int cap = -1;
		if (n > 4 && !strncasecmp(p, "cap_", 4))
			p += 4, n -= 4;
		for (int i = 0; i < NCAPS; i++)
			if (strlen(cap_names[i]) == n && !strncasecmp(p, cap_names[i], n))
				cap = i;
		if (cap < 0 || (c->caps & 1LL << cap))
			return -1;
		c->caps |= 1LL << cap;
		p += n;
		if (!*p)
			return 0;
		if (!*++p)
			return -1; /* a trailing comma */
	}
}

/* One address: tcp:HOST:PORT with a numeric IPv4 HOST, tcp:[IPv6]:PORT,
 * or unix:PATH (relative to the starting directory; @NAME: abstract). */
static int parse_listen_addr(const char *s, size_t n, struct listen_addr *l)
{
	char host[64];
	const char *port, *end = s + n;
	long long num;
	memset(l, 0, sizeof *l);
	if (n >= sizeof l->text)
		return -1;
	memcpy(l->text, s, n);
	if (n > 5 && !strncmp(s, "unix:", 5)) {
		struct sockaddr_un *un = (struct sockaddr_un *)&l->addr;
		size_t len = n - 5;
		if (len >= sizeof un->sun_path || memchr(s + 5, 0, len))
			return -1;
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, s + 5, len);
		if (un->sun_path[0] == '@')
			un->sun_path[0] = 0; /* abstract: no file */
		l->len = offsetof(struct sockaddr_un, sun_path) + len + (s[5] != '@');
		return 0;
	}
	if (n < 4 || strncmp(s, "tcp:", 4))
		return -1;
	s += 4;
	if (*s == '[') {
		const char *close = memchr(s, ']', end - s);
		if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof host)
			return -1;
		memcpy(host, s + 1, close - s - 1);
		host[close - s - 1] = 0;
		port = close + 2;
	} else {
		const char *colon = memchr(s, ':', end - s);
		if (!colon || (size_t)(colon - s) >= sizeof host)
			return -1;
		memcpy(host, s, colon - s);
		host[colon - s] = 0;
		port = colon + 1;
	}
	char digits[8];
	if (end - port < 1 || end - port > 5)
		return -1;
	memcpy(digits, port, end - port);
	digits[end - port] = 0;
	if (parse_int(digits, 0, 65535, &num) < 0)
		return -1;
	if (s[0] == '[') {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&l->addr;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)num);
		l->len = sizeof *in6;
		return inet_pton(AF_INET6, host, &in6->sin6_addr) == 1 ? 0 : -1;
	}
	struct sockaddr_in *in = (struct sockaddr_in *)&l->addr;
	in->sin_family = AF_INET;
	in->sin_port = htons((uint16_t)num);
	l->len = sizeof *in;
	return inet_pton(AF_INET, host, &in->sin_addr) == 1 ? 0 : -1;
}

static int parse_listen(const char *v, struct config *c)
{
	const char *p = v;
	c->nlisten = 0;
	for (;;) {
		size_t n = strcspn(p, ",");
		if (c->nlisten == MAX_LISTEN || parse_listen_addr(p, n, &c->listen[c->nlisten]) < 0)
			return -1;
		c->nlisten++;
		p += n;
		if (!*p)
			return 0;
		p++;
	}
}


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
	{ "CDAEMON_USER", parse_user,
	  "want a user name (letters, digits, '.', '_', '-', '@') or a numeric uid below 4294967295" },
	{ "CDAEMON_GROUP", parse_group,
	  "want a group name (letters, digits, '.', '_', '-', '@') or a numeric gid below 4294967295" },
	{ "CDAEMON_CAPS", parse_caps,
	  "want none, or a comma-separated list of distinct capability names such as "
	  "net_bind_service,cap_sys_nice (see capabilities(7))" },
	{ "CDAEMON_CHROOT", parse_chroot, PATH_WANT },
	{ "CDAEMON_NO_NEW_PRIVS", parse_no_new_privs, "want on or off (or 1/0, true/false, yes/no)" },
	{ "CDAEMON_NOFILE", parse_nofile, "want a number of descriptors from 64 to 1073741760" },
	{ "CDAEMON_CORE", parse_core, "want on (unlimited) or off (none) (or 1/0, true/false, yes/no)" },
	{ "CDAEMON_NICE", parse_nice, "want a nice value from -20 to 19" },
	{ "CDAEMON_OOM_SCORE_ADJ", parse_oom, "want a number from -1000 to 1000" },
	{ "CDAEMON_LISTEN", parse_listen,
	  "want a comma-separated list of at most 32 addresses: tcp:HOST:PORT with a numeric "
	  "IPv4 HOST, tcp:[IPv6]:PORT, unix:PATH (at most 107 bytes) or unix:@NAME (abstract)" },
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
		.caps = -1,
		.no_new_privs = -1,
		.core = -1,
		.nofile = UNSET,
		.nice = UNSET,
		.oom = UNSET,
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

/* CDAEMON_LISTEN's sockets take descriptors 3, 4, ...: a kept descriptor
 * may not be one of them. */
static void check_listen_fds(const struct config *c)
{
	for (int i = 0; i < c->nkeep; i++)
		if (c->keep[i] < 3 + c->nlisten)
			bail(CDAEMON_EX_USAGE,
			     "CDAEMON_KEEP_FDS=%s is not valid: fd %d is taken by CDAEMON_LISTEN, whose "
			     "sockets are descriptors 3 to %d; keep descriptors above %d",
			     quote(c->keep_text), c->keep[i], 2 + c->nlisten, 2 + c->nlisten);
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
	if (!v || !isdigit((unsigned char)*v)) /* strtol takes " 12" and "+12" */
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
	 * and then the script is the first argument. Read only then: this is
	 * on every start's path. */
	const char *script = "";
	if (!strncmp(comm, "python", 6)) {
		snprintf(path, sizeof path, "/proc/%d/cmdline", (int)ppid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, cmd, sizeof cmd - 1);
		if (fd >= 0)
			close(fd);
		cmd[n > 0 ? n : 0] = 0;
		const char *arg1 = n > 0 && strlen(cmd) + 1 < (size_t)n ? cmd + strlen(cmd) + 1 : "";
		script = strrchr(arg1, '/') ? strrchr(arg1, '/') + 1 : arg1;
	}
	for (size_t i = 0; i < sizeof supervisors / sizeof supervisors[0]; i++) {
		const char *s = supervisors[i];
		if (!strcmp(comm, s) || !strcmp(script, s)) {
			snprintf(why, sizeof why, "started by %s (pid %d), a supervisor", s, (int)ppid);
			return why;
		}
	}
	return NULL;
}

/* Why not to daemonize, or NULL to go ahead. *declined is set when the
 * program's arguments say this run is not the daemon at all (a CLI role,
 * help, the version): then it must not take the daemon's pidfile,
 * listeners or privileges either. */
static const char *skip_reason(const struct config *c, int *declined)
{
	const char *why;
	*declined = 0;
	if (c->mode == CDAEMON_MODE_OFF)
		return "CDAEMON=off";
	if (c->mode == CDAEMON_MODE_ON)
		return NULL;
	if (is_test_binary())
		return "a go test binary";
	if ((why = program_says_no()))
		return *declined = 1, why;
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
 * 4a. Who the daemon will be and what it may do, settled by the launcher
 * as the starting user, so that an unknown user (67) or a setting this
 * user may not make (77) is reported on the terminal before anything is
 * forked. CDAEMON_USER and CDAEMON_GROUP are looked up now (the daemon,
 * perhaps chrooted, could not read the user database); step 8a applies
 * the result. The settings a child inherits (limits, nice value, oom
 * score) are made here, on the launcher itself, so the kernel's own
 * answer decides: fork copies them to the daemon, and every thread the Go
 * runtime starts there inherits them from its main thread.
 */

#define MAX_GROUPS 65536 /* the kernel's NGROUPS_MAX; musl's header says 32 */

/* What step 8a applies. Static: the group list can be long. */
static struct drop {
	int uid_set, gid_set;
	uid_t uid;
	gid_t gid;
	int ngroups;
	gid_t groups[MAX_GROUPS];
} drop;

/*
 * Names go through NSS, which loads shared libraries of the running
 * glibc: only a dynamically linked glibc program can use it safely.
 * These are weak so that a static link leaves them out (NULL) instead of
 * linking NSS code that would load another glibc's modules at run time
 * (and warn at link time); a dynamic link finds them in libc.so. musl has
 * no NSS (it reads /etc/passwd only): numbers only there too.
 */
#ifdef __GLIBC__
extern int getpwnam_r(const char *, struct passwd *, char *, size_t, struct passwd **)
	__attribute__((weak));
extern int getpwuid_r(uid_t, struct passwd *, char *, size_t, struct passwd **)
	__attribute__((weak));
extern int getgrnam_r(const char *, struct group *, char *, size_t, struct group **)
	__attribute__((weak));
extern int getgrgid_r(gid_t, struct group *, char *, size_t, struct group **)
	__attribute__((weak));
extern int getgrouplist(const char *, gid_t, gid_t *, int *) __attribute__((weak));
#define HAVE_NSS (getpwnam_r && getpwuid_r && getgrnam_r && getgrgid_r && getgrouplist)
#else
#define HAVE_NSS 0
#endif

static char nss_buf[1 << 16]; /* scratch for getpw*_r and getgr*_r */

static _Noreturn void cannot_look_up(const char *var, const char *value, int err)
{
	if (err == ERANGE)
		bail(CDAEMON_EX_NOUSER, "%s=%s: cannot look it up: its entry is larger than %zu bytes",
		     var, quote(value), sizeof nss_buf);
	bail(CDAEMON_EX_NOUSER, "%s=%s: cannot look it up: %s", var, quote(value), strerror(err));
}

static void need_nss(const char *var, const char *value)
{
	if (!HAVE_NSS)
		bail(CDAEMON_EX_USAGE,
		     "%s=%s is a name, and this program cannot read the user database: it is linked "
		     "statically or with musl (names need NSS, a dynamically linked glibc); give the "
		     "number instead",
		     var, quote(value));
}

/* CDAEMON_USER: its uid, name and primary group. */
static void resolve_user(const char *user)
{
	struct passwd pw, *found = NULL;
	long long n;
	int err = 0;
	drop.uid_set = 1;
	if (parse_int(user, 0, 4294967294LL, &n) == 0) {
		drop.uid = (uid_t)n;
		if (HAVE_NSS)
			err = getpwuid_r(drop.uid, &pw, nss_buf, sizeof nss_buf, &found);
	} else {
		need_nss("CDAEMON_USER", user);
		err = getpwnam_r(user, &pw, nss_buf, sizeof nss_buf, &found);
		if (!err && !found)
			bail(CDAEMON_EX_NOUSER, "CDAEMON_USER=%s: no such user", quote(user));
	}
	if (err)
		cannot_look_up("CDAEMON_USER", user, err);
	if (!found)
		return; /* a uid the database does not know: no name, no groups */
	drop.uid = pw.pw_uid;
	drop.gid = pw.pw_gid;
	drop.gid_set = 1;
	snprintf(cdaemon_state.user, sizeof cdaemon_state.user, "%s", pw.pw_name);
}

/* CDAEMON_GROUP, or the user's primary group: its gid and name. */
static void resolve_group(const char *user, const char *group)
{
	struct group gr, *found = NULL;
	long long n;
	int err = 0;
	if (group && parse_int(group, 0, 4294967294LL, &n) == 0) {
		drop.gid = (gid_t)n;
	} else if (group) {
		need_nss("CDAEMON_GROUP", group);
		err = getgrnam_r(group, &gr, nss_buf, sizeof nss_buf, &found);
		if (!err && !found)
			bail(CDAEMON_EX_NOUSER, "CDAEMON_GROUP=%s: no such group", quote(group));
		if (err)
			cannot_look_up("CDAEMON_GROUP", group, err);
		drop.gid = gr.gr_gid;
	} else if (!drop.gid_set) {
		bail(CDAEMON_EX_NOUSER,
		     "CDAEMON_USER=%s: uid %s is not in the user database%s, so it has no primary "
		     "group: set CDAEMON_GROUP too",
		     quote(user), user, HAVE_NSS ? "" : " (which this static or musl build cannot read)");
	}
	drop.gid_set = 1;
	if (!found && HAVE_NSS && getgrgid_r(drop.gid, &gr, nss_buf, sizeof nss_buf, &found) != 0)
		found = NULL; /* a name is only for Info() */
	if (found)
		snprintf(cdaemon_state.group, sizeof cdaemon_state.group, "%s", gr.gr_name);
}

/* The supplementary groups, as initgroups(3) would set them: the user's
 * groups in the database plus the gid; none for a user it does not know
 * or with CDAEMON_GROUP alone. */
static void resolve_groups(const char *user)
{
	drop.ngroups = 0;
	if (!HAVE_NSS || !cdaemon_state.user[0])
		return;
	drop.ngroups = MAX_GROUPS;
	if (getgrouplist(cdaemon_state.user, drop.gid, drop.groups, &drop.ngroups) < 0)
		bail(CDAEMON_EX_NOUSER, "CDAEMON_USER=%s: the user is in more than %d groups",
		     quote(user), MAX_GROUPS);
}

static void resolve_ids(const struct config *c)
{
	if (c->user)
		resolve_user(c->user);
	if (c->user || c->group)
		resolve_group(c->user, c->group);
	if (c->user)
		resolve_groups(c->user);
}

/* Capabilities through the raw system calls: no libcap. */
struct cap_header {
	uint32_t version;
	int pid;
};
struct cap_data {
	uint32_t effective, permitted, inheritable;
};
#define CAP_VERSION_3 0x20080522

static int cap_get(unsigned long long *eff, unsigned long long *prm)
{
	struct cap_header h = { CAP_VERSION_3, 0 };
	struct cap_data d[2];
	if (syscall(SYS_capget, &h, d) < 0)
		return -1;
	*eff = d[0].effective | (unsigned long long)d[1].effective << 32;
	*prm = d[0].permitted | (unsigned long long)d[1].permitted << 32;
	return 0;
}

/* The bounding set; the kernel says EINVAL past its last capability. */
static unsigned long long cap_bounding(void)
{
	unsigned long long set = 0;
	for (int cap = 0; cap < 64; cap++) {
		int r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
		if (r < 0)
			break;
		if (r)
			set |= 1ULL << cap;
	}
	return set;
}

/* Does the drop (7a) change capabilities at all? */
static int drops_caps(const struct config *c)
{
	return drop.uid_set || c->caps >= 0;
}

static _Noreturn void not_permitted(const char *var, const char *value, const char *what)
{
	bail(CDAEMON_EX_NOPERM, "%s=%s: %s, which this process (uid %u) does not have", var,
	     quote(value), what, (unsigned)geteuid());
}

/* 77 for a setting the starting user may not make, checked against the
 * capabilities the process has (root in a container may lack some). */
static void check_privileges(const struct config *c)
{
	unsigned long long eff = 0, prm = 0, bnd, keep = c->caps < 0 ? 0 : c->caps;
	if (!c->user && !c->group && !c->root && c->caps < 0)
		return;
	if (cap_get(&eff, &prm) < 0)
		bail(CDAEMON_EX_OSERR, "capget: %s", strerror(errno));
	bnd = cap_bounding();
	if (c->user && !(eff & 1ULL << CAP_SETUID_))
		not_permitted("CDAEMON_USER", c->user, "changing the user needs root (CAP_SETUID)");
	if (c->user && !(eff & 1ULL << CAP_SETGID_))
		not_permitted("CDAEMON_USER", c->user,
			      "setting the user's groups needs root (CAP_SETGID)");
	if (c->group && !(eff & 1ULL << CAP_SETGID_))
		not_permitted("CDAEMON_GROUP", c->group, "changing the group needs root (CAP_SETGID)");
	if (c->root && !(eff & 1ULL << CAP_SYS_CHROOT_))
		not_permitted("CDAEMON_CHROOT", c->root, "chroot needs root (CAP_SYS_CHROOT)");
	if (!drops_caps(c))
		return;
	for (int cap = 0; cap < NCAPS; cap++) {
		char what[96];
		if (!(keep & 1ULL << cap) || (prm & bnd & 1ULL << cap))
			continue;
		snprintf(what, sizeof what, "keeping cap_%s needs it in the permitted set",
			 cap_names[cap]);
		not_permitted("CDAEMON_CAPS", c->caps_text, what);
	}
	if ((bnd & ~keep) && !(eff & 1ULL << CAP_SETPCAP_))
		not_permitted(c->caps >= 0 ? "CDAEMON_CAPS" : "CDAEMON_USER",
			      c->caps >= 0 ? c->caps_text : c->user,
			      "dropping the other capabilities from the bounding set needs root "
			      "(CAP_SETPCAP)");
}

/* The kernel's answer to a setting: 77 if the starting user may not make
 * it, 71 for anything else. */
static _Noreturn void cannot_set(const char *var, long long value, const char *what, int err)
{
	bail(err == EPERM || err == EACCES ? CDAEMON_EX_NOPERM : CDAEMON_EX_OSERR,
	     "%s=\"%lld\": cannot set it: %s (%s)", var, value, strerror(err), what);
}

static void set_rlimit(int resource, rlim_t value, const char *var, long long text)
{
	struct rlimit rl = { value, value };
	if (setrlimit(resource, &rl) < 0)
		cannot_set(var, text, "raising a hard limit needs root (CAP_SYS_RESOURCE)", errno);
}

static void set_oom_score_adj(long long value)
{
	char buf[16];
	int n = snprintf(buf, sizeof buf, "%lld", value);
	int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf, n) != n)
		cannot_set("CDAEMON_OOM_SCORE_ADJ", value,
			   "lowering it needs root (CAP_SYS_RESOURCE); it is written to "
			   "/proc/self/oom_score_adj",
			   errno);
	close(fd);
}

/* The soft and hard limits alike: the Go runtime raises soft to hard at
 * start, so a lower soft limit would not hold anyway. Core "on" stays
 * effective after the uid change through PR_SET_DUMPABLE (step 7a). */
static void set_limits(const struct config *c)
{
	if (c->nofile != UNSET)
		set_rlimit(RLIMIT_NOFILE, (rlim_t)c->nofile, "CDAEMON_NOFILE", c->nofile);
	if (c->core == 0) /* lowering: always allowed */
		set_rlimit(RLIMIT_CORE, 0, "CDAEMON_CORE", 0);
	if (c->core == 1) {
		struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
		if (setrlimit(RLIMIT_CORE, &rl) < 0)
			bail(errno == EPERM ? CDAEMON_EX_NOPERM : CDAEMON_EX_OSERR,
			     "CDAEMON_CORE=\"on\": cannot make core dumps unlimited: %s (raising the "
			     "hard limit needs root (CAP_SYS_RESOURCE))",
			     strerror(errno));
	}
	/* The calling thread's value (Linux: nice is per thread), copied by
	 * fork and by every clone of a thread. */
	if (c->nice != UNSET && setpriority(PRIO_PROCESS, 0, (int)c->nice) < 0)
		cannot_set("CDAEMON_NICE", c->nice,
			   "a value below the current one needs root (CAP_SYS_NICE) or RLIMIT_NICE",
			   errno);
	if (c->oom != UNSET)
		set_oom_score_adj(c->oom);
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
static const char *split_path(const char *path, char *dir)
{
	const char *slash = strrchr(path, '/');
	size_t n = !slash ? 0 : slash == path ? 1 : (size_t)(slash - path);
	memcpy(dir, n ? path : ".", n ? n : 1);
	dir[n ? n : 1] = 0;
	return slash ? slash + 1 : path;
}

/* The directory path is in, looked at (zeroed if it cannot be: the open
 * that follows then says why). */
static void stat_parent(const char *path, struct stat *st)
{
	char dir[PATH_MAX];
	split_path(path, dir);
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

static void absolute(char *dst, size_t size, const char *path);

static void note_created_log(const char *path, int fd)
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

static void remove_created_logs(void)
{
	for (int i = 0; i < ncreated_logs; i++) {
		struct created_log *l = &created_logs[i];
		struct stat st;
		if (lstat(l->path, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino)
			unlink(l->path);
	}
	ncreated_logs = 0;
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
		bail(CDAEMON_EX_CANTCREAT,
		     "%s: refusing %s: it is a symbolic link, in a directory anyone can write to", var,
		     quote(path));
	if (fd < 0)
		bail(CDAEMON_EX_CANTCREAT, "%s: cannot open %s: %s", var, quote(path), strerror(errno));
	if (created)
		note_created_log(path, fd);
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

static int open_root(const struct config *c)
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
	int fd;                 /* open read-only and locked, or -1 */
	int wfd;                /* open for writing the pid (never kept by the daemon), or -1 */
	int dirfd;              /* its directory (O_PATH), or -1 */
	char name[PATH_MAX];    /* its name in dirfd */
	dev_t dev;
	ino_t ino;
	int created, locked;
} pidfile = { .fd = -1, .wfd = -1, .dirfd = -1 };

/*
 * The descriptor that holds the lock, and the only one the daemon keeps,
 * is read-only: a daemon that dropped its privileges (CDAEMON_USER) must
 * not be able to rewrite the pidfile its launcher made, which root's
 * tools (kill $(cat ...), systemd's PIDFile=, start-stop-daemon) trust.
 * The pid is written through the writable one, by the launcher's side
 * only. A new description of the file just opened: -1 with errno, ESTALE
 * if the name now refers to another file.
 */
static int pidfile_reopen_readonly(int dirfd, const char *name, const struct stat *st)
{
	struct stat now;
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -1;
	if (fstat(fd, &now) < 0 || now.st_dev != st->st_dev || now.st_ino != st->st_ino) {
		close(fd);
		errno = ESTALE;
		return -1;
	}
	return fd;
}

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
	const char *name = split_path(path, dirname);
	int fd;

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
		int ro = pidfile_reopen_readonly(pf->dirfd, name, &st);
		if (ro < 0 && (errno == ENOENT || errno == ESTALE)) {
			pf->fd = -1; /* removed or replaced meanwhile: not ours to remove */
			close(fd);
			continue;
		}
		if (ro < 0)
			bail(CDAEMON_EX_CANTCREAT, "CDAEMON_PIDFILE: cannot open %s: %s", quote(path),
			     strerror(errno));
		pf->fd = ro;
		pf->wfd = fd;
		if (flock(ro, LOCK_EX | LOCK_NB) < 0) {
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
		pf->fd = pf->wfd = -1;
		close(ro);
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
	if (pwrite(pidfile.wfd, text, n, 0) != n)
		return -1;
	return ftruncate(pidfile.wfd, n);
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
	if (pidfile.wfd >= 0)
		close(pidfile.wfd);
	pidfile.dirfd = pidfile.wfd = -1;
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
	absolute(s->root, sizeof s->root, c->root);
	absolute(s->pidfile, sizeof s->pidfile, c->pidfile);
	absolute(s->stdout_path, sizeof s->stdout_path, c->out ? c->out : c->log);
	absolute(s->stderr_path, sizeof s->stderr_path, c->err ? c->err : c->log);
}

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

static void note_created_socket(const char *path)
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

static void remove_created_sockets(void)
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
static void settle_created_sockets(void)
{
	for (int i = 0; i < ncreated_sockets; i++)
		close(created_sockets[i].dirfd);
	ncreated_sockets = 0;
}

/*
 * Hold descriptors 3 .. 3+n-1 with /dev/null before anything else is
 * opened, so nothing lands there and bind_listeners can put each socket
 * in its place. In the daemon whatever was inherited there would be
 * closed anyway (CDAEMON_KEEP_FDS may not name them); in the foreground
 * it belongs to someone, so it is refused.
 */
static void reserve_listen_fds(const struct config *c, int foreground)
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

/* Bind and listen at 3, 4, ...; on failure bail removes the pidfile and
 * the socket files this start made. */
static void bind_listeners(const struct config *c)
{
	for (int i = 0; i < c->nlisten; i++) {
		const struct listen_addr *l = &c->listen[i];
		int made, fd = bind_one(l, c->umask, &made);
		if (fd < 0 && errno == EADDRINUSE)
			bail(CDAEMON_EX_TEMPFAIL, "CDAEMON_LISTEN: %s is in use", quote(l->text));
		if (fd < 0)
			bail(CDAEMON_EX_CANTCREAT, "CDAEMON_LISTEN: cannot listen on %s: %s",
				     quote(l->text), strerror(errno));
		record_listener(i, l, fd);
		/* By its absolute path: the launcher changes directory next. */
		if (made)
			note_created_socket(cdaemon_listeners.addr[i] + 5);
		if (dup3(fd, 3 + i, O_CLOEXEC) < 0)
			bail(CDAEMON_EX_OSERR, "CDAEMON_LISTEN: dup3 to %d: %s", 3 + i,
				     strerror(errno));
		close(fd);
	}
	cdaemon_listeners.n = c->nlisten;
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
 * Signal the launcher's children outside its session: the middle once it
 * called setsid, and the daemon and whatever it started, re-parented to
 * the launcher (their subreaper) as their parents died. kill(-group)
 * misses those that left the daemon's process group or session (a child
 * started with Setsid, a daemon that called setsid itself). A child keeps
 * its pid until the launcher reaps it, so none of these is a stranger.
 * Children in the launcher's own session are left alone: a shell that
 * exec'ed the program may have started them (the middle before its setsid
 * is killed by pid). Returns how many were signalled.
 */
struct kin {
	long self, sid;
	int sig, n;
};

static int signal_child(long pid, void *arg)
{
	struct kin *k = arg;
	char path[64], stat[512], *end;
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	const char *p = strrchr(read_small(path, stat, sizeof stat), ')');
	/* ") S PPID PGRP SID ...": the command name may hold anything. */
	if (!p || !p[1] || !p[2])
		return 0;
	long ppid = strtol(p + 3, &end, 10);
	strtol(end, &end, 10);
	long sid = strtol(end, &end, 10);
	if (ppid == k->self && sid != k->sid && kill((pid_t)pid, k->sig) == 0)
		k->n++;
	return 0;
}

static int signal_children(int sig)
{
	struct kin k = { getpid(), getsid(0), sig, 0 };
	each_number("/proc", signal_child, &k);
	return k.n;
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
		signal_children(SIGTERM);
		if (!wait_exit(l->daemon, now_ms() + GRACE_MS, &st))
			kill(-group, SIGKILL);
	}
	kill(l->middle, SIGKILL); /* perhaps before its setsid: not in the group yet */
	kill(-group, SIGKILL);
	signal_children(SIGKILL);
	/* Reap the middle, the daemon and the daemon's children, which were
	 * re-parented to us (we are their subreaper). */
	for (long long end = now_ms() + 10 * GRACE_MS; now_ms() < end;) {
		pid_t pid = waitpid(-1, &st, WNOHANG);
		if (pid < 0 && errno != EINTR)
			break; /* ECHILD: none left */
		if (pid == 0 && signal_children(SIGKILL))
			usleep(10000); /* orphans keep coming to us as their parents die */
		else if (pid == 0)
			usleep(1000);
	}
	pidfile_remove(); /* the launcher still shares the lock */
	remove_created_sockets();
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

static const char *stop_signal_name(int sig)
{
	static const char *names[] = { [SIGINT] = "SIGINT", [SIGTERM] = "SIGTERM",
				       [SIGHUP] = "SIGHUP", [SIGQUIT] = "SIGQUIT" };
	return names[sig];
}

static _Noreturn void launcher_interrupted(struct launcher *l, int sig)
{
	say("interrupted by %s while waiting for the daemon%s to be %s; stopping it",
	    stop_signal_name(sig), l->daemon > 0 ? "" : " process", wait_point(l->c->wait));
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
	int keep[MAX_KEEP_FDS + 2 + MAX_LISTEN], n = 0;
	for (int i = 0; i < c->nkeep; i++)
		keep[n++] = c->keep[i];
	for (int i = 0; i < c->nlisten; i++)
		keep[n++] = 3 + i; /* step 5a put the listeners there */
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

/* ---------------------------------------------------------------------
 * 8a. Confine and drop privileges: chroot, groups, gid, uid, capabilities,
 * no_new_privs, dumpable. This runs in the daemon (and in a foreground
 * process) while it is still single-threaded, before it returns to start
 * the Go runtime: each call changes the one thread there is, and every
 * thread the runtime creates later inherits the result. Go cannot do this
 * itself: setuid is per thread on Linux, and syscall.AllThreadsSyscall
 * refuses to run in a cgo program.
 *
 * It runs after fork and may call only system calls and their thin libc
 * wrappers: no NSS, no allocation, no stdio (the launcher resolved the
 * ids and checked every step in 4a, so nothing here is expected to fail;
 * if the kernel refuses anyway, bail stops the start). The order is the
 * one the kernel imposes: chroot while CAP_SYS_CHROOT is effective; the
 * bounding set while CAP_SETPCAP is; groups and gid while CAP_SETGID is;
 * the uid last, with PR_SET_KEEPCAPS so the permitted set survives it;
 * then the capability sets are cut to CDAEMON_CAPS and the ambient set
 * raised (so the kept ones survive an execve too); no_new_privs; and
 * dumpable last, as the uid change reset it.
 */

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

static _Noreturn void drop_failed(const char *what)
{
	bail(errno == EPERM || errno == EACCES ? CDAEMON_EX_NOPERM : CDAEMON_EX_OSERR,
	     "cannot drop privileges: %s: %s", what, strerror(errno));
}

/* The working directory is CDAEMON_CHROOT (the launcher changed into it):
 * make it the root, then enter CDAEMON_CHDIR inside it. */
static void enter_root(const struct config *c)
{
	if (!c->root)
		return;
	if (chroot(".") < 0)
		drop_failed("chroot");
	if (chdir(c->dir) < 0)
		drop_failed("chdir to CDAEMON_CHDIR inside CDAEMON_CHROOT");
}

static void drop_bounding(unsigned long long keep)
{
	for (int cap = 0; cap < 64; cap++) {
		int r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
		if (r < 0)
			break; /* past the kernel's last capability */
		if (r && !(keep & 1ULL << cap) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
			drop_failed("PR_CAPBSET_DROP");
	}
}

static void change_ids(void)
{
	if (drop.gid_set && setgroups(drop.ngroups, drop.groups) < 0)
		drop_failed("setgroups");
	if (drop.gid_set && setresgid(drop.gid, drop.gid, drop.gid) < 0)
		drop_failed("setresgid");
	if (!drop.uid_set)
		return;
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		drop_failed("PR_SET_KEEPCAPS");
	if (setresuid(drop.uid, drop.uid, drop.uid) < 0)
		drop_failed("setresuid");
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		drop_failed("PR_SET_KEEPCAPS");
}

/* Effective, permitted and inheritable become exactly keep; ambient too,
 * which needs each in permitted and inheritable first. */
static void set_caps(unsigned long long keep)
{
	struct cap_header h = { CAP_VERSION_3, 0 };
	struct cap_data d[2];
	for (int i = 0; i < 2; i++) {
		uint32_t half = (uint32_t)(keep >> (32 * i));
		d[i] = (struct cap_data){ half, half, half };
	}
	if (syscall(SYS_capset, &h, d) < 0)
		drop_failed("capset");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		drop_failed("PR_CAP_AMBIENT_CLEAR_ALL");
	for (int cap = 0; cap < 64; cap++)
		if ((keep & 1ULL << cap) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
			drop_failed("PR_CAP_AMBIENT_RAISE");
}

static void drop_privileges(const struct config *c)
{
	unsigned long long keep = c->caps < 0 ? 0 : (unsigned long long)c->caps;
	enter_root(c);
	if (drops_caps(c))
		drop_bounding(keep);
	change_ids();
	if (drops_caps(c))
		set_caps(keep);
	/* What the drop promises: root cannot be regained. */
	if (drop.uid_set && drop.uid != 0 && !(keep & 1ULL << CAP_SETUID_) && setuid(0) == 0)
		bail(CDAEMON_EX_SOFTWARE, "cannot drop privileges: setuid(0) still works after the drop");
	if (c->no_new_privs == 1 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		drop_failed("PR_SET_NO_NEW_PRIVS");
	/* A uid change makes the process undumpable (no core, /proc files
	 * owned by root); CDAEMON_CORE=on asks for cores, as nginx does. */
	if (c->core == 1 && prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
		drop_failed("PR_SET_DUMPABLE");
}

static void become_daemon(const struct config *c, const struct files *f)
{
	redirect_stdio(f);
	if (c->wait == CDAEMON_WAIT_NONE) {
		close(status_fd); /* the launcher waits only for the middle's report */
		status_fd = -1;
	}
	close_inherited_fds(c, status_fd);
	drop_privileges(c); /* 8a */
	reset_signals();
	strip_environment();
	pidfile.dirfd = pidfile.wfd = -1; /* closed with the inherited descriptors */
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
/*
 * The process is the program, still single-threaded: it gets the same
 * listeners, limits and drop a daemon would, in the same order, so one
 * configuration serves both (under a service manager that changes the
 * user itself, such as systemd's User=, leave CDAEMON_USER unset). Its
 * stdio, directory (but inside a CDAEMON_CHROOT, which needs one) and
 * umask are left alone.
 */
static void stay_in_foreground(const struct config *c)
{
	reserve_listen_fds(c, 1);
	resolve_ids(c);
	check_privileges(c);
	set_limits(c);
	int root = c->root ? open_root(c) : -1;
	if (c->pidfile) {
		mode_t old = umask(0);
		pidfile_open(c->pidfile);
		if (pidfile_write(getpid()) < 0)
			bail(CDAEMON_EX_CANTCREAT, "CDAEMON_PIDFILE: cannot write %s: %s",
			     quote(c->pidfile), strerror(errno));
		umask(old);
	}
	bind_listeners(c); /* relative paths: before changing directory */
	if (root >= 0 && fchdir(root) < 0)
		bail(CDAEMON_EX_CANTCREAT, "CDAEMON_CHROOT: cannot change to %s: %s", quote(c->root),
		     strerror(errno));
	if (root >= 0)
		close(root);
	drop_privileges(c);
	pidfile_settle(); /* after the drop: if it fails, bail still removes the file */
	settle_created_sockets();
}

/* A stop signal that came while the launcher opened its files (blocked
 * since): end the start before the fork, which removes what it created.
 * One that comes later is read from the launcher's signalfd. */
static void refuse_if_interrupted(const sigset_t *set)
{
	const struct timespec zero = { 0, 0 };
	int sig = sigtimedwait(set, NULL, &zero);
	if (sig > 0)
		bail(128 + sig, "interrupted by %s before the daemon was started",
		     stop_signal_name(sig));
}

/* Steps 4a, 5 and 5a: who the daemon will be is settled, everything it
 * keeps is opened (its listeners too), and the launcher is in
 * CDAEMON_CHDIR (or CDAEMON_CHROOT) with CDAEMON_UMASK set. */
static void open_everything(const struct config *c, struct files *f, sigset_t *sigs)
{
	fill_std_fds();
	reserve_listen_fds(c, 0);
	resolve_ids(c); /* 4a */
	check_privileges(c);
	set_limits(c);
	/* From here on the start creates files: a stop signal is kept for
	 * refuse_if_interrupted or the launcher's signalfd, not fatal. */
	prepare_signals(sigs);
	umask(0);
	open_stdio(c, f);
	/* With CDAEMON_CHROOT the launcher goes into the new root; the
	 * daemon chroots there and enters CDAEMON_CHDIR (8a). */
	int dir = c->root ? open_root(c) : open_dir(c);
	if (c->pidfile)
		pidfile_open(c->pidfile);
	bind_listeners(c); /* 5a: after the pidfile, whose lock names a running daemon */
	if (fchdir(dir) < 0)
		bail(CDAEMON_EX_CANTCREAT, "%s: cannot change to %s: %s",
		     c->root ? "CDAEMON_CHROOT" : "CDAEMON_CHDIR", quote(c->root ? c->root : c->dir),
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
	int pipefd[2], declined;

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
	check_listen_fds(&c);
	s->mode = c.mode;
	s->wait = c.wait;
	record_paths(&c);
	if ((reason = skip_reason(&c, &declined))) { /* 3 */
		snprintf(s->reason, sizeof s->reason, "%s", reason);
		s->stdout_path[0] = s->stderr_path[0] = 0; /* stdio is left alone */
		if (declined)
			s->pidfile[0] = 0;
		else
			stay_in_foreground(&c);
		return;
	}
	check_single_thread(); /* 4 */
	open_everything(&c, &f, &sigs); /* 5 */

	if (pipe2(pipefd, O_CLOEXEC) < 0) /* 6 */
		bail(CDAEMON_EX_OSERR, "pipe: %s", strerror(errno));
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	refuse_if_interrupted(&sigs);
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
