"""The operator's figures from the real daemon: JSON lines, /latency-stats against the results
file (also after a restart, refilled from the file), /metrics counts against the file, and
duplicate and late replies from a misbehaving target counted where they belong."""
import json
import re
import statistics

from lab import DAEMON_IP, PORT, TARGET_IP, wait_until

# Nobody has this address: probes to it are lost.
DEAD_IP = "198.51.100.9"
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d"


def get(net, path, headers=None):
    return net.request("GET", path, headers=headers)


def ndjson(body):
    return [json.loads(line) for line in body.splitlines()]


def rtt_of(line):
    match = re.search(r"Latency: (\d+\.\d\d) ms$", line)
    return float(match.group(1)) if match else None


def metric(text, series):
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no {series} in\n{text}")


def test_json_lines_give_address_result_and_the_same_round_trip_as_the_line(net, start):
    daemon = start("--target", f"up={TARGET_IP}", "--target", f"down={DEAD_IP}",
                   "--interval", "1h", "--timeout", "300ms").ready()
    status, headers, body = get(net, "/latency?format=json")
    assert status == 200 and headers["Content-Type"] == "application/x-ndjson", (status, headers, body)
    up, down = ndjson(body)
    assert re.fullmatch(STAMP, up["time"]), up
    assert (up["target"], up["address"], up["result"]) == ("up", TARGET_IP, "reply"), up
    assert (down["target"], down["address"], down["result"], down["rtt_ms"]) == ("down", DEAD_IP, "timeout", None)
    line = [line for line in daemon.lines() if " up Latency: " in line][-1]
    assert abs(up["rtt_ms"] - rtt_of(line)) <= 0.005, (up, line)

    status, headers, body = get(net, "/latency-results?format=json&target=up")
    records = ndjson(body)
    file_lines = [line for line in daemon.lines() if " up Latency: " in line]
    assert status == 200 and len(records) == len(file_lines) >= 2, (records, file_lines)
    assert [r["rtt_ms"] for r in records] == [rtt_of(line) for line in file_lines]
    assert all(r["address"] is None and r["target"] == "up" for r in records), records
    assert [r["time"][11:19] for r in records] == [line[12:20] for line in file_lines]
    status, _, body = get(net, "/latency-results?format=json&tail=1")
    assert [r["target"] for r in ndjson(body)] == [daemon.lines()[-1].split()[2]]


def test_an_icmp_error_is_an_error_in_json_and_in_metrics_but_a_timeout_line(net, start, responder):
    responder("--mode", "unreachable")
    daemon = start("--target", TARGET_IP, "--interval", "1h", "--timeout", "1s").ready()
    _, _, body = get(net, "/latency?format=json")
    (record,) = ndjson(body)
    assert (record["result"], record["error"], record["rtt_ms"]) == ("error", "host-unreachable", None), record
    assert record["target"] == TARGET_IP
    assert daemon.lines()[-1].endswith("Latency: timeout")
    _, _, text = get(net, "/metrics")
    assert metric(text, f'latency_probes_total{{result="error",target="{TARGET_IP}"}}') >= 1, text
    assert metric(text, f'latency_target_up{{address="{TARGET_IP}",target="{TARGET_IP}"}}') == 0
    _, _, body = get(net, "/latency-stats?format=json")
    minute = json.loads(body)["targets"][0]["windows"]["1m"]
    assert minute["errors"].get("host-unreachable", 0) >= 1 and minute["rtt_ms"] is None, minute


def test_metrics_count_exactly_the_lines_written(net, start):
    daemon = start("--target", f"up={TARGET_IP}", "--target", f"down={DEAD_IP}",
                   "--interval", "1h", "--timeout", "200ms").ready()
    for _ in range(5):
        assert get(net, "/latency")[0] == 200
    status, headers, text = get(net, "/metrics")
    assert status == 200 and headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    lines = daemon.lines()
    for name in ("up", "down"):
        mine = [line for line in lines if f" {name} Latency: " in line]
        replies = sum(1 for line in mine if rtt_of(line) is not None)
        assert metric(text, f'latency_probes_total{{result="reply",target="{name}"}}') == replies, (name, mine)
        assert metric(text, f'latency_probes_total{{result="timeout",target="{name}"}}') == len(mine) - replies
        assert metric(text, f'latency_rtt_seconds_count{{target="{name}"}}') == replies
    assert metric(text, f'latency_target_up{{address="{TARGET_IP}",target="up"}}') == 1
    assert metric(text, f'latency_target_up{{address="{DEAD_IP}",target="down"}}') == 0
    assert metric(text, "latency_results_write_errors_total") == 0
    assert metric(text, "process_resident_memory_bytes") > 0
    assert metric(text, "process_open_fds") > 0


def test_stats_agree_with_the_file_and_survive_a_restart(net, start):
    args = ("--target", TARGET_IP, "--interval", "100ms", "--timeout", "90ms")
    daemon = start(*args).ready()
    daemon.wait_lines(30)
    daemon.stop()
    # A line of the other form, as a daemon with several targets wrote it: skipped, counted.
    with open(daemon.results, "a") as file:
        file.write("[2025-08-12 06:56:53] other Latency: 0.27 ms\n")
    written = daemon.lines()
    restarted = start(*args, "--interval", "1h").ready()
    status, _, body = get(net, "/latency-stats", headers={"Accept": "application/json"})
    assert status == 200, body
    stats = json.loads(body)
    assert stats["refill"] == {"used": len(written) - 1, "skipped": 1}, stats["refill"]
    day = stats["targets"][0]["windows"]["24h"]
    # The refill, and the one scheduled probe of the restarted daemon (it may still be out).
    rtts = [rtt_of(line) for line in written[:-1] if rtt_of(line) is not None]
    assert day["sent"] in (len(written) - 1, len(written)), day
    assert day["replies"] >= len(rtts), day
    median = statistics.median(rtts)
    # Within the sketch's 1 %, and the file's 0.01 ms rounding.
    assert abs(day["rtt_ms"]["p50"] - median) <= 0.01 * median + 0.01, (day, median)
    assert day["rtt_ms"]["min"] <= min(rtts) + 0.01 and day["rtt_ms"]["max"] >= max(rtts) - 0.01, day

    status, headers, text = get(net, "/latency-stats")
    assert headers["Content-Type"].startswith("text/plain"), headers
    rows = text.splitlines()
    assert rows[0].split()[:3] == ["target", "address", "window"], rows
    assert [row.split()[2] for row in rows[1:4]] == ["1m", "1h", "24h"], rows
    restarted.stop()


def test_duplicate_and_late_replies_are_counted_against_their_target(net, start, responder):
    responder("--mode", "duplicate")
    start("--target", f"t={TARGET_IP}", "--interval", "200ms", "--timeout", "150ms").ready()

    def duplicates():
        text = get(net, "/metrics")[2]
        return metric(text, 'latency_duplicate_replies_total{target="t"}') >= 3
    wait_until(duplicates, 10, lambda: get(net, "/metrics")[2])
    minute = json.loads(get(net, "/latency-stats?format=json")[2])["targets"][0]["windows"]["1m"]
    assert minute["duplicates"] >= 3 and minute["loss_percent"] == 0.0, minute


def test_late_replies_are_counted_and_never_become_round_trips(net, start, responder):
    responder("--delay-ms", "150")
    start("--target", f"t={TARGET_IP}", "--interval", "300ms", "--timeout", "100ms").ready()

    def late():
        return metric(get(net, "/metrics")[2], 'latency_late_replies_total{target="t"}') >= 3
    wait_until(late, 10, lambda: get(net, "/metrics")[2])
    text = get(net, "/metrics")[2]
    assert metric(text, 'latency_rtt_seconds_count{target="t"}') == 0, "a late reply is no round trip"
    minute = json.loads(get(net, "/latency-stats?format=json")[2])["targets"][0]["windows"]["1m"]
    assert minute["late"] >= 3 and minute["replies"] == 0 and minute["loss_percent"] == 100.0, minute


def test_the_page_links_every_endpoint_and_draws_a_chart_per_target(net, start):
    start("--target", f"a={TARGET_IP}", "--target", f"b={DEAD_IP}", "--interval", "200ms",
          "--timeout", "100ms").ready()
    status, headers, body = get(net, "/")
    page = body
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8", (status, headers)
    assert page.count('<svg class="chart"') == 2, page
    for path in ("/latency", "/latency-results", "/latency-stats", "/metrics"):
        assert f'href="{path}' in page, path
    assert "<script" not in page
    status, headers, body = net.request("HEAD", "/")
    assert status == 200 and body == "" and int(headers["Content-Length"]) > 1000, headers
    assert f"http://{DAEMON_IP}:{PORT}" not in page, "links are relative, so a proxy can serve them"
