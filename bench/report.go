package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// machine describes where the run happened.
type machine struct {
	cpus      int
	model     string
	kernel    string
	goVersion string
	loadStart string
	loadEnd   string
	date      time.Time
}

func describeMachine() machine {
	m := machine{cpus: runtime.NumCPU(), goVersion: runtime.Version(), date: time.Now().UTC(), model: "unknown"}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.kernel = unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:])
	}
	m.loadStart = loadavg()
	return m
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// The comparisons issue 3 set targets for: a's time to main over b's,
// per round, at an init weight.
type target struct {
	a, b string
	init time.Duration
	min  float64
}

var targets = []target{
	{"go-daemon", "cdaemon", 0, 1.4},
	{"go-daemon", "cdaemon-static", 0, 1.6},
	{"go-daemon", "cdaemon", 20 * time.Millisecond, 1.9},
	{"go-daemon", "cdaemon-static", 20 * time.Millisecond, 1.9},
	{"godaemon", "cdaemon", 20 * time.Millisecond, 2.8},
	{"godaemon", "cdaemon-static", 20 * time.Millisecond, 2.8},
}

// report holds what the tables need: the plan, the samples and where
// they were taken. It only reads them.
type report struct {
	p       *plan
	r       *results
	m       machine
	sizes   map[string]int64 // binary sizes by program key
	elapsed time.Duration

	replaced *replaceResults // the replacement runs (replace.go), or nil
}

func newReport(p *plan, r *results, m machine, sizes map[string]int64, elapsed time.Duration) *report {
	return &report{p: p, r: r, m: m, sizes: sizes, elapsed: elapsed}
}

// c names the case of a variant; its v is nil if the plan has no such
// variant, and has() is false for it.
func (rp *report) c(name string, init time.Duration, big bool) benchCase {
	return benchCase{v: rp.p.variant(name), init: init, big: big}
}

func (rp *report) has(c benchCase) bool {
	if c.v == nil {
		return false
	}
	_, ok := rp.r.s[c.String()]
	return ok
}

// ran says whether any case of v was measured.
func (rp *report) ran(v *variant) bool {
	for _, c := range rp.p.cases {
		if c.v == v {
			return true
		}
	}
	return false
}

func fmtDist(d dist, prec int) string {
	if d.n == 0 || math.IsNaN(d.med) {
		return "–"
	}
	return fmt.Sprintf("%.*f [%.*f–%.*f]", prec, d.med, prec, d.p10, prec, d.p90)
}

// printer writes formatted text to w.
type printer func(format string, a ...any)

// markdown writes the report: one section after another.
func (rp *report) markdown(w io.Writer) {
	p := printer(func(format string, a ...any) { fmt.Fprintf(w, format, a...) })
	rp.intro(p)
	if rp.kindRan(kindStart) {
		rp.timeTable(p, "Time to daemon main", toMainMs)
		rp.timeTable(p, "Launcher return", toRetMs)
		rp.targets(p)
		rp.naiveRatios(p)
		rp.ratios(p)
		rp.added(p)
		rp.breakdown(p)
		rp.peakRSS(p)
	}
	rp.firstResponse(p)
	rp.runResponse(p)
	rp.restart(p)
	rp.command(p)
	rp.replacing(p)
	rp.forkCost(p)
	rp.notMeasured(p)
	rp.variantNotes(p)
}

// intro says what ran, where, and how to read the cells.
func (rp *report) intro(p printer) {
	m := rp.m
	p("# cdaemon start-up benchmark\n\n")
	p("Made by `%s` on %s.\n\n", rp.p.command, m.date.Format("2006-01-02 15:04 UTC"))
	p("Machine: %d CPUs, %s, %s, %s; load average %s at the start, %s at the end (the machine is shared).\n",
		m.cpus, m.model, m.kernel, m.goVersion, m.loadStart, m.loadEnd)
	p("%d rounds; in each, every case below ran once, the cases compared with each other back to back, in a fresh random\n", rp.r.rounds)
	p("order; %s in all.\n\n", rp.elapsed.Round(time.Second))
	p("cdaemon built from %s.\n", rp.p.base.desc)
	if rp.p.exp != nil {
		p("exp built from %s.\n", rp.p.exp.desc)
	}
	p("\n")
	p("Each cell: median [p10–p90] over the rounds. Times in ms from the spawn of the launcher (CLOCK_MONOTONIC read\n")
	p("just before vfork by the harness's spawner): *time to main* is when the daemon's code starts (for the re-exec\n")
	p("libraries: when Reborn/MakeDaemon returns in the daemon); *launcher return* is when the launcher has exited.\n")
	p("Init weights are CPU time spent in a package init")
	if rp.p.big {
		p("; the big size is a %.0f MB binary (std packages and a generated table)", float64(rp.sizes["cdaemon-big"])/1e6)
	}
	p(".\n\n")
}

// header writes a table's head: first, a column per init weight and, for
// the big binary, one titled big.
func (rp *report) header(p printer, first, big string) {
	p("| %s |", first)
	for _, w := range rp.p.inits {
		p(" init %s |", fmtDur(w))
	}
	if rp.p.big {
		p(" %s |", big)
	}
	p("\n|---|")
	for range rp.p.inits {
		p("---:|")
	}
	if rp.p.big {
		p("---:|")
	}
	p("\n")
}

// timeTable is one metric for every variant at every init weight and size.
func (rp *report) timeTable(p printer, title string, mt metric) {
	p("## %s (ms)\n\n", title)
	rp.header(p, "variant", "big, init 0")
	for _, v := range rp.p.variants {
		if v.kind != kindStart || !rp.ran(v) {
			continue
		}
		p("| %s |", v.name)
		for _, w := range rp.p.inits {
			if !v.sweep && w != 0 {
				p(" |")
				continue
			}
			p(" %s |", fmtDist(rp.r.dist(rp.c(v.name, w, false), mt), 2))
		}
		if rp.p.big {
			if v.sweep {
				p(" %s |", fmtDist(rp.r.dist(rp.c(v.name, 0, true), mt), 2))
			} else {
				p(" |")
			}
		}
		p("\n")
	}
	p("\n")
}

// forkFloor is what two forks cost a small C program: c-fork − c-nofork,
// paired per round.
func (rp *report) forkFloor() dist {
	return rp.r.paired(rp.c("c-fork", 0, false), rp.c("c-nofork", 0, false), toMainMs, minus)
}

// targets checks the ratios issue 3 set targets for.
func (rp *report) targets(p printer) {
	r := rp.r
	p("## Targets from issue 3 (time to main, paired per round)\n\n")
	p("| comparison | init | measured: median [p10–p90] of the per-round ratios | ratio of medians | target | met |\n|---|---|---:|---:|---:|---|\n")
	ff := rp.forkFloor()
	for _, d := range [][2]string{{"cdaemon", "cgo"}, {"cdaemon-static", "cgo-static"}, {"exp", "cgo"}, {"exp-static", "cgo-static"}} {
		a, b := rp.c(d[0], 0, false), rp.c(d[1], 0, false)
		if !rp.has(a) || !rp.has(b) || ff.n == 0 {
			continue
		}
		x := r.paired(a, b, toMainMs, minus)
		p("| added by %s (%s − %s) over the fork floor (c-fork − c-nofork) | 0 | %.3f ms over %.3f ms | %.2f× | ≤ 1.15× | %s |\n",
			d[0], d[0], d[1], x.med, ff.med, x.med/ff.med, yesNo(x.med/ff.med <= 1.15))
	}
	for _, t := range targets {
		a, b := rp.c(t.a, t.init, false), rp.c(t.b, t.init, false)
		if !rp.has(a) || !rp.has(b) {
			continue
		}
		d := r.paired(a, b, toMainMs, ratio)
		rom := r.dist(a, toMainMs).med / r.dist(b, toMainMs).med
		p("| %s / %s | %s | %s | %.2f | ≥ %.1f× | %s |\n", t.a, t.b, fmtDur(t.init), fmtDist(d, 2), rom, t.min, yesNo(d.med >= t.min))
	}
	p("\n")
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// naiveTargets: cdaemon's time to main over the naive recipe's in the same
// binary, paired per round, at init 0: issue 19's target, ≤ 1.00 (issue 10
// had set ≤ 1.05).
var naiveTargets = [][2]string{
	{"cdaemon", "naive"}, {"cdaemon-static", "naive-static"},
	{"exp", "naive"}, {"exp-static", "naive-static"},
}

// naiveRatios compares cdaemon with the naive recipe in the same binary,
// and exp with cdaemon, at every weight.
func (rp *report) naiveRatios(p printer) {
	rows := append(append([][2]string{}, naiveTargets...),
		[2]string{"cdaemon-none", "naive"}, [2]string{"exp-none", "naive"},
		// What a session of its own costs a process that was not forked,
		// and what forking adds to that.
		[2]string{"cgo-setsid", "cgo"}, [2]string{"naive", "cgo-setsid"}, [2]string{"cdaemon", "cgo-setsid"},
		[2]string{"exp", "cdaemon"}, [2]string{"exp-static", "cdaemon-static"}, [2]string{"exp-none", "cdaemon-none"})
	if !rp.has(rp.c("naive", 0, false)) && !rp.has(rp.c("exp", 0, false)) {
		return
	}
	p("## cdaemon against the naive recipe in the same binary (time to main, paired per round)\n\n")
	p("Target (issue 19): cdaemon / naive ≤ 1.00 at init 0 (goal 0.95; issue 10 had set ≤ 1.05). Each cell: median [p10–p90] of the per-round ratios.\n\n")
	rp.header(p, "ratio", "big")
	for _, d := range rows {
		if !rp.has(rp.c(d[0], 0, false)) || !rp.has(rp.c(d[1], 0, false)) {
			continue
		}
		p("| %s / %s |", d[0], d[1])
		for _, w := range rp.p.inits {
			p(" %s |", fmtDist(rp.r.paired(rp.c(d[0], w, false), rp.c(d[1], w, false), toMainMs, ratio), 3))
		}
		if rp.p.big {
			p(" %s |", fmtDist(rp.r.paired(rp.c(d[0], 0, true), rp.c(d[1], 0, true), toMainMs, ratio), 3))
		}
		p("\n")
	}
	p("\n| at init 0 | ratio, median [p10–p90] | target | met |\n|---|---:|---:|---|\n")
	for _, d := range naiveTargets {
		a, b := rp.c(d[0], 0, false), rp.c(d[1], 0, false)
		if !rp.has(a) || !rp.has(b) {
			continue
		}
		x := rp.r.paired(a, b, toMainMs, ratio)
		p("| %s / %s | %s | ≤ 1.00 | %s |\n", d[0], d[1], fmtDist(x, 3), yesNo(x.med <= 1.00))
	}
	p("\n")
}

// ratios compares the peers and the floors with cdaemon at every weight.
func (rp *report) ratios(p printer) {
	p("All init weights, against the dynamic and static cdaemon:\n\n")
	rp.header(p, "ratio", "big")
	for _, a := range []string{"go-daemon", "godaemon", "go", "cgo"} {
		for _, b := range []string{"cdaemon", "cdaemon-static", "exp", "exp-static"} {
			if !rp.has(rp.c(a, 0, false)) || !rp.has(rp.c(b, 0, false)) {
				continue
			}
			p("| %s / %s |", a, b)
			for _, w := range rp.p.inits {
				p(" %s |", fmtDist(rp.r.paired(rp.c(a, w, false), rp.c(b, w, false), toMainMs, ratio), 2))
			}
			if rp.p.big {
				p(" %s |", fmtDist(rp.r.paired(rp.c(a, 0, true), rp.c(b, 0, true), toMainMs, ratio), 2))
			}
			p("\n")
		}
	}
	p("\n")
}

// added is what daemonizing adds to the undaemonized program, against the
// fork floor.
func (rp *report) added(p printer) {
	p("## What cdaemon adds, against what two forks cost a C program (time to main, init 0, small)\n\n")
	p("Paired per round: the daemonized program's time minus the undaemonized one's in the same round.\n\n")
	p("| added by | difference | added ms, median [p10–p90] | ratio to the fork floor (of medians) |\n|---|---|---:|---:|\n")
	ff := rp.forkFloor()
	for _, d := range [][3]string{
		{"fork floor", "c-fork − c-nofork", ""},
		{"cdaemon, dynamic", "cdaemon − cgo", ""},
		{"cdaemon, dynamic", "cdaemon − cdaemon-off", ""},
		{"a new session alone", "cgo-setsid − cgo", ""},
		{"cdaemon, static", "cdaemon-static − cgo-static", ""},
		{"cdaemon, dynamic, big", "cdaemon − cgo", "big"},
		{"cdaemon, static, big", "cdaemon-static − cgo-static", "big"},
		{"exp, dynamic", "exp − cgo", ""},
		{"exp, static", "exp-static − cgo-static", ""},
		{"exp against cdaemon, dynamic", "exp − cdaemon", ""},
		{"exp against cdaemon, static", "exp-static − cdaemon-static", ""},
	} {
		a, b, _ := strings.Cut(d[1], " − ")
		big := d[2] == "big"
		if !rp.has(rp.c(a, 0, big)) || !rp.has(rp.c(b, 0, big)) || ff.n == 0 {
			continue
		}
		x := rp.r.paired(rp.c(a, 0, big), rp.c(b, 0, big), toMainMs, minus)
		if x.n == 0 {
			continue
		}
		p("| %s | %s | %s | %.2f× |\n", d[0], d[1]+map[bool]string{true: " (big)"}[big], fmtDist(x, 3), x.med/ff.med)
	}
	p("\n")
}

// breakdown splits cdaemon's time to main at the constructor's entry.
func (rp *report) breakdown(p printer) {
	p("Where cdaemon's time to main goes (init 0): from spawn to the constructor's entry in the launcher (exec,\n")
	p("dynamic loading, libc start-up), then from the entry to the daemon's main (two forks, the daemon's set-up,\n")
	p("Go runtime start-up and package init in the daemon). cdaemon-off, which does not fork, shows what the same\n")
	p("start-up costs in a process that was exec'd. *Waited for a CPU*: the daemon's main thread's time on a run\n")
	p("queue before main (schedstat run_delay, from its creation): on a loaded machine each new process waits.\n\n")
	p("| variant | spawn → constructor | constructor → main | time to main | waited for a CPU |\n|---|---:|---:|---:|---:|\n")
	for _, n := range []string{"cgo", "cdaemon-off", "naive", "cdaemon", "naive-static", "cdaemon-static", "cdaemon-none", "exp", "exp-static", "exp-none"} {
		for _, big := range []bool{false, true} {
			c := rp.c(n, 0, big)
			if !rp.has(c) {
				continue
			}
			p("| %s%s | %s | %s | %s | %s |\n", n, map[bool]string{true: " (big)"}[big], fmtDist(rp.r.dist(c, toEntryMs), 3),
				fmtDist(rp.r.dist(c, entryToMs), 3), fmtDist(rp.r.dist(c, toMainMs), 3), fmtDist(rp.r.dist(c, runDelayMs), 3))
		}
	}
	p("\n")
}

// peakRSS is the launcher's and the daemon's peak resident set, and the
// binaries' sizes.
func (rp *report) peakRSS(p printer) {
	p("## Peak RSS (kB, median), init 0\n\n")
	p("Launcher: its ru_maxrss from wait4 (includes children it reaped, such as cdaemon's middle process, and the\n")
	p("spawner's few hundred kB it starts from: see c-nofork). Daemon: VmHWM as its main reports.\n\n")
	p("| variant | launcher | daemon | launcher, big | daemon, big | binary | binary, big |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, v := range rp.p.variants {
		if v.kind != kindStart || !rp.ran(v) {
			continue
		}
		med := func(big bool, mt metric) string {
			c := rp.c(v.name, 0, big)
			if !rp.has(c) {
				return ""
			}
			d := rp.r.dist(c, mt)
			if d.n == 0 {
				return ""
			}
			return fmt.Sprintf("%.0f", d.med)
		}
		daemon := func(big bool) string {
			if !rp.has(rp.c(v.name, 0, big)) {
				return ""
			}
			if !v.daemon {
				return "(same process)"
			}
			return med(big, daemonRSS)
		}
		p("| %s | %s | %s | %s | %s | %s | %s |\n", v.name, med(false, launchRSS), daemon(false),
			med(true, launchRSS), daemon(true), fmtSize(rp.sizes, v.prog), fmtSize(rp.sizes, v.prog+"-big"))
	}
	p("\n")
}

// fmtSize is a binary's size: kB below 1 MB, MB as 10^6 bytes.
func fmtSize(sizes map[string]int64, key string) string {
	n, ok := sizes[key]
	switch {
	case !ok:
		return ""
	case n < 1e6:
		return fmt.Sprintf("%.0f kB", float64(n)/1e3)
	default:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
}

// notMeasured lists the variants the library could not run, and why.
func (rp *report) notMeasured(p printer) {
	if len(rp.p.missing) == 0 {
		return
	}
	p("## Not measured\n\n")
	for _, m := range rp.p.missing {
		p("- %s.\n", m)
	}
	p("\n")
}

// variantNotes says what each variant is.
func (rp *report) variantNotes(p printer) {
	p("Variants:\n\n")
	for _, v := range rp.p.variants {
		if rp.ran(v) && v.kind != kindFork {
			p("- `%s`%s: %s\n", v.name, map[kind]string{kindResponse: " (first response)", kindRestart: " (restart)", kindCommand: " (command)", kindRun: " (run)"}[v.kind], v.note)
		}
	}
}

// files are the names write puts in its directory.
func (rp *report) files() []string {
	fs := []string{"README-table.md", "benchstat.txt"}
	for _, c := range rp.charts() {
		fs = append(fs, c.name)
	}
	return fs
}

// charts are the charts of the kinds of case that ran (a run limited
// with -only to the restart has none of start-up).
func (rp *report) charts() []struct {
	name string
	draw func(string) error
} {
	var cs []struct {
		name string
		draw func(string) error
	}
	for _, c := range []struct {
		k    kind
		name string
		draw func(string) error
	}{{kindStart, "startup.png", rp.startupChart}, {kindResponse, "response.png", rp.responseChart}, {kindFork, "forkcost.png", rp.forkChart}} {
		if rp.kindRan(c.k) {
			cs = append(cs, struct {
				name string
				draw func(string) error
			}{c.name, c.draw})
		}
	}
	if rp.replaced != nil {
		cs = append(cs, struct {
			name string
			draw func(string) error
		}{"replace.png", rp.replaceChart})
	}
	return cs
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
	chart := func(draw func(string) error) func(string) error {
		return func(p string) error {
			// gonum picks the format from the extension.
			tmp := strings.TrimSuffix(p, ".tmp") + ".tmp.png"
			if err := draw(tmp); err != nil {
				return err
			}
			return os.Rename(tmp, p)
		}
	}
	if err := put("README-table.md", text(rp.markdown)); err != nil {
		return err
	}
	if err := put("benchstat.txt", text(rp.benchstat)); err != nil {
		return err
	}
	for _, c := range rp.charts() {
		if err := put(c.name, chart(c.draw)); err != nil {
			return err
		}
	}
	return nil
}

// benchstat writes one line per run, in the format of go test -bench, so
// benchstat can summarize and compare runs (e.g. two -out directories).
func (rp *report) benchstat(w io.Writer) {
	fmt.Fprintf(w, "goos: linux\ngoarch: %s\npkg: github.com/cdaemon/cdaemon/bench\ncpu: %s\n", runtime.GOARCH, rp.m.model)
	for i := 0; i < rp.r.rounds; i++ {
		for _, c := range rp.r.cases {
			s := rp.r.get(c)[i]
			if s == nil {
				continue
			}
			fmt.Fprintf(w, "%s 1", c.benchName())
			switch c.v.kind {
			case kindStart:
				fmt.Fprintf(w, " %d ns/main %d ns/return %d B/launcher-rss", s.toMain(), s.toRet(), s.launcherRSS*1024)
				if s.runDelay > 0 {
					fmt.Fprintf(w, " %d ns/run-delay", s.runDelay)
				}
				if c.v.daemon {
					fmt.Fprintf(w, " %d B/daemon-rss", s.daemonRSS*1024)
				}
			case kindResponse, kindRun:
				fmt.Fprintf(w, " %d ns/first-response %d refused %d ns/run-delay", s.first-s.spawn, s.refused, s.runDelay)
			case kindRestart:
				fmt.Fprintf(w, " %d ns/restart %d ns/stop %d refused", s.stop1-s.stop0+s.first-s.spawn, s.stop1-s.stop0, s.refused)
			case kindCommand:
				fmt.Fprintf(w, " %d ns/command", s.ret-s.spawn)
			case kindFork:
				fmt.Fprintf(w, " %d ns/fork %d ns/child-writes %d ns/vfork %d ns/posix-spawn %d B/rss", s.forkNs, s.writesNs, s.vforkNs, s.spawnNs, s.rssKB*1024)
			}
			fmt.Fprintln(w)
		}
	}
}
