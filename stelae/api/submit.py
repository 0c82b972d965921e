"""How the write service hands an entry to the sequencer and waits for it to be integrated.

A :class:`Submitter` queues an entry and blocks until a published checkpoint covers it or the
deadline passes. Two exist: :class:`InProcessSubmitter` over the local :class:`Batcher`, and the
SQS submitter used on AWS (``stelae.sequencer.sqs``).
"""

from __future__ import annotations

import concurrent.futures
from typing import Protocol

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
        future = self.batcher.submit(entry)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError as err:
            raise NotYetIntegratedError(
                f"entry {entry.leaf_hash.hex()} is queued but not yet integrated"
            ) from err
