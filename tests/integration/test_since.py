"""GET /latency-results?since=TIME: the lines from a time on, alone or with target= and tail=,
found in the file without reading it through."""
import datetime
import urllib.parse

from lab import TARGET_IP

# One probe at start, the next (of a second target) minutes later, after the test.
SLOW = ("--interval", "10m", "--timeout", "1s")
# Central European time, without the timezone database: summer (+02:00) in August.
TZ = {"TZ": "CET-1CEST,M3.5.0,M10.5.0/3"}
START = datetime.datetime(2025, 8, 12, 0, 0, 0)


def stamp(second):
    return (START + datetime.timedelta(seconds=second)).strftime("%Y-%m-%d %H:%M:%S")


def write_lines(tmp_path, count, names=(None,)):
    """`count` lines a second apart from 2025-08-12 00:00:00 local time, naming `names` in
    turn: the path, and each line with its second."""
    results = tmp_path / "state" / "results.txt"
    results.parent.mkdir()
    lines = []
    for i in range(count):
        name = names[i % len(names)]
        lines.append((i, f"[{stamp(i)}] {name + ' ' if name else ''}Latency: {i % 997 / 100:.2f} ms\n"))
    results.write_text("".join(line for _, line in lines))
    return results, lines


def get(net, query):
    status, _, body = net.request("GET", "/latency-results?" + query)
    return status, body


def test_since_takes_rfc_3339_and_the_lines_own_form(net, start, tmp_path):
    results, lines = write_lines(tmp_path, 5_000)
    daemon = start("--target", TARGET_IP, *SLOW, results=results, env=TZ).ready()
    own = daemon.wait_lines(len(lines) + 1)[-1] + "\n"  # the probe at start: now, after them all
    at = 1_234  # 00:20:34 local, 22:20:34 the day before in UTC
    for value in ("2025-08-12T00:20:34+02:00", "2025-08-11T22:20:34Z", "2025-08-11t22:20:33.5z",
                  "2025-08-11T23:50:34.000+01:30", "2025-08-12 00:20:34", "2025-08-12T00:20:34"):
        for encoded in {urllib.parse.quote_plus(value), urllib.parse.quote(value), value.replace(" ", "+")}:
            status, body = get(net, f"since={encoded}")
            # 33.5 s is 33 s: lines carry whole seconds, so the line at :33 is not after it.
            skip = 1 if "33.5" in value else 0
            want = "".join(line for second, line in lines[at - skip:]) + own
            assert (status, body) == (200, want), (value, encoded, body[:200])
    # Before every line: all of them; after every line: none.
    assert get(net, "since=2000-01-01T00:00:00Z") == (200, results.read_text())
    assert get(net, "since=2999-01-01+00:00:00") == (200, "")
    # With tail: of the lines from that time on, the last N.
    assert get(net, "since=2025-08-12+01:23:15&tail=3") == (200, "".join(l for _, l in lines[-2:]) + own)
    assert get(net, "since=2025-08-12+01:23:19&tail=3") == (200, "".join(l for _, l in lines[-1:]) + own)
    status, headers, body = net.request("HEAD", "/latency-results?since=2025-08-12+01:23:19")
    assert (status, body, int(headers["Content-Length"])) == (200, "", len(lines[-1][1] + own))


def test_since_combines_with_target_and_tail(net, start, tmp_path):
    results, lines = write_lines(tmp_path, 3_000, names=("a", "b", "gone"))
    daemon = start("--target", f"a={TARGET_IP}", "--target", f"b={TARGET_IP}", *SLOW,
                   results=results, env=TZ).ready()
    daemon.wait_lines(len(lines) + 1)
    text = results.read_text().splitlines(keepends=True)
    since = 2_000
    for target in ("a", "b"):
        after = [line for line in text[since:] if f"] {target} Latency" in line]
        assert len(after) > 300
        assert get(net, f"since={urllib.parse.quote(stamp(since))}&target={target}") == (200, "".join(after))
        for tail in (0, 1, 5):
            query = f"target={target}&tail={tail}&since=2025-08-11T22:33:20Z"  # 00:33:20 local: second 2000
            assert get(net, query) == (200, "".join(after[len(after) - tail:] if tail else [])), query
        assert get(net, f"since={urllib.parse.quote(stamp(since))}&target={target}&tail=100000") == (200, "".join(after))
    status, body = get(net, f"since={urllib.parse.quote(stamp(0))}&target=gone")
    assert status == 404 and "unknown target 'gone'" in body


def test_a_bad_since_gets_400_naming_it_and_the_daemon_serves_on(net, start, tmp_path):
    results, lines = write_lines(tmp_path, 10)
    start("--target", TARGET_IP, *SLOW, results=results, env=TZ).ready()
    for value in ("yesterday", "2025-08-12", "2025-02-29T00:00:00Z", "2025-08-12T06:56:53%2B25:00",
                  "1754981813", "%0A"):
        status, body = get(net, f"since={value}")
        assert status == 400 and body.count("\n") == 1, (value, body)
        assert f"got '{value}'" in body and "RFC 3339" in body and "2025-08-12+06:56:53" in body, body
    status, body = get(net, "since=2025-08-12+00:00:05&since=2025-08-12+00:00:05")
    assert (status, body) == (400, "bad request: since is given more than once\n")
    status, body = get(net, "since=2025-08-12+00:00:05")
    assert status == 200 and body.startswith(lines[5][1]), body


def io_counters(pid):
    return dict(row.split(": ") for row in open(f"/proc/{pid}/io").read().splitlines())


def test_a_recent_since_reads_little_of_a_large_file(net, start, tmp_path):
    # 200,000 lines (about 8 MB): the lines of the last minute are found by bisection, in a
    # few dozen small reads, where reading the file through would take all 8 MB.
    results, lines = write_lines(tmp_path, 200_000)
    size = results.stat().st_size
    daemon = start("--target", TARGET_IP, *SLOW, results=results, env=TZ).ready()
    daemon.wait_lines(len(lines) + 1)
    pid = daemon.proc.pid
    before = int(io_counters(pid)["rchar"])
    status, body = get(net, f"since={urllib.parse.quote(stamp(len(lines) - 60))}")
    read = int(io_counters(pid)["rchar"]) - before
    assert status == 200 and body.startswith(lines[-60][1]) and body.count("\n") == 61, body[:200]
    assert read < 256 * 1024, f"read {read} bytes of a {size}-byte file for the last minute's lines"
    # The counter does see a file read through: a since before every line sends them all.
    before = int(io_counters(pid)["rchar"])
    status, body = get(net, f"since={urllib.parse.quote(stamp(0))}")
    assert status == 200 and body == results.read_text()
    assert int(io_counters(pid)["rchar"]) - before >= size
