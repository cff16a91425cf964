/*
 * thread.c: an LD_PRELOAD shim whose constructor starts a thread, as a
 * preloaded library might. LD_PRELOAD constructors run before the main
 * program's, so cdaemon's constructor finds two threads and must refuse
 * to fork (status 70): the thread would not exist in the daemon.
 */
#include <pthread.h>
#include <unistd.h>

static void *sleeper(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

__attribute__((constructor)) static void start_thread(void)
{
	pthread_t t;
	pthread_create(&t, NULL, sleeper, NULL);
}
