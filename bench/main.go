// Command bench measures how fast a Go program becomes a daemon: cdaemon's
// fork before the Go runtime starts, against re-executing the program
// (sevlyar/go-daemon once, VividCortex/godaemon twice), the undaemonized
// program and a C program doing the same double fork.
//
//	go -C bench run . [-n ROUNDS] [-init 0,5ms,20ms,100ms] [-out DIR]
//
// Data flows one way: the command line makes a plan (plan.go); the plan's
// programs are built (build.go); its cases are measured round by round
// (measure.go, harness.go); the samples are summarized (stats.go) into a
// report (report.go) with a chart (chart.go), written to -out.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	n := flag.Int("n", 30, "rounds: every case runs once per round")
	initList := flag.String("init", "0,5ms,20ms,100ms", "package-init weights (CPU time), comma-separated")
	serveInit := flag.String("serve-init", "0,20ms", "package-init weights of the first-response and restart cases")
	forkMem := flag.String("forkmem", "0,16,64,256,1024", "resident MiB at which fork cost is measured, comma-separated (\"\" for none)")
	out := flag.String("out", "", "directory for the results (default: results/ in the bench module)")
	noBig := flag.Bool("nobig", false, "skip the big program size")
	keep := flag.Bool("keep", false, "keep the built programs (their directory is printed)")
	base := flag.String("base", "", "build the cdaemon variants from this library `source`: a directory (a worktree), a git revision of the library, or FILE[,FILE] in place of the library's files of the same name (default: the library this module is in)")
	exp := flag.String("exp", "", "also build cdaemon from this library `source` (as -base) and measure it as exp, exp-none, exp-static in the same rounds, paired")
	replacements := flag.Int("replacements", 100, "replacements of a running server under load per replacement variant (0: none)")
	only := flag.String("only", "", "run only the cases whose name matches this regexp (for profiling)")
	flag.Parse()

	inits, err := parseInits("-init", *initList)
	var serveInits []time.Duration
	var mem []int
	if err == nil {
		serveInits, err = parseInits("-serve-init", *serveInit)
	}
	if err == nil {
		mem, err = parseMem(*forkMem)
	}
	if err != nil || *n < 1 || *replacements < 0 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "bench: bad arguments:", err)
		flag.Usage()
		os.Exit(2)
	}
	cfg := config{rounds: *n, inits: inits, serveInits: serveInits, forkMem: mem, big: !*noBig, out: *out, stdout: os.Stdout, keep: *keep, only: *only, base: *base, exp: *exp, replacements: *replacements,
		command: commandLine(os.Args[1:])}
	if _, err := unix.IoctlGetTermios(2, unix.TCGETS); err == nil {
		cfg.progress = os.Stderr
	}
	if cfg.out == "" {
		dir, err := findBenchDir()
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		cfg.out = filepath.Join(dir, "results")
	}
	if _, err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseInits(flag, s string) ([]time.Duration, error) {
	var ds []time.Duration
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "0" {
			ds = append(ds, 0)
			continue
		}
		d, err := time.ParseDuration(f)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("%s: %q is not a duration", flag, f)
		}
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	if len(ds) == 0 || ds[0] != 0 {
		ds = append([]time.Duration{0}, ds...) // the comparisons need init 0
	}
	return ds, nil
}

// commandLine is the command as a shell would take it back.
func commandLine(args []string) string {
	cmd := "go -C bench run ."
	for _, a := range args {
		if strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./,=:") != "" || a == "" {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		cmd += " " + a
	}
	return cmd
}

func parseMem(s string) ([]int, error) {
	var ms []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		m, err := strconv.Atoi(f)
		if err != nil || m < 0 || m > 1<<16 {
			return nil, fmt.Errorf("-forkmem: %q is not a size in MiB (0 to 65536)", f)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// run makes the plan, builds its programs, measures every case for the
// plan's rounds, and writes the report.
func run(cfg config) (*report, error) {
	start := time.Now()
	p, err := newPlan(cfg)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "cdaemon-bench-")
	if err != nil {
		return nil, err
	}
	if p.keep {
		fmt.Fprintln(os.Stderr, "bench: programs in", filepath.Join(tmp, "bin"))
	} else {
		defer os.RemoveAll(tmp)
	}
	pr := newProgress(cfg.progress)
	pr.show("building the programs...")
	bins, err := build(p, tmp)
	if err != nil {
		return nil, err
	}
	m := describeMachine()
	res, err := measure(p, tmp, bins, pr)
	if err != nil {
		return nil, err
	}
	var replaced *replaceResults
	if len(p.replace) > 0 {
		if replaced, err = measureReplace(p, tmp, bins, pr); err != nil {
			return nil, err
		}
	}
	pr.show("")
	m.loadEnd = loadavg()
	rp := newReport(p, res, m, binarySizes(bins), time.Since(start))
	rp.replaced = replaced
	if cfg.stdout != nil {
		rp.markdown(cfg.stdout)
	}
	if cfg.out != "" {
		if err := rp.write(cfg.out); err != nil {
			return rp, err
		}
		if cfg.stdout != nil {
			fmt.Fprintf(cfg.stdout, "\nWritten to %s: %s\n", cfg.out, strings.Join(rp.files(), ", "))
		}
	}
	return rp, nil
}

func binarySizes(bins map[string]string) map[string]int64 {
	sizes := map[string]int64{}
	for k, p := range bins {
		if fi, err := os.Stat(p); err == nil {
			sizes[k] = fi.Size()
		}
	}
	return sizes
}
