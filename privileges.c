/*
 * privileges.c: who the daemon will be and what it may do.
 *
 * Owns step 4a and step 8a. 4a, in the launcher as the starting user:
 * CDAEMON_USER and CDAEMON_GROUP looked up (the only use of the user
 * database, NSS), every setting checked against the capabilities the
 * process has (77 if it may not), and the inherited settings applied to
 * the launcher itself (CDAEMON_NOFILE, CDAEMON_CORE, CDAEMON_NICE,
 * CDAEMON_OOM_SCORE_ADJ), so fork copies them to the daemon. 8a, in the
 * daemon (or a foreground run) just before it returns to start Go: the
 * privilege drop (chroot, groups, gid, uid, capabilities, no_new_privs,
 * dumpable), applying what 4a resolved (struct drop).
 *
 * Runs in: the launcher (4a) before the fork, where NSS, which may load
 * shared libraries, is allowed; the daemon and a foreground run (8a),
 * after the fork and single-threaded, where only system calls and their
 * thin wrappers are: no NSS, no allocation, no stdio. Nothing after the
 * drop may need the privileges it gave up.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "internal.h"

/* ---------------------------------------------------------------------
 * 4a. Who the daemon will be and what it may do, settled by the launcher
 * as the starting user, so that an unknown user (67) or a setting this
 * user may not make (77) is reported on the terminal before anything is
 * forked. CDAEMON_USER and CDAEMON_GROUP are looked up now (the daemon,
 * perhaps chrooted, could not read the user database); step 8a applies
 * the result. The settings a child inherits (limits, nice value, oom
 * score) are made here, on the launcher itself, so the kernel's own
 * answer decides: fork copies them to the daemon, and every thread the Go
 * runtime starts there inherits them from its main thread.
 */

#define MAX_GROUPS 65536 /* the kernel's NGROUPS_MAX; musl's header says 32 */

/* What step 8a applies. Static: the group list can be long. */
static struct drop {
	int uid_set, gid_set;
	uid_t uid;
	gid_t gid;
	int ngroups;
	gid_t groups[MAX_GROUPS];
} drop;

/*
 * Names go through NSS, which loads shared libraries of the running
 * glibc: only a dynamically linked glibc program can use it safely.
 * internal.h declares them weak so that a static link leaves them out
 * (NULL) instead of linking NSS code that would load another glibc's
 * modules at run time (and warn at link time); a dynamic link finds them
 * in libc.so. musl has no NSS (it reads /etc/passwd only): numbers only
 * there too.
 */
#ifdef __GLIBC__
#define HAVE_NSS (getpwnam_r && getpwuid_r && getgrnam_r && getgrgid_r && getgrouplist)
#else
#define HAVE_NSS 0
#endif

static char nss_buf[1 << 16]; /* scratch for getpw*_r and getgr*_r */

static _Noreturn void cannot_look_up(const char *var, const char *value, int err)
{
	if (err == ERANGE)
		bail(CDAEMON_EX_NOUSER, "%s=%s: cannot look it up: its entry is larger than %zu bytes",
		     var, quote(value), sizeof nss_buf);
	bail(CDAEMON_EX_NOUSER, "%s=%s: cannot look it up: %s", var, quote(value), strerror(err));
}

static void need_nss(const char *var, const char *value)
{
	if (!HAVE_NSS)
		bail(CDAEMON_EX_USAGE,
		     "%s=%s is a name, and this program cannot read the user database: it is linked "
		     "statically or with musl (names need NSS, a dynamically linked glibc); give the "
		     "number instead",
		     var, quote(value));
}

/* CDAEMON_USER: its uid, name and primary group. */
static void resolve_user(const char *user)
{
	struct passwd pw, *found = NULL;
	long long n;
	int err = 0;
	drop.uid_set = 1;
	if (parse_int(user, 0, 4294967294LL, &n) == 0) {
		drop.uid = (uid_t)n;
		if (HAVE_NSS)
			err = getpwuid_r(drop.uid, &pw, nss_buf, sizeof nss_buf, &found);
	} else {
		need_nss("CDAEMON_USER", user);
		err = getpwnam_r(user, &pw, nss_buf, sizeof nss_buf, &found);
		if (!err && !found)
			bail(CDAEMON_EX_NOUSER, "CDAEMON_USER=%s: no such user", quote(user));
	}
	if (err)
		cannot_look_up("CDAEMON_USER", user, err);
	if (!found)
		return; /* a uid the database does not know: no name, no groups */
	drop.uid = pw.pw_uid;
	drop.gid = pw.pw_gid;
	drop.gid_set = 1;
	snprintf(cdaemon_state.user, sizeof cdaemon_state.user, "%s", pw.pw_name);
}

/* CDAEMON_GROUP, or the user's primary group: its gid and name. */
static void resolve_group(const char *user, const char *group)
{
	struct group gr, *found = NULL;
	long long n;
	int err = 0;
	if (group && parse_int(group, 0, 4294967294LL, &n) == 0) {
		drop.gid = (gid_t)n;
	} else if (group) {
		need_nss("CDAEMON_GROUP", group);
		err = getgrnam_r(group, &gr, nss_buf, sizeof nss_buf, &found);
		if (!err && !found)
			bail(CDAEMON_EX_NOUSER, "CDAEMON_GROUP=%s: no such group", quote(group));
		if (err)
			cannot_look_up("CDAEMON_GROUP", group, err);
		drop.gid = gr.gr_gid;
	} else if (!drop.gid_set) {
		bail(CDAEMON_EX_NOUSER,
		     "CDAEMON_USER=%s: uid %s is not in the user database%s, so it has no primary "
		     "group: set CDAEMON_GROUP too",
		     quote(user), user, HAVE_NSS ? "" : " (which this static or musl build cannot read)");
	}
	drop.gid_set = 1;
	if (!found && HAVE_NSS && getgrgid_r(drop.gid, &gr, nss_buf, sizeof nss_buf, &found) != 0)
		found = NULL; /* a name is only for Info() */
	if (found)
		snprintf(cdaemon_state.group, sizeof cdaemon_state.group, "%s", gr.gr_name);
}

/* The supplementary groups, as initgroups(3) would set them: the user's
 * groups in the database plus the gid; none for a user it does not know
 * or with CDAEMON_GROUP alone. */
static void resolve_groups(const char *user)
{
	drop.ngroups = 0;
	if (!HAVE_NSS || !cdaemon_state.user[0])
		return;
	drop.ngroups = MAX_GROUPS;
	if (getgrouplist(cdaemon_state.user, drop.gid, drop.groups, &drop.ngroups) < 0)
		bail(CDAEMON_EX_NOUSER, "CDAEMON_USER=%s: the user is in more than %d groups",
		     quote(user), MAX_GROUPS);
}

void resolve_ids(const struct config *c)
{
	if (c->user)
		resolve_user(c->user);
	if (c->user || c->group)
		resolve_group(c->user, c->group);
	if (c->user)
		resolve_groups(c->user);
}

/* Capabilities through the raw system calls: no libcap. */
struct cap_header {
	uint32_t version;
	int pid;
};
struct cap_data {
	uint32_t effective, permitted, inheritable;
};
#define CAP_VERSION_3 0x20080522

static int cap_get(unsigned long long *eff, unsigned long long *prm)
{
	struct cap_header h = { CAP_VERSION_3, 0 };
	struct cap_data d[2];
	if (syscall(SYS_capget, &h, d) < 0)
		return -1;
	*eff = d[0].effective | (unsigned long long)d[1].effective << 32;
	*prm = d[0].permitted | (unsigned long long)d[1].permitted << 32;
	return 0;
}

/* The bounding set; the kernel says EINVAL past its last capability. */
static unsigned long long cap_bounding(void)
{
	unsigned long long set = 0;
	for (int cap = 0; cap < 64; cap++) {
		int r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
		if (r < 0)
			break;
		if (r)
			set |= 1ULL << cap;
	}
	return set;
}

/* Does the drop (7a) change capabilities at all? */
static int drops_caps(const struct config *c)
{
	return drop.uid_set || c->caps >= 0;
}

static _Noreturn void not_permitted(const char *var, const char *value, const char *what)
{
	bail(CDAEMON_EX_NOPERM, "%s=%s: %s, which this process (uid %u) does not have", var,
	     quote(value), what, (unsigned)geteuid());
}

/* 77 for a setting the starting user may not make, checked against the
 * capabilities the process has (root in a container may lack some). */
void check_privileges(const struct config *c)
{
	unsigned long long eff = 0, prm = 0, bnd, keep = c->caps < 0 ? 0 : c->caps;
	if (!c->user && !c->group && !c->root && c->caps < 0)
		return;
	if (cap_get(&eff, &prm) < 0)
		bail(CDAEMON_EX_OSERR, "capget: %s", strerror(errno));
	bnd = cap_bounding();
	if (c->user && !(eff & 1ULL << CAP_SETUID_))
		not_permitted("CDAEMON_USER", c->user, "changing the user needs root (CAP_SETUID)");
	if (c->user && !(eff & 1ULL << CAP_SETGID_))
		not_permitted("CDAEMON_USER", c->user,
			      "setting the user's groups needs root (CAP_SETGID)");
	if (c->group && !(eff & 1ULL << CAP_SETGID_))
		not_permitted("CDAEMON_GROUP", c->group, "changing the group needs root (CAP_SETGID)");
	if (c->root && !(eff & 1ULL << CAP_SYS_CHROOT_))
		not_permitted("CDAEMON_CHROOT", c->root, "chroot needs root (CAP_SYS_CHROOT)");
	if (!drops_caps(c))
		return;
	for (int cap = 0; cap < NCAPS; cap++) {
		char what[96];
		if (!(keep & 1ULL << cap) || (prm & bnd & 1ULL << cap))
			continue;
		snprintf(what, sizeof what, "keeping cap_%s needs it in the permitted set",
			 cap_names[cap]);
		not_permitted("CDAEMON_CAPS", c->caps_text, what);
	}
	if ((bnd & ~keep) && !(eff & 1ULL << CAP_SETPCAP_))
		not_permitted(c->caps >= 0 ? "CDAEMON_CAPS" : "CDAEMON_USER",
			      c->caps >= 0 ? c->caps_text : c->user,
			      "dropping the other capabilities from the bounding set needs root "
			      "(CAP_SETPCAP)");
}

/* The kernel's answer to a setting: 77 if the starting user may not make
 * it, 71 for anything else. */
static _Noreturn void cannot_set(const char *var, long long value, const char *what, int err)
{
	bail(err == EPERM || err == EACCES ? CDAEMON_EX_NOPERM : CDAEMON_EX_OSERR,
	     "%s=\"%lld\": cannot set it: %s (%s)", var, value, strerror(err), what);
}

static void set_rlimit(int resource, rlim_t value, const char *var, long long text)
{
	struct rlimit rl = { value, value };
	if (setrlimit(resource, &rl) < 0)
		cannot_set(var, text, "raising a hard limit needs root (CAP_SYS_RESOURCE)", errno);
}

static void set_oom_score_adj(long long value)
{
	char buf[16];
	int n = snprintf(buf, sizeof buf, "%lld", value);
	int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf, n) != n)
		cannot_set("CDAEMON_OOM_SCORE_ADJ", value,
			   "lowering it needs root (CAP_SYS_RESOURCE); it is written to "
			   "/proc/self/oom_score_adj",
			   errno);
	close(fd);
}

/* The soft and hard limits alike: the Go runtime raises soft to hard at
 * start, so a lower soft limit would not hold anyway. Core "on" stays
 * effective after the uid change through PR_SET_DUMPABLE (step 7a). */
void set_limits(const struct config *c)
{
	if (c->nofile != UNSET)
		set_rlimit(RLIMIT_NOFILE, (rlim_t)c->nofile, "CDAEMON_NOFILE", c->nofile);
	if (c->core == 0) /* lowering: always allowed */
		set_rlimit(RLIMIT_CORE, 0, "CDAEMON_CORE", 0);
	if (c->core == 1) {
		struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
		if (setrlimit(RLIMIT_CORE, &rl) < 0)
			bail(errno == EPERM ? CDAEMON_EX_NOPERM : CDAEMON_EX_OSERR,
			     "CDAEMON_CORE=\"on\": cannot make core dumps unlimited: %s (raising the "
			     "hard limit needs root (CAP_SYS_RESOURCE))",
			     strerror(errno));
	}
	/* The calling thread's value (Linux: nice is per thread), copied by
	 * fork and by every clone of a thread. */
	if (c->nice != UNSET && setpriority(PRIO_PROCESS, 0, (int)c->nice) < 0)
		cannot_set("CDAEMON_NICE", c->nice,
			   "a value below the current one needs root (CAP_SYS_NICE) or RLIMIT_NICE",
			   errno);
	if (c->oom != UNSET)
		set_oom_score_adj(c->oom);
}

/* ---------------------------------------------------------------------
 * 8a. Confine and drop privileges: chroot, groups, gid, uid, capabilities,
 * no_new_privs, dumpable. This runs in the daemon (and in a foreground
 * process) while it is still single-threaded, before it returns to start
 * the Go runtime: each call changes the one thread there is, and every
 * thread the runtime creates later inherits the result. Go cannot do this
 * itself: setuid is per thread on Linux, and syscall.AllThreadsSyscall
 * refuses to run in a cgo program.
 *
 * It runs after fork and may call only system calls and their thin libc
 * wrappers: no NSS, no allocation, no stdio (the launcher resolved the
 * ids and checked every step in 4a, so nothing here is expected to fail;
 * if the kernel refuses anyway, bail stops the start). The order is the
 * one the kernel imposes: chroot while CAP_SYS_CHROOT is effective; the
 * bounding set while CAP_SETPCAP is; groups and gid while CAP_SETGID is;
 * the uid last, with PR_SET_KEEPCAPS so the permitted set survives it;
 * then the capability sets are cut to CDAEMON_CAPS and the ambient set
 * raised (so the kept ones survive an execve too); no_new_privs; and
 * dumpable last, as the uid change reset it.
 */

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

static _Noreturn void drop_failed(const char *what)
{
	bail(errno == EPERM || errno == EACCES ? CDAEMON_EX_NOPERM : CDAEMON_EX_OSERR,
	     "cannot drop privileges: %s: %s", what, strerror(errno));
}

/* The working directory is CDAEMON_CHROOT (the launcher changed into it):
 * make it the root, then enter CDAEMON_CHDIR inside it. */
static void enter_root(const struct config *c)
{
	if (!c->root)
		return;
	if (chroot(".") < 0)
		drop_failed("chroot");
	if (chdir(c->dir) < 0)
		drop_failed("chdir to CDAEMON_CHDIR inside CDAEMON_CHROOT");
}

static void drop_bounding(unsigned long long keep)
{
	for (int cap = 0; cap < 64; cap++) {
		int r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
		if (r < 0)
			break; /* past the kernel's last capability */
		if (r && !(keep & 1ULL << cap) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
			drop_failed("PR_CAPBSET_DROP");
	}
}

static void change_ids(void)
{
	if (drop.gid_set && setgroups(drop.ngroups, drop.groups) < 0)
		drop_failed("setgroups");
	if (drop.gid_set && setresgid(drop.gid, drop.gid, drop.gid) < 0)
		drop_failed("setresgid");
	if (!drop.uid_set)
		return;
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		drop_failed("PR_SET_KEEPCAPS");
	if (setresuid(drop.uid, drop.uid, drop.uid) < 0)
		drop_failed("setresuid");
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		drop_failed("PR_SET_KEEPCAPS");
}

/* Effective, permitted and inheritable become exactly keep; ambient too,
 * which needs each in permitted and inheritable first. */
static void set_caps(unsigned long long keep)
{
	struct cap_header h = { CAP_VERSION_3, 0 };
	struct cap_data d[2];
	for (int i = 0; i < 2; i++) {
		uint32_t half = (uint32_t)(keep >> (32 * i));
		d[i] = (struct cap_data){ half, half, half };
	}
	if (syscall(SYS_capset, &h, d) < 0)
		drop_failed("capset");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		drop_failed("PR_CAP_AMBIENT_CLEAR_ALL");
	for (int cap = 0; cap < 64; cap++)
		if ((keep & 1ULL << cap) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
			drop_failed("PR_CAP_AMBIENT_RAISE");
}

void drop_privileges(const struct config *c)
{
	unsigned long long keep = c->caps < 0 ? 0 : (unsigned long long)c->caps;
	enter_root(c);
	if (drops_caps(c))
		drop_bounding(keep);
	change_ids();
	if (drops_caps(c))
		set_caps(keep);
	/* What the drop promises: root cannot be regained. */
	if (drop.uid_set && drop.uid != 0 && !(keep & 1ULL << CAP_SETUID_) && setuid(0) == 0)
		bail(CDAEMON_EX_SOFTWARE, "cannot drop privileges: setuid(0) still works after the drop");
	if (c->no_new_privs == 1 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		drop_failed("PR_SET_NO_NEW_PRIVS");
	/* A uid change makes the process undumpable (no core, /proc files
	 * owned by root); CDAEMON_CORE=on asks for cores, as nginx does. */
	if (c->core == 1 && prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
		drop_failed("PR_SET_DUMPABLE");
}
