"""The in-process queue: collects submissions into batches that close on size or age.

Used by ``stelae serve``; on AWS the queue is SQS and the batch is whatever SQS delivers. A
submission's future resolves only after the checkpoint covering it is published, so answering a
client from it never acknowledges an entry that a crash could lose. The queue is bounded: beyond
``max_pending`` waiting entries :meth:`Batcher.submit` raises :class:`QueueFullError` at once
rather than letting latency grow without bound.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future

from stelae.sequencer.engine import IntegrationResult, Receipt, Sequencer
from stelae.sequencer.pending import PendingEntry
from stelae.tiles.errors import StelaeError


class QueueFullError(StelaeError):
    """Too many submissions are waiting; the caller should retry after ``retry_after`` seconds."""

    def __init__(self, pending: int, retry_after: int) -> None:
        super().__init__(f"the log is busy ({pending} entries waiting); retry later")
        self.retry_after = retry_after


class NotYetIntegratedError(StelaeError):
    """The entry is queued (durably) but no published checkpoint covered it before the deadline."""


class ShuttingDownError(StelaeError):
    """The batcher is stopping and accepts no new entries."""


class Batcher:
    """Runs one sequencer on a background thread, feeding it batches from a bounded queue."""

    def __init__(
        self,
        sequencer: Sequencer,
        *,
        max_batch: int = 1024,
        max_age: float = 0.05,
        max_pending: int = 20000,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.sequencer = sequencer
        self.max_batch = max_batch
        self.max_age = max_age
        self.max_pending = max_pending
        self.on_error = on_error
        self._queue: deque[tuple[PendingEntry, Future[Receipt], float]] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="stelae-sequencer", daemon=True)
        self.batches = 0

    def start(self) -> None:
        self._thread.start()

    def submit(self, entry: PendingEntry) -> Future[Receipt]:
        future: Future[Receipt] = Future()
        with self._cond:
            if self._stopping:
                raise ShuttingDownError("the log is shutting down; retry shortly")
            if len(self._queue) >= self.max_pending:
                retry = max(1, int(len(self._queue) / max(self.max_batch, 1) * self.max_age) + 1)
                raise QueueFullError(len(self._queue), retry)
            self._queue.append((entry, future, time.monotonic()))
            self._cond.notify()
        return future

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop accepting, integrate everything already queued, then return."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _take_batch(self) -> list[tuple[PendingEntry, Future[Receipt], float]] | None:
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            if not self._queue:
                return None  # stopping and drained
            # The batch closes when it is full or its oldest entry is max_age old.
            deadline = self._queue[0][2] + self.max_age
            while len(self._queue) < self.max_batch and not self._stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            n = min(self.max_batch, len(self._queue))
            return [self._queue.popleft() for _ in range(n)]

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            try:
                result = self.sequencer.integrate([e for e, _, _ in batch])
            except BaseException as err:
                for _, future, _ in batch:
                    future.set_exception(err)
                if self.on_error is not None:
                    self.on_error(err)
                continue
            self.batches += 1
            self._resolve(batch, result)

    @staticmethod
    def _resolve(
        batch: list[tuple[PendingEntry, Future[Receipt], float]], result: IntegrationResult
    ) -> None:
        for entry, future, _ in batch:
            future.set_result(result.receipts[entry.leaf_hash])
