package tests

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Under systemd (Type=notify) a service runs in the foreground and Ready
// sends READY=1 to NOTIFY_SOCKET; a daemon started with the variable set
// sends it too, once.
func TestReadyNotifiesServiceManager(t *testing.T) {
	for _, mode := range []string{"off", "on"} {
		t.Run("CDAEMON="+mode, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "notify")
			fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			require.NoError(t, err)
			defer unix.Close(fd)
			require.NoError(t, unix.Bind(fd, &unix.SockaddrUnix{Name: sock}))
			// Only so a broken build cannot hang the suite.
			require.NoError(t, unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 30}))

			env := []string{"CDAEMON=" + mode, "CDAEMON_WAIT=ready", "NOTIFY_SOCKET=" + sock}
			args := []string{"-ready"}
			if mode == "off" {
				args = append(args, "-exit-after-ready") // the foreground probe must return
			}
			r := Launch(t, probe, env, args...)
			require.Equal(t, 0, r.Status, r.Stderr)

			buf := make([]byte, 64)
			n, _, err := unix.Recvfrom(fd, buf, 0)
			require.NoError(t, err)
			assert.Equal(t, "READY=1", string(buf[:n]))
			// Only once.
			n, _, err = unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
			assert.ErrorIs(t, err, unix.EAGAIN, "second message %q", buf[:max(n, 0)])
		})
	}
}
