package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSmoke runs the whole comparison for two rounds, small programs only
// (the big ones take long to build), and checks that every variant reported
// at every init weight from the process it should, and that nothing is left
// running. It asserts no timing: numbers come from `go run .`.
func TestSmoke(t *testing.T) {
	out := t.TempDir()
	var table bytes.Buffer
	rp, err := run(config{rounds: 2, inits: []time.Duration{0, 5 * time.Millisecond}, out: out, stdout: &table,
		command: "go test"})
	if err != nil {
		t.Fatal(err)
	}
	if kids := processChildren(); len(kids) > 0 {
		t.Errorf("processes left behind: %v", kids)
	}
	seen := map[string]bool{}
	for _, c := range rp.r.cases {
		seen[c.v.name] = true
		for round, s := range rp.r.get(c) {
			if s == nil {
				t.Errorf("%s: no sample in round %d", c, round)
				continue
			}
			if s.main <= s.spawn || s.ret <= s.spawn {
				t.Errorf("%s: times out of order: spawn %d, main %d, return %d", c, s.spawn, s.main, s.ret)
			}
			if s.launcherRSS <= 0 || s.daemonRSS <= 0 {
				t.Errorf("%s: no peak RSS: launcher %d kB, daemon %d kB", c, s.launcherRSS, s.daemonRSS)
			}
			switch {
			case !c.v.daemon && s.daemonPID != s.launcherPID:
				t.Errorf("%s: reported from pid %d, not the launcher %d", c, s.daemonPID, s.launcherPID)
			case c.v.daemon && s.daemonPID == s.launcherPID:
				t.Errorf("%s: reported from the launcher, not a daemon", c)
			case c.v.daemon && s.daemonSID == s.launcherPID:
				t.Errorf("%s: the daemon is still in the launcher's session %d", c, s.daemonSID)
			case (strings.HasPrefix(c.v.name, "cdaemon") || strings.HasPrefix(c.v.name, "naive")) && c.v.daemon && s.entry == 0:
				t.Errorf("%s: no constructor entry time", c)
			}
			// cdaemon and the C program fork twice: the daemon is not a
			// session leader. The re-exec libraries leave it one (go-daemon).
			if (strings.HasPrefix(c.v.name, "cdaemon") || strings.HasPrefix(c.v.name, "naive") || c.v.name == "c-fork") && c.v.daemon && s.daemonSID == s.daemonPID {
				t.Errorf("%s: the daemon %d is a session leader", c, s.daemonPID)
			}
		}
	}
	for _, v := range rp.p.variants {
		if !seen[v.name] {
			t.Errorf("variant %s was not run", v.name)
		}
	}
	for _, f := range []string{"README-table.md", "benchstat.txt", "startup.png"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	if !strings.Contains(table.String(), "| cdaemon-static-ready |") || !strings.Contains(table.String(), "| cdaemon / naive |") {
		t.Errorf("the table lacks a row:\n%s", table.String())
	}
	if t.Failed() {
		t.Logf("table:\n%s", table.String())
	}
}

// TestExp builds cdaemon a second time from a git revision of the library
// (HEAD) and measures it beside the base build, as the lead does to check
// a change before it lands.
func TestExp(t *testing.T) {
	var table bytes.Buffer
	rp, err := run(config{rounds: 1, inits: []time.Duration{0}, exp: "HEAD", stdout: &table, command: "go test",
		only: "variant=(cdaemon|exp|naive)/"})
	if err != nil {
		t.Fatal(err)
	}
	if rp.p.exp == nil || !strings.Contains(rp.p.exp.desc, "git revision HEAD") {
		t.Errorf("exp source: %+v", rp.p.exp)
	}
	for _, row := range []string{"| exp / cdaemon |", "| exp / naive |"} {
		if !strings.Contains(table.String(), row) {
			t.Errorf("the table lacks %q:\n%s", row, table.String())
		}
	}
}

// TestSourceErrors: a -base or -exp that names nothing usable is refused
// with a message naming the flag and the value.
func TestSourceErrors(t *testing.T) {
	root := filepath.Dir(t.TempDir())
	lib, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range []string{"no-such-revision-xyz", root, "/nonexistent/cdaemon.c,/x"} {
		_, err := resolveSource("-exp", spec, lib)
		if err == nil || !strings.Contains(err.Error(), "-exp") {
			t.Errorf("resolveSource(%q) = %v, want an error naming -exp", spec, err)
		}
	}
}
