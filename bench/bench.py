#!/usr/bin/env python3
"""Benchmarks latency against its peers on the two-host lab (tests/lab.py) and prints figures.

Measures, in one run, each part on a veth pair of its own: resident memory idle and after
load; /latency requests per second under `wrk -c10` and the echo requests they cost; the time
of every call from ten keep-alive callers of our own (p50, p99, p99.9, max, calls over 100 ms:
a rare stall is a tail, invisible in a rate); one GET of a year of results (525,600 lines) and
the memory it adds; the median RTT against iputils ping on the
same path (our scheduled probes and ping's, both every 100 ms, side by side), idle and with
both cores busy, and idle over IPv6; the same for Debian's prometheus-blackbox-exporter ICMP
probe; and, with 1,000 targets (half IPv4, half IPv6) probed once a second, the daemon's CPU
time per probe, memory, lost probes and results written per day, beside fping looping over the
same targets at the same rate; and the per-call cost of `--sync line` beside `--sync none`.
The daemon runs with the environment its systemd unit gives it.
Nothing here is asserted: the figures are printed, with the targets beside them, for a person
to read. `--only PART` runs some parts only; `--runs N` repeats the whole run and prints each
figure's minimum, median and maximum over the runs.
"""
import argparse
import json
import os
import re
import signal
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
TARGETS = 1000
TARGETS_SECONDS = int(os.environ.get("TARGETS_SECONDS", "60"))
# Before the measured window: every target has had its first probe and its neighbour entry.
TARGETS_WARMUP = 5
# fping's least time in ms between two packets to any targets. Its default of 10 ms would
# take 10 s a round of 1,000; at 1 ms, with no slack, it keeps up only about 850 a second.
FPING_INTERVAL = "0.5"


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


def wrk(net: Namespaces, url: str, seconds: int = WRK_SECONDS) -> float:
    out = net.exec(net.daemon, "wrk", "-t2", "-c10", f"-d{seconds}s", url).stdout
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


def measure_sync(net: Namespaces, tmp: Path, figures: dict):
    """The cost of `--sync line` (an fdatasync after each line): the same ten keep-alive callers
    on /latency, each call timed, with `none` then `line`, each on a results file of its own in
    the run's directory (so on the disk that holds it)."""
    for sync in ("none", "line"):
        daemon = Daemon(net, tmp, "--target", TARGET_IP, "--interval", "60s", "--timeout", "1s",
                        results=tmp / f"sync-{sync}" / "results.txt", binary=RELEASE,
                        env={**unit_environment(), "RUST_LOG": "warn", "LATENCY_SYNC": sync}).ready()
        calls = timed_calls(net.daemon, DAEMON_IP, PORT, "/latency", callers=CALLERS, calls_each=1_000_000,
                            within=WRK_SECONDS)
        summary = calls.summary()
        for figure in ("calls/s", "p50 ms", "p99.9 ms", "max ms", "failed"):
            figures[f"--sync {sync}, {CALLERS} callers on /latency: {figure}"] = summary[figure]
        daemon.stop()


def many_targets() -> list:
    """TARGETS addresses for the target's end of the link, IPv4 and IPv6 by turns. IPv4 takes
    198.51.100.0/24 after the two lab hosts (252), then 203.0.113.0/24. Each family's
    neighbour table then holds about 500 of the host's entries (the tables are shared by
    every namespace), under the kernel's gc_thresh2 (512), past which a new entry evicts
    others."""
    v4 = [f"198.51.100.{i}" for i in range(3, 255)] + [f"203.0.113.{i}" for i in range(2, 255)]
    v6 = [f"2001:db8:51::1:{i:x}" for i in range(TARGETS // 2)]
    return [ip for pair in zip(v4, v6) for ip in pair]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time used so far by all threads of `pid`."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def socket_drops(net: Namespaces) -> int:
    """Packets the kernel dropped on the ICMP sockets open in the daemon's namespace, a full
    receive buffer most often: the last column of /proc/net/{raw,raw6,icmp,icmp6}."""
    out = net.exec(net.daemon, "cat", "/proc/net/raw", "/proc/net/raw6", "/proc/net/icmp", "/proc/net/icmp6").stdout
    return sum(int(row.split()[-1]) for row in out.splitlines() if row.split()[0] != "sl")


def neighbour_table_fulls() -> int:
    """How often the host's ARP and NDP tables have been full so far (a send then fails)."""
    total = 0
    for table in ("arp_cache", "ndisc_cache"):
        rows = Path(f"/proc/net/stat/{table}").read_text().splitlines()
        column = rows[0].split().index("table_fulls")
        total += sum(int(row.split()[column], 16) for row in rows[1:])
    return total


def results_so_far(path: Path) -> tuple:
    data = path.read_bytes()
    return data.count(b"\n"), len(data)


def measure_targets(net: Namespaces, tmp: Path, figures: dict):
    """TARGETS targets once a second, answered by the target's kernel: the daemon, then fping
    over the same targets on the same path. One after the other: a raw ICMP socket gets a
    copy of every echo reply in its namespace, so each would pay for the other's. CPU and
    output are counted over TARGETS_SECONDS after a warm-up; lost probes over the whole run."""
    targets = many_targets()
    net.add_address(net.daemon, "203.0.113.1")
    net.add_address(net.target, *targets)
    label = f"{TARGETS} targets"
    ours = targets_latency(net, tmp, targets, f"latency {label}", figures)
    theirs = targets_fping(net, tmp, targets, f"fping {label}", figures)
    figures[f"{label}: CPU per probe, latency / fping"] = ours / theirs


def targets_latency(net: Namespaces, tmp: Path, targets: list, name: str, figures: dict) -> float:
    """The daemon's figures with `targets`; returns its CPU ms per 1,000 probes."""
    fulls = neighbour_table_fulls()
    # A results file of its own: the other parts' probes are no part of the count. And
    # LATENCY_TARGET, not --target: a thousand flags make a long command line.
    daemon = Daemon(net, tmp, "--interval", "1s", "--timeout", "500ms", binary=RELEASE,
                    results=tmp / "targets" / "results.txt",
                    env={**unit_environment(), "RUST_LOG": "warn", "LATENCY_TARGET": ",".join(targets)}).ready()
    pid = daemon.proc.pid
    time.sleep(TARGETS_WARMUP)
    began, cpu, (lines, size) = time.monotonic(), cpu_seconds(pid), results_so_far(daemon.results)
    time.sleep(TARGETS_SECONDS)
    elapsed, cpu = time.monotonic() - began, cpu_seconds(pid) - cpu
    probes, grown = (now - then for now, then in zip(results_so_far(daemon.results), (lines, size)))
    figures[f"{name}: probes/s"] = round(probes / elapsed, 1)
    figures[f"{name}: CPU ms per 1000 probes"] = cpu / probes * 1e6
    figures[f"{name}: RSS"] = rss_kib(pid)
    figures[f"{name}: RSS peak"] = rss_kib(pid, "VmHWM")
    figures[f"{name}: ICMP socket drops"] = socket_drops(net)
    daemon.stop()
    data = daemon.results.read_bytes()
    figures[f"{name}: probes in all"] = data.count(b"\n")
    figures[f"{name}: timeouts"] = data.count(b" Latency: timeout\n")
    figures[f"{name}: lines per day"] = round(probes / elapsed * 86400)
    figures[f"{name}: MB per day"] = grown / elapsed * 86400 / 1e6
    figures[f"{name}: neighbour tables full"] = neighbour_table_fulls() - fulls
    return figures[f"{name}: CPU ms per 1000 probes"]


def targets_fping(net: Namespaces, tmp: Path, targets: list, name: str, figures: dict) -> float:
    """fping's figures with `targets`, at the daemon's rate; returns its CPU ms per 1,000
    probes. It prints a line per probe: `ADDR : [SEQ], 64 bytes, 0.05 ms (…)` or, since 5.0,
    `ADDR : [SEQ], timed out (…)`."""
    listing = tmp / "targets.txt"
    listing.write_text("\n".join(targets) + "\n")
    fulls = neighbour_table_fulls()
    # One fping for both families: since 4.0 it opens an IPv4 and an IPv6 socket as needed.
    fping = Process(["ip", "netns", "exec", net.daemon, "fping", "--loop", "--period=1000",
                     f"--interval={FPING_INTERVAL}", "--timeout=500", f"--file={listing}"], tmp / "fping.log")
    pid = fping.proc.pid

    def probes():
        return len(re.findall(r" : \[\d+\], ", fping.text()))

    time.sleep(TARGETS_WARMUP)
    began, cpu, sent = time.monotonic(), cpu_seconds(pid), probes()
    time.sleep(TARGETS_SECONDS)
    elapsed, cpu, sent = time.monotonic() - began, cpu_seconds(pid) - cpu, probes() - sent
    figures[f"{name}: probes/s"] = round(sent / elapsed, 1)
    figures[f"{name}: CPU ms per 1000 probes"] = cpu / sent * 1e6
    figures[f"{name}: RSS"] = rss_kib(pid)
    figures[f"{name}: RSS peak"] = rss_kib(pid, "VmHWM")
    figures[f"{name}: ICMP socket drops"] = socket_drops(net)
    # On SIGINT fping prints each target's `xmt/rcv/%loss = 65/65/0%` and ends.
    fping.stop(signal.SIGINT)
    counts = [(int(sent), int(got)) for sent, got in re.findall(r"xmt/rcv/%loss = (\d+)/(\d+)/", fping.text())]
    if len(counts) != len(targets):
        print(f"  warning: fping summed up {len(counts)} targets, not {len(targets)}: {fping.log}")
    figures[f"{name}: probes in all"] = sum(sent for sent, _ in counts)
    figures[f"{name}: timeouts"] = sum(sent - got for sent, got in counts)
    figures[f"{name}: neighbour tables full"] = neighbour_table_fulls() - fulls
    return figures[f"{name}: CPU ms per 1000 probes"]


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


def write_history(path: Path, names: list, seconds: int = 86400):
    """`seconds` of 1 Hz lines for each of `names` (one: the seed form), ending now, in local
    time as the daemon writes them: replies from 0.20 to 0.45 ms, one probe in a hundred lost."""
    values = [f"{0.2 + (i * 37 % 250) / 1000:.2f} ms" for i in range(100)]
    values[13] = "timeout"
    prefixes = [""] if len(names) == 1 else [f"{name} " for name in names]
    now = int(time.time())
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as file:
        for second in range(now - seconds, now):
            stamp = time.strftime("[%Y-%m-%d %H:%M:%S] ", time.localtime(second))
            file.write("".join(f"{stamp}{prefix}Latency: {values[(second + i) % 100]}\n"
                               for i, prefix in enumerate(prefixes)))


def timed_gets(net: Namespaces, path: str, count: int) -> tuple:
    """`count` GETs of `path` on one keep-alive connection: the median and the slowest, in
    ms, and the body's size in bytes."""
    conn = net.connect(host=DAEMON_IP)
    times, size = [], 0
    for _ in range(count):
        began = time.perf_counter()
        conn.request("GET", path)
        size = len(conn.getresponse().read())
        times.append((time.perf_counter() - began) * 1e3)
    conn.close()
    return round(statistics.median(times), 2), round(max(times), 2), size


def measure_operator(net: Namespaces, tmp: Path, figures: dict):
    """The operator's view with 24 h of 1 Hz history for 1 and for 100 targets: the start
    (the refill reads the file's last 24 h), memory, one /metrics scrape, one page and one
    /latency-stats, each timed; then, with one target, RTTs beside ping's while wrk -c10
    scrapes /metrics."""
    addresses = [TARGET_IP] + [f"198.51.100.{i}" for i in range(3, 102)]
    net.add_address(net.target, *addresses[1:])
    for count in (1, 100):
        name = f"{count} target{'s' if count > 1 else ''}, 24 h of history"
        names = [TARGET_IP] if count == 1 else [f"t{i}" for i in range(count)]
        results = tmp / f"history{count}" / "results.txt"
        write_history(results, names)
        listing = TARGET_IP if count == 1 else ",".join(f"{n}={ip}" for n, ip in zip(names, addresses))
        began = time.monotonic()
        daemon = Daemon(net, tmp, "--interval", "1s", "--timeout", "500ms", binary=RELEASE, results=results,
                        env={**unit_environment(), "RUST_LOG": "info", "LATENCY_TARGET": listing}).ready()
        figures[f"{name}: file MB"] = round(results.stat().st_size / 1e6, 1)
        figures[f"{name}: start to first answer, s"] = round(time.monotonic() - began, 2)

        def refilled():
            conn = net.connect(host=DAEMON_IP)
            conn.request("GET", "/latency-stats?format=json")
            done = json.loads(conn.getresponse().read())["refill"] is not None
            conn.close()
            return done
        # Measured once the day is read back: before, the page holds only the live minutes,
        # and the reading thread competes for the cores with what is timed.
        wait_until(refilled, 120, "the history read back")
        figures[f"{name}: start to history read back, s"] = round(time.monotonic() - began, 2)
        time.sleep(2)
        for path, label in (("/metrics", "scrape"), ("/", "page"), ("/latency-stats?format=json", "stats JSON")):
            typical, slowest, size = timed_gets(net, path, 20)
            figures[f"{name}: {label} ms median"] = typical
            figures[f"{name}: {label} ms max"] = slowest
            figures[f"{name}: {label} bytes"] = size
        figures[f"{name}: RSS"] = rss_kib(daemon.proc.pid)
        figures[f"{name}: RSS peak"] = rss_kib(daemon.proc.pid, "VmHWM")
        daemon.stop()

    results = tmp / "history1" / "results.txt"
    daemon = Daemon(net, tmp, "--target", TARGET_IP, "--interval", "100ms", "--timeout", "90ms", binary=RELEASE,
                    results=results, env={**unit_environment(), "RUST_LOG": "debug"}).ready()
    ours, ping = side_by_side(net, daemon, TARGET_IP)
    figures["RTT median idle: latency"] = median(ours)
    figures["RTT median idle: ping"] = median(ping)
    scrapes = {}
    wrk_thread = threading.Thread(target=lambda: scrapes.update(rate=wrk(net, f"http://{DAEMON_IP}:{PORT}/metrics", SAMPLES // 10)))
    wrk_thread.start()
    # ping's SAMPLES at 100 ms take as long as wrk's run.
    ours, ping = side_by_side(net, daemon, TARGET_IP)
    wrk_thread.join()
    figures["RTT median under wrk -c10 /metrics: latency"] = median(ours)
    figures["RTT median under wrk -c10 /metrics: ping"] = median(ping)
    figures["RTT median under scrape load: latency - ping, µs"] = round(median(ours) - median(ping), 1)
    figures["/metrics scrapes/s under wrk -c10"] = scrapes.get("rate", float("nan"))
    daemon.stop()


# Each part runs on a lab of its own; beside it, the targets its figures are read against.
PARTS = {
    "latency": (measure_latency, "RSS <= 4096 KiB; a year of results adds <= 1024 KiB; RTT median within "
                                 "10 µs of ping's; >= 5000 /latency requests/s; no call over 100 ms"),
    "blackbox": (measure_blackbox, None),
    "sync": (measure_sync, None),
    "targets": (measure_targets, f"with {TARGETS} targets: CPU per probe within 2x fping's (ratio <= 2); "
                                 "RSS <= 8192 KiB; no timeouts"),
    "operator": (measure_operator, "24 h of history: RSS <= 6 MiB with 1 target, <= 16 MiB with 100; a scrape "
                                   "of 100 targets <= 5 ms; RTT median within 10 µs of ping's under scrape load"),
}


def measure(tmp: Path, parts: list) -> dict:
    figures = {}
    for part in parts:
        net = Namespaces()
        try:
            PARTS[part][0](net, tmp, figures)
        finally:
            net.remove()
    return figures


def show(value) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="repeat the whole run; print min / median / max")
    parser.add_argument("--only", action="append", choices=PARTS,
                        help="run this part only (repeat for several); by default all, in this order: "
                             + ", ".join(PARTS))
    args = parser.parse_args()
    runs, parts = args.runs, args.only or list(PARTS)
    if not RELEASE.exists():
        sys.exit(f"{RELEASE} missing: run cargo build --release")
    tmp = Path(tempfile.mkdtemp(prefix="latency-bench-"))
    results = []
    for run in range(runs):
        run_dir = tmp / f"run{run + 1}"
        run_dir.mkdir()
        results.append(measure(run_dir, parts))
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
    print("\ntargets:")
    for part in parts:
        if PARTS[part][1]:
            print(f"  {PARTS[part][1]}")
    (tmp / "figures.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))
    print(f"figures of every run: {tmp / 'figures.json'}")


if __name__ == "__main__":
    main()
