"""No capability after start: once its sockets are open the daemon holds none, in any thread,
whether it was started as root or given CAP_NET_RAW as a file capability, and it keeps
probing, reopening its file and resolving names without one."""
import shutil
import signal
from pathlib import Path

import pytest

from lab import BINARY, DAEMON_IP, TARGET_IP, run

FAST = ("--target", TARGET_IP, "--interval", "200ms", "--timeout", "150ms")
# nobody, without clearing the bounding set: a file capability can then be granted.
AS_NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
SETS = ("CapInh", "CapPrm", "CapEff", "CapAmb")


def status(pid: int, task: int | None = None) -> dict:
    path = Path(f"/proc/{pid}/task/{task}/status" if task else f"/proc/{pid}/status")
    fields = (line.split(":", 1) for line in path.read_text().splitlines())
    return {name: value.strip() for name, value in fields}


def daemon_pid(net) -> int:
    """The daemon's pid: the one process in its namespace whose program is latency."""
    pids = [int(pid) for pid in run("ip", "netns", "pids", net.daemon).stdout.split()
            if Path(f"/proc/{pid}/comm").read_text().strip() == "latency"]
    assert len(pids) == 1, pids
    return pids[0]


def assert_no_capability(pid: int):
    """Every thread: no capability in any set the process could use, and no way back."""
    tasks = [int(task.name) for task in Path(f"/proc/{pid}/task").iterdir()]
    assert len(tasks) > 1, "the threads are running"
    for task in tasks:
        sets = status(pid, task)
        assert {name: sets[name] for name in SETS} == {name: "0" * 16 for name in SETS}, (task, sets)
        assert sets["NoNewPrivs"] == "1", (task, sets)


def rtt_lines(lines):
    return [line for line in lines if line.endswith(" ms")]


def test_started_as_root_it_keeps_no_capability_and_still_probes(net, start):
    # Port 80 needs CAP_NET_BIND_SERVICE: the listener is bound before the drop.
    daemon = start(*FAST, "--listen", f"{DAEMON_IP}:80")
    daemon.wait_for("starting:")
    pid = daemon_pid(net)
    status_text = Path(f"/proc/{pid}/status").read_text()
    print("".join(line + "\n" for line in status_text.splitlines() if line.startswith(("Cap", "NoNew"))))
    assert_no_capability(pid)
    # Started with every capability, it also empties the bounding set.
    assert status(pid)["CapBnd"] == "0" * 16
    assert "raw ICMP socket" in daemon.text()
    assert rtt_lines(daemon.wait_lines(3))
    code, _, body = net.request("GET", "/latency", port=80)
    assert code == 200 and body.endswith(" ms\n"), body


def test_sighup_and_re_resolution_work_without_a_capability(net, start):
    hosts = Path(f"/etc/netns/{net.daemon}/hosts")
    hosts.parent.mkdir(parents=True)
    try:
        hosts.write_text(f"{TARGET_IP} target.test\n")
        net.exec(net.target, "ip", "addr", "add", "198.51.100.3/24", "dev", net.target_if)
        daemon = start("--target", "target.test", "--interval", "200ms", "--timeout", "150ms").ready()
        pid = daemon_pid(net)
        assert_no_capability(pid)
        rotated = daemon.results.with_name("results.txt.1")
        daemon.results.rename(rotated)
        with open(hosts, "r+") as f:  # in place: `ip netns exec` bind-mounted this inode
            f.write("198.51.100.3 target.test\n")
        daemon.proc.send_signal(signal.SIGHUP)
        daemon.wait_for(f"reopened {daemon.results}")
        daemon.wait_for(f"target.test now resolves to 198.51.100.3 (was {TARGET_IP})")
        assert rtt_lines(daemon.wait_lines(3)), "the reopened file gets measured lines"
        assert_no_capability(pid)
    finally:
        hosts.unlink()
        hosts.parent.rmdir()


@pytest.fixture
def setcap_binary(nobody_dir):
    """A copy of the binary that nobody may run, with CAP_NET_RAW as a permitted file
    capability (not effective: the daemon raises it itself, as ping does)."""
    copy = nobody_dir / "latency"
    shutil.copy(BINARY, copy)
    copy.chmod(0o755)
    run("setcap", "cap_net_raw+p", str(copy))
    return copy


def test_a_file_capability_gives_a_raw_socket_and_is_then_given_up(net, start, nobody_dir, setcap_binary):
    # No ping socket either: the raw socket can only come from the file capability.
    net.sysctl(net.daemon, "net.ipv4.ping_group_range=1 0")
    daemon = start(*FAST, results=nobody_dir / "state" / "results.txt", prefix=AS_NOBODY,
                   binary=setcap_binary).ready()
    assert "raw ICMP socket" in daemon.text()
    pid = daemon_pid(net)
    sets = status(pid)
    print("".join(f"{name}:\t{sets[name]}\n" for name in ("Uid", *SETS, "CapBnd", "NoNewPrivs")))
    assert sets["Uid"].split()[0] == "65534"
    assert_no_capability(pid)
    assert rtt_lines(daemon.wait_lines(3))
