package main

import (
	"math"
	"sort"
)

// A dist summarizes values: the median and the 10th and 90th percentiles.
type dist struct {
	n             int
	p10, med, p90 float64
}

func summarize(v []float64) dist {
	if len(v) == 0 {
		return dist{p10: math.NaN(), med: math.NaN(), p90: math.NaN()}
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return dist{n: len(s), p10: quantile(s, 0.1), med: quantile(s, 0.5), p90: quantile(s, 0.9)}
}

// quantile of sorted s, interpolating linearly between order statistics.
func quantile(s []float64, q float64) float64 {
	pos := q * float64(len(s)-1)
	i := int(pos)
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[i] + (pos-float64(i))*(s[i+1]-s[i])
}

// results holds every sample: per case, indexed by round (nil: failed).
type results struct {
	rounds int
	cases  []benchCase
	s      map[string][]*sample
}

func newResults(cs []benchCase, rounds int) *results {
	r := &results{rounds: rounds, cases: cs, s: map[string][]*sample{}}
	for _, c := range cs {
		r.s[c.String()] = make([]*sample, rounds)
	}
	return r
}

func (r *results) get(c benchCase) []*sample { return r.s[c.String()] }

// metric extracts one number from a sample.
type metric func(*sample) float64

var (
	toMainMs  metric = func(s *sample) float64 { return float64(s.toMain()) / 1e6 }
	toRetMs   metric = func(s *sample) float64 { return float64(s.toRet()) / 1e6 }
	launchRSS metric = func(s *sample) float64 { return float64(s.launcherRSS) }
	daemonRSS metric = func(s *sample) float64 { return float64(s.daemonRSS) }
	toEntryMs metric = func(s *sample) float64 { return ifEntry(s, float64(s.entry-s.spawn)/1e6) }
	entryToMs metric = func(s *sample) float64 { return ifEntry(s, float64(s.main-s.entry)/1e6) }
)

// ifEntry is x for a sample with a constructor entry time, NaN (no value)
// for the programs without one.
func ifEntry(s *sample, x float64) float64 {
	if s.entry == 0 {
		return math.NaN()
	}
	return x
}

// values are a metric's values over the rounds in which the case ran and
// the metric has a value (not NaN).
func (r *results) values(c benchCase, m metric) []float64 {
	var v []float64
	for _, s := range r.get(c) {
		if s != nil && !math.IsNaN(m(s)) {
			v = append(v, m(s))
		}
	}
	return v
}

func (r *results) dist(c benchCase, m metric) dist { return summarize(r.values(c, m)) }

// paired combines two cases round by round (both must have run) with f:
// a ratio or a difference per round, so round-to-round noise that hits
// both cancels.
func (r *results) paired(a, b benchCase, m metric, f func(x, y float64) float64) dist {
	sa, sb := r.get(a), r.get(b)
	var v []float64
	for i := range sa {
		if sa[i] != nil && sb[i] != nil {
			v = append(v, f(m(sa[i]), m(sb[i])))
		}
	}
	return summarize(v)
}

func ratio(x, y float64) float64 { return x / y }
func minus(x, y float64) float64 { return x - y }

// The first-response, restart and fork-cost metrics.
var (
	firstMs   metric = func(s *sample) float64 { return float64(s.first-s.spawn) / 1e6 }
	refusedN  metric = func(s *sample) float64 { return float64(s.refused) }
	stopMs    metric = func(s *sample) float64 { return float64(s.stop1-s.stop0) / 1e6 }
	commandMs metric = func(s *sample) float64 { return float64(s.ret-s.spawn) / 1e6 }
	restartMs metric = func(s *sample) float64 { return float64(s.stop1-s.stop0+s.first-s.spawn) / 1e6 }
	forkUs    metric = func(s *sample) float64 { return float64(s.forkNs) / 1e3 }
	writesUs  metric = func(s *sample) float64 { return float64(s.writesNs) / 1e3 }
	vforkUs   metric = func(s *sample) float64 { return float64(s.vforkNs) / 1e3 }
	spawnUs   metric = func(s *sample) float64 { return float64(s.spawnNs) / 1e3 }
	rssMB     metric = func(s *sample) float64 { return float64(s.rssKB) / 1024 }
	// The launcher's return and the daemon's main, from the spawn, for
	// the server programs.
	serverRetMs  metric = func(s *sample) float64 { return float64(s.ret-s.spawn) / 1e6 }
	runDelayMs   metric = func(s *sample) float64 { return float64(s.runDelay) / 1e6 }
	serverMainMs metric = func(s *sample) float64 { return float64(s.main-s.spawn) / 1e6 }
)

// sum adds a metric over every sample of a case.
func (r *results) sum(c benchCase, m metric) float64 {
	t := 0.0
	for _, v := range r.values(c, m) {
		t += v
	}
	return t
}

// max is a metric's largest value over the samples of a case.
func (r *results) max(c benchCase, m metric) float64 {
	x := math.NaN()
	for _, v := range r.values(c, m) {
		if math.IsNaN(x) || v > x {
			x = v
		}
	}
	return x
}
