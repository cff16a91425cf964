package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// blobSize is the generated table that makes the big programs big.
const blobSize = 24 << 20

// build compiles the plan's programs (and the spawner) into dir/bin, and
// returns the path of each by key. The plan's big size adds a big build of
// each Go program. A program marked with a library source is built against
// that library tree (a go.mod copy whose replace points there, through
// go build -modfile), with the source's files in place of the tree's
// files of the same name, such as pidfile.c (through go build -overlay).
// Builds run two at a time (the machine has two cores; go build
// parallelizes inside too).
func build(p *plan, dir string) (map[string]string, error) {
	benchDir, big := p.benchDir, p.big
	libs := map[string]*source{"base": &p.base, "exp": p.exp}
	mods := map[string]string{}
	for name, s := range libs {
		if s == nil {
			continue
		}
		if err := s.export(p.libRoot, filepath.Join(dir, "src-"+name)); err != nil {
			return nil, err
		}
		mod, err := modfile(benchDir, s.tree, filepath.Join(dir, "mod-"+name))
		if err != nil {
			return nil, err
		}
		mods[name] = mod
	}
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return nil, err
	}
	blob := ""
	if big {
		blob = filepath.Join(dir, "blob.bin")
		b := make([]byte, blobSize)
		r := rand.NewChaCha8([32]byte{'c', 'd', 'a', 'e', 'm', 'o', 'n'})
		r.Read(b)
		if err := os.WriteFile(blob, b, 0o644); err != nil {
			return nil, err
		}
	}
	type job struct {
		name string
		cmd  *exec.Cmd
	}
	var jobs []job
	bins := map[string]string{}
	for _, p := range p.programs {
		if p.ext != "" {
			bins[p.key] = p.ext
			continue
		}
		out := filepath.Join(bin, p.key)
		if p.c != "" {
			jobs = append(jobs, job{p.key, exec.Command("gcc", "-O2", "-Wall", "-o", out, filepath.Join(benchDir, "csrc", p.c))})
			continue
		}
		for _, size := range []string{"", "-big"} {
			if size != "" && !big {
				continue
			}
			repl := map[string]string{}
			if size != "" {
				repl[filepath.Join(benchDir, "internal", "heavy", "blob.bin")] = blob
			}
			if s := libs[p.lib]; s != nil {
				for _, f := range s.files {
					repl[filepath.Join(s.tree, filepath.Base(f))] = f
				}
			}
			overlay, err := writeOverlay(dir, p.key+size, repl)
			if err != nil {
				return nil, err
			}
			jobs = append(jobs, job{p.key + size, goBuild(benchDir, p, out+size, overlay, mods[p.lib], size != "")})
		}
	}
	// The spawner is static so that its own resident set, which its
	// vforked children start from, stays small.
	jobs = append(jobs, job{"spawn", exec.Command("gcc", "-O2", "-Wall", "-static", "-o",
		filepath.Join(bin, "spawn"), filepath.Join(benchDir, "csrc", "spawn.c"))})

	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var out bytes.Buffer
			j.cmd.Stdout, j.cmd.Stderr = &out, &out
			if j.cmd.Dir == "" {
				j.cmd.Dir = benchDir
			}
			err := j.cmd.Run()
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("building %s: %s: %v\n%s", j.name, strings.Join(j.cmd.Args, " "), err, out.String())
			}
			bins[j.name] = filepath.Join(bin, j.name)
		}()
	}
	wg.Wait()
	return bins, firstErr
}

func goBuild(benchDir string, p program, out, overlay, modfile string, big bool) *exec.Cmd {
	args := []string{"build", "-o", out}
	if modfile != "" {
		// -mod=mod: the other tree may need requirements this go.mod lacks.
		args = append(args, "-modfile", modfile, "-mod=mod")
	}
	tags := p.tags
	if big {
		tags = append(append([]string{}, tags...), "benchbig")
	}
	if overlay != "" {
		args = append(args, "-overlay", overlay)
	}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	if p.ldflags != "" {
		args = append(args, "-ldflags", p.ldflags)
	}
	cmd := exec.Command("go", append(args, p.pkg)...)
	cmd.Dir = benchDir
	cgo := "CGO_ENABLED=0"
	if p.cgo {
		cgo = "CGO_ENABLED=1"
	}
	cmd.Env = append(os.Environ(), cgo)
	return cmd
}

// writeOverlay writes a go build -overlay file that replaces the files
// named in repl; "" if there are none. The big programs get their table
// (random bytes, generated into the temp dir) in internal/heavy this way,
// and the programs built with -base or -exp FILE their files, so neither
// touches the source tree.
func writeOverlay(dir, name string, repl map[string]string) (string, error) {
	if len(repl) == 0 {
		return "", nil
	}
	j, err := json.Marshal(map[string]map[string]string{"Replace": repl})
	if err != nil {
		return "", err
	}
	overlay := filepath.Join(dir, "overlay-"+name+".json")
	return overlay, os.WriteFile(overlay, j, 0o644)
}

// findBenchDir returns the bench module's directory: the working directory
// or one above it whose go.mod declares the module.
func findBenchDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		for _, c := range []string{d, filepath.Join(d, "bench")} {
			b, err := os.ReadFile(filepath.Join(c, "go.mod"))
			if err == nil && bytes.HasPrefix(b, []byte("module github.com/cdaemon/cdaemon/bench\n")) {
				return c, nil
			}
		}
		if d == filepath.Dir(d) {
			return "", fmt.Errorf("cannot find the bench module (github.com/cdaemon/cdaemon/bench) from %s", dir)
		}
	}
}
