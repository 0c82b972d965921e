"""The witness's routes, shared by the HTTP server (:mod:`stelae.witness.server`) and the
serverless witness (:mod:`stelae.witness.gateway`), so both answer every path alike.

``POST /add-checkpoint`` (the submission prefix is the root) and ``GET /<origin hash>/checkpoint``
(the monitoring prefix is the root too; https://c2sp.org/tlog-witness allows one prefix for both).
"""

from __future__ import annotations

from stelae.witness.protocol import Answer, Witness

__all__ = ["MAX_BODY", "headers", "route"]

# 63 proof lines and a checkpoint with up to 100 signature lines (an ML-DSA-44 line is ~3.3 kB).
MAX_BODY = 512 * 1024


def route(witness: Witness, method: str, path: str, body: bytes) -> Answer:
    """The answer to ``method path`` (without its query string)."""
    if path == "/add-checkpoint":
        if method != "POST":
            return _method_not_allowed("POST")
        return witness.add_checkpoint(body)
    parts = path.split("/")
    if len(parts) == 3 and parts[0] == "" and parts[2] == "checkpoint":
        if method not in ("GET", "HEAD"):
            return _method_not_allowed("GET, HEAD")
        return witness.latest(parts[1])
    return Answer(404, "text/plain; charset=utf-8", b"not found\n")


def headers(answer: Answer) -> dict[str, str]:
    out = {"Content-Type": answer.content_type, "Cache-Control": "no-store"}
    if answer.allow is not None:
        out["Allow"] = answer.allow
    return out


def _method_not_allowed(allow: str) -> Answer:
    return Answer(405, "text/plain; charset=utf-8", b"method not allowed\n", allow=allow)
