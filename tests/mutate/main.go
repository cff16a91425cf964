// Command mutate checks that the test suite catches plausible defects.
//
// Each mutant in mutants.go is one small defect, described by a snippet of
// a source file and its replacement. For each, mutate copies the
// repository (the files git knows, as they are in the working tree) to a
// temporary directory, applies the one change there, and runs the suite's
// tests relevant to it:
//
//	go test -count=1 -failfast -json -timeout T -run TESTS ./...
//
// A mutant is killed when that fails: the normal suite, not a test written
// for the harness. It survives when the tests pass: a survivor is a
// missing test. The working tree is never modified. At the end mutate
// prints a table of killed and surviving mutants and exits 1 if any
// survived or could not be run.
//
// Every snippet must occur exactly once in its file, and every test a
// mutant names must exist: a snippet no longer found (the code changed)
// or a test renamed stops mutate before it runs anything, naming the
// mutant, so the list is kept up to date.
//
// Usage, from anywhere in the repository:
//
//	go run ./tests/mutate                 # every mutant
//	go run ./tests/mutate -run 'setsid|fd' # mutants whose name matches
//	go run ./tests/mutate -list           # the list, checked, nothing run
//
// Flags: -timeout bounds each mutant's go test (default 10m; the suite's
// own bound on a hang is 60 s per wait); -full runs the whole suite for
// every mutant instead of its relevant tests; -keep keeps the copies.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A mutant is one plausible defect: in file, the one occurrence of old
// becomes new (and so for each of more, for a defect that moves code).
// tests are the suite's tests relevant to it: top-level test names or
// patterns, anchored by mutate.
type mutant struct {
	name  string
	file  string
	old   string
	new   string
	more  []edit
	tests []string
	// warns: the defect makes gcc -Wall -Wextra warn, as it would in
	// real code; run it anyway (the suite's analyzer test would catch
	// the warning, .ci/run's -Werror compile too, but the tests listed
	// must catch the defect itself).
	warns bool
}

type edit struct{ old, new string }

func (m mutant) edits() []edit { return append([]edit{{m.old, m.new}}, m.more...) }

type result struct {
	m       mutant
	outcome string // killed, SURVIVED, BUILD FAILED, ERROR
	by      string // the failing tests, or why
	output  string // what the failing tests printed
	took    time.Duration
}

func main() {
	run := flag.String("run", "", "run only the mutants whose name matches this regexp")
	list := flag.Bool("list", false, "check and list the mutants, run nothing")
	full := flag.Bool("full", false, "run the whole suite for each mutant, not its relevant tests")
	keep := flag.Bool("keep", false, "keep the temporary copies")
	timeout := flag.Duration("timeout", 10*time.Minute, "bound on each mutant's go test")
	flag.Parse()

	root, err := gitOut("", "rev-parse", "--show-toplevel")
	if err != nil {
		fatalf("not in a git repository: %v", err)
	}
	files, err := sourceFiles(root)
	if err != nil {
		fatalf("listing the repository's files: %v", err)
	}

	// Check every snippet first: a stale list fails loudly, before any run.
	var chosen []mutant
	var stale []string
	re, err := regexp.Compile(*run)
	if err != nil {
		fatalf("-run: %v", err)
	}
	declared, err := declaredTests(root, files)
	if err != nil {
		fatalf("listing the suite's tests: %v", err)
	}
	for _, m := range mutants {
		if err := check(root, m, declared); err != nil {
			stale = append(stale, err.Error())
		}
		if re.MatchString(m.name) {
			chosen = append(chosen, m)
		}
	}
	if len(stale) > 0 {
		fatalf("the mutant list is out of date with the code (tests/mutate/mutants.go):\n  %s",
			strings.Join(stale, "\n  "))
	}
	if *list {
		for i, m := range mutants {
			fmt.Printf("%2d. %-50s %s  -run %s\n", i+1, m.name, m.file, pattern(m.tests))
		}
		return
	}
	if len(chosen) == 0 {
		fatalf("no mutant matches -run %q", *run)
	}

	// Orphans of a run (a daemon whose test binary was killed at the
	// timeout) are re-parented to us, and reaped after each run.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fatalf("cannot become a child subreaper: %v", err)
	}
	interruptible()
	commit := describe(root)
	fmt.Printf("mutate: %d mutants at %s, go test -timeout %v each\n", len(chosen), commit, *timeout)

	// The unmutated copy must pass the same tests, or a kill means nothing.
	var all []string
	for _, m := range chosen {
		all = append(all, m.tests...)
	}
	base := runOne(root, files, mutant{name: "(none: the unmutated copy)", tests: all}, *full, *keep, *timeout)
	if base.outcome != "SURVIVED" {
		fatalf("the unmutated copy does not pass its tests (%s: %s); fix that first\n%s",
			base.outcome, base.by, base.output)
	}
	fmt.Printf("baseline: the unmutated copy passes, %s (%v)\n", base.by, base.took.Round(time.Second))

	var results []result
	for i, m := range chosen {
		fmt.Printf("[%d/%d] %s ... ", i+1, len(chosen), m.name)
		r := runOne(root, files, m, *full, *keep, *timeout)
		fmt.Printf("%s %s (%v)\n", r.outcome, r.by, r.took.Round(time.Second))
		results = append(results, r)
	}

	killed := 0
	fmt.Printf("\n| # | defect | file | result | failing tests |\n|---|---|---|---|---|\n")
	for i, r := range results {
		if r.outcome == "killed" {
			killed++
		}
		fmt.Printf("| %d | %s | `%s` | %s | %s |\n", i+1, r.m.name, r.m.file, r.outcome, r.by)
	}
	fmt.Printf("\nkilled %d/%d at %s on %s\n", killed, len(results), commit,
		time.Now().UTC().Format("2006-01-02 15:04 MST"))
	if killed != len(results) {
		os.Exit(1)
	}
}

// The run in progress, for interruptible.
var (
	current     sync.Mutex
	currentPgid int    // go test's process group, or 0
	currentDir  string // the mutated copy, or ""
)

// interruptible makes SIGINT, SIGTERM and SIGHUP stop go test and remove
// the copy. Handling them also means the suite does not inherit them
// ignored, as it would from a shell's background job (a test sends
// SIGINT to a launcher, which must keep an inherited SIG_IGN).
func interruptible() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		sig := <-sigs
		current.Lock()
		if currentPgid > 0 {
			syscall.Kill(-currentPgid, syscall.SIGKILL)
		}
		reapOrphans()
		if currentDir != "" {
			os.RemoveAll(currentDir)
		}
		fmt.Fprintf(os.Stderr, "\nmutate: stopped by %v\n", sig)
		os.Exit(128 + int(sig.(syscall.Signal)))
	}()
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "mutate: "+format+"\n", args...)
	os.Exit(2)
}

// declaredTests lists the Test functions of the module's test files.
func declaredTests(root string, files []string) ([]string, error) {
	re := regexp.MustCompile(`(?m)^func (Test[A-Za-z0-9_]*)\(`)
	var names []string
	for _, f := range files {
		if !strings.HasSuffix(f, "_test.go") || strings.Contains(f, "testdata/") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, f))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, m := range re.FindAllSubmatch(b, -1) {
			names = append(names, string(m[1]))
		}
	}
	return names, nil
}

// check verifies that m's snippet occurs exactly once in its file and that
// each of its test patterns names a test of the suite.
func check(root string, m mutant, declared []string) error {
	for _, t := range m.tests {
		re, err := regexp.Compile("^(" + t + ")$")
		if err != nil {
			return fmt.Errorf("%s: test pattern %q: %v", m.name, t, err)
		}
		found := false
		for _, name := range declared {
			found = found || re.MatchString(name)
		}
		if !found {
			return fmt.Errorf("%s: no test of the suite is named %s", m.name, t)
		}
	}
	b, err := os.ReadFile(filepath.Join(root, m.file))
	if err != nil {
		return fmt.Errorf("%s: %v", m.name, err)
	}
	for _, e := range m.edits() {
		switch n := strings.Count(string(b), e.old); {
		case n == 0:
			return fmt.Errorf("%s: snippet not found in %s: %q", m.name, m.file, e.old)
		case n > 1:
			return fmt.Errorf("%s: snippet found %d times in %s: %q", m.name, n, m.file, e.old)
		}
	}
	if len(m.tests) == 0 {
		return fmt.Errorf("%s: no tests listed", m.name)
	}
	return nil
}

func pattern(tests []string) string {
	seen := map[string]bool{}
	var names []string
	for _, t := range tests {
		if !seen[t] {
			seen[t] = true
			names = append(names, t)
		}
	}
	sort.Strings(names)
	return "^(" + strings.Join(names, "|") + ")$"
}

func gitOut(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

// describe names the code under test: the commit, and whether the
// working tree differs from it.
func describe(root string) string {
	commit, err := gitOut(root, "rev-parse", "--short=12", "HEAD")
	if err != nil {
		return "an unknown commit"
	}
	if st, _ := gitOut(root, "status", "--porcelain", "--untracked-files=no"); st != "" {
		commit += " (with uncommitted changes)"
	}
	return commit
}

// sourceFiles lists the files git tracks or would (not ignored), relative
// to root.
func sourceFiles(root string) ([]string, error) {
	out, err := gitOut(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	if err != nil {
		return nil, err
	}
	var files []string
	for _, f := range strings.Split(out, "\x00") {
		if f != "" {
			files = append(files, f)
		}
	}
	return files, nil
}

// copyTree copies files from root to dir, keeping modes and symlinks.
func copyTree(root, dir string, files []string) error {
	for _, f := range files {
		src, dst := filepath.Join(root, f), filepath.Join(dir, f)
		fi, err := os.Lstat(src)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the working tree
		}
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(src)
			if err == nil {
				err = os.Symlink(target, dst)
			}
			if err != nil {
				return err
			}
			continue
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(src)
		if err == nil {
			err = os.WriteFile(dst, b, fi.Mode().Perm())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// runOne runs m's tests on a mutated copy. A mutant with no snippet (the
// baseline) runs on the copy as it is.
func runOne(root string, files []string, m mutant, full, keep bool, timeout time.Duration) (r result) {
	start := time.Now()
	r.m = m
	defer func() { r.took = time.Since(start) }()
	dir, err := os.MkdirTemp("", "cdaemon-mutant-")
	if err != nil {
		fatalf("%v", err)
	}
	if keep {
		fmt.Printf("(copy in %s) ", dir)
	} else {
		current.Lock()
		currentDir = dir
		current.Unlock()
		defer func() {
			current.Lock()
			currentDir = ""
			current.Unlock()
			os.RemoveAll(dir)
		}()
	}
	if err := copyTree(root, dir, files); err != nil {
		fatalf("copying the repository to %s: %v", dir, err)
	}
	if m.old != "" {
		path := filepath.Join(dir, m.file)
		b, err := os.ReadFile(path)
		src := string(b)
		for _, e := range m.edits() {
			if n := strings.Count(src, e.old); n != 1 {
				r.outcome, r.by = "ERROR", fmt.Sprintf("the snippet occurs %d times in the copy: %q", n, e.old)
				return r
			}
			src = strings.Replace(src, e.old, e.new, 1)
		}
		if err == nil {
			err = os.WriteFile(path, []byte(src), 0o644)
		}
		if err != nil {
			fatalf("mutating %s: %v", path, err)
		}
	}

	// A mutant that does not build is a mistake in the list, not a kill.
	build := exec.Command("go", "build", "./...")
	build.Dir, build.Env = dir, goEnv()
	if out, err := build.CombinedOutput(); err != nil {
		r.outcome, r.by = "BUILD FAILED", firstLine(string(out))
		return r
	}
	if strings.HasSuffix(m.file, ".c") && !m.warns {
		cc := exec.Command("gcc", "-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-c", m.file, "-o", "/dev/null")
		cc.Dir = dir
		if out, err := cc.CombinedOutput(); err != nil {
			r.outcome, r.by = "BUILD FAILED", "warnings under -Werror: "+firstLine(string(out))
			return r
		}
	}

	args := []string{"test", "-count=1", "-failfast", "-json", "-timeout", timeout.String()}
	if !full {
		args = append(args, "-run", pattern(m.tests))
	}
	args = append(args, "./...")
	ctx, cancel := context.WithTimeout(context.Background(), timeout+2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir, cmd.Env = dir, goEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		fatalf("%v", err)
	}
	current.Lock()
	if err := cmd.Start(); err != nil {
		fatalf("go test: %v", err)
	}
	currentPgid = cmd.Process.Pid
	current.Unlock()
	ev := readEvents(stdout)
	err = cmd.Wait()
	current.Lock()
	currentPgid = 0
	reapOrphans()
	current.Unlock()

	switch {
	case ctx.Err() != nil:
		r.outcome, r.by = "ERROR", fmt.Sprintf("go test did not end within %v", timeout+2*time.Minute)
	case ev.buildFailed:
		r.outcome, r.by = "BUILD FAILED", firstLine(stderr.String())
	case err == nil && ev.passed == 0:
		r.outcome, r.by = "ERROR", "no test ran: is the -run pattern stale?"
	case err == nil:
		r.outcome, r.by = "SURVIVED", fmt.Sprintf("%d tests passed", ev.passed)
	case len(ev.failed) > 0:
		r.outcome, r.by = "killed", strings.Join(ev.failed, ", ")
		for _, name := range ev.failed {
			r.output += strings.Join(ev.output[name], "")
		}
	default:
		r.outcome, r.by = "killed", "the package failed: "+ev.lastOutput
	}
	if ev.timedOut {
		r.by += " (go test -timeout)"
	}
	return r
}

type events struct {
	passed      int      // top-level tests that passed
	failed      []string // top-level tests that failed
	buildFailed bool
	timedOut    bool
	lastOutput  string              // the last line of package output, for a failure outside tests
	output      map[string][]string // by top-level test
}

// readEvents reads go test -json output.
func readEvents(r io.Reader) events {
	ev := events{output: map[string][]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var e struct {
			Action, Package, Test, Output string
			FailedBuild                   string
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		top := e.Test != "" && !strings.Contains(e.Test, "/")
		if e.Action == "output" && e.Test != "" {
			name, _, _ := strings.Cut(e.Test, "/")
			ev.output[name] = append(ev.output[name], e.Output)
		}
		switch {
		case e.Action == "pass" && top:
			ev.passed++
		case e.Action == "fail" && top:
			ev.failed = append(ev.failed, e.Test)
		case e.Action == "fail" && e.FailedBuild != "":
			ev.buildFailed = true
		case e.Action == "output" && strings.Contains(e.Output, "panic: test timed out"):
			ev.timedOut = true
		case e.Action == "output" && e.Test == "" && strings.TrimSpace(e.Output) != "" &&
			!strings.HasPrefix(e.Output, "FAIL") && !strings.HasPrefix(e.Output, "ok"):
			ev.lastOutput = strings.TrimSpace(e.Output)
		}
	}
	return ev
}

// goEnv is our environment without CDAEMON_*, which would configure the
// programs the suite builds and runs.
func goEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CDAEMON") {
			env = append(env, kv)
		}
	}
	return env
}

// reapOrphans kills and reaps whatever was re-parented to us.
func reapOrphans() {
	for round := 0; round < 10; round++ {
		kids := children(os.Getpid())
		if len(kids) == 0 {
			return
		}
		for _, pid := range kids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		for _, pid := range kids {
			var ws syscall.WaitStatus
			syscall.Wait4(pid, &ws, 0, nil)
		}
	}
}

// children lists the pids whose parent is ppid, from /proc.
func children(ppid int) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) > 1 && f[1] == strconv.Itoa(ppid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// firstLine returns the first line that says "error", else the first line
// that is not a comment.
func firstLine(s string) string {
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, "error") {
			return strings.TrimSpace(line)
		}
	}
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			return line
		}
	}
	return strings.TrimSpace(s)
}
