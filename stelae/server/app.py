"""One process: HTTP on loopback, the write API through the Lambda's event handler, the sequencer
on a background thread, and static reads of the log directory."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

from stelae.api.http import Request
from stelae.api.service import ServiceConfig, WriteService
from stelae.api.submit import InProcessSubmitter
from stelae.api.wiring import write_service
from stelae.sequencer.batcher import Batcher
from stelae.sequencer.engine import Cosigner
from stelae.sequencer.logdir import LocalLog, open_log
from stelae.server.explorer import explorer_file
from stelae.server.http1 import Application, HttpRequest, HttpResponse, HTTPServer
from stelae.server.static import CORS_HEADERS, StaticFiles

log = logging.getLogger("stelae.server")


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    service: ServiceConfig = field(default_factory=ServiceConfig)
    cosigner: Cosigner | None = None
    """Witnesses that must cosign each checkpoint before it is published (docs/witness.md)."""
    refresh_every: float | None = None
    """With witnesses: re-publish the checkpoint freshly cosigned this often while idle."""
    gc_grace: float | None = None
    """Delete partial tiles and bundles this long after their full tile is published (None:
    keep them; docs/durability.md, "Garbage collection")."""


def open_batcher(
    local: LocalLog,
    on_fatal: Callable[[BaseException], None] | None = None,
    cosigner: Cosigner | None = None,
    refresh_every: float | None = None,
    *,
    gc_grace: float | None = None,
) -> Batcher:
    """The log's sequencer behind a batcher with the log's settings, once any batch a crash left
    claimed is finished (so nothing is served from a half-integrated tree)."""
    cfg = local.config
    sequencer = local.sequencer(cosigner, gc_grace=gc_grace)
    sequencer.published()
    return Batcher(
        sequencer,
        max_batch=cfg.batch_max_size,
        max_age=cfg.batch_max_age_ms / 1000,
        max_pending=cfg.max_pending,
        target_latency=cfg.queue_target_ms / 1000 if cfg.queue_target_ms else None,
        on_error=lambda err: log.error("batch failed: %s", err),
        on_fatal=lambda err: _fatal(err, on_fatal),
        refresh_every=refresh_every if cosigner is not None else None,
    )


def _fatal(err: BaseException, then: Callable[[BaseException], None] | None) -> None:
    log.critical("the sequencer stopped: %s; check the log with `stelae fsck`", err)
    if then is not None:
        then(err)


class LogServer:
    """Owns the sequencer thread and the HTTP server; :meth:`close` drains before returning."""

    def __init__(
        self,
        local: LocalLog,
        options: ServeOptions | None = None,
        on_fatal: Callable[[BaseException], None] | None = None,
    ) -> None:
        """``on_fatal`` is told when the sequencer stops for good (writers then get 503)."""
        self.options = options or ServeOptions()
        cfg = local.config
        self.batcher = open_batcher(
            local,
            on_fatal,
            self.options.cosigner,
            self.options.refresh_every,
            gc_grace=self.options.gc_grace,
        )
        self.sequencer = self.batcher.sequencer
        self.service = write_service(
            InProcessSubmitter(self.batcher), local.store, cfg.vkey, self.options.service
        )
        self.static = StaticFiles(local.log_dir)
        self.httpd = HTTPServer(
            (self.options.host, self.options.port),
            make_app(self.service, self.static),
            # The API's own limit: a larger body is refused (413) before any of it is read.
            max_body=self.options.service.max_request_bytes,
        )
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.httpd.url

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


def make_app(service: WriteService, static: StaticFiles) -> Application:
    """Static reads of the log, and the API through :meth:`WriteService.handle` — the service the
    write Lambda runs too; only the Lambda's API Gateway adapter (``stelae.api.gateway``, tested
    on its own) is left out, rather than building an API Gateway event per request and back."""

    def api(req: HttpRequest) -> HttpResponse:
        path, _, query = req.target.partition("?")
        request = Request(req.method, path, req.headers, dict(_parse_query(query)), req.body)
        result = service.handle(request)
        return HttpResponse(result.status, {**CORS_HEADERS, **result.headers}, result.body)

    def app(req: HttpRequest) -> HttpResponse:
        method = req.method
        if method in ("GET", "HEAD") and not req.target.startswith("/api/"):
            page = explorer_file(req.target)  # the browser explorer, stelae/explorer/
            if page is not None:
                return HttpResponse(200, page.headers(), page.body, head_only=method == "HEAD")
            res = static.get(req.target, req.headers.get("accept-encoding", ""))
            return HttpResponse(res.status, res.headers, res.body, head_only=method == "HEAD")
        if method == "OPTIONS":
            return HttpResponse(204, {**CORS_HEADERS, "Access-Control-Max-Age": "600"})
        if method in ("GET", "POST"):
            return api(req)
        # Methods the log never serves get the API's JSON 404/405; HEAD on the API has no body.
        answer = api(req)
        return HttpResponse(answer.status, answer.headers, answer.body, head_only=method == "HEAD")

    return app


def _parse_query(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=True)


def open_server(data: Path, options: ServeOptions | None = None) -> LogServer:
    return LogServer(open_log(data), options)
