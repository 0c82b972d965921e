"""A small HTTP/1.1 server for ``stelae serve``: keep-alive, one thread per connection.

``http.server`` parses every header block with the ``email`` package and writes a response in
several pieces; at a thousand uploads a second that was a quarter of the write API's CPU. This
module does only what the log needs — request line, headers, a ``Content-Length`` body — and
answers each request with a single write. What it refuses, it refuses with a status and closes
the connection, since the stream can no longer be trusted to be in step:

- a request line that is not ``METHOD TARGET HTTP/1.x`` (400) or another HTTP version (505);
- a line over :data:`MAX_LINE` bytes (431), more than :data:`MAX_HEADERS` headers (431), a
  header without a colon (400), conflicting ``Content-Length`` values (400);
- a body sent with ``Transfer-Encoding`` or without a length (411), or one over ``max_body``
  (413), before reading it.

``Expect: 100-continue`` (curl sends it for larger bodies) is answered before the body is read. A
connection that sends nothing for :data:`IDLE_TIMEOUT` seconds is closed.
Header names reach the application lowercased; the first of repeated headers wins.
"""

from __future__ import annotations

import contextlib
import email.utils
import http
import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

MAX_LINE = 65536
MAX_HEADERS = 100
IDLE_TIMEOUT = 60.0  # seconds a connection may send nothing before it is closed
SERVER = "stelae"


@dataclass(frozen=True)
class HttpRequest:
    method: str
    target: str
    version: str
    headers: Mapping[str, str]  # names lowercased
    body: bytes = b""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes = b""
    head_only: bool = False  # a HEAD answer: the body's length is sent, not the body
    close: bool = False  # the connection cannot carry another request after this one


Application = Callable[[HttpRequest], HttpResponse]


class BadRequestError(Exception):
    """The request cannot be parsed; answer ``status`` and close the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def read_head(rfile: Any) -> tuple[str, str, str, dict[str, str]] | None:
    """Read one request line and its headers; None at a clean end of stream."""
    line = rfile.readline(MAX_LINE + 1)
    while line in (b"\r\n", b"\n"):  # RFC 9112 §2.2: ignore empty lines before a request
        line = rfile.readline(MAX_LINE + 1)
    if not line:
        return None
    if len(line) > MAX_LINE:
        raise BadRequestError(431, "request line too long")
    parts = line.decode("latin-1").split()
    if len(parts) != 3:
        raise BadRequestError(400, "malformed request line")
    method, target, version = parts
    if not version.startswith("HTTP/"):
        raise BadRequestError(400, "malformed request line")
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise BadRequestError(505, f"{version} is not supported; use HTTP/1.1")
    headers: dict[str, str] = {}
    count = 0
    while True:
        line = rfile.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise BadRequestError(431, "header line too long")
        if line in (b"\r\n", b"\n", b""):
            break
        count += 1
        if count > MAX_HEADERS:
            raise BadRequestError(431, f"more than {MAX_HEADERS} headers")
        name, sep, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if not sep or not name or " " in name:
            raise BadRequestError(400, "malformed header line")
        value = value.strip()
        if name == "content-length" and headers.get(name, value) != value:
            raise BadRequestError(400, "conflicting Content-Length headers")
        headers.setdefault(name, value)
    return method, target, version, headers


def format_response(res: HttpResponse, close: bool) -> bytes:
    try:
        reason = http.HTTPStatus(res.status).phrase
    except ValueError:
        reason = ""
    lines = [f"HTTP/1.1 {res.status} {reason}", f"Server: {SERVER}", f"Date: {_date()}"]
    lines += [f"{k}: {v}" for k, v in res.headers.items()]
    if close:
        lines.append("Connection: close")  # tell the client not to reuse it
    lines.append(f"Content-Length: {len(res.body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if res.head_only else head + res.body


_date_cache: tuple[int, str] = (0, "")


def _date() -> str:
    global _date_cache  # noqa: PLW0603 - a one-entry cache; a race only recomputes it
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, email.utils.formatdate(now, usegmt=True))
    return _date_cache[1]


def error_response(status: int, message: str) -> HttpResponse:
    body = (json.dumps({"code": status, "message": message}) + "\n").encode()
    return HttpResponse(status, {"Content-Type": "application/json"}, body, close=True)


class _Connection(socketserver.BaseRequestHandler):
    server: HTTPServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        # One write per response, so Nagle only ever delays; off.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # A client that sends nothing (an idle keep-alive, or a slow-loris) gives its thread
        # back after this long; waiting for integration is not a socket read, so it is unaffected.
        sock.settimeout(self.server.idle_timeout)
        rfile = sock.makefile("rb", buffering=65536)
        try:
            while self._one(sock, rfile):
                pass
        except (ConnectionError, TimeoutError):
            pass  # the client went away; nothing left to answer
        finally:
            rfile.close()

    def _one(self, sock: socket.socket, rfile: Any) -> bool:
        """Serve one request; False when the connection must close."""
        try:
            head = read_head(rfile)
        except BadRequestError as err:
            sock.sendall(format_response(error_response(err.status, err.message), True))
            return False
        if head is None:
            return False
        method, target, version, headers = head
        connection = headers.get("connection", "").lower()
        keep = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        try:
            body = self._body(sock, rfile, method, version, headers)
        except BadRequestError as err:
            sock.sendall(format_response(error_response(err.status, err.message), True))
            return False
        if body is None:
            return False  # the stream ended inside the body
        res = self.server.app(HttpRequest(method, target, version, headers, body))
        close = res.close or not keep
        sock.sendall(format_response(res, close))
        return not close

    def _body(
        self, sock: socket.socket, rfile: Any, method: str, version: str, headers: dict[str, str]
    ) -> bytes | None:
        if "transfer-encoding" in headers:
            raise BadRequestError(411, "Content-Length is required")
        length = headers.get("content-length")
        if length is None:
            if method == "POST":
                raise BadRequestError(411, "Content-Length is required")
            return b""
        if not length.isdigit():
            raise BadRequestError(411, "Content-Length is required")
        n = int(length)
        if n > self.server.max_body:
            raise BadRequestError(413, "request body too large")
        if n and version == "HTTP/1.1" and headers.get("expect", "").lower() == "100-continue":
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body: bytes = rfile.read(n)
        return body if len(body) == n else None


class HTTPServer(socketserver.ThreadingTCPServer):
    """Threaded HTTP/1.1 on its own socket or on one a supervisor bound and shared."""

    daemon_threads = False  # close() waits for in-flight requests
    block_on_close = True
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        app: Application,
        *,
        max_body: int,
        idle_timeout: float = IDLE_TIMEOUT,
        bind: bool = True,
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.idle_timeout = idle_timeout
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Connection, bind_and_activate=bind)

    @classmethod
    def on_socket(
        cls,
        listener: socket.socket,
        app: Application,
        *,
        max_body: int,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> HTTPServer:
        """Serve on an already listening socket (pre-forked workers share one).

        Every worker's selector wakes for each new connection but only one wins the accept, so
        the shared socket must be non-blocking: a loser's accept fails with EAGAIN (which
        socketserver ignores) instead of blocking until the next connection, or forever.
        """
        server = cls(
            listener.getsockname()[:2],
            app,
            max_body=max_body,
            idle_timeout=idle_timeout,
            bind=False,
        )
        server.socket.close()
        listener.setblocking(False)
        server.socket = listener
        server.server_address = listener.getsockname()
        return server

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = self.socket.accept()
        conn.setblocking(True)  # connections are served by blocking handler threads
        return conn, address

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def end_idle_reads(self) -> None:
        """Make every open connection's next read return EOF, so keep-alive handlers finish."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            # Best effort: a connection closed meanwhile has nothing left to wake.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RD)
