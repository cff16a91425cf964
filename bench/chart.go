package main

import (
	"image/color"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// chartVariants are the lines of the chart.
var chartVariants = []struct {
	name  string
	color color.RGBA
	dash  []vg.Length
}{
	{"go", color.RGBA{150, 150, 150, 255}, []vg.Length{vg.Points(2), vg.Points(2)}},
	{"cgo", color.RGBA{90, 90, 90, 255}, []vg.Length{vg.Points(4), vg.Points(2)}},
	{"cdaemon", color.RGBA{0, 114, 178, 255}, nil},
	{"cdaemon-static", color.RGBA{86, 180, 233, 255}, nil},
	{"go-daemon", color.RGBA{230, 159, 0, 255}, nil},
	{"godaemon", color.RGBA{213, 94, 0, 255}, nil},
	{"exp", color.RGBA{204, 121, 167, 255}, nil}, // with -exp only
}

// errPoints are medians with p10/p90 error bars.
type errPoints struct {
	plotter.XYs
	plotter.YErrors
}

// chart plots the median time to main against the init weight, one line
// per variant, with p10–p90 bars, on a log scale: the variants differ by
// a millisecond at no init and by hundreds at 100 ms.
func (rp *report) startupChart(path string) error {
	p := plot.New()
	p.Title.Text = "Time to the daemon's main against package-init weight (median, p10–p90)"
	p.X.Label.Text = "package init (CPU time, paid once per exec)"
	p.Y.Label.Text = "ms from spawn to daemon main (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = msTicks{}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.XOffs = vg.Points(10)
	p.Legend.YOffs = -vg.Points(10)
	p.Add(plotter.NewGrid())
	names := make([]string, len(rp.p.inits))
	for i, w := range rp.p.inits {
		names[i] = fmtDur(w)
	}
	p.NominalX(names...)
	n := float64(len(chartVariants))
	for k, cv := range chartVariants {
		if rp.p.variant(cv.name) == nil {
			continue
		}
		var pts errPoints
		for i, w := range rp.p.inits {
			d := rp.r.dist(rp.c(cv.name, w, false), toMainMs)
			if d.n == 0 {
				continue
			}
			// Spread the variants a little sideways so the bars do not overlap.
			x := float64(i) + (float64(k)-(n-1)/2)*0.012*float64(len(rp.p.inits))
			pts.XYs = append(pts.XYs, plotter.XY{X: x, Y: d.med})
			pts.YErrors = append(pts.YErrors, struct{ Low, High float64 }{d.med - d.p10, d.p90 - d.med})
		}
		if len(pts.XYs) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(pts.XYs)
		if err != nil {
			return err
		}
		line.Color, line.Dashes, line.Width = cv.color, cv.dash, vg.Points(1.5)
		points.Color, points.Shape = cv.color, draw.CircleGlyph{}
		bars, err := plotter.NewYErrorBars(pts)
		if err != nil {
			return err
		}
		bars.Color = cv.color
		p.Add(line, points, bars)
		p.Legend.Add(cv.name, line, points)
	}
	return p.Save(9*vg.Inch, 5.5*vg.Inch, path)
}

// msTicks labels a log axis at 1, 2, 5 times the powers of ten.
type msTicks struct{}

func (msTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for p := 0.01; p <= hi*10; p *= 10 {
		for _, m := range []float64{1, 2, 5} {
			v := p * m
			if v < lo || v > hi {
				continue
			}
			ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', -1, 64)})
		}
	}
	return ts
}
