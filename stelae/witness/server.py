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

__all__ = ["MAX_BODY", "WitnessServer", "make_app"]

log = logging.getLogger("stelae.witness")

# 63 proof lines and a checkpoint with up to 100 signature lines (an ML-DSA-44 line is ~3.3 kB).
MAX_BODY = 512 * 1024


def _response(answer: Answer, head_only: bool = False) -> HttpResponse:
    headers = {"Content-Type": answer.content_type, "Cache-Control": "no-store"}
    return HttpResponse(answer.status, headers, answer.body, head_only=head_only)


def make_app(witness: Witness) -> Application:
    """The :data:`~stelae.server.http1.Application` for ``witness``."""

    def app(req: HttpRequest) -> HttpResponse:
        path = req.target.partition("?")[0]
        try:
            if path == "/add-checkpoint":
                if req.method != "POST":
                    return _method_not_allowed("POST")
                return _response(witness.add_checkpoint(req.body))
            parts = path.split("/")
            if len(parts) == 3 and parts[0] == "" and parts[2] == "checkpoint":
                if req.method not in ("GET", "HEAD"):
                    return _method_not_allowed("GET, HEAD")
                return _response(witness.latest(parts[1]), head_only=req.method == "HEAD")
            return _response(Answer(404, "text/plain; charset=utf-8", b"not found\n"))
        except Exception:
            # A bug must not take the connection's thread down silently; the caller sees a 500
            # and the log has the traceback.
            log.exception("witness request %s %s failed", req.method, path)
            return _response(Answer(500, "text/plain; charset=utf-8", b"internal error\n"))

    return app


def _method_not_allowed(allow: str) -> HttpResponse:
    return HttpResponse(
        405, {"Allow": allow, "Content-Type": "text/plain"}, b"method not allowed\n"
    )


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
