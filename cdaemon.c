/*
 * cdaemon.c: make the program a daemon before the Go runtime starts.
 *
 * A constructor runs from the C start-up code while the process is still
 * single-threaded, so fork() is safe: the Go runtime has not started a
 * thread yet, and it boots only once, in the daemon. The steps happen in
 * the order the constructor at the end of this file calls them; each
 * step's code is in the file named beside it:
 *
 *   launcher   0. a library in someone else's process? do nothing at all
 *                                                      checks.c
 *              1. refuse CDAEMON_* in a secure-execution process (exit 77)
 *                                                      checks.c
 *              2. read and validate CDAEMON_*        (bad value: exit 64)
 *                                                      config.c
 *              3. decide whether to daemonize         (auto: tests, supervisors)
 *                                                      checks.c
 *              4. refuse unsafe states                (threads: exit 70);
 *                 say so if go run built the program   checks.c
 *             4a. look the user up, check privileges, (unknown: 67, not
 *                 set limits, nice and oom score       allowed: 77)
 *                                                      privileges.c
 *              5. open stdio targets and the pidfile  (exit 73, locked: 75)
 *                                                      files.c, pidfile.c
 *             5a. bind and listen at fds 3, 4, ...    (in use: 75, else 73)
 *                                                      sockets.c
 *             5b. CDAEMON_WAIT=ready: the notify socket (NOTIFY_SOCKET)
 *                                                      readiness.c
 *              6. fork; wait on the status pipe       (exit with the outcome)
 *                                                      launcher.c
 *   middle     7. setsid, fork again, write the pidfile, report the pid
 *                                                      daemon.c
 *   daemon     8. stdio, fds, signals, environment;    daemon.c
 *             8a. chroot, groups, gid, uid, capabilities; return to start Go
 *                                                      privileges.c
 *              9. `cdaemon run`: exec PROGRAM instead   (127/126: checked
 *                 (PATH searched in step 3's place)     in the launcher)
 *                                                      exec.c
 *
 * A foreground process does 4a, 5a (and its pidfile), 8a and 9 on itself.
 *
 * Everything up to the first fork fails synchronously on the user's
 * terminal; after it, failures travel back through the status pipe. Both
 * go through bail() (report.c), which knows which side of the fork it is
 * on; what a failed start created is removed as created.c says. What the
 * files share is declared in internal.h; cdaemon.h is the contract with
 * Go (preinit.go).
 *
 * The daemon is made by fork (libc's _Fork), so that glibc's per-thread
 * state the Go runtime relies on is right in it (the tid in the thread
 * control block, its robust list). The middle, where it can be, is a
 * clone(CLONE_VM | CLONE_VFORK) on a stack of its own that shares the
 * launcher's memory: then only the daemon's fork copies page tables. The
 * kernel drops the rseq registration of a CLONE_VM child, and the daemon
 * would inherit the loss: it registers glibc's area again. daemon.c says
 * what may be called in that middle, and when a plain fork() is used
 * instead.
 *
 * No allocation: fixed buffers, no stdio except the final fflush.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

struct cdaemon_state cdaemon_state = { .status_fd = -1 };
struct cdaemon_listeners cdaemon_listeners;

/* ---------------------------------------------------------------------
 * The constructor. Priority 101 runs it before the main program's other
 * constructors, so whatever they start happens once, in the daemon.
 *
 * Built with -DCDAEMON_NO_CONSTRUCTOR (CGO_CFLAGS), it is not one: the
 * tests use that to check package init refuses a binary whose constructor
 * never ran, as -linkmode=internal can make, and fuzzers call the steps.
 */

#ifdef CDAEMON_NO_CONSTRUCTOR
#define CDAEMON_CONSTRUCTOR __attribute__((unused))
#else
#define CDAEMON_CONSTRUCTOR __attribute__((constructor(101)))
#endif

/*
 * Step 3 decided on the foreground: a pidfile still means one instance.
 * It holds this process's pid, locked for its life, under the same rules.
 * The process is the program, still single-threaded: it gets the same
 * listeners, limits and drop a daemon would, in the same order, so one
 * configuration serves both (under a service manager that changes the
 * user itself, such as systemd's User=, leave CDAEMON_USER unset). Its
 * stdio, directory (but inside a CDAEMON_CHROOT, which needs one) and
 * umask are left alone.
 */
static void stay_in_foreground(const struct config *c)
{
	reserve_listen_fds(c, 1);
	resolve_ids(c);
	check_privileges(c);
	set_limits(c);
	int root = c->root ? open_root(c) : -1;
	if (c->pidfile) {
		mode_t old = umask(0);
		pidfile_open(c->pidfile, -1);
		if (pidfile_write(getpid()) < 0)
			bail(CDAEMON_EX_CANTCREAT, "CDAEMON_PIDFILE: cannot write %s: %s",
			     quote(c->pidfile), strerror(errno));
		umask(old);
	}
	bind_listeners(c); /* relative paths: before changing directory */
	if (root >= 0 && fchdir(root) < 0)
		bail(CDAEMON_EX_CANTCREAT, "CDAEMON_CHROOT: cannot change to %s: %s", quote(c->root),
		     strerror(errno));
	if (root >= 0)
		close(root);
	drop_privileges(c);
	settle_created(); /* after the drop: if it fails, bail still removes the files */
	pidfile_settle();
}

/* Steps 0 to 3, in the launcher: 1 to daemonize; 0 to return into the
 * program at once (in someone else's process, or in the foreground once
 * stay_in_foreground set it up). */
static int launcher_decides(int argc, char **argv, struct config *c)
{
	struct cdaemon_state *s = &cdaemon_state;
	int declined;

	clock_gettime(CLOCK_MONOTONIC, &s->entry);
	s->ran = 1;
	s->launcher_pid = getpid();
	const char *reason = library_host(); /* 0 */
	if (reason) {
		snprintf(s->reason, sizeof s->reason, "%s", reason);
		return 0;
	}
	read_args(argc, argv);
	exec_program_args(argc, argv); /* `cdaemon run`: before read_config, for its default wait */
	/* Info().Dir, in the foreground too: programs resolve relative
	 * paths against it whether or not they daemonized. */
	if (!getcwd(s->dir, sizeof s->dir))
		s->dir[0] = 0;

	refuse_secure_environment(); /* 1 */
	read_config(c);              /* 2 */
	check_listen_fds(c);
	s->mode = c->mode;
	s->wait = c->wait;
	record_paths(c);
	if ((reason = skip_reason(c, &declined))) { /* 3 */
		snprintf(s->reason, sizeof s->reason, "%s", reason);
		s->stdout_path[0] = s->stderr_path[0] = 0; /* stdio is left alone */
		if (declined) {
			s->pidfile[0] = 0;
			exec_argv = NULL;
			return 0;
		}
		exec_check(c); /* 127 or 126 before anything is opened */
		stay_in_foreground(c);
		exec_program(); /* returns only if this run execs nothing */
		return 0;
	}
	exec_check(c);
	return 1;
}

/* Steps 4a, 5 and 5a: who the daemon will be is settled, everything it
 * keeps is opened (its listeners too), and the launcher is in
 * CDAEMON_CHDIR (or CDAEMON_CHROOT) with CDAEMON_UMASK set. */
static void open_everything(const struct config *c, struct files *f, sigset_t *sigs)
{
	fill_std_fds();
	reserve_listen_fds(c, 0);
	resolve_ids(c); /* 4a */
	check_privileges(c);
	set_limits(c);
	/* From here on the start creates files: a stop signal is kept for
	 * refuse_if_interrupted or the launcher's signalfd, not fatal. */
	prepare_signals(sigs);
	umask(0);
	/* CDAEMON_REPLACE: the running daemon's lock and listeners, before
	 * anything is created (a refusal changes nothing). */
	char lockpath[PATH_MAX + 8];
	snprintf(lockpath, sizeof lockpath, "%s.lock", c->pidfile ? c->pidfile : "");
	int taken = c->pidfile && c->replace == 1 ? replace_take(c, lockpath) : -1;
	open_stdio(c, f);
	/* With CDAEMON_CHROOT the launcher goes into the new root; the
	 * daemon chroots there and enters CDAEMON_CHDIR (8a). */
	int dir = c->root ? open_root(c) : open_dir(c);
	if (c->pidfile)
		pidfile_open(c->pidfile, taken);
	bind_listeners(c); /* 5a: after the pidfile, whose lock names a running daemon */
	if (fchdir(dir) < 0)
		bail(CDAEMON_EX_CANTCREAT, "%s: cannot change to %s: %s",
		     c->root ? "CDAEMON_CHROOT" : "CDAEMON_CHDIR", quote(c->root ? c->root : c->dir),
		     strerror(errno));
	close(dir);
	umask(c->umask);
}

/* Step 6: make the middle process. The launcher waits on the status pipe
 * and never returns (launcher.c). With a forked middle, the middle
 * returns 0 here, and from then on bail reports through the pipe. With a
 * middle that shares our memory (daemon.c), the middle runs step 7 on its
 * own stack while the launcher sleeps in clone, and the daemon it forks
 * comes back into this frame (daemon_jmp) and returns 1. */
static int fork_middle(const struct config *c, const sigset_t *sigs)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		bail(CDAEMON_EX_OSERR, "pipe: %s", strerror(errno));
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	refuse_if_interrupted(sigs);
	fflush(NULL); /* buffered output must not be written twice */
	if (middle_can_share()) {
		if (__builtin_setjmp(daemon_jmp) == 0) {
			pid_t middle = clone_middle(sigs, pipefd); /* once it has exited */
			if (middle < 0)
				bail(CDAEMON_EX_OSERR, "fork: cannot make the middle process (clone): %s", strerror(errno));
			close(pipefd[1]);
			run_launcher(c, sigs, middle, pipefd[0]);
		}
		restore_rseq(); /* the daemon: first, before anything may use rseq */
		return 1;
	}
	pid_t middle = fork();
	if (middle < 0)
		bail(CDAEMON_EX_OSERR, "fork: %s", strerror(errno));
	if (middle > 0) {
		close(pipefd[1]);
		run_launcher(c, sigs, middle, pipefd[0]);
	}

	forked = 1;
	status_fd = pipefd[1];
	close(pipefd[0]);
	return 0;
}

CDAEMON_CONSTRUCTOR static void cdaemon_constructor(int argc, char **argv)
{
	struct config c;
	struct files f;
	sigset_t sigs;

	if (!launcher_decides(argc, argv, &c)) /* 0 to 3 */
		return;
	check_single_thread();          /* 4 */
	warn_go_run();
	open_everything(&c, &f, &sigs); /* 4a, 5, 5a */
	notify_setup(&c);               /* 5b: CDAEMON_WAIT=ready's socket */
	if (!fork_middle(&c, &sigs))    /* 6: returns in the middle, or in the daemon */
		run_middle(&sigs);      /* 7: returns in the daemon only */
	become_daemon(&c, &f);          /* 8, 8a */
	exec_program();                 /* 9: `cdaemon run`'s PROGRAM; returns if none */
}
