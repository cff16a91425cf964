/*
 * exec.c: `cdaemon run [--] PROGRAM [ARGS...]`, the daemon that is not
 * this Go program. Owns the hook a program declares to run another one
 * (cdaemon_exec_args, internal.h), finding PROGRAM in PATH as env(1) and
 * execvp do, and the exec itself: PROGRAM's environment (NOTIFY_SOCKET,
 * LISTEN_PID with the pid after exec, LISTEN_FDS, LISTEN_FDNAMES) and the
 * descriptors it keeps across execve (the listeners, the pidfile's locked
 * descriptor).
 *
 * Runs in: the launcher (exec_program_args, exec_check, before anything
 * is opened, as the starting user: a PROGRAM that cannot be found or run
 * stops the start before it creates anything); the daemon and a
 * foreground run (exec_program), last, after the privilege drop, the
 * signal reset and the environment's strip, when the process is what the
 * Go program would have started as. After the fork: system calls and
 * snprintf into fixed buffers only; the environment array is built on the
 * stack.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

char **exec_argv; /* PROGRAM and its ARGS, or NULL: this run execs nothing */

/* Ask the program's hook; called once, before read_config. */
void exec_program_args(int argc, char **argv)
{
	int i = cdaemon_exec_args ? cdaemon_exec_args(argc, argv) : 0;
	exec_argv = i > 0 && i < argc ? argv + i : NULL;
}

/*
 * Find name as execvp does: a name with a '/' is used as it is, any
 * other is looked for in each PATH directory in turn (an empty entry is
 * the working directory; no PATH: /bin:/usr/bin). Returns 0 with the path
 * in out, or the shell's status with *err: 127 not found (ENOENT), 126
 * found but not executable or a directory (EACCES, EISDIR).
 */
int find_program(const char *name, char *out, size_t size, int *err)
{
	struct stat st;
	if (strchr(name, '/')) {
		if (snprintf(out, size, "%s", name) >= (int)size)
			return *err = ENAMETOOLONG, 127;
		if (stat(name, &st) < 0)
			return *err = errno, errno == ENOENT || errno == ENOTDIR ? 127 : 126;
		if (S_ISDIR(st.st_mode))
			return *err = EISDIR, 126;
		if (access(name, X_OK) < 0)
			return *err = errno, 126;
		return 0;
	}
	const char *path = getenv("PATH");
	int found = 0;
	for (const char *p = path ? path : "/bin:/usr/bin";;) {
		const char *colon = strchr(p, ':');
		size_t n = colon ? (size_t)(colon - p) : strlen(p);
		int len = n ? snprintf(out, size, "%.*s/%s", (int)n, p, name) : snprintf(out, size, "%s", name);
		if (len > 0 && len < (int)size && stat(out, &st) == 0 && !S_ISDIR(st.st_mode)) {
			if (access(out, X_OK) == 0)
				return 0;
			found = 1; /* execvp goes on, and reports EACCES if nothing else is found */
		}
		if (!colon)
			break;
		p = colon + 1;
	}
	out[0] = 0;
	return found ? (*err = EACCES, 126) : (*err = ENOENT, 127);
}

static char program_path[PATH_MAX];

/* In the launcher, before anything is opened: a PROGRAM that cannot be
 * run stops the start here, with the shell's status and nothing created.
 * Under CDAEMON_CHROOT PROGRAM is looked for inside the new root, by the
 * daemon. The path found is made absolute: the daemon changes directory. */
void exec_check(const struct config *c)
{
	int err;
	if (!exec_argv || c->root)
		return;
	int status = find_program(exec_argv[0], program_path, sizeof program_path, &err);
	if (status == 127 && !strchr(exec_argv[0], '/'))
		bail(127, "run: %s: not found in PATH", quote(exec_argv[0]));
	if (status)
		bail(status, "run: %s: %s", quote(exec_argv[0]), strerror(err));
	if (program_path[0] != '/') {
		char rel[PATH_MAX];
		snprintf(rel, sizeof rel, "%s", program_path);
		absolute(program_path, sizeof program_path, rel);
	}
}

/* Clear FD_CLOEXEC on fd: it is PROGRAM's too. */
static void keep_on_exec(int fd)
{
	int fl = fcntl(fd, F_GETFD);
	if (fl >= 0)
		fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
}

static int replaced(const char *entry)
{
	static const char *const ours[] = { "NOTIFY_SOCKET=", "LISTEN_PID=", "LISTEN_FDS=",
					    "LISTEN_FDNAMES=" };
	for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++)
		if (!strncmp(entry, ours[i], strlen(ours[i])))
			return 1;
	return 0;
}

/*
 * The last step of a daemon (or foreground run) that runs PROGRAM: exec
 * it, as the process the Go program would have become. The launcher
 * learns of the exec by CDAEMON_MSG_EXEC and then the status pipe's EOF
 * (it is close-on-exec); a failure goes to it through bail: 127 or 126
 * and why.
 */
void exec_program(void)
{
	static char notify[sizeof cdaemon_state.notify_socket + 16], pid[32], nfds[32];
	static char names[MAX_LISTEN * 256 + 32];
	int err, status, n = 0, ours = cdaemon_state.notify_socket[0] || cdaemon_listeners.n;
	if (!exec_argv)
		return;
	if (!program_path[0] &&
	    (status = find_program(exec_argv[0], program_path, sizeof program_path, &err)))
		bail(status, "run: %s: %s", quote(exec_argv[0]), strerror(err));

	size_t count = 0;
	for (char **e = environ; *e; e++)
		count++;
	char *envp[count + 5];
	for (char **e = environ; *e; e++)
		if (**e && !is_ours(*e) && !(ours && replaced(*e)))
			envp[n++] = *e;
	if (cdaemon_state.notify_socket[0]) {
		snprintf(notify, sizeof notify, "NOTIFY_SOCKET=%s", cdaemon_state.notify_socket);
		envp[n++] = notify;
	} else if (ours) { /* a supervisor's, if any, is passed on */
		for (char **e = environ; *e; e++)
			if (!strncmp(*e, "NOTIFY_SOCKET=", 14))
				envp[n++] = *e;
	}
	if (cdaemon_listeners.n) {
		size_t len = (size_t)snprintf(names, sizeof names, "LISTEN_FDNAMES=");
		for (int i = 0; i < cdaemon_listeners.n; i++) {
			/* Listeners' names, as listen.go's fdName makes them. */
			const char *a = cdaemon_listeners.addr[i];
			if (i)
				names[len++] = ':';
			for (size_t j = 0; a[j] && j < 255 && len < sizeof names - 2; j++)
				names[len++] = a[j] <= ' ' || a[j] >= 0x7f || a[j] == ':' ? '-' : a[j];
			names[len] = 0;
			keep_on_exec(3 + i);
		}
		snprintf(pid, sizeof pid, "LISTEN_PID=%d", (int)getpid());
		snprintf(nfds, sizeof nfds, "LISTEN_FDS=%d", cdaemon_listeners.n);
		envp[n++] = pid;
		envp[n++] = nfds;
		envp[n++] = names;
	}
	envp[n] = NULL;
	if (pidfile.fd >= 0)
		keep_on_exec(pidfile.fd); /* the lock, held for PROGRAM's life */
	if (status_fd >= 0 && send_msg(status_fd, CDAEMON_MSG_EXEC, 0, NULL) < 0)
		bail(CDAEMON_EX_OSERR, "status pipe: cannot report the exec: %s", strerror(errno));
	execve(program_path, exec_argv, envp);
	err = errno;
	bail(err == ENOENT || err == ENOTDIR ? 127 : 126, "run: %s: %s", quote(program_path), strerror(err));
}
