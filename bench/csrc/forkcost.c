/*
 * forkcost.c: what creating a process costs as the parent's resident
 * memory grows. Run as "forkcost MB": it maps MB MiB of private anonymous
 * memory and writes every page (resident and dirty, as a heap is), then
 * measures, once each and in a random order:
 *
 *   fork     fork() until it returns in the parent: copying the page tables
 *            and marking every page copy-on-write, which grows with the
 *            resident set;
 *   writes   the child's first writes: one byte into each page of a 1 MiB
 *            buffer, each a copy-on-write fault (timed in the child);
 *   vfork    vfork() until the parent resumes, the child having called
 *            _exit at once: no page tables copied;
 *   spawn    posix_spawn("/bin/true") until it returns (glibc uses
 *            CLONE_VM|CLONE_VFORK: it returns once the child has exec'd).
 *
 * and reports "<token> <t_ns> <pid> <sid> <vmhwm_kb> <fork_ns> <writes_ns>
 * <vfork_ns> <spawn_ns> <vmrss_kb>" to $BENCH_SOCK, as the other programs
 * report. Transparent huge pages follow the system's setting (with the
 * usual "madvise", these mappings get 4 KiB pages).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define BUF (1 << 20)
static char buf[BUF];

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* A field of /proc/self/status, in kB. */
static long status_kb(const char *name)
{
	char s[4096];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, s, sizeof s - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return 0;
	s[n] = 0;
	char *p = strstr(s, name);
	return p ? strtol(p + strlen(name), NULL, 10) : 0;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static long long time_fork(long long *writes)
{
	int p[2];
	if (pipe(p) < 0)
		die("pipe");
	long long t0 = now_ns();
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		long long w0 = now_ns();
		for (int i = 0; i < BUF; i += 4096)
			buf[i]++;
		long long w = now_ns() - w0;
		(void)!write(p[1], &w, sizeof w);
		_exit(0);
	}
	long long t = now_ns() - t0;
	close(p[1]);
	if (read(p[0], writes, sizeof *writes) != sizeof *writes)
		die("read");
	close(p[0]);
	waitpid(pid, NULL, 0);
	return t;
}

static long long time_vfork(void)
{
	long long t0 = now_ns();
	pid_t pid = vfork();
	if (pid == 0)
		_exit(0);
	long long t = now_ns() - t0;
	if (pid < 0)
		die("vfork");
	waitpid(pid, NULL, 0);
	return t;
}

static long long time_spawn(void)
{
	char *argv[] = { "true", NULL };
	pid_t pid;
	long long t0 = now_ns();
	if (posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ) != 0)
		die("posix_spawn");
	long long t = now_ns() - t0;
	waitpid(pid, NULL, 0);
	return t;
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	size_t len = (size_t)atol(argv[1]) << 20;
	if (len) {
		char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			die("mmap");
		for (size_t i = 0; i < len; i += 4096)
			m[i] = 1;
	}
	memset(buf, 1, BUF);
	long rss = status_kb("VmRSS:");

	long long t[3] = { 0 }, writes = 0;
	int order[3] = { 0, 1, 2 };
	srand((unsigned)now_ns());
	for (int i = 2; i > 0; i--) {
		int j = rand() % (i + 1), x = order[i];
		order[i] = order[j], order[j] = x;
	}
	for (int i = 0; i < 3; i++)
		switch (order[i]) {
		case 0: t[0] = time_fork(&writes); break;
		case 1: t[1] = time_vfork(); break;
		case 2: t[2] = time_spawn(); break;
		}

	const char *sock = getenv("BENCH_SOCK"), *token = getenv("BENCH_TOKEN");
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char msg[256];
	if (!sock || !token || strlen(sock) >= sizeof a.sun_path)
		return 2;
	strcpy(a.sun_path, sock);
	int n = snprintf(msg, sizeof msg, "%s %lld %d %d %ld %lld %lld %lld %lld %ld", token, now_ns(),
			 (int)getpid(), (int)getsid(0), status_kb("VmHWM:"), t[0], writes, t[1], t[2], rss);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendto(fd, msg, n, 0, (struct sockaddr *)&a, sizeof a) != n)
		return 2;
	return 0;
}
