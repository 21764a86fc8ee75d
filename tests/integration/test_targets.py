"""Many targets of both families in one daemon: named lines, per-target routes, names that
move or stop resolving, datagram sockets for both families, and a file that changes form."""
import os
import re
import signal
import time

import pytest

from lab import LINE, NOBODY, TARGET_IP, TARGET_IP6, wait_until

NAMED = r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] (\S+) Latency: (\d+\.\d\d ms|timeout)$"
SECOND_IP = "198.51.100.3"
# Nobody has this address: probes to it are lost.
DEAD_IP = "198.51.100.9"
FAST = ("--interval", "300ms", "--timeout", "200ms")


def by_name(lines):
    """{NAME: [outcome, ...]} for named lines; fails on a line of another form."""
    named = {}
    for line in lines:
        match = re.match(NAMED, line)
        assert match, f"not a named results line: {line!r}"
        named.setdefault(match.group(1), []).append(match.group(2))
    return named


def answered(outcomes):
    return [o for o in outcomes if o != "timeout"]


def test_ipv4_and_ipv6_targets_are_probed_side_by_side_with_named_lines(net, start):
    daemon = start("--target", f"v4={TARGET_IP}", "--target", f"v6={TARGET_IP6}", *FAST).ready()
    wait_until(lambda: all(len(answered(by_name(daemon.lines()).get(name, []))) >= 3 for name in ("v4", "v6")),
               10, lambda: f"three answered probes to each: {daemon.lines()}\n{daemon.text()}")
    named = by_name(daemon.lines())
    assert set(named) == {"v4", "v6"}
    assert "timeout" not in named["v4"] + named["v6"], named
    assert "raw ICMP socket" in daemon.text() and "raw ICMPv6 socket" in daemon.text(), daemon.text()


def test_one_target_lost_does_not_disturb_the_others(net, start):
    net.add_address(net.target, SECOND_IP)
    targets = ("--target", f"a={TARGET_IP}", "--target", f"dead={DEAD_IP}", "--target", f"b={SECOND_IP}")
    daemon = start(*targets, *FAST).ready()
    wait_until(lambda: len(by_name(daemon.lines()).get("dead", [])) >= 4, 10, lambda: daemon.lines())
    named = by_name(daemon.lines())
    assert set(named["dead"]) == {"timeout"}, named
    for name in ("a", "b"):
        assert len(named[name]) >= 3 and "timeout" not in named[name], named


def test_probes_to_several_targets_are_spread_over_the_interval(net, start, responder):
    process = responder()
    for ip in ("198.51.100.3", "198.51.100.4", "198.51.100.5"):
        net.add_address(net.target, ip)
    targets = [f"t{i}=198.51.100.{i}" for i in range(2, 6)]
    start(*[arg for t in targets for arg in ("--target", t)], "--interval", "1s", "--timeout", "500ms").ready()
    wait_until(lambda: len(process.requests()) >= 12, 10, lambda: process.requests())
    times = sorted(float(line.split()[4]) for line in process.requests()[:12])
    gaps = [b - a for a, b in zip(times, times[1:])]
    # Four targets every second: a request every 250 ms, never a burst of four.
    assert all(0.15 < gap < 0.35 for gap in gaps), gaps


def test_target_routes_probe_one_or_all_and_serve_each_targets_lines(net, start):
    net.add_address(net.target, SECOND_IP)
    daemon = start("--target", f"a={TARGET_IP}", "--target", f"b={SECOND_IP}",
                   "--interval", "60s", "--timeout", "1s").ready()
    status, _, body = net.request("GET", "/latency")
    assert status == 200, body
    assert [re.match(NAMED, line).group(1) for line in body.splitlines()] == ["a", "b"], body
    status, _, body = net.request("GET", "/latency?target=b")
    assert status == 200 and [re.match(NAMED, line).group(1) for line in body.splitlines()] == ["b"], body
    status, _, body = net.request("GET", "/latency?target=c")
    assert status == 404 and "'c'" in body and "a, b" in body, body
    for _ in range(3):
        net.request("GET", "/latency?target=a")
    lines = daemon.lines()
    a_lines = [line for line in lines if re.match(NAMED, line).group(1) == "a"]
    status, _, body = net.request("GET", "/latency-results?target=a")
    assert status == 200 and body.splitlines() == a_lines, (body, lines)
    status, _, body = net.request("GET", "/latency-results?target=a&tail=2")
    assert status == 200 and body.splitlines() == a_lines[-2:], body
    status, _, body = net.request("GET", "/latency-results?target=c")
    assert status == 404 and "a, b" in body, body


def test_one_unresolvable_name_among_several_gets_timeouts_and_a_reason(net, start):
    daemon = start("--target", f"a={TARGET_IP}", "--target", "bad=nosuch.invalid", *FAST).ready()
    wait_until(lambda: len(by_name(daemon.lines()).get("bad", [])) >= 3, 10, lambda: daemon.lines())
    named = by_name(daemon.lines())
    assert set(named["bad"]) == {"timeout"} and "timeout" not in named["a"], named
    assert "nosuch.invalid" in daemon.text() and daemon.alive()


def hosts_file(tmp_path, text):
    """A hosts file of the test's own holding `text`, and the prefix that runs the daemon
    with it bind-mounted over /etc/hosts in a mount namespace of its own."""
    path = tmp_path / "hosts"
    path.write_text(text)
    prefix = ("unshare", "--mount", "--propagation", "private", "sh", "-c",
              f'mount --bind "{path}" /etc/hosts && exec "$0" "$@"')
    return path, prefix


def test_a_name_that_moves_is_followed_and_one_that_stops_resolving_keeps_its_address(
        net, start, tmp_path):
    net.add_address(net.target, SECOND_IP)
    hosts, prefix = hosts_file(tmp_path, f"127.0.0.1 localhost\n{TARGET_IP} db.test\n")
    daemon = start("--target", "db=db.test", "--target", f"a={TARGET_IP}", "--resolve-every", "1s", *FAST,
                   prefix=prefix).ready()
    daemon.wait_for(f"db.test resolves to {TARGET_IP}")
    hosts.write_text(f"127.0.0.1 localhost\n{SECOND_IP} db.test\n")
    daemon.wait_for(f"db.test now resolves to {SECOND_IP} (was {TARGET_IP})", timeout=5)
    hosts.write_text("127.0.0.1 localhost\n")
    kept = f"probing {SECOND_IP}, its last address"
    daemon.wait_for(kept, timeout=5)
    before = len(daemon.lines())
    time.sleep(2.5)
    assert daemon.text().count(kept) == 1, "warned once per outage"
    later = by_name(daemon.lines()[before:])
    assert len(answered(later["db"])) >= 5, later


def test_sighup_resolves_the_names_again(net, start, tmp_path):
    net.add_address(net.target, SECOND_IP)
    hosts, prefix = hosts_file(tmp_path, f"127.0.0.1 localhost\n{TARGET_IP} db.test\n")
    daemon = start("--target", "db=db.test", "--target", f"a={TARGET_IP}", *FAST, prefix=prefix).ready()
    hosts.write_text(f"127.0.0.1 localhost\n{SECOND_IP} db.test\n")
    time.sleep(0.5)
    assert "now resolves to" not in daemon.text(), "not before the SIGHUP (--resolve-every is 5m)"
    pid = int(net.exec(net.daemon, "pgrep", "-n", "-x", "latency").stdout)
    os.kill(pid, signal.SIGHUP)
    daemon.wait_for(f"db.test now resolves to {SECOND_IP} (was {TARGET_IP})", timeout=5)


def test_datagram_sockets_serve_both_families_without_cap_net_raw(net, start, nobody_dir):
    net.sysctl(net.daemon, "net.ipv4.ping_group_range=0 2147483647")
    daemon = start("--target", f"v4={TARGET_IP}", "--target", f"v6={TARGET_IP6}", *FAST,
                   results=nobody_dir / "results.txt", prefix=NOBODY).ready()
    assert "datagram ICMP socket" in daemon.text() and "datagram ICMPv6 socket" in daemon.text(), daemon.text()
    wait_until(lambda: all(len(answered(by_name(daemon.lines()).get(name, []))) >= 3 for name in ("v4", "v6")),
               10, lambda: daemon.lines())


def test_a_results_file_may_change_form_when_the_target_list_changes(net, start, tmp_path):
    net.add_address(net.target, SECOND_IP)
    results = tmp_path / "state" / "results.txt"
    one = start("--target", TARGET_IP, *FAST, results=results).ready()
    one.wait_lines(2)
    one.stop()
    two = start("--target", f"a={TARGET_IP}", "--target", f"b={SECOND_IP}", *FAST, results=results).ready()
    wait_until(lambda: len(two.lines()) >= 6, 10, lambda: two.lines())
    assert "its lines had no target name; from now on they name their target" in two.text(), two.text()
    two.stop()
    lines = results.read_text().splitlines()
    seed = [line for line in lines if re.match(LINE, line)]
    named = [line for line in lines if re.match(NAMED, line)]
    assert len(seed) + len(named) == len(lines) and seed and named, lines
    assert lines.index(named[0]) > lines.index(seed[-1]), "the named lines follow the seed ones"
    back = start("--target", TARGET_IP, *FAST, results=results).ready()
    back.wait_lines(len(lines) + 2)
    assert "its lines named their target; from now on they name none" in back.text(), back.text()


def test_ipv6_zone_literal_targets_a_link_local_address(net, start):
    link_local = net.exec(net.target, "ip", "-6", "-o", "addr", "show", "dev", net.target_if, "scope", "link").stdout
    address = re.search(r"inet6 (fe80::[0-9a-f:]+)/", link_local).group(1)
    daemon = start("--target", f"ll={address}%{net.daemon_if}", "--target", f"v4={TARGET_IP}", *FAST).ready()
    wait_until(lambda: len(answered(by_name(daemon.lines()).get("ll", []))) >= 2, 10,
               lambda: f"{daemon.lines()}\n{daemon.text()}")


def test_one_target_keeps_the_seed_lines_exactly(net, start):
    daemon = start("--target", TARGET_IP, *FAST).ready()
    lines = daemon.wait_lines(3)
    assert all(re.match(LINE, line) for line in lines), lines


def test_family_picks_which_address_of_a_name_is_probed(net, start, tmp_path):
    hosts, prefix = hosts_file(tmp_path, f"127.0.0.1 localhost\n{TARGET_IP} dual.test\n{TARGET_IP6} dual.test\n")
    for family, address in (("auto", TARGET_IP), ("ipv4", TARGET_IP), ("ipv6", TARGET_IP6)):
        daemon = start("--target", "dual.test", "--family", family, *FAST, prefix=prefix,
                       results=tmp_path / family / "results.txt").ready()
        assert f"target dual.test ({address})" in daemon.text(), daemon.text()
        assert all(re.match(LINE, line) and "timeout" not in line for line in daemon.wait_lines(2)), daemon.lines()
        daemon.stop()


RESPONDER_CASES = [
    # mode, what each family's lines hold, what the log must say for each family's target
    ("normal", "answered", None),
    ("drop", "timeout", "no reply from {name} ({address}) within 200ms"),
    ("duplicate", "answered", "ignored a duplicate reply from {address}"),
    ("wrong-id", "timeout", None),
    ("wrong-payload", "timeout", "its payload is not the one sent"),
    ("unreachable", "timeout", "(reported by {address})"),
]


@pytest.mark.parametrize("mode, outcome, logged", RESPONDER_CASES, ids=[case[0] for case in RESPONDER_CASES])
def test_both_families_meet_each_fault_of_the_responder_alike(net, start, responder, mode, outcome, logged):
    process = responder("--mode", mode)
    daemon = start("--target", f"v4={TARGET_IP}", "--target", f"v6={TARGET_IP6}", *FAST).ready()
    wait_until(lambda: all(len(by_name(daemon.lines()).get(name, [])) >= 3 for name in ("v4", "v6")), 10,
               lambda: f"{daemon.lines()}\n{daemon.text()}")
    named = by_name(daemon.lines())
    for name, address in (("v4", TARGET_IP), ("v6", TARGET_IP6)):
        outcomes = set(named[name])
        assert (outcomes == {"timeout"}) == (outcome == "timeout"), (mode, name, named)
        if logged:
            assert logged.format(name=name, address=address) in daemon.text(), (mode, name, daemon.text())
    requests = process.requests()
    # One line per echo request: a duplicate reply adds none.
    assert len(daemon.lines()) <= len(requests) + 2, (daemon.lines(), requests)


def test_names_the_resolver_does_not_answer_delay_the_start_once_not_each(net, start, tmp_path):
    # A resolver that does not answer (nobody has DEAD_IP) at boot: the start waits for all
    # the names at once, at most 5 s, instead of one resolver timeout after another.
    hosts, prefix = hosts_file(tmp_path, "127.0.0.1 localhost\n")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(f"nameserver {DEAD_IP}\n")
    prefix = (*prefix[:-1], f'mount --bind "{resolv}" /etc/resolv.conf && ' + prefix[-1])
    names = ("--target", "b=nowhere.test", "--target", "c=also.nowhere.test", "--target", "d=more.nowhere.test")
    began = time.monotonic()
    daemon = start("--target", f"a={TARGET_IP}", *names, *FAST, prefix=prefix).ready()
    assert time.monotonic() - began < 8, f"ready after {time.monotonic() - began:.1f} s"
    assert "nowhere.test: no answer from the resolver within 5s" in daemon.text(), daemon.text()
    wait_until(lambda: all(len(by_name(daemon.lines()).get(name, [])) >= 2 for name in "abcd"), 5,
               lambda: daemon.lines())
    named = by_name(daemon.lines())
    assert "timeout" not in named["a"] and all(set(named[name]) == {"timeout"} for name in "bcd"), named


def test_a_missing_interface_stops_a_lone_target_but_not_one_of_several(net, start, tmp_path):
    lone = start("--target", "fe80::1%nosuchif0", *FAST, results=tmp_path / "lone" / "results.txt")
    assert lone.exit_code() == 1
    assert "no interface nosuchif0 here" in lone.text() and "ip link" in lone.text(), lone.text()
    daemon = start("--target", f"a={TARGET_IP}", "--target", "ll=fe80::1%nosuchif0", *FAST).ready()
    wait_until(lambda: len(by_name(daemon.lines()).get("ll", [])) >= 2, 5, lambda: daemon.lines())
    named = by_name(daemon.lines())
    assert set(named["ll"]) == {"timeout"} and "timeout" not in named["a"], named



def test_many_targets_down_do_not_flood_the_journal(net, start):
    # Forty targets nobody answers, ten probes a second each: 400 lost probes a second.
    targets = ",".join(f"down-{i}={DEAD_IP}" for i in range(40))
    daemon = start("--interval", "100ms", "--timeout", "50ms", env={"LATENCY_TARGET": targets}).ready()
    wait_until(lambda: len(daemon.lines()) >= 400, 10, lambda: len(daemon.lines()))
    lost = daemon.text().count("no reply from down-")
    assert 1 <= lost <= 20, f"{lost} lines for {len(daemon.lines())} lost probes"
