package tests

// Replacing a running daemon (CDAEMON_REPLACE=on): the new instance takes
// the old one's listening sockets and lock, the old one is stopped only
// once the new one is ready, and no connection is refused nor any request
// lost, under real load. Every way the new instance can fail leaves the
// old one serving, holding its lock and named in its pidfile. Taking
// descriptors from another process needs ptrace access: refused, nothing
// changes (77).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cdaemon/cdaemon"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func httpd(t *testing.T) string { return program(t, "httpd", "./testdata/httpd", nil) }

// httpdReport mirrors testdata/httpd's report.
type httpdReport struct {
	PID             int
	ProbeFD         int
	ProbeSurvivesGC bool
	Info            cdaemon.State
	Inodes          []uint64
	Env             []string
}

func readHttpdReport(t *testing.T, r *Run) httpdReport {
	t.Helper()
	var rep httpdReport
	eventually(t, "the httpd report "+r.Report, func() bool {
		b, err := os.ReadFile(r.Report)
		return err == nil && json.Unmarshal(b, &rep) == nil
	})
	r.Track(rep.PID)
	return rep
}

// A site is a directory with a pidfile and the addresses a daemon serves.
type site struct {
	dir, pidfile string
	port         int
	listen       string
}

func newSite(t *testing.T) *site {
	t.Helper()
	s := &site{dir: t.TempDir(), port: freePort(t)}
	s.pidfile = filepath.Join(s.dir, "httpd.pid")
	s.listen = fmt.Sprintf("tcp:127.0.0.1:%d", s.port)
	return s
}

func (s *site) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

func (s *site) env(extra ...string) []string {
	return append([]string{"CDAEMON_PIDFILE=" + s.pidfile, "CDAEMON_LISTEN=" + s.listen, "CDAEMON_WAIT=ready"},
		extra...)
}

// start starts httpd for the site (no replacement) and waits until it is ready.
func (s *site) start(t *testing.T, args ...string) (*Run, httpdReport) {
	t.Helper()
	r := LaunchOpts(t, httpd(t), Opts{Dir: s.dir, Env: s.env(), Args: args})
	r.RequireStatus(t, 0)
	return r, readHttpdReport(t, r)
}

// replace starts httpd for the site with CDAEMON_REPLACE=on and waits
// for its launcher.
func (s *site) replace(t *testing.T, env []string, args ...string) *Run {
	t.Helper()
	return LaunchOpts(t, httpd(t), Opts{Dir: s.dir, Env: s.env(append([]string{"CDAEMON_REPLACE=on"}, env...)...),
		Args: args})
}

// pid is the pid the pidfile names ("" if it names none).
func (s *site) pid(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(s.pidfile)
	require.NoError(t, err)
	return string(b)
}

// requireLockHolder asserts that pid holds the flock of the lock file (seen in its
// /proc fdinfo) and that FindDaemon finds it as the daemon.
func requireLockHolder(t *testing.T, pidfile string, pid int) {
	t.Helper()
	// The lock file beside the pidfile (LOCK-SPEC), or the pidfile itself
	// where the lock is still taken on it.
	lock, err := filepath.EvalSymlinks(pidfile + ".lock")
	if errors.Is(err, os.ErrNotExist) {
		lock, err = filepath.EvalSymlinks(pidfile)
	}
	require.NoError(t, err)
	held := false
	for n, fd := range procFDs(t, pid) {
		if fd.Target == lock && strings.Contains(readFile(t, fmt.Sprintf("/proc/%d/fdinfo/%d", pid, n)), "FLOCK") {
			held = true
		}
	}
	assert.True(t, held, "pid %d holds the lock on %s", pid, lock)
	d, err := cdaemon.FindDaemon(pidfile)
	require.NoError(t, err)
	defer d.Close()
	assert.Equal(t, pid, d.PID, "FindDaemon's daemon")
}

// listening is the inode of the one socket listening on 127.0.0.1:port,
// from /proc/net/tcp, where the kernel lists every listening socket once.
func listening(t *testing.T, port int) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	require.NoError(t, err)
	local := fmt.Sprintf("0100007F:%04X", port)
	var inodes []uint64
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 9 && f[1] == local && f[3] == "0A" { // TCP_LISTEN
			ino, err := strconv.ParseUint(f[9], 10, 64)
			require.NoError(t, err)
			inodes = append(inodes, ino)
		}
	}
	require.Len(t, inodes, 1, "one socket listens on port %d", port)
	return inodes[0]
}

// sockets are the socket inodes pid has open, from /proc/PID/fd.
func sockets(t *testing.T, pid int) []uint64 {
	t.Helper()
	var inodes []uint64
	for _, fd := range procFDs(t, pid) {
		var ino uint64
		if _, err := fmt.Sscanf(fd.Target, "socket:[%d]", &ino); err == nil {
			inodes = append(inodes, ino)
		}
	}
	return inodes
}

// A load is clients hitting a server as hard as they can, on loopback:
// some open a new connection for every request, some reuse keep-alive
// connections. Every request must get a 200 from some instance: a refused
// connect and any other failure are counted. It is bounded: it stops at
// end, after maxRequests, or after hang.
type load struct {
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	ok      atomic.Int64
	failed  atomic.Int64
	refused atomic.Int64
	mu      sync.Mutex
	byPID   map[int]int64
	errs    []string
	t0      time.Time
}

const maxRequests = 2_000_000

func startLoad(t *testing.T, addr string) *load {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*hang)
	l := &load{cancel: cancel, byPID: map[int]int64{}, t0: time.Now()}
	url := "http://" + addr + "/"
	for i := 0; i < 4; i++ {
		tr := &http.Transport{Proxy: nil, DisableKeepAlives: i < 2, MaxIdleConnsPerHost: 2}
		l.wg.Add(1)
		go l.client(ctx, &http.Client{Transport: tr, Timeout: hang}, url, map[bool]string{true: "new connections", false: "keep-alive"}[i < 2])
	}
	t.Cleanup(func() { l.end() })
	return l
}

func (l *load) client(ctx context.Context, c *http.Client, url, kind string) {
	defer l.wg.Done()
	defer c.CloseIdleConnections()
	for ctx.Err() == nil && l.ok.Load()+l.failed.Load()+l.refused.Load() < maxRequests {
		var reused bool
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), "GET", url, nil)
		began := time.Since(l.t0)
		resp, err := c.Do(req)
		if err != nil {
			err = fmt.Errorf("request made at %v: %w", began.Round(time.Millisecond), err)
		}
		if ctx.Err() != nil {
			return // ended: not the server's failure
		}
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				l.refused.Add(1)
			} else {
				l.failed.Add(1)
			}
			l.note(fmt.Sprintf("%s (%s client, connection reused: %v)", err, kind, reused))
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		pid, perr := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || perr != nil || resp.StatusCode != 200 {
			l.failed.Add(1)
			l.note(fmt.Sprintf("status %d, body %q, %v", resp.StatusCode, b, err))
			continue
		}
		l.ok.Add(1)
		l.mu.Lock()
		l.byPID[pid]++
		l.mu.Unlock()
	}
}

func (l *load) note(e string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) < 10 {
		l.errs = append(l.errs, fmt.Sprintf("%v after the load started: %s", time.Since(l.t0).Round(time.Millisecond), e))
	}
}

// served is how many requests pid has answered.
func (l *load) served(pid int) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byPID[pid]
}

// waitServed waits until pid has answered a request of the load.
func (l *load) waitServed(t *testing.T, pid int) {
	t.Helper()
	eventually(t, fmt.Sprintf("pid %d answering the load", pid), func() bool { return l.served(pid) > 0 })
}

func (l *load) end() {
	l.cancel()
	l.wg.Wait()
}

// requireClean ends the load and asserts it lost nothing.
func (l *load) requireClean(t *testing.T) {
	t.Helper()
	l.end()
	l.mu.Lock()
	defer l.mu.Unlock()
	require.Positive(t, l.ok.Load(), "the load made requests")
	require.Zero(t, l.refused.Load(), "refused connects (%d ok): %q", l.ok.Load(), l.errs)
	require.Zero(t, l.failed.Load(), "failed requests (%d ok): %q", l.ok.Load(), l.errs)
}

// Twenty replacements in a row under load: not one connect refused nor
// one request failed. After each, the pidfile names the new daemon, which
// holds the lock and serves on the very socket the old one listened on;
// the old one is gone, having drained and exited 0; Info tells the new one
// whom it replaced.
func TestReplaceUnderLoadDropsNothing(t *testing.T) {
	t.Parallel()
	n := 20
	if testing.Short() {
		n = 3
	}
	s := newSite(t)
	cur, rep := s.start(t, "-delay", "1ms")
	assert.Zero(t, rep.Info.ReplacedPID, "an ordinary start replaced nothing")
	ino := listening(t, s.port)
	require.Equal(t, []uint64{ino}, rep.Inodes)
	l := startLoad(t, s.addr())
	l.waitServed(t, rep.PID)

	for i := 0; i < n; i++ {
		old, oldRun := rep, cur
		require.Contains(t, sockets(t, old.PID), ino)
		cur = s.replace(t, nil, "-delay", "1ms")
		cur.RequireStatus(t, 0)
		rep = readHttpdReport(t, cur)
		require.NotEqual(t, old.PID, rep.PID)

		assert.False(t, alive(old.PID), "replacement %d: the old daemon %d is gone when the launcher returns", i, old.PID)
		ws := oldRun.WaitExit(t, old.PID)
		assert.True(t, ws.Exited() && ws.ExitStatus() == 0, "the old daemon drained and exited 0: %v", ws)
		assert.Equal(t, fmt.Sprintf("%d\n", rep.PID), s.pid(t), "the pidfile names the new daemon")
		requireLockHolder(t, s.pidfile, rep.PID)
		assert.Equal(t, ino, listening(t, s.port), "the same socket listens")
		assert.Equal(t, []uint64{ino}, rep.Inodes, "the new daemon serves on the old one's socket")
		assert.Equal(t, old.PID, rep.Info.ReplacedPID)
		assert.Equal(t, []string{s.listen}, rep.Info.Listeners)
		l.waitServed(t, rep.PID)
	}
	l.requireClean(t)
	t.Logf("%d requests over %d replacements", l.ok.Load(), n)
}

// Listeners are matched by address, whatever descriptor the old daemon
// keeps them at, and handed over in the new list's order; an address the
// old one lacks is bound afresh; one the new list drops is let go with the
// old daemon.
func TestReplaceMatchesListenersByAddress(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	p2, p3 := freePort(t), freePort(t)
	sock := filepath.Join(s.dir, "s.sock")
	s.listen = fmt.Sprintf("tcp:127.0.0.1:%d,unix:s.sock,tcp:127.0.0.1:%d", s.port, p3)
	old, oldRep := s.start(t)
	require.Len(t, oldRep.Inodes, 3)

	s.listen = fmt.Sprintf("unix:s.sock,tcp:127.0.0.1:%d,tcp:127.0.0.1:%d", p2, s.port)
	r := s.replace(t, nil)
	r.RequireStatus(t, 0)
	rep := readHttpdReport(t, r)
	old.WaitExit(t, oldRep.PID)

	require.Len(t, rep.Inodes, 3)
	assert.Equal(t, oldRep.Inodes[1], rep.Inodes[0], "the unix socket carried over, now first")
	assert.NotContains(t, oldRep.Inodes, rep.Inodes[1], "an address the old daemon lacked bound afresh")
	assert.Equal(t, oldRep.Inodes[0], rep.Inodes[2], "the first tcp socket carried over, now third")
	assert.Equal(t, rep.Inodes[2], listening(t, s.port))
	resolved, err := filepath.EvalSymlinks(s.dir)
	require.NoError(t, err)
	names := fmt.Sprintf("LISTEN_FDNAMES=unix-%s:tcp-127.0.0.1-%d:tcp-127.0.0.1-%d",
		filepath.Join(resolved, "s.sock"), p2, s.port)
	assert.Contains(t, rep.Env, names)
	assert.Contains(t, rep.Env, "LISTEN_FDS=3")
	for _, a := range [][2]string{{"unix", sock}, {"tcp", fmt.Sprintf("127.0.0.1:%d", p2)}, {"tcp", s.addr()}} {
		assert.Equal(t, fmt.Sprintf("%d\n", rep.PID), httpGet(t, a[0], a[1]), "%v", a)
	}
	_, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p3))
	assert.ErrorIs(t, err, syscall.ECONNREFUSED, "the address the new list dropped left with the old daemon")
}

// httpGet is the body of GET / on a tcp or unix address.
func httpGet(t *testing.T, network, addr string) string {
	t.Helper()
	c := &http.Client{Timeout: hang, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}}
	resp, err := c.Get("http://x/")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// requireUntouched asserts the old daemon still serves, on its socket,
// holds its lock and is named in the pidfile.
func requireUntouched(t *testing.T, s *site, old httpdReport, ino uint64) {
	t.Helper()
	requireAlive(t, old.PID)
	assert.Equal(t, fmt.Sprintf("%d\n", old.PID), s.pid(t), "the pidfile still names the old daemon")
	requireLockHolder(t, s.pidfile, old.PID)
	assert.Equal(t, ino, listening(t, s.port), "the same socket listens")
	assert.Contains(t, sockets(t, old.PID), ino)
	assert.Equal(t, fmt.Sprintf("%d\n", old.PID), httpGet(t, "tcp", s.addr()))
}

// Every way the new instance can fail before it is ready leaves the old
// daemon as it was, serving the load without a loss; the launcher exits
// with the new instance's status, says why and that the old one (its pid)
// still runs, and leaves nothing of the new start behind.
func TestReplaceFailureLeavesOldServing(t *testing.T) {
	t.Parallel()
	hold, err := net.Listen("tcp", "127.0.0.1:0") // in use by someone else
	require.NoError(t, err)
	t.Cleanup(func() { hold.Close() })
	busy := hold.Addr().(*net.TCPAddr).Port
	cases := []struct {
		name   string
		env    []string
		args   []string
		status int
		says   string
	}{
		{"the program fails", nil, []string{"-fail", "bad configuration in /etc/httpd.conf"}, 1,
			"bad configuration in /etc/httpd.conf"},
		{"exits before ready", nil, []string{"-exit", "3"}, 3, "exited with status 3 before it was ready"},
		{"exits 0 before ready", nil, []string{"-exit", "0"}, 1, "exited with status 0 before it was ready"},
		{"times out", []string{"CDAEMON_TIMEOUT=2s"}, []string{"-hang"}, 1, "was not ready within CDAEMON_TIMEOUT (2s)"},
		{"is killed", nil, []string{"-kill"}, 128 + 9, "killed by signal 9"},
		{"a new address in use", []string{"CDAEMON_LISTEN=tcp:127.0.0.1:PORT,tcp:127.0.0.1:" + strconv.Itoa(busy)}, nil,
			cdaemon.ExitTempFail, "is in use"},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSite(t)
			_, old := s.start(t)
			ino := listening(t, s.port)
			l := startLoad(t, s.addr())
			l.waitServed(t, old.PID)
			var env []string
			for _, e := range tc.env {
				env = append(env, strings.ReplaceAll(e, "PORT", strconv.Itoa(s.port)))
			}
			r := s.replace(t, env, tc.args...)
			r.RequireStatus(t, tc.status)
			assert.Contains(t, r.Stderr, tc.says)
			assert.Contains(t, r.Stderr, fmt.Sprintf("the daemon being replaced (pid %d) is still running: "+
				"it keeps its sockets and its lock, and %q still names it", old.PID, s.pidfile))
			r.RequireGone(t)
			requireUntouched(t, s, old, ino)
			l.requireClean(t)
		})
	}
}

// A launcher interrupted while it waits for the new instance (Ctrl-C)
// stops that one and leaves the old daemon as it was.
func TestReplaceInterruptedLeavesOldServing(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	_, old := s.start(t)
	ino := listening(t, s.port)
	r := Spawn(t, httpd(t), Opts{Dir: s.dir, Env: s.env("CDAEMON_REPLACE=on"), Args: []string{"-hang"}})
	readHttpdReport(t, r)
	require.NoError(t, syscall.Kill(r.Launcher, syscall.SIGINT))
	r.Wait(t)
	r.RequireStatus(t, 128+int(syscall.SIGINT))
	assert.Contains(t, r.Stderr, fmt.Sprintf("the daemon being replaced (pid %d) is still running", old.PID))
	r.RequireGone(t)
	requireUntouched(t, s, old, ino)
}

// A pidfile removed while the replacement starts (after the old daemon
// was found, before the pidfile is opened: an LD_PRELOAD gate on the
// new log's open holds the launcher there) is created by this start,
// and removed again when the new instance fails. The launcher then does
// not claim the pidfile still names the old daemon: it says it was
// missing. The old daemon serves on, holding its lock.
func TestReplaceFailureWithPidfileGone(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	_, old := s.start(t)
	ino := listening(t, s.port)
	gate := filepath.Join(t.TempDir(), "gate")
	log := filepath.Join(s.dir, "replacing.log")
	r := Spawn(t, httpd(t), Opts{Dir: s.dir, Args: []string{"-exit", "3"},
		Env: s.env("CDAEMON_REPLACE=on", "CDAEMON_LOG="+log, "LD_PRELOAD="+faultShim(t),
			"HFAULT=open:launcher:gate="+gate+":replacing.log")})
	eventually(t, "the launcher at the log's open", func() bool {
		_, err := os.Stat(gate + ".reached")
		return err == nil
	})
	require.NoError(t, os.Remove(s.pidfile))
	require.NoError(t, os.WriteFile(gate, nil, 0o644))
	r.Wait(t)
	r.RequireStatus(t, 3)
	assert.Contains(t, r.Stderr, "exited with status 3 before it was ready")
	assert.Contains(t, r.Stderr, fmt.Sprintf("the daemon being replaced (pid %d) is still running", old.PID))
	assert.NotContains(t, r.Stderr, "still names it")
	assert.Contains(t, r.Stderr, fmt.Sprintf("%q was missing, and the one this start made is removed", s.pidfile))
	assert.NoFileExists(t, s.pidfile, "the pidfile this start made is removed")
	r.RequireGone(t)
	requireAlive(t, old.PID)
	requireLockHolder(t, s.pidfile, old.PID)
	assert.Equal(t, ino, listening(t, s.port), "the same socket listens")
	assert.Equal(t, fmt.Sprintf("%d\n", old.PID), httpGet(t, "tcp", s.addr()))
}

// Bad settings are refused (64) before anything is looked at.
func TestReplaceValues(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	_, old := s.start(t)
	ino := listening(t, s.port)
	for _, tc := range []struct {
		env []string
		msg string
	}{
		{[]string{"CDAEMON_REPLACE=sometimes"}, `CDAEMON_REPLACE="sometimes" is not valid: want on or off`},
		{[]string{"CDAEMON_REPLACE=on", "CDAEMON_REPLACE_SIGNAL=TERMINATE"},
			`CDAEMON_REPLACE_SIGNAL="TERMINATE" is not valid: want a signal name`},
		{[]string{"CDAEMON_REPLACE=on", "CDAEMON_REPLACE_SIGNAL=9"}, `CDAEMON_REPLACE_SIGNAL="9" is not valid`},
		{[]string{"CDAEMON_REPLACE=on", "CDAEMON_WAIT=none"},
			"CDAEMON_REPLACE=on needs CDAEMON_WAIT=start or ready"},
	} {
		r := LaunchOpts(t, httpd(t), Opts{Dir: s.dir, Env: append(s.env(), tc.env...)})
		r.RequireStatus(t, cdaemon.ExitUsage)
		requireOneClearLine(t, r.Stderr, tc.msg)
		r.RequireGone(t)
	}
	r := LaunchOpts(t, httpd(t), Opts{Dir: s.dir, Env: []string{"CDAEMON_REPLACE=on", "CDAEMON_LISTEN=" + s.listen}})
	r.RequireStatus(t, cdaemon.ExitUsage)
	requireOneClearLine(t, r.Stderr, "CDAEMON_REPLACE=on needs CDAEMON_PIDFILE")
	r.RequireGone(t)
	requireUntouched(t, s, old, ino)
}

// With nothing to replace (no pidfile, or one no process holds) the start
// is an ordinary one.
func TestReplaceWithoutDaemonStartsOrdinarily(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	r := s.replace(t, nil)
	r.RequireStatus(t, 0)
	rep := readHttpdReport(t, r)
	assert.Zero(t, rep.Info.ReplacedPID)
	assert.Equal(t, fmt.Sprintf("%d\n", rep.PID), s.pid(t))
	requireLockHolder(t, s.pidfile, rep.PID)
	ws := r.Stop(t, rep.PID) // leaves the pidfile, unlocked: stale

	r = s.replace(t, nil)
	r.RequireStatus(t, 0)
	rep2 := readHttpdReport(t, r)
	assert.Zero(t, rep2.Info.ReplacedPID, "a stale pidfile names no daemon to replace")
	requireLockHolder(t, s.pidfile, rep2.PID)
	assert.True(t, ws.Exited(), "%v", ws)
}

// CDAEMON_REPLACE_SIGNAL is what the old daemon gets; one that ignores it
// is killed once CDAEMON_TIMEOUT has passed, and the launcher says so.
func TestReplaceSignalAndTimeout(t *testing.T) {
	t.Parallel()
	t.Run("signal", func(t *testing.T) {
		t.Parallel()
		s := newSite(t)
		oldRun, old := s.start(t, "-drain-signal", "USR1")
		r := s.replace(t, []string{"CDAEMON_REPLACE_SIGNAL=USR1"})
		r.RequireStatus(t, 0)
		rep := readHttpdReport(t, r)
		ws := oldRun.WaitExit(t, old.PID)
		assert.True(t, ws.Exited() && ws.ExitStatus() == 0, "drained on SIGUSR1 (SIGTERM would have killed it): %v", ws)
		requireLockHolder(t, s.pidfile, rep.PID)
	})
	t.Run("killed after the timeout", func(t *testing.T) {
		t.Parallel()
		s := newSite(t)
		oldRun, old := s.start(t, "-ignore-term")
		r := s.replace(t, []string{"CDAEMON_TIMEOUT=2s"})
		r.RequireStatus(t, 0)
		rep := readHttpdReport(t, r)
		assert.Contains(t, r.Stderr, fmt.Sprintf("the replaced daemon (pid %d) did not exit within CDAEMON_TIMEOUT (2s) after SIGTERM: killed it (SIGKILL)", old.PID))
		ws := oldRun.WaitExit(t, old.PID)
		assert.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "%v", ws)
		requireLockHolder(t, s.pidfile, rep.PID)
		assert.Equal(t, fmt.Sprintf("%d\n", rep.PID), httpGet(t, "tcp", s.addr()))
	})
}

// Taking another process's descriptors needs ptrace access. Refused, the
// launcher exits 77 before anything changes, naming the pid, the reason
// and the sysctl that decides it. Root replaces a daemon that dropped to
// nobody; nobody cannot (the daemon is not dumpable after the drop, and
// its lock file is root's).
func TestReplacePermissions(t *testing.T) {
	needRoot(t)
	t.Parallel()
	shared := sharedDir(t)
	mk := func(t *testing.T, owner int) *site {
		s := &site{dir: filepath.Join(shared, t.Name()[strings.LastIndexByte(t.Name(), '/')+1:]), port: freePort(t)}
		s.dir = strings.ReplaceAll(s.dir, " ", "_")
		require.NoError(t, os.Mkdir(s.dir, 0o755))
		require.NoError(t, os.Chown(s.dir, owner, owner))
		s.pidfile = filepath.Join(s.dir, "httpd.pid")
		s.listen = fmt.Sprintf("tcp:127.0.0.1:%d", s.port)
		return s
	}
	t.Run("nobody cannot replace root's daemon", func(t *testing.T) {
		t.Parallel()
		s := mk(t, 0)
		reportPath := filepath.Join(shared, "root-daemon.json")
		old := LaunchOpts(t, httpd(t), Opts{Dir: s.dir, Env: s.env("CDAEMON_USER=nobody", "PROBE_REPORT="+reportPath)})
		old.RequireStatus(t, 0)
		old.Report = reportPath
		oldRep := readHttpdReport(t, old)
		ino := listening(t, s.port)
		r := LaunchOpts(t, httpd(t), Opts{Dir: s.dir, Env: s.env("CDAEMON_REPLACE=on"), Attr: asNobody()})
		r.RequireStatus(t, cdaemon.ExitNoPerm)
		requireOneClearLine(t, r.Stderr, fmt.Sprintf("pid %d", oldRep.PID), "kernel.yama.ptrace_scope",
			"not permitted")
		r.RequireGone(t)
		requireUntouched(t, s, oldRep, ino)
	})
	t.Run("nobody cannot replace its own undumpable daemon", func(t *testing.T) {
		t.Parallel()
		s := mk(t, nobody)
		reportPath := filepath.Join(shared, "undumpable.json")
		old := LaunchOpts(t, httpd(t), Opts{Dir: s.dir, Env: s.env("PROBE_REPORT=" + reportPath), Attr: asNobody(),
			Args: []string{"-undumpable"}})
		old.RequireStatus(t, 0)
		old.Report = reportPath
		oldRep := readHttpdReport(t, old)
		ino := listening(t, s.port)
		r := LaunchOpts(t, httpd(t), Opts{Dir: s.dir, Env: s.env("CDAEMON_REPLACE=on"), Attr: asNobody()})
		r.RequireStatus(t, cdaemon.ExitNoPerm)
		requireOneClearLine(t, r.Stderr, fmt.Sprintf("pid %d", oldRep.PID), "kernel.yama.ptrace_scope",
			"not permitted")
		r.RequireGone(t)
		requireUntouched(t, s, oldRep, ino)
	})
	// In a directory nobody can write, nobody's own locked daemon and a
	// pidfile naming it that root wrote (nobody unlinks its own pidfile
	// right after root read it, and root makes a fresh one) must not make
	// root adopt nobody's lock and socket and signal its process: the
	// lock file nobody owns is refused as in any start.
	t.Run("root refuses a lock file another user owns", func(t *testing.T) {
		t.Parallel()
		s := mk(t, nobody)
		reportPath := filepath.Join(shared, "foreign-lock.json")
		old := LaunchOpts(t, httpd(t), Opts{Dir: s.dir, Env: s.env("PROBE_REPORT=" + reportPath), Attr: asNobody()})
		old.RequireStatus(t, 0)
		old.Report = reportPath
		oldRep := readHttpdReport(t, old)
		ino := listening(t, s.port)
		require.NoError(t, os.Remove(s.pidfile))
		require.NoError(t, os.WriteFile(s.pidfile, []byte(fmt.Sprintf("%d\n", oldRep.PID)), 0o644))
		r := LaunchOpts(t, httpd(t), Opts{Dir: s.dir, Env: s.env("CDAEMON_REPLACE=on")})
		r.RequireStatus(t, cdaemon.ExitCantCreate)
		assert.Contains(t, r.Stderr, "httpd.pid.lock\": owned by uid "+strconv.Itoa(nobody))
		assert.Contains(t, r.Stderr, fmt.Sprintf("the daemon being replaced (pid %d) is still running", oldRep.PID))
		r.RequireGone(t)
		requireUntouched(t, s, oldRep, ino)
	})
	t.Run("root replaces a daemon that dropped to nobody", func(t *testing.T) {
		t.Parallel()
		s := mk(t, 0)
		oldReport, newReport := filepath.Join(shared, "dropped-old.json"), filepath.Join(shared, "dropped-new.json")
		old := LaunchOpts(t, httpd(t), Opts{Dir: s.dir, Env: s.env("CDAEMON_USER=nobody", "PROBE_REPORT="+oldReport)})
		old.RequireStatus(t, 0)
		old.Report = oldReport
		oldRep := readHttpdReport(t, old)
		ino := listening(t, s.port)
		r := LaunchOpts(t, httpd(t), Opts{Dir: s.dir, Env: s.env("CDAEMON_REPLACE=on", "CDAEMON_USER=nobody",
			"PROBE_REPORT="+newReport)})
		r.RequireStatus(t, 0)
		r.Report = newReport
		rep := readHttpdReport(t, r)
		old.WaitExit(t, oldRep.PID)
		assert.Equal(t, nobody, rep.Info.UID)
		assert.Equal(t, oldRep.PID, rep.Info.ReplacedPID)
		assert.Equal(t, []uint64{ino}, rep.Inodes)
		assert.Equal(t, fmt.Sprintf("%d\n", rep.PID), s.pid(t))
		fi, err := os.Stat(s.pidfile)
		require.NoError(t, err)
		assert.Equal(t, uint32(0), fi.Sys().(*syscall.Stat_t).Uid, "the pidfile stays root's")
		assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
		requireLockHolder(t, s.pidfile, rep.PID)
	})
}

// Before pidfd_getfd (Linux 5.6) descriptors cannot be taken: a clear 69,
// nothing changed.
func TestReplaceNeedsPidfdGetfd(t *testing.T) {
	t.Parallel()
	shim := faultShim(t)
	s := newSite(t)
	_, old := s.start(t)
	ino := listening(t, s.port)
	r := LaunchOpts(t, httpd(t), Opts{Dir: s.dir, Env: s.env("CDAEMON_REPLACE=on", "LD_PRELOAD="+shim,
		"HFAULT=pidfd_getfd:launcher:ENOSYS")})
	r.RequireStatus(t, cdaemon.ExitUnavailable)
	requireOneClearLine(t, r.Stderr, "pidfd_getfd", "Linux 5.6", fmt.Sprintf("pid %d", old.PID))
	r.RequireGone(t)
	requireUntouched(t, s, old, ino)
}

// The pidfile is rewritten in place once the new daemon is ready: the
// same file (inode), the new pid written over the old, then cut to its
// length. Held at that write (an LD_PRELOAD gate on pwrite), the file
// still names the old daemon, which still serves: no reader ever sees it
// empty, nor naming a process that does not run yet.
func TestReplaceRewritesPidfileInPlace(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	_, old := s.start(t)
	before, err := os.Stat(s.pidfile)
	require.NoError(t, err)
	gate := filepath.Join(t.TempDir(), "gate")
	r := Spawn(t, httpd(t), Opts{Dir: s.dir, Env: s.env("CDAEMON_REPLACE=on", "LD_PRELOAD="+faultShim(t),
		"HFAULT=pwrite:launcher:gate="+gate)})
	eventually(t, "the launcher at the pidfile's write", func() bool {
		_, err := os.Stat(gate + ".reached")
		return err == nil
	})
	rep := readHttpdReport(t, r)
	assert.Equal(t, fmt.Sprintf("%d\n", old.PID), s.pid(t), "before the write: the old daemon, never empty")
	requireAlive(t, old.PID)
	requireLockHolder(t, s.pidfile, old.PID)
	require.NoError(t, os.WriteFile(gate, nil, 0o644))
	r.Wait(t)
	r.RequireStatus(t, 0)
	assert.Equal(t, fmt.Sprintf("%d\n", rep.PID), s.pid(t))
	after, err := os.Stat(s.pidfile)
	require.NoError(t, err)
	assert.True(t, os.SameFile(before, after), "the same file, rewritten in place")
	requireLockHolder(t, s.pidfile, rep.PID)
}

// Listeners frees the descriptors 3, 4, ... it took; a descriptor opened
// later gets such a number and must survive garbage collection (the
// *os.File that owned the number must not close it again from its
// finalizer: an accepted connection would be cut, as the load test found).
func TestListenersDescriptorsReusedSafely(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	_, rep := s.start(t)
	assert.Equal(t, 3, rep.ProbeFD, "the first descriptor opened after Listeners")
	assert.True(t, rep.ProbeSurvivesGC, "descriptor 3 closed by a garbage collection")
}
