/*
 * cdaemon.h: what the C constructor (cdaemon.c and the C files beside
 * it, which share internal.h) and the Go bridge (preinit.go) share. The constructor fills cdaemon_state before the Go
 * runtime exists; Go reads it once, in package init.
 */
#ifndef CDAEMON_H
#define CDAEMON_H

#include <limits.h>
#include <stdint.h>
#include <time.h>

/* Launcher exit statuses, from sysexits.h. */
enum {
	CDAEMON_EX_OK = 0,
	CDAEMON_EX_FAIL = 1,        /* Fail(), or a wait that timed out */
	CDAEMON_EX_USAGE = 64,      /* invalid CDAEMON_* value */
	CDAEMON_EX_NOUSER = 67,     /* CDAEMON_USER or CDAEMON_GROUP unknown */
	CDAEMON_EX_UNAVAILABLE = 69, /* no constructor (not Linux, no cgo): Go's nocgo.go
	                               exits so, for CDAEMON=on or a setting; CDAEMON_REPLACE:
	                               the kernel lacks pidfd_open or pidfd_getfd */
	CDAEMON_EX_SOFTWARE = 70,   /* cannot run safely, or the status protocol broke */
	CDAEMON_EX_OSERR = 71,      /* fork, setsid, pipe, dup2 failed */
	CDAEMON_EX_CANTCREAT = 73,  /* a stdio target, the pidfile or the directory */
	CDAEMON_EX_TEMPFAIL = 75,   /* already running: the pidfile is locked, an address in use */
	CDAEMON_EX_NOPERM = 77,     /* a setting the starting user may not make; CDAEMON_* in a
	                               secure-execution process */
};

/* CDAEMON */
enum { CDAEMON_MODE_AUTO, CDAEMON_MODE_ON, CDAEMON_MODE_OFF };

/* CDAEMON_WAIT: how long the launcher waits. */
enum { CDAEMON_WAIT_NONE, CDAEMON_WAIT_START, CDAEMON_WAIT_READY };

/*
 * Status pipe messages, daemon side to launcher. A message is a 4-byte
 * header (type, exit status, payload length little-endian) and a payload,
 * written with one write(2) of at most PIPE_BUF bytes so it arrives whole.
 */
enum {
	CDAEMON_MSG_PID = 'P',      /* payload: the daemon's pid in decimal */
	CDAEMON_MSG_STARTED = 'S',  /* package cdaemon's init ran in the daemon */
	CDAEMON_MSG_READY = 'R',    /* the program called Ready() */
	CDAEMON_MSG_FAILED = 'F',   /* payload: why; status: the launcher's exit */
	CDAEMON_MSG_EXEC = 'E',     /* the daemon execs the program `cdaemon run` names next:
	                               the status pipe's EOF then means the exec succeeded */
};
#define CDAEMON_MSG_HEADER 4
#define CDAEMON_MSG_MAX 4000    /* payload bytes, below PIPE_BUF */

/* CDAEMON_LISTEN: at most this many sockets, at fds 3, 4, ... */
#define CDAEMON_MAX_LISTEN 32

/* What the constructor did, for the Go API. */
struct cdaemon_state {
	int ran;                   /* the constructor ran at all */
	int daemonized;            /* this process is the daemon */
	int mode;                  /* CDAEMON_MODE_* */
	int wait;                  /* CDAEMON_WAIT_* */
	int launcher_pid;          /* the pid the program was started with */
	int replaced_pid;          /* CDAEMON_REPLACE: the daemon this one replaces, or 0 */
	int status_fd;             /* write end of the status pipe, or -1 */
	struct timespec entry;     /* CLOCK_MONOTONIC at constructor entry */
	char reason[128];          /* why it did not daemonize */
	char dir[PATH_MAX];        /* the launcher's working directory */
	char pidfile[PATH_MAX];    /* the pidfile, absolute, or "" */
	char stdout_path[PATH_MAX]; /* stdout's file, absolute; "" for /dev/null */
	char stderr_path[PATH_MAX]; /* stderr's file, absolute; "" for /dev/null */
	char user[256];            /* CDAEMON_USER's name, "" if unset or not in the user database */
	char group[256];           /* CDAEMON_GROUP's (or the user's primary group's) name, or "" */
	char root[PATH_MAX];       /* CDAEMON_CHROOT, absolute, or "" */
	char notify_socket[108];   /* the launcher's notify socket (readiness.c) as NOTIFY_SOCKET
	                              spells it ("@" + abstract name), or "" */
};

extern struct cdaemon_state cdaemon_state;

/* CDAEMON_LISTEN's sockets, at fds 3 .. 3+n-1, each as bound:
 * tcp:HOST:PORT (the port the kernel chose for 0), tcp:[IPv6]:PORT,
 * unix:/absolute/path or unix:@abstract. Apart from cdaemon_state (which
 * is initialized data) so its size costs no file space. */
struct cdaemon_listeners {
	int n;
	char addr[CDAEMON_MAX_LISTEN][PATH_MAX + 8];
};

extern struct cdaemon_listeners cdaemon_listeners;

#endif
