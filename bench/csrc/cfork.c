/*
 * cfork.c: the fork floor. The same body as the Go programs (report
 * CLOCK_MONOTONIC at the start of the daemon's "main", then exit), in C,
 * run two ways from one binary:
 *
 *   cfork nofork   report at once: what starting a small C program costs
 *   cfork fork     first the classic double fork, as cdaemon does it:
 *                  pipe, fork; the child calls setsid and forks again and
 *                  exits; the grandchild (the daemon) changes to /, sets
 *                  the umask, points stdio at /dev/null, reports, then
 *                  tells the launcher it started. The launcher waits on the
 *                  pipe for that, reaps the middle process and exits 0 (as
 *                  cdaemon's default CDAEMON_WAIT=start).
 *
 * The difference between the two is what two forks cost a small process.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* VmHWM from /proc/self/status, in kB. */
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

/* The report: "<token> <t_main_ns> <pid> <sid> <vmhwm_kb>" to $BENCH_SOCK. */
static void report(struct timespec t)
{
	const char *sock = getenv("BENCH_SOCK"), *token = getenv("BENCH_TOKEN");
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char msg[256];
	if (!sock || !token || strlen(sock) >= sizeof a.sun_path)
		exit(2);
	strcpy(a.sun_path, sock);
	int n = snprintf(msg, sizeof msg, "%s %lld %d %d %ld", token,
			 t.tv_sec * 1000000000LL + t.tv_nsec, (int)getpid(), (int)getsid(0), hwm_kb());
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendto(fd, msg, n, 0, (struct sockaddr *)&a, sizeof a) != n)
		exit(2);
	close(fd);
}

int main(int argc, char **argv)
{
	struct timespec t;
	int p[2];

	if (argc > 1 && !strcmp(argv[1], "nofork")) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		report(t);
		return 0;
	}
	if (pipe2(p, O_CLOEXEC) < 0)
		return 71;
	pid_t middle = fork();
	if (middle < 0)
		return 71;
	if (middle > 0) { /* launcher */
		char c;
		close(p[1]);
		ssize_t r = read(p[0], &c, 1);
		waitpid(middle, NULL, 0);
		return r == 1 ? 0 : 1;
	}
	close(p[0]);
	if (setsid() < 0)
		_exit(71);
	pid_t d = fork();
	if (d < 0)
		_exit(71);
	if (d > 0)
		_exit(0);
	/* the daemon */
	int null = open("/dev/null", O_RDWR);
	if (chdir("/") < 0 || null < 0)
		_exit(71);
	umask(0);
	dup2(null, 0), dup2(null, 1), dup2(null, 2);
	if (null > 2)
		close(null);
	clock_gettime(CLOCK_MONOTONIC, &t); /* "main" */
	report(t);
	(void)!write(p[1], "S", 1);
	return 0;
}
