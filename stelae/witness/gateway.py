"""API Gateway HTTP API (payload format 2.0) events in, event results out, for the serverless
witness: the same routes and answers as ``stelae witness`` (:mod:`stelae.witness.routes`).

API Gateway hands a body to a Lambda proxy integration base64-encoded when it is not text, and
answers 413 itself for one over its 10 MB limit; this module refuses one over the HTTP server's
own limit, so both witnesses accept the same requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stelae.api.http import Request
from stelae.tiles.errors import FormatError
from stelae.witness.protocol import Answer, Witness
from stelae.witness.routes import MAX_BODY, headers, route

__all__ = ["handle_event"]

_TEXT = "text/plain; charset=utf-8"


def handle_event(witness: Witness, event: Mapping[str, Any]) -> dict[str, Any]:
    """The event result for one API Gateway v2 ``event`` addressed to ``witness``."""
    parsed = _parse(event)
    if isinstance(parsed, Answer):
        return _result(parsed)
    method, path, body = parsed
    answer = route(witness, method, path, body)
    return _result(answer, head_only=method == "HEAD")


def _parse(event: Mapping[str, Any]) -> tuple[str, str, bytes] | Answer:
    """(method, path, body) of ``event``, or the 400/413 answer for a malformed one. The event is
    read as the write API reads it (:meth:`stelae.api.http.Request.from_apigw_v2`)."""
    try:
        request = Request.from_apigw_v2(event)
    except FormatError as err:
        return Answer(400, _TEXT, f"{err}\n".encode())
    if len(request.body) > MAX_BODY:
        return Answer(413, _TEXT, f"request body over {MAX_BODY} bytes\n".encode())
    return request.method, request.path, request.body


def _result(answer: Answer, head_only: bool = False) -> dict[str, Any]:
    # Every answer is text (a note, signature lines, a size, a reason), so no base64 is needed.
    return {
        "statusCode": answer.status,
        "headers": headers(answer),
        "body": "" if head_only else answer.body.decode("utf-8", "replace"),
        "isBase64Encoded": False,
    }
