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
 * Protocol, stdin: argc, argv..., envc, env..., each NUL-terminated, one
 * request after another. stdout: one line per request,
 *   "<pid> <t_spawn_ns> <t_return_ns> <wait_status> <maxrss_kb>\n"
 * with CLOCK_MONOTONIC times. The program gets stdin /dev/null and this
 * process's stderr as stdout and stderr. If the first environment entry is
 * BENCH_SPAWN_SETSID=1, the program starts in a session of its own (as a
 * daemon's is after setsid, and with it, where the kernel has autogroups,
 * a scheduling group of its own).
 */
#define _GNU_SOURCE
#include <fcntl.h>
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

int main(void)
{
	char *argv[MAXV], *envp[MAXV];
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	for (;;) {
		int st = 0;
		struct rusage ru = { 0 };
		if (vec(argv) < 1 || vec(envp) < 0)
			return 0;
		long long t0 = now_ns();
		pid_t pid = vfork();
		if (pid == 0) {
			/* vfork child: shares our memory, so only syscalls here. */
			dup2(null, 0);
			dup2(2, 1);
			if (envp[0] && !strcmp(envp[0], "BENCH_SPAWN_SETSID=1"))
				setsid();
			execve(argv[0], argv, envp);
			_exit(127);
		}
		if (pid > 0)
			while (wait4(pid, &st, 0, &ru) < 0)
				;
		long long t1 = now_ns();
		printf("%d %lld %lld %d %ld\n", (int)pid, t0, t1, st, ru.ru_maxrss);
		fflush(stdout);
		for (int i = 0; argv[i]; i++)
			free(argv[i]);
		for (int i = 0; envp[i]; i++)
			free(envp[i]);
	}
}
