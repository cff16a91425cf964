package main

import (
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// config is what the command line asks for.
type config struct {
	rounds int
	inits  []time.Duration
	big    bool   // also the big program size
	only   string // run only the cases whose name matches this regexp
	base   string // -base: the library source of the cdaemon variants (see source)
	exp    string // -exp: the library source of the exp variants; "" for none
	keep   bool   // keep the temp dir (for profiling by hand)

	out      string    // "" writes no files
	stdout   io.Writer // the table; nil: not printed
	progress io.Writer // nil: no progress indicator
	command  string    // the command line, for the report
}

// A plan is everything a run will do, fixed before anything is built: the
// programs, the variants, the cases. The stages after it (build, measure,
// statistics, report, chart) read it and never change it.
type plan struct {
	rounds   int
	inits    []time.Duration
	big      bool
	programs []program
	variants []*variant
	cases    []benchCase
	benchDir string  // the bench module
	libRoot  string  // the library this bench module sits in
	base     source  // the library the cdaemon programs are built from
	exp      *source // the library the exp programs are built from; nil: none
	keep     bool
	command  string
}

func newPlan(cfg config) (*plan, error) {
	benchDir, err := findBenchDir()
	if err != nil {
		return nil, err
	}
	p := &plan{rounds: cfg.rounds, inits: cfg.inits, big: cfg.big, benchDir: benchDir, libRoot: filepath.Dir(benchDir),
		keep: cfg.keep, command: cfg.command}
	if p.base, err = resolveSource("-base", cfg.base, p.libRoot); err != nil {
		return nil, err
	}
	p.programs = append(p.programs, programs...)
	for i := range variants {
		p.variants = append(p.variants, &variants[i])
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
		p.programs = append(p.programs, expPrograms...)
		for i := range expVariants {
			p.variants = append(p.variants, &expVariants[i])
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
	if len(p.cases) == 0 {
		return nil, fmt.Errorf("-only %q matches no case", cfg.only)
	}
	return p, nil
}

// allCases lists every case: every swept variant at every init weight
// (small size) and at no init in the big size; the C programs once.
func (p *plan) allCases() []benchCase {
	var cs []benchCase
	for _, v := range p.variants {
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

// variant finds a variant by name; nil if the plan has none.
func (p *plan) variant(name string) *variant {
	for _, v := range p.variants {
		if v.name == name {
			return v
		}
	}
	return nil
}
