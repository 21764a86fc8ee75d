"""The test responder itself, seen through `ping`: each mode does over IPv4 and IPv6 what the
probing tests take it to do, so a failure there is the daemon's and not the responder's."""
import re

import pytest

from lab import TARGET_IP, TARGET_IP6


def ping(net, family, target, count=3):
    result = net.exec(net.daemon, "ping", "-n", family, "-c", str(count), "-i", "0.2", "-W", "1", target,
                      check=False)
    return result.stdout + result.stderr


def received(output):
    return int(re.search(r"(\d+) received", output).group(1))


@pytest.mark.parametrize("family,target", [("-4", TARGET_IP), ("-6", TARGET_IP6)])
def test_each_mode_answers_as_documented(net, responder, family, target):
    cases = {
        "normal": lambda out: received(out) == 3 and "DUP!" not in out,
        "drop": lambda out: received(out) == 0 and "errors" not in out,
        "duplicate": lambda out: received(out) == 3 and out.count("(DUP!)") >= 2,
        "wrong-id": lambda out: received(out) == 0,
        "wrong-payload": lambda out: "wrong data byte" in out,
        "unreachable": lambda out: received(out) == 0 and ("Address unreachable" in out if family == "-6"
                                                           else "Destination Host Unreachable" in out),
    }
    for mode, expected in cases.items():
        process = responder("--mode", mode)
        out = ping(net, family, target)
        requests = process.requests()
        process.kill()
        assert expected(out), f"{mode}:\n{out}"
        assert len(requests) == 3, f"{mode}: the responder printed {requests}"


def test_drop_to_drops_what_is_sent_to_that_address_only_and_answers_from_the_others(net, responder):
    second, second6 = "198.51.100.3", "2001:db8:51::3"
    net.add_address(net.target, second, second6)
    responder("--drop-to", TARGET_IP, "--drop-to", TARGET_IP6.upper())
    for family, answered, dropped in (("-4", second, TARGET_IP), ("-6", second6, TARGET_IP6)):
        out = ping(net, family, answered)
        # A second address answers from itself, not from the interface's first one.
        assert received(out) == 3 and out.count(f"from {answered}:") == 3, out
        assert received(ping(net, family, dropped)) == 0, dropped


def test_a_bad_icmpv6_checksum_reaches_the_wire_and_no_socket(net, responder):
    """The kernel drops an ICMPv6 message with a bad checksum before raw or ping sockets see it
    (Icmp6InCsumErrors counts it), so over IPv6 bad-checksum looks like a lost reply."""
    def csum_errors():
        snmp = net.exec(net.daemon, "cat", "/proc/net/snmp6").stdout.split()
        return int(snmp[snmp.index("Icmp6InCsumErrors") + 1])
    before = csum_errors()
    responder("--mode", "bad-checksum")
    out = ping(net, "-6", TARGET_IP6, count=2)
    assert received(out) == 0, out
    assert csum_errors() - before == 2


def test_the_first_ipv6_packet_over_a_new_link_does_not_wait(net):
    """The lab waits until the link is running, so neighbour discovery answers at once."""
    out = ping(net, "-6", TARGET_IP6, count=1)
    rtt = float(re.search(r"time=([\d.]+) ms", out).group(1))
    assert rtt < 500, out
