// Command bench measures how fast a Go program becomes a daemon: cdaemon's
// fork before the Go runtime starts, against re-executing the program
// (sevlyar/go-daemon once, VividCortex/godaemon twice), the undaemonized
// program and a C program doing the same double fork.
//
//	go -C bench run . [-n ROUNDS] [-init 0,5ms,20ms,100ms] [-out DIR]
//
// It builds every variant into a temp dir, runs every case once per round
// (in a fresh random order each round), and writes a Markdown table (also
// printed), a chart, benchstat lines and the raw samples to -out.
package main

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

type config struct {
	rounds   int
	inits    []time.Duration
	big      bool   // also the big program size
	out      string // "" writes nothing
	stdout   io.Writer
	progress io.Writer // nil: no progress indicator
	command  string
	keep     bool // keep the temp dir (for profiling by hand)
	only     *regexp.Regexp
	exp      string // files to replace the library's with, for the exp variants
}

func main() {
	n := flag.Int("n", 30, "rounds: every case runs once per round")
	initList := flag.String("init", "0,5ms,20ms,100ms", "package-init weights (CPU time), comma-separated")
	out := flag.String("out", "", "directory for the results (default: results/ in the bench module)")
	noBig := flag.Bool("nobig", false, "skip the big program size")
	keep := flag.Bool("keep", false, "keep the built programs (their directory is printed)")
	exp := flag.String("exp", "", "also measure cdaemon built with these files (comma-separated, e.g. a changed cdaemon.c) in place of the library's files of the same name (variants exp, exp-none, exp-static)")
	only := flag.String("only", "", "run only the cases whose name matches this regexp (for profiling)")
	flag.Parse()

	inits, err := parseInits(*initList)
	if err != nil || *n < 1 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "bench: bad arguments:", err)
		flag.Usage()
		os.Exit(2)
	}
	re, err := regexp.Compile(*only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: -only:", err)
		os.Exit(2)
	}
	cfg := config{rounds: *n, inits: inits, big: !*noBig, out: *out, stdout: os.Stdout, keep: *keep, only: re, exp: *exp,
		command: "go -C bench run . " + strings.Join(os.Args[1:], " ")}
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

func parseInits(s string) ([]time.Duration, error) {
	var ds []time.Duration
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "0" {
			ds = append(ds, 0)
			continue
		}
		d, err := time.ParseDuration(f)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("-init: %q is not a duration", f)
		}
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	if len(ds) == 0 || ds[0] != 0 {
		ds = append([]time.Duration{0}, ds...) // the comparisons need init 0
	}
	return ds, nil
}

// run builds the programs, measures every case for cfg.rounds rounds, and
// writes the report.
func run(cfg config) (*report, error) {
	start := time.Now()
	benchDir, err := findBenchDir()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "cdaemon-bench-")
	if err != nil {
		return nil, err
	}
	if cfg.keep {
		fmt.Fprintln(os.Stderr, "bench: programs in", filepath.Join(tmp, "bin"))
	} else {
		defer os.RemoveAll(tmp)
	}
	progress(cfg, "building the programs...")
	progs := programs
	if cfg.exp != "" {
		var files []string
		for _, f := range strings.Split(cfg.exp, ",") {
			abs, err := filepath.Abs(f)
			if err != nil {
				return nil, err
			}
			if _, err := os.Stat(abs); err != nil {
				return nil, fmt.Errorf("-exp: %w", err)
			}
			files = append(files, abs)
		}
		cfg.exp = strings.Join(files, ",")
		progs = append(append([]program{}, programs...), expPrograms...)
		variants = append(variants, expVariants...)
		defer func() { variants = variants[:len(variants)-len(expVariants)] }()
	}
	bins, err := build(benchDir, tmp, cfg.big, cfg.exp, progs)
	if err != nil {
		return nil, err
	}
	sizes := map[string]int64{}
	for k, p := range bins {
		if fi, err := os.Stat(p); err == nil {
			sizes[k] = fi.Size()
		}
	}

	rp := &report{m: describeMachine(), inits: cfg.inits, big: cfg.big, command: cfg.command, sizes: sizes}
	cs := cases(cfg.inits, cfg.big)
	if cfg.only != nil {
		var keep []benchCase
		for _, c := range cs {
			if cfg.only.MatchString(c.String()) {
				keep = append(keep, c)
			}
		}
		cs = keep
	}
	rp.r = newResults(cs, cfg.rounds)

	h, err := newHarness(tmp, bins)
	if err != nil {
		return nil, err
	}
	// Interrupted: kill and reap everything, remove the temp dir.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	stop := make(chan struct{})
	defer func() { signal.Stop(sig); close(stop) }()
	go func() {
		select {
		case <-sig:
			h.killAll()
			os.RemoveAll(tmp)
			fmt.Fprintln(os.Stderr, "\nbench: interrupted")
			os.Exit(130)
		case <-stop:
		}
	}()

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	// One unmeasured round first: page cache, CPU frequency, lazy setup.
	for round := -1; round < cfg.rounds; round++ {
		for k, i := range roundOrder(cs, rng) {
			c := cs[i]
			if round >= 0 {
				progress(cfg, fmt.Sprintf("round %d/%d  case %d/%d  %s", round+1, cfg.rounds, k+1, len(cs), c))
			} else {
				progress(cfg, fmt.Sprintf("warm-up  case %d/%d  %s", k+1, len(cs), c))
			}
			s, err := h.run(c)
			if err != nil {
				h.close()
				return nil, err
			}
			if round >= 0 {
				rp.r.get(c)[round] = &s
			}
		}
	}
	h.close()
	if kids := processChildren(); len(kids) > 0 {
		return nil, fmt.Errorf("processes left behind: %v", kids)
	}
	progress(cfg, "")
	rp.m.loadEnd = loadavg()
	rp.elapsed = time.Since(start)

	if cfg.stdout != nil {
		rp.markdown(cfg.stdout)
	}
	if cfg.out != "" {
		if err := rp.write(cfg.out); err != nil {
			return rp, err
		}
		if cfg.stdout != nil {
			fmt.Fprintf(cfg.stdout, "\nWritten to %s: README-table.md, startup.png, benchstat.txt\n", cfg.out)
		}
	}
	return rp, nil
}

// roundOrder is the order of one round: the cases that are compared with
// each other (same init weight and size; the C programs go with init 0,
// small) run back to back, in a random order, and these groups come in a
// random order too. A burst of load from elsewhere on the shared machine
// then tends to hit both sides of a paired comparison, not one.
func roundOrder(cs []benchCase, rng *rand.Rand) []int {
	groups := map[string][]int{}
	var keys []string
	for i, c := range cs {
		k := fmtDur(c.init) + "/" + c.size()
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], i)
	}
	rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	var order []int
	for _, k := range keys {
		g := groups[k]
		rng.Shuffle(len(g), func(i, j int) { g[i], g[j] = g[j], g[i] })
		order = append(order, g...)
	}
	return order
}

// write puts the table, the chart and the benchstat lines in dir,
// each written to a temp file first so a failed run leaves the old ones.
func (rp *report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	put := func(name string, f func(string) error) error {
		tmp := filepath.Join(dir, name+".tmp")
		if err := f(tmp); err != nil {
			os.Remove(tmp)
			return err
		}
		return os.Rename(tmp, filepath.Join(dir, name))
	}
	text := func(w func(io.Writer)) func(string) error {
		return func(path string) error {
			f, err := os.Create(path)
			if err != nil {
				return err
			}
			w(f)
			return f.Close()
		}
	}
	if err := put("README-table.md", text(rp.markdown)); err != nil {
		return err
	}
	if err := put("benchstat.txt", text(rp.benchstat)); err != nil {
		return err
	}
	return put("startup.png", func(p string) error {
		// gonum picks the format from the extension.
		tmp := strings.TrimSuffix(p, ".tmp") + ".tmp.png"
		if err := rp.chart(tmp); err != nil {
			return err
		}
		return os.Rename(tmp, p)
	})
}

var lastProgress time.Time

// progress shows one status line on a terminal, rewritten in place.
func progress(cfg config, msg string) {
	if cfg.progress == nil {
		return
	}
	if msg != "" && time.Since(lastProgress) < 100*time.Millisecond {
		return
	}
	lastProgress = time.Now()
	if len(msg) > 100 {
		msg = msg[:100]
	}
	fmt.Fprintf(cfg.progress, "\r\033[K%s", msg)
}
