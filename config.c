/*
 * config.c: reading and validating CDAEMON_*.
 *
 * Owns step 2: the table of variables (vars), one parser per variable and
 * the message that says what each accepts, the defaults (struct config),
 * the program's cdaemon_default_wait, and the cross-checks between
 * settings (kept descriptors that exist, none where the listeners go).
 * Also the capability names (cap_names), which privileges.c applies.
 *
 * Runs in: the launcher (and a foreground run) before anything is opened,
 * as the starting user. Parsers only parse: they touch nothing outside
 * struct config, so the fuzzer (tests/testdata/hardening/fuzz) can call
 * them on any input. A bad value bails with CDAEMON_EX_USAGE (64) and a
 * message naming the variable, the value and what is allowed.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "internal.h"

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
		long long fd = 0; /* a long is 32 bits on 32-bit ARM: 4294967299 was fd 3 */
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

static int parse_replace(const char *v, struct config *c)
{
	return (c->replace = parse_bool(v)) < 0 ? -1 : 0;
}

/* A signal name, with or without SIG, from replace.c's list. */
static int parse_replace_signal(const char *v, struct config *c)
{
	const char *name = strncmp(v, "SIG", 3) ? v : v + 3;
	for (const struct replace_signal *s = replace_signals; s->name; s++)
		if (!strcmp(name, s->name)) {
			c->replace_signal = s->sig;
			return 0;
		}
	return -1;
}

/* A decimal integer from lo to hi: digits, a leading '-' only if lo < 0. */
int parse_int(const char *v, long long lo, long long hi, long long *dst)
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
const char *const cap_names[] = {
	"chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid",
	"setuid", "setpcap", "linux_immutable", "net_bind_service", "net_broadcast",
	"net_admin", "net_raw", "ipc_lock", "ipc_owner", "sys_module", "sys_rawio",
	"sys_chroot", "sys_ptrace", "sys_pacct", "sys_admin", "sys_boot", "sys_nice",
	"sys_resource", "sys_time", "sys_tty_config", "mknod", "lease", "audit_write",
	"audit_control", "setfcap", "mac_override", "mac_admin", "syslog", "wake_alarm",
	"block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
};
_Static_assert(sizeof cap_names / sizeof cap_names[0] == NCAPS, "NCAPS counts cap_names");

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
	{ "CDAEMON_REPLACE", parse_replace, "want on or off (or 1/0, true/false, yes/no)" },
	{ "CDAEMON_REPLACE_SIGNAL", parse_replace_signal,
	  "want a signal name: TERM, INT, QUIT, HUP, USR1, USR2, WINCH or KILL (SIG prefix optional)" },
};

#define NVARS (sizeof vars / sizeof vars[0])

/*
 * A program that calls Ready() can make "ready" its default wait point,
 * like a //go:debug line sets a GODEBUG default, by defining in a cgo
 * preamble of its main package:
 *	const char cdaemon_default_wait[] = "ready";
 * CDAEMON_WAIT still overrides it. Weak (internal.h): most programs
 * define nothing.
 */

void read_config(struct config *c)
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
		.replace_signal = SIGTERM,
	};
	/* A run that execs another program takes none of this program's
	 * default: that one declares nothing (exec.c). */
	if (cdaemon_default_wait && !exec_argv && parse_wait(cdaemon_default_wait, c) < 0)
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
			char names[768];
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
	/* A replacement finds the daemon by its pidfile, and stops it only
	 * once the new one has started or is ready. */
	if (c->replace == 1 && !c->pidfile)
		bail(CDAEMON_EX_USAGE, "CDAEMON_REPLACE=on needs CDAEMON_PIDFILE: the daemon to replace "
		     "is the one that holds its lock");
	if (c->replace == 1 && c->wait == CDAEMON_WAIT_NONE)
		bail(CDAEMON_EX_USAGE, "CDAEMON_REPLACE=on needs CDAEMON_WAIT=start or ready: the running "
		     "daemon is stopped only once the new one is up, not merely forked");
	/* Kept descriptors must exist now: keeping a closed one is a typo. */
	for (int i = 0; i < c->nkeep; i++)
		if (fcntl(c->keep[i], F_GETFD) < 0)
			bail(CDAEMON_EX_USAGE, "CDAEMON_KEEP_FDS=%s is not valid: fd %d is not open",
			     quote(c->keep_text), c->keep[i]);
}

/* CDAEMON_LISTEN's sockets take descriptors 3, 4, ...: a kept descriptor
 * may not be one of them. */
void check_listen_fds(const struct config *c)
{
	for (int i = 0; i < c->nkeep; i++)
		if (c->keep[i] < 3 + c->nlisten)
			bail(CDAEMON_EX_USAGE,
			     "CDAEMON_KEEP_FDS=%s is not valid: fd %d is taken by CDAEMON_LISTEN, whose "
			     "sockets are descriptors 3 to %d; keep descriptors above %d",
			     quote(c->keep_text), c->keep[i], 2 + c->nlisten, 2 + c->nlisten);
}
