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
		serveInits: []time.Duration{0}, forkMem: []int{0, 16}, command: "go test"})
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
			if c.v.kind != kindStart {
				checkServeSample(t, c, s)
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
	for _, f := range rp.files() {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	for _, want := range []string{"| cdaemon-static-ready |", "| cdaemon / naive |", "## Time to first response (ms)",
		"## Restart (ms)", "## Commands beside a running daemon (ms)", "| status / true |", "| stop / true |", "## Fork cost against resident memory", "| 16 MiB ("} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("the table lacks %q", want)
		}
	}
	// Every variant the library cannot run yet is named with the reason.
	for _, m := range rp.p.missing {
		if !strings.Contains(table.String(), m) {
			t.Errorf("the table does not say %q", m)
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "benchstat.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ns/first-response", "ns/restart", "ns/command", "ns/fork", "ns/posix-spawn"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("benchstat.txt has no %s", want)
		}
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
	other := filepath.Join(t.TempDir(), "no-such-library-file.c")
	if err := os.WriteFile(other, []byte("int x;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, spec := range []string{"no-such-revision-xyz", root, "/nonexistent/cdaemon.c,/x", other} {
		_, err := resolveSource("-exp", spec, lib)
		if err == nil || !strings.Contains(err.Error(), "-exp") {
			t.Errorf("resolveSource(%q) = %v, want an error naming -exp", spec, err)
		}
	}
}

// checkServeSample checks one first-response, restart or fork-cost run:
// values present and in order, the server a daemon where it should be,
// and no connection refused by a cdaemon server (it listens before the
// launcher is released, or the launcher listens for it).
func checkServeSample(t *testing.T, c benchCase, s *sample) {
	t.Helper()
	switch c.v.kind {
	case kindCommand:
		if s.spawn <= 0 || s.ret <= s.spawn {
			t.Errorf("%s: spawn %d, return %d", c, s.spawn, s.ret)
		}
		return
	case kindFork:
		if s.forkNs <= 0 || s.writesNs <= 0 || s.vforkNs <= 0 || s.spawnNs <= 0 || s.rssKB < int64(c.mem)*1024 {
			t.Errorf("%s: fork %d, writes %d, vfork %d, spawn %d ns, rss %d kB", c, s.forkNs, s.writesNs, s.vforkNs, s.spawnNs, s.rssKB)
		}
		return
	case kindRestart:
		if s.stop0 <= 0 || s.stop1 < s.stop0 || s.spawn < s.stop1 {
			t.Errorf("%s: stop %d → %d, then the start at %d", c, s.stop0, s.stop1, s.spawn)
		}
	}
	if s.first <= s.spawn || s.main <= s.spawn {
		t.Errorf("%s: spawn %d, main %d, first 200 %d", c, s.spawn, s.main, s.first)
	}
	if c.v.daemon == (s.daemonPID == s.launcherPID) {
		t.Errorf("%s: served from pid %d, launcher %d, daemon wanted: %v", c, s.daemonPID, s.launcherPID, c.v.daemon)
	}
	if strings.HasPrefix(c.v.name, "cdaemon") && s.refused != 0 {
		t.Errorf("%s: %d connects refused", c, s.refused)
	}
	// cdaemon run waiting for READY=1, or with the launcher's listener:
	// the server accepts from the launcher's return on.
	if (strings.HasPrefix(c.v.name, "run-ready-") || strings.HasPrefix(c.v.name, "run-listen-")) && s.refused != 0 {
		t.Errorf("%s: %d connects refused", c, s.refused)
	}
}
