"""The pure decision of which lookup-index runs may be deleted, and when
(stelae.tiles.indexgc; docs/index.md, "Garbage collection"), checked against a naive reference
over random histories of merges."""

from __future__ import annotations

import random

import pytest

from stelae.tiles.indexgc import IndexLedger, shard_keys
from stelae.tiles.indexrecord import RunRef

GRACE = 30.0


def run(a: int, b: int, bits: int = 0) -> RunRef:
    return RunRef(a, b, bits, bytes([a % 256]) * 32)


def test_shard_keys_name_every_shard() -> None:
    assert shard_keys([run(0, 5, 2)]) == [f"index/run/0-5/{s}" for s in range(4)]
    assert shard_keys([run(0, 1), run(1, 3, 1)]) == [
        "index/run/0-1/0",
        "index/run/1-3/0",
        "index/run/1-3/1",
    ]


def test_a_replaced_run_is_due_a_grace_period_after_the_manifest_that_replaced_it() -> None:
    ledger = IndexLedger(GRACE)
    ledger.published(1, [run(0, 1)], at=100.0)
    ledger.published(2, [run(0, 1), run(1, 2)], at=101.0)
    ledger.published(3, [run(0, 3)], at=102.0)  # a merge replaced both
    assert ledger.due(102.0 + GRACE - 0.001) == ()  # within grace: kept
    assert ledger.pending() == 2 and ledger.next_due() == 102.0 + GRACE
    assert set(ledger.due(102.0 + GRACE)) == {run(0, 1), run(1, 2)}
    assert ledger.due(1e9) == ()  # handed out once; the newest manifest's run never
    assert ledger.pending() == 0


def test_the_newest_manifest_and_its_runs_are_never_due() -> None:
    ledger = IndexLedger(0.0)
    ledger.published(4, [run(0, 4)], at=1.0)
    assert not ledger.due(1e12)
    ledger.published(4, [run(0, 2), run(2, 4)], at=2.0)  # not newer: ignored
    ledger.published(3, [run(0, 3)], at=2.0)  # older, read late: ignored
    assert not ledger.due(1e12)


def test_a_run_a_claimed_batch_names_is_kept_and_rescheduled() -> None:
    ledger = IndexLedger(GRACE)
    ledger.published(1, [run(0, 1)], at=0.0)
    ledger.published(2, [run(0, 2)], at=1.0)
    assert ledger.due(1.0 + GRACE, keep=[run(0, 1)]) == ()
    assert ledger.next_due() == 1.0 + 2 * GRACE
    assert ledger.due(1.0 + 2 * GRACE) == (run(0, 1),)


def test_a_run_listed_again_is_never_handed_out() -> None:
    ledger = IndexLedger(GRACE)
    ledger.published(1, [run(0, 1)], at=0.0)
    ledger.published(2, [run(0, 2)], at=1.0)
    ledger.published(3, [run(0, 1), run(1, 3)], at=2.0)  # not what merges do; still guarded
    assert ledger.due(1e9) == (run(0, 2),)


def test_retry_schedules_again() -> None:
    ledger = IndexLedger(GRACE)
    ledger.published(1, [run(0, 1)], at=0.0)
    ledger.published(2, [run(0, 2)], at=0.0)
    got = ledger.due(GRACE)
    assert got == (run(0, 1),)
    ledger.retry(got, at=GRACE + 60)
    assert ledger.due(GRACE + 59) == ()
    assert ledger.due(GRACE + 60) == got


def test_negative_grace_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        IndexLedger(-1.0)


def _history(rng: random.Random, batches: int) -> list[list[RunRef]]:
    """The run lists of successive manifests: each batch appends a run, then the two newest
    runs are merged with some probability (what the merger does, in any pattern)."""
    runs: list[RunRef] = []
    out = []
    size = 0
    for _ in range(batches):
        n = rng.randint(1, 3)
        runs.append(run(size, size + n, rng.randint(0, 2)))
        size += n
        while len(runs) > 1 and rng.random() < 0.5:
            older, newer = runs[-2], runs[-1]
            runs[-2:] = [run(older.a, newer.b, max(older.bits, newer.bits))]
        out.append(list(runs))
    return out


@pytest.mark.parametrize("seed", range(20))
def test_matches_a_naive_reference(seed: int) -> None:
    """Whatever is handed out by time t is exactly what no manifest current in [t - grace, t]
    lists, among the runs ever seen listed."""
    rng = random.Random(seed)
    history = _history(rng, 40)
    ledger = IndexLedger(GRACE)
    published: list[tuple[float, int, list[RunRef]]] = []
    handed: set[RunRef] = set()
    now = 0.0
    for lists in history:
        t = now + rng.choice([1.0, 5.0, 40.0])  # the clock only moves forward
        size = lists[-1].b
        ledger.published(size, lists, at=t)
        published.append((t, size, lists))
        now = t + rng.choice([0.0, 10.0, 29.0, 31.0])
        got = ledger.due(now)
        assert not handed & set(got)  # each run handed out once
        handed.update(got)
        # The naive reference: manifest i is current from its publication until the next one.
        current = [
            runs_i
            for i, (_, _, runs_i) in enumerate(published)
            if i + 1 == len(published) or published[i + 1][0] > now - GRACE
        ]
        protected = {r for runs_i in current for r in runs_i}
        seen = {r for _, _, runs_i in published for r in runs_i}
        assert handed == seen - protected
