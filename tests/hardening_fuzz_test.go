package tests

// Fuzzing the configuration parsing: testdata/hardening/fuzz/fuzz_config.c
// is a libFuzzer target that compiles the library's C files with the
// constructor disabled and checks every parser and read_config against the documented
// grammar. The corpus in testdata/hardening/fuzz/corpus is replayed on
// every run (with gcc's sanitizers, no clang needed), and with clang the
// fuzzer also runs for CDAEMON_FUZZ_SECONDS (default 5) from it.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

const fuzzDir = "testdata/hardening/fuzz"

func fuzzEnv() []string {
	return append(os.Environ(), "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1",
		"UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1")
}

func TestHardeningFuzzConfig(t *testing.T) {
	slow(t)
	fuzzTarget(t, "fuzz-config", filepath.Join(fuzzDir, "fuzz_config.c"), filepath.Join(fuzzDir, "corpus"))
}

// fuzzTarget replays a libFuzzer target's corpus, kept in the repository,
// with gcc's sanitizers (everywhere), then fuzzes it for
// CDAEMON_FUZZ_SECONDS (5) with clang's libFuzzer.
func fuzzTarget(t *testing.T, name, source, corpus string) {
	t.Helper()
	ents, err := os.ReadDir(corpus)
	require.NoError(t, err)
	require.NotEmpty(t, ents, "the corpus is kept in the repository")

	t.Run("replay-gcc", func(t *testing.T) {
		bin := hbuild(t, name+"-replay", nil, "gcc", "-g", "-O1", "-fsanitize=address,undefined",
			"-fno-sanitize-recover=all", "-o", filepath.Join(binDir, name+"-replay"),
			source, filepath.Join(fuzzDir, "replay.c"))
		cmd := exec.Command(bin, corpus)
		cmd.Env = fuzzEnv()
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "replaying the corpus:\n%s", out)
	})

	t.Run("libfuzzer", func(t *testing.T) {
		clang := needTool(t, "clang", "clang libclang-rt-14-dev")
		bin := hbuild(t, name, nil, clang, "-g", "-O1", "-fsanitize=fuzzer,address,undefined",
			"-fno-sanitize-recover=all", "-o", filepath.Join(binDir, name), source)
		seconds := 5
		if s, err := strconv.Atoi(os.Getenv("CDAEMON_FUZZ_SECONDS")); err == nil {
			seconds = s
		}
		// New inputs go to a scratch directory, not into the repository.
		// -print_funcs=0: symbolizing new functions would start an
		// llvm-symbolizer that outlives the fuzzer by a moment.
		cmd := exec.Command(bin, "-max_total_time="+strconv.Itoa(seconds), "-timeout=10",
			"-print_final_stats=1", "-print_funcs=0", "-artifact_prefix="+t.TempDir()+"/",
			t.TempDir(), corpus)
		cmd.Env = fuzzEnv()
		out, err := cmd.CombinedOutput()
		reapSymbolizers()
		require.NoError(t, err, "libFuzzer found a failing input:\n%s", out)
		t.Logf("%s", lastLines(string(out), 12))
	})
}

// reapSymbolizers waits for llvm-symbolizer processes a sanitizer started
// (they end when the fuzzer closes their input) and were re-parented to
// us, the subreaper.
func reapSymbolizers() {
	for _, pid := range children(os.Getpid()) {
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		if strings.HasPrefix(string(comm), "llvm-symbolizer") {
			var ws syscall.WaitStatus
			syscall.Wait4(pid, &ws, 0, nil)
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
