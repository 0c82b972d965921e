"""Which lookup-index runs and manifests a log may delete, and from when on (pure; no I/O).

A background merge replaces adjacent runs by one run over their union (docs/index.md,
"Merging"); the next manifest lists the merged run, and the runs it replaced are listed only by
the manifests of older sizes. With batches of one entry every batch rewrites the newest run, so
kept for ever the replaced copies grow with the square of the entries of a size class. A manifest
of a size that is no longer the newest is likewise read only by a reader holding an older
checkpoint.

The rule (docs/index.md, "Garbage collection"): a run, or a manifest, becomes *due* ``grace``
seconds after the first manifest that no longer lists it (that is newer than it) was published,
so no manifest that was the newest at any time in the last ``grace`` seconds names it. The grace
period is the one partial tiles use (:mod:`stelae.tiles.gc`) and must exceed how long anything
caches the checkpoint, so a reader whose checkpoint was current less than a grace period ago
finds every object it names. A reader holding an older checkpoint gets a 404 and retries once
with the latest checkpoint (:func:`stelae.tiles.search.lookup_latest`).

:class:`IndexLedger` is what a sequencer keeps in memory, fed with the run list of every manifest
it publishes or reads: nothing is read to decide. It only ever deletes what it saw listed and
then saw unlisted; runs and manifests it never saw (written before it started, by another
sequencer between two of its views, or merged and never listed) are left in place.

Invariants, whatever the sequence of calls:

- never a run the newest manifest this ledger saw lists, nor the newest manifest;
- never a run passed as ``keep`` to :meth:`IndexLedger.due` (the runs a claimed but not yet
  published batch record names);
- never before ``grace`` seconds after the first newer manifest that does not list it was seen.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from stelae.tiles.indexrecord import RunRef
from stelae.tiles.paths import manifest_path, run_shard_path

Span = tuple[int, int]
"""A run's range ``(a, b)``: it names the run (its shards' keys are ``index/run/<a>-<b>/<s>``)."""


def shard_keys(ref: RunRef) -> Iterator[str]:
    """Every object key of a run: one per shard (the shard count is in the manifest's line)."""
    for s in range(ref.shards):
        yield run_shard_path(ref.a, ref.b, s)


@dataclass(frozen=True)
class IndexGarbage:
    """What :meth:`IndexLedger.due` hands out: runs (all their shards) and manifest sizes."""

    runs: tuple[RunRef, ...] = ()
    manifests: tuple[int, ...] = ()

    def keys(self) -> list[str]:
        """The object keys to delete."""
        out = [key for ref in self.runs for key in shard_keys(ref)]
        out.extend(manifest_path(size) for size in self.manifests)
        return out

    def __bool__(self) -> bool:
        return bool(self.runs or self.manifests)


@dataclass(order=True)
class _Due:
    at: float
    run: RunRef | None = field(compare=False, default=None)
    manifest: int | None = field(compare=False, default=None)


class IndexLedger:
    """The runs and manifests a log may delete and when (module docstring).

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
        self._heap: list[_Due] = []

    @property
    def size(self) -> int | None:
        """The size of the newest manifest seen (None: none yet)."""
        return self._size

    def pending(self) -> int:
        """How many runs and manifests are scheduled, due or not."""
        return len(self._heap)

    def next_due(self) -> float | None:
        """When the earliest scheduled object becomes due (None: nothing scheduled)."""
        return self._heap[0].at if self._heap else None

    def published(self, size: int, runs: Sequence[RunRef], at: float) -> None:
        """The manifest of ``size`` listing ``runs`` was published (or first seen) at ``at``.

        Every run the previous newest manifest listed and this one does not, and that previous
        manifest itself, become due ``grace`` seconds after ``at``. A size not larger than the
        newest seen (a re-publication, or an older manifest read late) changes nothing.
        """
        if self._size is not None and size <= self._size:
            return
        listed = {(r.a, r.b): r for r in runs}
        due = at + self.grace
        for span, ref in self._live.items():
            if span not in listed and span not in self._retired:
                self._retired.add(span)
                heapq.heappush(self._heap, _Due(due, run=ref))
        # A listed run is never handed out, even if it was scheduled (merges only ever replace
        # runs by larger ones, so a run once replaced is never listed again; this is the guard).
        self._retired.difference_update(listed)
        if self._size is not None:
            heapq.heappush(self._heap, _Due(due, manifest=self._size))
        self._live = listed
        self._size = size

    def due(self, now: float, *, keep: Iterable[RunRef] = ()) -> IndexGarbage:
        """What has become deletable by ``now``, forgotten as it is returned (a caller whose
        deletion fails hands it back with :meth:`retry`). Runs in ``keep`` (named by a claimed
        batch record) and runs the newest manifest lists are never returned; a kept run is
        rescheduled a grace period later."""
        held = {(r.a, r.b) for r in keep}
        runs: list[RunRef] = []
        manifests: list[int] = []
        later: list[_Due] = []
        while self._heap and self._heap[0].at <= now:
            item = heapq.heappop(self._heap)
            if item.manifest is not None:
                if item.manifest != self._size:
                    manifests.append(item.manifest)
                continue
            ref = item.run
            assert ref is not None  # every _Due holds a run or a manifest
            span = (ref.a, ref.b)
            if span not in self._retired or span in self._live:
                continue  # listed again since (the guard in published)
            if span in held:
                later.append(_Due(now + self.grace, run=ref))
                continue
            self._retired.discard(span)
            runs.append(ref)
        for item in later:
            heapq.heappush(self._heap, item)
        return IndexGarbage(tuple(runs), tuple(manifests))

    def retry(self, garbage: IndexGarbage, at: float) -> None:
        """Schedule runs and manifests again (their deletion failed), due at ``at``."""
        for ref in garbage.runs:
            span = (ref.a, ref.b)
            if span not in self._live and span not in self._retired:
                self._retired.add(span)
                heapq.heappush(self._heap, _Due(at, run=ref))
        for size in garbage.manifests:
            heapq.heappush(self._heap, _Due(at, manifest=size))
