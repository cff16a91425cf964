package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// A source is the library a set of cdaemon programs is built from: -base
// (default: the library this bench module sits in) or -exp. Given as
//
//   - a directory: a library tree, such as another git worktree;
//   - FILE[,FILE]: files that replace the base tree's files of the same
//     name (pidfile.c, preinit.go, ...), through go build -overlay; each
//     must name a file the base tree has (cgo compiles every C file of
//     the package, so a change that adds, removes or splits C files, such
//     as the split of cdaemon.c, is measured as a directory or a revision);
//   - anything else: a git revision of the library's repository (a branch,
//     a tag, a commit), exported with git archive into the temp dir.
type source struct {
	desc  string   // what it resolved to, for the report
	tree  string   // the library tree to build against; "" until exported
	rev   string   // a commit to export into the temp dir
	files []string // absolute paths overlaid on the tree
}

// resolveSource resolves spec (see source) against the library root
// libRoot, which is also the tree files are overlaid on.
func resolveSource(flag, spec, libRoot string) (source, error) {
	if spec == "" {
		return source{desc: "the library at " + libRoot + gitDesc(libRoot), tree: libRoot}, nil
	}
	fi, err := os.Stat(spec)
	switch {
	case err == nil && fi.IsDir():
		abs, err := filepath.Abs(spec)
		if err != nil {
			return source{}, err
		}
		b, err := os.ReadFile(filepath.Join(abs, "go.mod"))
		if err != nil || !bytes.HasPrefix(b, []byte("module github.com/cdaemon/cdaemon\n")) {
			return source{}, fmt.Errorf("%s %s: not a tree of the cdaemon library (no go.mod declaring github.com/cdaemon/cdaemon)", flag, spec)
		}
		return source{desc: "the library at " + abs + gitDesc(abs), tree: abs}, nil
	case err == nil || strings.Contains(spec, ","):
		s := source{tree: libRoot}
		for _, f := range strings.Split(spec, ",") {
			abs, err := filepath.Abs(f)
			if err != nil {
				return source{}, err
			}
			if fi, err := os.Stat(abs); err != nil || !fi.Mode().IsRegular() {
				return source{}, fmt.Errorf("%s: %q is not a file, a directory or a git revision", flag, f)
			}
			if fi, err := os.Stat(filepath.Join(libRoot, filepath.Base(abs))); err != nil || !fi.Mode().IsRegular() {
				return source{}, fmt.Errorf("%s: %q replaces no file of the library at %s (a FILE replaces the file of the same name; for a tree whose files differ give a directory or a git revision)", flag, f, libRoot)
			}
			s.files = append(s.files, abs)
		}
		s.desc = "the library at " + libRoot + gitDesc(libRoot) + " with " + strings.Join(s.files, ", ") + " in place of its files of the same name"
		return s, nil
	}
	out, err := exec.Command("git", "-C", libRoot, "rev-parse", "--verify", "--quiet", spec+"^{commit}").Output()
	if err != nil {
		return source{}, fmt.Errorf("%s %s: not a file, a directory, or a git revision of %s", flag, spec, libRoot)
	}
	rev := strings.TrimSpace(string(out))
	return source{desc: fmt.Sprintf("git revision %s (commit %.12s) of %s", spec, rev, libRoot), rev: rev}, nil
}

// gitDesc names the commit a tree is at, and whether it has changes.
func gitDesc(dir string) string {
	out, err := exec.Command("git", "-C", dir, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return ""
	}
	d := " (commit " + strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", dir, "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench").Output(); err == nil && len(st) > 0 {
		d += ", with uncommitted changes"
	}
	return d + ")"
}

// export makes s.tree: for a git revision, the commit's files in dir.
func (s *source) export(libRoot, dir string) error {
	if s.tree != "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	archive := exec.Command("git", "-C", libRoot, "archive", "--format=tar", s.rev)
	untar := exec.Command("tar", "-x", "-C", dir)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return err
	}
	untar.Stdin = pipe
	var errs bytes.Buffer
	archive.Stderr, untar.Stderr = &errs, &errs
	if err := untar.Start(); err != nil {
		return err
	}
	if err := archive.Run(); err != nil {
		untar.Wait()
		return fmt.Errorf("git archive %s: %v: %s", s.rev, err, errs.String())
	}
	if err := untar.Wait(); err != nil {
		return fmt.Errorf("tar -x of git archive %s: %v: %s", s.rev, err, errs.String())
	}
	s.tree = dir
	return nil
}

// modfile writes a copy of the bench module's go.mod (and go.sum) into
// dir whose replace directive points at tree, for go build -modfile; ""
// if tree is the library the bench module already replaces with.
func modfile(benchDir, tree, dir string) (string, error) {
	if tree == filepath.Dir(benchDir) {
		return "", nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(benchDir, f))
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			return "", err
		}
	}
	mod := filepath.Join(dir, "go.mod")
	cmd := exec.Command("go", "mod", "edit", "-replace", "github.com/cdaemon/cdaemon="+tree, mod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go mod edit %s: %v: %s", mod, err, out)
	}
	return mod, nil
}
