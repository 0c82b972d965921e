"""The batcher's adaptive pending limit: overload is refused at once (QueueFullError: a 503 with
Retry-After), never queued beyond what the sequencer integrates in ``target_latency``.

Deterministic: the sequencer is a fake whose batches take exactly as long as the test says on an
injected clock, and which holds each batch until the test lets it go, so the queue length at each
submission is known. No timing, no sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import pytest

from stelae.sequencer.batcher import Batcher, QueueFullError
from stelae.sequencer.pending import PendingEntry


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class GatedSequencer:
    """Integrates a batch in ``seconds_per_entry`` * its size on ``clock``, once released."""

    clock: FakeClock
    seconds_per_entry: float
    entered: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    allowed: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    sizes: list[int] = field(default_factory=list)

    def integrate(self, entries: Sequence[PendingEntry]) -> object:
        self.sizes.append(len(entries))
        self.entered.release()
        assert self.allowed.acquire(timeout=30), "the test never released the batch"
        self.clock.now += self.seconds_per_entry * len(entries)
        return _Result({e.leaf_hash: ("receipt", e.leaf_hash) for e in entries})

    def wait_for_batch(self) -> None:
        assert self.entered.acquire(timeout=30), "no batch reached the sequencer"


@dataclass
class _Result:
    receipts: dict[bytes, object]


_counter = iter(range(10**9))


def entry() -> PendingEntry:
    return PendingEntry(b'{"n":%d}' % next(_counter))


def fill(batcher: Batcher, n: int) -> list[Future[object]]:
    return [batcher.submit(entry()) for _ in range(n)]  # type: ignore[misc]


@pytest.fixture
def make() -> Iterator[object]:
    made: list[tuple[Batcher, GatedSequencer]] = []

    def _make(seconds_per_entry: float, **kw: object) -> tuple[Batcher, GatedSequencer]:
        clock = FakeClock()
        seq = GatedSequencer(clock, seconds_per_entry)
        batcher = Batcher(seq, max_age=0, clock=clock, **kw)  # type: ignore[arg-type]
        batcher.start()
        made.append((batcher, seq))
        return batcher, seq

    yield _make
    for batcher, seq in made:
        seq.allowed.release(10**6)  # let every remaining batch through, then drain
        batcher.stop()


def test_the_limit_follows_the_measured_rate(make) -> None:  # type: ignore[no-untyped-def]
    """1 ms an entry is 1,000 entries/s; with a 0.5 s target, 500 may wait and the 501st is
    refused, with a Retry-After of the time the 500 take."""
    batcher, seq = make(0.001, max_batch=100, max_pending=20000, target_latency=0.5, min_pending=64)
    fill(batcher, 1)
    seq.wait_for_batch()  # a batch of one is integrating; the queue is empty
    # Nothing timed yet: one batch's worth (max_batch) may wait.
    assert batcher.rate is None and batcher.pending_limit() == 100
    fill(batcher, 100)
    with pytest.raises(QueueFullError) as refused:
        fill(batcher, 1)
    assert refused.value.retry_after >= 1
    seq.allowed.release()  # the batch of one took 1 ms: 1,000 entries/s
    seq.wait_for_batch()  # the 100 waiting are the next batch; the queue is empty again
    assert batcher.rate == pytest.approx(1000)
    assert batcher.pending_limit() == 500
    fill(batcher, 500)
    with pytest.raises(QueueFullError) as refused:
        fill(batcher, 1)
    assert refused.value.retry_after == 1  # 500 entries at 1,000/s
    assert "500 entries waiting" in str(refused.value)


def test_a_slow_sequencer_shrinks_the_limit_to_the_floor(make) -> None:  # type: ignore[no-untyped-def]
    """A sequencer that slows down (a loaded disk: 50 ms an entry, 20/s) is followed within a
    few batches: the limit falls to the floor and Retry-After grows with the backlog."""
    batcher, seq = make(0.001, max_batch=10, max_pending=20000, target_latency=0.5, min_pending=8)
    fill(batcher, 1)
    seq.wait_for_batch()
    seq.seconds_per_entry = 0.05
    for _ in range(8):  # eight slow batches of one
        fill(batcher, 1)
        seq.allowed.release()
        seq.wait_for_batch()
    assert batcher.rate is not None and batcher.rate < 25
    assert batcher.pending_limit() == 10  # max(8, int(rate * 0.5)) with rate just over 20/s
    fill(batcher, 10)
    with pytest.raises(QueueFullError) as refused:
        fill(batcher, 1)
    assert refused.value.retry_after == 1  # ceil(10 / ~20.x)
    assert seq.sizes[:9] == [1] * 9


def test_max_pending_stays_the_hard_cap_and_none_disables_adaptation(make) -> None:  # type: ignore[no-untyped-def]
    fast, seq = make(0.000001, max_batch=10, max_pending=30, target_latency=0.5)
    fill(fast, 1)
    seq.wait_for_batch()
    seq.allowed.release()
    fill(fast, 1)  # taken once the first batch is done and timed
    seq.wait_for_batch()
    assert fast.rate is not None and fast.rate * 0.5 > 30
    assert fast.pending_limit() == 30
    fixed, seq2 = make(1.0, max_batch=10, max_pending=40, target_latency=None)
    fill(fixed, 1)
    seq2.wait_for_batch()
    seq2.allowed.release()
    fill(fixed, 1)
    seq2.wait_for_batch()
    assert fixed.rate == pytest.approx(1.0)
    assert fixed.pending_limit() == 40  # one entry a second, but no adaptive limit asked for
    fill(fixed, 40)
    with pytest.raises(QueueFullError):
        fill(fixed, 1)


def test_serve_uses_the_adaptive_limit_by_default(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from stelae.sequencer.logdir import LogConfig, init_log
    from stelae.server.app import open_batcher

    local, _ = init_log(tmp_path / "data", "limit.example/log")
    assert LogConfig.queue_target_ms == 500
    batcher = open_batcher(local)
    try:
        assert batcher.target_latency == 0.5
        assert batcher.max_pending == local.config.max_pending
    finally:
        batcher.sequencer.close()
