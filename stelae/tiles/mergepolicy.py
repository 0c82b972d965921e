"""Which lookup-index runs to merge next (docs/index.md, "Merging").

Every batch adds a run; without merges a lookup would read one shard per batch. The policy sorts
runs into size classes — a run of ``len`` entries has class ``max(0, floor(log_T(len / U)))`` —
and merges the newest adjacent pair whose older run's class is not above the newer run's. With
batches below ``U * T`` entries that pair is always the two newest runs when they share a class,
and the classes of the runs, oldest to newest, stay strictly decreasing: at most one run per
class, so ``log_T(N / U) + 1`` runs for ``N`` entries. (A rule that looked only at the two
newest runs would stall behind a single batch of ``U * T`` entries or more; this one merges the
smaller run into it.) Each entry is rewritten about ``T / 2`` times per class it passes through.

Pure code: ranges in, a decision out; the merger in the sequencer does the work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MergePolicy"]


@dataclass(frozen=True)
class MergePolicy:
    """``fanout`` is ``T``, the size ratio between classes; ``unit`` is ``U``: runs below
    ``U * T`` entries are class 0, below ``U * T^2`` class 1, and so on."""

    fanout: int = 10
    unit: int = 1024

    def __post_init__(self) -> None:
        if self.fanout < 2 or self.unit < 1:
            raise ValueError(f"merge policy needs fanout >= 2 and unit >= 1, not {self}")

    def size_class(self, entries: int) -> int:
        """``max(0, floor(log_fanout(entries / unit)))``, in integers."""
        if entries < 1:
            raise ValueError(f"a run holds at least one entry, not {entries}")
        cls, bound = 0, self.unit * self.fanout
        while entries >= bound:
            cls += 1
            bound *= self.fanout
        return cls

    def plan(self, runs: Sequence[tuple[int, int]]) -> int | None:
        """The ``i`` such that ``runs[i]`` and ``runs[i + 1]`` should be merged next, or None.

        ``runs`` are the ``(a, b)`` ranges of the current runs, ascending, partitioning
        ``[0, N)`` (``ValueError`` otherwise). Apply the merge and ask again until None.
        """
        end = 0
        for a, b in runs:
            if a != end or b <= a:
                raise ValueError(f"run [{a}, {b}) does not continue a partition ending at {end}")
            end = b
        classes = [self.size_class(b - a) for a, b in runs]
        for i in range(len(runs) - 2, -1, -1):
            if classes[i] <= classes[i + 1]:
                return i
        return None

    def settle(self, runs: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
        """The runs once every planned merge is done (what a merger that keeps up leaves)."""
        out = list(runs)
        while (i := self.plan(out)) is not None:
            out[i : i + 2] = [(out[i][0], out[i + 1][1])]
        return out
