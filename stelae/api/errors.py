"""Domain errors → HTTP statuses, in exactly one place."""

from __future__ import annotations

import logging

from stelae.api.http import Response
from stelae.errors import StelaeError
from stelae.kinds import InvalidEntryError
from stelae.sequencer.batcher import (
    LogHaltedError,
    QueueFullError,
    QueueUnavailableError,
    ShuttingDownError,
)
from stelae.sequencer.receipt import LogCorruptedError, LostRaceError
from stelae.sequencer.store import ImmutableConflictError, StoreFullError, TransientStoreError
from stelae.tiles.errors import FormatError, NotFoundError
from stelae.tiles.policy import QuorumNotMetError
from stelae.tiles.tile import EntryTooLargeError

log = logging.getLogger("stelae.api")

STORE_FULL_RETRY_AFTER = 30  # seconds: freeing disk space takes an operator
HALTED_RETRY_AFTER = 60  # seconds: so does repairing a log that contradicts itself


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
    if (unavailable := _unavailable(err)) is not None:
        return unavailable
    if isinstance(err, NotFoundError):
        return _body(404, str(err), None, {})
    if isinstance(err, FormatError):
        return _body(400, str(err), None, {})
    log.exception("internal error", exc_info=err)
    return _body(500, "internal error; the entry may not have been logged, retry", None, {})


def _unavailable(err: BaseException) -> Response | None:
    """The 503 for an error that means the log cannot take the entry now (the request itself
    is fine and succeeds later), or None for any other error."""
    if isinstance(err, QueueFullError | QueueUnavailableError):
        return _body(503, str(err), None, {"Retry-After": str(err.retry_after)})
    if isinstance(err, ShuttingDownError | LostRaceError | TransientStoreError):
        return _body(503, str(err), None, {"Retry-After": "1"})
    if isinstance(err, QuorumNotMetError):
        # The batch is claimed and will be published once the witnesses cosign it.
        log.warning("checkpoint not published, witness quorum not met: %s", err)
        return _body(
            503,
            "the log's witnesses have not cosigned its checkpoint yet; the entry is queued, "
            "retry later",
            None,
            {"Retry-After": "5"},
        )
    # Faults of the log's machine, not the client's: nothing was logged, and the same request
    # succeeds once an operator acts, so 503 with a longer Retry-After (not a 500 and a
    # traceback). Logged as errors, since someone has to act.
    if isinstance(err, StoreFullError):
        log.error("write refused, storage full: %s", err)
        return _body(
            503,
            "the log's storage is full; the entry was not logged, retry later",
            None,
            {"Retry-After": str(STORE_FULL_RETRY_AFTER)},
        )
    if isinstance(err, LogCorruptedError | LogHaltedError | ImmutableConflictError):
        # Fatal for the sequencer (it stops extending a tree it cannot verify); the details go
        # to the operator's log, not to every client.
        log.error("write refused, the stored log is inconsistent: %s", err)
        return _body(
            503,
            "the log is halted for repair; the entry was not logged, retry later",
            None,
            {"Retry-After": str(HALTED_RETRY_AFTER)},
        )
    return None


def _body(status: int, message: str, field: str | None, headers: dict[str, str]) -> Response:
    obj: dict[str, object] = {"code": status, "message": message}
    if field is not None:
        obj["field"] = field
    return Response.json(status, obj, headers)
