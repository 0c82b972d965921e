"""The one awaiter every submitter shares: a receipt in time, the 202 error past the deadline, and
refusals passed through unchanged."""

from __future__ import annotations

from concurrent.futures import Future

import pytest

from stelae.sequencer.awaiter import Deadline, await_receipt, not_yet_integrated
from stelae.sequencer.batcher import NotYetIntegratedError, QueueFullError
from stelae.sequencer.receipt import Receipt
from stelae.tiles.batch import PendingEntry

ENTRY = PendingEntry(b'{"kind": "test"}', ())


def test_a_resolved_future_is_the_receipt() -> None:
    receipt = Receipt(7, False, 1_700_000_000, b"note", 8)
    future: Future[Receipt] = Future()
    future.set_result(receipt)
    assert await_receipt(future, ENTRY, 0.0) is receipt


def test_an_unresolved_future_past_the_deadline_is_not_yet_integrated() -> None:
    future: Future[Receipt] = Future()
    with pytest.raises(NotYetIntegratedError, match=ENTRY.leaf_hash.hex()) as err:
        await_receipt(future, ENTRY, 0.0)
    assert str(err.value) == str(not_yet_integrated(ENTRY))


def test_a_refusal_is_raised_as_it_is() -> None:
    future: Future[Receipt] = Future()
    future.set_exception(QueueFullError(3, 2))
    with pytest.raises(QueueFullError):
        await_receipt(future, ENTRY, 0.0)


def test_the_deadline_allows_a_wait_that_ends_by_it() -> None:
    now = [100.0]
    deadline = Deadline(5.0, lambda: now[0])
    assert deadline.at == 105.0
    assert deadline.allows(5.0) and not deadline.allows(5.01)
    now[0] = 104.0
    assert deadline.allows(1.0) and not deadline.allows(1.5)
