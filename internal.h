/*
 * internal.h: what the C files of the constructor share, and nothing
 * else. cdaemon.h stays the contract with Go (preinit.go); this header is
 * for the C files only. Each file says at its top what it owns and in
 * which process state its code runs; the order of the steps is in
 * cdaemon.c.
 *
 * The process states, as the files name them:
 *
 *   launcher   the process the user started, before the first fork: it
 *              reads the settings, opens everything, forks, and waits on
 *              the status pipe (it never returns into the program)
 *   middle     the first child: setsid, second fork, pid reported; where it
 *              can be, it shares the launcher's memory (daemon.c says what
 *              it may call then)
 *   daemon     the second child, before the privilege drop (still as the
 *              starting user) and after it (as CDAEMON_USER); it returns
 *              from the constructor and becomes the Go program
 *   foreground a run that does not daemonize: the launcher's own process,
 *              which takes the pidfile, listeners, limits and drop itself
 *
 * Every state is single-threaded and runs before the Go runtime exists.
 * After a fork only async-signal-safe calls are allowed (system calls and
 * their thin libc wrappers, snprintf into fixed buffers): no allocation,
 * no stdio, no NSS. Nothing here allocates anyway.
 *
 * Names: every function and variable declared below is external to the
 * link, and a Go program links its own C code (and libraries') beside
 * it, so each carries the symbol name cdaemon_<name> (CDAEMON_SYM); the
 * sources use the short name. Whatever a file does not share is static.
 * tests/hardening_buildmodes_test.go checks that the objects define no
 * other global symbol.
 */
#ifndef CDAEMON_INTERNAL_H
#define CDAEMON_INTERNAL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "cdaemon.h"

#define CDAEMON_SYM(name) __asm__("cdaemon_" #name)

extern char **environ;

#define MAX_KEEP_FDS 64
#define MAX_LISTEN CDAEMON_MAX_LISTEN

/* ---------------------------------------------------------------------
 * The configuration (config.c fills it in the launcher; every other step
 * reads it).
 */

/* One CDAEMON_LISTEN address, parsed. */
struct listen_addr {
	char text[128];                /* as given, for messages */
	struct sockaddr_storage addr;
	socklen_t len;
};

struct config {
	int mode, wait;
	long long timeout_ms;
	const char *timeout_text;
	const char *pidfile, *log, *out, *err, *in, *dir;
	mode_t umask;
	int keep[MAX_KEEP_FDS];
	int nkeep;
	const char *keep_text;
	/* Privileges and limits; -1 (or NULL, or UNSET) where not set. */
	const char *user, *group, *root;
	long long caps;              /* bit n: capability n is kept */
	const char *caps_text;
	int no_new_privs, core;
	long long nofile, nice, oom;
	struct listen_addr listen[MAX_LISTEN];
	int nlisten;
	int replace;                 /* CDAEMON_REPLACE: 1 on, 0 off */
	int replace_signal;          /* CDAEMON_REPLACE_SIGNAL, SIGTERM by default */
};

#define UNSET LLONG_MIN

/* Capability names, indexed by number (config.c). */
#define NCAPS 41
extern const char *const cap_names[NCAPS] CDAEMON_SYM(cap_names);
enum {
	CAP_SETGID_ = 6, CAP_SETUID_ = 7, CAP_SETPCAP_ = 8, CAP_SYS_CHROOT_ = 18,
};

/* The stdio targets the launcher opened for the daemon (files.c). */
struct files {
	int in, out, err;
};

/*
 * Hooks a program may define in a cgo preamble of its main package; weak:
 * most programs define neither.
 *	const char cdaemon_default_wait[] = "ready";   (config.c)
 *	int cdaemon_wanted(int argc, char **argv);     (checks.c)
 */
extern const char cdaemon_default_wait[] __attribute__((weak));
extern int cdaemon_wanted(int argc, char **argv) __attribute__((weak));
/*	int cdaemon_exec_args(int argc, char **argv);  (exec.c)
 * The index in argv of a program this run execs as the daemon, with the
 * arguments after it (the cdaemon command's "run [--] PROGRAM ARGS..."),
 * or 0: none, the Go program is the daemon. */
extern int cdaemon_exec_args(int argc, char **argv) __attribute__((weak));

/*
 * glibc's user database functions, weak so that a static link leaves them
 * out (NULL) instead of linking NSS code that would load another glibc's
 * modules at run time (privileges.c says why).
 */
#ifdef __GLIBC__
extern int getpwnam_r(const char *, struct passwd *, char *, size_t, struct passwd **)
	__attribute__((weak));
extern int getpwuid_r(uid_t, struct passwd *, char *, size_t, struct passwd **)
	__attribute__((weak));
extern int getgrnam_r(const char *, struct group *, char *, size_t, struct group **)
	__attribute__((weak));
extern int getgrgid_r(gid_t, struct group *, char *, size_t, struct group **)
	__attribute__((weak));
extern int getgrouplist(const char *, gid_t, gid_t *, int *) __attribute__((weak));
#endif

/* report.c: messages and the one error path (every state) */
extern int forked CDAEMON_SYM(forked);       /* this is the middle or the daemon */
extern int status_fd CDAEMON_SYM(status_fd); /* then: the status pipe's write end, or -1 */
extern char prog[64] CDAEMON_SYM(prog);      /* the program's name, for messages */
size_t escape(char *dst, size_t size, const char *src, size_t len) CDAEMON_SYM(escape);
const char *quote(const char *s) CDAEMON_SYM(quote);
void print_line(const char *text, size_t len) CDAEMON_SYM(print_line);
__attribute__((format(printf, 1, 2))) void say(const char *fmt, ...) CDAEMON_SYM(say);
__attribute__((format(printf, 2, 3))) _Noreturn void bail(int status, const char *fmt, ...)
	CDAEMON_SYM(bail);

/* checks.c: steps 0, 1, 3 and 4 (launcher) */
const char *library_host(void) CDAEMON_SYM(library_host);
void read_args(int argc, char **argv) CDAEMON_SYM(read_args);
const char *read_small(const char *path, char *buf, size_t size) CDAEMON_SYM(read_small);
int is_ours(const char *entry) CDAEMON_SYM(is_ours);
const char *name_of(const char *entry) CDAEMON_SYM(name_of);
void refuse_secure_environment(void) CDAEMON_SYM(refuse_secure_environment);
const char *skip_reason(const struct config *c, int *declined) CDAEMON_SYM(skip_reason);
void check_single_thread(void) CDAEMON_SYM(check_single_thread);
/* Running under qemu-user? After check_single_thread: 0 without a read
 * where the kernel said the process has one thread. */
int under_qemu_user(void) CDAEMON_SYM(under_qemu_user);
void warn_go_run(void) CDAEMON_SYM(warn_go_run);

/* config.c: step 2 (launcher) */
int parse_int(const char *v, long long lo, long long hi, long long *dst) CDAEMON_SYM(parse_int);
void read_config(struct config *c) CDAEMON_SYM(read_config);
void check_listen_fds(const struct config *c) CDAEMON_SYM(check_listen_fds);

/* privileges.c: step 4a (launcher), step 8a (daemon, foreground) */
void resolve_ids(const struct config *c) CDAEMON_SYM(resolve_ids);
void check_privileges(const struct config *c) CDAEMON_SYM(check_privileges);
void set_limits(const struct config *c) CDAEMON_SYM(set_limits);
void drop_privileges(const struct config *c) CDAEMON_SYM(drop_privileges);

/* files.c: step 5 (launcher), and helpers every state may call */
void fill_std_fds(void) CDAEMON_SYM(fill_std_fds);
int each_number(const char *path, int (*fn)(long n, void *arg), void *arg)
	CDAEMON_SYM(each_number);
const char *split_path(const char *path, char *dir) CDAEMON_SYM(split_path);
void stat_parent(const char *path, struct stat *st) CDAEMON_SYM(stat_parent);
int shared_dir(const struct stat *dir) CDAEMON_SYM(shared_dir);
const char *shared_why(const struct stat *dir, char *buf, size_t size) CDAEMON_SYM(shared_why);
void check_dir(const char *var, const char *path, const struct stat *dir) CDAEMON_SYM(check_dir);
void check_file(const char *var, const char *path, int fd, const struct stat *dir, int created)
	CDAEMON_SYM(check_file);
void check_stat(const char *var, const char *path, const struct stat *st, const struct stat *dir,
		int created) CDAEMON_SYM(check_stat);
_Noreturn void refuse_link(const char *var, const char *path, const struct stat *dir)
	CDAEMON_SYM(refuse_link);
void open_stdio(const struct config *c, struct files *f) CDAEMON_SYM(open_stdio);
int open_dir(const struct config *c) CDAEMON_SYM(open_dir);
int open_root(const struct config *c) CDAEMON_SYM(open_root);
void absolute(char *dst, size_t size, const char *path) CDAEMON_SYM(absolute);
void record_paths(const struct config *c) CDAEMON_SYM(record_paths);

/*
 * created.c: the one registry of what this start created (launcher,
 * foreground). Whatever makes a file records it at once, and removes
 * nothing itself: bail (before the fork) and launcher_fail (after it)
 * call remove_created, which applies each kind's rule.
 */
enum { CREATED_PIDFILE, CREATED_LOCK, CREATED_SOCKET, CREATED_LOG };
/* This start made (or took over) name in dirfd, the file st describes;
 * with own_dirfd the registry closes dirfd when it settles. */
void note_created(int kind, int dirfd, int own_dirfd, const char *name, const struct stat *st)
	CDAEMON_SYM(note_created);
/* The file of that kind is not this start's after all (removed or
 * replaced meanwhile, or another start holds it): forget it. */
void forget_created(int kind) CDAEMON_SYM(forget_created);
/* The start failed: remove what it created, by each kind's rule for a
 * failure before the fork (after_fork 0) or after it (1). */
void remove_created(int after_fork) CDAEMON_SYM(remove_created);
/* The start succeeded in the foreground: keep the files, and let their
 * directories' descriptors go so none leaks into the program. */
void settle_created(void) CDAEMON_SYM(settle_created);

/* pidfile.c: the pidfile handle (launcher, middle, daemon) */
struct pidfh {
	int fd;                 /* the lock file, open read-only and locked, or -1 */
	int wfd;                /* the pidfile, open for writing the pid (never kept by the daemon), or -1 */
	int dirfd;              /* their directory (O_PATH), or -1 */
	char name[PATH_MAX];    /* the pidfile's name in dirfd */
	char lock[PATH_MAX];    /* the lock file's: name and ".lock" */
	dev_t dev, ldev;        /* the pidfile's and the lock file's identity */
	ino_t ino, lino;
	int created;            /* this start created the pidfile (it may then skip some checks) */
};
extern struct pidfh pidfile CDAEMON_SYM(pidfile);
void pidfile_open(const char *path, int taken) CDAEMON_SYM(pidfile_open);
int pidfile_take(const char *path, const char *name, int flags, mode_t mode,
		 const struct stat *dir, int *created, struct stat *st) CDAEMON_SYM(pidfile_take);
void pidfile_check(const char *path, int fd, const struct stat *st, const struct stat *dir,
		   int created) CDAEMON_SYM(pidfile_check);
int pidfile_write(pid_t pid) CDAEMON_SYM(pidfile_write);
void pidfile_settle(void) CDAEMON_SYM(pidfile_settle);

/* sockets.c: step 5a (launcher, foreground) */
void reserve_listen_fds(const struct config *c, int foreground) CDAEMON_SYM(reserve_listen_fds);
void bind_listeners(const struct config *c) CDAEMON_SYM(bind_listeners);

/* launcher.c: step 6 and the status protocol (launcher; send_msg: middle, daemon) */
int send_msg(int fd, int type, int status, const char *payload) CDAEMON_SYM(send_msg);
void prepare_signals(sigset_t *set) CDAEMON_SYM(prepare_signals);
void refuse_if_interrupted(const sigset_t *set) CDAEMON_SYM(refuse_if_interrupted);
_Noreturn void run_launcher(const struct config *c, const sigset_t *sigs, pid_t middle, int rfd)
	CDAEMON_SYM(run_launcher);

/* readiness.c: the notify socket for CDAEMON_WAIT=ready (launcher) */
#define NOTIFY_MAX 4096 /* bytes in a datagram; longer ones are dropped */
#define NOTIFY_MAX_TEXT "4096"
struct notify_msg {
	int ready, stopping;          /* READY=1, STOPPING=1 */
	long long errno_, exit_status; /* ERRNO=, EXIT_STATUS=; -1 if not given */
	long long extend_usec;        /* EXTEND_TIMEOUT_USEC=; -1 if not given */
	long long mainpid;            /* MAINPID=; 0 if not given */
	const char *status;           /* STATUS='s value in the datagram, or NULL */
	size_t status_len;
	int ignored;                  /* lines unknown or with a value their key does not take */
};
extern int notify_fd CDAEMON_SYM(notify_fd); /* the launcher's socket, or -1 */
int notify_parse(const char *buf, size_t n, struct notify_msg *m, const char **why)
	CDAEMON_SYM(notify_parse);
int notify_open(char *name, size_t size) CDAEMON_SYM(notify_open);
int notify_recv(int fd, char *buf, struct notify_msg *m, pid_t *pid, int *ok, const char **why)
	CDAEMON_SYM(notify_recv);
int is_descendant(pid_t pid, pid_t ancestor, pid_t middle) CDAEMON_SYM(is_descendant);
void notify_setup(const struct config *c) CDAEMON_SYM(notify_setup);

/* exec.c: `cdaemon run` (launcher: the hook, the PATH search; daemon and
 * foreground: the exec, last) */
extern char **exec_argv CDAEMON_SYM(exec_argv); /* PROGRAM ARGS..., or NULL */
void exec_program_args(int argc, char **argv) CDAEMON_SYM(exec_program_args);
int find_program(const char *name, char *out, size_t size, int *err) CDAEMON_SYM(find_program);
void exec_check(const struct config *c) CDAEMON_SYM(exec_check);
void exec_program(void) CDAEMON_SYM(exec_program);

/* replace.c: CDAEMON_REPLACE, taking over a running daemon (launcher) */
struct replace_signal {
	const char *name;
	int sig;
};
extern const struct replace_signal replace_signals[] CDAEMON_SYM(replace_signals); /* NULL-ended */
extern pid_t replacing CDAEMON_SYM(replacing); /* the daemon being replaced, or 0 */
int replace_take(const struct config *c, const char *lockpath) CDAEMON_SYM(replace_take);
int replace_listener(int i) CDAEMON_SYM(replace_listener);
void replace_note(void) CDAEMON_SYM(replace_note);
int replace_hand_over(const struct config *c, pid_t daemon) CDAEMON_SYM(replace_hand_over);

/* daemon.c: steps 7 (middle) and 8 (daemon), and the making of a middle
 * that shares the launcher's memory (launcher, then middle, then daemon) */
int middle_can_share(void) CDAEMON_SYM(middle_can_share);
extern void *daemon_jmp[5] CDAEMON_SYM(daemon_jmp);
pid_t clone_middle(const sigset_t *stop, const int pipefd[2]) CDAEMON_SYM(clone_middle);
void restore_rseq(void) CDAEMON_SYM(restore_rseq);
void run_middle(const sigset_t *stop) CDAEMON_SYM(run_middle);
void become_daemon(const struct config *c, const struct files *f) CDAEMON_SYM(become_daemon);

#endif
