package main

import "strings"

// runResponse is the section "`cdaemon run` against start-stop-daemon and
// daemonize (ms)": the run cases (variants_run.go).
func (rp *report) runResponse(p printer) {
	if !rp.kindRan(kindRun) {
		return
	}
	r := rp.r
	p("## `cdaemon run` against start-stop-daemon and daemonize (ms)\n\n")
	p("A server that knows nothing of cdaemon (the C server csrc/cserve.c; the pure Go server progs/floor with tag\n")
	p("benchserve), started by each daemonizer with a pidfile. Each cell is the command's spawn → the first HTTP 200\n")
	p("(the client polls every 100 µs from the command's return; for the undaemonized server from the spawn),\n")
	p("median [p10–p90]; the ratio is the daemonizer's time over `cdaemon run`'s (CDAEMON_WAIT=start) of the same\n")
	p("server, paired per round; refused connects in all runs.\n\n")
	p("| variant | first 200 | / run | refused |\n|---|---:|---:|---:|\n")
	for _, v := range rp.p.variants {
		if v.kind != kindRun || !rp.ran(v) {
			continue
		}
		c := rp.rc(kindRun, v.name, 0)
		srv := v.name[strings.LastIndex(v.name, "-")+1:]
		rel := ""
		if base := rp.rc(kindRun, "run-"+srv, 0); base.v != nil && rp.has(base) && base.v != v {
			rel = fmtDist(r.paired(c, base, firstMs, ratio), 2)
		}
		p("| %s | %s | %s | %.0f |\n", v.name, fmtDist(r.dist(c, firstMs), 2), rel, r.sum(c, refusedN))
	}
	p("\n")
}
