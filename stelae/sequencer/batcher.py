"""The in-process queue: collects submissions into batches that close on size or age.

Used by ``stelae serve``; on AWS the queue is SQS and the batch is whatever SQS delivers. A
submission's future resolves only after the checkpoint covering it is published, so answering a
client from it never acknowledges an entry that a crash could lose. The queue is bounded, so
that overload is refused at once (:class:`QueueFullError`, a 503 with Retry-After) rather than
answered ever later: it holds at most what the sequencer integrates in ``target_latency``
seconds at its recent rate (entries/s, an exponential moving average over batches), never fewer
than ``min_pending``, never more than ``max_pending``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future

from stelae.errors import StelaeError
from stelae.sequencer.engine import Sequencer
from stelae.sequencer.pending import PendingEntry
from stelae.sequencer.receipt import IntegrationResult, LogCorruptedError, Receipt
from stelae.sequencer.store import ImmutableConflictError
from stelae.tiles.counts import count

#: Weight of the newest batch in the integration-rate average: a few batches (a fraction of a
#: second under load) are enough to follow a slower disk, one slow batch does not halve it.
RATE_WEIGHT = 0.3
#: The adaptive limit's floor: a slow sequencer still gets a queue to batch from, and a burst of a
#: few hundred writers (the rate is measured from small batches at first) is not refused.
MIN_PENDING = 256


class QueueFullError(StelaeError):
    """Too many submissions are waiting; the caller should retry after ``retry_after`` seconds.
    ``pending`` is how many were waiting when this one was refused."""

    def __init__(self, pending: int, retry_after: int) -> None:
        super().__init__(
            f"the log is busy ({count(pending, 'entry', 'entries')} waiting); retry later"
        )
        self.pending = pending
        self.retry_after = retry_after


class QueueUnavailableError(StelaeError):
    """The queue could not take the entry at all (SQS throttled it, or is down): nothing was
    queued; the caller should retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotYetIntegratedError(StelaeError):
    """The entry is queued (durably) but no published checkpoint covered it before the deadline."""


class ShuttingDownError(StelaeError):
    """The batcher is stopping and accepts no new entries."""


class LogHaltedError(StelaeError):
    """The sequencer met a fatal error (the store contradicts itself) and stopped for good:
    nothing more is integrated until an operator looks (``stelae fsck``) and restarts it."""


FATAL: tuple[type[BaseException], ...] = (LogCorruptedError, ImmutableConflictError)
"""Errors that say the store contradicts itself: retrying would extend a log that cannot be
trusted, so the batcher stops (docs/sequencing.md, "What is fatal")."""


class Batcher:
    """Runs one sequencer on a background thread, feeding it batches from a bounded queue."""

    def __init__(
        self,
        sequencer: Sequencer,
        *,
        max_batch: int = 1024,
        max_age: float = 0.05,
        max_pending: int = 20000,
        target_latency: float | None = None,
        min_pending: int | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_fatal: Callable[[BaseException], None] | None = None,
        refresh_every: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``target_latency`` (seconds; None: no adaptive limit) bounds the queue to what the
        sequencer integrates in that long at its measured rate, at least ``min_pending`` and at
        most ``max_pending`` (before the first batch is timed: one batch's worth). ``clock``
        times integrations for that rate (a test seam; batch ages use the real monotonic
        clock)."""
        self.sequencer = sequencer
        self.max_batch = max_batch
        self.max_age = max_age
        self.max_pending = max_pending
        self.target_latency = target_latency
        self.min_pending = MIN_PENDING if min_pending is None else min_pending
        self.on_error = on_error
        self.on_fatal = on_fatal
        self.refresh_every = refresh_every
        self.halted: BaseException | None = None
        self._clock = clock
        self.rate: float | None = None  # entries/s integrated, EMA over batches; None: unmeasured
        self._queue: deque[tuple[PendingEntry, Future[Receipt], float]] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="stelae-sequencer", daemon=True)
        self.batches = 0

    def start(self) -> None:
        self._thread.start()
        if self.refresh_every:
            threading.Thread(target=self._refresh, name="stelae-refresh", daemon=True).start()

    def _refresh(self) -> None:
        """Every ``refresh_every`` seconds, re-publish the checkpoint freshly cosigned
        (:meth:`Sequencer.refresh`); a failure is logged and tried again next time."""
        assert self.refresh_every is not None
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopping, timeout=self.refresh_every)
                if self._stopping or self.halted is not None:
                    return
            try:
                self.sequencer.refresh()
            except Exception as err:  # witnesses unreachable: the next round tries again
                if self.on_error is not None:
                    self.on_error(err)

    def submit(self, entry: PendingEntry) -> Future[Receipt]:
        future: Future[Receipt] = Future()
        with self._cond:
            if self.halted is not None:
                raise LogHaltedError(f"the log has stopped after a fatal error: {self.halted}")
            if self._stopping:
                raise ShuttingDownError("the log is shutting down; retry shortly")
            if len(self._queue) >= self.pending_limit():
                raise QueueFullError(len(self._queue), self._retry_after())
            self._queue.append((entry, future, time.monotonic()))
            self._cond.notify()
        return future

    def pending_limit(self) -> int:
        """How many entries may wait now (see the module docstring)."""
        if self.target_latency is None:
            return self.max_pending
        if self.rate is None:  # no batch timed yet: one batch's worth
            return min(self.max_pending, max(self.min_pending, self.max_batch))
        return min(self.max_pending, max(self.min_pending, int(self.rate * self.target_latency)))

    def _retry_after(self) -> int:
        """Whole seconds until the queue has drained at the measured rate (at least 1)."""
        waiting = len(self._queue)
        if self.rate:
            return max(1, math.ceil(waiting / self.rate))
        return max(1, int(waiting / max(self.max_batch, 1) * self.max_age) + 1)

    def _observe(self, entries: int, seconds: float) -> None:
        """Fold one batch's integration rate into the moving average."""
        sample = entries / max(seconds, 1e-6)
        with self._cond:
            self.rate = (
                sample
                if self.rate is None
                else (RATE_WEIGHT * sample + (1 - RATE_WEIGHT) * self.rate)
            )

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
            started = self._clock()
            try:
                result = self.sequencer.integrate([e for e, _, _ in batch])
            except BaseException as err:
                if isinstance(err, FATAL):
                    self._halt(batch, err)
                    return
                for _, future, _ in batch:
                    future.set_exception(err)
                if self.on_error is not None:
                    self.on_error(err)
                continue
            self._observe(len(batch), self._clock() - started)
            self.batches += 1
            self._resolve(batch, result)

    def _halt(
        self, batch: list[tuple[PendingEntry, Future[Receipt], float]], err: BaseException
    ) -> None:
        """Stop for good: answer every waiting writer (nothing of theirs is acknowledged, and
        their entries stay queued durably in no way the log will lose, since none was
        acknowledged), refuse new ones, and tell the owner."""
        halted = LogHaltedError(f"the log has stopped after a fatal error: {err}")
        with self._cond:
            self.halted = err
            waiting = batch + list(self._queue)
            self._queue.clear()
        for _, future, _ in waiting:
            future.set_exception(halted)
        if self.on_fatal is not None:
            self.on_fatal(err)

    @staticmethod
    def _resolve(
        batch: list[tuple[PendingEntry, Future[Receipt], float]], result: IntegrationResult
    ) -> None:
        for entry, future, _ in batch:
            future.set_result(result.receipts[entry.leaf_hash])
