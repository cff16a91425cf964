/*
 * spawn.c: the harness's launcher of launchers.
 *
 * The Go harness could start each program itself, but Go starts children
 * with clone(CLONE_VM|CLONE_VFORK), and Linux carries the parent's peak RSS
 * into the child's ru_maxrss across execve: every launcher would report the
 * harness's size. This small, single-threaded C process starts them instead,
 * so a launcher's ru_maxrss is its own (plus this process's few hundred KB,
 * which the c-nofork row shows as the floor). It also takes the
 * timestamps next to the fork and the wait, away from Go's scheduler.
 *
 * It is also the client of the first-response and restart cases, for the
 * same reasons: its timestamps sit next to the connect, and a
 * single-threaded C loop that sleeps 100 µs between tries takes no CPU
 * from the server starting on this 2-core machine.
 *
 * Protocol, stdin: mode, argc, argv..., envc, env..., each NUL-terminated,
 * one request after another. stdout: one line per request,
 *   "<pid> <t_spawn_ns> <t_return_ns> <wait_status> <maxrss_kb> <t_first_ns> <refused>\n"
 * with CLOCK_MONOTONIC times. The modes:
 *   run          start the program, wait for it to exit (t_first 0).
 *   setsid       the same, the program in a session of its own (as a daemon
 *                is after setsid, and with it, where the kernel has
 *                autogroups, a scheduling group of its own).
 *   http:PORT    start the program, wait for it (the launcher) to exit, then
 *                connect to 127.0.0.1:PORT, every 100 µs while refused,
 *                until an HTTP 200 arrives: t_first, and the refusals.
 *   http-fg:PORT the same, but connect from the spawn on (the program is
 *                the server itself): the line comes with t_return 0 once
 *                the 200 arrived, and a second line when the program exits.
 *   http-fg-setsid:PORT  the same, the server in a session of its own.
 *   kill:PIDFILE no program (argc 0): read the pid in PIDFILE, send it
 *                SIGTERM and poll every 100 µs until it is gone, as an
 *                operator's "kill, wait for the exit" does.
 * The program gets stdin /dev/null and this process's stderr as stdout and
 * stderr. A client that gets no 200 within 20 s reports t_first 0.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXV 256

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* One NUL-terminated string from stdin, or NULL at end of input. */
static char *field(void)
{
	char *s = NULL;
	size_t cap = 0;
	if (getdelim(&s, &cap, 0, stdin) < 0) {
		free(s);
		return NULL;
	}
	return s;
}

static void pause_100us(void)
{
	struct timespec ts = { 0, 100000 };
	nanosleep(&ts, NULL);
}

/*
 * The client: connect to 127.0.0.1:port until not refused, send one GET,
 * and read the status line. 0 and *t_first on a 200; -1 on anything else.
 */
static int client(int port, long long *t_first, int *refused)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	const char req[] = "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
	long long deadline = now_ns() + 20000000000LL;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (;;) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
			int e = errno;
			close(fd);
			if (e != ECONNREFUSED || now_ns() > deadline)
				return -1;
			(*refused)++;
			pause_100us();
			continue;
		}
		struct timeval tv = { 20, 0 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		char buf[64];
		size_t got = 0;
		if (write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1))
			while (got < 12) {
				ssize_t n = read(fd, buf + got, sizeof buf - 1 - got);
				if (n <= 0)
					break;
				got += n;
			}
		long long t = now_ns();
		close(fd);
		buf[got] = 0;
		if (got >= 12 && !strncmp(buf, "HTTP/1.", 7) && !strncmp(buf + 8, " 200", 4)) {
			*t_first = t;
			return 0;
		}
		return -1;
	}
}

/* kill:PIDFILE: SIGTERM to the pid the file names, then wait until it is gone. */
static int stop_by_pidfile(const char *path, int *pid)
{
	char buf[32] = { 0 };
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, buf, sizeof buf - 1) <= 0)
		return -1;
	close(fd);
	*pid = atoi(buf);
	if (*pid <= 1 || kill(*pid, SIGTERM) < 0)
		return -1;
	long long deadline = now_ns() + 20000000000LL;
	while (kill(*pid, 0) == 0 || errno != ESRCH) {
		if (now_ns() > deadline)
			return -1;
		pause_100us();
	}
	return 0;
}

static int vec(char **v)
{
	char *n = field();
	if (!n)
		return -1;
	int c = atoi(n);
	free(n);
	if (c < 0 || c >= MAXV)
		return -1;
	for (int i = 0; i < c; i++)
		if (!(v[i] = field()))
			return -1;
	v[c] = NULL;
	return c;
}

/* The port of an http mode, and whether it is http-fg; 0 for other modes. */
static int http_port(const char *mode, int *fg)
{
	*fg = !strncmp(mode, "http-fg", 7);
	if (strncmp(mode, "http", 4))
		return 0;
	const char *colon = strchr(mode, ':');
	return colon ? atoi(colon + 1) : 0;
}

static void answer(int pid, long long t0, long long t1, int st, long rss, long long t_first, int refused)
{
	printf("%d %lld %lld %d %ld %lld %d\n", pid, t0, t1, st, rss, t_first, refused);
	fflush(stdout);
}

/* Start one program: its pid (after vfork returned) and the spawn time. */
static int start(const char *mode, char **argv, char **envp, int null, long long *t0)
{
	*t0 = now_ns();
	pid_t pid = vfork();
	if (pid == 0) {
		/* vfork child: shares our memory, so only syscalls here. */
		dup2(null, 0);
		dup2(2, 1);
		if (strstr(mode, "setsid"))
			setsid();
		execve(argv[0], argv, envp);
		_exit(127);
	}
	return pid;
}

int main(void)
{
	char *argv[MAXV], *envp[MAXV];
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		int st = 0, refused = 0, pid = -1, fg;
		long long t0, t_first = 0;
		struct rusage ru = { 0 };
		char *mode = field();
		if (!mode || vec(argv) < 0 || vec(envp) < 0)
			return 0;
		int port = http_port(mode, &fg);
		if (!strncmp(mode, "kill:", 5)) {
			t0 = now_ns();
			st = stop_by_pidfile(mode + 5, &pid) < 0 ? 1 << 8 : 0;
			answer(pid, t0, now_ns(), st, 0, 0, 0);
		} else if (argv[0]) {
			pid = start(mode, argv, envp, null, &t0);
			if (pid > 0 && fg) {
				client(port, &t_first, &refused);
				answer(pid, t0, 0, 0, 0, t_first, refused);
			}
			if (pid > 0)
				while (wait4(pid, &st, 0, &ru) < 0)
					;
			long long t1 = now_ns();
			if (pid > 0 && port && !fg && WIFEXITED(st) && WEXITSTATUS(st) == 0)
				client(port, &t_first, &refused);
			answer(pid, t0, t1, st, ru.ru_maxrss, fg ? 0 : t_first, fg ? 0 : refused);
		} else {
			answer(-1, 0, 0, 127 << 8, 0, 0, 0);
		}
		free(mode);
		for (int i = 0; argv[i]; i++)
			free(argv[i]);
		for (int i = 0; envp[i]; i++)
			free(envp[i]);
	}
}
