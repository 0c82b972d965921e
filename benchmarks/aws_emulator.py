"""The emulator side of the AWS cost model: a moto server in a child process, and a counting proxy
in front of it that attributes every request to a caller, a service and an operation.

One proxy port per caller (the write function, the sequencer function, the event source mapping);
requests are forwarded unchanged and boto3 is not patched. :mod:`benchmarks.aws_cost` explains
the model.
"""

from __future__ import annotations

import contextlib
import http.client
import math
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from stelae.tiles.paths import ObjectClass, object_class_for_key

# -- the counting proxy ----------------------------------------------------------------------------


@dataclass
class Tally:
    """Requests seen by the proxies: (caller, service, operation, detail) → calls and more."""

    calls: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    billed: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    request_bytes: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, key: tuple[str, str, str, str], req: int, resp: int, status: int) -> None:
        with self.lock:
            self.calls[key] += 1
            # SQS meters each 64 KB chunk of a payload as one request.
            chunks = max(1, math.ceil(max(req, resp) / 65_536)) if key[1] == "sqs" else 1
            self.billed[key] += chunks
            self.request_bytes[key] += req
            if status >= 500 or status == 0:
                self.errors[f"{key[1]} {key[2]} {status}"] += 1

    def snapshot(self) -> Tally:
        with self.lock:
            return Tally(
                Counter(self.calls),
                Counter(self.billed),
                Counter(self.request_bytes),
                Counter(self.errors),
            )

    def since(self, before: Tally) -> Tally:
        now = self.snapshot()
        return Tally(
            now.calls - before.calls,
            now.billed - before.billed,
            now.request_bytes - before.request_bytes,
            now.errors - before.errors,
        )


_S3_KINDS = {
    ObjectClass.BUNDLE: "bundle",
    ObjectClass.TILE: "tile",
    ObjectClass.CHECKPOINT: "checkpoint",
    ObjectClass.CHECKPOINT_HISTORY: "checkpoint history",
    ObjectClass.STATE: "intent",
    ObjectClass.BATCH: "batch record",
    ObjectClass.INDEX_RUN: "index run",
    ObjectClass.INDEX_MANIFEST: "index manifest",
    ObjectClass.ENTRY_LEAF_INDEX: "index/leaf",
    ObjectClass.INDEX: "older index",
}


def s3_kind(key: str) -> str:
    """Which kind of stelae object an S3 key is (for the breakdown rows)."""
    cls = object_class_for_key(key)
    return "other" if cls is None else _S3_KINDS[cls]


_CREDENTIAL = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


def classify(
    method: str, path: str, headers: Any, body: bytes, status: int
) -> tuple[str, str, str]:
    """(service, operation, detail) of one request, from what is on the wire."""
    m = _CREDENTIAL.search(headers.get("Authorization", ""))
    service = m.group(1) if m else "unknown"
    target = headers.get("X-Amz-Target")
    if target:
        return service, target.rsplit(".", 1)[-1], ""
    if service == "s3":
        url = urlsplit(path)
        _bucket, _, key = url.path.lstrip("/").partition("/")
        key = unquote(key)
        if not key:
            op = {"GET": "ListObjectsV2" if "list-type=2" in url.query else "ListObjects"}.get(
                method, f"{method} bucket"
            )
            return service, op, ""
        op = {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject"}.get(method, method)
        if method == "PUT":
            if headers.get("If-None-Match"):
                op += " If-None-Match"
            elif headers.get("If-Match"):
                op += " If-Match"
        detail = s3_kind(key)
        if status == 404:
            detail += " (404)"
        elif status in (409, 412):
            detail += f" ({status})"
        return service, op, detail
    action = parse_qs(body.decode("latin-1")).get("Action", ["?"])[0]
    return service, action, ""


class CountingProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, role: str, upstream: tuple[str, int], tally: Tally) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.role = role
        self.upstream = upstream
        self.tally = tally
        self.s3_delays: dict[str, float] = {}
        """Seconds added before forwarding an S3 request, by HTTP method (``{"GET": 0.025,
        "PUT": 0.05}``): S3's latency in front of moto, which answers in a millisecond or two."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: CountingProxy
    # The answer goes out in two writes (headers, then body): with Nagle's algorithm on, the
    # second waits for the client's delayed ACK of the first, 40 ms on Linux, on every request
    # of a kept-alive connection but its first — real time the handlers were billed for.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    _upstream: http.client.HTTPConnection | None = None

    def _send(self, body: bytes) -> tuple[int, bytes, list[tuple[str, str]]]:
        """One request upstream on this client connection's own keep-alive connection."""
        for attempt in (1, 2):
            fresh = self._upstream is None
            if self._upstream is None:
                self._upstream = http.client.HTTPConnection(*self.server.upstream, timeout=300)
            conn = self._upstream
            try:
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for k, v in self.headers.items():
                    if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                        conn.putheader(k, v)
                if body or "Content-Length" in self.headers or "Transfer-Encoding" in self.headers:
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body)
                resp = conn.getresponse()
                data = resp.read()
                if resp.will_close:
                    conn.close()
                    self._upstream = None
                return resp.status, data, resp.getheaders()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
                self._upstream = None
                if fresh or attempt == 2:  # only a stale kept-alive connection is retried
                    raise
        raise AssertionError("unreachable")

    def _forward(self) -> None:
        body = self._body()
        delay = self.server.s3_delays.get(self.command, 0.0)
        if delay and "/s3/aws4_request" in self.headers.get("Authorization", ""):
            time.sleep(delay)  # releases the GIL: requests in flight together overlap
        status, data, headers = 0, b"", list[tuple[str, str]]()
        try:
            status, data, headers = self._send(body)
        except OSError as err:
            data = f"proxy: {err}".encode()
        service, op, detail = classify(self.command, self.path, self.headers, body, status)
        self.server.tally.add((self.server.role, service, op, detail), len(body), len(data), status)
        self.send_response(status or 502)
        skip: tuple[str, ...] = ("transfer-encoding", "connection", "server", "date")
        if self.command != "HEAD":
            skip += ("content-length",)
        for k, v in headers:
            if k.lower() not in skip:
                self.send_header(k, v)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward  # noqa: N815 - the stdlib's names


@contextlib.contextmanager
def proxies(
    upstream: str, roles: tuple[str, ...]
) -> Iterator[tuple[dict[str, CountingProxy], Tally]]:
    """One counting proxy per caller in front of ``upstream``, all feeding one tally."""
    url = urlsplit(upstream)
    tally = Tally()
    servers = {
        r: CountingProxy(r, (url.hostname or "127.0.0.1", url.port or 80), tally) for r in roles
    }
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers.values()]
    for t in threads:
        t.start()
    try:
        yield servers, tally
    finally:
        for s in servers.values():
            s.shutdown()
            s.server_close()


# -- the emulator ----------------------------------------------------------------------------------


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto server in its own process (its own GIL), on a free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # benchmarks/moto_server.py: moto's server with its SQS retention check made cheap.
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.moto_server", "-H", "127.0.0.1", "-p", str(port)],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the moto server did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextlib.contextmanager
def environment(values: dict[str, str | None]) -> Iterator[None]:
    """Set (or, for None, remove) environment variables; restore them afterwards."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
