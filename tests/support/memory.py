"""An in-memory :class:`~stelae.sequencer.store.ObjectStore` with teeth, for tests.

It keeps the same contract as the real backends and is stricter where a test wants a bug to be
loud: every attempt to give an immutable key different bytes is both raised and recorded in
:attr:`MemoryStore.violations`, so a test can fail even if the code under test swallowed the error.

Fault injection: ``before_write`` and ``after_write`` are called around every write that would
change the store. An exception from ``before_write`` means "failed and not persisted"; one from
``after_write`` means "failed but persisted" (the write is applied, the caller sees the error),
which is what a lost S3 response or a crash right after ``os.replace`` looks like.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stelae.sequencer.store import (
    ImmutableConflictError,
    ObjectNotFound,
    PreconditionFailed,
    RequestCounters,
    Versioned,
    check_mutable,
    check_partial_keys,
    check_write,
)
from stelae.tiles.paths import ObjectClass, validate_key


@dataclass(frozen=True)
class WriteEvent:
    """One write, as seen by the fault-injection hooks."""

    op: str  # "put_immutable" or "put_if"
    key: str
    data: bytes
    cls: ObjectClass


WriteHook = Callable[[WriteEvent], None]


@dataclass(frozen=True)
class StoredObject:
    data: bytes
    cls: ObjectClass
    version: str


class MemoryStore:
    """A dict behind a lock. Versions are generation numbers (``g1``, ``g2``…), never content
    hashes, so a caller that wrongly derives versions from bytes fails here."""

    def __init__(
        self, *, before_write: WriteHook | None = None, after_write: WriteHook | None = None
    ) -> None:
        self.before_write = before_write
        self.after_write = after_write
        self.violations: list[ImmutableConflictError] = []
        self._objects: dict[str, StoredObject] = {}
        self._lock = threading.RLock()
        self._generation = 0
        self._counters = RequestCounters()

    @property
    def counters(self) -> RequestCounters:
        return self._counters

    # -- inspection, for tests ----------------------------------------------------------------

    def keys(self, prefix: str = "") -> list[str]:
        """Every key starting with ``prefix``, sorted."""
        with self._lock:
            return sorted(k for k in self._objects if k.startswith(prefix))

    def object(self, key: str) -> StoredObject:
        """The stored object with its class, without counting a request."""
        with self._lock:
            try:
                return self._objects[key]
            except KeyError:
                raise ObjectNotFound(key) from None

    def damage(self, key: str, data: bytes | None) -> None:
        """Replace an object's bytes (or, with None, delete it) behind the contract's back: what
        a disk fault or a careless operator does (tests of refusal)."""
        with self._lock:
            obj = self.object(key)
            if data is None:
                del self._objects[key]
                return
            self._generation += 1
            self._objects[key] = StoredObject(bytes(data), obj.cls, f"g{self._generation}")

    # -- ObjectStore ----------------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        return self.get_versioned(key).data

    def get_versioned(self, key: str) -> Versioned:
        validate_key(key)
        self._counters.add("GET")
        obj = self.object(key)
        return Versioned(obj.data, obj.version)

    def put_immutable(self, key: str, data: bytes, cls: ObjectClass) -> None:
        check_write(key, data, cls)
        data = bytes(data)
        self._counters.add("PUT")
        with self._lock:
            existing = self._objects.get(key)
            if existing is not None:
                if existing.data == data:
                    return
                err = ImmutableConflictError(key, existing.data, data)
                self.violations.append(err)
                raise err
            self._write(WriteEvent("put_immutable", key, data, cls))

    def put_if(self, key: str, data: bytes, cls: ObjectClass, expected_version: str | None) -> str:
        check_write(key, data, cls)
        check_mutable(key, cls)
        data = bytes(data)
        self._counters.add("PUT")
        with self._lock:
            existing = self._objects.get(key)
            actual = None if existing is None else existing.version
            if actual != expected_version:
                raise PreconditionFailed(key, expected_version, actual)
            return self._write(WriteEvent("put_if", key, data, cls))

    def delete_partials(self, keys: Sequence[str]) -> None:
        """Forget obsolete partial tiles and bundles (the PartialDeleter contract)."""
        check_partial_keys(keys)
        with self._lock:
            for key in keys:
                self._counters.add("DELETE")
                self._objects.pop(key, None)

    def flush(self) -> None:
        """Writes are durable on return; nothing is deferred."""

    def _write(self, event: WriteEvent) -> str:
        # Called with the lock held, so hooks see and act on a consistent store.
        existing = self._objects.get(event.key)
        if existing is not None and existing.cls is not event.cls:
            raise AssertionError(
                f"{event.key!r} was written as {existing.cls.name} and now as {event.cls.name}"
            )
        if self.before_write is not None:
            self.before_write(event)
        self._generation += 1
        version = f"g{self._generation}"
        self._objects[event.key] = StoredObject(event.data, event.cls, version)
        if self.after_write is not None:
            self.after_write(event)
        return version
