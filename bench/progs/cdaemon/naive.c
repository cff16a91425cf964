//go:build benchnaive

/*
 * naive.c: the reference text's recipe, done naively in a constructor of
 * the benchmarked Go binary, before the Go runtime starts: fork and let
 * the parent exit, setsid, chdir("/"), umask(0), fork again and let the
 * parent exit, stdio to /dev/null. No checks, no pidfile, no status pipe:
 * the launcher exits at once. This is the honest floor for forking this
 * binary, which cdaemon's start-up is measured against (cdaemon / naive).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

long long bench_naive_entry; /* CLOCK_MONOTONIC at entry, ns */

__attribute__((constructor)) static void bench_naive_daemonize(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	bench_naive_entry = ts.tv_sec * 1000000000LL + ts.tv_nsec;

	if (fork() > 0)
		_exit(0);
	setsid();
	if (fork() > 0)
		_exit(0);
	(void)!chdir("/");
	umask(0);
	int fd = open("/dev/null", O_RDWR);
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
}
