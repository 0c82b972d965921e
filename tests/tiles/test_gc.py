"""The pure garbage-collection decision (stelae.tiles.gc), against a naive reference.

The reference replays every published size: the partials written are the right edges of those
sizes, and one is obsolete once a later published size makes its tile full
(https://c2sp.org/tlog-tiles, "Partial Tiles") and the grace period has passed since.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stelae.tiles.gc import PartialLedger, obsolete_at, obsolete_count, partials_at
from stelae.tiles.layout import TILE_WIDTH, TileID, tile_width

GRACE = 30.0


def _full_at(tid: TileID, size: int) -> bool:
    return tile_width(max(tid.level, 0), tid.index, size) == TILE_WIDTH


def _reference(sizes: list[int], times: list[float], now: float) -> set[TileID]:
    """Partials written at some published size whose tile was full at a size published at
    least GRACE seconds before ``now``."""
    written = {p for s in sizes for p in partials_at(s)}
    return {
        p
        for p in written
        if any(_full_at(p, s) and t + GRACE <= now for s, t in zip(sizes, times, strict=True))
    }


def _chain(steps: list[int]) -> list[int]:
    sizes, size = [], 0
    for step in steps:
        size += step
        sizes.append(size)
    return sizes


def test_partials_at_is_the_right_edge() -> None:
    # tlog-tiles' example: size 70,000 has a partial level-0 tile of width 112, a partial
    # level-1 tile of width 17 and a partial level-2 tile of width 1 (and the bundle).
    assert partials_at(70_000) == [
        TileID.bundle(273, 112),
        TileID(0, 273, 112),
        TileID(1, 1, 17),
        TileID(2, 0, 1),
    ]
    assert partials_at(256) == [TileID(1, 0, 1)]
    assert partials_at(0) == []


def test_one_entry_per_batch_collects_every_width_after_the_grace_period() -> None:
    ledger = PartialLedger(GRACE)
    ledger.published(0, 0.0)
    for size in range(1, 257):
        ledger.published(size, float(size), previous=size - 1)
    # Tile 0 became full at size 256 (t=256): nothing is due before t=286.
    assert ledger.due(256 + GRACE - 0.001) == []
    due = ledger.due(256 + GRACE)
    assert sorted(due) == sorted(
        [TileID(0, 0, w) for w in range(1, 256)] + [TileID.bundle(0, w) for w in range(1, 256)]
    )
    assert ledger.due(10_000.0) == []  # forgotten once returned
    assert ledger.pending() == 1  # tile/1/000.p/1, which size 256 needs


def test_never_the_right_edge_nor_a_full_tile() -> None:
    ledger = PartialLedger(0.0)
    ledger.published(0, 0.0)
    for size in range(1, 600):
        ledger.published(size, 0.0, previous=size - 1)
        for tid in ledger.due(0.0):
            assert tid.is_partial
            assert _full_at(tid, size), tid.path()
            assert tid not in partials_at(size)


def test_a_batch_that_fills_tiles_in_one_go_leaves_nothing_to_delete() -> None:
    ledger = PartialLedger(0.0)
    ledger.published(0, 0.0)
    for size in range(1024, 1024 * 20, 1024):  # 4 full tiles per batch, no level-0 partial
        ledger.published(size, 0.0, previous=size - 1024)
    level0 = [t for t in ledger.due(1.0) if t.level in (-1, 0)]
    assert level0 == []


def test_a_size_seen_again_or_older_changes_nothing() -> None:
    ledger = PartialLedger(GRACE)
    ledger.published(300, 0.0)
    before = ledger.pending()
    ledger.published(300, 5.0, previous=300)
    ledger.published(10, 6.0)
    assert ledger.pending() == before
    assert ledger.size == 300


def test_first_sight_catches_up_on_the_right_edge_and_the_newest_full_tile() -> None:
    """After a restart nothing is known of which widths were written: every width up to the
    right edge's, and every width of the newest full tile, may exist."""
    ledger = PartialLedger(GRACE)
    ledger.published(3 * 256 + 7, 100.0)
    due = set(ledger.due(100.0 + GRACE))
    assert {TileID(0, 2, w) for w in range(1, 256)} <= due
    assert {TileID.bundle(2, w) for w in range(1, 256)} <= due
    assert not any(t.index < 2 for t in due if t.level in (-1, 0))  # bounded catch-up
    ledger.published(4 * 256, 200.0, previous=3 * 256 + 7)
    due = set(ledger.due(200.0 + GRACE))
    assert due >= {TileID(0, 3, w) for w in range(1, 8)}


def test_a_gap_left_by_another_writer_is_covered() -> None:
    ledger = PartialLedger(0.0)
    ledger.published(0, 0.0)
    ledger.published(10, 0.0, previous=0)
    ledger.published(300, 1.0)  # someone else published 11..299 meanwhile (unknown sizes)
    due = set(ledger.due(1.0))
    assert due >= {TileID(0, 0, w) for w in range(10, 256)}
    assert TileID(0, 1, 44) not in due


def test_retry_schedules_failed_deletions_again() -> None:
    ledger = PartialLedger(0.0)
    ledger.published(0, 0.0)
    for size in range(1, 257):
        ledger.published(size, 0.0, previous=size - 1)
    due = ledger.due(0.0)
    ledger.retry(due, 5.0)
    assert ledger.due(4.0) == []
    assert sorted(ledger.due(5.0)) == sorted(due)
    with pytest.raises(ValueError, match="not a partial"):
        ledger.retry([TileID(0, 0)], 5.0)


def test_obsolete_at_covers_every_width_of_every_full_tile_only() -> None:
    got = set(obsolete_at(512 + 3))
    assert len(got) == 2 * 2 * 255  # two full level-0 tiles and bundles; no full level 1
    assert all(t.is_partial for t in got)
    assert TileID(0, 2, 3) not in got
    assert set(obsolete_at(512 + 3, start=256)) == {t for t in got if t.index == 1}
    for size in (0, 1, 255, 256, 515, 65_536, 70_000):
        assert obsolete_count(size) == sum(1 for _ in obsolete_at(size))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 300), min_size=1, max_size=60),
    st.lists(st.floats(0, 20), min_size=60, max_size=60),
)
def test_matches_the_reference_for_a_chain_the_ledger_saw_whole(
    steps: list[int], gaps: list[float]
) -> None:
    sizes = _chain(steps)
    times, t = [], 0.0
    for gap in gaps[: len(sizes)]:
        t += gap
        times.append(t)
    ledger = PartialLedger(GRACE)
    ledger.published(0, 0.0)
    got: set[TileID] = set()
    previous = 0
    for size, at in zip(sizes, times, strict=True):
        ledger.published(size, at, previous=previous)
        previous = size
        got.update(ledger.due(at))
        # Nothing is ever early: what is due by now is in the reference at now.
        assert got <= _reference(sizes, times, at)
    end = times[-1] + GRACE
    got.update(ledger.due(end))
    assert got == _reference(sizes, times, end)


def test_first_sight_of_a_huge_log_is_bounded() -> None:
    """The catch-up looks at a few positions per level, never at every full tile."""
    ledger = PartialLedger(0.0)
    ledger.published(10**12 + 7, 0.0)
    due = ledger.due(0.0)
    # Per level (and the bundles): every width of the newest full tile, nothing older.
    assert len(due) == 255 * len({(t.level) for t in due})
    assert ledger.pending() < 255 * 8
