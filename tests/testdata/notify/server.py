"""A Python server that speaks systemd's notify protocol, for the readiness
tests under `cdaemon run`: with -lib it uses python3-systemd's
systemd.daemon.notify (libsystemd's sd_notify), otherwise a plain socket.
The options are server.c's, in the same order:

  -status TEXT, -extend USEC, -child MSG, -errno N, -exit N, -wait-usr1,
  -port FILE, -touch FILE

It exits 0 on SIGTERM.
"""

import os
import signal
import socket
import sys

use_lib = "-lib" in sys.argv[1:2]
args = sys.argv[2:] if use_lib else sys.argv[1:]


def notify(msg):
    if use_lib:
        from systemd import daemon

        if not daemon.notify(msg):
            sys.exit(9)
        return
    addr = os.environ.get("NOTIFY_SOCKET", "")
    if not addr:
        sys.exit(9)
    if addr[0] == "@":
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(msg.encode(), addr)


def write_file(path, text):
    with open(path, "w") as f:
        f.write(text)


def main():
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    port_file = touch = None
    i = 0
    while i < len(args):
        a, v = args[i], args[i + 1] if i + 1 < len(args) else ""
        i += 1
        if a == "-status":
            notify("STATUS=" + v)
            i += 1
        elif a == "-extend":
            notify("EXTEND_TIMEOUT_USEC=" + v)
            i += 1
        elif a == "-child":
            pid = os.fork()
            if pid == 0:
                notify(v)
                os._exit(0)
            os.waitpid(pid, 0)
            notify("STATUS=child-sent")
            i += 1
        elif a == "-errno":
            notify("ERRNO=" + v)
            while True:
                signal.pause()
        elif a == "-exit":
            sys.exit(int(v))
        elif a == "-wait-usr1":
            notify("STATUS=loading")
            signal.sigwait([signal.SIGUSR1])
        elif a == "-port":
            port_file = v
            i += 1
        elif a == "-touch":
            touch = v
            i += 1
        else:
            print("server.py: unknown option", a, file=sys.stderr)
            sys.exit(2)
    ls = None
    if port_file:
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.bind(("127.0.0.1", 0))
        ls.listen(64)
        write_file(port_file, str(ls.getsockname()[1]))
    if touch:
        write_file(touch, "")
    notify("READY=1")
    while True:
        if ls is None:
            signal.pause()
            continue
        c, _ = ls.accept()
        c.sendall(b"ok %d\n" % os.getpid())
        c.close()


main()
