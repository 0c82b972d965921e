"""Garbage collection by the real sequencer: partial tiles and bundles deleted after the grace
period, and readers holding any older checkpoint still verifying against the collected log
(https://c2sp.org/tlog-tiles: a client falls back to the full tile when a partial is gone)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from stelae import kinds
from stelae.errors import StelaeError
from stelae.sequencer.collector import RETRY_AFTER, Collector
from stelae.sequencer.engine import Sequencer, SequencerConfig
from stelae.sequencer.local import LocalStore
from stelae.sequencer.pending import PendingEntry
from stelae.sequencer.reader import StoreFetcher
from stelae.sequencer.store import ObjectStore, StoreError
from stelae.tiles.client import LogClient
from stelae.tiles.errors import NotFoundError
from stelae.tiles.fetch import DirectoryFetcher
from stelae.tiles.fsck import fsck
from stelae.tiles.notekeys import Ed25519NoteSigner
from tests.support.memory import MemoryStore

ORIGIN = "example.com/gc"
SIGNER = Ed25519NoteSigner.generate(ORIGIN)
GRACE = 30.0


class Clock:
    """The sequencer's clock, moved by the test (one second per single-entry batch)."""

    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class NotFoundRecorder:
    """A fetcher that records every path that was not found (what a reader saw as 404)."""

    def __init__(self, store: ObjectStore) -> None:
        self.inner = StoreFetcher(store)
        self.missing: list[str] = []

    def fetch(self, path: str) -> bytes:
        try:
            return self.inner.fetch(path)
        except NotFoundError:
            self.missing.append(path)
            raise


def _sequencer(store: ObjectStore, clock: Clock, grace: float | None = GRACE) -> Sequencer:
    config = SequencerConfig(ORIGIN, background_merges=False, gc_grace=grace)
    return Sequencer(store, SIGNER, config, clock=clock)


def _grow(seq: Sequencer, clock: Clock, start: int, end: int) -> dict[int, float]:
    """One entry per batch, one second apart, collecting after each; when each size was
    published."""
    at = {}
    for i in range(start, end):
        clock.t += 1
        seq.integrate([PendingEntry(f'{{"n":{i}}}'.encode())])
        at[i + 1] = clock.t
        seq.collect()
    return at


def _partials(store: MemoryStore) -> list[str]:
    return [k for k in store.keys("tile/") if ".p/" in k]


@pytest.fixture(scope="module")
def collected() -> tuple[MemoryStore, Clock, dict[int, float]]:
    """600 single-entry batches, one a second, with a 30 s grace period."""
    store, clock = MemoryStore(), Clock()
    seq = _sequencer(store, clock)
    seq.published()
    at = _grow(seq, clock, 0, 600)
    seq.close()
    return store, clock, at


def test_partials_of_full_tiles_are_gone_and_the_right_edge_stays(
    collected: tuple[MemoryStore, Clock, dict[int, float]],
) -> None:
    store, _, _ = collected
    left = _partials(store)
    # Tiles 0/000 and 0/001 (and their bundles) are full and older than the grace period; the
    # level-1 tile is still partial, so none of its partials may go (there is no full one).
    assert not [k for k in left if k.startswith(("tile/0/000.p", "tile/0/001.p"))]
    assert not [k for k in left if k.startswith(("tile/entries/000.p", "tile/entries/001.p"))]
    assert {"tile/0/002.p/88", "tile/entries/002.p/88", "tile/1/000.p/2"} <= set(left)
    assert {"tile/1/000.p/1"} <= set(left)
    for full in ("tile/0/000", "tile/0/001", "tile/entries/000", "tile/entries/001"):
        assert store.get(full)
    assert store.violations == []


def test_a_reader_holding_any_older_checkpoint_still_verifies(
    collected: tuple[MemoryStore, Clock, dict[int, float]],
) -> None:
    store, clock, at = collected
    latest = LogClient(StoreFetcher(store), [SIGNER.verifier], ORIGIN).checkpoint()
    fell_back = 0
    for size in [*range(1, 600, 13), 255, 256, 257, 511, 512, 513, 599, 600]:
        recorder = NotFoundRecorder(store)
        reader = LogClient(recorder, [SIGNER.verifier], ORIGIN)
        old = reader.open_checkpoint(store.get(f"checkpoints/{size}"))
        for index in {0, size // 2, size - 1}:
            entry = reader.entry(index, old)  # inclusion proved against the old checkpoint
            assert entry.data == f'{{"n":{index}}}'.encode()
        reader.prove_consistency(old, latest)
        # A checkpoint superseded less than the grace period ago: not a single 404.
        superseded = at.get(size + 1, clock.t)
        if superseded >= clock.t - GRACE:
            assert recorder.missing == [], size
        # Otherwise only partials are missing, and each time the full tile stood in.
        assert all(".p/" in path for path in recorder.missing)
        fell_back += len(recorder.missing)
    assert fell_back > 0  # the readers of old checkpoints did meet collected partials


def test_nothing_is_deleted_before_the_grace_period() -> None:
    store, clock = MemoryStore(), Clock()
    seq = _sequencer(store, clock)
    seq.published()
    _grow(seq, clock, 0, 256)  # tile 0 full at the last step
    clock.t += GRACE - 1
    seq.collect()  # replaced index runs have their own schedule (test_index_gc.py)
    assert len(store.keys("tile/0/000.p/")) == len(store.keys("tile/entries/000.p/")) == 255
    clock.t += 1
    seq.collect()
    assert store.keys("tile/0/000.p/") == [] and store.keys("tile/entries/000.p/") == []
    seq.close()


def test_collection_costs_no_read() -> None:
    """The hot path reads exactly what it read without garbage collection."""
    gets = []
    for grace in (None, 0.0):
        store, clock = MemoryStore(), Clock()
        seq = _sequencer(store, clock, grace)
        seq.published()
        _grow(seq, clock, 0, 300)
        seq.close()
        gets.append(store.counters["GET"])
        assert (store.counters["DELETE"] > 0) == (grace is not None)
    assert gets[0] == gets[1]


def test_a_restarted_sequencer_catches_up() -> None:
    """The first sequencer stops before tile 0's grace period is over; the next one, which knows
    nothing of the widths written, still deletes them all."""
    store, clock = MemoryStore(), Clock()
    first = _sequencer(store, clock)
    first.published()
    _grow(first, clock, 0, 270)
    first.close()
    assert len(store.keys("tile/0/000.p/")) == 255
    second = _sequencer(store, clock)
    second.published()
    clock.t += GRACE
    second.collect()
    assert store.keys("tile/0/000.p/") == [] and store.keys("tile/entries/000.p/") == []
    assert "tile/0/001.p/14" in store.keys("tile/0/001.p/")  # the right edge stays
    second.close()


def test_a_store_that_cannot_delete_is_refused() -> None:
    class ReadOnly(MemoryStore):
        delete_partials = None  # type: ignore[assignment]

    with pytest.raises(StelaeError, match="cannot delete"):
        _sequencer(ReadOnly(), Clock())


class Flaky:
    """Deletes through ``inner`` but fails the first call, having deleted half of it: what a
    crash or an S3 error in the middle of a collection looks like."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner
        self.calls = 0

    def delete_partials(self, keys: Sequence[str]) -> None:
        self.calls += 1
        if self.calls == 1:
            self.inner.delete_partials(keys[: len(keys) // 2])
            raise StoreError("connection reset")
        self.inner.delete_partials(keys)


def test_a_failed_collection_is_retried_and_loses_nothing() -> None:
    store, clock = MemoryStore(), Clock()
    seq = _sequencer(store, clock, grace=None)
    seq.published()
    _grow(seq, clock, 0, 300)
    flaky = Flaky(store)
    collector = Collector(flaky, 0.0, clock=clock, background=False)
    collector.published(300)  # catch-up: tile 0 and bundle 0, every width
    assert collector.run_pending() == 0  # failed (logged), half deleted
    assert 0 < len(store.keys("tile/0/000.p/")) + len(store.keys("tile/entries/000.p/")) < 510
    clock.t += RETRY_AFTER
    assert collector.run_pending() == 510
    assert store.keys("tile/0/000.p/") == [] and store.keys("tile/entries/000.p/") == []
    reader = LogClient(StoreFetcher(store), [SIGNER.verifier], ORIGIN)
    old = reader.open_checkpoint(store.get("checkpoints/100"))
    assert reader.entry(99, old).data == b'{"n":99}'


def test_background_collection_in_a_local_log_and_fsck_accepts_it(tmp_path: Path) -> None:
    root = tmp_path / "log"
    seq = Sequencer(LocalStore(root), SIGNER, SequencerConfig(ORIGIN, gc_grace=0.0))
    seq.published()
    for i in range(300):
        seq.integrate([PendingEntry(f'{{"n":{i}}}'.encode())])
    assert seq.collector is not None
    seq.close()  # deletes what is due, whether or not the background thread got to it
    assert not (root / "tile/0/000.p").exists()
    assert not (root / "tile/entries/000.p").exists()
    assert (root / "tile/0/001.p/44").is_file()
    report = fsck(
        DirectoryFetcher(root).fetch,
        [SIGNER.verifier],
        ORIGIN,
        kinds.lookup_keys,
        list_names=lambda folder: sorted(p.name for p in (root / folder).iterdir()),
    )
    assert report.ok, [p.line() for p in report.problems]
    assert report.checked["history"] == 301  # every history checkpoint, each root recomputed
