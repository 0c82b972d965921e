"""The serverless witness's memory: the latest cosigned checkpoint of each log, one S3 object each.

``<prefix>logs/<sha256(origin) hex>`` holds the cosigned note, as :class:`WitnessState` keeps it
in a file. There is no lock to hold across Lambda invocations, so the check-and-replace that
https://c2sp.org/tlog-witness requires to be atomic (add-checkpoint, the rollback race) is an S3
conditional write: a log's first record is created with ``If-None-Match: *`` and every later one
replaces the record only ``If-Match`` the ETag that was read and checked. Of two requests that
read the same record and cosign two different trees of one size, S3 accepts exactly one write;
the other gets 412 (or 409 while the first is in flight) and raises :class:`StateConflictError`,
having written nothing, so the witness never answers 200 for it (stelae.witness.protocol checks
it again against the record that won). S3 is strongly consistent for reads after writes, so the
re-read sees the winner.

A retried PUT is ambiguous (the attempt that "failed" may have landed): if a write loses its
condition to an object holding exactly its bytes, it was its own, and the write succeeded. The
note carries the cosignature's timestamp and signature, so no other request makes those bytes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from stelae.witness.state import (
    LogRecord,
    StateConflictError,
    is_origin_hash,
    origin_hash,
)

__all__ = ["S3WitnessState"]

_CONTENT_TYPE = "text/plain; charset=utf-8"


def _status(err: ClientError) -> int:
    return int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _not_found(err: ClientError) -> bool:
    code = str(err.response.get("Error", {}).get("Code", ""))
    return _status(err) == 404 or code in ("NoSuchKey", "404", "NotFound")


class _S3Record(LogRecord):
    def __init__(self, state: S3WitnessState, key: str, note: bytes | None, etag: str | None):
        super().__init__(f"s3://{state.bucket}/{key}", note)
        self._state, self._key, self._etag = state, key, etag

    def _write(self, note: bytes) -> None:
        condition = {"IfNoneMatch": "*"} if self._etag is None else {"IfMatch": self._etag}
        try:
            resp = self._state.client.put_object(
                Bucket=self._state.bucket,
                Key=self._key,
                Body=note,
                ContentType=_CONTENT_TYPE,
                CacheControl="no-store",
                **condition,
            )
        except ClientError as err:
            # 412: the condition failed; 409: a concurrent conditional write was in flight;
            # 404: If-Match on a record that is gone. Each means another request got there.
            if _status(err) not in (409, 412) and not _not_found(err):
                raise
            current = self._state.read(self._key)
            if current is not None and current[0] == note:
                self._etag = current[1]
                return  # our own earlier attempt landed (see the module docstring)
            raise StateConflictError(
                f"the witness record {self._key!r} changed while this request was checked"
            ) from err
        self._etag = str(resp["ETag"])


class S3WitnessState:
    """Per-log records in ``bucket`` under ``prefix`` (a :class:`~stelae.witness.state.
    WitnessStore`). ``client`` is a boto3 S3 client."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def key(self, origin_hex: str) -> str:
        return f"{self.prefix}logs/{origin_hex}"

    @contextlib.contextmanager
    def locked(self, origin: str) -> Iterator[LogRecord]:
        """The log's record as read now, with the ETag its replacement will be conditioned on.
        Holds nothing: the condition is the lock."""
        key = self.key(origin_hash(origin))
        found = self.read(key)
        note, etag = (None, None) if found is None else found
        yield _S3Record(self, key, note, etag)

    def latest(self, origin_hex: str) -> bytes | None:
        if not is_origin_hash(origin_hex):
            return None
        found = self.read(self.key(origin_hex))
        return None if found is None else found[0]

    def read(self, key: str) -> tuple[bytes, str] | None:
        """(bytes, ETag) of ``key``, or None if there is no such object."""
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if _not_found(err):
                return None
            raise
        return resp["Body"].read(), str(resp["ETag"])
