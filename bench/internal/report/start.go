package report

import "os"

// serve is set when the program is built with tag benchserve (serve.go):
// the same program, made a small HTTP server for the first-response and
// restart cases.
var serve func(t int64, ready func() error, extra []int64)

// Start is the end of every benchmarked program's main: it calls ready
// (nil: none), then reports t and extra (see Send). Built with tag
// benchserve and given $BENCH_PORT, it first takes its listener, calls
// ready when it listens, reports, and serves HTTP until it is killed.
func Start(t int64, ready func() error, extra ...int64) {
	if serve != nil && os.Getenv("BENCH_PORT") != "" {
		serve(t, ready, extra)
		return
	}
	if ready != nil {
		if err := ready(); err != nil {
			os.Stderr.WriteString("bench program: ready: " + err.Error() + "\n")
			os.Exit(1)
		}
	}
	Send(t, extra...)
}
