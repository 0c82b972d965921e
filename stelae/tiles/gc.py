"""Which partial tiles and entry bundles a log may delete, and from when on (pure; no I/O).

https://c2sp.org/tlog-tiles, "Partial Tiles": a log MUST serve the partial tiles of every tree
size it published a checkpoint for, but MAY delete a partial tile once the corresponding full
tile is available; a client that finds a partial tile gone fetches the full tile and keeps its
first W hashes (entry bundles follow the same rule). stelae's readers all do that
(:meth:`stelae.tiles.client.TileReader._fetch_tile`, ``stelae/explorer/tiles.js``, fsck).

Deleting at the very moment the full tile is published would still turn a reader's fetch into a
404 followed by a second request, and a reader holding a checkpoint fetched from a cache a moment
ago would hit it every time. So a partial becomes *due* only ``grace`` seconds after the first
checkpoint that makes its tile full was published; the grace period must exceed how long the
checkpoint may be cached (the Terraform module's ``checkpoint_max_age_seconds``, at most 10 s).

:class:`PartialLedger` is what a sequencer keeps in memory, fed with every checkpoint it
publishes or sees: which partial widths may exist at each tile position, and when each position's
partials become due. It never reads anything, so garbage collection costs the hot path no GET.
docs/durability.md, "Garbage collection", is the design; docs/layout.md lists the objects.

Invariants, whatever the sequence of calls:

- only partial tiles and bundles are ever returned, never a full one;
- only partials of a position that is full at a size this ledger saw published, so never a
  partial the newest checkpoint needs (its right edge);
- never before ``grace`` seconds after that size was seen published.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from stelae.tiles.errors import FormatError
from stelae.tiles.layout import TILE_HEIGHT, TILE_WIDTH, TileID

ALL_WIDTHS = range(1, TILE_WIDTH)
"""Every width a partial tile can have (tlog-tiles: 1..255)."""

DEFAULT_GRACE = 60.0
"""The grace period ``stelae serve`` and the AWS sequencer use unless told otherwise: well over
the longest the Terraform module lets the CDN cache the checkpoint (10 s), with room for a reader
that fetched a checkpoint and then its tiles a little later."""


def parse_grace(text: str) -> float | None:
    """A grace period as operators write it (``stelae serve --gc-grace``, the AWS sequencer's
    ``STELAE_GC_GRACE_SECONDS``): seconds, 0 or more, or ``off`` (None: never delete)."""
    if text.strip().lower() == "off":
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise FormatError(f"{text!r} is not a number of seconds or 'off'")
    return seconds


def _levels(size: int) -> Iterator[tuple[int, int]]:
    """``(level, hashes at that level)`` for the bundles (level -1, as wide as level 0) and every
    tile level that has at least one hash at ``size``."""
    if size > 0:
        yield -1, size
    level = 0
    while (count := size >> (TILE_HEIGHT * level)) > 0:
        yield level, count
        level += 1


def _position(level: int, index: int) -> TileID:
    """A tile position regardless of width: the full TileID (level -1: a bundle)."""
    return TileID.bundle(index) if level == -1 else TileID(level, index)


def partials_at(size: int) -> list[TileID]:
    """The partial tiles and the partial bundle a checkpoint of ``size`` needs: its right edge."""
    return [
        TileID(level, count // TILE_WIDTH, count % TILE_WIDTH)
        for level, count in _levels(size)
        if count % TILE_WIDTH
    ]


def obsolete_at(size: int, *, start: int = 0) -> Iterator[TileID]:
    """Every partial tile and bundle that may exist for a tile that is full at ``size`` and holds
    no entry below ``start``: what a one-off collection (``stelae gc``) deletes when it knows
    nothing of which widths were written. Widths 1..255 of every such position, so 510 keys per
    256 entries at level 0; deleting a key that holds nothing is harmless."""
    for level, count in _levels(size):
        first = (start >> (TILE_HEIGHT * max(level, 0))) // TILE_WIDTH
        for index in range(first, count // TILE_WIDTH):
            for width in ALL_WIDTHS:
                yield TileID(level, index, width)


def obsolete_count(size: int) -> int:
    """How many keys :func:`obsolete_at` yields for ``size`` (without walking them)."""
    return sum(count // TILE_WIDTH * len(ALL_WIDTHS) for _, count in _levels(size))


class PartialLedger:
    """The partials a log may still hold and when each becomes deletable (module docstring).

    Feed it every checkpoint with :meth:`published`; take what is due with :meth:`due`. Not
    thread-safe: one owner (the sequencer's collector) calls it under its own lock.
    """

    def __init__(self, grace: float) -> None:
        if grace < 0:
            raise ValueError("the grace period must not be negative")
        self.grace = grace
        self._size: int | None = None  # the largest size seen published
        self._widths: dict[TileID, set[int]] = {}  # position -> widths that may exist
        self._due: list[tuple[float, TileID]] = []  # heap of (due time, full position)

    @property
    def size(self) -> int | None:
        """The largest tree size seen published (None: none yet)."""
        return self._size

    def pending(self) -> int:
        """How many partial keys the ledger still expects to delete, due or not."""
        return sum(len(w) for w in self._widths.values())

    def next_due(self) -> float | None:
        """When the earliest scheduled position becomes due (None: nothing scheduled)."""
        return self._due[0][0] if self._due else None

    def published(self, size: int, at: float, *, previous: int | None = None) -> None:
        """A checkpoint of ``size`` was published (or first seen) at time ``at``.

        ``previous`` is the size of the checkpoint it was built on *when the caller knows that no
        other checkpoint came between* (the sequencer published it itself over the one it last
        saw). Otherwise the sizes in between are unknown and any width they could have left is
        assumed written: at the right edge, every width since the last known size; for positions
        that became full meanwhile, every width of the newest full tile of each level only
        (bounded catch-up; older debris of another writer is ``stelae gc``'s to delete).
        A size not larger than one already seen (a re-publication, or an older checkpoint read
        late) changes nothing.
        """
        known = self._size
        if known is not None and size <= known:
            return
        exact = known is not None and previous == known
        for level, count in _levels(size):
            self._grow(level, count, known, exact, at)
        self._size = size

    def _grow(self, level: int, count: int, known: int | None, exact: bool, at: float) -> None:
        """Record the widths level ``level`` may have been written at up to ``count`` hashes, and
        schedule the positions that became full."""
        before = 0 if known is None else known >> (TILE_HEIGHT * max(level, 0))
        full = count // TILE_WIDTH  # positions 0..full-1 are full now
        first = before // TILE_WIDTH  # the position at the right edge when last known
        # Only positions that may hold partials, never every position that became full: a first
        # sight of a log of 10^9 entries must not walk four million tiles.
        indices = {i for i in (first, full - 1) if first <= i < full}
        indices.update(
            p.index for p in self._widths if p.level == level and first <= p.index < full
        )
        for index in sorted(indices):
            pos = _position(level, index)
            if not exact and (index == full - 1 or (index == first and known is not None)):
                low = before % TILE_WIDTH if index == first and known is not None else 0
                self._widths.setdefault(pos, set()).update(range(low + 1, TILE_WIDTH))
            if pos in self._widths:
                heapq.heappush(self._due, (at + self.grace, pos))
        width = count % TILE_WIDTH
        if width:
            pos = _position(level, full)
            widths = self._widths.setdefault(pos, set())
            if exact:
                widths.add(width)
            else:
                low = before % TILE_WIDTH if first == full and known is not None else 0
                widths.update(range(low + 1, width + 1))

    def due(self, now: float) -> list[TileID]:
        """The partials whose grace period has passed by ``now``, forgotten as they are returned:
        a caller whose deletion fails hands them back with :meth:`retry`."""
        out: list[TileID] = []
        while self._due and self._due[0][0] <= now:
            _, pos = heapq.heappop(self._due)
            widths = self._widths.pop(pos, set())
            out.extend(TileID(pos.level, pos.index, w) for w in sorted(widths))
        return out

    def retry(self, partials: list[TileID], at: float) -> None:
        """Schedule partials again (their deletion failed), due at ``at``."""
        for tid in partials:
            if not tid.is_partial:
                raise ValueError(f"{tid.path()} is not a partial tile")
            pos = tid.full()
            if pos not in self._widths:
                heapq.heappush(self._due, (at, pos))
            self._widths.setdefault(pos, set()).add(tid.width)
