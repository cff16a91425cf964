package tests

// The guard against a vacuous pass. This package's test binary imports
// cdaemon, so if `auto` ever stopped recognising a go test binary, the
// binary would daemonize: go test would see its launcher exit 0 and print
// ok having run nothing, while the tests ran on in the background with
// their output in /dev/null, and CI would pass. So the guard does not rely
// on auto, the property under test:
//
//   - cdaemon_wanted, the program hook, keeps this binary in the
//     foreground whatever auto decides about go test binaries; the tests
//     of auto (TestGoTestRunsInForeground, on testdata/fgpkg, which has no
//     hook) then run and fail;
//   - should the binary daemonize anyway (CDAEMON=on in the environment,
//     or the hook no longer consulted), the "ready" default wait point
//     keeps its launcher waiting for TestMain, which then calls
//     cdaemon.Fail: go test reports the failure instead of an empty pass.

/*
int cdaemon_wanted(int argc, char **argv) { (void)argc; (void)argv; return 0; }
const char cdaemon_default_wait[] = "ready";
*/
import "C"
