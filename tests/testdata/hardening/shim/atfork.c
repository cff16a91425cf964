/*
 * atfork.c: an LD_PRELOAD shim whose constructor, which runs before the
 * main program's, registers fork handlers, as a malloc replacement or a
 * tracing library does. It appends "loaded PID" to the file
 * $SHIM_ATFORK_LOG when a process loads it, and each handler that runs a
 * line "prepare PID", "parent PID" or "child PID". fork()
 * runs them; _Fork and clone do not, and a middle process that shares
 * the launcher's memory must not run them: they take locks and write
 * state there (daemon.c).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void note(const char *which)
{
	const char *path = getenv("SHIM_ATFORK_LOG");
	char line[64];
	if (!path)
		return;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	int n = snprintf(line, sizeof line, "%s %d\n", which, (int)getpid());
	(void)!write(fd, line, (size_t)n);
	close(fd);
}

static void prepare(void) { note("prepare"); }
static void parent(void) { note("parent"); }
static void child(void) { note("child"); }

__attribute__((constructor)) static void register_handlers(void)
{
	note("loaded");
	pthread_atfork(prepare, parent, child);
}
