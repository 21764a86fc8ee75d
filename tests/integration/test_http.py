"""The HTTP interface as a client sees it: routing, status codes, HEAD, tails, streaming,
and clients that misbehave."""
import http.client
import os
import re
import signal
import socket
import time
from pathlib import Path

import pytest

from callers import timed_calls
from lab import DAEMON_IP, LINE, NOBODY, PORT, TARGET_IP, run, wait_until

SLOW = ("--target", TARGET_IP, "--interval", "60s", "--timeout", "1s")
# For tests of what many connections from one client do to the threads: past the 32 a client
# may hold by default, the rest would be refused before they reached what is tested.
UNCAPPED = ("--max-conns-per-client", "1000")


def test_routing_answers_each_case_with_a_one_line_reason(net, start):
    start(*SLOW).ready()
    cases = [
        ("POST", "/latency", 405, "method not allowed"),
        ("DELETE", "/latency-results", 405, "method not allowed"),
        ("GET", "/index.html", 404, "not found"),
        ("POST", "/", 405, "method not allowed"),
        ("PUT", "/metrics", 405, "method not allowed"),
        ("DELETE", "/latency-stats", 405, "method not allowed"),
        ("GET", "/metrics?format=json", 400, "unknown query parameter 'format'; /metrics takes no query parameter"),
        ("GET", "/latency-stats?format=xml", 400, "format must be json or text, got 'xml'"),
        ("GET", "/?format=json", 400, "unknown query parameter 'format'; / takes no query parameter"),
        ("GET", "/latency/extra", 404, "not found"),
        ("GET", "/latency?verbose=1", 400, "unknown query parameter 'verbose'"),
        ("GET", "/latency-results?tail=abc", 400, "tail must be a whole number of lines, got 'abc'"),
        ("GET", "/latency-results?lines=3", 400, "unknown query parameter 'lines'"),
    ]
    for method, path, status, reason in cases:
        got, headers, body = net.request(method, path)
        assert got == status, (method, path, got, body)
        assert reason in body and body.count("\n") == 1, body
        if status == 405:
            assert headers["Allow"] == "GET, HEAD"


def test_head_sends_headers_only_and_no_probe(net, start, responder):
    process = responder()
    daemon = start(*SLOW).ready()
    daemon.wait_lines(1)
    probes = len(process.requests())
    status, headers, body = net.request("HEAD", "/latency")
    assert (status, body) == (200, "")
    assert len(process.requests()) == probes, "HEAD /latency sends no probe"
    status, headers, body = net.request("HEAD", "/latency-results")
    assert (status, body) == (200, "")
    assert int(headers["Content-Length"]) == daemon.results.stat().st_size


def test_head_latency_claims_no_length_get_would_not_send(net, start):
    # GET's body depends on the probe (the number's width, "timeout", an error), which HEAD
    # does not send: HEAD cannot know its length, so it must claim none (RFC 9110, section
    # 8.6), nor a chunked coding GET does not use. Clients still find where it ends.
    start(*SLOW).ready()
    conn = net.connect()
    conn.request("HEAD", "/latency")
    head = conn.getresponse()
    head.read()
    conn.request("GET", "/latency")
    get = conn.getresponse()
    body = get.read().decode()
    conn.close()
    assert head.status == get.status == 200 and re.match(LINE, body.strip()), body
    assert head.getheader("Content-Length") is None, head.getheaders()
    assert head.getheader("Transfer-Encoding") is None, head.getheaders()
    assert int(get.getheader("Content-Length")) == len(body) and get.getheader("Transfer-Encoding") is None
    conn = net.connect()
    conn.sock.sendall(b"HEAD /latency HTTP/1.0\r\n\r\n")
    reply = reply_then_close(conn.sock)
    conn.close()
    assert reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n")[0], reply
    assert b"\r\ncontent-length:" not in reply.lower() and reply.endswith(b"\r\n\r\n"), reply


def test_results_are_the_file_and_tail_its_last_lines(net, start):
    daemon = start(*SLOW).ready()
    for _ in range(5):
        net.request("GET", "/latency")
    lines = daemon.wait_lines(6)
    status, _, body = net.request("GET", "/latency-results")
    assert status == 200 and body == daemon.results.read_text()
    assert all(re.match(LINE, line) for line in body.splitlines())
    for n, expected in ((2, lines[-2:]), (0, []), (100, lines)):
        status, _, body = net.request("GET", f"/latency-results?tail={n}")
        assert status == 200 and body.splitlines() == expected, (n, body)


def test_keep_alive_answers_over_1_kib_are_not_held_back_for_a_delayed_ack(net, start, tmp_path):
    # The server writes through a 1 KiB buffer, so a longer answer ends in a small segment.
    # Without TCP_NODELAY the kernel held that segment back until the client's delayed ACK,
    # about 40 ms later, on every call after the first on a keep-alive connection.
    results = tmp_path / "state" / "results.txt"
    results.parent.mkdir()
    results.write_text("[2025-08-12 06:56:53] Latency: 0.27 ms\n" * 200)
    start(*SLOW, results=results).ready()
    calls = timed_calls(net.daemon, DAEMON_IP, PORT, "/latency-results?tail=30", callers=1,
                        calls_each=50, within=20)
    assert not calls.failures and len(calls.durations) == 50, (calls.failures, calls.summary())
    median = calls.quantile(0.5)
    # Far from both the ~40 ms wait and the ~0.1 ms call, so a busy machine cannot blur them.
    assert median < 0.020, calls.summary()


def test_results_are_empty_while_there_is_no_file(net, start):
    daemon = start(*SLOW).ready()
    net.request("GET", "/latency")
    assert len(daemon.wait_lines(2)) == 2
    daemon.results.unlink()
    for path in ("/latency-results", "/latency-results?tail=1"):
        status, _, body = net.request("GET", path)
        assert (status, body) == (200, ""), (path, body)
    status, headers, _ = net.request("HEAD", "/latency-results")
    assert (status, headers["Content-Length"]) == (200, "0")
    # The file is made again at the next line, and holds that line alone.
    status, _, line = net.request("GET", "/latency")
    assert status == 200, line
    status, _, body = net.request("GET", "/latency-results")
    assert (status, body) == (200, line) and daemon.results.read_text() == line


def test_no_target_answers_503_and_says_so(net, start):
    daemon = start().ready()
    status, _, body = net.request("GET", "/latency")
    assert status == 503 and "no target configured" in body
    assert "no target configured" in daemon.text()
    status, _, body = net.request("GET", "/latency-results")
    assert (status, body) == (200, "")


def year_of_lines(path, count=525_600):
    line = b"[2025-08-12 06:56:53] Latency: 0.27 ms\n"
    with open(path, "wb") as f:
        f.write(line * count)
    return len(line) * count


def serving_a_year(start, tmp_path, *flags):
    """A daemon serving a year-long results file: its path, size and the daemon."""
    results = tmp_path / "state" / "results.txt"
    results.parent.mkdir()
    size = year_of_lines(results)
    daemon = start(*SLOW, "--results", str(results), *flags).ready()
    return results, size, daemon


def stalled_downloads(net, count):
    """Connections that each ask for the whole file and never read it."""
    stalled = []
    for _ in range(count):
        conn = net.connect()
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        conn.request("GET", "/latency-results")
        stalled.append(conn)
    return stalled


def rss_kib(pid):
    for row in open(f"/proc/{pid}/status"):
        if row.startswith("VmRSS:"):
            return int(row.split()[1])
    raise AssertionError("no VmRSS")


def daemon_pid(daemon):
    # `ip netns exec` execs the binary, so the child is the daemon itself.
    return daemon.proc.pid


def test_a_year_of_results_streams_without_growing_memory(net, start, tmp_path):
    results = tmp_path / "state" / "results.txt"
    results.parent.mkdir()
    size = year_of_lines(results)
    daemon = start("--results", str(results)).ready()
    before = rss_kib(daemon_pid(daemon))
    conn = net.connect()
    conn.request("GET", "/latency-results")
    response = conn.getresponse()
    received = 0
    while chunk := response.read(1 << 16):
        received += len(chunk)
    assert response.status == 200 and received == size
    grown = rss_kib(daemon_pid(daemon)) - before
    assert grown < 2048, f"RSS grew by {grown} KiB serving {size} bytes"
    status, _, body = net.request("GET", "/latency-results?tail=3")
    assert body == "[2025-08-12 06:56:53] Latency: 0.27 ms\n" * 3


def test_silent_and_slow_clients_do_not_stall_others(net, start, tmp_path):
    serving_a_year(start, tmp_path)
    # Ten clients that connect and say nothing, and ten that ask for the whole file and never read.
    silent = [net.connect() for _ in range(10)]
    stalled = stalled_downloads(net, 10)
    time.sleep(0.5)
    began = time.monotonic()
    for _ in range(10):
        status, _, body = net.request("GET", "/latency")
        assert status == 200 and re.match(LINE, body.strip()), body
    assert time.monotonic() - began < 2.0
    for conn in silent + stalled:
        conn.close()


def test_malformed_requests_get_400_and_change_nothing(net, start):
    daemon = start(*SLOW).ready()
    daemon.wait_lines(1)
    before = daemon.results.read_bytes()
    for garbage in (b"\x00\x01\x02 nonsense\r\n\r\n", b"GET\r\n\r\n", b"GET /latency HTTP/9.9\r\n\r\n"):
        conn = net.connect()
        conn.sock.sendall(garbage)
        # Where the next request would start is unknown: the connection ends after the answer.
        reply = reply_then_close(conn.sock)
        conn.close()
        assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n"), (garbage, reply)
    assert daemon.results.read_bytes() == before
    status, _, body = net.request("GET", "/latency")
    assert status == 200 and daemon.alive()


def test_huge_or_endless_request_bodies_change_nothing(net, start):
    daemon = start(*SLOW).ready()
    daemon.wait_lines(1)
    for length in ("1099511627776", "18446744073709551615", "70000"):
        conn = net.connect()
        conn.sock.sendall(f"GET /latency-results?tail=1 HTTP/1.1\r\nHost: t\r\nContent-Length: {length}\r\n\r\n".encode())
        conn.sock.settimeout(5)
        assert conn.sock.recv(4096).startswith(b"HTTP/1.1 200"), length
        conn.close()
    assert daemon.alive()
    status, _, body = net.request("GET", "/latency")
    assert status == 200 and re.match(LINE, body.strip())


def test_a_pipelining_client_that_never_reads_holds_one_worker(net, start, tmp_path):
    serving_a_year(start, tmp_path)
    greedy = net.connect()
    greedy.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    greedy.sock.sendall(b"GET /latency-results HTTP/1.1\r\nHost: t\r\n\r\n" * 300)
    time.sleep(0.5)
    began = time.monotonic()
    for _ in range(10):
        status, _, body = net.request("GET", "/latency")
        assert status == 200 and re.match(LINE, body.strip()), body
        status, _, body = net.request("GET", "/latency-results?tail=1")
        assert status == 200, body
    assert time.monotonic() - began < 3.0
    greedy.close()


def test_more_connections_than_threads_wait_their_turn(net, start, nobody_dir):
    # Each connection holds a thread. Where no more threads may start (here RLIMIT_NPROC;
    # in production systemd's TasksMax), new connections must wait for a free thread, not
    # take the HTTP server down.
    limit = ("prlimit", "--nproc=40:40", "--")
    net.sysctl(net.daemon, "net.ipv4.ping_group_range=0 2147483647")
    daemon = start(*SLOW, *UNCAPPED, results=nobody_dir / "results.txt", prefix=limit + NOBODY).ready()
    silent = [net.connect() for _ in range(60)]
    time.sleep(0.5)
    assert "cannot start a thread" in daemon.text()
    for conn in silent:
        conn.close()
    status, _, body = net.request("GET", "/latency")
    assert status == 200 and re.match(LINE, body.strip()), body
    assert daemon.alive()


def test_a_fifo_put_in_place_of_a_deleted_file_is_neither_served_nor_appended_to(net, start):
    # A FIFO would block an open. Callers are told their line is not stored, and the
    # results are empty, as the deleted file's lines are in no file any more.
    daemon = start(*SLOW).ready()
    daemon.wait_lines(1)
    daemon.results.unlink()
    os.mkfifo(daemon.results)
    began = time.monotonic()
    for _ in range(30):
        status, _, body = net.request("GET", "/latency")
        assert status == 503 and "was deleted, and a new one cannot be made" in body, body
        assert "it is a FIFO" in body
    status, _, served = net.request("GET", "/latency-results")
    assert (status, served) == (200, ""), served
    assert time.monotonic() - began < 5.0
    assert daemon.text().count("was deleted, and a new one cannot be made") == 20, "20 a minute at most"
    assert daemon.alive()


def test_a_deleted_results_file_is_made_again_without_losing_lines(net, start):
    daemon = start(*SLOW).ready()
    daemon.wait_lines(1)
    daemon.results.unlink()
    status, _, body = net.request("GET", "/latency")
    assert status == 200, body
    assert daemon.lines() == [body.strip()]
    assert "was deleted; appending to a new file there" in daemon.text()


def reply_then_close(sock, seconds=5):
    """All the daemon sends until it closes the connection; fails if it is still open after
    `seconds` of silence. A reset counts as closing: the daemon closes with the rest of a
    request it refused unread, and the kernel then resets rather than ends the connection."""
    sock.settimeout(seconds)
    reply = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return reply
        except socket.timeout:
            responses = reply.count(b"HTTP/1.1 ")
            raise AssertionError(f"connection still open after {seconds}s of silence, "
                                 f"{responses} responses: {reply[:200]!r}")
        if not chunk:
            return reply
        reply += chunk


def test_http2_and_3_get_505_and_a_closed_connection(net, start):
    daemon = start(*SLOW).ready()
    for request in (b"GET /latency HTTP/2.0\r\n\r\n", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                    b"GET /latency HTTP/3.0\r\nHost: t\r\n\r\n"):
        conn = net.connect()
        conn.sock.sendall(request)
        reply = reply_then_close(conn.sock)
        conn.close()
        assert reply.startswith(b"HTTP/1.1 505 "), (request, reply)
        assert reply.split(b"\r\n\r\n", 1)[1].count(b"\n") == 1, reply
    status, _, body = net.request("GET", "/latency")
    assert status == 200 and re.match(LINE, body.strip()) and daemon.alive()


def send_until_refused(sock, data, total):
    """Sends `data` repeatedly, `total` bytes at most, until the daemon stops the connection."""
    sent = 0
    try:
        while sent < total:
            sock.sendall(data)
            sent += len(data)
    except (ConnectionResetError, BrokenPipeError, socket.timeout):
        pass


def test_oversized_request_heads_are_refused_while_memory_stays_small(net, start):
    daemon = start(*SLOW).ready()
    pid = daemon_pid(daemon)
    before = rss_kib(pid)
    # 32 MiB of one header line, over four connections that never end it.
    for _ in range(4):
        conn = net.connect(timeout=5)
        conn.sock.sendall(b"GET /latency HTTP/1.1\r\nX-Big: ")
        send_until_refused(conn.sock, b"a" * (1 << 20), 8 << 20)
        reply = reply_then_close(conn.sock)
        conn.close()
        assert reply.startswith(b"HTTP/1.1 431 "), reply[:200]
        assert reply.split(b"\r\n\r\n", 1)[1].count(b"\n") == 1, reply
    grown = rss_kib(pid) - before
    assert grown < 4096, f"RSS grew by {grown} KiB reading 32 MiB of header"
    too_long_target = b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n"
    too_many_headers = b"GET /latency HTTP/1.1\r\n" + b"X-A: a\r\n" * 101 + b"\r\n"
    for request, status in ((too_long_target, b"414"), (too_many_headers, b"431")):
        conn = net.connect()
        conn.sock.sendall(request)
        reply = reply_then_close(conn.sock)
        conn.close()
        assert reply.startswith(b"HTTP/1.1 " + status + b" "), reply[:200]
    # At the limits, still served.
    for request in (b"GET /latency HTTP/1.1\r\nX-Big: " + b"a" * 8000 + b"\r\n\r\n",
                    b"GET /latency HTTP/1.1\r\n" + b"X-A: a\r\n" * 100 + b"\r\n"):
        conn = net.connect()
        conn.sock.sendall(request)
        assert conn.sock.recv(4096).startswith(b"HTTP/1.1 200 ")
        conn.close()
    assert daemon.alive()


def test_a_body_left_unread_is_never_read_as_requests(net, start):
    daemon = start(*SLOW).ready()
    inner = b"GET /latency-results?tail=1 HTTP/1.1\r\n\r\n"
    # A short body, a long one (70,040 bytes), and a chunked one: each full of requests.
    framings = (b"Content-Length: %d\r\n\r\n%s" % (len(inner), inner),
                b"Content-Length: %d\r\n\r\n%s" % (len(inner) * 1751, inner * 1751),
                b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(inner), inner))
    for framing in framings:
        conn = net.connect()
        conn.sock.sendall(b"GET /latency HTTP/1.1\r\nHost: t\r\n" + framing + inner)
        reply = reply_then_close(conn.sock)
        conn.close()
        assert reply.startswith(b"HTTP/1.1 200 ") and reply.count(b"HTTP/1.1 ") == 1, (framing[:30], reply[-200:])
    status, _, body = net.request("GET", "/latency")
    assert status == 200 and re.match(LINE, body.strip()) and daemon.alive()


def test_a_doubtful_content_length_gets_400_and_a_closed_connection(net, start):
    # Lengths a proxy in front may read differently; what follows must not become a request.
    daemon = start(*SLOW).ready()
    inner = b"GET /latency-results?tail=1 HTTP/1.1\r\n\r\n"
    for lengths in ([b"10", b"70000"], [b"-1"], [b"+10"], [b"99999999999999999999999"], [b""]):
        head = b"".join(b"Content-Length: %s\r\n" % length for length in lengths)
        conn = net.connect()
        conn.sock.sendall(b"GET /latency HTTP/1.1\r\nHost: t\r\n" + head + b"\r\n" + inner)
        reply = reply_then_close(conn.sock)
        conn.close()
        assert reply.startswith(b"HTTP/1.1 400 ") and reply.count(b"HTTP/1.1 ") == 1, (lengths, reply[:200])
    assert daemon.alive()


def test_a_body_trickled_in_holds_no_worker(net, start):
    # The daemon reads no request body: the request is answered and its connection closed at
    # once, however slowly the body would come.
    start(*SLOW, *UNCAPPED).ready()
    trickling = []
    for _ in range(130):
        conn = net.connect()
        conn.sock.sendall(b"GET /latency-results?tail=1 HTTP/1.1\r\nHost: t\r\n"
                          b"Content-Length: 65536\r\nConnection: close\r\n\r\nx")
        trickling.append(conn)
    for conn in trickling:
        assert reply_then_close(conn.sock).startswith(b"HTTP/1.1 200 ")
    # The clients stay connected, as a trickling client would.
    began = time.monotonic()
    status, _, body = net.request("GET", "/latency", timeout=5)
    assert status == 200 and time.monotonic() - began < 2.0, body
    for conn in trickling:
        conn.close()


def test_a_request_head_trickled_past_30s_gets_408(net, start):
    # About 31 s: the head deadline is 30 s and nothing short of a real clock shows it.
    daemon = start(*SLOW).ready()
    conn = net.connect()
    began = time.monotonic()
    conn.sock.sendall(b"GET /latency HTTP/1.1\r\nX-Slow: ")
    conn.sock.settimeout(2)
    reply = bytearray()

    def closed():
        try:
            chunk = conn.sock.recv(4096)
        except socket.timeout:
            conn.sock.sendall(b"a")  # each byte well within the 30 s a single read may wait
            return False
        except ConnectionResetError:
            return True
        reply.extend(chunk)
        return not chunk

    wait_until(closed, 40, lambda: f"the connection closed, have {bytes(reply)!r}")
    elapsed = time.monotonic() - began
    conn.close()
    assert reply.startswith(b"HTTP/1.1 408 "), (elapsed, bytes(reply))
    assert 28 < elapsed < 34, elapsed
    status, _, body = net.request("GET", "/latency")
    assert status == 200 and re.match(LINE, body.strip()) and daemon.alive()


def test_connections_that_waited_for_a_thread_past_30s_are_dropped_at_once(net, start, nobody_dir):
    # About 32 s. Where no more threads may start, a connection waits for a free one. Its
    # head's 30 s counted from when a thread took it, not from accept, so each silent one
    # that had waited got 30 s more: twice as many silent connections as threads kept a new
    # caller waiting a minute, and a client reconnecting them every 30 s kept it out for good.
    limit = ("prlimit", "--nproc=40:40", "--")
    net.sysctl(net.daemon, "net.ipv4.ping_group_range=0 2147483647")
    daemon = start(*SLOW, *UNCAPPED, results=nobody_dir / "results.txt", prefix=limit + NOBODY).ready()
    silent = [net.connect() for _ in range(100)]
    opened = time.monotonic()
    wait_until(lambda: "cannot start a thread" in daemon.text(), 5, "the thread limit reached")
    time.sleep(max(0.0, opened + 31 - time.monotonic()))
    asked = time.monotonic()
    try:
        status, _, body = net.request("GET", "/latency", timeout=5)
    except TimeoutError:
        pytest.fail("no answer within 5 s: the silent connections still hold the threads")
    assert status == 200 and re.match(LINE, body.strip()), body
    assert time.monotonic() - asked < 5
    for conn in silent:
        reply = reply_then_close(conn.sock, seconds=1)
        conn.close()
        assert reply.startswith(b"HTTP/1.1 408 "), reply
    assert daemon.alive()


def test_a_line_the_disk_cannot_take_is_not_served_as_stored(net, start, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    run("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk))
    try:
        # Exactly one page of whole lines, so the next line needs a page the full disk lacks.
        results = disk / "results.txt"
        results.write_text("[2025-08-12 06:56:53] Latency: 0.27 ms\n" * 64
                           + "[2025-08-12 06:56:53] Latency: 12.34 ms\n" * 40)
        assert results.stat().st_size == 4096
        run("dd", "if=/dev/zero", f"of={disk / 'filler'}", "bs=4k", check=False)
        before = results.read_bytes()
        daemon = start(*SLOW, results=results).ready()
        status, _, body = net.request("GET", "/latency")
        assert status == 503 and "could not store it" in body and "No space left" in body, (status, body)
        assert results.read_bytes() == before
        (disk / "filler").unlink()
        status, _, body = net.request("GET", "/latency")
        assert status == 200 and body.strip() == daemon.lines()[-1], body
    finally:
        run("umount", "-l", str(disk))


def test_a_download_cut_short_by_copytruncate_fails_visibly(net, start, tmp_path):
    results, size, _ = serving_a_year(start, tmp_path)
    conn = net.connect()
    # A fixed receive buffer: with the daemon's send buffer, far less than the file is in
    # flight when it is truncated.
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    conn.request("GET", "/latency-results")
    response = conn.getresponse()
    first = response.read(65536)
    os.truncate(results, 0)
    with pytest.raises(http.client.IncompleteRead):
        response.read()
    assert len(first) < size
    conn.close()
    status, _, body = net.request("GET", "/latency")
    assert status == 200 and re.match(LINE, body.strip()), body


def test_long_downloads_are_limited_but_tails_are_not(net, start, tmp_path):
    results, _, daemon = serving_a_year(start, tmp_path, *UNCAPPED)
    stalled = stalled_downloads(net, 32)
    time.sleep(0.5)
    status, headers, body = net.request("GET", "/latency-results")
    assert status == 503 and headers["Retry-After"] == "1" and "too many downloads" in body, status
    # A client asking again and again must not flood the journal: 20 lines a minute at most.
    conn = net.connect()
    for _ in range(200):
        conn.request("GET", "/latency-results")
        response = conn.getresponse()
        response.read()
        assert response.status == 503
    conn.close()
    refusals = daemon.text().count("downloads of the results file already running")
    assert 1 <= refusals <= 20, f"{refusals} refusals logged"
    status, _, body = net.request("GET", "/latency-results?tail=2")
    assert status == 200 and body.count("\n") == 2, body
    for conn in stalled:
        conn.close()
    time.sleep(0.5)
    status, _, body = net.request("GET", "/latency-results")
    assert status == 200 and len(body) == results.stat().st_size, "the slots came back"


def test_a_client_holds_at_most_32_connections_and_a_closed_one_frees_its_place(net, start):
    daemon = start(*SLOW).ready()
    held = [net.connect() for _ in range(32)]
    # Connections are accepted in the order they were made: the 33rd finds 32 held.
    refused = net.connect()
    began = time.monotonic()
    reply = reply_then_close(refused.sock, seconds=5)
    assert time.monotonic() - began < 1.0, "refused at once, not after a wait"
    refused.close()
    assert reply.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1\r\n" in reply, reply
    assert reply.endswith(b"too many connections from your address (at most 32); close one and try again\n")
    for conn in held:
        conn.request("GET", "/latency-results?tail=1")
        response = conn.getresponse()
        assert response.status == 200, response.status
        response.read()
    # Another client is not held to this one's count.
    other, _ = net.add_client()
    status, _, body = net.request("GET", "/latency", ns=other)
    assert status == 200 and re.match(LINE, body.strip()), body
    # The place of a connection closed by the client is free once the daemon sees it end.
    held.pop().close()

    def served():
        conn = net.connect()
        try:
            conn.request("GET", "/latency-results?tail=1")
            return conn.getresponse().status == 200
        finally:
            conn.close()
    wait_until(served, 2, "a new connection served once one of the 32 closed")
    assert daemon.text().count("as many as a client may") == 1, "a flood is logged once"
    for conn in held:
        conn.close()


def test_a_flood_from_one_client_leaves_latency_to_another_under_the_units_tasks_max(net, start, tmp_path):
    # The unit's TasksMax= is the pids.max of its cgroup, which counts every thread in it: the
    # daemon gets the same limit here, on a cgroup of its own (cgroup v1's pids controller, as
    # this machine mounts it), joined before it starts, as systemd does. (RLIMIT_NPROC would
    # count every process of the user instead, and exempts root.)
    unit = (Path(__file__).parents[2] / "systemd" / "latency.service").read_text()
    tasks_max = int(re.search(r"^TasksMax=(\d+)$", unit, re.M).group(1))
    cgroup = Path("/sys/fs/cgroup/pids") / f"latency-test-{net.tag}"
    cgroup.mkdir()
    daemon = None
    try:
        (cgroup / "pids.max").write_text(f"{tasks_max}\n")
        # `ip netns exec` mounts a /sys of its own, without the cgroups: the shell that will
        # become the daemon stops itself, and is put in the cgroup from here.
        stopped = ("sh", "-c", 'kill -STOP $$ && exec "$@"', "sh")
        daemon = start(*SLOW, prefix=stopped)
        pid = daemon.proc.pid
        wait_until(lambda: Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] == "T", 5,
                   "the daemon's shell stopped")
        (cgroup / "cgroup.procs").write_text(f"{pid}\n")
        os.kill(pid, signal.SIGCONT)
        daemon.ready()
        flooder, _ = net.add_client()
        asker, _ = net.add_client()
        flood = [net.connect(ns=flooder) for _ in range(600)]
        # Time for the daemon to take them all: a thread each, or a refusal.
        time.sleep(2)
        began = time.monotonic()
        try:
            status, _, body = net.request("GET", "/latency", ns=asker, timeout=5)
        except TimeoutError:
            pytest.fail("GET /latency from another client: no answer within 5 s of 600 silent "
                        "connections from one client")
        elapsed = time.monotonic() - began
        print(f"GET /latency under a flood of 600 silent connections: {elapsed * 1000:.1f} ms")
        assert status == 200 and re.match(LINE, body.strip()), body
        assert elapsed < 1.0, elapsed
        threads = int((cgroup / "pids.current").read_text())
        assert threads < 100, f"{threads} threads: the flood holds more than its 32"
        refused = sum(reply_then_close(conn.sock, seconds=1).startswith(b"HTTP/1.1 503 ")
                      for conn in flood[32:])
        assert refused == 600 - 32
        for conn in flood:
            conn.close()
        assert daemon.alive()
    finally:
        # A cgroup with a task left in it cannot be removed.
        if daemon:
            daemon.kill()
        cgroup.rmdir()


def test_a_newline_in_the_url_does_not_forge_a_log_line(net, start):
    daemon = start(*SLOW).ready()
    conn = net.connect()
    # tiny_http splits the request line at spaces only: the forged line holds none.
    conn.sock.sendall(b"GET /latency-results?x\n2026-01-01T00:00:00-ERROR-forged HTTP/1.1\r\nHost: a\r\n\r\n")
    conn.sock.recv(4096)
    conn.close()
    wait_until(lambda: "HTTP GET" in daemon.text() and "forged" in daemon.text(), 5, daemon.text)
    assert not any(line.startswith("2026-01-01") for line in daemon.text().splitlines()), daemon.text()
