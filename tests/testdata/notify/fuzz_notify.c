/*
 * fuzz_notify.c: a libFuzzer target for readiness.c's notify_parse, the
 * parser of the datagrams the launcher's notify socket receives: every
 * byte comes from a process that may be hostile (any local process can
 * send to the socket; the daemon may run with fewer privileges than the
 * launcher). The parser must never read outside the datagram, must drop
 * exactly the datagrams with a NUL byte (and the empty one), and what it
 * accepts must be what the lines say: checked here against a second,
 * simple reading of the same bytes.
 *
 * Build (tests/readiness_fuzz_test.go does this):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined fuzz_notify.c
 *   gcc -g -fsanitize=address,undefined fuzz_notify.c ../hardening/fuzz/replay.c
 */
#include "../../../readiness.c"

#include <stdint.h>
#include <stdlib.h>

/* What readiness.c uses of the other files, outside the parser: never
 * called here. */
struct cdaemon_state cdaemon_state;
const char *read_small(const char *path, char *buf, size_t size)
{
	(void)path;
	if (size)
		buf[0] = 0;
	return buf;
}
void bail(int status, const char *fmt, ...)
{
	(void)status, (void)fmt;
	abort();
}

/* The last line "KEY=..." of buf, by a plain scan; NULL if none. */
static const char *last_value(const char *buf, size_t n, const char *key, size_t *len)
{
	const char *found = NULL;
	size_t klen = strlen(key);
	for (size_t start = 0; start <= n;) {
		size_t end = start;
		while (end < n && buf[end] != '\n')
			end++;
		if (end - start > klen && !memcmp(buf + start, key, klen) && buf[start + klen] == '=') {
			found = buf + start + klen + 1;
			*len = end - start - klen - 1;
		}
		start = end + 1;
	}
	return found;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size bytes: ASan catches a read past it. */
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	struct notify_msg m;
	const char *why = NULL;
	int r = notify_parse(buf, size, &m, &why);
	int has_nul = size && memchr(buf, 0, size) != NULL;
	if (size == 0 || has_nul) {
		if (r != -1 || !why)
			abort();
		free(buf);
		return 0;
	}
	if (r != 0)
		abort();
	size_t len = 0;
	const char *v = last_value(buf, size, "STATUS", &len);
	if ((v == NULL) != (m.status == NULL) || (v && (m.status != v || m.status_len != len)))
		abort();
	if (m.status && (m.status < buf || m.status + m.status_len > buf + size ||
			 memchr(m.status, '\n', m.status_len)))
		abort();
	if (m.ready != 0 && m.ready != 1)
		abort();
	if (m.ready) {
		/* Some line says exactly READY=1. */
		int seen = 0;
		for (size_t i = 0; i + 7 <= size; i++)
			if ((i == 0 || buf[i - 1] == '\n') && !memcmp(buf + i, "READY=1", 7) &&
			    (i + 7 == size || buf[i + 7] == '\n'))
				seen = 1;
		if (!seen)
			abort();
	}
	if (m.errno_ < -1 || m.errno_ > INT_MAX || m.exit_status < -1 || m.exit_status > 255 ||
	    m.extend_usec < -1 || m.mainpid < 0 || m.mainpid > INT_MAX || m.ignored < 0)
		abort();
	/* A pid accepted is the value of a line MAINPID=<digits> (the last
	 * one with a valid value: an invalid one is ignored). */
	if (m.mainpid) {
		int seen = 0;
		for (size_t i = 0; i + 8 < size; i++) {
			if ((i && buf[i - 1] != '\n') || memcmp(buf + i, "MAINPID=", 8))
				continue;
			long long n = 0;
			size_t j = i + 8;
			while (j < size && buf[j] >= '0' && buf[j] <= '9' && n < INT_MAX)
				n = n * 10 + (buf[j++] - '0');
			if (j > i + 8 && (j == size || buf[j] == '\n') && n == m.mainpid)
				seen = 1;
		}
		if (!seen)
			abort();
	}
	free(buf);
	return 0;
}
