// Package weight gives a benchmarked program a package init of a chosen
// cost: $BENCH_INIT (a Go duration) of CPU time, spent busy.
//
// Busy work, not sleep: a real package init (tables, regexps, templates,
// flag and plugin registration) is CPU work, and a re-exec daemonizer pays
// it again in every process it starts. A sleep would cost wall time but no
// CPU, so on this 2-core machine a re-executed copy's init could overlap
// other work for free; CPU work cannot. The loop counts this thread's CPU
// time (CLOCK_THREAD_CPUTIME_ID; package init runs on the main thread),
// so the work is the same however the machine's noise stretches it.
package weight

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Sink keeps the busy loop from being optimized away.
var Sink uint64

func init() {
	v := os.Getenv("BENCH_INIT")
	if v == "" {
		return
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		os.Stderr.WriteString("bench program: bad BENCH_INIT=" + v + "\n")
		os.Exit(2)
	}
	if d == 0 {
		return
	}
	end := cpu() + int64(d)
	x := uint64(88172645463325252)
	for cpu() < end {
		for i := 0; i < 4096; i++ { // xorshift: ~10 µs between clock reads
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
		}
	}
	Sink = x
}

func cpu() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return ts.Nano()
}
