"""API Gateway HTTP API (payload format 2.0) events in, event results out.

This is the write Lambda's whole body: the event becomes a :class:`Request` for the same
:meth:`WriteService.handle` that ``stelae serve`` calls directly, and the answer an event result.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stelae.api.errors import error_response
from stelae.api.http import Request
from stelae.api.service import WriteService


def handle_event(service: WriteService, event: Mapping[str, Any]) -> dict[str, Any]:
    try:
        request = Request.from_apigw_v2(event)
    except Exception as err:  # a malformed event is the caller's problem: 400, not a crash
        return error_response(err).to_apigw_v2()
    return service.handle(request).to_apigw_v2()
