"""A fault-injecting wrapper around any real ObjectStore (a test seam, not a patch).

``before_write`` raising means "failed and not persisted"; ``after_write`` raising means "failed
but persisted" — the inner backend really wrote the object, the caller sees an error.
"""

from __future__ import annotations

from stelae.sequencer.store import ObjectStore, RequestCounters, Versioned
from stelae.tiles.paths import ObjectClass
from tests.support.memory import WriteEvent, WriteHook


class FaultInjectingStore:
    def __init__(
        self,
        inner: ObjectStore,
        *,
        before_write: WriteHook | None = None,
        after_write: WriteHook | None = None,
    ) -> None:
        self.inner = inner
        self.before_write = before_write
        self.after_write = after_write

    @property
    def counters(self) -> RequestCounters:
        return self.inner.counters

    def get(self, key: str) -> bytes:
        return self.inner.get(key)

    def get_versioned(self, key: str) -> Versioned:
        return self.inner.get_versioned(key)

    def _around(self, event: WriteEvent) -> None:
        if self.before_write is not None:
            self.before_write(event)

    def put_immutable(self, key: str, data: bytes, cls: ObjectClass) -> None:
        event = WriteEvent("put_immutable", key, data, cls)
        self._around(event)
        self.inner.put_immutable(key, data, cls)
        if self.after_write is not None:
            self.after_write(event)

    def put_if(self, key: str, data: bytes, cls: ObjectClass, expected_version: str | None) -> str:
        event = WriteEvent("put_if", key, data, cls)
        self._around(event)
        version = self.inner.put_if(key, data, cls, expected_version)
        if self.after_write is not None:
            self.after_write(event)
        return version

    def flush(self) -> None:
        self.inner.flush()
