"""Waiting until a writer's entry is published: the deadline every submitter keeps, and its end.

A writer waits until a published checkpoint covers its entry or its deadline passes. Past the
deadline the entry stays queued (durably) and the submitter raises :func:`not_yet_integrated`,
which the write API answers with 202 and where to fetch the entry later. What a receipt is worth
is checked in one place for every submitter: the write service verifies its inclusion proof
against the checkpoint it carries before answering 201 (``stelae/api/service.py``).

How a wait learns that the entry is published differs, on purpose:

- In one process (``stelae.api.submit.InProcessSubmitter``) and across the ``--workers`` relay
  (``stelae.server.relay.RemoteSubmitter``) the batcher that integrates the entry resolves a
  future when its batch is published: an event, awaited with :func:`await_receipt`.
- On AWS (:class:`stelae.sequencer.sqs.SqsSubmitter`) the write function and the sequencer
  function share nothing but S3 and SQS, and neither can notify a waiting function, so the writer
  polls the log's objects on a schedule tuned for request cost (``stelae/sequencer/sqs.py``),
  keeping the same :class:`Deadline`.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable

from stelae.sequencer.batcher import NotYetIntegratedError
from stelae.sequencer.receipt import Receipt
from stelae.tiles.batch import PendingEntry

__all__ = ["Deadline", "await_receipt", "not_yet_integrated"]


def not_yet_integrated(entry: PendingEntry) -> NotYetIntegratedError:
    """What a submitter raises when its deadline passes: the entry is queued, not yet published."""
    return NotYetIntegratedError(f"entry {entry.leaf_hash.hex()} is queued but not yet integrated")


def await_receipt(
    future: concurrent.futures.Future[Receipt], entry: PendingEntry, timeout: float
) -> Receipt:
    """The receipt ``future`` resolves to within ``timeout`` seconds, else
    :func:`not_yet_integrated`. Any refusal the future carries (a full queue, a halted log) is
    raised as it is."""
    try:
        return future.result(timeout)
    except concurrent.futures.TimeoutError as err:
        raise not_yet_integrated(entry) from err


class Deadline:
    """The moment a polling writer stops waiting, on an injectable monotonic clock."""

    def __init__(self, timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.at = clock() + timeout

    def allows(self, delay: float) -> bool:
        """Whether waiting ``delay`` more seconds still ends by the deadline."""
        return self._clock() + delay <= self.at
