/* host.c: a C program that links a Go library importing cdaemon (as a
 * c-shared or c-archive build) and reports who it is. It must run as the
 * process its parent started: same pid, same stdout. */
#include <stdio.h>
#include <unistd.h>

extern int CdaemonDaemonized(void);
extern char *CdaemonReason(void);

int main(void)
{
	printf("pid=%d daemonized=%d reason=%s\n", (int)getpid(), CdaemonDaemonized(),
	       CdaemonReason());
	return 0;
}
