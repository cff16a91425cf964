package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// measure runs every case of the plan once per round, after one unmeasured
// warm-up round, and returns the samples. Nothing it started is left
// running when it returns, on success or error.
func measure(p *plan, tmp string, bins map[string]string, pr *progress) (*results, error) {
	res := newResults(p.cases, p.rounds)
	h, err := newHarness(tmp, p.pidParent, bins)
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
			if !p.keep {
				os.RemoveAll(tmp)
			}
			fmt.Fprintln(os.Stderr, "\nbench: interrupted")
			os.Exit(130)
		case <-stop:
		}
	}()

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	// One unmeasured round first: page cache, CPU frequency, lazy setup.
	for round := -1; round < p.rounds; round++ {
		for k, i := range roundOrder(p.cases, rng) {
			c := p.cases[i]
			if round >= 0 {
				pr.show(fmt.Sprintf("round %d/%d  case %d/%d  %s", round+1, p.rounds, k+1, len(p.cases), c))
			} else {
				pr.show(fmt.Sprintf("warm-up  case %d/%d  %s", k+1, len(p.cases), c))
			}
			s, err := h.run(c)
			if err != nil {
				h.close()
				return nil, err
			}
			if round >= 0 {
				res.get(c)[round] = &s
			}
		}
	}
	h.close()
	if kids := processChildren(); len(kids) > 0 {
		return nil, fmt.Errorf("processes left behind: %v", kids)
	}
	return res, nil
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

// progress shows one status line on a terminal, rewritten in place, at
// most ten times a second.
type progress struct {
	w    io.Writer // nil: shows nothing
	last time.Time
}

func newProgress(w io.Writer) *progress { return &progress{w: w} }

func (p *progress) show(msg string) {
	if p.w == nil {
		return
	}
	if msg != "" && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	if len(msg) > 100 {
		msg = msg[:100]
	}
	fmt.Fprintf(p.w, "\r\033[K%s", msg)
}
