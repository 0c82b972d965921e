"""API Gateway HTTP API (payload format 2.0) events in, event results out, for the serverless
witness: the same routes and answers as ``stelae witness`` (:mod:`stelae.witness.routes`).

API Gateway hands a body to a Lambda proxy integration base64-encoded when it is not text, and
answers 413 itself for one over its 10 MB limit; this module refuses one over the HTTP server's
own limit, so both witnesses accept the same requests.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

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
    """(method, path, body) of ``event``, or the 400/413 answer for a malformed one."""
    try:
        http = event["requestContext"]["http"]
        method = str(http["method"]).upper()
        path = str(http.get("path") or event["rawPath"])
    except (KeyError, TypeError):
        return Answer(400, _TEXT, b"not an API Gateway HTTP API (2.0) event\n")
    raw = event.get("body") or ""
    if not isinstance(raw, str):
        return Answer(400, _TEXT, b"the event's body is not a string\n")
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            return Answer(400, _TEXT, b"the event's body is marked base64 but is not\n")
    else:
        try:
            body = raw.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            # A lone surrogate (JSON's "\ud800" escape) has no UTF-8 form: no HTTP body made it.
            return Answer(400, _TEXT, b"the event's body is not UTF-8 text\n")
    if len(body) > MAX_BODY:
        return Answer(413, _TEXT, f"request body over {MAX_BODY} bytes\n".encode())
    return method, path, body


def _result(answer: Answer, head_only: bool = False) -> dict[str, Any]:
    # Every answer is text (a note, signature lines, a size, a reason), so no base64 is needed.
    return {
        "statusCode": answer.status,
        "headers": headers(answer),
        "body": "" if head_only else answer.body.decode("utf-8", "replace"),
        "isBase64Encoded": False,
    }
