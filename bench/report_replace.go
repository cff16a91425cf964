package main

import (
	"fmt"
	"image/color"
	"math"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// replaceStats is what the section shows of one variant.
type replaceStats struct {
	n                      int       // replacements
	failed, refused        []int     // per replacement
	steadyFailed           int       // failures outside every replacement
	toServe                dist      // ms from the command to the new instance's first 200
	toReturn               dist      // ms from the command to its return
	steady, during         []float64 // request latencies, ms
	steadyN, duringN       int
	p50s, p99s, p50d, p99d float64
}

// stats classifies every request of a run: during a replacement (it was
// under way at some time between the command and the end of that
// replacement: the new instance answered and the old one was gone) or in
// the steady state.
func (run *replaceRun) stats() replaceStats {
	st := replaceStats{n: len(run.repl), failed: make([]int, len(run.repl)), refused: make([]int, len(run.repl))}
	repl := append([]replacement(nil), run.repl...)
	sort.Slice(repl, func(i, j int) bool { return repl[i].cmd < repl[j].cmd })
	var serve, ret []float64
	for _, r := range repl {
		serve = append(serve, float64(r.serve-r.cmd)/1e6)
		ret = append(ret, float64(r.ret-r.cmd)/1e6)
	}
	st.toServe, st.toReturn = summarize(serve), summarize(ret)
	for _, q := range run.reqs {
		i := sort.Search(len(repl), func(i int) bool { return repl[i].end() >= q.start })
		in := i < len(repl) && repl[i].cmd <= q.start+q.dur // it overlaps the replacement
		ms := float64(q.dur) / 1e6
		switch {
		case in && q.outcome == reqRefused:
			st.refused[i]++
		case in && q.outcome == reqFailed:
			st.failed[i]++
		case in:
			st.during = append(st.during, ms)
		case q.outcome != reqOK:
			st.steadyFailed++
		case q.start >= run.warmupNs:
			st.steady = append(st.steady, ms)
		}
	}
	st.steadyN, st.duringN = len(st.steady), len(st.during)
	sort.Float64s(st.steady)
	sort.Float64s(st.during)
	st.p50s, st.p99s, st.p50d, st.p99d = pct(st.steady, 0.5), pct(st.steady, 0.99), pct(st.during, 0.5), pct(st.during, 0.99)
	return st
}

func pct(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	return quantile(sorted, q)
}

func sumMax(v []int) (int, int, int) {
	t, m, with := 0, 0, 0
	for _, x := range v {
		t += x
		m = max(m, x)
		if x > 0 {
			with++
		}
	}
	return t, m, with
}

// replacing is the section "Replacing a running daemon".
func (rp *report) replacing(p printer) {
	rr := rp.replaced
	if rr == nil {
		return
	}
	p("## Replacing a running daemon\n\n")
	p("%d consecutive replacements of an HTTP server (it drains on SIGTERM with `http.Server.Shutdown`) per variant,\n", rr.n)
	p("under continuous load from two clients: one opening a new connection for every request as fast as it can,\n")
	p("one reusing keep-alive connections (each pauses 100 µs after a failure). The variants' servers run side by\n")
	p("side and are replaced in blocks of %d, one variant under load at a time, in a random order per block.\n", rr.block)
	p("A replacement lasts from the command until the new instance answered and the old one has exited;\n")
	p("\"command → serving\" is the time to the first 200 from the new pid, median [p10–p90], ms.\n\n")
	p("| variant | failed requests (total / max per replacement / replacements with any) | refused connects (same) | command → serving | command returns | p50 steady | p50 during | p99 steady | p99 during | requests steady / during |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, run := range rr.runs {
		st := run.stats()
		ft, fm, fw := sumMax(st.failed)
		rt, rm, rw := sumMax(st.refused)
		p("| %s | %d / %d / %d | %d / %d / %d | %s | %s | %.2f | %.2f | %.2f | %.2f | %d / %d |\n", run.v.name,
			ft, fm, fw, rt, rm, rw, fmtDist(st.toServe, 1), fmtDist(st.toReturn, 1),
			st.p50s, st.p50d, st.p99s, st.p99d, st.steadyN, st.duringN)
		if st.steadyFailed > 0 {
			p("| %s: failures outside any replacement | %d | | | | | | | | |\n", run.v.name, st.steadyFailed)
		}
	}
	p("\nLatencies in ms, of the requests that got a 200. Variants:\n\n")
	for _, run := range rr.runs {
		p("- `%s`: %s\n", run.v.name, run.v.note)
	}
	p("\n")
}

// replaceChart draws p50 and p99 latency, steady against during the
// replacements, per variant, and the failures per replacement.
func (rp *report) replaceChart(path string) error {
	rr := rp.replaced
	pl := plot.New()
	pl.Title.Text = fmt.Sprintf("Request latency while replacing a running HTTP server %d times under load", rr.n)
	pl.Y.Label.Text = "ms"
	pl.Legend.Top = true
	pl.Legend.Left = true
	var names []string
	series := []struct {
		name string
		get  func(replaceStats) float64
	}{
		{"p50 steady", func(s replaceStats) float64 { return s.p50s }},
		{"p50 during", func(s replaceStats) float64 { return s.p50d }},
		{"p99 steady", func(s replaceStats) float64 { return s.p99s }},
		{"p99 during", func(s replaceStats) float64 { return s.p99d }},
	}
	cols := []color.RGBA{grey, lightBlue, darkGrey, blue}
	stats := make([]replaceStats, len(rr.runs))
	for i, run := range rr.runs {
		stats[i] = run.stats()
		rt, _, _ := sumMax(stats[i].refused)
		ft, _, _ := sumMax(stats[i].failed)
		names = append(names, fmt.Sprintf("%s\n%d refused, %d failed", run.v.name, rt, ft))
	}
	w := vg.Points(14)
	for k, s := range series {
		vals := make(plotter.Values, len(stats))
		for i, st := range stats {
			vals[i] = s.get(st)
			if math.IsNaN(vals[i]) {
				vals[i] = 0
			}
		}
		b, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return err
		}
		b.Color = cols[k]
		b.LineStyle.Width = 0
		b.Offset = w * vg.Length(k-len(series)/2)
		pl.Add(b)
		pl.Legend.Add(s.name, b)
	}
	pl.NominalX(names...)
	return pl.Save(9*vg.Inch, 5*vg.Inch, path)
}
