"""Domain errors → HTTP statuses, in exactly one place."""

from __future__ import annotations

import logging

from stelae.api.http import Response
from stelae.kinds import InvalidEntryError
from stelae.sequencer.batcher import QueueFullError, ShuttingDownError
from stelae.sequencer.engine import LostRaceError
from stelae.tiles.errors import FormatError, NotFoundError, StelaeError
from stelae.tiles.tile import EntryTooLargeError

log = logging.getLogger("stelae.api")


class ApiError(StelaeError):
    """An error the API answers with a specific status (and optional headers)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.headers = headers or {}


def error_response(err: BaseException) -> Response:
    """The response for any exception escaping the service. Bad input is never a 500."""
    if isinstance(err, ApiError):
        return _body(err.status, err.message, err.field, err.headers)
    if isinstance(err, EntryTooLargeError):
        return _body(413, str(err), None, {})
    if isinstance(err, InvalidEntryError):
        return _body(400, str(err), err.field, {})
    if isinstance(err, QueueFullError):
        return _body(503, str(err), None, {"Retry-After": str(err.retry_after)})
    if isinstance(err, ShuttingDownError | LostRaceError):
        return _body(503, str(err), None, {"Retry-After": "1"})
    if isinstance(err, NotFoundError):
        return _body(404, str(err), None, {})
    if isinstance(err, FormatError):
        return _body(400, str(err), None, {})
    log.exception("internal error", exc_info=err)
    return _body(500, "internal error; the entry may not have been logged, retry", None, {})


def _body(status: int, message: str, field: str | None, headers: dict[str, str]) -> Response:
    obj: dict[str, object] = {"code": status, "message": message}
    if field is not None:
        obj["field"] = field
    return Response.json(status, obj, headers)
