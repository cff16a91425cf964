package tests

// The status pipe is input to the launcher from a process that may run
// with less privilege than it (after a drop) and may run anything: every
// byte is checked. A malformed message is a protocol error: the launcher
// stops the daemon, removes the pidfile, says so and exits 70. Text the
// daemon sends reaches the terminal escaped.

import (
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdaemon/cdaemon"
	"github.com/stretchr/testify/assert"
)

// msg is a status message as bytes: type, status, length (little-endian),
// payload; length -1 means len(payload).
func msg(typ byte, status byte, length int, payload string) string {
	if length < 0 {
		length = len(payload)
	}
	return hex.EncodeToString(append([]byte{typ, status, byte(length), byte(length >> 8)}, payload...))
}

func TestStatusPipeProtocolErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, bytes, why string
	}{
		{"length over the limit", msg('F', 1, 0xffff, ""), "longer than the protocol allows"},
		{"length one over the limit", msg('F', 1, 4001, strings.Repeat("x", 4001)), "longer than the protocol allows"},
		{"unknown type", msg('X', 0, 0, ""), "unknown type"},
		{"a second pid", msg('P', 0, -1, "12345"), "a second pid"},
		{"a pid that is no pid", msg('P', 0, -1, "1x"), "a pid message without a pid"},
		{"status on started", msg('S', 9, 0, ""), "a status on a message that has none"},
		{"text on ready", msg('R', 0, -1, "hi"), "text on a message that has none"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkZombies := noNewZombies(t)
			r := Launch(t, probe, []string{"CDAEMON_WAIT=ready", "CDAEMON_PIDFILE=p.pid", "CDAEMON_TIMEOUT=30s"},
				"-status", tc.bytes, "-wait-usr1")
			r.RequireStatus(t, cdaemon.ExitSoftware)
			requireOneClearLine(t, r.Stderr, "broke the status protocol", tc.why, "stopping it")
			requireNothingLeft(t, r)
			requireNoFile(t, filepath.Join(r.Dir, "p.pid"), "the failed start's pidfile")
			checkZombies()
		})
	}
}

// The longest message the protocol allows is read whole; a failure's
// status is the launcher's.
func TestStatusPipeLongestMessage(t *testing.T) {
	t.Parallel()
	text := strings.Repeat("y", 4000)
	r := Launch(t, probe, []string{"CDAEMON_WAIT=ready", "CDAEMON_PIDFILE=p.pid"},
		"-status", msg('F', 42, -1, text), "-wait-usr1")
	r.RequireStatus(t, 42)
	assert.Contains(t, r.Stderr, strings.Repeat("y", 1000))
	requireNothingLeft(t, r)
	requireNoFile(t, filepath.Join(r.Dir, "p.pid"), "the failed start's pidfile")
}

// Fail's text reaches the terminal with control bytes escaped, as
// CDAEMON_* values are: a daemon cannot send the user's terminal an
// escape sequence.
func TestFailTextEscaped(t *testing.T) {
	t.Parallel()
	r := Launch(t, probe, []string{"CDAEMON_WAIT=ready"}, "-fail", "boom\x1b]0;owned\x07\x1b[2J\r\nfake: ok \u009b2J")
	r.RequireStatus(t, cdaemon.ExitFail)
	requireOneClearLine(t, r.Stderr, `boom\x1b]0;owned\x07\x1b[2J\x0d\x0afake: ok \xc2\x9b2J`)
	assert.NotContains(t, r.Stderr, "\u009b", "a C1 control (CSI) reached the terminal")
	requireNothingLeft(t, r)
}
