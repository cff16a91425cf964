// Package fgpkg has tests that import cdaemon: go test must run them in the
// foreground, undisturbed (DESIGN.md property 13). tests/api_test.go runs
// `go test` on it.
package fgpkg

import (
	"fmt"
	"os"
	"testing"

	"github.com/cdaemon/cdaemon"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunsInTheForeground(t *testing.T) {
	require.False(t, cdaemon.Daemonized())
	info := cdaemon.Info()
	assert.Contains(t, info.Reason, "test")
	assert.Equal(t, os.Getpid(), info.LauncherPID)
	wd, err := os.Getwd()
	require.NoError(t, err)
	assert.Equal(t, wd, info.Dir)
	assert.NoError(t, cdaemon.Ready())
	fmt.Println("fgpkg: foreground, pid", os.Getpid(), "reason:", info.Reason)
}
