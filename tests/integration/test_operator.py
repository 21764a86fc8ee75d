"""The operator's view through the clients operators use: `promtool check metrics` and a real
Prometheus server on /metrics (the shipped alerts.yml loaded), headless Chromium on the page
at `/`, and a JSON parser on the JSON endpoints; and how those endpoints answer HEAD, a wrong
method, path or query."""
import calendar
import html.parser
import io
import json
import math
import re
import subprocess
import time
import urllib.parse
from datetime import datetime, timezone
from pathlib import Path

import pytest
from PIL import Image

from browser import DevTools, dump_dom
from lab import DAEMON_IP, PORT, ROOT, TARGET_IP, Process, wait_until

SECOND_IP = "198.51.100.3"
# The responder drops what is sent here (--drop-to): a target that never answers.
LOST_IP = "198.51.100.4"
# Nobody has this address: probes to it are lost without a responder.
DEAD_IP = "198.51.100.9"
# The daemon writes its lines in UTC, so that the test can read their times.
UTC = {"TZ": "UTC"}
FAST = ("--interval", "250ms", "--timeout", "200ms")
TIMEOUT_S = 0.2
EXPOSITION = "text/plain; version=0.0.4; charset=utf-8"
# latency_rtt_seconds's upper bounds, as exposed.
BUCKETS = ["5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
           "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
FAMILIES = {
    "latency_rtt_seconds": "histogram",
    "latency_probes_total": "counter",
    "latency_duplicate_replies_total": "counter",
    "latency_late_replies_total": "counter",
    "latency_ignored_packets_total": "counter",
    "latency_last_rtt_seconds": "gauge",
    "latency_last_reply_timestamp_seconds": "gauge",
    "latency_target_up": "gauge",
    "latency_results_write_errors_total": "counter",
    "latency_build_info": "gauge",
    "process_resident_memory_bytes": "gauge",
    "process_cpu_seconds_total": "counter",
    "process_open_fds": "gauge",
    "process_start_time_seconds": "gauge",
}
# Where a line of either form keeps its time, target name (named form) and outcome.
RESULT_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\] (?:(\S+) )?Latency: (?:(\d+\.\d\d) ms|(timeout))$")
OUTPUT = ROOT / "tests" / "output" / "operator"


def cargo_version():
    return re.search(r'^version = "([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M).group(1)


# --- the results file, read as the test's reference ------------------------------------------

def read_results(path, lone=None):
    """[(epoch seconds, target, rtt in ms or None)] of the results file's lines; `lone` names
    the target of seed-form lines (one target)."""
    entries = []
    for line in Path(path).read_text().splitlines():
        match = RESULT_LINE.match(line)
        assert match, f"not a results line: {line!r}"
        stamp, name, rtt, _ = match.groups()
        epoch = calendar.timegm(time.strptime(stamp, "%Y-%m-%d %H:%M:%S"))
        entries.append((epoch, name or lone, float(rtt) if rtt else None))
    return entries


def stamp(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def results_line(epoch, name, rtt_ms):
    outcome = "timeout" if rtt_ms is None else f"{rtt_ms:.2f} ms"
    return f"[{stamp(epoch)}] {name + ' ' if name else ''}Latency: {outcome}"


# --- the exposition format, parsed -------------------------------------------------------------

LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$")


def parse_exposition(text):
    """({family: type}, [(name, {label: value}, value)]) of a text exposition (0.0.4)."""
    types, samples = {}, []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(None, 3)
            types[family] = kind
        elif line.startswith("#") or not line.strip():
            continue
        else:
            match = SAMPLE.match(line)
            assert match, f"not a sample line: {line!r}"
            name, labels_text, value = match.groups()
            labels, rest = {}, labels_text or ""
            while rest.strip():
                label = LABEL.match(rest)
                assert label, f"bad labels in {line!r}"
                labels[label.group(1)] = label.group(2)
                rest = rest[label.end():]
            samples.append((name, labels, float(value)))
    return types, samples


def exposition_faults(text):
    """What is wrong in a text exposition that `promtool check metrics` lets through: a sample
    given twice (same name and labels), and a histogram whose buckets are not the documented
    ones ending in +Inf, not cumulative, or whose +Inf bucket is not its _count."""
    types, samples = parse_exposition(text)
    faults, seen = [], set()
    for name, labels, _ in samples:
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            faults.append(f"duplicate sample {name}{labels}")
        seen.add(key)
    values = {(name, tuple(sorted(labels.items()))): value for name, labels, value in samples}
    for family in (f for f, kind in types.items() if kind == "histogram"):
        series = {}
        for name, labels, value in samples:
            if name == f"{family}_bucket":
                rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
                series.setdefault(rest, []).append((labels.get("le"), value))
        for rest, buckets in series.items():
            bounds = [le for le, _ in buckets]
            if "+Inf" not in bounds:
                faults.append(f"{family}{dict(rest)} has no +Inf bucket")
                continue
            if family == "latency_rtt_seconds" and [float(b) for b in bounds] != [float(b) for b in BUCKETS]:
                faults.append(f"{family}{dict(rest)} buckets {bounds}, not {BUCKETS}")
            counts = [value for _, value in sorted(buckets, key=lambda b: float(b[0]))]
            if counts != sorted(counts):
                faults.append(f"{family}{dict(rest)} buckets not cumulative: {counts}")
            if values.get((f"{family}_count", rest)) != counts[-1]:
                faults.append(f"{family}{dict(rest)}: +Inf bucket {counts[-1]}, _count {values.get((f'{family}_count', rest))}")
            if (f"{family}_sum", rest) not in values:
                faults.append(f"{family}{dict(rest)} has no _sum")
    return faults


def test_the_exposition_checker_catches_what_promtool_lets_through():
    good = ("# HELP h_seconds A histogram.\n# TYPE h_seconds histogram\n"
            'h_seconds_bucket{t="a",le="1"} 1\nh_seconds_bucket{t="a",le="+Inf"} 2\n'
            'h_seconds_sum{t="a"} 3\nh_seconds_count{t="a"} 2\n'
            "# HELP c_total A counter.\n# TYPE c_total counter\n" 'c_total{t="a"} 1\n')
    assert exposition_faults(good) == []
    assert exposition_faults(good + 'c_total{t="a"} 1\n') == ["duplicate sample c_total{'t': 'a'}"]
    no_inf = good.replace('h_seconds_bucket{t="a",le="+Inf"} 2\n', "")
    assert exposition_faults(no_inf) == ["h_seconds{'t': 'a'} has no +Inf bucket"]
    assert "not cumulative" in " ".join(exposition_faults(good.replace('le="1"} 1', 'le="1"} 5')))
    assert "_count 3.0" in " ".join(exposition_faults(good.replace('h_seconds_count{t="a"} 2', 'h_seconds_count{t="a"} 3')))
    # What this checker is for: promtool passes both.
    for text in (good + 'c_total{t="a"} 1\n', no_inf):
        result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        assert (result.returncode, result.stderr) == (0, ""), result.stderr


# --- /metrics and promtool ----------------------------------------------------------------------

def scrape(net):
    status, headers, body = net.request("GET", "/metrics")
    assert status == 200, body
    assert headers["Content-Type"] == EXPOSITION, headers
    return body


def lines_by_target(daemon, names, count):
    """Waits until each of `names` has `count` lines or more in the results file."""
    lone = names[0] if len(names) == 1 else None

    def enough():
        entries = read_results(daemon.results, lone) if daemon.results.exists() else []
        return all(sum(1 for _, name, _ in entries if name == n) >= count for n in names)
    wait_until(enough, 10, lambda: f"{count} lines for each of {names}: {daemon.lines()}\n{daemon.text()}")


@pytest.mark.parametrize("targets", [
    [(TARGET_IP, TARGET_IP, TARGET_IP, True)],
    [("a", f"a={TARGET_IP}", TARGET_IP, True), ("b", f"b={SECOND_IP}", SECOND_IP, True),
     ("dead", f"dead={DEAD_IP}", DEAD_IP, False)],
], ids=["one-target", "three-targets"])
def test_metrics_pass_promtool_and_hold_every_family_once_per_target(net, start, targets):
    """targets: (NAME, --target value, address, answers)."""
    net.add_address(net.target, SECOND_IP)
    names = [name for name, *_ in targets]
    daemon = start(*[arg for _, flag, _, _ in targets for arg in ("--target", flag)], *FAST, env=UTC).ready()
    lines_by_target(daemon, names, 3)
    text = scrape(net)
    checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert (checked.returncode, checked.stderr) == (0, ""), f"{checked.stderr}\n{text}"
    assert exposition_faults(text) == [], text

    types, samples = parse_exposition(text)
    for family, kind in FAMILIES.items():
        assert types.get(family) == kind, f"{family}: {types.get(family)}, not {kind}\n{text}"
    assert [labels for name, labels, _ in samples if name == "latency_build_info"] == [{"version": cargo_version()}]
    labelled = {labels["target"] for name, labels, _ in samples if "target" in labels}
    assert labelled == set(names), text
    up = {(labels["target"], labels.get("address")): value for name, labels, value in samples
          if name == "latency_target_up"}
    assert up == {(name, address): (1.0 if answers else 0.0) for name, _, address, answers in targets}, up
    for name, _, _, answers in targets:
        replies = sum(value for n, labels, value in samples
                      if n == "latency_probes_total" and labels == {"target": name, "result": "reply"})
        assert replies >= 3 if answers else replies == 0, (name, replies)


# --- a real Prometheus server ---------------------------------------------------------------------

class Prometheus(Process):
    """Debian's Prometheus server in the daemon's namespace, on its loopback, scraping the
    daemon every second and evaluating the shipped alerts.yml every second."""
    PORT = 9090

    def __init__(self, net, tmp):
        config = tmp / "prometheus.yml"
        # JSON is YAML.
        config.write_text(json.dumps({
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ROOT / "debian" / "examples" / "alerts.yml")],
            "scrape_configs": [{"job_name": "latency", "static_configs": [{"targets": [f"{DAEMON_IP}:{PORT}"]}]}],
        }))
        super().__init__(["ip", "netns", "exec", net.daemon, "prometheus", f"--config.file={config}",
                          f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address=127.0.0.1:{self.PORT}"],
                         tmp / "prometheus.log")
        self.net = net

    def get(self, path):
        status, _, body = self.net.request("GET", path, host="127.0.0.1", port=self.PORT)
        return status, body

    def ready(self):
        def answers():
            assert self.proc.poll() is None, f"prometheus exited:\n{self.text()}"
            try:
                return self.get("/-/ready")[0] == 200
            except OSError:
                return False
        wait_until(answers, 20, lambda: f"prometheus ready:\n{self.text()}")
        return self

    def query(self, promql):
        status, body = self.get("/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        answer = json.loads(body)
        assert status == 200 and answer["status"] == "success", (promql, body)
        return answer["data"]["result"]

    def samples(self, selector, span="10m"):
        """The raw samples [(time, value)] of the one series `selector` picks."""
        result = self.query(f"{selector}[{span}]")
        assert len(result) <= 1, result
        return [(float(t), float(v)) for t, v in result[0]["values"]] if result else []

    def alerts(self):
        status, body = self.get("/api/v1/alerts")
        assert status == 200, body
        return {(a["labels"]["alertname"], a["labels"].get("target"), a["state"])
                for a in json.loads(body)["data"]["alerts"]}


def bucket_of(seconds):
    """(lower, upper) bounds of the latency_rtt_seconds bucket holding `seconds`."""
    bounds = [0.0] + [float(b) for b in BUCKETS]
    for lower, upper in zip(bounds, bounds[1:]):
        if seconds <= upper:
            return lower, upper
    raise AssertionError(seconds)


def test_prometheus_scrapes_counts_and_a_median_that_agree_with_the_results_file(net, start, responder, tmp_path,
                                                                                   processes):
    net.add_address(net.target, LOST_IP)
    # 15 ms, the middle of the 10-25 ms bucket: the machine's load only adds to it.
    answering = responder("--delay-ms", "15", "--drop-to", LOST_IP)
    daemon = start("--target", f"ok={TARGET_IP}", "--target", f"lost={LOST_IP}", *FAST, env=UTC).ready()
    prometheus = Prometheus(net, tmp_path)
    processes.append(prometheus)
    prometheus.ready()
    ok_replies = 'latency_probes_total{job="latency",target="ok",result="reply"}'
    lost_timeouts = 'latency_probes_total{job="latency",target="lost",result="timeout"}'
    wait_until(lambda: len(prometheus.samples(ok_replies)) >= 6 and len(prometheus.samples(lost_timeouts)) >= 6,
               30, lambda: f"6 scrapes of each series:\n{prometheus.text()}")

    # While probes run, a scrape cannot be matched to the file's lines exactly: a line's
    # time is its probe's send time, to the second, and it is counted once the probe ended.
    # What a scrape at t counts was sent by t (plus the scrape's own time, under a second),
    # and holds every probe that ended before t (sent a second plus the timeout before, with a
    # second's slack for a late turn of the prober's loop).
    entries = read_results(daemon.results)
    for selector, name, replied in ((ok_replies, "ok", True), (lost_timeouts, "lost", False)):
        stamps = [epoch for epoch, n, rtt in entries if n == name and (rtt is not None) == replied]
        samples = prometheus.samples(selector)
        for at, value in samples:
            upper = sum(1 for s in stamps if s <= at + 1)
            lower = sum(1 for s in stamps if s + 1 + TIMEOUT_S + 1 <= at)
            assert lower <= value <= upper, f"{selector} at {at}: {value}, the file says {lower}..{upper}"
        assert samples[-1][1] >= 10, samples

    # The shipped rules, on the real series: the lost target's alerts pending (their `for:`
    # has minutes to run), none for the answering one.
    wait_until(lambda: {("LatencyTargetDown", "lost", "pending"), ("LatencyPacketLoss", "lost", "pending")}
               <= prometheus.alerts(), 15, lambda: prometheus.alerts())
    assert not [a for a in prometheus.alerts() if a[1] == "ok"], prometheus.alerts()

    # Once replies stop, their count no longer moves: then the scrape and the file agree
    # exactly. Three timeouts after the last reply: no reply is still on its way.
    answering.kill()

    def replies_over():
        outcomes = [rtt for _, name, rtt in read_results(daemon.results) if name == "ok"]
        last = max(i for i, rtt in enumerate(outcomes) if rtt is not None)
        return len(outcomes) - 1 - last >= 3
    wait_until(replies_over, 10, lambda: daemon.lines()[-10:])
    settled = time.time()
    entries = read_results(daemon.results)
    rtts = sorted(rtt for _, name, rtt in entries if name == "ok" and rtt is not None)
    assert not [rtt for _, name, rtt in entries if name == "lost" and rtt is not None]
    wait_until(lambda: prometheus.samples(ok_replies, "5s") and prometheus.samples(ok_replies, "5s")[-1][0] > settled,
               10, "a scrape after the replies stopped")
    assert prometheus.samples(ok_replies, "5s")[-1][1] == len(rtts)
    count = prometheus.query('latency_rtt_seconds_count{job="latency",target="ok"}')
    assert float(count[0]["value"][1]) == len(rtts), count
    lost_replies = prometheus.query('latency_probes_total{job="latency",target="lost",result="reply"}')
    assert all(float(series["value"][1]) == 0 for series in lost_replies), lost_replies

    # histogram_quantile(0.5) finds the bucket where the count reaches half the replies:
    # the one that holds the file's reply of that rank.
    median = prometheus.query('histogram_quantile(0.5, latency_rtt_seconds_bucket{job="latency",target="ok"})')
    assert len(median) == 1, median
    lower, upper = bucket_of(rtts[math.ceil(len(rtts) / 2) - 1] / 1000)
    assert lower <= float(median[0]["value"][1]) <= upper, (median, lower, upper, rtts)
    print(f"{len(rtts)} replies in the file and in Prometheus; median {rtts[math.ceil(len(rtts) / 2) - 1]} ms "
          f"in the file, {float(median[0]['value'][1]) * 1000:.2f} ms from the histogram ({lower}..{upper} s)")


# --- the page in a browser -------------------------------------------------------------------------

class Charts(html.parser.HTMLParser):
    """Per `section.target` of a page: its charts, the points of its median lines, its smoke
    paths and its loss marks."""

    def __init__(self, page):
        super().__init__()
        self.sections, self.current = {}, None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if tag == "section" and "target" in classes:
            self.current = self.sections.setdefault(attrs.get("data-target"), {
                "charts": 0, "points": 0, "smoke": 0, "loss": 0})
        elif self.current is None:
            return
        elif tag == "svg" and "chart" in classes:
            self.current["charts"] += 1
        elif tag == "polyline" and "median" in classes:
            self.current["points"] += len((attrs.get("points") or "").split())
        elif tag == "path" and "smoke" in classes:
            self.current["smoke"] += 1
        elif tag == "rect" and "loss" in classes:
            self.current["loss"] += 1

    def handle_endtag(self, tag):
        if tag == "section":
            self.current = None


BUCKET = 300
DAY = 86_400


def expected_charts(entries, now, names):
    """Per target, from the file's lines: the 5-minute buckets of the last 24 hours holding a
    reply (two points each: the median is a step across its bucket) and those holding a lost
    probe (one loss mark each)."""
    expected = {}
    for name in names:
        recent = [(epoch, rtt) for epoch, n, rtt in entries if n == name and now - DAY < epoch <= now]
        expected[name] = {"points": 2 * len({e // BUCKET for e, rtt in recent if rtt is not None}),
                          "loss": len({e // BUCKET for e, rtt in recent if rtt is None})}
    return expected


def history(names, now):
    """Lines from before the daemon starts: per target, groups of three lines in one minute,
    each group in the middle of a 5-minute bucket of its own, the newest 30 minutes old, one
    group older than 24 hours that the chart must leave out; one target (the last) loses some
    probes. Returns the lines and the number of them within 24 hours."""
    hours = {0: [26, 23, 12, 6, 2, 0.5], 1: [26, 20, 3], 2: [26, 22, 9, 1]}
    lines, recent = [], 0
    for index, name in enumerate(names):
        for age in hours[index % 3]:
            base = (int(now - age * 3600) // BUCKET) * BUCKET + 120
            for offset, rtt in ((0, 0.31), (10, 0.47 if index != 2 else None), (20, 0.29 if age < 5 else None)):
                lines.append((base + offset, name, rtt))
                recent += now - DAY < base + offset
    lines.sort()
    lone = len(names) == 1
    return [results_line(epoch, None if lone else name, rtt) for epoch, name, rtt in lines], recent


def chart_area_colours(png, boxes):
    """Per box: how many colours its pixels have, and how many of its pixels are in colour
    (not grey, as axes, grid and labels are)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    found = []
    for x, y, width, height in boxes:
        colours = image.crop((round(x), round(y), round(x + width), round(y + height))).getcolors(maxcolors=1 << 24)
        found.append((len(colours), sum(n for n, rgb in colours if max(rgb) - min(rgb) > 40)))
    return found


@pytest.mark.parametrize("targets", [
    [(TARGET_IP, TARGET_IP)],
    [("a", f"a={TARGET_IP}"), ("b", f"b={SECOND_IP}"), ("lost", f"lost={LOST_IP}")],
], ids=["one-target", "three-targets"])
def test_the_page_draws_one_chart_per_target_with_a_point_per_bucket_and_loss_in_colour(
        net, start, responder, tmp_path, targets):
    net.add_address(net.target, SECOND_IP, LOST_IP)
    responder("--drop-to", LOST_IP)
    names = [name for name, _ in targets]
    results = tmp_path / "state" / "results.txt"
    results.parent.mkdir()
    lines, recent = history(names, time.time())
    results.write_text("".join(line + "\n" for line in lines))
    daemon = start(*[arg for _, flag in targets for arg in ("--target", flag)], "--interval", "1s",
                   "--timeout", "500ms", results=results, env=UTC).ready()
    lone = names[0] if len(names) == 1 else None
    live_lines(daemon, names, len(lines), lone)

    status, _, body = net.request("GET", "/latency-stats?format=json")
    assert status == 200, body
    assert json.loads(body)["refill"] == {"used": recent, "skipped": 0}, body

    url = f"http://{DAEMON_IP}:{PORT}/"
    # The lines may gain a bucket (a 5-minute boundary passed) while the page is read: the
    # page matches the file as it was before or after.
    before = expected_charts(read_results(results, lone), time.time(), names)
    charts = Charts(dump_dom(net, url)).sections
    after = expected_charts(read_results(results, lone), time.time(), names)
    assert set(charts) == set(names), charts
    for name in names:
        got = charts[name]
        assert got["charts"] == 1, (name, got)
        assert {"points": got["points"], "loss": got["loss"]} in (before[name], after[name]), (name, got, before)
        assert got["smoke"] >= 1, (name, got)
    if len(names) > 1:
        # Its live probes are lost too: the current bucket is marked besides the history's.
        assert charts["lost"]["loss"] >= 4, charts

    OUTPUT.mkdir(parents=True, exist_ok=True)
    shot = OUTPUT / f"page-{len(names)}-target{'s' if len(names) > 1 else ''}.png"
    with DevTools(net, 1280, 900) as browser:
        browser.load(url)
        boxes = browser.boxes("section.target svg.chart")
        png = browser.screenshot()
    shot.write_bytes(png)
    print(f"screenshot: {shot}, chart boxes {boxes}")
    assert len(boxes) == len(names) and all(w > 100 and h > 30 for _, _, w, h in boxes), boxes
    # Each chart has a median, smoke and loss marks in colour.
    colours = chart_area_colours(png, boxes)
    print(f"colours, and pixels in colour, per chart: {colours}")
    assert all(count > 1 and coloured >= 50 for count, coloured in colours), f"charts of {shot}: {colours}"


def live_lines(daemon, names, skip, lone):
    """Waits until, after the file's first `skip` lines, each of `names` has a reply and the
    lost target a lost probe; fails at once if another target loses one."""
    def enough():
        entries = read_results(daemon.results, lone)[skip:]
        assert not [e for e in entries if e[1] != "lost" and e[2] is None], f"a target lost a probe: {entries}"
        return all(any(n == name and (rtt is None) == (name == "lost") for _, n, rtt in entries) for name in names)
    wait_until(enough, 10, lambda: f"a live line for each of {names}: {daemon.lines()[skip:]}\n{daemon.text()}")


# --- JSON, HEAD and errors ------------------------------------------------------------------------

def test_json_endpoints_give_the_lines_data_to_a_json_parser(net, start):
    daemon = start("--target", f"a={TARGET_IP}", "--target", f"dead={DEAD_IP}", *FAST, env=UTC).ready()
    lines_by_target(daemon, ["a", "dead"], 3)
    conn = net.connect()
    conn.request("GET", "/latency-results?format=json")
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    assert response.status == 200 and response.getheader("Content-Type") == "application/x-ndjson", body
    # Read after the answer: the file may have grown since, never changed what it had.
    entries = read_results(daemon.results)
    got = [json.loads(line) for line in body.splitlines()]
    assert 6 <= len(got) <= len(entries), (got, entries)
    for record, (epoch, name, rtt) in zip(got, entries):
        assert record["target"] == name and record["rtt_ms"] == rtt, (record, epoch, name, rtt)
        assert datetime.fromisoformat(record["time"]).timestamp() == epoch, record
        # The file keeps neither the address nor which lost probes an ICMP error ended.
        assert record["result"] == ("reply" if rtt is not None else "timeout") and record["address"] is None, record
    # A probe made for the caller: its address known.
    status, headers, body = net.request("GET", "/latency?format=json&target=a")
    record = json.loads(body)
    assert status == 200 and headers["Content-Type"] == "application/x-ndjson", body
    assert (record["target"], record["address"], record["result"]) == ("a", TARGET_IP, "reply"), record
    assert record["rtt_ms"] > 0 and datetime.fromisoformat(record["time"]).utcoffset().total_seconds() == 0, record
    conn = net.connect()
    conn.request("GET", "/latency-stats", headers={"Accept": "application/json"})
    response = conn.getresponse()
    stats = json.loads(response.read())
    conn.close()
    assert [t["target"] for t in stats["targets"]] == ["a", "dead"], stats
    assert set(stats["targets"][0]["windows"]) == {"1m", "1h", "24h"}, stats
    assert stats["targets"][1]["windows"]["1m"]["loss_percent"] == 100, stats


def test_the_new_endpoints_answer_head_and_each_error_with_a_one_line_reason(net, start):
    start("--target", TARGET_IP, "--interval", "60s", "--timeout", "1s").ready()
    for path in ("/metrics", "/latency-stats", "/latency-stats?format=json", "/"):
        status, get_headers, body = net.request("GET", path)
        assert status == 200 and body, (path, status)
        status, headers, body = net.request("HEAD", path)
        assert (status, body) == (200, ""), (path, status, body)
        assert headers["Content-Type"] == get_headers["Content-Type"], (path, headers, get_headers)
    cases = [
        ("POST", "/metrics", 405, "method not allowed"),
        ("PUT", "/latency-stats", 405, "method not allowed"),
        ("POST", "/", 405, "method not allowed"),
        ("GET", "/metrics/extra", 404, "not found"),
        ("GET", "/latency-stats/1m", 404, "not found"),
        ("GET", "/index.html", 404, "not found"),
        ("GET", "/metrics?format=bogus", 400, "format"),
        ("GET", "/latency-stats?format=bogus", 400, "bogus"),
        ("GET", "/latency?format=bogus", 400, "bogus"),
        ("GET", "/latency-results?format=xml", 400, "xml"),
        ("GET", "/latency-stats?verbose=1", 400, "verbose"),
    ]
    for method, path, status, reason in cases:
        got, headers, body = net.request(method, path)
        assert got == status, (method, path, got, body)
        assert reason in body and body.count("\n") == 1, (method, path, body)
        if status == 405:
            assert headers["Allow"] == "GET, HEAD", (path, headers)
