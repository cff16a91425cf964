package main

import (
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// A line of a chart: a name and its style.
type chartLine struct {
	name  string
	color color.RGBA
	dash  []vg.Length
}

var (
	grey      = color.RGBA{150, 150, 150, 255}
	darkGrey  = color.RGBA{90, 90, 90, 255}
	blue      = color.RGBA{0, 114, 178, 255}
	lightBlue = color.RGBA{86, 180, 233, 255}
	green     = color.RGBA{0, 158, 115, 255}
	orange    = color.RGBA{230, 159, 0, 255}
	red       = color.RGBA{213, 94, 0, 255}
	pink      = color.RGBA{204, 121, 167, 255}
	dashed    = []vg.Length{vg.Points(4), vg.Points(2)}
	dotted    = []vg.Length{vg.Points(2), vg.Points(2)}
)

// startupLines are the lines of the start-up chart.
var startupLines = []chartLine{
	{"go", grey, dotted},
	{"cgo", darkGrey, dashed},
	{"naive", green, dashed},
	{"cdaemon", blue, nil},
	{"cdaemon-static", lightBlue, nil},
	{"go-daemon", orange, nil},
	{"godaemon", red, nil},
	{"exp", pink, nil}, // with -exp only
}

// responseLines are the lines of the first-response chart.
var responseLines = []chartLine{
	{"cgo", darkGrey, dashed},
	{"cgo-setsid", grey, dotted},
	{"naive", green, dashed},
	{"cdaemon-ready", blue, dashed},
	{"cdaemon-listen", blue, nil},
	{"cdaemon-static-listen", lightBlue, nil},
	{"go-daemon", orange, nil},
	{"godaemon", red, nil},
}

// errPoints are medians with p10/p90 error bars.
type errPoints struct {
	plotter.XYs
	plotter.YErrors
}

// newChart is a plot with a log-scale y axis in ms-like units and the
// legend at the top left.
func newChart(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = logTicks{}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.XOffs = vg.Points(10)
	p.Legend.YOffs = -vg.Points(10)
	p.Add(plotter.NewGrid())
	return p
}

// addLine adds one median line with p10–p90 bars.
func addLine(p *plot.Plot, name string, col color.RGBA, dash []vg.Length, pts errPoints) error {
	if len(pts.XYs) == 0 {
		return nil
	}
	line, points, err := plotter.NewLinePoints(pts.XYs)
	if err != nil {
		return err
	}
	line.Color, line.Dashes, line.Width = col, dash, vg.Points(1.5)
	points.Color, points.Shape = col, draw.CircleGlyph{}
	bars, err := plotter.NewYErrorBars(pts)
	if err != nil {
		return err
	}
	bars.Color = col
	p.Add(line, points, bars)
	p.Legend.Add(name, line, points)
	return nil
}

func (pts *errPoints) add(x float64, d dist) {
	pts.XYs = append(pts.XYs, plotter.XY{X: x, Y: d.med})
	pts.YErrors = append(pts.YErrors, struct{ Low, High float64 }{d.med - d.p10, d.p90 - d.med})
}

// weightChart plots a metric's median against the init weight, one line
// per variant of the kind, with p10–p90 bars, on a log scale: the variants
// differ by a millisecond at no init and by hundreds at 100 ms.
func (rp *report) weightChart(path, title, ylabel string, inits []string, lines []chartLine, c func(string, int) benchCase, mt metric) error {
	p := newChart(title, "package init (CPU time, paid once per exec)", ylabel)
	p.NominalX(inits...)
	n := float64(len(lines))
	for k, cl := range lines {
		var pts errPoints
		for i := range inits {
			bc := c(cl.name, i)
			if bc.v == nil || !rp.has(bc) {
				continue
			}
			d := rp.r.dist(bc, mt)
			if d.n == 0 {
				continue
			}
			// Spread the variants a little sideways so the bars do not overlap.
			pts.add(float64(i)+(float64(k)-(n-1)/2)*0.012*float64(len(inits)), d)
		}
		if err := addLine(p, cl.name, cl.color, cl.dash, pts); err != nil {
			return err
		}
	}
	return p.Save(9*vg.Inch, 5.5*vg.Inch, path)
}

func (rp *report) startupChart(path string) error {
	var xs []string
	for _, w := range rp.p.inits {
		xs = append(xs, fmtDur(w))
	}
	return rp.weightChart(path, "Time to the daemon's main against package-init weight (median, p10–p90)",
		"ms from spawn to daemon main (log scale)", xs, startupLines,
		func(name string, i int) benchCase { return rp.c(name, rp.p.inits[i], false) }, toMainMs)
}

func (rp *report) responseChart(path string) error {
	var xs []string
	for _, w := range rp.p.serveInits {
		xs = append(xs, fmtDur(w))
	}
	return rp.weightChart(path, "Time to first HTTP response against package-init weight (median, p10–p90)",
		"ms from spawn to the first 200 (log scale)", xs, responseLines,
		func(name string, i int) benchCase { return rp.rc(kindResponse, name, rp.p.serveInits[i]) }, firstMs)
}

// forkChart plots fork, the child's first writes, vfork and posix_spawn
// against the resident set, log-log, and marks where cdaemon forks.
func (rp *report) forkChart(path string) error {
	p := newChart("Cost of creating a process against the parent's resident memory (median, p10–p90)",
		"parent's resident memory, MiB (log scale)", "µs (log scale)")
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = logTicks{}
	for _, l := range []struct {
		chartLine
		mt metric
	}{
		{chartLine{"fork (parent)", red, nil}, forkUs},
		{chartLine{"child's first writes, 1 MiB", orange, dashed}, writesUs},
		{chartLine{"vfork", blue, nil}, vforkUs},
		{chartLine{"posix_spawn", green, nil}, spawnUs},
	} {
		var pts errPoints
		for _, c := range rp.p.cases {
			if c.v.kind == kindFork && rp.has(c) {
				pts.add(rp.r.dist(c, rssMB).med, rp.r.dist(c, l.mt))
			}
		}
		if err := addLine(p, l.name, l.color, l.dash, pts); err != nil {
			return err
		}
	}
	if kb := rp.cdaemonForkRSS("cdaemon"); !math.IsNaN(kb) && p.Y.Max > p.Y.Min {
		mark, err := plotter.NewLine(plotter.XYs{{X: kb / 1024, Y: p.Y.Min}, {X: kb / 1024, Y: p.Y.Max}})
		if err != nil {
			return err
		}
		mark.Color, mark.Dashes = darkGrey, dotted
		p.Add(mark)
		p.Legend.Add("cdaemon's launcher forks here (peak RSS)", mark)
	}
	return p.Save(9*vg.Inch, 5.5*vg.Inch, path)
}

// logTicks labels a log axis at 1, 2, 5 times the powers of ten.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for p := 0.001; p <= hi*10; p *= 10 {
		for _, m := range []float64{1, 2, 5} {
			v := p * m
			if v < lo || v > hi {
				continue
			}
			ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', 4, 64)})
		}
	}
	return ts
}
