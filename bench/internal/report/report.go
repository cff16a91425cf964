// Package report is the body every benchmarked Go program shares: it reads
// CLOCK_MONOTONIC as the program's main starts and sends it, with the pid,
// the session id and the peak RSS, to the harness's datagram socket.
package report

import (
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Now is CLOCK_MONOTONIC in nanoseconds, the clock the harness and the C
// programs use.
func Now() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// Send reports t (from Now, taken first thing in main) to $BENCH_SOCK,
// tagged with $BENCH_TOKEN, as
//
//	<token> <t_main_ns> <pid> <sid> <vmhwm_kb> <run_delay_ns> [<extra>]
//
// and exits with status 2 if it cannot: a run that did not report is
// a failed run. run_delay is how long this process's main thread has
// waited on a run queue for a CPU since it was created (the second field
// of /proc/self/schedstat): on a loaded machine every new process waits
// before it runs. extra is an optional field (the constructor's entry).
func Send(t int64, extra ...int64) {
	sock, token := os.Getenv("BENCH_SOCK"), os.Getenv("BENCH_TOKEN")
	sid, _ := unix.Getsid(0)
	b := make([]byte, 0, 128)
	b = append(b, token...)
	for _, v := range append([]int64{t, int64(os.Getpid()), int64(sid), hwm(), runDelay()}, extra...) {
		b = append(b, ' ')
		b = strconv.AppendInt(b, v, 10)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		err = unix.Sendto(fd, b, 0, &unix.SockaddrUnix{Name: sock})
		unix.Close(fd)
	}
	if err != nil || sock == "" || token == "" {
		os.Stderr.WriteString("bench program: cannot report to BENCH_SOCK=" + sock + "\n")
		os.Exit(2)
	}
}

// runDelay is the main thread's time spent waiting for a CPU, in ns; 0
// if the kernel does not say (no CONFIG_SCHED_INFO).
func runDelay() int64 {
	b, err := os.ReadFile("/proc/self/schedstat")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseInt(string(f[1]), 10, 64)
	return n
}

// hwm is VmHWM, the peak resident set of this process image, in kB. The
// program does nothing after reporting, so this is its peak.
func hwm() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	i := bytes.Index(b, []byte("VmHWM:"))
	if i < 0 {
		return 0
	}
	f := bytes.Fields(b[i+6:])
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(string(f[0]), 10, 64)
	return n
}
