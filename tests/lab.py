"""A two-host lab on one machine, for tests and benchmarks: a pair of network namespaces
joined by a veth link, the real `latency` binary started inside one of them, and an echo
target (the kernel, or tests/responder.py) in the other.

Addresses come from 198.51.100.0/24 (TEST-NET-2) and 2001:db8:51::/64 (documentation); both
ends live in namespaces this module creates, so no packet leaves them.
"""
import contextlib
import ctypes
import http.client
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BINARY = Path(os.environ.get("LATENCY_BIN", ROOT / "target" / "debug" / "latency"))
RESPONDER = ROOT / "tests" / "responder.py"
DAEMON_IP = "198.51.100.1"
TARGET_IP = "198.51.100.2"
DAEMON_IP6 = "2001:db8:51::1"
TARGET_IP6 = "2001:db8:51::2"
PORT = 5000
# Runs a command as nobody with no capabilities at all.
NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
          "--bounding-set=-all")
LINE = r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] Latency: (\d+\.\d\d ms|timeout)$"

_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000
_counter = itertools.count()
_PTRACE_DETACH, _PTRACE_SEIZE, _PTRACE_INTERRUPT = 17, 0x4206, 0x4207
_WALL = 0x40000000


def run(*args, check=True, **kwargs):
    return subprocess.run(args, check=check, capture_output=True, text=True, **kwargs)


def wait_until(predicate, timeout, what):
    """Calls `predicate` every 20 ms until it returns something true, and returns that. After
    `timeout` seconds fails, saying `what` was awaited (a callable: its result, computed
    then). The predicate may raise to fail at once, when what it waits for can no longer come."""
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what() if callable(what) else what}")
        time.sleep(0.02)
    return result


class Namespaces:
    """Two namespaces: `daemon` (198.51.100.1, 2001:db8:51::1) and `target` (198.51.100.2,
    2001:db8:51::2)."""

    def __init__(self):
        tag = f"lt{os.getpid() % 100000}x{next(_counter)}"
        self.daemon, self.target = f"{tag}a", f"{tag}b"
        self.daemon_if, self.target_if = f"{tag}va", f"{tag}vb"
        run("ip", "netns", "add", self.daemon)
        run("ip", "netns", "add", self.target)
        run("ip", "link", "add", self.daemon_if, "netns", self.daemon, "type", "veth",
            "peer", "name", self.target_if, "netns", self.target)
        for ns, dev, ip, ip6 in ((self.daemon, self.daemon_if, DAEMON_IP, DAEMON_IP6),
                                 (self.target, self.target_if, TARGET_IP, TARGET_IP6)):
            run("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
            # nodad: usable at once, not "tentative" while duplicate address detection runs.
            run("ip", "-n", ns, "addr", "add", f"{ip6}/64", "dev", dev, "nodad")
            run("ip", "-n", ns, "link", "set", dev, "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")
        # The kernel marks a link running (and IPv6 usable on it) when its link-watch work
        # gets round to it, up to a second after the last link event on the host; until then
        # the first IPv6 packet waits a second for neighbour discovery. Asking for one link
        # (RTM_GETLINK) runs that pending work at once.
        for ns, dev in ((self.daemon, self.daemon_if), (self.target, self.target_if)):
            def running(ns=ns, dev=dev):
                return " state UP " in run("ip", "-n", ns, "-o", "link", "show", "dev", dev).stdout
            wait_until(running, 5, f"{dev} up in {ns}")

    def exec(self, ns, *args, **kwargs):
        return run("ip", "netns", "exec", ns, *args, **kwargs)

    def add_address(self, ns, *ips):
        """More addresses on `ns`'s end of the link (IPv6 without duplicate detection), in one
        run of `ip` however many: the benchmark adds a thousand."""
        dev = self.daemon_if if ns == self.daemon else self.target_if
        batch = "".join(f"addr add {ip}/64 dev {dev} nodad\n" if ":" in ip else f"addr add {ip}/24 dev {dev}\n"
                        for ip in ips)
        run("ip", "-n", ns, "-batch", "-", input=batch)

    def sysctl(self, ns, setting):
        self.exec(ns, "sysctl", "-qw", setting)

    def link(self, up: bool):
        run("ip", "-n", self.target, "link", "set", self.target_if, "up" if up else "down")

    def connect(self, ns=None, host=DAEMON_IP, port=PORT, timeout=10):
        """An HTTP connection opened from inside `ns` (the daemon's by default)."""
        ns = ns or self.daemon
        own = os.open("/proc/self/ns/net", os.O_RDONLY)
        other = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            if _libc.setns(other, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {ns}")
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
            conn.connect()
        finally:
            _libc.setns(own, _CLONE_NEWNET)
            os.close(own)
            os.close(other)
        return conn

    def request(self, method, path, headers=None, **kwargs):
        conn = self.connect(**kwargs)
        try:
            conn.request(method, path, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read().decode()
        finally:
            conn.close()

    def remove(self):
        for ns in (self.daemon, self.target):
            pids = run("ip", "netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            run("ip", "netns", "del", ns, check=False)


class Process:
    """A background process whose output goes to a file the test can read."""

    def __init__(self, args, log: Path, env=None):
        self.log = log
        self.handle = open(log, "w")
        self.proc = subprocess.Popen(args, stdout=self.handle, stderr=subprocess.STDOUT, env=env)

    def text(self) -> str:
        return self.log.read_text()

    def wait_for(self, needle: str, timeout=10.0) -> str:
        """The output once it holds `needle`; fails at once if the process ends without it."""
        def seen():
            ended = self.proc.poll() is not None
            text = self.text()
            if needle in text:
                return text
            if ended:
                raise AssertionError(f"{needle!r} not seen in {self.log}, and the process ended:\n{text}")
            return None
        return wait_until(seen, timeout, lambda: f"{needle!r} in {self.log}:\n{self.text()}")

    def exit_code(self, timeout=5.0):
        """Waits for the process to end by itself."""
        try:
            return self.proc.wait(timeout)
        finally:
            self.handle.close()

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.handle.close()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.handle.close()


class Daemon(Process):
    def __init__(self, net: Namespaces, tmp: Path, *flags, results=None, env=None, prefix=(), binary=BINARY):
        self.results = Path(results or tmp / "state" / "results.txt")
        args = [*prefix, str(binary), "--listen", f"{DAEMON_IP}:{PORT}", "--results", str(self.results), *flags]
        full_env = {"PATH": os.environ["PATH"], "RUST_LOG": "debug", **(env or {})}
        super().__init__(["ip", "netns", "exec", net.daemon, *args], tmp / f"daemon{next(_counter)}.log", full_env)
        self.net = net

    def ready(self):
        """Waits until the daemon answers HTTP; fails at once if it exits instead."""
        def answers():
            if not self.alive():
                raise AssertionError(f"the daemon exited instead of answering HTTP:\n{self.text()}")
            try:
                self.net.request("HEAD", "/latency-results")
                return True
            except OSError:
                return False
        wait_until(answers, 10, lambda: f"an HTTP answer from the daemon:\n{self.text()}")
        return self

    def lines(self):
        if not self.results.exists():
            return []
        return self.results.read_text().splitlines()

    def wait_lines(self, count, timeout=10.0):
        """The results file's lines, once there are `count` or more."""
        def enough():
            lines = self.lines()
            return lines if len(lines) >= count else None
        return wait_until(enough, timeout, lambda: f"{count} lines, have {self.lines()}\n{self.text()}")

    def alive(self):
        return self.proc.poll() is None


class Responder(Process):
    def __init__(self, net: Namespaces, tmp: Path, *flags):
        net.sysctl(net.target, "net.ipv4.icmp_echo_ignore_all=1")
        net.sysctl(net.target, "net.ipv6.icmp.echo_ignore_all=1")
        args = ["ip", "netns", "exec", net.target, sys.executable, "-u", str(RESPONDER), *flags]
        super().__init__(args, tmp / f"responder{next(_counter)}.log")
        self.wait_for("ready")

    def requests(self):
        return [line for line in self.text().splitlines() if line.startswith("request ")]


@contextlib.contextmanager
def frozen_thread(pid: int, name: str):
    """Holds one thread of process `pid`, found by name, stopped while the others run on.
    SIGSTOP would stop the whole process; ptrace stops a single thread."""
    tids = [int(task.name) for task in Path(f"/proc/{pid}/task").iterdir()
            if (task / "comm").read_text().strip() == name]
    assert len(tids) == 1, f"threads of {pid} named {name!r}: {tids}"
    tid = tids[0]
    ptrace = _libc.ptrace
    ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    ptrace.restype = ctypes.c_long
    for request in (_PTRACE_SEIZE, _PTRACE_INTERRUPT):
        if ptrace(request, tid, None, None) != 0:
            raise OSError(ctypes.get_errno(), f"ptrace({request:#x}) on thread {tid} ({name})")
    os.waitpid(tid, _WALL)
    try:
        yield tid
    finally:
        if ptrace(_PTRACE_DETACH, tid, None, None) != 0:
            # The thread ended while held (its process exited). Its tracer must reap it, or
            # the process itself can never be reaped.
            os.waitpid(tid, _WALL)
