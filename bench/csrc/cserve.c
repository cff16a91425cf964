/*
 * cserve.c: the first-response server in C, for `cdaemon run` against
 * start-stop-daemon and daemonize(1) (the "run" cases). As the Go servers
 * (internal/report/serve.go): it takes the socket passed as socket
 * activation passes it (LISTEN_FDS=1, LISTEN_PID this process: fd 3) or
 * listens on 127.0.0.1:$BENCH_PORT, reports
 * "<token> <t_main_ns> <pid> <sid> <vmhwm_kb>" to $BENCH_SOCK, sends
 * READY=1 to $NOTIFY_SOCKET if it is set (sd_notify with a plain
 * datagram), and answers every connection with an HTTP 200 until killed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static long hwm_kb(void)
{
	char buf[4096];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *p = strstr(buf, "VmHWM:");
	return p ? strtol(p + 6, NULL, 10) : 0;
}

static void send_to(const char *path, const char *msg, int abstract_ok)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	size_t n = strlen(path);
	if (n >= sizeof a.sun_path)
		exit(2);
	memcpy(a.sun_path, path, n);
	if (abstract_ok && a.sun_path[0] == '@')
		a.sun_path[0] = 0;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&a,
			     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0)
		exit(2);
	close(fd);
}

int main(void)
{
	struct timespec t;
	char msg[256];
	clock_gettime(CLOCK_MONOTONIC, &t);
	const char *fds = getenv("LISTEN_FDS"), *lpid = getenv("LISTEN_PID");
	int ls;
	if (fds && lpid && !strcmp(fds, "1") && atoi(lpid) == getpid()) {
		ls = 3;
	} else {
		struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		const char *port = getenv("BENCH_PORT");
		int one = 1;
		in.sin_port = htons((unsigned short)atoi(port ? port : "0"));
		ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (ls < 0 || bind(ls, (struct sockaddr *)&in, sizeof in) < 0 || listen(ls, 128) < 0)
			return 1;
	}
	const char *sock = getenv("BENCH_SOCK"), *token = getenv("BENCH_TOKEN");
	if (!sock || !token)
		return 2;
	snprintf(msg, sizeof msg, "%s %lld %d %d %ld", token, t.tv_sec * 1000000000LL + t.tv_nsec,
		 (int)getpid(), (int)getsid(0), hwm_kb());
	send_to(sock, msg, 0);
	if (getenv("NOTIFY_SOCKET"))
		send_to(getenv("NOTIFY_SOCKET"), "READY=1", 1);
	static const char ok[] = "HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
	for (;;) {
		char req[1024];
		int c = accept(ls, NULL, NULL);
		if (c < 0)
			continue;
		(void)!read(c, req, sizeof req);
		(void)!write(c, ok, sizeof ok - 1);
		close(c);
	}
}
