/*
 * checks.c: whether to run at all, and whether it is safe to.
 *
 * Owns steps 0, 1, 3 and 4: is this a Go program's own executable (not a
 * c-shared, c-archive or plugin build in someone else's process); refusing
 * CDAEMON_* in a secure-execution process; the program's arguments and
 * name; the auto decision (a go test binary, a request for help, the
 * program's cdaemon_wanted(), a service manager or supervisor as parent);
 * the thread count before the fork; and a word when `go run` started it.
 *
 * Runs in: the launcher, before anything is opened or forked, as the
 * starting user. Step 0 runs before anything else and must not read the
 * environment, print or exit: a host process is not ours. The others may
 * bail (before the fork: the message reaches the terminal).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* ---------------------------------------------------------------------
 * 0. A library in someone else's process? Decided before anything else:
 * a c-shared, c-archive or plugin build must not read the host's
 * environment, print, exit or touch environ, whatever it holds.
 */

/*
 * Is this code in a Go program's own executable? Not in a c-shared or
 * plugin build: then it is in a library the host loaded. Nor in a
 * c-archive linked into a C program: the constructor is then in the host's
 * executable, so Go's build info (what `go version -m` prints) must tell.
 * It is a 16-byte aligned block in the writable data that starts with
 * "\xff Go buildinf:"; flag 2 means two varint-prefixed strings follow at
 * offset 32, the Go version and the module information, which has a line
 * "build\t-buildmode=c-archive".
 */
/* Plain loops, not memcmp/memmem: this reads a whole data segment, C
 * globals' sanitizer redzones included, on purpose. */
__attribute__((no_sanitize_address)) static int has_at(const unsigned char *p,
							 const unsigned char *hi, const char *s)
{
	for (; *s; s++, p++)
		if (p >= hi || *p != (unsigned char)*s)
			return 0;
	return 1;
}

__attribute__((no_sanitize_address)) static int archive_mode(const unsigned char *lo,
							       const unsigned char *hi)
{
	const unsigned char *p = (const unsigned char *)(((uintptr_t)lo + 15) & ~(uintptr_t)15);
	for (; p + 32 <= hi; p += 16) {
		if (p[0] != 0xff || !has_at(p, hi, "\xff Go buildinf:") || !(p[15] & 2))
			continue;
		const unsigned char *q = p + 32;
		for (int s = 0; s < 2; s++) {
			uint64_t len = 0;
			for (int shift = 0; q < hi && shift < 64; shift += 7) {
				len |= (uint64_t)(*q & 0x7f) << shift;
				if (!(*q++ & 0x80))
					break;
			}
			if (len > (uint64_t)(hi - q))
				return 0;
			for (const unsigned char *r = q; s == 1 && r < q + len; r++)
				if (*r == 'b' && has_at(r, q + len, "build\t-buildmode=c-archive\n"))
					return 1;
			q += len;
		}
		return 0;
	}
	return 0;
}

/* dl_iterate_phdr visits the main program first: look at it, then stop. */
static int main_program(struct dl_phdr_info *info, size_t size, void *verdict)
{
	int in_it = 0;
	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && (uintptr_t)main_program >= lo &&
		    (uintptr_t)main_program < lo + ph->p_memsz)
			in_it = 1;
	}
	*(const char **)verdict = in_it ? NULL : "not the main executable (a c-shared or plugin build)";
	for (int i = 0; in_it && i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		const unsigned char *lo = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W) && archive_mode(lo, lo + ph->p_filesz))
			*(const char **)verdict =
				"not the main executable (a c-archive linked into a C program)";
	}
	return 1;
}

/* Why this is not a Go program's own executable, or NULL if it is. */
const char *library_host(void)
{
	const char *verdict = NULL;
	dl_iterate_phdr(main_program, &verdict);
	return verdict;
}

/* ---------------------------------------------------------------------
 * 1. Secure execution (setuid, setgid, file capabilities: AT_SECURE). The
 * environment then belongs to a less privileged user: CDAEMON_PIDFILE
 * would write our pid into any file, CDAEMON_LOG create one anywhere. Any
 * CDAEMON_* is refused before anything is opened; without one the program
 * runs with its built-in defaults.
 */

/* "CDAEMON=..." and "CDAEMON_*=..." are ours; "CDAEMONS=..." is not. */
int is_ours(const char *entry)
{
	return !strncmp(entry, "CDAEMON", 7) && (entry[7] == '=' || entry[7] == '_');
}

/* The variable's name for a message: as typed, or quoted like a value if
 * it has bytes that must be escaped. */
const char *name_of(const char *entry)
{
	static char name[96];
	const char *eq = strchr(entry, '=');
	size_t len = eq ? (size_t)(eq - entry) : strlen(entry);
	if (len >= sizeof name)
		len = sizeof name - 1;
	memcpy(name, entry, len);
	name[len] = 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)name[i] < 0x21 || (unsigned char)name[i] >= 0x7f)
			return quote(name);
	return name;
}

void refuse_secure_environment(void)
{
	if (!getauxval(AT_SECURE))
		return;
	for (char **e = environ; *e; e++)
		if (is_ours(*e))
			bail(CDAEMON_EX_NOPERM,
			     "%s is refused: this program runs with privileges its user does not have "
			     "(setuid, setgid or file capabilities), and cdaemon takes no settings from "
			     "such a user's environment; unset it",
			     name_of(*e));
}

/* ---------------------------------------------------------------------
 * 3. Decide. `auto` stays in the foreground where daemonizing would be
 * wrong: a test binary, a program asked for help, a process a service
 * manager or supervisor started (it would see the exit and start another).
 */

static int args_argc;
static char **args_argv;

#ifndef __GLIBC__
/* musl calls constructors without arguments: read them from /proc. */
static void load_args(void)
{
	static char buf[8192];
	static char *argv[64];
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	for (char *p = buf; p < buf + n && args_argc < 63; p += strlen(p) + 1)
		argv[args_argc++] = p;
	args_argv = argv;
}
#endif

static void set_prog_name(void)
{
	if (args_argc < 1 || !args_argv[0])
		return;
	const char *base = strrchr(args_argv[0], '/');
	base = base ? base + 1 : args_argv[0];
	escape(prog, sizeof prog, base, strlen(base));
}

/* The program's arguments (glibc passes them to constructors; musl does
 * not), and its name for messages. */
void read_args(int argc, char **argv)
{
#ifdef __GLIBC__
	args_argc = argc;
	args_argv = argv;
#else
	(void)argc, (void)argv;
	load_args();
#endif
	set_prog_name();
}

/* go test runs its binaries with -test.* flags; they are named *.test. */
static int is_test_binary(void)
{
	size_t n = strlen(prog);
	if (n > 5 && !strcmp(prog + n - 5, ".test"))
		return 1;
	for (int i = 1; i < args_argc; i++)
		if (!strncmp(args_argv[i], "-test.", 6) || !strncmp(args_argv[i], "--test.", 7))
			return 1;
	return 0;
}

/*
 * A program decides from its arguments whether to daemonize by defining,
 * in a cgo preamble of its main package,
 *	int cdaemon_wanted(int argc, char **argv);
 * non-zero: daemonize. Consulted in auto mode only. Weak (internal.h):
 * most programs define nothing, and then a request for help or the
 * version stays in the foreground, where its output reaches the terminal.
 */

static const char *asks_help(void)
{
	static const char *flags[] = { "-h", "-help", "--help", "-version", "--version" };
	static char why[96];
	for (int i = 1; i < args_argc && args_argv[i]; i++) {
		if (!strcmp(args_argv[i], "--"))
			return NULL;
		for (size_t j = 0; j < sizeof flags / sizeof flags[0]; j++)
			if (!strcmp(args_argv[i], flags[j])) {
				snprintf(why, sizeof why, "the arguments ask for help or the version (%s)",
					 flags[j]);
				return why;
			}
	}
	return NULL;
}

/* Why the program's arguments say not to daemonize, or NULL. */
static const char *program_says_no(void)
{
	if (cdaemon_wanted)
		return cdaemon_wanted(args_argc, args_argv) ? NULL
							    : "the program's cdaemon_wanted() said no";
	return asks_help();
}

/* The first line of a small /proc file, or "" if it cannot be read. */
const char *read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, size - 1);
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return buf;
}

/* An environment variable that holds exactly our pid. */
static int names_us(const char *var)
{
	const char *v = getenv(var);
	char *end;
	if (!v || !isdigit((unsigned char)*v)) /* strtol takes " 12" and "+12" */
		return 0;
	errno = 0;
	long pid = strtol(v, &end, 10);
	return !*end && !errno && pid == getpid();
}

/*
 * Started by a service manager or a supervisor: run in the foreground, as
 * daemon(7) asks of new-style daemons. systemd's system instance is PID 1;
 * its user instance, runit's runsv, s6-supervise, daemontools' supervise
 * and supervisord are not, so the parent is named by what it runs.
 */
static const char *supervised(void)
{
	static const char *supervisors[] = { "runsv", "s6-supervise", "supervise",
					     "supervisord", "systemd" };
	static char why[128];
	char path[64], comm[32], cmd[256];
	pid_t ppid = getppid();

	if (getpid() == 1)
		return "running as PID 1";
	if (ppid == 1)
		return "started by PID 1 (init or a service manager)";
	if (getenv("NOTIFY_SOCKET"))
		return "NOTIFY_SOCKET is set (a systemd Type=notify service)";
	if (names_us("SYSTEMD_EXEC_PID"))
		return "SYSTEMD_EXEC_PID is this process (started by systemd)";
	if (names_us("LISTEN_PID"))
		return "LISTEN_PID is this process (socket activation)";
	snprintf(path, sizeof path, "/proc/%d/comm", (int)ppid);
	read_small(path, comm, sizeof comm);
	/* supervisord is a Python script: its comm may be the interpreter's,
	 * and then the script is the first argument. Read only then: this is
	 * on every start's path. */
	const char *script = "";
	if (!strncmp(comm, "python", 6)) {
		snprintf(path, sizeof path, "/proc/%d/cmdline", (int)ppid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, cmd, sizeof cmd - 1);
		if (fd >= 0)
			close(fd);
		cmd[n > 0 ? n : 0] = 0;
		const char *arg1 = n > 0 && strlen(cmd) + 1 < (size_t)n ? cmd + strlen(cmd) + 1 : "";
		script = strrchr(arg1, '/') ? strrchr(arg1, '/') + 1 : arg1;
	}
	for (size_t i = 0; i < sizeof supervisors / sizeof supervisors[0]; i++) {
		const char *s = supervisors[i];
		if (!strcmp(comm, s) || !strcmp(script, s)) {
			snprintf(why, sizeof why, "started by %s (pid %d), a supervisor", s, (int)ppid);
			return why;
		}
	}
	return NULL;
}

/* Why not to daemonize, or NULL to go ahead. *declined is set when the
 * program's arguments say this run is not the daemon at all (a CLI role,
 * help, the version): then it must not take the daemon's pidfile,
 * listeners or privileges either. */
const char *skip_reason(const struct config *c, int *declined)
{
	const char *why;
	*declined = 0;
	if (c->mode == CDAEMON_MODE_OFF)
		return "CDAEMON=off";
	if (c->mode == CDAEMON_MODE_ON)
		return NULL;
	if (is_test_binary())
		return "a go test binary";
	if ((why = program_says_no()))
		return *declined = 1, why;
	return supervised();
}

/* ---------------------------------------------------------------------
 * 4. Refuse unsafe states. fork() copies only the calling thread; if
 * another thread already exists (a preloaded library, a constructor that
 * started one), the daemon would inherit its locks held and never released.
 */

/* Under qemu-user (see below), /proc/self/stat from its state field on;
 * NULL on a real kernel (or if it cannot be read). */
static const char *qemu_user_stat(void)
{
	static char buf[1024];
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = 0;
	const char *p = strrchr(buf, ')'); /* the name may hold spaces and ')' */
	if (!p || p[1] != ' ' || !p[2] || isalpha((unsigned char)p[2]))
		return NULL;
	return p + 2;
}

/*
 * Under qemu-user (an arm64 image built and tested on amd64 CI through
 * binfmt) the task directory is the host's, and it lists qemu's own
 * thread (its RCU thread, made before the program's first instruction)
 * beside the program's. qemu emulates /proc/self/stat for the program,
 * though, and gives itself away there: the state field, always a letter
 * from a real kernel (R, S, ...), is "0"; qemu 8 and later write the
 * program's own threads (one per emulated CPU) in num_threads, field 20,
 * where qemu 7.2 (Debian 12's) writes 0. So where the state is not a
 * letter, the program's threads are num_threads, or the host's less the
 * one qemu made; where it is a letter (real hardware, any kernel), the
 * count is the task directory's, as before. Returns the count, and sets
 * *emulated when qemu's thread was left out.
 */
static long own_threads(long host, int *emulated)
{
	const char *p = qemu_user_stat();
	*emulated = 0;
	if (!p)
		return host;
	/* Fields 3 (state) to 20 (num_threads): skip 17 of them. */
	for (int field = 3; field < 20 && p; field++)
		p = strchr(p, ' ') ? strchr(p, ' ') + 1 : NULL;
	long threads = p ? strtol(p, NULL, 10) : 0;
	*emulated = 1;
	return threads > 0 ? threads : host - 1;
}

/*
 * First ask the kernel, which reads nothing: unshare(CLONE_THREAD) is a
 * no-op that succeeds only in a process with one thread (unshare(2):
 * EINVAL if it has more), and changes nothing either way. So a plain
 * start reads no /proc. Under qemu-user it fails with EINVAL for qemu's
 * own thread (the host process is the one asked); a seccomp filter may
 * refuse it (EPERM, ENOSYS). Only then is the task directory counted,
 * as below, to tell qemu from a real second thread and to say how many.
 */
static int alone_said_kernel; /* unshare said one thread: a real kernel */

int under_qemu_user(void)
{
	return !alone_said_kernel && qemu_user_stat() != NULL;
}

void check_single_thread(void)
{
	struct stat st;
	int emulated;
	if (unshare(CLONE_THREAD) == 0) {
		alone_said_kernel = 1;
		return;
	}
	/* procfs gives a task directory 2 + (number of threads) links. */
	if (stat("/proc/self/task", &st) < 0)
		bail(CDAEMON_EX_SOFTWARE,
		     "cannot daemonize safely: /proc/self/task cannot be read (%s), so the process's "
		     "threads cannot be counted; mount /proc, or set CDAEMON=off to run in the "
		     "foreground",
		     strerror(errno));
	long threads = (long)st.st_nlink - 2;
	if (threads != 1 && (threads = own_threads(threads, &emulated)) != 1)
		bail(CDAEMON_EX_SOFTWARE,
		     "cannot daemonize safely: the process already has %ld threads before main "
		     "(a preloaded library or constructor started them%s); set CDAEMON=off to run in "
		     "the foreground",
		     threads, emulated ? "; qemu-user's own thread not counted" : "");
}

/*
 * A daemon started by `go run` runs from a binary go run built: in its
 * temporary directory ($GOTMPDIR or $TMPDIR/go-buildNNN/bNNN/exe/NAME),
 * which go run deletes once the launcher returns, or since Go 1.24 in the
 * build cache (GOCACHE/XX/HASH-d/NAME); and go run turns every exit
 * status into 1. It still works; say so once, on the terminal.
 */
static int hex_run(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

void warn_go_run(void)
{
	/* The path go run exec'd (always absolute), from the auxiliary
	 * vector: no /proc read on every start. */
	const char *exe = (const char *)getauxval(AT_EXECFN);
	const char *where = NULL, *p;
	if (!exe || *exe != '/')
		return;
	const char *name = strrchr(exe, '/');
	if ((p = strstr(exe, "/go-build")) && (p = strstr(p, "/exe/")) && p == name - 4)
		where = "go run's temporary directory, which go run removes when this launcher returns";
	/* .../go-build/XX/<64 hex>-d/NAME */
	for (p = exe; !where && (p = strstr(p, "/go-build/")); p++) {
		const char *h = p + 10;
		if (hex_run(h, 2) && h[2] == '/' && hex_run(h + 3, 64) && !strncmp(h + 67, "-d/", 3) &&
		    h + 69 == name)
			where = "go run's build cache";
	}
	if (where)
		say("%s runs from %s, and go run reports every failure as exit status 1: build it with "
		    "go build and run the binary",
		    quote(exe), where);
}
