"""The merge policy of the lookup index (docs/index.md, "Merging"): size classes and which runs
merge, as tables, and the run counts a log reaches batch by batch."""

from __future__ import annotations

import itertools

import pytest

from stelae.tiles.mergepolicy import MergePolicy

POLICY = MergePolicy()


@pytest.mark.parametrize(
    ("entries", "cls"),
    [
        (1, 0),
        (1023, 0),
        (10_239, 0),
        (10_240, 1),
        (102_399, 1),
        (102_400, 2),
        (10**9, 5),
        (1_024_000_000, 6),
    ],
)
def test_size_class(entries: int, cls: int) -> None:
    assert POLICY.size_class(entries) == cls


def test_size_class_other_policies() -> None:
    assert MergePolicy(fanout=2, unit=1).size_class(1) == 0
    assert MergePolicy(fanout=2, unit=1).size_class(2) == 1
    assert MergePolicy(fanout=2, unit=1).size_class(7) == 2
    assert MergePolicy(fanout=4, unit=16).size_class(63) == 0
    assert MergePolicy(fanout=4, unit=16).size_class(64) == 1
    with pytest.raises(ValueError, match="at least one entry"):
        POLICY.size_class(0)
    with pytest.raises(ValueError, match="fanout"):
        MergePolicy(fanout=1)


@pytest.mark.parametrize(
    ("runs", "plan"),
    [
        ([], None),
        ([(0, 1000)], None),
        ([(0, 1000), (1000, 2000)], 0),  # two class-0 runs
        ([(0, 11_000), (11_000, 12_000)], None),  # classes 1, 0
        ([(0, 11_000), (11_000, 21_000), (21_000, 22_000)], 1),  # 1, 0, 0: the newest pair
        ([(0, 11_000), (11_000, 22_000)], 0),  # 1, 1
        ([(0, 200_000), (200_000, 211_000), (211_000, 212_000)], None),  # 2, 1, 0
        # A batch of class 1 after a class-0 run: the smaller, older run merges into it.
        ([(0, 200_000), (200_000, 201_000), (201_000, 221_000)], 1),
        ([(0, 1000), (1000, 30_000)], 0),
    ],
)
def test_plan(runs: list[tuple[int, int]], plan: int | None) -> None:
    assert POLICY.plan(runs) == plan


@pytest.mark.parametrize(
    "runs",
    [[(1, 5)], [(0, 5), (6, 9)], [(0, 5), (4, 9)], [(0, 5), (5, 5)]],
)
def test_plan_rejects_a_non_partition(runs: list[tuple[int, int]]) -> None:
    with pytest.raises(ValueError, match="partition"):
        POLICY.plan(runs)


def test_classes_stay_strictly_decreasing() -> None:
    runs: list[tuple[int, int]] = []
    most = 0
    for n in range(1, 2001):  # 2,000 batches of 1,000 entries
        runs = POLICY.settle([*runs, ((n - 1) * 1000, n * 1000)])
        classes = [POLICY.size_class(b - a) for a, b in runs]
        assert all(x > y for x, y in itertools.pairwise(classes))
        most = max(most, len(runs))
    assert runs[0][0] == 0 and runs[-1][1] == 2_000_000
    assert most == 1 + POLICY.size_class(2_000_000)


def test_a_large_batch_does_not_stall_merging() -> None:
    runs = [(0, 1000), (1000, 30_000)]  # class 0, then a class-1 batch
    for _ in range(30):
        runs = POLICY.settle([*runs, (runs[-1][1], runs[-1][1] + 1000)])
    classes = [POLICY.size_class(b - a) for a, b in runs]
    assert all(x > y for x, y in itertools.pairwise(classes))
