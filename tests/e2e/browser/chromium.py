"""A real headless Chromium (Debian's ``chromium``) driven over the DevTools protocol.

Just what the explorer tests need: load a URL, evaluate JavaScript (awaiting promises), wait for
a ``data-*`` attribute on ``<body>`` without sleeping (a MutationObserver resolves a promise),
take a screenshot and collect a download. The protocol is spoken over one WebSocket with the
``websocket-client`` package; https://chromedevtools.github.io/devtools-protocol/ is the reference.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import urllib.request
from collections import deque
from pathlib import Path
from typing import Any

import websocket

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--window-size=1200,900",
    "--remote-debugging-port=0",
]


def chromium_path() -> str | None:
    return shutil.which("chromium")


class BrowserError(AssertionError):
    """The browser did something the test did not expect (an exception in the page, a timeout)."""


class Chromium:
    """One browser process with a fresh profile, and its first page."""

    def __init__(self, profile: Path, timeout: float = 30.0) -> None:
        exe = chromium_path()
        if exe is None:
            raise BrowserError(
                "chromium is not installed (tests/e2e/browser/install.sh installs it)"
            )
        self.timeout = timeout
        self.proc = subprocess.Popen(
            [exe, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stderr is not None
        port = None
        for line in self.proc.stderr:  # Chromium prints its DevTools URL once it listens
            if m := re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line):
                port = int(m.group(1))
                break
        if port is None:
            raise BrowserError(f"chromium exited {self.proc.wait(10)} before listening")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout) as r:
            targets = json.load(r)
        page = next(t for t in targets if t["type"] == "page")
        self.ws = websocket.create_connection(
            page["webSocketDebuggerUrl"], timeout=timeout, suppress_origin=True
        )
        self._id = 0
        self.events: deque[dict[str, Any]] = deque()
        #: Uncaught exceptions and console errors the pages raised (a test asserts there are none).
        self.errors: list[str] = []
        self.send("Page.enable")
        self.send("Runtime.enable")

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            self.proc.wait(10)
            if self.proc.stderr is not None:
                self.proc.stderr.close()

    def _receive(self) -> dict[str, Any]:
        msg: dict[str, Any] = json.loads(self.ws.recv())
        method = msg.get("method")
        if method == "Runtime.exceptionThrown":
            self.errors.append(json.dumps(msg["params"]["exceptionDetails"])[:1000])
        elif method == "Runtime.consoleAPICalled" and msg["params"]["type"] == "error":
            self.errors.append(json.dumps(msg["params"]["args"])[:1000])
        return msg

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        ident = self._id
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            msg = self._receive()
            if msg.get("id") == ident:
                if "error" in msg:
                    raise BrowserError(f"{method}: {msg['error']}")
                result: dict[str, Any] = msg["result"]
                return result
            self.events.append(msg)

    def wait_event(self, method: str) -> dict[str, Any]:
        """The next event ``method`` (events that arrived while waiting on replies included)."""
        while True:
            while self.events:
                ev = self.events.popleft()
                if ev.get("method") == method:
                    params: dict[str, Any] = ev["params"]
                    return params
            self.events.append(self._receive())

    def load(self, url: str) -> None:
        """Navigate (always a full load, even when only the fragment differs) and wait for it."""
        self.events.clear()
        self.send("Page.navigate", url="about:blank")
        self.wait_event("Page.loadEventFired")
        self.send("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        result = self.send(
            "Runtime.evaluate",
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
            timeout=int(self.timeout * 1000),
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"page exception: {json.dumps(result['exceptionDetails'])[:2000]}")
        return result["result"].get("value")

    def wait_flag(self, name: str) -> str:
        """The value of ``document.body.dataset[name]`` once it is set (it starts absent)."""
        value = self.evaluate(
            f"""new Promise((resolve, reject) => {{
                const read = () => document.body && document.body.dataset[{json.dumps(name)}];
                if (read()) return resolve(read());
                const timer = setTimeout(() => reject(new Error("timed out waiting for {name}")),
                                         {int(self.timeout * 1000)});
                new MutationObserver((_, obs) => {{
                    if (read()) {{ obs.disconnect(); clearTimeout(timer); resolve(read()); }}
                }}).observe(document.documentElement,
                            {{attributes: true, childList: true, subtree: true}});
            }})"""
        )
        return str(value)

    def text(self) -> str:
        return str(self.evaluate("document.body.innerText"))

    def screenshot(self, path: Path) -> Path:
        metrics = self.send("Page.getLayoutMetrics")["cssContentSize"]
        height = min(int(metrics["height"]) + 1, 6000)
        shot = self.send(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": 1200, "height": height, "scale": 1},
        )
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def allow_downloads(self, directory: Path) -> None:
        self.send(
            "Browser.setDownloadBehavior",
            behavior="allow",
            downloadPath=str(directory),
            eventsEnabled=True,
        )

    def wait_download(self) -> None:
        """Until a download started on this page completes."""
        while True:
            ev = self.wait_event("Browser.downloadProgress")
            if ev["state"] == "completed":
                return
            if ev["state"] == "canceled":
                raise BrowserError("the download was canceled")
