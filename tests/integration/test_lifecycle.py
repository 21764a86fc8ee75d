"""Start-up checks, signals, the results file across crashes and rotation, and systemd's
notification protocol."""
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab import BINARY, DAEMON_IP, LINE, NOBODY, PORT, TARGET_IP, frozen_thread, run, wait_until

FAST = ("--target", TARGET_IP, "--interval", "200ms", "--timeout", "100ms")


def test_sigterm_and_sigint_stop_within_a_second_with_whole_lines(net, start, tmp_path):
    for sig in (signal.SIGTERM, signal.SIGINT):
        daemon = start(*FAST, results=tmp_path / sig.name / "results.txt").ready()
        daemon.wait_lines(3)
        began = time.monotonic()
        assert daemon.stop(sig) == 0
        assert time.monotonic() - began < 1.0
        text = daemon.results.read_text()
        assert text.endswith("\n") and all(re.match(LINE, line) for line in text.splitlines())
        assert f"stopping on {sig.name}" in daemon.text() and "stopped" in daemon.text()


def test_callers_waiting_at_a_stop_are_told_why(net, start, responder):
    # The replies never come: at SIGTERM a hundred callers are waiting for their lines. Each is
    # told the daemon is stopping, rather than left with a connection closed unanswered.
    responder("--mode", "drop")
    # A hundred connections from one address: more than a client may hold by default.
    daemon = start("--target", TARGET_IP, "--interval", "10s", "--timeout", "5s",
                   "--max-conns-per-client", "100").ready()
    connections = [net.connect() for _ in range(100)]
    for conn in connections:
        conn.request("GET", "/latency")
    time.sleep(0.5)
    # Busy cores make the answers slow to go out, as on a loaded host.
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(4)]
    try:
        began = time.monotonic()
        assert daemon.stop(signal.SIGTERM) == 0
        assert time.monotonic() - began < 1.0
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    answers = []
    for conn in connections:
        response = conn.getresponse()
        answers.append((response.status, response.read().decode()))
    assert all(status == 503 and "the daemon is stopping" in body for status, body in answers), answers


def test_a_stuck_prober_does_not_hold_up_the_stop(net, start):
    # A write blocked on a hung filesystem, stood in for by holding the prober thread.
    daemon = start(*FAST).ready()
    daemon.wait_lines(1)
    pid = daemon.proc.pid
    with frozen_thread(pid, "prober"):
        began = time.monotonic()
        daemon.proc.send_signal(signal.SIGTERM)
        # The held thread is reaped only when it is let go, so the process cannot be waited
        # for here: its main thread ending (state Z) marks the stop.
        wait_until(lambda: Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] == "Z", 5,
                   "the daemon's main thread ending")
        stopped_after = time.monotonic() - began
    assert daemon.proc.wait(5) == 1
    assert stopped_after < 1.0, stopped_after
    assert "the prober did not stop within 800ms" in daemon.text()


def test_sighup_reopens_a_rotated_file(net, start):
    daemon = start(*FAST).ready()
    daemon.wait_lines(3)
    rotated = daemon.results.with_suffix(".txt.1")
    os.rename(daemon.results, rotated)
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_for("SIGHUP: reopened")
    kept = rotated.read_text().splitlines()
    time.sleep(0.3)
    assert len(rotated.read_text().splitlines()) <= len(kept) + 1, "at most one line in flight lands in the old file"
    new = daemon.wait_lines(3)
    assert all(re.match(LINE, line) for line in new + kept)
    assert daemon.alive()


def test_a_torn_last_line_is_cut_at_start_and_logged(net, start, tmp_path):
    results = tmp_path / "state" / "results.txt"
    results.parent.mkdir()
    whole = "[2025-08-12 06:56:53] Latency: 0.27 ms\n[2025-08-12 06:57:53] Latency: timeout\n"
    results.write_text(whole + "[2025-08-12 06:58:5")
    daemon = start(*FAST, results=results).ready()
    assert "cut 19 bytes of a torn last line" in daemon.text()
    lines = daemon.wait_lines(4)
    assert results.read_text().startswith(whole)
    assert all(re.match(LINE, line) for line in lines)


@pytest.mark.parametrize("content", [
    "root:x:0:0:root:/root:/bin/bash\n",
    # No newline at all, and a '[' first: not a torn results line either.
    '["db-password", "hunter2"]',
    "[2025-08-12 06:56:53] Latency: 0.27 ms\n[operator note: moved from the old host]",
])
def test_a_file_that_is_not_ours_is_left_alone(net, start, tmp_path, content):
    results = tmp_path / "notes"
    results.write_text(content)
    daemon = start(*FAST, results=results)
    assert daemon.exit_code() == 1
    assert "is not a latency results file" in daemon.text()
    assert results.read_text() == content


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_fifo_or_a_device_is_refused(net, start, tmp_path, kind):
    # A FIFO would block every append (and the stop), /dev/null would swallow the lines.
    if kind == "fifo":
        results = tmp_path / "results.txt"
        os.mkfifo(results)
    else:
        results = "/dev/null"
    daemon = start(*FAST, results=results)
    assert daemon.exit_code() == 1
    text = daemon.text()
    assert "is not a latency results file" in text
    assert ("it is a FIFO" if kind == "fifo" else "it is a character device") in text, text


# Bad configuration exits 2 before anything starts; a start-up failure (a name that does not
# resolve, a results path that cannot be made) exits 1.
BAD_FLAGS = [
    (["--bogus"], "--bogus: unknown option", 2),
    (["--interval", "0"], "--interval 0: missing unit, and neither 0s nor 0ms is allowed (must be at least 100ms): "
                          "write, say, 1m, the default", 2),
    (["--timeout", "0"], "--timeout 0: missing unit, and neither 0s nor 0ms is allowed (must be at least 1ms): "
                         "write, say, 2s, the default", 2),
    (["--interval", "0s"], "--interval 0s: must be at least 100ms", 2),
    (["--listen", "nonsense"], "--listen nonsense: expected ADDRESS:PORT", 2),
    (["--sync", "always"], "--sync always: expected none (the default) or line (fdatasync after each line)", 2),
    (["--timeout", "5s", "--interval", "5s"], "--timeout 5s: must be shorter than the interval", 2),
    (["--target", "0.0.0.0"], "--target 0.0.0.0: is the unspecified address", 2),
    (["--target", "224.0.0.1"], "--target 224.0.0.1: is a broadcast or multicast address", 2),
    (["--interval", "1h", "--timeout", "2m"], "--timeout 2m: must be at most 1m", 2),
    (["--interval", "5s\nINFO forged line"], "--interval 5s\\nINFO forged line: unknown unit", 2),
    (["--results", "/tmp/x\nERROR forged/results.txt"], "--results /tmp/x\\nERROR forged/results.txt: must not", 2),
    (["--target", "nosuch.invalid"], "target nosuch.invalid: cannot resolve", 1),
    (["--results", "/proc/version/results.txt"], "/proc/version", 1),
    (["--results", "/proc/sys/latency/results.txt"], "/proc/sys/latency", 1),
]


@pytest.mark.parametrize("flags,message,code", BAD_FLAGS, ids=[" ".join(f) for f, _, _ in BAD_FLAGS])
def test_bad_flags_exit_with_their_code_and_one_line_and_do_nothing(net, tmp_path, flags, message, code):
    results = tmp_path / "state" / "results.txt"
    args = ["ip", "netns", "exec", net.daemon, str(BINARY), "--listen", f"{DAEMON_IP}:{PORT}"]
    if "--results" not in flags:
        args += ["--results", str(results)]
    began = time.monotonic()
    done = run(*args, *flags, check=False, timeout=10, env={"PATH": os.environ["PATH"]})
    assert done.returncode == code, (done.returncode, done.stderr)
    assert time.monotonic() - began < 5
    output = done.stderr.strip()
    assert message in output and "\n" not in output, output
    assert not results.parent.exists(), "nothing is created for a bad configuration"


def test_a_taken_port_is_named_and_nothing_is_created(net, start, tmp_path):
    first = start(*FAST).ready()
    second = start(*FAST, results=tmp_path / "other" / "results.txt")
    assert second.exit_code() == 1
    assert f"bind {DAEMON_IP}:{PORT}" in second.text()
    assert not (tmp_path / "other").exists(), "a failed start leaves no results directory"
    assert first.alive()


@pytest.mark.parametrize("relative", ["results.txt", "state/results.txt"])
def test_a_start_without_an_icmp_socket_creates_nothing(net, start, nobody_dir, relative):
    # nobody has no CAP_NET_RAW, and the kernel's default range lets no group open ping sockets.
    net.sysctl(net.daemon, "net.ipv4.ping_group_range=1 0")
    results = nobody_dir / relative
    daemon = start(*FAST, results=results, prefix=NOBODY)
    assert daemon.exit_code() == 1
    assert "cannot open an ICMP socket" in daemon.text()
    assert list(nobody_dir.iterdir()) == [], "a failed start leaves no results file or directory"


@pytest.fixture
def notify(tmp_path):
    """A stand-in for systemd's notification socket, and the environment naming it with a
    400 ms watchdog (a ping every 200 ms)."""
    path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(path))
    listener.settimeout(5)
    yield listener, {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000"}
    listener.close()


def received(listener) -> list:
    """The messages already queued on `listener`, without waiting for more."""
    timeout = listener.gettimeout()
    listener.settimeout(0)
    messages = []
    try:
        while True:
            messages.append(listener.recv(4096).decode())
    except BlockingIOError:
        return messages
    finally:
        listener.settimeout(timeout)


def test_systemd_hears_ready_watchdog_and_status(net, start, notify):
    listener, env = notify
    daemon = start(*FAST, env=env)
    messages = []

    def heard_enough():
        messages.append(listener.recv(4096).decode())
        return sum(m == "WATCHDOG=1" for m in messages) >= 2 and any("Latency:" in m for m in messages)

    wait_until(heard_enough, 3, lambda: f"two watchdog pings and a status line, have {messages}")
    ready = [m for m in messages if m.startswith("READY=1")]
    assert ready, messages
    status, _, _ = net.request("GET", "/latency-results")
    assert status == 200, "READY=1 came after the listener was up"
    assert sum(m == "WATCHDOG=1" for m in messages) >= 2, messages
    assert any(re.match(r"STATUS=last: \[.*\] Latency: \d+\.\d\d ms", m) for m in messages), messages
    daemon.stop()
    assert listener.recv(4096).decode() == "STOPPING=1"


def test_ready_reaches_systemd_whatever_the_number_of_targets(net, start, notify):
    # systemd drops a notification of 4096 bytes or more whole, READY=1 with it: a status
    # listing two hundred targets kept the unit from ever starting.
    listener, env = notify
    targets = ",".join(f"target-{i}={TARGET_IP}" for i in range(200))
    daemon = start("--interval", "10s", env={**env, "LATENCY_TARGET": targets}).ready()
    messages = []
    wait_until(lambda: messages.append(listener.recv(65536).decode()) or any("READY=1" in m for m in messages),
               5, lambda: f"READY=1, have {[m[:80] for m in messages]}")
    assert all(len(m.encode()) < 4096 for m in messages), [len(m) for m in messages]
    starting = next(line for line in daemon.text().splitlines() if "starting:" in line)
    assert len(starting) < 1000 and "200 targets" in starting, starting


def test_the_watchdog_ping_is_withheld_while_the_prober_is_stalled(net, start, notify):
    listener, env = notify
    daemon = start(*FAST, env=env).ready()
    wait_until(lambda: listener.recv(4096).decode() == "WATCHDOG=1", 3, "a watchdog ping")
    with frozen_thread(daemon.proc.pid, "prober"):
        # A tick may still count loop turns made just before the freeze.
        time.sleep(0.5)
        received(listener)
        status, _, body = net.request("GET", "/latency")
        during = received(listener)
    assert status == 503 and "stalled" in body, (status, body)
    assert "WATCHDOG=1" not in during, during
    assert "withholding the watchdog ping" in daemon.text()
    listener.settimeout(2)
    wait_until(lambda: listener.recv(4096).decode() == "WATCHDOG=1", 2, "the watchdog ping coming back")
    assert daemon.alive()


def test_the_start_line_names_the_port_the_kernel_picked(net, start):
    daemon = start(*FAST, "--listen", f"{DAEMON_IP}:0")
    text = daemon.wait_for("listening on http://")
    port = int(re.search(rf"listening on http://{DAEMON_IP}:(\d+),", text).group(1))
    assert port != 0
    status, _, _ = net.request("GET", "/latency-results", port=port)
    assert status == 200
