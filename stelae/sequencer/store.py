"""The object store the sequencer writes the log into: its contract, errors and shared checks.

Every key and the class of object it holds (:class:`~stelae.tiles.paths.ObjectClass`: Content-Type,
Cache-Control, whether it may be replaced or served) are declared once, in the pure layout module
:mod:`stelae.tiles.paths` (docs/layout.md). The S3 backend sets the headers on upload; the local
static file server derives them from the key with :func:`~stelae.tiles.paths.object_class_for_key`.

Backends implement :class:`ObjectStore`; its docstring is the contract. Every backend counts the
requests it makes in a :class:`RequestCounters`, which the benchmarks and the AWS cost model read.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from stelae.errors import StelaeError
from stelae.tiles.errors import FormatError, NotFoundError
from stelae.tiles.layout import TileID
from stelae.tiles.paths import (
    ObjectClass,
    classify,
    parse_run_shard_path,
    run_shard_path,
)

# ---------------------------------------------------------------------------------------------
# Errors


class StoreError(StelaeError):
    """An object store operation failed. Subclasses say how."""


class ObjectNotFound(StoreError, NotFoundError):  # noqa: N818 - reads as a state, like NotFoundError
    """The key holds no object."""

    def __init__(self, key: str) -> None:
        super().__init__(f"object {key!r} not found")
        self.key = key


class ImmutableConflictError(StoreError):
    """An immutable key already holds different bytes than the ones being written.

    This is never a race to retry: the same immutable object was computed two different ways,
    which means a bug or a fork. The digests are the evidence.
    """

    def __init__(self, key: str, existing: bytes, attempted: bytes) -> None:
        self.key = key
        self.existing_sha256 = hashlib.sha256(existing).hexdigest()
        self.attempted_sha256 = hashlib.sha256(attempted).hexdigest()
        super().__init__(
            f"immutable object {key!r} already holds different bytes: existing "
            f"{len(existing)} bytes sha256:{self.existing_sha256}, attempted "
            f"{len(attempted)} bytes sha256:{self.attempted_sha256}",
            hint="two writers computed different contents for the same object; stop and "
            "investigate before writing anything else",
        )


class PreconditionFailed(StoreError):  # noqa: N818 - S3's own name for it
    """A compare-and-swap lost: the object was not at ``expected`` version when written.

    ``actual`` is the version found, when the backend knows it (None: absent or unknown).
    """

    def __init__(self, key: str, expected: str | None, actual: str | None = None) -> None:
        want = "absent" if expected is None else f"at version {expected}"
        found = "" if actual is None else f" (found version {actual})"
        super().__init__(f"compare-and-swap of {key!r} lost: expected it {want}{found}")
        self.key = key
        self.expected = expected
        self.actual = actual


class StoreFullError(StoreError):
    """The store has no room for a write (a full disk or an exhausted quota: ENOSPC, EDQUOT).

    Not the writer's fault and not the log's: nothing was published, and the same write succeeds
    once an operator frees space, so the API answers 503 with Retry-After.
    """


class NotPartialKeyError(StoreError, FormatError):
    """A deletion named a key that is not a partial tile, entry bundle or index run shard.

    The only objects a log ever deletes are partial tiles and bundles whose full tile exists
    (https://c2sp.org/tlog-tiles, "Partial Tiles"; docs/durability.md, "Garbage collection") and
    lookup-index runs no recent manifest lists (docs/index.md, "Garbage collection"). Anything
    else is refused before any request is made, so no bug can delete a full tile, a checkpoint,
    a batch record, an index manifest or the checkpoint history. ``key`` is the offending key.
    """

    def __init__(self, key: str) -> None:
        super().__init__(
            f"refusing to delete {key!r}: only partial tiles and bundles (tile/.../<N>.p/<W>) "
            "and index run shards (index/run/<a>-<b>/<s>) are ever deleted"
        )
        self.key = key


class TransientStoreError(StoreError):
    """The store kept failing in a way that may succeed later (throttling, 5xx, connection).

    Whether the last attempt's write was applied is unknown; every write here is idempotent or
    conditional, so retrying the whole step later is safe.
    """


# ---------------------------------------------------------------------------------------------
# Values and helpers shared by the backends


@dataclass(frozen=True)
class Versioned:
    """An object's bytes and the opaque version token to pass back to :meth:`ObjectStore.put_if`."""

    data: bytes
    version: str


class RequestCounters(Mapping[str, int]):
    """How many requests of each kind (``GET``, ``PUT``, ``HEAD``, ``DELETE``) a store has made.

    S3 counts every HTTP attempt, retries included, because each one is billed. Safe to bump from
    many threads.
    """

    KINDS = ("GET", "PUT", "HEAD", "DELETE")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(self.KINDS, 0)

    def add(self, kind: str, n: int = 1) -> None:
        if kind not in self._counts:
            raise ValueError(f"unknown request kind {kind!r}")
        with self._lock:
            self._counts[kind] += n

    def reset(self) -> None:
        with self._lock:
            self._counts = dict.fromkeys(self.KINDS, 0)

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def __getitem__(self, kind: str) -> int:
        return self._counts[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self.KINDS)

    def __len__(self) -> int:
        return len(self.KINDS)

    def __repr__(self) -> str:
        return f"RequestCounters({self.as_dict()})"


def check_write(key: str, data: bytes, cls: ObjectClass) -> None:
    """The checks every backend makes before any write.

    The class must agree with the layout, so that the local static server (which derives headers
    from the key) and S3 (which stores the headers given at upload) serve an object identically.
    No object in the layout is ever legitimately empty (tlog-tiles: empty tiles MUST NOT be
    served), so an empty write is a bug caught here rather than published.
    """
    expected = classify(key)
    if expected is not None and expected is not cls:
        raise FormatError(
            f"object key {key!r} is a {expected.name} in the log layout, not a {cls.name}"
        )
    if not data:
        raise FormatError(f"refusing to write an empty object to {key!r}")


def check_partial_keys(keys: Sequence[str]) -> None:
    """Raise :class:`NotPartialKeyError` unless every key is a partial tile or bundle or an index
    run shard, each in its canonical spelling (the key deleted must be the one the layout
    writes).

    Called by every backend's :meth:`PartialDeleter.delete_partials` before any request.
    """
    for key in keys:
        if not _collectable(key):
            raise NotPartialKeyError(key)


def _collectable(key: str) -> bool:
    try:
        tid = TileID.parse(key)
    except FormatError:
        pass
    else:
        return tid.is_partial and tid.path() == key
    try:
        a, b, s = parse_run_shard_path(key)
    except FormatError:
        return False
    return run_shard_path(a, b, s) == key


def check_mutable(key: str, cls: ObjectClass) -> None:
    """Refuse to overwrite or compare-and-swap an object of an immutable class."""
    if cls.immutable:
        raise FormatError(
            f"{cls.name} objects are immutable; {key!r} must be written with put_immutable"
        )


# ---------------------------------------------------------------------------------------------
# The contract


class ObjectStore(Protocol):
    """Where a log's objects live: a local directory, S3, or memory in tests.

    The contract every backend keeps:

    - Keys are relative slash paths (:func:`~stelae.tiles.paths.validate_key`);
      an invalid key raises FormatError
      naming it, before any request is made.
    - Every write is durable when the call returns: a crash or power loss after return never loses
      it (a local store in group-commit mode defers that to :meth:`flush`, for everything but the
      checkpoint and the sequencer's state). A write that raises may or may not have been applied
      ("failed but persisted"); callers make that safe by only ever writing idempotently or
      conditionally.
    - Safe for concurrent use from many threads, and from many processes sharing one store.
      Conditional writes (:meth:`put_immutable`, :meth:`put_if`) are atomic across all of them.
    - Reads are read-after-write consistent for the same store (S3 has been strongly consistent
      since 2020); callers still never assume a *listing* exists, because there is none.
    - "Not found" is always :class:`ObjectNotFound`. Persistent failures that may go away are
      :class:`TransientStoreError` after the backend's own bounded retries.
    - ``counters`` counts the requests made, by kind.
    """

    @property
    def counters(self) -> RequestCounters:
        """Requests made so far, by kind."""
        ...

    def get(self, key: str) -> bytes:
        """The object's bytes. Raises ObjectNotFound."""
        ...

    def get_versioned(self, key: str) -> Versioned:
        """The object's bytes and its version token for :meth:`put_if`. Raises ObjectNotFound.

        Versions are opaque: compare them only for equality and pass them back unchanged.
        """
        ...

    def put_immutable(self, key: str, data: bytes, cls: ObjectClass) -> None:
        """Create the object if absent; idempotent.

        If the key already holds exactly ``data`` this succeeds (a retry, or a second sequencer
        writing the same deterministic tile). If it holds different bytes it raises
        ImmutableConflictError and leaves the existing object alone. Two concurrent writers never
        both believe they created different objects. Any class may be created this way; the
        immutable classes may *only* be written this way. (One exception, local only: a store
        opened over a power loss's debris — objects written but never flushed, so never
        published — replaces them instead; :mod:`stelae.sequencer.local` says why that is safe.)
        """
        ...

    def put_if(self, key: str, data: bytes, cls: ObjectClass, expected_version: str | None) -> str:
        """Compare-and-swap: write only if the object is at ``expected_version``; return the new.

        ``expected_version=None`` means the key must not exist yet. Raises PreconditionFailed if
        the object is at any other version (including absent, when a version was expected). Of
        many writers racing from the same expected version exactly one wins. Refuses immutable
        classes with FormatError.
        """
        ...

    def flush(self) -> None:
        """Make every write since the last flush durable.

        A no-op for backends whose writes are durable on return (S3, memory). A local store in
        group-commit mode defers the durability of tiles, bundles, index runs and manifests and
        checkpoint history (data and names) until here, and makes them all durable with one
        ``syncfs``. The sequencer calls it before each checkpoint it publishes.
        Raises StoreError if the sync fails; everything then stays owed to the next flush.
        """
        ...


@runtime_checkable
class PartialDeleter(Protocol):
    """The one deletion a log ever makes: obsolete partial tiles and bundles, and index runs
    that merges replaced.

    A separate, narrow protocol rather than a general ``delete`` on :class:`ObjectStore`, so
    that nothing can delete any other object (docs/durability.md and docs/index.md, "Garbage
    collection"). The contract every backend keeps:

    - Every key must be a partial tile or bundle path (``tile/<L>/<N>.p/<W>``,
      ``tile/entries/<N>.p/<W>``) or an index run shard (``index/run/<a>-<b>/<s>``), spelled
      canonically; otherwise
      :class:`NotPartialKeyError` is raised before any request is made and nothing is deleted.
    - Idempotent: a key that holds nothing is no error (it was never written at that width, or
      an earlier, interrupted collection deleted it already).
    - Deleting is only ever safe for a partial whose full tile the published checkpoint covers,
      and for a run no manifest of the last grace period lists; the caller
      (:mod:`stelae.sequencer.collector`) decides that with :mod:`stelae.tiles.gc` and
      :mod:`stelae.tiles.indexgc`, never the store.
    - A call that raises may have deleted some of the keys; retrying the whole call is safe.
    - Each request is counted as ``DELETE`` in the store's :class:`RequestCounters`.
    """

    def delete_partials(self, keys: Sequence[str]) -> None:
        """Delete these partial tiles and bundles and index run shards if they exist."""
        ...
