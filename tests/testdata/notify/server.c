/*
 * A small C server that speaks systemd's notify protocol (sd_notify(3))
 * with a raw socket, as servers that do not link libsystemd do. The
 * readiness tests run it under `cdaemon run`. Options, in order:
 *
 *   -status TEXT   send STATUS=TEXT at once
 *   -extend USEC   send EXTEND_TIMEOUT_USEC=USEC at once
 *   -child MSG     a child process sends MSG, then the server sends
 *                  STATUS=child-sent (so the launcher has read MSG)
 *   -send MSG      send MSG as it is (any bytes the shell can pass)
 *   -errno N       send ERRNO=N, then wait for SIGTERM
 *   -exit N        exit N before ready
 *   -mainpid       fork a child that becomes the main process: send
 *                  MAINPID=child and exit; the child goes on with the
 *                  options that follow once the server has sent it
 *   -wait-usr1     "load": send STATUS=loading, wait for SIGUSR1
 *   -port FILE     after loading, listen on 127.0.0.1:0 and write the
 *                  port to FILE, then send READY=1 and serve: each
 *                  connection gets "ok PID\n"
 *   -touch FILE    create FILE just before READY=1
 *   -later FILE    after READY=1, on each SIGUSR2 send STATUS=later and
 *                  WATCHDOG=1 and write to FILE how the send went
 *                  ("ok" or strerror)
 *
 * It exits 0 on SIGTERM.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t usr1, usr2, term;
static void on_usr1(int sig) { (void)sig; usr1 = 1; }
static void on_usr2(int sig) { (void)sig; usr2 = 1; }
static void on_term(int sig) { (void)sig; term = 1; }

/* Send msg to NOTIFY_SOCKET: 0, or -1 with errno. */
static int try_notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	size_t n = path ? strlen(path) : 0;
	if (!n || n >= sizeof un.sun_path)
		return errno = EINVAL, -1;
	memcpy(un.sun_path, path, n);
	if (un.sun_path[0] == '@')
		un.sun_path[0] = 0;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int r = (int)sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&un,
			    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
	int e = errno;
	close(fd);
	errno = e;
	return r < 0 ? -1 : 0;
}

static void notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	if (!path || !*path) {
		fprintf(stderr, "server: no NOTIFY_SOCKET\n");
		exit(9);
	}
	size_t n = strlen(path);
	if (n >= sizeof un.sun_path)
		exit(9);
	memcpy(un.sun_path, path, n);
	if (un.sun_path[0] == '@')
		un.sun_path[0] = 0;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&un,
			     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0) {
		fprintf(stderr, "server: notify %s: %s\n", msg, strerror(errno));
		exit(9);
	}
	close(fd);
}

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, strlen(text)) < 0)
		exit(8);
	close(fd);
}

int main(int argc, char **argv)
{
	const char *port_file = NULL, *touch = NULL, *later = NULL;
	char buf[256];
	sigset_t mask, old;

	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, &old);
	/* No SA_RESTART: SIGTERM must end a blocked accept. */
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_usr2;
	sigaction(SIGUSR2, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
		if (!strcmp(a, "-status")) {
			snprintf(buf, sizeof buf, "STATUS=%s", v);
			notify(buf), i++;
		} else if (!strcmp(a, "-extend")) {
			snprintf(buf, sizeof buf, "EXTEND_TIMEOUT_USEC=%s", v);
			notify(buf), i++;
		} else if (!strcmp(a, "-child")) {
			pid_t pid = fork();
			if (pid == 0) {
				notify(v);
				_exit(0);
			}
			waitpid(pid, NULL, 0);
			notify("STATUS=child-sent"), i++;
		} else if (!strcmp(a, "-send")) {
			notify(v), i++;
		} else if (!strcmp(a, "-errno")) {
			snprintf(buf, sizeof buf, "ERRNO=%s", v);
			notify(buf), i++;
			while (!term)
				pause();
			return 0;
		} else if (!strcmp(a, "-exit")) {
			return atoi(v);
		} else if (!strcmp(a, "-mainpid")) {
			int p[2];
			if (pipe(p) < 0)
				return 7;
			pid_t pid = fork();
			if (pid > 0) {
				snprintf(buf, sizeof buf, "MAINPID=%d", (int)pid);
				notify(buf);
				_exit(0); /* closes p[1]: the child goes on */
			}
			if (pid < 0)
				return 7;
			close(p[1]);
			while (read(p[0], buf, sizeof buf) > 0)
				;
			close(p[0]);
		} else if (!strcmp(a, "-wait-usr1")) {
			notify("STATUS=loading");
			while (!usr1)
				sigsuspend(&old);
		} else if (!strcmp(a, "-port")) {
			port_file = v, i++;
		} else if (!strcmp(a, "-touch")) {
			touch = v, i++;
		} else if (!strcmp(a, "-later")) {
			later = v, i++;
		} else {
			fprintf(stderr, "server: unknown option %s\n", a);
			return 2;
		}
	}

	int ls = -1;
	if (port_file) {
		struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t len = sizeof in;
		ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (ls < 0 || bind(ls, (struct sockaddr *)&in, sizeof in) < 0 || listen(ls, 64) < 0 ||
		    getsockname(ls, (struct sockaddr *)&in, &len) < 0)
			return 6;
		snprintf(buf, sizeof buf, "%d", ntohs(in.sin_port));
		write_file(port_file, buf);
	}
	if (touch)
		write_file(touch, "");
	notify("READY=1");
	sigprocmask(SIG_SETMASK, &old, NULL);
	while (!term) {
		if (usr2 && later) {
			usr2 = 0;
			write_file(later, try_notify("STATUS=later\nWATCHDOG=1") < 0 ? strerror(errno) : "ok");
		}
		if (ls < 0) {
			pause();
			continue;
		}
		int c = accept(ls, NULL, NULL);
		if (c < 0)
			continue;
		snprintf(buf, sizeof buf, "ok %d\n", (int)getpid());
		if (write(c, buf, strlen(buf)) < 0) {
		}
		close(c);
	}
	return 0;
}
