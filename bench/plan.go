package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// config is what the command line asks for.
type config struct {
	rounds       int
	inits        []time.Duration
	serveInits   []time.Duration // first response and restart
	forkMem      []int           // fork cost: MiB resident
	big          bool            // also the big program size
	only         string          // run only the cases whose name matches this regexp
	base         string          // -base: the library source of the cdaemon variants (see source)
	exp          string          // -exp: the library source of the exp variants; "" for none
	keep         bool            // keep the temp dir (for profiling by hand)
	replacements int             // replacements per replacement variant; 0: none

	out      string    // "" writes no files
	stdout   io.Writer // the table; nil: not printed
	progress io.Writer // nil: no progress indicator
	command  string    // the command line, for the report
}

// A plan is everything a run will do, fixed before anything is built: the
// programs, the variants, the cases. The stages after it (build, measure,
// statistics, report, chart) read it and never change it.
type plan struct {
	rounds     int
	inits      []time.Duration
	serveInits []time.Duration
	forkMem    []int
	big        bool
	programs   []program
	variants   []*variant
	cases      []benchCase
	benchDir   string  // the bench module
	libRoot    string  // the library this bench module sits in
	base       source  // the library the cdaemon programs are built from
	exp        *source // the library the exp programs are built from; nil: none
	keep       bool
	command    string
	missing    []string // variants left out, and why
	pidParent  string   // the restart's and commands' pidfiles go in a new directory here; "": the temp dir

	replace      []*replaceVariant // the replacement variants to run (replace.go)
	replacements int               // replacements per variant
}

func newPlan(cfg config) (*plan, error) {
	benchDir, err := findBenchDir()
	if err != nil {
		return nil, err
	}
	p := &plan{rounds: cfg.rounds, inits: cfg.inits, serveInits: cfg.serveInits, forkMem: cfg.forkMem, big: cfg.big,
		benchDir: benchDir, libRoot: filepath.Dir(benchDir), keep: cfg.keep, command: cfg.command, pidParent: pidfileParent()}
	if p.base, err = resolveSource("-base", cfg.base, p.libRoot); err != nil {
		return nil, err
	}
	all := append(append(append([]program{}, programs...), servePrograms...), runPrograms...)
	for i := range variants {
		p.variants = append(p.variants, &variants[i])
	}
	has := features(p.libRoot, p.base)
	for _, vs := range [][]variant{responseVariants, restartVariants, commandVariants, runVariants} {
		for i := range vs {
			v := &vs[i]
			if why := missingFeature(v, has, p.base); why != "" {
				p.missing = append(p.missing, why)
				continue
			}
			p.variants = append(p.variants, v)
		}
	}
	if len(p.forkMem) > 0 {
		p.variants = append(p.variants, &forkVariant)
	}
	if cfg.exp != "" {
		exp, err := resolveSource("-exp", cfg.exp, p.libRoot)
		if err != nil {
			return nil, err
		}
		if len(exp.files) > 0 {
			exp.tree = p.base.tree // files replace the base tree's
			exp.rev = p.base.rev
			exp.desc = p.base.desc + " with " + strings.Join(exp.files, ", ") + " in place of its files of the same name"
		}
		p.exp = &exp
		all = append(all, expPrograms...)
		for _, vs := range [][]variant{expVariants, expRestartVariants, expCommandVariants} {
			for i := range vs {
				p.variants = append(p.variants, &vs[i])
			}
		}
	}
	re, err := regexp.Compile(cfg.only)
	if err != nil {
		return nil, fmt.Errorf("-only: %w", err)
	}
	for _, c := range p.allCases() {
		if re.MatchString(c.String()) {
			p.cases = append(p.cases, c)
		}
	}
	p.planReplace(cfg, re)
	if len(p.cases) == 0 && len(p.replace) == 0 {
		return nil, fmt.Errorf("-only %q matches no case", cfg.only)
	}
	// Build only what the cases run.
	used := map[string]bool{}
	for _, c := range p.cases {
		used[c.v.prog] = true
		if c.v.cmd != "" {
			used[c.v.cmd] = true
		}
	}
	for _, v := range p.replace {
		used[v.prog] = true
		used["cdaemon-cmd"] = true
	}
	for _, pr := range append(all, replacePrograms...) {
		if used[pr.key] && !p.building(pr.key) {
			p.programs = append(p.programs, pr)
		}
	}
	return p, nil
}

// allCases lists every case: every swept start-up variant at every init
// weight (small size) and at no init in the big size; the C programs once;
// the first-response and restart variants at every -serve-init weight; the
// fork-cost program at every -forkmem size; the commands once.
func (p *plan) allCases() []benchCase {
	var cs []benchCase
	for _, v := range p.variants {
		switch v.kind {
		case kindResponse, kindRestart:
			for _, w := range p.serveInits {
				cs = append(cs, benchCase{v: v, init: w})
			}
			continue
		case kindFork:
			for _, m := range p.forkMem {
				cs = append(cs, benchCase{v: v, mem: m})
			}
			continue
		case kindCommand, kindRun:
			cs = append(cs, benchCase{v: v})
			continue
		}
		if !v.sweep {
			cs = append(cs, benchCase{v: v})
			continue
		}
		for _, w := range p.inits {
			cs = append(cs, benchCase{v: v, init: w})
		}
		if p.big {
			cs = append(cs, benchCase{v: v, big: true})
		}
	}
	return cs
}

// variant finds a start-up variant by name; nil if the plan has none.
func (p *plan) variant(name string) *variant { return p.variantOf(kindStart, name) }

// variantOf finds a variant of a kind by name; nil if the plan has none.
func (p *plan) variantOf(k kind, name string) *variant {
	for _, v := range p.variants {
		if v.kind == k && v.name == name {
			return v
		}
	}
	return nil
}

// features says which library features the base source has that some
// variants need, found in its source: "listen" (CDAEMON_LISTEN in one of
// the library's C files, issue 8: cdaemon.c before issue 16 split it,
// config.c after) and "stop" (a stop subcommand in the cdaemon command,
// issue 9).
func features(libRoot string, s source) map[string]bool {
	has := map[string]bool{}
	for _, f := range libFiles(libRoot, s, ".") {
		if strings.HasSuffix(f, ".c") && strings.Contains(libFile(libRoot, s, f), `"CDAEMON_LISTEN"`) {
			has["listen"] = true
		}
	}
	for _, f := range libFiles(libRoot, s, "cdaemon") {
		if strings.HasSuffix(f, ".go") && strings.Contains(libFile(libRoot, s, f), `"stop"`) {
			has["stop"] = true
		}
		if strings.HasSuffix(f, ".go") && strings.Contains(libFile(libRoot, s, f), `case "run":`) {
			has["run"] = true
		}
	}
	return has
}

// missingFeature says why v cannot run against s, or "".
func missingFeature(v *variant, has map[string]bool, s source) string {
	var why []string
	for _, f := range strings.Split(v.needs, ",") {
		switch {
		case f == "" || has[f]:
		case f == "listen":
			why = append(why, "no CDAEMON_LISTEN in its C files (issue 8)")
		case f == "stop":
			why = append(why, "no stop subcommand in its cdaemon command (issue 9)")
		case f == "run":
			why = append(why, "no run subcommand in its cdaemon command (issue 20)")
		}
	}
	if len(why) == 0 {
		return ""
	}
	k := map[kind]string{kindResponse: "time to first response", kindRestart: "restart", kindCommand: "command",
		kindRun: "run"}[v.kind]
	return fmt.Sprintf("%s variant %s: %s has %s", k, v.name, s.desc, strings.Join(why, " and "))
}

// libFile is a file of the library source, "" if it cannot be read.
func libFile(libRoot string, s source, name string) string {
	for _, f := range s.files {
		if filepath.Base(f) == name {
			b, _ := os.ReadFile(f)
			return string(b)
		}
	}
	if s.tree != "" {
		b, _ := os.ReadFile(filepath.Join(s.tree, name))
		return string(b)
	}
	b, _ := exec.Command("git", "-C", libRoot, "show", s.rev+":"+name).Output()
	return string(b)
}

// libFiles lists the files in a directory of the library source.
func libFiles(libRoot string, s source, dir string) []string {
	var names []string
	if s.tree != "" {
		ents, _ := os.ReadDir(filepath.Join(s.tree, dir))
		for _, e := range ents {
			names = append(names, filepath.Join(dir, e.Name()))
		}
		return names
	}
	out, _ := exec.Command("git", "-C", libRoot, "ls-tree", "--name-only", s.rev, dir+"/").Output()
	return strings.Fields(string(out))
}

// building says whether the plan builds a program of this key already.
func (p *plan) building(key string) bool {
	for _, pr := range p.programs {
		if pr.key == key {
			return true
		}
	}
	return false
}

// planReplace adds the replacement variants whose case name matches
// -only, if -replacements asks for any; cdaemon-replace needs
// CDAEMON_REPLACE in the library's C code.
func (p *plan) planReplace(cfg config, only *regexp.Regexp) {
	p.replacements = cfg.replacements
	if cfg.replacements <= 0 {
		return
	}
	hasReplace := false
	for _, f := range libFiles(p.libRoot, p.base, ".") {
		if strings.HasSuffix(f, ".c") && strings.Contains(libFile(p.libRoot, p.base, f), `"CDAEMON_REPLACE"`) {
			hasReplace = true
		}
	}
	for i := range replaceVariants {
		v := &replaceVariants[i]
		if !only.MatchString(v.String()) {
			continue
		}
		if v.how == "replace" && !hasReplace {
			p.missing = append(p.missing, fmt.Sprintf("replacement variant %s: %s has no CDAEMON_REPLACE (issue 21)", v.name, p.base.desc))
			continue
		}
		p.replace = append(p.replace, v)
	}
}
