"""The HTTP/1.1 server of ``stelae serve``: keep-alive, one thread per connection.

Framing comes from llhttp (Node's HTTP/1.1 parser, through ``httptools``), which is strict
where request smuggling lives (https://www.rfc-editor.org/rfc/rfc9112#section-6.3): it refuses
whitespace between a header name and its colon (§5.1), obs-fold continuation lines (§5.2), a
``Content-Length`` that is not ASCII digits or appears twice, and ``Transfer-Encoding`` together
with ``Content-Length`` (§6.1). A refused request is answered with a status and the connection is
closed, since the stream can no longer be trusted to be in step; requests that arrived complete
before it are answered first. This module adds what llhttp leaves to the server:

- limits: a request target over :data:`MAX_LINE` bytes, a head over :data:`MAX_HEAD` bytes or
  with more than :data:`MAX_HEADERS` headers (431); a body over ``max_body`` (413), refused
  before any of it is read;
- a body only with ``Content-Length``: ``Transfer-Encoding`` without it, or a POST without a
  length, is 411; versions other than HTTP/1.0 and 1.1 are 505; a method llhttp does not know,
  on an otherwise well-formed request line, is 501 (RFC 9110 §9.1), anything else unparseable 400;
- ``Expect: 100-continue`` (curl sends it for larger bodies) is answered just before the server
  would wait for the body, after every earlier pipelined request has been answered;
- a connection that sends nothing for :data:`IDLE_TIMEOUT` seconds is closed.

Header names reach the application lowercased; the first of repeated headers wins. Each response
is one write.
"""

from __future__ import annotations

import contextlib
import email.utils
import http
import json
import logging
import re
import socket
import socketserver
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httptools

MAX_LINE = 65536  # bytes of request target
MAX_HEAD = 65536  # bytes of request line and headers together
MAX_HEADERS = 100
IDLE_TIMEOUT = 60.0  # seconds a connection may send nothing before it is closed
LINGER_SECONDS = 5.0  # seconds a refused connection is drained before it is closed
#: Connections served at once (one thread each). One more is answered 503 with Retry-After and
#: closed by the accepting thread itself, so a flood of connections costs no threads and every
#: client hears why; not accepting instead would leave it waiting in the listen backlog with no
#: answer. Keep-alive clients hold a slot while idle, for at most IDLE_TIMEOUT.
MAX_CONNECTIONS = 1024
BUSY_RETRY_AFTER = 1  # seconds, in the Retry-After of that 503
SERVER = "stelae"
log = logging.getLogger("stelae.server")
#: Bytes handed to the parser at a time. The head's size is checked between feeds, so a head is
#: refused once it passes MAX_HEAD, counting at most this many bytes of whatever preceded it.
_FEED = 4096
_RECV = 65536


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


@dataclass(frozen=True)
class _Parsed:
    request: HttpRequest
    keep_alive: bool


#: A request line whose method llhttp does not know but which is otherwise shaped like one; only
#: used to word the refusal (501 rather than 400), never to parse.
_UNKNOWN_METHOD = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+ \S+ HTTP/1\.[01]\r?\n")


class RequestReader:
    """Turns a connection's bytes into requests with llhttp; the parser's callbacks live here.

    :meth:`feed` parses what arrived and queues every complete request; a refusal is raised as
    :class:`BadRequestError` only once the requests before it have been taken with :meth:`next`.
    """

    def __init__(self, max_body: int) -> None:
        self.max_body = max_body
        self._parser = httptools.HttpRequestParser(self)
        self._ready: deque[_Parsed] = deque()
        self._refusal: BadRequestError | None = None
        self._reset()
        self.in_message = False  # a request has begun and is not complete

    def _reset(self) -> None:
        self._url: list[bytes] = []
        self._url_len = 0
        self._headers: dict[str, str] = {}
        self._count = 0
        self._body: list[bytes] = []
        self._head_done = False
        self._head_bytes = 0
        self.wants_continue = False  # the client waits for ``100 Continue`` before the body

    # -- feeding ----------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Parse ``data``; complete requests queue up, a refusal is kept for after them."""
        if self._refusal is not None:
            return
        for at in range(0, len(data), _FEED):
            piece = data[at : at + _FEED]
            began = not self.in_message
            try:
                self._parser.feed_data(piece)
            except httptools.HttpParserUpgrade:
                # An Upgrade (h2c, websocket) is not offered: answer the request as HTTP/1.1,
                # then close, since llhttp stops parsing the stream after it.
                self._refuse(BadRequestError(0, "upgrade"))
                return
            except httptools.HttpParserError as err:
                self._refuse(self._refusal or _classify(err, piece))
                return
            if self.in_message and not self._head_done:
                # Bytes of this piece before the request began may be counted too (<= _FEED).
                self._head_bytes = len(piece) if began else self._head_bytes + len(piece)
                if self._head_bytes > MAX_HEAD:
                    self._refuse(BadRequestError(431, "request header section too long"))
                    return

    def next(self) -> _Parsed | None:
        """The next complete request; None when more bytes are needed. Raises the refusal that
        follows the queued requests (status 0: no answer, just close)."""
        if self._ready:
            return self._ready.popleft()
        if self._refusal is not None:
            raise self._refusal
        return None

    def _refuse(self, err: BadRequestError) -> None:
        if self._refusal is None:
            self._refusal = err

    def _fail(self, err: BadRequestError) -> None:
        """Refuse from inside a callback: llhttp stops and ``feed_data`` raises."""
        self._refusal = err
        raise err

    # -- llhttp callbacks ----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_message = True
        self._reset()

    def on_url(self, url: bytes) -> None:
        self._url.append(url)
        self._url_len += len(url)
        if self._url_len > MAX_LINE:
            self._fail(BadRequestError(431, "request line too long"))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count += 1
        if self._count > MAX_HEADERS:
            self._fail(BadRequestError(431, f"more than {MAX_HEADERS} headers"))
        self._headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1").strip())

    def on_headers_complete(self) -> None:
        self._head_done = True
        version = self._parser.get_http_version()
        if version not in ("1.1", "1.0"):
            self._fail(BadRequestError(505, f"HTTP/{version} is not supported; use HTTP/1.1"))
        headers = self._headers
        length = headers.get("content-length")
        if length is None:
            if "transfer-encoding" in headers or self._parser.get_method() == b"POST":
                self._fail(BadRequestError(411, "Content-Length is required"))
            return
        # llhttp has checked it: ASCII digits only, one header, no Transfer-Encoding beside it.
        n = int(length)
        if n > self.max_body:
            self._fail(
                BadRequestError(
                    413, f"request body too large: {n} bytes, the limit is {self.max_body}"
                )
            )
        self.wants_continue = (
            n > 0 and version == "1.1" and headers.get("expect", "").lower() == "100-continue"
        )

    def on_body(self, body: bytes) -> None:
        self.wants_continue = False  # the body is coming anyway
        self._body.append(body)

    def on_message_complete(self) -> None:
        parser = self._parser
        version = "HTTP/" + parser.get_http_version()
        request = HttpRequest(
            parser.get_method().decode("ascii"),
            b"".join(self._url).decode("latin-1"),
            version,
            self._headers,
            b"".join(self._body),
        )
        self._ready.append(_Parsed(request, parser.should_keep_alive()))
        self.in_message = False
        self.wants_continue = False


def _classify(err: httptools.HttpParserError, piece: bytes) -> BadRequestError:
    if isinstance(err, httptools.HttpParserInvalidMethodError):
        line = piece.lstrip(b"\r\n")
        if _UNKNOWN_METHOD.match(line):
            method = line.split(b" ", 1)[0].decode("latin-1")
            return BadRequestError(501, f"{method} is not implemented")
        return BadRequestError(400, "malformed request line")
    reason = str(err) or "malformed request"
    if "Duplicate Content-Length" in reason:
        return BadRequestError(400, "conflicting Content-Length headers: a length is stated once")
    if "Content-Length" in reason or "Transfer-Encoding" in reason:
        return BadRequestError(400, f"invalid message framing: {reason}")
    if "HTTP/" in reason or "after version" in reason or "method" in reason.lower():
        return BadRequestError(400, f"malformed request line: {reason}")
    if "header" in reason.lower():
        return BadRequestError(400, f"malformed header line: {reason}")
    return BadRequestError(400, f"malformed request: {reason}")


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
    """A refusal in the API's JSON shape. Readable cross-origin like the API's own answers, so
    a browser client sees why (a 413 for an upload over the limit, say), not an opaque error."""
    body = (json.dumps({"code": status, "message": message}) + "\n").encode()
    headers = {"Content-Type": "application/json", "Access-Control-Allow-Origin": "*"}
    return HttpResponse(status, headers, body, close=True)


class _Connection(socketserver.BaseRequestHandler):
    server: HTTPServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        # One write per response, so Nagle only ever delays; off.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # A client that sends nothing (an idle keep-alive, or a slow-loris) gives its thread
        # back after this long; waiting for integration is not a socket read, so it is unaffected.
        sock.settimeout(self.server.idle_timeout)
        reader = RequestReader(self.server.max_body)
        with contextlib.suppress(ConnectionError, TimeoutError):
            # ConnectionError/TimeoutError: the client went away; nothing left to answer.
            while self._serve_ready(sock, reader):
                if reader.wants_continue:
                    sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                    reader.wants_continue = False
                data = sock.recv(_RECV)
                if not data:
                    return  # end of stream (inside a request or between requests)
                reader.feed(data)

    def _serve_ready(self, sock: socket.socket, reader: RequestReader) -> bool:
        """Answer every complete request; False when the connection must close."""
        while True:
            try:
                parsed = reader.next()
            except BadRequestError as err:
                if err.status:
                    sock.sendall(format_response(error_response(err.status, err.message), True))
                    _linger(sock)
                return False
            if parsed is None:
                return True
            try:
                res = self.server.app(parsed.request)
            except Exception:
                # The application answers its own errors; this is the backstop that keeps a bug
                # from becoming a silently dropped connection.
                log.exception("unhandled error answering %s", parsed.request.target)
                res = error_response(500, "internal error")
            close = res.close or not parsed.keep_alive
            sock.sendall(format_response(res, close))
            if close:
                return False


def _linger(sock: socket.socket) -> None:
    """Close a refused connection without destroying the refusal (RFC 9112 §9.6).

    The client may still be sending what was refused — a body over the limit, typically, from a
    client that does not wait for ``100 Continue``. Closing with its bytes unread would make the
    kernel reset the connection, and the reset can discard the answer before the client reads
    it. So: end our side, then read and discard until the client closes, for at most
    :data:`LINGER_SECONDS`. Nothing read is kept. Best effort: any error just ends it.
    """
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + LINGER_SECONDS
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            if not sock.recv(_RECV):
                return


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
        max_connections: int = MAX_CONNECTIONS,
        bind: bool = True,
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self._connections: set[socket.socket] = set()
        # A condition, not a bare lock: wait_for_free_slot sleeps on it until a slot frees.
        self._connections_lock = threading.Condition(threading.Lock())
        super().__init__(address, _Connection, bind_and_activate=bind)

    @property
    def url(self) -> str:
        """``http://host:port`` of the bound socket (port 0 becomes the one picked)."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    @classmethod
    def on_socket(
        cls,
        listener: socket.socket,
        app: Application,
        *,
        max_body: int,
        idle_timeout: float = IDLE_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
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
            max_connections=max_connections,
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
            busy = len(self._connections) >= self.max_connections
            if not busy:
                self._connections.add(request)
        if busy:
            self._answer_busy(request)
            return
        super().process_request(request, client_address)

    def _answer_busy(self, request: socket.socket) -> None:
        """503 + Retry-After on the accepting thread, then close (see MAX_CONNECTIONS)."""
        # Best effort throughout: a client that is gone or does not read loses only its 503.
        with contextlib.suppress(OSError):
            # Read what already arrived, so closing does not reset the connection (a reset can
            # destroy the answer before the client reads it); never wait for more.
            request.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                request.recv(_RECV)
            request.settimeout(1.0)  # the answer fits the socket buffer; bound it regardless
            res = error_response(503, "the server is at its connection limit; retry")
            busy = HttpResponse(
                res.status,
                {**res.headers, "Retry-After": str(BUSY_RETRY_AFTER)},
                res.body,
                close=True,
            )
            request.sendall(format_response(busy, True))
        self.shutdown_request(request)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self._connections_lock:
            self._connections.discard(request)
            self._connections_lock.notify_all()
        super().shutdown_request(request)

    def wait_for_free_slot(self, timeout: float) -> bool:
        """Block until fewer than ``max_connections`` connections are open (True), or until
        *timeout* seconds pass (False). A closed connection's slot returns only when its handler
        thread sees the EOF, a moment after the client closed; a caller that must know the slot
        is back (a test of the limit) waits here instead of retrying on a clock."""
        with self._connections_lock:
            return self._connections_lock.wait_for(
                lambda: len(self._connections) < self.max_connections, timeout
            )

    def end_idle_reads(self) -> None:
        """Make every open connection's next read return EOF, so keep-alive handlers finish."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            # Best effort: a connection closed meanwhile has nothing left to wake.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RD)
