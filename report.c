/*
 * report.c: messages and the one error path.
 *
 * Owns: the program's name in messages (prog), escaping of every byte
 * that reaches a terminal (escape, quote), the launcher's own messages
 * (say) and bail(), which ends a start wherever it is; and forked and
 * status_fd, which tell bail which side of the first fork it is on.
 *
 * Runs in: every state, launcher, middle and daemon, before and after the
 * privilege drop. So it calls only what is safe after fork: write(2),
 * signal masks, snprintf into fixed buffers; no allocation, no stdio
 * streams. Before the first fork bail prints on the user's terminal and
 * removes what this start created (created.c, pidfile.c); after it, it
 * sends the message through the status pipe (launcher.c's send_msg) and
 * removes nothing: the launcher does. Every exit here is _exit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* ---------------------------------------------------------------------
 * Reporting: one error path. bail() ends the start wherever it is. Before
 * the first fork it prints on the user's terminal and removes the pidfile
 * this start took; after it (in the middle or the daemon) it sends the
 * message through the status pipe, and the launcher prints it. Either way
 * the process leaves with _exit: a half-started process must not run
 * atexit handlers or flush stdio buffers it shares with others.
 */

char prog[64] = "cdaemon";
int forked;
int status_fd = -1;

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

size_t escape(char *dst, size_t size, const char *src, size_t len)
{
	return escape_text(dst, size, src, len, 0);
}

/* A value as it appears in messages: quoted and escaped. Two buffers, so a
 * message can quote two values. */
const char *quote(const char *s)
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
void print_line(const char *text, size_t len)
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
__attribute__((format(printf, 1, 2))) void say(const char *fmt, ...)
{
	char buf[2 * PATH_MAX];
	va_list ap;
	va_start(ap, fmt);
	vformat(buf, sizeof buf, fmt, ap);
	va_end(ap);
	print_line(buf, strlen(buf));
}

__attribute__((format(printf, 2, 3))) _Noreturn void bail(int status, const char *fmt, ...)
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
		replace_note();
		remove_created(0); /* after the fork the launcher removes them */
	}
	_exit(status);
}
