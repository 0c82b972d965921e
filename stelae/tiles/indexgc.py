"""Which lookup-index runs a log may delete, and from when on (pure; no I/O).

A background merge replaces adjacent runs by one run over their union (docs/index.md,
"Merging"); the next manifest lists the merged run, and the runs it replaced are listed only by
the manifests of older sizes. With batches of one entry every batch rewrites the newest run, so
kept for ever the replaced copies grow with the square of the entries of a size class.

The rule (docs/index.md, "Garbage collection"): a run becomes *due* ``grace`` seconds after the
first manifest that no longer lists it was published, so no manifest that was the newest at any
time in the last ``grace`` seconds lists it. The grace period is the one partial tiles use
(:mod:`stelae.tiles.gc`) and must exceed how long anything caches the checkpoint, so a reader
whose checkpoint was current less than a grace period ago finds every run it needs. A reader
holding an older checkpoint gets a 404 and retries once with the latest checkpoint
(:func:`stelae.tiles.search.lookup_or_latest`). Manifests are kept: they are the log's signed
commitments, and a run's root in one is all an auditor needs to check it against the entries.

:class:`IndexLedger` is what a sequencer keeps in memory, fed with the run list of every manifest
it publishes or reads: nothing is read to decide. It only ever deletes what it saw listed and
then saw unlisted; runs it never saw listed (written before it started, listed by another
sequencer between two of its views, or merged and never listed) are left in place.

Invariants, whatever the sequence of calls:

- never a run the newest manifest this ledger saw lists;
- never a run passed as ``keep`` to :meth:`IndexLedger.due` (the runs a claimed but not yet
  published batch record names);
- never before ``grace`` seconds after the first newer manifest that does not list it was seen.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Sequence

from stelae.tiles.indexrecord import RunRef
from stelae.tiles.paths import run_shard_path

Span = tuple[int, int]
"""A run's range ``(a, b)``: it names the run (its shards' keys are ``index/run/<a>-<b>/<s>``)."""


def shard_keys(runs: Iterable[RunRef]) -> list[str]:
    """Every object key of these runs: one per shard (the shard count is in the manifest)."""
    return [run_shard_path(ref.a, ref.b, s) for ref in runs for s in range(ref.shards)]


class IndexLedger:
    """The runs a log may delete and when (module docstring).

    Feed it every manifest with :meth:`published`; take what is due with :meth:`due`. Not
    thread-safe: one owner (the sequencer's collector) calls it under its own lock.
    """

    def __init__(self, grace: float) -> None:
        if grace < 0:
            raise ValueError("the grace period must not be negative")
        self.grace = grace
        self._size: int | None = None  # the newest manifest's size
        self._live: dict[Span, RunRef] = {}  # the runs the newest manifest lists
        self._retired: set[Span] = set()  # runs scheduled, not yet handed out
        # (due time, tie-breaker, span, run): the counter keeps RunRefs from being compared.
        self._heap: list[tuple[float, int, Span, RunRef]] = []
        self._order = itertools.count()

    @property
    def size(self) -> int | None:
        """The size of the newest manifest seen (None: none yet)."""
        return self._size

    def pending(self) -> int:
        """How many runs are scheduled, due or not."""
        return len(self._retired)

    def next_due(self) -> float | None:
        """When the earliest scheduled run becomes due (None: nothing scheduled)."""
        return self._heap[0][0] if self._heap else None

    def published(self, size: int, runs: Sequence[RunRef], at: float) -> None:
        """The manifest of ``size`` listing ``runs`` was published (or first seen) at ``at``.

        Every run the previous newest manifest listed and this one does not becomes due
        ``grace`` seconds after ``at``. A size not larger than the newest seen (a
        re-publication, or an older manifest read late) changes nothing.
        """
        if self._size is not None and size <= self._size:
            return
        listed = {(r.a, r.b): r for r in runs}
        for span, ref in self._live.items():
            if span not in listed and span not in self._retired:
                self._schedule(span, ref, at + self.grace)
        # A listed run is never handed out, even if it was scheduled (merges only ever replace
        # runs by larger ones, so a run once replaced is never listed again; this is the guard).
        self._retired.difference_update(listed)
        self._live = listed
        self._size = size

    def due(self, now: float, *, keep: Iterable[RunRef] = ()) -> tuple[RunRef, ...]:
        """The runs deletable by ``now``, forgotten as they are returned (a caller whose
        deletion fails hands them back with :meth:`retry`). Runs in ``keep`` (named by a claimed
        batch record) and runs the newest manifest lists are never returned; a kept run is
        rescheduled a grace period later."""
        held = {(r.a, r.b) for r in keep}
        out: list[RunRef] = []
        later: list[tuple[Span, RunRef]] = []
        while self._heap and self._heap[0][0] <= now:
            _, _, span, ref = heapq.heappop(self._heap)
            if span not in self._retired:
                continue  # listed again since (the guard in published)
            self._retired.discard(span)
            if span in held:
                later.append((span, ref))
            else:
                out.append(ref)
        for span, ref in later:
            self._schedule(span, ref, now + self.grace)
        return tuple(out)

    def retry(self, runs: Iterable[RunRef], at: float) -> None:
        """Schedule runs again (their deletion failed), due at ``at``."""
        for ref in runs:
            span = (ref.a, ref.b)
            if span not in self._live and span not in self._retired:
                self._schedule(span, ref, at)

    def _schedule(self, span: Span, ref: RunRef, at: float) -> None:
        self._retired.add(span)
        heapq.heappush(self._heap, (at, next(self._order), span, ref))
