"""The sequencer's memory of recent leaf hashes: which new entries may already be in the log.

Deduplication must not cost a read per entry (on S3 that was most of the bill), so the sequencer
keeps the 64-bit prefixes of the leaf hashes of the most recent ``window`` entries in memory, in
sorted ``array('Q')`` segments (16 bytes per entry: a prefix and an index). A miss is exact: the
entry is not among them. A hit is only a candidate (another leaf may share the prefix) and is
confirmed against the log itself by the caller. Beyond the window a resubmission is logged again
under a new index: a duplicate is never answered wrongly, only not always recognised
(docs/sequencing.md, "Deduplication").

Segments merge like a binary counter (a new segment absorbs the newest one while that one is no
larger), so a lookup bisects O(log n) segments and each prefix is re-sorted O(log n) times.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def prefix(leaf_hash: bytes) -> int:
    return int.from_bytes(leaf_hash[:8], "big")


@dataclass
class _Segment:
    first: int  # smallest index in the segment
    end: int  # one past the largest index
    keys: array[int]  # sorted prefixes
    indices: array[int]  # parallel to keys


class RecentLeaves:
    """Leaf-hash prefixes of the newest ``window`` entries (at least), by log index."""

    def __init__(self, window: int) -> None:
        if window < 0:
            raise ValueError("a dedup window cannot be negative")
        self.window = window
        self._segments: list[_Segment] = []
        self.size = 0  # one past the largest index added

    def __len__(self) -> int:
        return sum(len(s.keys) for s in self._segments)

    def add(self, first: int, leaf_hashes: Sequence[bytes]) -> None:
        """Remember the entries ``first, first+1, …`` with these leaf hashes."""
        if not leaf_hashes or not self.window:
            self.size = max(self.size, first + len(leaf_hashes))
            return
        pairs = sorted(
            zip(
                (prefix(h) for h in leaf_hashes),
                range(first, first + len(leaf_hashes)),
                strict=True,
            )
        )
        self._push(_Segment(first, first + len(leaf_hashes), *_split(pairs)))
        self.size = max(self.size, first + len(leaf_hashes))
        self._evict()

    def candidates(self, leaf_hash: bytes) -> list[int]:
        """Indices whose leaf hash shares ``leaf_hash``'s prefix (ascending). Empty: not recent."""
        key = prefix(leaf_hash)
        out: list[int] = []
        for seg in self._segments:
            i = bisect.bisect_left(seg.keys, key)
            while i < len(seg.keys) and seg.keys[i] == key:
                out.append(seg.indices[i])
                i += 1
        return sorted(out)

    def covers(self) -> int:
        """The smallest index still remembered exactly (everything from it to :attr:`size`)."""
        return self._segments[0].first if self._segments else self.size

    def _push(self, seg: _Segment) -> None:
        while self._segments and len(self._segments[-1].keys) <= len(seg.keys):
            older = self._segments.pop()
            pairs = sorted(_pairs(older) + _pairs(seg))
            seg = _Segment(older.first, seg.end, *_split(pairs))
        self._segments.append(seg)

    def _evict(self) -> None:
        # Drop whole segments that end before the window; a segment partly inside stays.
        floor = self.size - self.window
        while self._segments and self._segments[0].end <= floor:
            self._segments.pop(0)


def _pairs(seg: _Segment) -> list[tuple[int, int]]:
    return list(zip(seg.keys, seg.indices, strict=True))


def _split(pairs: Iterable[tuple[int, int]]) -> tuple[array[int], array[int]]:
    keys, indices = array("Q"), array("Q")
    for k, i in pairs:
        keys.append(k)
        indices.append(i)
    return keys, indices
