"""Garbage collection: deleting obsolete partial tiles and bundles (docs/durability.md), and the
lookup-index runs that merges replaced (docs/index.md).

The sequencer tells the collector every checkpoint it publishes or reads
(:meth:`Collector.published`); the pure :class:`~stelae.tiles.gc.PartialLedger` turns that into
the partial tiles and bundles that may be deleted, each ``grace`` seconds after the checkpoint
that made its full tile available (https://c2sp.org/tlog-tiles, "Partial Tiles"); with the run
list of each manifest, the pure :class:`~stelae.tiles.indexgc.IndexLedger` turns that into the
runs no manifest of the last ``grace`` seconds lists. Nothing is
read to decide, so integration pays no GET for it; the deletions themselves happen after the
batch is answered, on a background thread (``stelae serve``) or when the owner calls
:meth:`Collector.run_pending` (the AWS sequencer Lambda after answering, tests, benchmarks).

Crash safety: deleting is idempotent, and only objects no current checkpoint needs are deleted,
so a crash at any point loses nothing a reader needs. What a crash leaves undeleted is the
catch-up's to find when the next sequencer starts (the ledger's bounded catch-up), or
``stelae gc``'s. A deletion that fails is logged and retried later; it never stops the log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from stelae.errors import StelaeError
from stelae.sequencer.store import PartialDeleter
from stelae.tiles.gc import PartialLedger, obsolete_at, obsolete_count
from stelae.tiles.indexgc import IndexLedger, shard_keys
from stelae.tiles.indexrecord import RunRef

log = logging.getLogger("stelae.gc")

RETRY_AFTER = 60.0
"""Seconds before partials whose deletion failed are tried again."""

CHUNK = 1000
"""Keys handed to the store per call (one S3 DeleteObjects request)."""


class Collector:
    """Deletes what the ledger says is due; see the module docstring.

    ``clock`` must be the clock the sequencer publishes by (seconds). ``background`` starts a
    thread that deletes as things fall due; otherwise the owner calls :meth:`run_pending`.
    """

    def __init__(
        self,
        deleter: PartialDeleter,
        grace: float,
        *,
        clock: Callable[[], float] = time.time,
        background: bool = True,
    ) -> None:
        self.deleter = deleter
        self._clock = clock
        self._ledger = PartialLedger(grace)
        self._index = IndexLedger(grace)
        self._claimed: tuple[RunRef, ...] = ()  # runs the batch being integrated names
        self._cond = threading.Condition()
        self._stopping = False
        self.deleted = 0
        """Keys deleted so far (those that held nothing included)."""
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._loop, name="stelae-gc", daemon=True)
            self._thread.start()

    @property
    def grace(self) -> float:
        return self._ledger.grace

    def published(
        self, size: int, *, previous: int | None = None, runs: Sequence[RunRef] | None = None
    ) -> None:
        """A checkpoint of ``size`` is published; ``previous`` as in
        :meth:`PartialLedger.published` (the size it was built on, when nothing came between);
        ``runs`` the runs its index manifest lists (None: the log has no lookup index)."""
        with self._cond:
            now = self._clock()
            self._ledger.published(size, now, previous=previous)
            if runs is not None:
                self._index.published(size, runs, now)
            self._claimed = ()
            self._cond.notify_all()

    def claimed(self, runs: Sequence[RunRef]) -> None:
        """A batch record naming ``runs`` is claimed: none of them is deleted until the next
        :meth:`published` (its manifest will list them)."""
        with self._cond:
            self._claimed = tuple(runs)

    def pending(self) -> int:
        """Partial keys the ledger still expects to delete, due or not."""
        with self._cond:
            return self._ledger.pending()

    def pending_index(self) -> int:
        """Replaced index runs scheduled for deletion, due or not."""
        with self._cond:
            return self._index.pending()

    def run_pending(self) -> int:
        """Delete everything due now; return how many keys were deleted. Never raises for a
        failed deletion (it is logged and retried after :data:`RETRY_AFTER`)."""
        with self._cond:
            now = self._clock()
            due = self._ledger.due(now)
            runs = self._index.due(now, keep=self._claimed)
        done = self._delete_runs(runs) if runs else 0
        for start in range(0, len(due), CHUNK):
            chunk = due[start : start + CHUNK]
            try:
                self.deleter.delete_partials([t.path() for t in chunk])
            except StelaeError as err:
                # Best effort: an obsolete partial left in place costs storage, never
                # correctness, so a failure must not stop the log. Try again later.
                log.warning("couldn't delete %d obsolete partials (retried): %s", len(chunk), err)
                with self._cond:
                    self._ledger.retry(due[start:], self._clock() + RETRY_AFTER)
                break
            done += len(chunk)
        with self._cond:
            self.deleted += done
        return done

    def _delete_runs(self, runs: tuple[RunRef, ...]) -> int:
        keys = shard_keys(runs)
        for start in range(0, len(keys), CHUNK):
            try:
                self.deleter.delete_partials(keys[start : start + CHUNK])
            except StelaeError as err:
                # Best effort, as for partials: a replaced run left costs storage only.
                log.warning("couldn't delete %d replaced index runs (retried): %s", len(runs), err)
                with self._cond:
                    self._index.retry(runs, self._clock() + RETRY_AFTER)
                return start
        return len(keys)

    def close(self) -> None:
        """Stop the background thread, then delete what is already due (a clean stop leaves
        nothing due behind; what is not yet due is the next sequencer's catch-up)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
        self.run_pending()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    times = [
                        t
                        for t in (self._ledger.next_due(), self._index.next_due())
                        if t is not None
                    ]
                    due_at = min(times) if times else None
                    wait = None if due_at is None else due_at - self._clock()
                    if wait is not None and wait <= 0:
                        break
                    self._cond.wait(wait)
                if self._stopping:
                    return
            self.run_pending()


def collect_all(
    deleter: PartialDeleter,
    size: int,
    *,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> int:
    """Delete every partial tile and bundle of every tile that is full at ``size`` (``stelae gc``).

    For a log whose partials were never collected (grown before garbage collection existed, or
    with it off) or that a sequencer left behind (killed before their grace period ended, or
    beyond its bounded catch-up). Knowing nothing of which widths were written, it deletes all
    255 of each full position: 510 keys per 256 entries at level 0, one S3 request per 1,000.
    The caller must have waited a grace period since ``size`` was published. Raises StoreError
    if a deletion fails; running it again is safe. ``progress(done, total)`` counts keys.
    """
    total = obsolete_count(size)
    done = 0
    chunk: list[str] = []
    for tid in obsolete_at(size):
        chunk.append(tid.path())
        if len(chunk) == CHUNK:
            deleter.delete_partials(chunk)
            done += len(chunk)
            progress(done, total)
            chunk = []
    if chunk:
        deleter.delete_partials(chunk)
        done += len(chunk)
        progress(done, total)
    return done
