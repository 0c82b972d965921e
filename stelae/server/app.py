"""One process: HTTP on loopback, the write API through the Lambda's event handler, the sequencer
on a background thread, and static reads of the log directory."""

from __future__ import annotations

import contextlib
import http.server
import logging
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from stelae.api.gateway import handle_event
from stelae.api.http import Request, Response
from stelae.api.identity import LogIdentity
from stelae.api.service import ServiceConfig, WriteService
from stelae.api.submit import InProcessSubmitter
from stelae.sequencer.batcher import Batcher
from stelae.sequencer.logdir import LocalLog, open_log
from stelae.sequencer.reader import StoreFetcher
from stelae.server.static import CORS_HEADERS, StaticFiles

log = logging.getLogger("stelae.server")

MAX_BODY = 32 * 1024 * 1024  # refuse to even read more than this from a socket


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    service: ServiceConfig = field(default_factory=ServiceConfig)


class LogServer:
    """Owns the sequencer thread and the HTTP server; :meth:`close` drains before returning."""

    def __init__(self, local: LocalLog, options: ServeOptions | None = None) -> None:
        self.options = options or ServeOptions()
        cfg = local.config
        self.sequencer = local.sequencer()
        self.sequencer.published()  # finish any batch a crash left claimed, before serving
        self.batcher = Batcher(
            self.sequencer,
            max_batch=cfg.batch_max_size,
            max_age=cfg.batch_max_age_ms / 1000,
            max_pending=cfg.max_pending,
            on_error=lambda err: log.error("batch failed: %s", err),
        )
        self.service = WriteService(
            InProcessSubmitter(self.batcher),
            StoreFetcher(local.store),
            LogIdentity.from_vkey(cfg.vkey),
            self.options.service,
        )
        self.static = StaticFiles(local.log_dir)
        self.httpd = HTTPFrontEnd.bind(
            (self.options.host, self.options.port), make_handler(self.service, self.static)
        )
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self.batcher.start()
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="stelae-http")
        self._thread.start()

    def serve_forever(self) -> None:
        self.batcher.start()
        self.httpd.serve_forever()

    def close(self) -> None:
        """Stop accepting connections, integrate everything queued, answer it, then return."""
        self.httpd.shutdown()
        if self._thread is not None:
            self._thread.join()
        self.batcher.stop()
        # Every queued entry is answered by now; what remains are handlers waiting on idle
        # keep-alive connections for a next request that may never come. Ending the read side
        # wakes them (EOF) without cutting off a response still being written.
        self.httpd.end_idle_reads()
        self.httpd.server_close()  # waits for in-flight request threads to finish answering
        self.sequencer.close()


class HTTPFrontEnd(http.server.ThreadingHTTPServer):
    """The threaded HTTP server, on its own socket or on one a supervisor bound and shared."""

    daemon_threads = False  # close() waits for in-flight requests
    block_on_close = True
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[http.server.BaseHTTPRequestHandler],
        *,
        bind: bool = True,
    ) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler, bind_and_activate=bind)

    @classmethod
    def bind(
        cls, address: tuple[str, int], handler: type[http.server.BaseHTTPRequestHandler]
    ) -> HTTPFrontEnd:
        return cls(address, handler)

    @classmethod
    def on_socket(
        cls, listener: socket.socket, handler: type[http.server.BaseHTTPRequestHandler]
    ) -> HTTPFrontEnd:
        """Serve on an already listening socket (pre-forked workers share one).

        Every worker's selector wakes for each new connection but only one wins the accept, so
        the shared socket must be non-blocking: a loser's accept fails with EAGAIN (which
        socketserver ignores) instead of blocking until the next connection, or forever.
        """
        server = cls(listener.getsockname()[:2], handler, bind=False)
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


def make_handler(
    service: WriteService, static: StaticFiles
) -> type[http.server.BaseHTTPRequestHandler]:
    """The request handler: static reads of the log, and the API through ``handle_event``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "stelae"
        # Headers and body go out as separate writes; with Nagle on, every response after the
        # first on a keep-alive connection waited ~40 ms for the client's delayed ACK.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            log.debug("%s " + format, self.address_string(), *args)

        def do_GET(self) -> None:
            if self.path.startswith("/api/"):
                self._api(b"")
                return
            res = static.get(self.path, self.headers.get("Accept-Encoding", ""))
            self._send(res.status, res.headers, res.body)

        def do_HEAD(self) -> None:
            res = static.get(self.path, self.headers.get("Accept-Encoding", ""))
            self._send(res.status, res.headers, res.body, head=True)

        def do_POST(self) -> None:
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                # The body's extent is unknown, so the connection cannot carry another request.
                self.close_connection = True
                self._send_json(411, b'{"code":411,"message":"Content-Length is required"}\n')
                return
            n = int(length)
            if n > MAX_BODY:
                self.close_connection = True
                self._send_json(413, b'{"code":413,"message":"request body too large"}\n')
                return
            self._api(self.rfile.read(n))

        def _other_method(self) -> None:
            # Methods the log never serves still get the API's JSON 404/405, not http.server's
            # HTML 501; any body is left unread, so the connection is not reused.
            self.close_connection = True
            self._api(b"")

        def do_PUT(self) -> None:
            self._other_method()

        def do_DELETE(self) -> None:
            self._other_method()

        def do_PATCH(self) -> None:
            self._other_method()

        def do_OPTIONS(self) -> None:
            self._send(204, {**CORS_HEADERS, "Access-Control-Max-Age": "600"}, b"")

        def _api(self, body: bytes) -> None:
            path, _, query = self.path.partition("?")
            request = Request(
                self.command,
                path,
                {k.lower(): v for k, v in self.headers.items()},
                dict(_parse_query(query)),
                body,
            )
            # The same event handler the write Lambda runs.
            result = Response.from_apigw_v2(handle_event(service, request.to_apigw_v2()))
            self._send(result.status, {**CORS_HEADERS, **result.headers}, result.body)

        def _send_json(self, status: int, body: bytes) -> None:
            self._send(status, {"Content-Type": "application/json", **CORS_HEADERS}, body)

        def _send(
            self, status: int, headers: dict[str, str], body: bytes, head: bool = False
        ) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            if self.close_connection:
                self.send_header("Connection", "close")  # tell the client not to reuse it
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

    return Handler


def _parse_query(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=True)


def open_server(data: Path, options: ServeOptions | None = None) -> LogServer:
    return LogServer(open_log(data), options)
