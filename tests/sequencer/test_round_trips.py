"""The sequencer's requests per batch on a store, pinned (docs/sequencing.md, "Round trips").

On S3 a batch costs round trips: the claim, one wave of every tile, bundle, index run, manifest
and history object, and the checkpoint's compare-and-swap — no GET of state the sequencer holds.
The counts come from the real sequencer over the in-memory store; the wave is proved with a
barrier that only opens when every one of its writes is in flight at once.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import replace

from benchmarks import workload
from stelae.tiles.paths import ObjectClass, object_class_for_key
from tests.support.memory import MemoryStore

BATCH = 300
WAVE_CLASSES = frozenset(
    {
        ObjectClass.TILE,
        ObjectClass.BUNDLE,
        ObjectClass.INDEX_RUN,
        ObjectClass.INDEX_MANIFEST,
        ObjectClass.CHECKPOINT_HISTORY,
    }
)


class CountingStore(MemoryStore):
    """Every request by method and object class, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, str]] = []
        self._log_lock = threading.Lock()

    def _note(self, method: str, key: str) -> None:
        cls = object_class_for_key(key)
        with self._log_lock:
            self.log.append((method, cls.label if cls else key))

    def get_versioned(self, key: str):  # type: ignore[no-untyped-def]
        self._note("GET", key)
        return super().get_versioned(key)

    def put_immutable(self, key: str, data: bytes, cls: ObjectClass) -> None:
        self._note("PUT", key)
        super().put_immutable(key, data, cls)

    def put_if(self, key: str, data: bytes, cls: ObjectClass, expected_version: str | None) -> str:
        self._note("PUT", key)
        return super().put_if(key, data, cls, expected_version)


class WaveStore(CountingStore):
    """Holds each write of the middle wave at a barrier of ``parties``: a sequencer that issued
    them one after another would time out (BrokenBarrierError) instead of publishing."""

    def __init__(self, parties: int) -> None:
        super().__init__()
        self.barrier = threading.Barrier(parties, timeout=10)
        self.armed = False

    def put_immutable(self, key: str, data: bytes, cls: ObjectClass) -> None:
        if self.armed and cls in WAVE_CLASSES:
            self.barrier.wait()
        super().put_immutable(key, data, cls)


def run_batches(store: CountingStore, arm: bool = False) -> list[tuple[str, str]]:
    config = replace(workload.ALL_INDEXES, parallel_writes=16)
    entries = workload.entries(0, 2 * BATCH)
    with workload.sequencer(store, config) as seq:
        seq.integrate(entries[:BATCH])
        seq.merge()
        store.log.clear()
        if isinstance(store, WaveStore):
            store.armed = arm
        result = seq.integrate(entries[BATCH:])
        assert result.size == 2 * BATCH
        return list(store.log)


def test_a_steady_batch_is_claim_one_wave_and_the_checkpoint_with_no_reads() -> None:
    log = run_batches(CountingStore())
    assert [m for m, _ in log if m != "PUT"] == [], "no GET or HEAD of state the sequencer holds"
    assert log[0] == ("PUT", "batch"), "the claim comes first"
    assert log[-1] == ("PUT", "checkpoint"), "the compare-and-swap comes last"
    middle = Counter(label for _, label in log[1:-1])
    # Size 300 -> 600: bundle 001 (full) and 002.p/88, level-0 tiles 001 and 002.p/88, level-1
    # 000.p/2; one index run shard, the manifest and the history object.
    assert middle == {
        "bundle": 2,
        "tile": 3,
        "index-run": 1,
        "index-manifest": 1,
        "checkpoint-history": 1,
    }, middle


def test_the_middle_writes_are_in_flight_together() -> None:
    parties = len(run_batches(CountingStore())) - 2
    store = WaveStore(parties)
    log = run_batches(store, arm=True)
    assert len(log) == parties + 2
    assert not store.barrier.broken
