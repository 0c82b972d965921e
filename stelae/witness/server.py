"""HTTP wiring for the witness: routes onto :class:`~stelae.witness.protocol.Witness`.

``POST /add-checkpoint`` (the submission prefix is the root) and ``GET /<origin hash>/checkpoint``
(the monitoring prefix is the root too; tlog-witness allows one prefix for both). Served by the
project's HTTP/1.1 server (:mod:`stelae.server.http1`), keep-alive as the spec recommends.
"""

from __future__ import annotations

import logging
import threading

from stelae.server.http1 import Application, HttpRequest, HttpResponse, HTTPServer
from stelae.witness.protocol import Answer, Witness
from stelae.witness.routes import MAX_BODY, headers, route

__all__ = ["MAX_BODY", "WitnessServer", "make_app"]

log = logging.getLogger("stelae.witness")


def _response(answer: Answer, head_only: bool = False) -> HttpResponse:
    return HttpResponse(answer.status, headers(answer), answer.body, head_only=head_only)


def make_app(witness: Witness) -> Application:
    """The :data:`~stelae.server.http1.Application` for ``witness``."""

    def app(req: HttpRequest) -> HttpResponse:
        path = req.target.partition("?")[0]
        try:
            answer = route(witness, req.method, path, req.body)
            return _response(answer, head_only=req.method == "HEAD")
        except Exception:
            # A bug must not take the connection's thread down silently; the caller sees a 500
            # and the log has the traceback.
            log.exception("witness request %s %s failed", req.method, path)
            return _response(Answer(500, "text/plain; charset=utf-8", b"internal error\n"))

    return app


class WitnessServer:
    """The witness on ``(host, port)``; port 0 picks a free one (see :attr:`url`)."""

    def __init__(self, witness: Witness, host: str, port: int) -> None:
        self.witness = witness
        self.httpd = HTTPServer((host, port), make_app(witness), max_body=MAX_BODY)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.httpd.url

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="stelae-witness")
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        if self._thread is not None:
            self._thread.join()
        self.httpd.end_idle_reads()
        self.httpd.server_close()
