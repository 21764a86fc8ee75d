"""Crash safety: the daemon killed with SIGKILL at random moments under load, and `--sync`."""
import os
import random
import re
import signal
import threading
import time

import pytest

from lab import BINARY, DAEMON_IP, LINE, PORT, TARGET_IP, run

KILLS = 50
CALLERS = 4


def echo_requests(net) -> int:
    """Echo requests the target's kernel has received so far (Icmp InEchos)."""
    rows = [row.split() for row in net.exec(net.target, "cat", "/proc/net/snmp").stdout.splitlines()
            if row.startswith("Icmp:")]
    return int(rows[1][rows[0].index("InEchos")])


class Callers:
    """Threads calling GET /latency back to back, reconnecting whenever the daemon is gone.
    Each 200 answer is kept with the run (the daemon process) it came from: the number of
    kills so far, read before and after connecting; a connection made across a kill is
    dropped unused."""

    def __init__(self, net, kills: list):
        self.net, self.kills = net, kills
        self.answers = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.call) for _ in range(CALLERS)]
        for thread in self.threads:
            thread.start()

    def call(self):
        while not self.stop.is_set():
            before = len(self.kills)
            try:
                conn = self.net.connect(timeout=2)
            except OSError:
                time.sleep(0.01)
                continue
            if len(self.kills) != before:
                conn.close()
                continue
            try:
                while not self.stop.is_set():
                    conn.request("GET", "/latency")
                    response = conn.getresponse()
                    body = response.read().decode()
                    if response.status == 200:
                        self.answers.append((before, body))
            except OSError:
                pass
            finally:
                conn.close()

    def join(self):
        self.stop.set()
        for thread in self.threads:
            thread.join(10)


def test_kill_9_at_random_moments_under_load_loses_and_repeats_nothing(net, start, tmp_path):
    """Fifty SIGKILLs at random moments, probing every 100 ms with /latency under load. What
    makes a line "twice" is not its text (ten lines a second share a timestamp, and most an
    RTT), so each line is held to what it stands for: an echo request the target received
    (lines ≤ echo requests, so no probe is written twice), its place in the file (what one
    run left is the start of what the next leaves: nothing is rewritten or appended again), and
    the run whose caller got it (every answered line is in the part of the file that run
    appended). At most a torn last line is cut, and then the next start says so."""
    random.seed(os.environ.get("LATENCY_TEST_SEED", os.getpid()))
    results = tmp_path / "state" / "results.txt"
    flags = ("--target", TARGET_IP, "--interval", "100ms", "--timeout", "50ms")
    runs = []  # each run's daemon
    kept = []  # the file's complete lines after each kill: what the next run must start from
    emptied = []
    had_lines = threading.Event()
    watching = threading.Event()

    def watch():
        while not watching.is_set():
            if had_lines.is_set():
                if results.stat().st_size == 0:
                    emptied.append(time.monotonic())
            elif results.exists() and b"\n" in results.read_bytes():
                had_lines.set()
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    echoes_before = echo_requests(net)
    began = time.monotonic()
    callers = Callers(net, kept)
    try:
        for kill in range(KILLS + 1):
            daemon = start(*flags, results=results).ready()
            if kept:
                # The start left what the last run's lines were, cut of a torn end only.
                assert results.read_bytes().startswith(kept[-1])
            runs.append(daemon)
            if kill == KILLS:
                daemon.wait_lines(len(kept[-1].splitlines()) + 3)
                assert daemon.stop() == 0
                after = results.read_bytes()
                break
            time.sleep(random.uniform(0.05, 0.6))
            daemon.proc.send_signal(signal.SIGKILL)
            daemon.proc.wait(5)
            after = results.read_bytes()
            # A torn end is what a kill in the middle of a `write` leaves: anything after the
            # last newline. The next start must cut exactly that, and log it.
            complete = after[:after.rfind(b"\n") + 1]
            kept.append(complete)
            daemon.torn = len(after) - len(complete)
    finally:
        callers.join()
        watching.set()
        watcher.join()
    elapsed = time.monotonic() - began
    echoes = echo_requests(net) - echoes_before

    text = after.decode()
    lines = text.splitlines()
    assert text.endswith("\n") and all(re.match(LINE, line) for line in lines), \
        [line for line in lines if not re.match(LINE, line)][:5]
    assert not emptied, f"the file was empty {len(emptied)} times after it had lines"
    for earlier, later in zip(kept, kept[1:] + [after]):
        assert later.startswith(earlier), "a run rewrote or lost lines an earlier run left"
    for number, (daemon, nxt) in enumerate(zip(runs, runs[1:])):
        cut = re.findall(r"cut (\d+) bytes of a torn last line", nxt.text())
        assert cut == ([str(daemon.torn)] if daemon.torn else []), (number, daemon.torn, cut)
    # Each run's part of the file, and the lines its callers were answered with.
    starts = [0] + [len(part) for part in kept] + [len(after)]
    parts = [after[begin:end].decode().splitlines(keepends=True) for begin, end in zip(starts, starts[1:])]
    missing = [(number, body) for number, body in callers.answers if body not in parts[number]]
    assert not missing, f"answered lines not in the file as that run left it: {missing[:5]}"
    assert len(lines) <= echoes, f"{len(lines)} lines for {echoes} echo requests: some written twice"
    lost = echoes - len(lines)
    print(f"{KILLS} kills in {elapsed:.1f} s: {len(lines)} lines, {echoes} echo requests ({lost} in flight at "
          f"a kill), {len(callers.answers)} answered calls, {sum(d.torn > 0 for d in runs[:-1])} torn ends")
    assert len(callers.answers) > 10 * KILLS, "the callers hardly got through: no load"
    assert elapsed < 60, f"took {elapsed:.0f} s"


def test_a_bad_sync_value_exits_2_with_one_line(net, tmp_path):
    results = tmp_path / "state" / "results.txt"
    done = run("ip", "netns", "exec", net.daemon, str(BINARY), "--listen", f"{DAEMON_IP}:{PORT}",
               "--results", str(results), check=False, timeout=10,
               env={"PATH": os.environ["PATH"], "LATENCY_SYNC": "bogus"})
    assert done.returncode == 2, done
    assert done.stderr.strip() == ("latency: LATENCY_SYNC bogus: expected none (the default) or line "
                                   "(fdatasync after each line)"), done.stderr
    assert not results.parent.exists()


@pytest.mark.parametrize("sync", ["none", "line"])
def test_sync_line_calls_fdatasync_on_the_results_file_after_each_line(net, start, tmp_path, sync):
    trace = tmp_path / "strace.log"
    daemon = start("--target", TARGET_IP, "--interval", "100ms", "--timeout", "50ms",
                   env={"LATENCY_SYNC": sync},
                   prefix=("strace", "-f", "-qq", "-y", "-e", "trace=fdatasync,fsync", "-o", str(trace))).ready()
    daemon.wait_lines(5)
    # The daemon is strace's child: stopped itself, it exits and strace with it.
    os.kill(int(run("pgrep", "-P", str(daemon.proc.pid)).stdout.split()[0]), signal.SIGTERM)
    assert daemon.proc.wait(10) == 0
    lines = len(daemon.lines())
    calls = re.findall(r"(fdatasync|fsync)\((\d+)<([^>]*)>\) = 0", trace.read_text())
    on_file = [call for call, _, path in calls if path == str(daemon.results)]
    if sync == "none":
        assert calls == [], calls
    else:
        assert on_file == ["fdatasync"] * lines, (lines, calls)
        assert ("fsync", str(daemon.results.parent)) in [(call, path) for call, _, path in calls]
