#!/usr/bin/env python3
"""Benchmarks latency against its peers on the two-host lab (tests/lab.py) and prints figures.

Measures, in one run on one veth pair: resident memory idle and after load; /latency
requests per second under `wrk -c10` and the echo requests they cost; the time of every call
from ten keep-alive callers of our own (p50, p99, p99.9, max, calls over 100 ms: a rare stall
is a tail, invisible in a rate); one GET of a year of
results (525,600 lines) and the memory it adds; the median RTT against iputils ping on the
same path (our scheduled probes and ping's, both every 100 ms, side by side), idle and with
both cores busy, and idle over IPv6; and the same for Debian's prometheus-blackbox-exporter
ICMP probe. The daemon runs with the environment its systemd unit gives it. Nothing here is
asserted: the figures are printed, with the targets beside them, for a person to read.
`--runs N` repeats the whole run and prints each figure's minimum, median and maximum over the
runs.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from callers import timed_calls  # noqa: E402
from lab import DAEMON_IP, PORT, ROOT, TARGET_IP, TARGET_IP6, Daemon, Namespaces, Process, wait_until  # noqa: E402

RELEASE = ROOT / "target" / "release" / "latency"
BLACKBOX_PORT = 9115
SAMPLES = 200
WRK_SECONDS = int(os.environ.get("WRK_SECONDS", "10"))
CALLERS = 10
YEAR = 525_600


def unit_environment() -> dict:
    """The `Environment=` settings of the systemd unit, so the daemon is measured as deployed."""
    settings = {}
    for line in (ROOT / "systemd" / "latency.service").read_text().splitlines():
        if line.startswith("Environment="):
            name, _, value = line.removeprefix("Environment=").partition("=")
            settings[name] = value
    return settings


def rss_kib(pid: int, field="VmRSS") -> int:
    for row in open(f"/proc/{pid}/status"):
        if row.startswith(field + ":"):
            return int(row.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def echo_requests(net: Namespaces) -> int:
    """Echo requests the target's kernel has counted so far."""
    out = net.exec(net.target, "nstat", "-az", "IcmpInEchos").stdout
    return int(re.search(r"IcmpInEchos\s+(\d+)", out).group(1))


def wrk(net: Namespaces, url: str) -> float:
    out = net.exec(net.daemon, "wrk", "-t2", "-c10", f"-d{WRK_SECONDS}s", url).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        print(f"  warning: {errors.group(1)} non-2xx answers from {url}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def ping_rtts(net: Namespaces, target: str) -> list:
    family = "-6" if ":" in target else "-4"
    out = net.exec(net.daemon, "ping", family, "-n", "-c", str(SAMPLES), "-i", "0.1", target).stdout
    return [float(m) * 1000 for m in re.findall(r"time=([\d.]+) ms", out)]


def side_by_side(net: Namespaces, daemon: Daemon, target: str) -> tuple:
    """RTTs in µs from the daemon's scheduled probes (its debug log has µs) and from ping,
    both every 100 ms to `target` over the same 20 s on the same path."""
    before = len(daemon.text())
    ping = ping_rtts(net, target)
    ours = [float(m) for m in re.findall(r"reply from \S+ to probe \d+: (\d+) µs", daemon.text()[before:])]
    return ours, ping


class BusyCores:
    """Both cores spinning, for as long as the `with` block lasts."""

    def __enter__(self):
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
        return self

    def __exit__(self, *exc):
        for proc in self.procs:
            proc.kill()
            proc.wait()


def sequential(net: Namespaces, path: str, port: int, count: int) -> list:
    bodies = []
    conn = net.connect(port=port, host=DAEMON_IP)
    for _ in range(count):
        conn.request("GET", path)
        bodies.append(conn.getresponse().read().decode())
        time.sleep(0.1)
    conn.close()
    return bodies


def blackbox_rtts(net: Namespaces, path: str) -> list:
    bodies = sequential(net, path, BLACKBOX_PORT, SAMPLES)
    rtts = []
    for body in bodies:
        match = re.search(r'probe_icmp_duration_seconds\{phase="rtt"\} ([\d.e+-]+)', body)
        if match:
            rtts.append(float(match.group(1)) * 1e6)
    return rtts


def median(values: list) -> float:
    return round(statistics.median(values), 1) if values else float("nan")


def under_load(net: Namespaces, name: str, pid: int, url: str, figures: dict):
    """Memory idle and after `wrk -c10` on `url`, its rate, and the echo requests it cost."""
    time.sleep(2)
    figures[f"{name} RSS idle"] = rss_kib(pid)
    sent = echo_requests(net)
    rate = wrk(net, url)
    figures[f"{name} {urlsplit(url).path} requests/s"] = rate
    figures[f"{name} echo requests per request"] = (echo_requests(net) - sent) / (rate * WRK_SECONDS)
    figures[f"{name} RSS after load"] = rss_kib(pid)
    figures[f"{name} RSS peak"] = rss_kib(pid, "VmHWM")
    figures[f"{name} threads after load"] = len(os.listdir(f"/proc/{pid}/task"))
    parts = urlsplit(url)
    calls = timed_calls(net.daemon, parts.hostname, parts.port, f"{parts.path}?{parts.query}".rstrip("?"),
                        callers=CALLERS, calls_each=1_000_000, within=WRK_SECONDS)
    for figure, value in calls.summary().items():
        figures[f"{name} {CALLERS} callers: {figure}"] = value


def measure_latency(net: Namespaces, tmp: Path, figures: dict):
    environment = unit_environment()
    daemon = Daemon(net, tmp, "--target", TARGET_IP, "--interval", "60s", "--timeout", "1s",
                    env={**environment, "RUST_LOG": "warn"}, binary=RELEASE).ready()
    under_load(net, "latency", daemon.proc.pid, f"http://{DAEMON_IP}:{PORT}/latency", figures)
    daemon.stop()

    daemon = Daemon(net, tmp, "--target", TARGET_IP, "--interval", "100ms", "--timeout", "90ms",
                    env={**environment, "RUST_LOG": "debug"}, binary=RELEASE).ready()
    ours, ping = side_by_side(net, daemon, TARGET_IP)
    figures["latency RTT median idle"] = median(ours)
    figures["ping RTT median idle"] = median(ping)
    with BusyCores():
        ours, ping = side_by_side(net, daemon, TARGET_IP)
    figures["latency RTT median busy"] = median(ours)
    figures["ping RTT median busy"] = median(ping)
    daemon.stop()

    daemon = Daemon(net, tmp, "--target", TARGET_IP6, "--interval", "100ms", "--timeout", "90ms",
                    env={**environment, "RUST_LOG": "debug"}, binary=RELEASE).ready()
    ours, ping = side_by_side(net, daemon, TARGET_IP6)
    figures["latency RTT median idle (IPv6)"] = median(ours)
    figures["ping RTT median idle (IPv6)"] = median(ping)
    daemon.stop()

    results = tmp / "year" / "results.txt"
    results.parent.mkdir()
    results.write_bytes(b"[2025-08-12 06:56:53] Latency: 0.27 ms\n" * YEAR)
    daemon = Daemon(net, tmp, results=results, env={**environment, "RUST_LOG": "warn"}, binary=RELEASE).ready()
    time.sleep(1)
    before = rss_kib(daemon.proc.pid)
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak.append(rss_kib(daemon.proc.pid))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    began = time.monotonic()
    body = net.exec(net.daemon, "curl", "-sS", "-o", "/dev/null", "-w", "%{size_download}",
                    f"http://{DAEMON_IP}:{PORT}/latency-results").stdout
    elapsed = time.monotonic() - began
    done.set()
    sampler.join()
    figures["year of results: bytes served"] = int(body)
    figures["year of results: seconds"] = round(elapsed, 3)
    figures["year of results: RSS growth KiB"] = max(peak) - before
    daemon.stop()


def measure_blackbox(net: Namespaces, tmp: Path, figures: dict):
    config = tmp / "blackbox.yml"
    config.write_text("modules:\n  icmp:\n    prober: icmp\n    timeout: 1s\n"
                      "    icmp:\n      preferred_ip_protocol: ip4\n")
    blackbox = Process(["ip", "netns", "exec", net.daemon, "prometheus-blackbox-exporter",
                        f"--config.file={config}", f"--web.listen-address={DAEMON_IP}:{BLACKBOX_PORT}"],
                       tmp / "blackbox.log")
    try:
        path = f"/probe?module=icmp&target={TARGET_IP}"

        def listening():
            try:
                net.connect(port=BLACKBOX_PORT).close()
                return True
            except OSError:
                return False

        wait_until(listening, 10, lambda: f"blackbox_exporter listening:\n{blackbox.text()}")
        under_load(net, "blackbox", blackbox.proc.pid, f"http://{DAEMON_IP}:{BLACKBOX_PORT}{path}", figures)
        figures["blackbox RTT median idle"] = median(blackbox_rtts(net, path))
        with BusyCores():
            figures["blackbox RTT median busy"] = median(blackbox_rtts(net, path))
    finally:
        blackbox.stop()


def measure(tmp: Path) -> dict:
    figures = {}
    net = Namespaces()
    try:
        measure_latency(net, tmp, figures)
        measure_blackbox(net, tmp, figures)
    finally:
        net.remove()
    return figures


def show(value) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="repeat the whole run; print min / median / max")
    runs = parser.parse_args().runs
    if not RELEASE.exists():
        sys.exit(f"{RELEASE} missing: run cargo build --release")
    tmp = Path(tempfile.mkdtemp(prefix="latency-bench-"))
    results = []
    for run in range(runs):
        run_dir = tmp / f"run{run + 1}"
        run_dir.mkdir()
        results.append(measure(run_dir))
        if runs > 1:
            print(f"run {run + 1} of {runs} done", file=sys.stderr)
    width = max(map(len, results[0]))
    if runs > 1:
        print(f"{'figure':<{width}}  {'min':>10}  {'median':>10}  {'max':>10}")
    for name in results[0]:
        values = [figures[name] for figures in results]
        if runs == 1:
            print(f"{name:<{width}}  {show(values[0])}")
        else:
            print(f"{name:<{width}}  {show(min(values)):>10}  {show(statistics.median(values)):>10}  "
                  f"{show(max(values)):>10}")
    print("\ntargets: RSS <= 4096 KiB; a year of results adds <= 1024 KiB; RTT median within 10 µs of "
          "ping's; >= 5000 /latency requests/s; no call over 100 ms")
    (tmp / "figures.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))
    print(f"figures of every run: {tmp / 'figures.json'}")


if __name__ == "__main__":
    main()
