/*
 * fuzz_config.c: a libFuzzer target for the constructor's configuration
 * parsing (config.c) and status protocol (launcher.c).
 *
 * It compiles every C file of the library itself (#include, one unit)
 * with -DCDAEMON_NO_CONSTRUCTOR, their exits turned into longjmp and
 * their messages captured, then feeds them environments made from the
 * input:
 *
 *   - each line of the input (less a first byte below 0x20) as the value
 *     of each parser (parse_timeout, ...) and of quote(), checking what
 *     an accepted value must be;
 *   - the input split at '\n' into environment entries for read_config():
 *     an entry whose first byte is below 0x20 names a variable by index
 *     (so the fuzzer reaches every name), any other entry is used raw.
 *     read_config must either return a valid configuration or stop with
 *     status 64 and one clear line naming the variable.
 *
 *   - the raw input as bytes read from the status pipe, for the launcher's
 *     parse_msg(): every byte there comes from a process that may be less
 *     privileged than the launcher. It must accept only well-formed
 *     messages, never read past what it was given, and ask for more bytes
 *     only while a message could still be whole.
 *
 * Build (tests/hardening_fuzz_test.go does this):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined fuzz_config.c
 *   gcc -g -fsanitize=address,undefined fuzz_config.c replay.c   (no clang)
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static jmp_buf fuzz_jmp;
static int fuzz_status;
static char fuzz_msg[16384];
static size_t fuzz_msg_len;

static _Noreturn void fuzz_exit(int status)
{
	fuzz_status = status;
	longjmp(fuzz_jmp, 1);
}

/* Messages to fd 2 are captured (and checked), not printed. */
static ssize_t fuzz_write(int fd, const void *buf, size_t n)
{
	if (fd != 2)
		return write(fd, buf, n);
	if (n > sizeof fuzz_msg - fuzz_msg_len)
		abort(); /* a message longer than any buffer cdaemon has */
	memcpy(fuzz_msg + fuzz_msg_len, buf, n);
	fuzz_msg_len += n;
	return (ssize_t)n;
}

#define _exit fuzz_exit
#define write fuzz_write
/* The seam: with CDAEMON_NO_CONSTRUCTOR the constructor is a plain unused
 * function, so the fuzzer is never daemonized. */
#define CDAEMON_NO_CONSTRUCTOR 1
#include "../../../../cdaemon.c"
#include "../../../../checks.c"
#include "../../../../config.c"
#include "../../../../created.c"
#include "../../../../daemon.c"
#include "../../../../files.c"
#include "../../../../launcher.c"
#include "../../../../pidfile.c"
#include "../../../../privileges.c"
#include "../../../../readiness.c"
#include "../../../../exec.c"
#include "../../../../replace.c"
#include "../../../../report.c"
#include "../../../../sockets.c"
#undef write
#undef _exit

#define CHECK(cond)                                                              \
	do {                                                                     \
		if (!(cond)) {                                                   \
			fprintf(stderr, "fuzz_config: check failed: %s\n", #cond); \
			abort();                                                 \
		}                                                                \
	} while (0)

static int all_in(const char *s, const char *set)
{
	return s[strspn(s, set)] == 0;
}

/* Go-style durations that cdaemon documents: ([0-9]+(.[0-9]*)?(ms|s|m|h))+ */
static int is_duration(const char *s)
{
	if (!*s)
		return 0;
	while (*s) {
		if (!isdigit((unsigned char)*s))
			return 0;
		while (isdigit((unsigned char)*s))
			s++;
		if (*s == '.')
			for (s++; isdigit((unsigned char)*s); s++)
				;
		if (!strncmp(s, "ms", 2))
			s += 2;
		else if (*s == 's' || *s == 'm' || *s == 'h')
			s++;
		else
			return 0;
	}
	return 1;
}

static void check_quote(const char *v)
{
	const char *q = quote(v);
	size_t n = strlen(q);
	CHECK(n >= 2 && n < 160 && q[0] == '"' && q[n - 1] == '"');
	for (const char *p = q; *p; p++)
		CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
}

/* A user or group: a number below 2^32-1, or a name that is not all
 * digits, of allowed characters, not starting with '-'. */
static void check_id(const char *v)
{
	size_t n = strlen(v), digits = strspn(v, "0123456789");
	CHECK(n >= 1 && n <= 255);
	if (digits == n)
		CHECK(strtoull(v, NULL, 10) < 4294967295ULL); /* leading zeros are fine */
	else
		CHECK(v[0] != '-' && strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					    "0123456789._-@") >= n - (v[n - 1] == '$'));
}

static void check_privilege_parsers(const char *v)
{
	struct config c;
	memset(&c, 0, sizeof c);
	if (parse_user(v, &c) == 0)
		check_id(c.user);
	if (parse_caps(v, &c) == 0)
		CHECK(c.caps >= 0 && c.caps < 1LL << NCAPS);
	if (parse_no_new_privs(v, &c) == 0)
		CHECK(c.no_new_privs == 0 || c.no_new_privs == 1);
	if (parse_core(v, &c) == 0)
		CHECK(c.core == 0 || c.core == 1);
	if (parse_nofile(v, &c) == 0)
		CHECK(c.nofile >= NOFILE_MIN && c.nofile <= NOFILE_MAX && all_in(v, "0123456789"));
	if (parse_nice(v, &c) == 0)
		CHECK(c.nice >= -20 && c.nice <= 19 && all_in(v, "-0123456789"));
	if (parse_oom(v, &c) == 0)
		CHECK(c.oom >= -1000 && c.oom <= 1000 && all_in(v, "-0123456789"));
	if (parse_listen(v, &c) == 0) {
		CHECK(c.nlisten >= 1 && c.nlisten <= MAX_LISTEN);
		for (int i = 0; i < c.nlisten; i++) {
			const struct listen_addr *l = &c.listen[i];
			int fam = l->addr.ss_family;
			CHECK(fam == AF_INET || fam == AF_INET6 || fam == AF_UNIX);
			CHECK(l->len > 0 && l->len <= sizeof l->addr);
			CHECK(!strncmp(l->text, fam == AF_UNIX ? "unix:" : "tcp:", fam == AF_UNIX ? 5 : 4));
		}
	}
}

static void check_parsers(const char *v)
{
	struct config c;

	memset(&c, 0, sizeof c);
	if (parse_timeout(v, &c) == 0) {
		CHECK(c.timeout_ms >= 1 && c.timeout_ms <= 24 * 3600 * 1000LL);
		CHECK(is_duration(v));
	}
	if (parse_umask(v, &c) == 0) {
		CHECK(c.umask <= 0777);
		CHECK(*v && strlen(v) <= 4 && all_in(v, "01234567"));
	}
	if (parse_keep_fds(v, &c) == 0) {
		CHECK(c.nkeep >= 1 && c.nkeep <= MAX_KEEP_FDS);
		CHECK(all_in(v, "0123456789,") && v[0] != ',' && !strstr(v, ",,") &&
		      v[strlen(v) - 1] != ',');
		for (int i = 0; i < c.nkeep; i++) {
			CHECK(c.keep[i] > 2);
			for (int j = 0; j < i; j++)
				CHECK(c.keep[i] != c.keep[j]);
		}
	}
	if (parse_mode(v, &c) == 0)
		CHECK(c.mode == CDAEMON_MODE_AUTO || c.mode == CDAEMON_MODE_ON ||
		      c.mode == CDAEMON_MODE_OFF);
	if (parse_wait(v, &c) == 0)
		CHECK(c.wait >= CDAEMON_WAIT_NONE && c.wait <= CDAEMON_WAIT_READY);
	if (parse_pidfile(v, &c) == 0)
		CHECK(c.pidfile == v && *v && strlen(v) < PATH_MAX);
	check_privilege_parsers(v);
	check_quote(v);
}

#define MAX_ENTRIES 32

static void check_read_config(char *text)
{
	static const char *names[] = {
		"CDAEMON", "CDAEMON_WAIT", "CDAEMON_TIMEOUT", "CDAEMON_PIDFILE", "CDAEMON_LOG",
		"CDAEMON_STDOUT", "CDAEMON_STDERR", "CDAEMON_STDIN", "CDAEMON_CHDIR",
		"CDAEMON_UMASK", "CDAEMON_KEEP_FDS", "CDAEMON_", "CDAEMONX", "PATH",
		"CDAEMON_USER", "CDAEMON_GROUP", "CDAEMON_CAPS", "CDAEMON_CHROOT",
		"CDAEMON_NO_NEW_PRIVS", "CDAEMON_NOFILE", "CDAEMON_CORE", "CDAEMON_NICE",
		"CDAEMON_OOM_SCORE_ADJ", "CDAEMON_LISTEN",
	};
	static char entries[MAX_ENTRIES][8192];
	char *env[MAX_ENTRIES + 1];
	int n = 0;
	char **saved = environ;
	struct config c;

	for (char *line = text; line && n < MAX_ENTRIES;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		if ((unsigned char)line[0] < 0x20 && line[0])
			snprintf(entries[n], sizeof entries[n], "%s=%s",
				 names[(unsigned char)line[0] % (sizeof names / sizeof names[0])], line + 1);
		else
			snprintf(entries[n], sizeof entries[n], "%s", line);
		env[n] = entries[n];
		n++;
		line = nl ? nl + 1 : NULL;
	}
	env[n] = NULL;

	fuzz_msg_len = 0;
	fuzz_status = -1;
	environ = env;
	if (setjmp(fuzz_jmp) == 0) {
		read_config(&c);
		environ = saved;
		CHECK(fuzz_msg_len == 0);
		CHECK(c.mode >= CDAEMON_MODE_AUTO && c.mode <= CDAEMON_MODE_OFF);
		CHECK(c.wait >= CDAEMON_WAIT_NONE && c.wait <= CDAEMON_WAIT_READY);
		CHECK(c.timeout_ms >= 1 && c.timeout_ms <= 24 * 3600 * 1000LL);
		CHECK(c.umask <= 0777);
		CHECK(c.nkeep >= 0 && c.nkeep <= MAX_KEEP_FDS);
		const char *paths[] = { c.pidfile, c.log, c.out, c.err, c.in, c.dir };
		for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
			CHECK(!paths[i] || (*paths[i] && strlen(paths[i]) < PATH_MAX));
		/* Every entry that is ours was accepted: nothing slipped through. */
		for (int i = 0; i < n; i++)
			if (is_ours(env[i]))
				CHECK(strchr(env[i], '='));
		return;
	}
	environ = saved;
	/* Stopped: status 64 and one line that names a variable. */
	CHECK(fuzz_status == CDAEMON_EX_USAGE);
	CHECK(fuzz_msg_len > 0 && fuzz_msg[fuzz_msg_len - 1] == '\n');
	CHECK(memchr(fuzz_msg, '\n', fuzz_msg_len) == fuzz_msg + fuzz_msg_len - 1);
	CHECK(memmem(fuzz_msg, fuzz_msg_len, "CDAEMON", 7));
	for (size_t i = 0; i + 1 < fuzz_msg_len; i++)
		CHECK((unsigned char)fuzz_msg[i] >= 0x20 && fuzz_msg[i] != 0x7f);
}

static void check_parse_msg(const uint8_t *data, size_t size)
{
	/* A copy of exactly size bytes, so ASan sees any read past the end. */
	unsigned char *buf = malloc(size ? size : 1);
	size_t off = 0;
	memcpy(buf, data, size);
	while (off <= size) {
		struct msg m;
		const char *why = NULL;
		long n = parse_msg(buf + off, size - off, &m, &why);
		if (n < 0) {
			CHECK(why && *why);
			break;
		}
		if (n == 0) {
			/* More is needed: only a short header or a short payload. */
			CHECK(size - off < CDAEMON_MSG_HEADER ||
			      size - off < CDAEMON_MSG_HEADER + (size_t)(buf[off + 2] | buf[off + 3] << 8));
			break;
		}
		CHECK((size_t)n == CDAEMON_MSG_HEADER + m.len && (size_t)n <= size - off);
		CHECK(m.len <= CDAEMON_MSG_MAX);
		CHECK(m.type == CDAEMON_MSG_PID || m.type == CDAEMON_MSG_STARTED ||
		      m.type == CDAEMON_MSG_READY || m.type == CDAEMON_MSG_FAILED ||
		      m.type == CDAEMON_MSG_EXEC);
		CHECK(m.type == CDAEMON_MSG_FAILED || m.status == 0);
		if (m.type == CDAEMON_MSG_PID)
			CHECK(m.pid >= 2 && m.pid <= INT_MAX && m.len >= 1 && m.len <= 10);
		if (m.type == CDAEMON_MSG_STARTED || m.type == CDAEMON_MSG_READY ||
		    m.type == CDAEMON_MSG_EXEC)
			CHECK(m.len == 0);
		CHECK(m.text == (const char *)buf + off + CDAEMON_MSG_HEADER);
		off += n;
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_parse_msg(data, size);
	static char buf[65536];
	if (size >= sizeof buf)
		size = sizeof buf - 1;
	memcpy(buf, data, size);
	buf[size] = 0; /* an environment string ends at its first NUL */
	static char line[sizeof buf];
	memcpy(line, buf, size + 1);
	for (char *l = line; l;) {
		char *nl = strchr(l, '\n');
		if (nl)
			*nl = 0;
		check_parsers(l + ((unsigned char)l[0] < 0x20 && l[0]));
		l = nl ? nl + 1 : NULL;
	}
	check_read_config(buf);
	return 0;
}
