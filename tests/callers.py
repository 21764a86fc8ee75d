"""Keep-alive HTTP callers that time every call, for tests and the benchmark.

Each caller is a process of its own (no GIL between them) holding one connection, sending its
next request as soon as the last answer is read, like wrk. Unlike wrk's summary, every call's
duration comes back, so a rare stall shows up as the tail it is. Bounded in count and time.
"""
import multiprocessing
import os
import socket
import statistics
import time
from dataclasses import dataclass

from lab import _CLONE_NEWNET, _libc


@dataclass
class Calls:
    """Every call's duration in seconds, sorted, and what went wrong (a status other than 200,
    a caller that could not go on)."""
    durations: list
    failures: list
    seconds: float

    def quantile(self, q: float) -> float:
        """The nearest-rank quantile: the smallest duration at least a fraction q of calls took."""
        rank = max(1, -(-len(self.durations) * q // 1))
        return self.durations[int(rank) - 1]

    def over(self, seconds: float) -> int:
        return sum(d > seconds for d in self.durations)

    def summary(self) -> dict:
        ms = lambda d: round(d * 1000, 3)  # noqa: E731
        return {
            "calls": len(self.durations),
            "calls/s": round(len(self.durations) / self.seconds),
            "p50 ms": ms(statistics.median(self.durations)),
            "p99 ms": ms(self.quantile(0.99)),
            "p99.9 ms": ms(self.quantile(0.999)),
            "max ms": ms(self.durations[-1]),
            "over 100 ms": self.over(0.1),
            "failed": len(self.failures),
        }


def _read_answer(sock, buffered: bytes):
    """Reads one HTTP/1.1 answer (Content-Length or chunked); returns (status, rest)."""
    data = buffered
    while b"\r\n\r\n" not in data:
        data += _recv(sock)
    head, _, data = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:])}
    if b"content-length" in headers:
        length = int(headers[b"content-length"])
        while len(data) < length:
            data += _recv(sock)
        return status, data[length:]
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        while True:
            while b"\r\n" not in data:
                data += _recv(sock)
            size_line, _, data = data.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(data) < size + 2:
                data += _recv(sock)
            data = data[size + 2:]
            if size == 0:
                return status, data
    raise RuntimeError(f"an answer with neither Content-Length nor chunks: {head!r}")


def _recv(sock) -> bytes:
    chunk = sock.recv(65536)
    if not chunk:
        raise ConnectionError("the server closed the connection")
    return chunk


def _caller(netns, host, port, path, calls, deadline, results):
    if netns:
        fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
        if _libc.setns(fd, _CLONE_NEWNET) != 0:
            raise OSError(f"setns {netns}")
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    durations, failures = [], []
    try:
        with socket.create_connection((host, port), timeout=30) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            rest = b""
            for _ in range(calls):
                if time.monotonic() > deadline:
                    break
                began = time.perf_counter()
                sock.sendall(request)
                status, rest = _read_answer(sock, rest)
                durations.append(time.perf_counter() - began)
                if status != 200:
                    failures.append(f"status {status}")
    except (OSError, RuntimeError, ValueError) as err:
        failures.append(f"caller stopped: {err!r}")
    results.put((durations, failures))


def timed_calls(netns: str, host: str, port: int, path: str, callers: int, calls_each: int,
                within: float) -> Calls:
    """`callers` processes call `path` `calls_each` times back to back, for at most `within`
    seconds in all; from inside network namespace `netns` (None: this one)."""
    results = multiprocessing.Queue()
    deadline = time.monotonic() + within
    processes = [multiprocessing.Process(target=_caller, args=(netns, host, port, path, calls_each,
                                                               deadline, results))
                 for _ in range(callers)]
    began = time.monotonic()
    for process in processes:
        process.start()
    # Read before joining: a child blocks on exit until the queue has taken its results.
    outcomes = [results.get(timeout=within + 30) for _ in processes]
    seconds = time.monotonic() - began
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise RuntimeError(f"a caller failed with exit code {process.exitcode}")
    durations = sorted(d for each, _ in outcomes for d in each)
    failures = [status for _, each in outcomes for status in each]
    return Calls(durations, failures, seconds)
