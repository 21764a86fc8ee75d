"""Headless Chromium (Debian's `chromium`) as a test's browser: the DOM it builds from a page,
and screenshots with the boxes of chosen elements, run inside a network namespace of the lab.

As root Chromium needs --no-sandbox. Its stderr is discarded: it prints dozens of harmless
D-Bus complaints there. A profile of its own in a temporary directory keeps it off root's home.
"""
import base64
import fcntl
import json
import os
import select
import subprocess
import tempfile
import time

CHROMIUM = "chromium"


def _args(net, ns, profile, *flags):
    return ["ip", "netns", "exec", ns or net.daemon, CHROMIUM, "--headless", "--no-sandbox",
            "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={profile}", *flags]


def dump_dom(net, url, ns=None, timeout=60):
    """The DOM Chromium built from `url` once it loaded, serialized (`--dump-dom`)."""
    with tempfile.TemporaryDirectory(prefix="latency-chromium-", ignore_cleanup_errors=True) as profile:
        result = subprocess.run(_args(net, ns, profile, "--dump-dom", url), stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, timeout=timeout, check=False)
    assert result.returncode == 0 and result.stdout, f"chromium --dump-dom {url}: exit {result.returncode}"
    return result.stdout


def _above_4(fd):
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 5)
    os.close(fd)
    return moved


class DevTools:
    """Chromium driven through its DevTools protocol over a pipe (--remote-debugging-pipe:
    commands in on fd 3, answers and events out on fd 4, each a JSON text ended by a NUL), so
    no port is opened and the page runs no script of ours. Tells where elements were laid out,
    which `--screenshot` cannot."""

    def __init__(self, net, width, height, ns=None, timeout=60):
        self.timeout = timeout
        self.profile = tempfile.TemporaryDirectory(prefix="latency-chromium-", ignore_cleanup_errors=True)
        # The pipes must be fds 3 and 4 in Chromium: above 4 here, the redirections that put
        # them there cannot close one another.
        to_chromium, self.commands = os.pipe()
        self.answers, from_chromium = os.pipe()
        to_chromium, from_chromium = (_above_4(fd) for fd in (to_chromium, from_chromium))
        # bash: dash takes no fd above 9 in a redirection.
        redirect = ["bash", "-c", f'exec "$@" 3<&{to_chromium} 4>&{from_chromium} {to_chromium}<&- {from_chromium}>&-',
                    "bash"]
        args = _args(net, ns, self.profile.name, "--remote-debugging-pipe", f"--window-size={width},{height}",
                     "about:blank")
        self.process = subprocess.Popen([*redirect, *args], pass_fds=(to_chromium, from_chromium),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chromium)
        os.close(from_chromium)
        self.pending = b""
        self.events = []
        self.next_id = 0
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable", session=self.session)

    def close(self):
        # Browser.close lets Chromium end its helper processes and let go of the profile.
        try:
            self.call("Browser.close")
        except AssertionError:
            pass  # it ended before answering
        os.close(self.commands)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self.answers)
        self.profile.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()

    def _message(self, deadline):
        while b"\0" not in self.pending:
            left = deadline - time.monotonic()
            assert left > 0, "chromium did not answer in time"
            if select.select([self.answers], [], [], left)[0]:
                chunk = os.read(self.answers, 1 << 20)
                assert chunk, f"chromium ended (exit {self.process.poll()})"
                self.pending += chunk
        text, self.pending = self.pending.split(b"\0", 1)
        return json.loads(text)

    def call(self, method, session=None, **params):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            answer = self._message(deadline)
            if answer.get("id") == self.next_id:
                assert "error" not in answer, f"{method}: {answer['error']}"
                return answer["result"]
            self.events.append(answer)

    def wait_event(self, method):
        deadline = time.monotonic() + self.timeout
        while True:
            for event in self.events:
                if event.get("method") == method and event.get("sessionId") == self.session:
                    self.events.remove(event)
                    return event["params"]
            self.events.append(self._message(deadline))

    def load(self, url):
        self.call("Page.navigate", session=self.session, url=url)
        self.wait_event("Page.loadEventFired")

    def boxes(self, selector):
        """[(x, y, width, height)] in CSS pixels of the page, of each element `selector`
        matches, in document order."""
        root = self.call("DOM.getDocument", session=self.session, depth=0)["root"]["nodeId"]
        nodes = self.call("DOM.querySelectorAll", session=self.session, nodeId=root, selector=selector)["nodeIds"]
        found = []
        for node in nodes:
            model = self.call("DOM.getBoxModel", session=self.session, nodeId=node)["model"]
            x, y = model["border"][0], model["border"][1]
            found.append((x, y, model["width"], model["height"]))
        return found

    def screenshot(self):
        """The whole page as a PNG, beyond the window if it is longer, at one device pixel
        per CSS pixel."""
        size = self.call("Page.getLayoutMetrics", session=self.session)["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.call("Page.captureScreenshot", session=self.session, format="png", clip=clip,
                         captureBeyondViewport=True)
        return base64.b64decode(shot["data"])
