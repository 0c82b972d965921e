"""How the write service hands an entry to the sequencer and waits for it to be integrated.

A :class:`Submitter` queues an entry and blocks until a published checkpoint covers it or the
deadline passes. Three exist: :class:`InProcessSubmitter` over the local :class:`Batcher`, the
``--workers`` relay to the supervisor's batcher (``stelae.server.relay``), and the SQS submitter
used on AWS (``stelae.sequencer.sqs``). They share the deadline and what it ends in
(:mod:`stelae.sequencer.awaiter`, which also says why the SQS one polls where the others wait on
an event).
"""

from __future__ import annotations

from typing import Protocol

from stelae.sequencer.awaiter import await_receipt
from stelae.sequencer.batcher import Batcher, NotYetIntegratedError
from stelae.sequencer.receipt import Receipt
from stelae.tiles.batch import PendingEntry

__all__ = ["InProcessSubmitter", "NotYetIntegratedError", "Submitter"]


class Submitter(Protocol):
    def submit(self, entry: PendingEntry, timeout: float) -> Receipt:
        """Queue ``entry`` and wait up to ``timeout`` seconds for its receipt.

        Raises QueueFullError when the queue refuses it, NotYetIntegratedError on timeout.
        """
        ...


class InProcessSubmitter:
    def __init__(self, batcher: Batcher) -> None:
        self.batcher = batcher

    def submit(self, entry: PendingEntry, timeout: float) -> Receipt:
        return await_receipt(self.batcher.submit(entry), entry, timeout)
