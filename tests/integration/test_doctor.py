"""`latency doctor`: every problem it can find, found in a lab that has it, with the fix it
prints; and a healthy setup, with a daemon running, passes with exit status 0."""
import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

from lab import BINARY, DAEMON_IP, NOBODY, PORT, TARGET_IP, Namespaces, run
from test_privilege import daemon_pid

LISTEN = f"{DAEMON_IP}:{PORT}"


def doctor(net: Namespaces, *flags, prefix=(), env=None):
    """Runs `latency doctor` in the daemon's namespace: (exit status, report lines)."""
    done = run("ip", "netns", "exec", net.daemon, *prefix, str(BINARY), "doctor", *flags, check=False,
               env={"PATH": os.environ["PATH"], **(env or {})})
    print(done.stdout, done.stderr)
    assert done.stderr == "", done.stderr
    return done.returncode, done.stdout.splitlines()


def line(report, start):
    """The one line of the report that starts with `start`, and the fix under it if any."""
    found = [i for i, text in enumerate(report) if text.startswith(start)]
    assert len(found) == 1, (start, report)
    fix = report[found[0] + 1] if found[0] + 1 < len(report) else ""
    return report[found[0]], fix.strip() if fix.startswith("        fix: ") else None


def problems(report):
    return [text for text in report if text.startswith("PROBLEM")]


def test_a_healthy_setup_with_the_daemon_running_passes(net, start, tmp_path):
    daemon = start("--target", TARGET_IP, "--interval", "1s").ready()
    daemon.wait_lines(1)
    code, report = doctor(net, "--target", TARGET_IP, "--listen", LISTEN, "--results", str(daemon.results))
    assert code == 0, report
    assert problems(report) == []
    assert {text.split()[0] for text in report} <= {"OK", "NOTE"}, report
    # In order: sockets, capability, sysctl, targets, results, listen address, unit.
    order = ["OK      ICMP socket", "OK      ICMPv6 socket", "OK      CAP_NET_RAW", "NOTE    net.ipv4.ping_group_range",
             f"OK      target {TARGET_IP}", "OK      results file", "OK      listen address", "NOTE    systemd"]
    at = [next(i for i, text in enumerate(report) if text.startswith(start)) for start in order]
    assert at == sorted(at), report
    assert re.fullmatch(rf"OK      target {TARGET_IP}: answered one echo in \d+\.\d\d ms",
                        line(report, f"OK      target {TARGET_IP}")[0]), report
    assert line(report, "OK      listen address")[0] == \
        f"OK      listen address {LISTEN}: held by the running latency service (pid {daemon_pid(net)})"
    assert "results lines" in line(report, "OK      results file")[0]
    assert daemon.alive()
    # The doctor's echo went to its own scratch file, not the daemon's.
    assert all("Latency:" in text for text in daemon.lines())


def test_a_target_that_does_not_answer_and_a_name_that_does_not_resolve(net, tmp_path):
    code, report = doctor(net, "--target", f"{TARGET_IP},198.51.100.9,nosuch.invalid", "--timeout", "300ms",
                          "--interval", "1s", "--listen", LISTEN, "--results", str(tmp_path / "results.txt"))
    assert code == 1
    assert line(report, f"OK      target {TARGET_IP}")
    silent, fix = line(report, "PROBLEM target 198.51.100.9")
    assert silent.endswith("did not answer one echo within 300ms"), silent
    assert fix.endswith("ping -c 3 198.51.100.9"), fix
    unresolved, fix = line(report, "PROBLEM target nosuch.invalid")
    assert "cannot resolve" in unresolved
    assert "getent ahosts nosuch.invalid" in fix
    assert len(problems(report)) == 2, report


def test_no_target_is_a_problem(net, tmp_path):
    code, report = doctor(net, "--listen", LISTEN, "--results", str(tmp_path / "results.txt"))
    assert code == 1
    _, fix = line(report, "PROBLEM target: none configured")
    assert "LATENCY_TARGET=HOST" in fix


def test_a_results_path_that_is_not_a_results_file(net, tmp_path):
    foreign = tmp_path / "notes.txt"
    foreign.write_text("my notes\n")
    code, report = doctor(net, "--target", TARGET_IP, "--listen", LISTEN, "--results", str(foreign))
    assert code == 1
    text, fix = line(report, "PROBLEM results file")
    assert text == f'PROBLEM results file {foreign}: not a latency results file (last line "my notes": ' \
                   "does not start with '[')", text
    assert fix.startswith("fix: choose another results path: --results PATH"), fix
    assert foreign.read_text() == "my notes\n", "the doctor changes nothing"


def test_a_results_path_nobody_cannot_write(net, nobody_dir):
    net.sysctl(net.daemon, "net.ipv4.ping_group_range=0 2147483647")
    closed = nobody_dir / "closed"
    closed.mkdir(mode=0o755)  # root's, like /var/lib
    code, report = doctor(net, "--target", TARGET_IP, "--listen", LISTEN, "--results",
                          str(closed / "state" / "results.txt"), prefix=NOBODY)
    assert code == 1, report
    text, fix = line(report, "PROBLEM results file")
    assert f"{closed} is not writable by nobody" in text, text
    assert fix.startswith(f"fix: sudo chown nobody {closed}"), fix
    assert problems(report) == [text], "ping sockets serve nobody: nothing else is wrong"
    assert not (closed / "state").exists()


def test_root_is_told_a_file_it_may_write_only_with_capabilities_the_daemon_gives_up(net, start, tmp_path):
    # A file the service's user left (0600), run by hand as root: root's own access() says
    # yes, but the daemon opens the file after dropping CAP_DAC_OVERRIDE, and is refused.
    results = tmp_path / "state" / "results.txt"
    results.parent.mkdir()
    results.write_text("[2025-08-12 06:56:53] Latency: 0.27 ms\n")
    os.chown(results, 65534, 65534)
    results.chmod(0o600)
    code, report = doctor(net, "--target", TARGET_IP, "--listen", LISTEN, "--results", str(results))
    assert code == 1, report
    text, fix = line(report, "PROBLEM results file")
    assert f"{results} is not writable by root (owner uid 65534, mode 600" in text, text
    assert fix.startswith(f"fix: sudo chown root {results}"), fix
    daemon = start("--target", TARGET_IP, "--results", str(results))
    assert daemon.exit_code() == 1 and "Permission denied" in daemon.text(), daemon.text()
    os.chown(results, 0, 0)
    code, report = doctor(net, "--target", TARGET_IP, "--listen", LISTEN, "--results", str(results))
    assert code == 0, report


def test_the_listen_address_held_by_another_process(net):
    holder = subprocess.Popen(
        ["ip", "netns", "exec", net.daemon, "python3", "-c",
         "import socket, sys, time\n"
         f"s = socket.create_server(('{DAEMON_IP}', {PORT}))\n"
         "print('listening', flush=True)\n"
         "time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "listening"
        code, report = doctor(net, "--target", TARGET_IP, "--listen", LISTEN, "--results", "/nonexistent/r.txt")
        assert code == 1
        text, fix = line(report, "PROBLEM listen address")
        # `ip netns exec` execs python in its own place: the pid is the one Popen knows.
        assert text == f"PROBLEM listen address {LISTEN}: in use by python3 (pid {holder.pid})", text
        assert fix.startswith(f"fix: stop it (sudo kill {holder.pid}), or choose another: --listen"), fix
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("current,widened", [("1 0", "65534 65534"), ("100 200", "100 65534")])
def test_no_socket_possible_and_the_printed_fix_fixes_it(net, nobody_dir, current, widened):
    net.sysctl(net.daemon, f"net.ipv4.ping_group_range={current}")
    flags = ("--target", TARGET_IP, "--listen", LISTEN, "--results", str(nobody_dir / "results.txt"))
    code, report = doctor(net, *flags, prefix=NOBODY)
    assert code == 1
    text, fix = line(report, "PROBLEM ICMP socket")
    assert text == "PROBLEM ICMP socket: none opens (raw: Operation not permitted; datagram: Permission denied)"
    assert fix == f"fix: sudo sysctl -w net.ipv4.ping_group_range='{widened}'"
    assert line(report, "PROBLEM CAP_NET_RAW: not effective, not in the bounding set")
    assert line(report, f"PROBLEM net.ipv4.ping_group_range '{current}' leaves out group 65534")
    assert line(report, f"PROBLEM target {TARGET_IP}: {TARGET_IP} not probed: no ICMP socket")
    # No target is IPv6: its missing socket is only a note.
    assert line(report, "NOTE    ICMPv6 socket: none opens")

    # The command it prints, run as printed (without sudo: root already), is the fix.
    net.exec(net.daemon, "sh", "-c", fix.removeprefix("fix: sudo "))
    code, report = doctor(net, *flags, prefix=NOBODY)
    assert code == 0, report
    assert line(report, "OK      ICMP socket: datagram")
    assert line(report, f"OK      target {TARGET_IP}: answered one echo")


def test_settings_come_from_the_default_file_unless_the_environment_or_a_flag_says_otherwise(net, tmp_path):
    # `ip netns exec` mounts /etc/netns/NS/default over /etc/default: the file the unit reads.
    defaults = Path(f"/etc/netns/{net.daemon}/default")
    defaults.mkdir(parents=True)
    try:
        (defaults / "latency").write_text(
            "# as installed, then edited\n"
            "LATENCY_TARGET=198.51.100.9\n"
            f"LATENCY_LISTEN={LISTEN}\n"
            f"LATENCY_RESULTS={tmp_path / 'state' / 'results.txt'}\n"
            "LATENCY_TIMEOUT=300ms\n")
        code, report = doctor(net)
        assert code == 1
        assert line(report, "PROBLEM target 198.51.100.9: did not answer one echo within 300ms")
        assert line(report, f"OK      results file {tmp_path / 'state' / 'results.txt'}: absent")
        assert line(report, f"OK      listen address {LISTEN}: free")
        code, report = doctor(net, env={"LATENCY_TARGET": TARGET_IP})
        assert code == 0, report
        assert line(report, f"OK      target {TARGET_IP}")
        code, report = doctor(net, "--target", "198.51.100.8", env={"LATENCY_TARGET": TARGET_IP})
        assert line(report, "PROBLEM target 198.51.100.8")
    finally:
        (defaults / "latency").unlink()
        defaults.rmdir()
        defaults.parent.rmdir()
