//go:build hook

package main

// The program's own decision: daemonize for "serve" as the first
// argument, stay in the foreground otherwise (a CLI's "status", "-h").

/*
#include <string.h>

int cdaemon_wanted(int argc, char **argv)
{
	return argc > 1 && strcmp(argv[1], "serve") == 0;
}
*/
import "C"
