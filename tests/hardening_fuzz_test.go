package tests

// Fuzzing the configuration parsing: testdata/hardening/fuzz/fuzz_config.c
// is a libFuzzer target that compiles cdaemon.c with its constructor
// disabled and checks every parser and read_config against the documented
// grammar. The corpus in testdata/hardening/fuzz/corpus is replayed on
// every run (with gcc's sanitizers, no clang needed), and with clang the
// fuzzer also runs for CDAEMON_FUZZ_SECONDS (default 5) from it.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

const fuzzDir = "testdata/hardening/fuzz"

func fuzzEnv() []string {
	return append(os.Environ(), "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1",
		"UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1")
}

func TestHardeningFuzzConfig(t *testing.T) {
	corpus := filepath.Join(fuzzDir, "corpus")
	ents, err := os.ReadDir(corpus)
	require.NoError(t, err)
	require.NotEmpty(t, ents, "the corpus is kept in the repository")

	t.Run("replay-gcc", func(t *testing.T) {
		bin := hbuild(t, "fuzz-replay", nil, "gcc", "-g", "-O1", "-fsanitize=address,undefined",
			"-fno-sanitize-recover=all", "-o", filepath.Join(binDir, "fuzz-replay"),
			filepath.Join(fuzzDir, "fuzz_config.c"), filepath.Join(fuzzDir, "replay.c"))
		cmd := exec.Command(bin, corpus)
		cmd.Env = fuzzEnv()
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "replaying the corpus:\n%s", out)
	})

	t.Run("libfuzzer", func(t *testing.T) {
		clang := needTool(t, "clang", "clang")
		bin := hbuild(t, "fuzz-config", nil, clang, "-g", "-O1", "-fsanitize=fuzzer,address,undefined",
			"-fno-sanitize-recover=all", "-o", filepath.Join(binDir, "fuzz-config"),
			filepath.Join(fuzzDir, "fuzz_config.c"))
		seconds := 5
		if s, err := strconv.Atoi(os.Getenv("CDAEMON_FUZZ_SECONDS")); err == nil {
			seconds = s
		}
		// New inputs go to a scratch directory, not into the repository.
		cmd := exec.Command(bin, "-max_total_time="+strconv.Itoa(seconds), "-timeout=10",
			"-print_final_stats=1", "-artifact_prefix="+t.TempDir()+"/", t.TempDir(), corpus)
		cmd.Env = fuzzEnv()
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "libFuzzer found a failing input:\n%s", out)
	})
}
