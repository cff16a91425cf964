/*
 * launcher.c: the launcher's wait and the status protocol.
 *
 * Owns step 6 after the fork: the status pipe's messages (send_msg on the
 * daemon's side, parse_msg on the launcher's, format in cdaemon.h), the
 * stop signals (blocked before the fork, read through a signalfd), the
 * wait for the daemon's wait point within CDAEMON_TIMEOUT, and a failed
 * start's end: every process of it stopped and reaped, what it created
 * removed, the launcher's exit status.
 *
 * With CDAEMON_WAIT=ready it also listens on the notify socket
 * (readiness.c) and acts on what the main process says there: READY=1,
 * STATUS=, ERRNO=, EXIT_STATUS=, STOPPING=1, EXTEND_TIMEOUT_USEC=,
 * MAINPID=. After `cdaemon run`'s exec (CDAEMON_MSG_EXEC, then the pipe's
 * EOF) it watches the main process through a pidfd instead of the pipe.
 *
 * Runs in: the launcher, before the fork (prepare_signals,
 * refuse_if_interrupted) and after it (run_launcher, which never returns:
 * the Go runtime never starts here), as the starting user; send_msg also
 * in the middle and the daemon. The launcher trusts no byte from the
 * pipe nor the socket: the daemon may be less privileged, and anything
 * in it may write.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef W_EXITCODE /* glibc has it; musl does not */
#define W_EXITCODE(ret, sig) ((ret) << 8 | (sig))
#endif

/* How long a stopped daemon gets between SIGTERM and SIGKILL. */
#define GRACE_MS 2000

#include "internal.h"

/* ---------------------------------------------------------------------
 * Status pipe messages (format in cdaemon.h). The launcher trusts no byte
 * of them: the daemon may run with fewer privileges than the launcher,
 * and whatever runs in it may write to the pipe.
 */

int send_msg(int fd, int type, int status, const char *payload)
{
	unsigned char buf[CDAEMON_MSG_HEADER + CDAEMON_MSG_MAX];
	size_t n = payload ? strlen(payload) : 0;
	if (n > CDAEMON_MSG_MAX)
		n = CDAEMON_MSG_MAX;
	buf[0] = type;
	buf[1] = status;
	buf[2] = n & 0xff;
	buf[3] = n >> 8;
	if (n) /* payload may be NULL: then there is nothing to copy */
		memcpy(buf + CDAEMON_MSG_HEADER, payload, n);
	return write(fd, buf, CDAEMON_MSG_HEADER + n) < 0 ? -1 : 0;
}

struct msg {
	int type, status;
	size_t len;
	const char *text; /* len bytes, not NUL-terminated */
	long pid;         /* CDAEMON_MSG_PID's payload */
};

/*
 * Parse the message at the front of buf[0..have). Returns its whole
 * length; 0 if more bytes are needed; -1 with *why if it is malformed
 * (an unknown type, a length over CDAEMON_MSG_MAX, a status or payload a
 * message of its type does not have, a pid that is not one).
 */
static long parse_msg(const unsigned char *buf, size_t have, struct msg *m, const char **why)
{
	if (have < CDAEMON_MSG_HEADER)
		return 0;
	m->type = buf[0];
	m->status = buf[1];
	m->len = buf[2] | (size_t)buf[3] << 8;
	m->text = (const char *)buf + CDAEMON_MSG_HEADER;
	m->pid = 0;
	if (m->type != CDAEMON_MSG_PID && m->type != CDAEMON_MSG_STARTED &&
	    m->type != CDAEMON_MSG_READY && m->type != CDAEMON_MSG_FAILED &&
	    m->type != CDAEMON_MSG_EXEC)
		return *why = "a message of unknown type", -1;
	if (m->len > CDAEMON_MSG_MAX)
		return *why = "a message longer than the protocol allows", -1;
	if (m->type != CDAEMON_MSG_FAILED && m->status)
		return *why = "a status on a message that has none", -1;
	if ((m->type == CDAEMON_MSG_STARTED || m->type == CDAEMON_MSG_READY ||
	     m->type == CDAEMON_MSG_EXEC) && m->len)
		return *why = "text on a message that has none", -1;
	if (m->type == CDAEMON_MSG_PID && (m->len < 1 || m->len > 10))
		return *why = "a pid message without a pid", -1;
	if (have < CDAEMON_MSG_HEADER + m->len)
		return 0;
	for (size_t i = 0; m->type == CDAEMON_MSG_PID && i < m->len; i++) {
		if (!isdigit((unsigned char)m->text[i]))
			return *why = "a pid message without a pid", -1;
		m->pid = m->pid * 10 + (m->text[i] - '0');
	}
	if (m->type == CDAEMON_MSG_PID && (m->pid < 2 || m->pid > INT_MAX))
		return *why = "a pid message without a pid", -1;
	return CDAEMON_MSG_HEADER + m->len;
}

/* ---------------------------------------------------------------------
 * 6. The launcher: wait on the status pipe until the daemon reaches the
 * wait point, then exit 0. It never returns into the program: the Go
 * runtime never starts here.
 *
 * The launcher is a child subreaper, so when the middle process exits the
 * daemon is re-parented to it, and waitpid sees how the daemon ended if it
 * dies before the wait point. Once the launcher exits, the daemon passes
 * to init (or the nearest subreaper above). While it waits, SIGINT,
 * SIGTERM, SIGHUP and SIGQUIT stop the start: they arrive through a
 * signalfd (blocked before the fork, so none is lost in between).
 */

struct launcher {
	const struct config *c;
	pid_t middle, daemon; /* daemon: -1 until the middle reports it */
	int reached;          /* the wait point the daemon reported */
	long long deadline;   /* CDAEMON_TIMEOUT, as EXTEND_TIMEOUT_USEC= moved it */
	int execd;            /* the daemon is about to exec `cdaemon run`'s PROGRAM */
	int piped;            /* the status pipe is open (till EOF after the exec or a MAINPID=) */
	pid_t main;           /* whose notifications count: the daemon, or its MAINPID= */
	int mainfd;           /* a pidfd on main once the pipe no longer tells its end, or -1 */
	int notes;            /* notes printed about ignored datagrams */
	char status[NOTIFY_MAX]; /* the last STATUS= shown */
	size_t status_len;
};

static const int stop_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

/* Before the fork: block the stop signals the launcher will read (one
 * inherited as ignored, as nohup and background jobs have it, stays
 * ignored), and let SIGCHLD be seen: an inherited SIG_IGN makes the
 * kernel reap children itself, and every early death would read as
 * "exited 0". The children undo both: the daemon resets all signals. */
void prepare_signals(sigset_t *set)
{
	struct sigaction sa, dfl = { .sa_handler = SIG_DFL };
	sigemptyset(set);
	for (size_t i = 0; i < sizeof stop_signals / sizeof stop_signals[0]; i++)
		if (sigaction(stop_signals[i], NULL, &sa) == 0 && sa.sa_handler != SIG_IGN)
			sigaddset(set, stop_signals[i]);
	sigprocmask(SIG_BLOCK, set, NULL);
	sigaction(SIGCHLD, &dfl, NULL);
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/*
 * Wait until child pid has ended, without reaping it (WNOWAIT): while it
 * is an unreaped zombie its pid, and so its process group id, cannot be
 * reused, which keeps kill(-group) aimed at our processes. Returns 1 and
 * the wait status, or 0 at the deadline.
 */
static int wait_exit(pid_t pid, long long deadline, int *status)
{
	for (;;) {
		siginfo_t si;
		si.si_pid = 0;
		if (waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 && errno != EINTR) {
			*status = 0; /* not our child (any more): nothing to wait for */
			return 1;
		}
		if (si.si_pid == pid) {
			*status = si.si_code == CLD_EXITED ? W_EXITCODE(si.si_status, 0)
							   : W_EXITCODE(0, si.si_status);
			return 1;
		}
		if (now_ms() >= deadline)
			return 0;
		usleep(1000);
	}
}

/*
 * Signal the launcher's children outside its session: the middle once it
 * called setsid, and the daemon and whatever it started, re-parented to
 * the launcher (their subreaper) as their parents died. kill(-group)
 * misses those that left the daemon's process group or session (a child
 * started with Setsid, a daemon that called setsid itself). A child keeps
 * its pid until the launcher reaps it, so none of these is a stranger.
 * Children in the launcher's own session are left alone: a shell that
 * exec'ed the program may have started them (the middle before its setsid
 * is killed by pid). Returns how many were signalled.
 */
struct kin {
	long self, sid;
	int sig, n;
};

static int signal_child(long pid, void *arg)
{
	struct kin *k = arg;
	char path[64], stat[512], *end;
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	const char *p = strrchr(read_small(path, stat, sizeof stat), ')');
	/* ") S PPID PGRP SID ...": the command name may hold anything. */
	if (!p || !p[1] || !p[2])
		return 0;
	long ppid = strtol(p + 3, &end, 10);
	strtol(end, &end, 10);
	long sid = strtol(end, &end, 10);
	if (ppid == k->self && sid != k->sid && kill((pid_t)pid, k->sig) == 0)
		k->n++;
	return 0;
}

static int signal_children(int sig)
{
	struct kin k = { getpid(), getsid(0), sig, 0 };
	each_number("/proc", signal_child, &k);
	return k.n;
}

/*
 * The start failed: make sure nothing of it is left, then exit. A daemon
 * that is ending by itself (it sent Fail) gets GRACE_MS to do so; one
 * that is not gets SIGTERM at once; then GRACE_MS more, then SIGKILL. Its
 * process group (the session the middle made, whose id is the middle's
 * pid) is killed last, for anything the daemon started; the middle is
 * reaped only after that, so the group id cannot have been reused.
 */
static _Noreturn void launcher_fail(struct launcher *l, int status, int ending)
{
	pid_t group = l->middle;
	int st;
	if (l->daemon > 0 && !wait_exit(l->daemon, now_ms() + (ending ? GRACE_MS : 0), &st)) {
		kill(-group, SIGTERM);
		signal_children(SIGTERM);
		if (!wait_exit(l->daemon, now_ms() + GRACE_MS, &st))
			kill(-group, SIGKILL);
	}
	if (l->mainfd >= 0) /* a MAINPID= that left the group */
		syscall(SYS_pidfd_send_signal, l->mainfd, SIGKILL, NULL, 0);
	kill(l->middle, SIGKILL); /* perhaps before its setsid: not in the group yet */
	kill(-group, SIGKILL);
	signal_children(SIGKILL);
	/* Reap the middle, the daemon and the daemon's children, which were
	 * re-parented to us (we are their subreaper). */
	for (long long end = now_ms() + 10 * GRACE_MS; now_ms() < end;) {
		pid_t pid = waitpid(-1, &st, WNOHANG);
		if (pid < 0 && errno != EINTR)
			break; /* ECHILD: none left */
		if (pid == 0 && signal_children(SIGKILL))
			usleep(10000); /* orphans keep coming to us as their parents die */
		else if (pid == 0)
			usleep(1000);
	}
	replace_note();
	remove_created(1); /* the launcher still shares the lock */
	_exit(status);
}

static const char *wait_point(int wait)
{
	return wait == CDAEMON_WAIT_READY ? "ready" : wait == CDAEMON_WAIT_START ? "started" : "forked";
}

/* The status pipe closed before the wait point: say how the daemon (or,
 * if it was never reported, the middle process) ended and exit with its
 * status, 128+signal if it was killed. */
static _Noreturn void launcher_eof(struct launcher *l)
{
	int st, status;
	const char *who = l->daemon <= 0 ? "the intermediate process"
			  : l->main != l->daemon ? "the main process" : "the daemon";
	pid_t pid = l->daemon <= 0 ? l->middle : l->main;

	/* The pipe reads EOF when the middle's descriptors close, which the
	 * kernel does before it re-parents the middle's child, the daemon, to
	 * us: until the middle has exited, waitid on the daemon fails with
	 * ECHILD. So wait for the middle first (without reaping it). */
	if (l->daemon > 0)
		wait_exit(l->middle, now_ms() + GRACE_MS, &st);
	if (!wait_exit(pid, now_ms() + GRACE_MS, &st)) {
		say("%s (pid %d) closed its status pipe before it was %s; stopping it", who, (int)pid,
		    wait_point(l->c->wait));
		launcher_fail(l, CDAEMON_EX_FAIL, 0);
	}
	if (WIFSIGNALED(st)) {
		int sig = WTERMSIG(st);
		status = 128 + sig;
		say("%s (pid %d) was killed by signal %d (%s) before it was %s", who, (int)pid, sig,
		    strsignal(sig), wait_point(l->c->wait));
	} else {
		status = WEXITSTATUS(st);
		say("%s (pid %d) exited with status %d before it was %s", who, (int)pid, status,
		    wait_point(l->c->wait));
		if (status == 0) /* it did not start: never tell the shell it did */
			status = CDAEMON_EX_FAIL;
	}
	launcher_fail(l, status, 1);
}

static _Noreturn void launcher_timeout(struct launcher *l)
{
	const char *t = l->c->timeout_text;
	if (l->daemon <= 0)
		say("the intermediate process (pid %d) did not report the daemon's pid within "
		    "CDAEMON_TIMEOUT (%s); stopping it",
		    (int)l->middle, t);
	else if (l->c->wait == CDAEMON_WAIT_READY)
		say("the daemon (pid %d) was not ready within CDAEMON_TIMEOUT (%s): the program never "
		    "called cdaemon.Ready() nor sent READY=1; stopping it",
		    (int)l->main, t);
	else
		say("the daemon (pid %d) was not started within CDAEMON_TIMEOUT (%s): its Go runtime "
		    "and package init did not finish; stopping it",
		    (int)l->daemon, t);
	launcher_fail(l, CDAEMON_EX_FAIL, 0);
}

static const char *stop_signal_name(int sig)
{
	static const char *names[] = { [SIGINT] = "SIGINT", [SIGTERM] = "SIGTERM",
				       [SIGHUP] = "SIGHUP", [SIGQUIT] = "SIGQUIT" };
	return names[sig];
}

static _Noreturn void launcher_interrupted(struct launcher *l, int sig)
{
	say("interrupted by %s while waiting for the daemon%s to be %s; stopping it",
	    stop_signal_name(sig), l->daemon > 0 ? "" : " process", wait_point(l->c->wait));
	launcher_fail(l, 128 + sig, 0);
}

static _Noreturn void launcher_protocol_error(struct launcher *l, const char *why)
{
	say("the daemon (pid %d) broke the status protocol: %s; stopping it",
	    (int)(l->daemon > 0 ? l->daemon : l->middle), why);
	launcher_fail(l, CDAEMON_EX_SOFTWARE, 0);
}

static _Noreturn void launcher_done(struct launcher *l)
{
	/* The middle exits right after it reports the pid: reap it, so
	 * starting a daemon leaves no zombie behind. */
	while (waitpid(l->middle, NULL, 0) < 0 && errno == EINTR)
		;
	/* And a daemon that exited after naming its MAINPID= (re-parented
	 * to us): left, it would pass to init, or to a subreaper above us,
	 * as a zombie. Only exited children: the main process runs on. */
	while (l->main != l->daemon && waitpid(-1, NULL, WNOHANG) > 0)
		;
	/* A replacement: the new daemon is up; now the old one goes. */
	if (replacing && replace_hand_over(l->c, l->daemon) < 0) {
		say("CDAEMON_PIDFILE: cannot write the new daemon's pid: %s; stopping it",
		    strerror(errno));
		launcher_fail(l, CDAEMON_EX_CANTCREAT, 0);
	}
	_exit(CDAEMON_EX_OK);
}

/* Act on one well-formed message; return to keep waiting. The pid comes
 * once, from the middle. The daemon may report before it arrives (the
 * middle can be slow to run): a failure ends the start at once, a wait
 * point reached is acted on when the pid is known. */
static void launcher_msg(struct launcher *l, const struct msg *m)
{
	switch (m->type) {
	case CDAEMON_MSG_PID:
		if (l->daemon > 0)
			launcher_protocol_error(l, "a second pid message");
		l->daemon = (pid_t)m->pid;
		break;
	case CDAEMON_MSG_STARTED:
		l->reached = l->reached > CDAEMON_WAIT_START ? l->reached : CDAEMON_WAIT_START;
		break;
	case CDAEMON_MSG_READY:
		l->reached = CDAEMON_WAIT_READY;
		break;
	case CDAEMON_MSG_EXEC:
		l->execd = 1;
		break;
	case CDAEMON_MSG_FAILED:
		print_line(m->text, m->len);
		launcher_fail(l, m->status ? m->status : CDAEMON_EX_FAIL, 1);
	}
	if (l->daemon > 0 && l->main <= 0)
		l->main = l->daemon;
	if (l->daemon > 0 && l->reached >= l->c->wait)
		launcher_done(l);
}

/* ---------------------------------------------------------------------
 * The notify socket's datagrams (readiness.c parses them). Only the main
 * process is heard; a note on stderr says what was ignored, at most
 * MAX_NOTES times, so a flood of datagrams cannot flood the terminal.
 */
#define MAX_NOTES 8

static void note(struct launcher *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct launcher *l, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	if (l->notes++ >= MAX_NOTES)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	say("%s%s", text, l->notes == MAX_NOTES ? " (further notes about the notify socket are not shown)" : "");
}

/* The main process names another: only a descendant of it (systemd takes
 * MAINPID= only from the main process too). The pidfile follows, and the
 * launcher now hears and watches that process. */
static void new_main(struct launcher *l, pid_t pid)
{
	if (pid == l->main)
		return;
	if (!is_descendant(pid, l->main, l->middle)) {
		note(l, "ignoring MAINPID=%d from the daemon (pid %d): not a descendant of it", (int)pid,
		     (int)l->main);
		return;
	}
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0) {
		note(l, "ignoring MAINPID=%d from the daemon (pid %d): %s", (int)pid, (int)l->main,
		     strerror(errno));
		return;
	}
	if (l->mainfd >= 0)
		close(l->mainfd);
	l->mainfd = fd;
	l->main = pid;
	if (pidfile.wfd >= 0 && pidfile_write(pid) < 0)
		note(l, "CDAEMON_PIDFILE: cannot write MAINPID=%d: %s", (int)pid, strerror(errno));
}

static _Noreturn void notify_failed(struct launcher *l, const char *what, long long n, const char *text)
{
	say("the daemon (pid %d) reported %s%lld%s%s%s before it was ready; stopping it", (int)l->main,
	    what, n, text ? " (" : "", text ? text : "", text ? ")" : "");
	launcher_fail(l, CDAEMON_EX_FAIL, 0); /* it said so, but need not exit by itself */
}

static void notify_act(struct launcher *l, const struct notify_msg *m)
{
	if (m->status && (m->status_len != l->status_len || memcmp(m->status, l->status, m->status_len))) {
		char text[4 * 512 + 1];
		size_t n = m->status_len < 512 ? m->status_len : 512; /* a line, not a page */
		memcpy(l->status, m->status, m->status_len);
		l->status_len = m->status_len;
		escape(text, sizeof text, m->status, n);
		say("the daemon (pid %d): %s%s", (int)l->main, text, n < m->status_len ? "..." : "");
	}
	if (m->errno_ >= 0)
		notify_failed(l, "ERRNO=", m->errno_, strerror((int)m->errno_));
	if (m->exit_status >= 0)
		notify_failed(l, "EXIT_STATUS=", m->exit_status, NULL);
	if (m->stopping)
		notify_failed(l, "STOPPING=", 1, NULL);
	if (m->mainpid)
		new_main(l, (pid_t)m->mainpid);
	if (m->extend_usec >= 0) {
		long long until = now_ms() + (m->extend_usec > 86400000000LL ? 86400000000LL : m->extend_usec) / 1000;
		if (until > l->deadline)
			l->deadline = until;
	}
	if (m->ready) {
		l->reached = CDAEMON_WAIT_READY;
		launcher_done(l);
	}
}

/* Read every queued datagram. Called only once the daemon's pid is known:
 * until then the datagrams wait in the queue, their senders' pids with
 * them. */
static void notify_drain(struct launcher *l)
{
	char buf[NOTIFY_MAX];
	struct notify_msg m;
	const char *why;
	pid_t pid;
	int ok;
	if (notify_fd < 0 || l->daemon <= 0)
		return;
	/* A bounded number at a time: a flood from another process must not
	 * keep the launcher from its pipe, signals and deadline. */
	for (int i = 0; i < 256 && notify_recv(notify_fd, buf, &m, &pid, &ok, &why); i++) {
		if (pid != l->main)
			note(l, "ignoring a notification from pid %d: not the daemon (pid %d)", (int)pid,
			     (int)l->main);
		else if (ok < 0)
			note(l, "dropped a notification from the daemon (pid %d): %s", (int)pid, why);
		else
			notify_act(l, &m);
	}
}

/* The status pipe's EOF. The daemon closed it by exec'ing PROGRAM (the
 * exec worked: that is `cdaemon run`'s start), or it is gone, or a
 * MAINPID= named another process: then the launcher watches that one. */
static void pipe_closed(struct launcher *l)
{
	notify_drain(l); /* what the daemon said before it went */
	if (l->daemon > 0 && l->execd && l->c->wait <= CDAEMON_WAIT_START)
		launcher_done(l);
	if (l->daemon <= 0 || notify_fd < 0 || (!l->execd && l->main == l->daemon))
		launcher_eof(l);
	l->piped = 0;
	if (l->mainfd < 0 && (l->mainfd = (int)syscall(SYS_pidfd_open, l->main, 0)) < 0)
		launcher_eof(l); /* no pidfd (before Linux 5.3), or it is gone already */
}

_Noreturn void run_launcher(const struct config *c, const sigset_t *sigs, pid_t middle,
				   int rfd)
{
	struct launcher l = { c, middle, -1, CDAEMON_WAIT_NONE, .main = -1, .mainfd = -1, .piped = 1 };
	unsigned char buf[2 * (CDAEMON_MSG_HEADER + CDAEMON_MSG_MAX)];
	size_t have = 0;
	int sfd = signalfd(-1, sigs, SFD_CLOEXEC);

	l.deadline = now_ms() + c->timeout_ms;
	for (;;) {
		long long left = l.deadline - now_ms();
		/* The pipe, the signals, the socket (once the pid is known),
		 * the main process (once the pipe cannot tell its end). */
		struct pollfd p[4] = { { .fd = l.piped ? rfd : -1, .events = POLLIN },
				       { .fd = sfd, .events = POLLIN },
				       { .fd = l.daemon > 0 ? notify_fd : -1, .events = POLLIN },
				       { .fd = l.mainfd, .events = POLLIN } };
		struct signalfd_siginfo si;
		if (left <= 0)
			launcher_timeout(&l);
		if (poll(p, 4, left > 1000000 ? 1000000 : (int)left) <= 0)
			continue;
		if ((p[1].revents & POLLIN) && read(sfd, &si, sizeof si) == sizeof si)
			launcher_interrupted(&l, (int)si.ssi_signo);
		/* p[3] is about the main process polled; a MAINPID= read now
		 * replaces it, and its new pidfd may get the same number. */
		pid_t polled = l.main;
		if (p[2].revents)
			notify_drain(&l);
		if (p[3].revents && !l.piped && l.main == polled) {
			pid_t was = l.main;
			notify_drain(&l); /* READY=1 just before it exited counts */
			if (l.main == was) /* not a MAINPID= it sent before it exited */
				launcher_eof(&l);
			continue;
		}
		if (!p[0].revents)
			continue;
		ssize_t n = read(rfd, buf + have, sizeof buf - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			pipe_closed(&l);
			continue;
		}
		have += n;
		/* Whole messages only; a partial one waits for the rest. */
		for (;;) {
			struct msg m;
			const char *why;
			long len = parse_msg(buf, have, &m, &why);
			if (len < 0)
				launcher_protocol_error(&l, why);
			if (len == 0)
				break;
			launcher_msg(&l, &m);
			have -= len;
			memmove(buf, buf + len, have);
		}
	}
}

/* A stop signal that came while the launcher opened its files (blocked
 * since): end the start before the fork, which removes what it created.
 * One that comes later is read from the launcher's signalfd. */
void refuse_if_interrupted(const sigset_t *set)
{
	const struct timespec zero = { 0, 0 };
	int sig = sigtimedwait(set, NULL, &zero);
	if (sig > 0)
		bail(128 + sig, "interrupted by %s before the daemon was started",
		     stop_signal_name(sig));
}
