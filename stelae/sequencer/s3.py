"""The S3 backend (AWS, or any S3-compatible store through ``endpoint_url``).

Each object is ``<prefix><key>`` in one bucket, uploaded with the Content-Type and Cache-Control of
its :class:`~stelae.tiles.paths.ObjectClass`, which S3 and CloudFront then serve as they are.

How each guarantee of the :class:`~stelae.sequencer.store.ObjectStore` contract is kept:

- Durable and read-after-write consistent: S3 acknowledges a PUT only once stored, and has been
  strongly consistent since December 2020.
- Create-if-absent: ``PutObject`` with ``If-None-Match: *``. On 412 (someone created it) the
  object is fetched and compared: same bytes is success, different bytes ImmutableConflictError.
  A 409 ConditionalRequestConflict (a concurrent conditional write was in flight) is treated the
  same way once that write has landed.
- Compare-and-swap: ``If-Match: <ETag>`` or ``If-None-Match: *``. 412, 409 and 404 (S3 answers
  If-Match on a missing key with NoSuchKey) all mean the CAS lost.
- Versions are S3 ETags exactly as S3 returns them (quoted MD5 for single-part uploads). Like the
  local backend's content hashes, equal bytes share a version.
- Retries: throttling, 5xx and connection errors are retried here, with capped exponential backoff
  and full jitter, up to ``max_attempts`` requests per operation, then TransientStoreError. A
  client built here has botocore's own retries turned off so requests are counted exactly; an
  injected client should be configured the same way (``retries={"total_max_attempts": 1}``).
- A retried conditional write is ambiguous: the attempt that "failed" may have been applied. If a
  later attempt then loses its condition to an object holding exactly our bytes, that was our own
  write, and the operation succeeds.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    HTTPClientError,
    IncompleteReadError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from stelae.sequencer.store import (
    ImmutableConflictError,
    ObjectNotFound,
    PreconditionFailed,
    RequestCounters,
    StoreError,
    TransientStoreError,
    Versioned,
    check_mutable,
    check_partial_keys,
    check_write,
)
from stelae.tiles.errors import FormatError
from stelae.tiles.paths import ObjectClass, validate_key

T = TypeVar("T")

# Error codes S3 (and compatible stores) use for "slow down, try again".
_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "RequestTimeout",
        "InternalError",
        "ServiceUnavailable",
        "OperationAborted",
    }
)
_NETWORK_ERRORS = (HTTPClientError, BotoConnectionError, IncompleteReadError)
_DELETE_BATCH = 1000  # the most keys one DeleteObjects request may name


class _Lost:
    """Returned by an attempt whose condition failed (412/409/404), instead of raising."""

    def __init__(self, status: int) -> None:
        self.status = status


def _status(err: ClientError) -> int:
    return int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _is_not_found(err: ClientError) -> bool:
    return _status(err) == 404 or _code(err) in ("NoSuchKey", "404", "NotFound")


def _is_transient(err: ClientError) -> bool:
    return _status(err) >= 500 or _code(err) in _TRANSIENT_CODES


class S3Store:
    """Objects in an S3 bucket; see the module docstring for how each guarantee is kept.

    ``sleep`` and ``rng`` are injectable so tests can observe the backoff without waiting.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        client: Any = None,
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        max_attempts: int = 5,
        max_pool_connections: int = 16,
        backoff_base: float = 0.05,
        backoff_cap: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if prefix:
            validate_key(prefix.rstrip("/"))
            prefix = prefix.rstrip("/") + "/"
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if client is None:
            client = boto3.client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=region_name,
                config=Config(
                    retries={"total_max_attempts": 1},
                    # One connection per write the sequencer has in flight (its
                    # ``parallel_writes``): with fewer, botocore queues the rest and a batch's
                    # single wave of writes becomes several round trips.
                    max_pool_connections=max_pool_connections,
                    # Path style works with every S3-compatible store and with IP endpoints.
                    s3={"addressing_style": "path"} if endpoint_url else None,
                ),
            )
        self.bucket = bucket
        self.prefix = prefix
        self.client = client
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 - jitter, not crypto
        self._counters = RequestCounters()

    @classmethod
    def from_url(cls, url: str) -> S3Store:
        """The log at ``s3://BUCKET[/PREFIX]``; credentials, region and ``AWS_ENDPOINT_URL`` (for
        S3-compatible stores) come from the usual AWS environment."""
        if not url.startswith("s3://"):
            raise FormatError(f"{url!r} is not s3://BUCKET[/PREFIX]")
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise FormatError(f"{url!r} names no bucket (s3://BUCKET[/PREFIX])")
        return cls(bucket, prefix.strip("/"))

    @property
    def counters(self) -> RequestCounters:
        return self._counters

    def object_name(self, key: str) -> str:
        """The S3 object key holding ``key`` (validated)."""
        validate_key(key)
        return self.prefix + key

    # -- reads ----------------------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        return self.get_versioned(key).data

    def get_versioned(self, key: str) -> Versioned:
        name = self.object_name(key)

        def attempt() -> Versioned:
            try:
                resp = self.client.get_object(Bucket=self.bucket, Key=name)
                # Reading the body is part of the attempt: a connection cut mid-body retries.
                data = resp["Body"].read()
            except ClientError as err:
                if _is_not_found(err):
                    raise ObjectNotFound(key) from None
                raise
            return Versioned(bytes(data), str(resp["ETag"]))

        return self._call("GET", f"couldn't read {key!r}", attempt)[0]

    # -- writes ---------------------------------------------------------------------------------

    def put_immutable(self, key: str, data: bytes, cls: ObjectClass) -> None:
        check_write(key, data, cls)
        name = self.object_name(key)
        data = bytes(data)
        # A 409 means a concurrent conditional write to the key had not finished; once it has,
        # the object is there to compare. Bounded, like every other retry here.
        for _ in range(self.max_attempts):
            result, _attempts = self._call(
                "PUT",
                f"couldn't write {key!r}",
                lambda: self._conditional_put(name, data, cls, if_none_match=True),
            )
            if not isinstance(result, _Lost):
                return
            try:
                existing = self.get(key)
            except ObjectNotFound:
                continue
            if existing != data:
                raise ImmutableConflictError(key, existing, data)
            return
        raise TransientStoreError(f"couldn't write {key!r}: conditional writes kept conflicting")

    def put_if(self, key: str, data: bytes, cls: ObjectClass, expected_version: str | None) -> str:
        check_write(key, data, cls)
        check_mutable(key, cls)
        name = self.object_name(key)
        data = bytes(data)
        result, attempts = self._call(
            "PUT",
            f"couldn't write {key!r}",
            lambda: self._conditional_put(
                name,
                data,
                cls,
                if_none_match=expected_version is None,
                if_match=expected_version,
            ),
        )
        if not isinstance(result, _Lost):
            return result
        if attempts > 1:
            # An earlier attempt may have been applied and its answer lost: if the object now
            # holds exactly our bytes, the condition failed against our own write.
            try:
                current = self.get_versioned(key)
            except ObjectNotFound:
                current = None
            if current is not None and current.data == data:
                return current.version
        raise PreconditionFailed(key, expected_version)

    def flush(self) -> None:
        """Writes are durable on return; nothing is deferred."""

    def delete_partials(self, keys: Sequence[str]) -> None:
        """Delete obsolete partial tiles and bundles (the :class:`PartialDeleter` contract).

        DeleteObjects, up to 1,000 keys a request, quiet (S3 answers only the failures). S3
        reports a key that holds nothing as deleted, so a repeat is harmless. Every key is
        checked before the first request; one the bucket refuses raises StoreError naming it.
        """
        check_partial_keys(keys)
        names = [self.prefix + key for key in keys]
        for start in range(0, len(names), _DELETE_BATCH):
            chunk = names[start : start + _DELETE_BATCH]
            request = {"Objects": [{"Key": n} for n in chunk], "Quiet": True}

            def attempt(request: dict[str, Any] = request) -> list[dict[str, Any]]:
                resp = self.client.delete_objects(Bucket=self.bucket, Delete=request)
                return list(resp.get("Errors") or [])

            errors, _ = self._call("DELETE", f"couldn't delete {chunk[0]!r}...", attempt)
            if errors:
                first = errors[0]
                raise StoreError(
                    f"couldn't delete {first.get('Key')!r} and {len(errors) - 1} more: "
                    f"{first.get('Code')}: {first.get('Message')}"
                )

    # -- mechanics ------------------------------------------------------------------------------

    def _conditional_put(
        self,
        name: str,
        data: bytes,
        cls: ObjectClass,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> str | _Lost:
        """One PutObject; the new ETag, or _Lost if its condition failed."""
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": name,
            "Body": data,
            "ContentType": cls.content_type,
            "CacheControl": cls.cache_control,
        }
        if if_none_match:
            args["IfNoneMatch"] = "*"
        if if_match is not None:
            args["IfMatch"] = if_match
        conditional = if_none_match or if_match is not None
        try:
            resp = self.client.put_object(**args)
        except ClientError as err:
            status = _status(err)
            if conditional and (
                status in (409, 412) or (if_match is not None and _is_not_found(err))
            ):
                return _Lost(status)
            raise
        return str(resp["ETag"])

    def _call(self, kind: str, what: str, attempt: Callable[[], T]) -> tuple[T, int]:
        """Run ``attempt`` until it returns, retrying transient failures; (result, attempts).

        Each attempt is one request of ``kind`` and is counted. Non-transient errors are raised
        as StoreError at once; errors the attempt raises itself (ObjectNotFound) pass through.
        """
        for n in range(1, self.max_attempts + 1):
            self._counters.add(kind)
            try:
                return attempt(), n
            except ClientError as err:
                if not _is_transient(err):
                    raise StoreError(
                        f"{what}: {_code(err) or _status(err)}: {err}",
                    ) from err
                last: Exception = err
            except _NETWORK_ERRORS as err:
                last = err
            if n < self.max_attempts:
                self._sleep(self._backoff(n))
        raise TransientStoreError(
            f"{what}: still failing after {self.max_attempts} attempts: {last}",
            hint="the store is throttling or unavailable; retry the whole step later",
        ) from last

    def _backoff(self, failures: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**(failures-1)))."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (failures - 1))
        return self._rng.uniform(0, ceiling)
