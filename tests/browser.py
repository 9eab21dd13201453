"""A real headless Chromium driven over the DevTools protocol, for tests that look at a page as a person would.

Chromium speaks the protocol on a pipe (`--remote-debugging-pipe`: it reads commands from fd 3 and writes
replies and events to fd 4, each a JSON message ended by a NUL byte), so no port is opened and no package beyond
the standard library is needed. Every event is kept, so a test can ask afterwards which requests the page made
and what it logged.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import itertools
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic", "--disable-extensions", "--disable-default-apps",
    "--mute-audio", "--hide-scrollbars", "--remote-debugging-pipe",
)


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def profile_environment(profile: Path) -> dict[str, str]:
    """Chromium's environment: HOME and the XDG folders inside its profile, so that what it writes beside the
    profile (`~/.config/chromium/Crash Reports`, `~/.cache/dconf`, a fontconfig cache) goes with the test's
    temporary folder instead of into the user's home."""
    folders = {"HOME": "home", "XDG_CONFIG_HOME": "config", "XDG_CACHE_HOME": "cache", "XDG_DATA_HOME": "data"}
    for folder in folders.values():
        (profile / folder).mkdir(parents=True, exist_ok=True)
    return {**os.environ, **{name: str(profile / folder) for name, folder in folders.items()}}


class BrowserError(RuntimeError):
    """Chromium answered a command with an error, died, or did not answer in time."""


class Browser:
    """One Chromium process with one page (a target attached in flat mode) that commands go to."""

    def __init__(self, binary: str, profile: Path, timeout: float = 60.0):
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._buffer = b""
        commands_read, self._commands = os.pipe()
        self._replies, replies_write = os.pipe()
        self._process = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"], env=profile_environment(profile),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False,  # the child keeps only inheritable fds: 3 and 4 made by _move_fds
            preexec_fn=lambda: _move_fds(commands_read, replies_write),
        )
        os.close(commands_read)
        os.close(replies_write)
        target = self.send("Target.createTarget", to_page=False, url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", to_page=False, targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")

    def close(self) -> None:
        with contextlib.suppress(BrowserError, OSError):  # it may be gone already
            self.send("Browser.close", to_page=False)
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._commands)
        os.close(self._replies)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- protocol -------------------------------------------------------------------------------------------------

    def send(self, method: str, to_page: bool = True, **params: Any) -> dict[str, Any]:
        """Send one command (to the page, or to the browser) and return its result; events are kept meanwhile."""
        message: dict[str, Any] = {"id": next(self._ids), "method": method, "params": params}
        if to_page:
            message["sessionId"] = self.session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._next_message()
            if reply.get("id") == message["id"]:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def _next_message(self) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        replies = select.poll()  # not select(): it refuses a descriptor numbered 1024 or more
        replies.register(self._replies, select.POLLIN)
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not replies.poll(left * 1000):
                raise BrowserError(f"Chromium did not answer within {self.timeout:g} s")
            chunk = os.read(self._replies, 1 << 20)
            if not chunk:
                raise BrowserError(f"Chromium closed the pipe (exit code {self._process.poll()})")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(raw)

    def wait_for_event(self, method: str) -> dict[str, Any]:
        """The first kept or coming event named `method` (events seen before are searched first)."""
        for event in self.events:
            if event["method"] == method:
                return event
        while True:
            event = self._next_message()
            if "method" in event:
                self.events.append(event)
                if event["method"] == method:
                    return event

    # -- page -----------------------------------------------------------------------------------------------------

    def viewport(self, width: int, height: int, mobile: bool = False) -> None:
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=mobile)

    def open(self, url: str) -> None:
        """Navigate and wait for the load event."""
        self.events = [e for e in self.events if e["method"] != "Page.loadEventFired"]
        self.send("Page.navigate", url=url)
        self.wait_for_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited if a promise); a thrown error raises."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(f"{expression[:60]!r} threw: {details.get('exception', {}).get('description')}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> None:
        """A PNG of the whole page (beyond the viewport) at the current width."""
        size = self.send("Page.getLayoutMetrics")["cssContentSize"]
        shot = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    def requested_urls(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"]

    def console_problems(self) -> list[str]:
        """Uncaught exceptions, console.error/warn/assert calls and browser log entries of level error or warning."""
        problems = []
        for event in self.events:
            params = event.get("params", {})
            if event["method"] == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                problems.append(f"exception: {details.get('exception', {}).get('description') or details['text']}")
            elif event["method"] == "Runtime.consoleAPICalled" and params["type"] in ("error", "warning", "assert"):
                problems.append(f"console.{params['type']}: " + " ".join(
                    str(arg.get("value", arg.get("description"))) for arg in params["args"]))
            elif event["method"] == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                problems.append(f"log {params['entry']['level']}: {params['entry']['text']}")
        return problems


def _move_fds(commands: int, replies: int) -> None:
    """In the child: put the pipe ends where Chromium looks for them, 3 (commands) and 4 (replies)."""
    high_commands, high_replies = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (commands, replies))
    os.dup2(high_commands, 3)  # dup2 makes 3 and 4 inheritable; everything else Python opened closes on exec
    os.dup2(high_replies, 4)
