"""The in-process batcher on its own: batches close on size or age, every waiter gets its own
receipt, a failed batch fails only its writers, a fatal error halts the log, and stop drains."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from stelae.sequencer.batcher import Batcher, LogHaltedError, ShuttingDownError
from stelae.sequencer.engine import Sequencer, SequencerConfig
from stelae.sequencer.pending import PendingEntry
from stelae.sequencer.receipt import IntegrationResult, LogCorruptedError, Receipt
from tests.sequencer.test_sequencer import ORIGIN, SIGNER, entry
from tests.support.memory import MemoryStore


class Recording(Sequencer):
    """The real sequencer, recording each batch it is given; optionally failing one."""

    def __init__(self, fail: BaseException | None = None) -> None:
        super().__init__(MemoryStore(), SIGNER, SequencerConfig(ORIGIN, background_merges=False))
        self.batches: list[int] = []
        self.fail = fail
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def integrate(
        self, batch: Sequence[PendingEntry], *, sent_ms: Sequence[int] = ()
    ) -> IntegrationResult:
        self.entered.set()
        self.release.wait(30)
        self.batches.append(len(batch))
        if self.fail is not None:
            err, self.fail = self.fail, None
            raise err
        return super().integrate(batch, sent_ms=sent_ms)


def test_a_batch_closes_when_full_and_each_writer_gets_its_receipt() -> None:
    seq = Recording()
    seq.release.clear()  # hold the first batch so the rest queue up behind it
    batcher = Batcher(seq, max_batch=4, max_age=0.001)
    batcher.start()
    first = batcher.submit(entry(100))
    assert seq.entered.wait(30)
    batcher.max_age = 60  # from now on only a full batch closes
    futures = [batcher.submit(entry(i)) for i in range(8)]
    seq.release.set()
    receipts = [f.result(30) for f in futures]
    assert isinstance(first.result(30), Receipt)
    assert seq.batches == [1, 4, 4], "full batches close without waiting for max_age"
    assert sorted(r.index for r in receipts) == list(range(1, 9))
    for i, r in enumerate(receipts):
        assert r.batch is not None and r.batch.position(entry(i).leaf_hash) == r.index
    batcher.stop()


def test_a_batch_closes_on_age() -> None:
    seq = Recording()
    batcher = Batcher(seq, max_batch=1000, max_age=0.01)
    batcher.start()
    assert batcher.submit(entry(1)).result(30).index == 0
    assert seq.batches == [1]
    batcher.stop()


def test_a_failed_batch_fails_its_writers_and_the_next_batch_goes_on() -> None:
    errors: list[BaseException] = []
    seq = Recording(fail=OSError("disk hiccup"))
    batcher = Batcher(seq, max_batch=10, max_age=0.01, on_error=errors.append)
    batcher.start()
    with pytest.raises(OSError, match="disk hiccup"):
        batcher.submit(entry(1)).result(30)
    assert batcher.submit(entry(2)).result(30).index == 0
    assert [str(e) for e in errors] == ["disk hiccup"]
    batcher.stop()


def test_a_fatal_error_halts_the_log() -> None:
    halted: list[BaseException] = []
    told = threading.Event()

    def on_fatal(err: BaseException) -> None:
        halted.append(err)
        told.set()

    seq = Recording(fail=LogCorruptedError("tile/0/000 hashes to another root"))
    batcher = Batcher(seq, max_batch=10, max_age=0.01, on_fatal=on_fatal)
    batcher.start()
    with pytest.raises(LogHaltedError, match="another root"):
        batcher.submit(entry(1)).result(30)
    with pytest.raises(LogHaltedError):
        batcher.submit(entry(2))
    # Writers are answered before the owner is told: await the telling.
    assert told.wait(30)
    assert len(halted) == 1 and seq.batches == [1], "nothing more was attempted"
    batcher.stop()


def test_stop_integrates_what_is_queued_then_refuses() -> None:
    seq = Recording()
    seq.release.clear()
    batcher = Batcher(seq, max_batch=2, max_age=60)
    batcher.start()
    futures = [batcher.submit(entry(i)) for i in range(5)]
    assert seq.entered.wait(30)
    stopper = threading.Thread(target=batcher.stop)
    stopper.start()
    seq.release.set()
    stopper.join(30)
    assert sorted(f.result(0).index for f in futures) == list(range(5))
    with pytest.raises(ShuttingDownError):
        batcher.submit(entry(9))
