/* host.c: a C program that links a Go library importing cdaemon (as a
 * c-shared or c-archive build) and reports who it is and what its
 * environment says of CDAEMON_WAIT. It must run as the process its parent
 * started: same pid, same stdout, same environment. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

extern int CdaemonDaemonized(void);
extern char *CdaemonReason(void);

int main(void)
{
	const char *wait = getenv("CDAEMON_WAIT");
	printf("pid=%d daemonized=%d reason=%s env=%s\n", (int)getpid(), CdaemonDaemonized(),
	       CdaemonReason(), wait ? wait : "");
	return 0;
}
