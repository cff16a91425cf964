package tests

// The documentation renders without cgo (go doc, pkg.go.dev), and the
// exit-status constants it shows are the ones the C constructor uses
// (cdaemon.h).

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cdaemon/cdaemon"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// exported lists the exported top-level names declared in the package's
// non-test files, whatever their build constraints.
func exported(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../*.go")
	require.NoError(t, err)
	var names []string
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		for _, d := range file.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && d.Name.IsExported() {
					names = append(names, d.Name.Name)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							names = append(names, s.Name.Name)
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								names = append(names, n.Name)
							}
						}
					}
				}
			}
		}
	}
	return names
}

// `CGO_ENABLED=0 go doc -all` shows the package doc with its tables and
// every exported name, each with its documentation: the API is declared
// in files without the cgo constraint.
func TestDocsRenderWithoutCgo(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("go", "doc", "-all", "github.com/cdaemon/cdaemon")
	cmd.Dir = ".."
	cmd.Env = append(goEnv(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	doc := string(out)
	for _, want := range []string{
		"Importing it is enough",
		"CDAEMON_PIDFILE     path", // the configuration table
		"CDAEMON_KEEP_FDS",
		"cdaemon_wanted",
		"Exit statuses",
	} {
		assert.Contains(t, doc, want)
	}
	names := exported(t)
	require.Contains(t, names, "Ready", "the parser found the API")
	for _, name := range names {
		// Declared: "func Name(", "type Name ", or "Name = " in a const block.
		re := regexp.MustCompile(`(?m)^(func ` + name + `\(|type ` + name + ` |\s+` + name + `\s+=)`)
		assert.Regexp(t, re, doc, "CGO_ENABLED=0 go doc does not show %s", name)
	}
}

// The Exit constants are literal numbers in Go (so they render without
// cgo) and equal cdaemon.h's CDAEMON_EX_* enum, entry for entry.
func TestExitStatusesMatchHeader(t *testing.T) {
	t.Parallel()
	header, err := os.ReadFile("../cdaemon.h")
	require.NoError(t, err)
	inC := map[string]int{}
	for _, m := range regexp.MustCompile(`(?m)^\s*CDAEMON_EX_([A-Z]+)\s*=\s*([0-9]+)\s*,`).FindAllStringSubmatch(string(header), -1) {
		v, _ := strconv.Atoi(m[2])
		inC[m[1]] = v
	}
	require.NotEmpty(t, inC, "no CDAEMON_EX_* enum in cdaemon.h")
	inGo := map[string]int{
		"FAIL":        cdaemon.ExitFail,
		"USAGE":       cdaemon.ExitUsage,
		"SOFTWARE":    cdaemon.ExitSoftware,
		"OSERR":       cdaemon.ExitOSErr,
		"CANTCREAT":   cdaemon.ExitCantCreate,
		"TEMPFAIL":    cdaemon.ExitTempFail,
		"NOUSER":      cdaemon.ExitNoUser,
		"NOPERM":      cdaemon.ExitNoPerm,
		"UNAVAILABLE": cdaemon.ExitUnavailable,
	}
	assert.Equal(t, 1, cdaemon.ExitFail)
	delete(inC, "OK") // success has no constant: it is 0
	assert.Equal(t, inC, inGo, "cdaemon.h's CDAEMON_EX_* (left) and the Go Exit constants (right)")
	var goNames []string
	for _, n := range exported(t) {
		if strings.HasPrefix(n, "Exit") {
			goNames = append(goNames, n)
		}
	}
	assert.Len(t, goNames, len(inGo), "every Exit constant is in this test's table: %v", goNames)
}

// Every test the README names as evidence exists: a guarantee backed by a
// renamed or deleted test is no longer backed.
func TestReadmeNamesRealTests(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	named := regexp.MustCompile("`(Test[A-Z][A-Za-z0-9_]*)[^`]*`").FindAllStringSubmatch(string(readme), -1)
	require.NotEmpty(t, named, "the README names no test")
	files, err := filepath.Glob("*_test.go")
	require.NoError(t, err)
	defined := map[string]bool{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range regexp.MustCompile(`(?m)^func (Test[A-Za-z0-9_]*)\(t \*testing\.T\)`).FindAllStringSubmatch(string(src), -1) {
			defined[m[1]] = true
		}
	}
	for _, m := range named {
		assert.True(t, defined[m[1]], "README.md names %s, which is not a test in tests/", m[1])
	}
}
