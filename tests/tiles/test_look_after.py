"""The batch record's advice to waiting writers, ``look_after_ms`` (stelae/tiles/lookafter.py):
its place in the record's header (optional, bounded, round-tripped) and its computation."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stelae.tiles.batch import BatchRecord, PendingEntry
from stelae.tiles.compact import RightEdge
from stelae.tiles.errors import FormatError
from stelae.tiles.lookafter import MAX_LOOK_AFTER_MS, look_after_ms, percentile


def record(look_after: int | None) -> BatchRecord:
    entries = tuple(PendingEntry(b"entry %d" % i) for i in range(3))
    edge = RightEdge(0, ())
    return BatchRecord(
        0,
        edge.root(),
        edge,
        1_700_000_000,
        tuple(e.leaf_hash for e in entries),
        (b"", b"", b""),
        (),
        entries,
        look_after,
    )


def with_header(data: bytes, **changes: Any) -> bytes:
    """``data`` with its header's fields changed (a value of ... removes the field)."""
    end = data.index(b"\n")
    header = json.loads(data[:end])
    for k, v in changes.items():
        if v is ...:
            header.pop(k, None)
        else:
            header[k] = v
    return json.dumps(header, separators=(",", ":")).encode() + data[end:]


@pytest.mark.parametrize("value", [0, 1, 250, MAX_LOOK_AFTER_MS])
def test_the_advice_round_trips_in_the_whole_record_and_the_receipt(value: int) -> None:
    data = record(value).to_bytes()
    assert json.loads(data[: data.index(b"\n")])["look_after_ms"] == value
    assert BatchRecord.parse(data) == record(value)
    assert BatchRecord.parse(data).to_bytes() == data
    assert BatchRecord.parse_receipt(data).look_after_ms == value


def test_the_advice_is_optional_and_absent_leaves_the_bytes_as_before() -> None:
    data = record(None).to_bytes()
    assert b"look_after_ms" not in data
    # A record written before the field existed: the same bytes as one without advice.
    assert with_header(record(7).to_bytes(), look_after_ms=...) == data
    parsed = BatchRecord.parse(data)
    assert parsed.look_after_ms is None and parsed.to_bytes() == data


@pytest.mark.parametrize(
    "value", [-1, MAX_LOOK_AFTER_MS + 1, 2**70, 1.5, "250", True, None, [250], {"ms": 1}]
)
def test_an_advice_out_of_bounds_or_of_another_type_is_refused_by_name(value: object) -> None:
    data = with_header(record(None).to_bytes(), look_after_ms=value)
    for parse in (BatchRecord.parse, BatchRecord.parse_receipt):
        with pytest.raises(FormatError, match="look_after_ms"):
            parse(data)


@pytest.mark.parametrize("value", [-1, MAX_LOOK_AFTER_MS + 1])
def test_a_record_is_not_built_with_an_advice_out_of_bounds(value: int) -> None:
    with pytest.raises(FormatError, match="look_after_ms"):
        record(value)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5], 90, 5),
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90, 9),
        ([10, 9, 8, 7, 6, 5, 4, 3, 2, 1], 90, 9),  # order does not matter
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 90, 10),  # rank ceil(9.9) = 10
        ([3, 1, 2], 100, 3),
        ([3, 1, 2], 1, 1),
        ([0, 0, 1000], 50, 0),
    ],
)
def test_percentile_by_nearest_rank(values: list[int], q: float, expected: int) -> None:
    assert percentile(values, q) == expected


@pytest.mark.parametrize(("values", "q"), [([], 90), ([1], 0), ([1], 101), ([1], -5)])
def test_percentile_refuses_no_values_and_a_rank_out_of_range(values: list[int], q: float) -> None:
    with pytest.raises(ValueError, match="percentile"):
        percentile(values, q)


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=50), st.integers(1, 100))
def test_percentile_against_its_definition(values: list[int], q: int) -> None:
    """The smallest value that at least q % of the values do not exceed, by brute force."""
    naive = min(v for v in values if sum(w <= v for w in values) * 100 >= q * len(values))
    assert percentile(values, q) == naive


def test_the_advice_is_the_90th_percentile_of_ages_plus_the_last_publish_time() -> None:
    now = 1_700_000_000_000
    sent = [now - 100 * i for i in range(10)]  # ages 0, 100, ..., 900 ms
    assert look_after_ms(sent, now, 0) == 800
    assert look_after_ms(sent, now, 300) == 1100
    assert look_after_ms(list(reversed(sent)), now, 300) == 1100


def test_no_send_time_or_no_timed_batch_before_means_no_advice() -> None:
    now = 1_700_000_000_000
    assert look_after_ms([], now, 300) is None
    assert look_after_ms([now - 100], now, None) is None  # a sequencer's first batch


def test_ages_below_zero_count_as_zero_and_the_advice_is_clamped() -> None:
    now = 1_700_000_000_000
    assert look_after_ms([now + 5_000], now, 0) == 0  # SQS's clock ahead of ours
    assert look_after_ms([now + 5_000], now, -40) == 0
    assert look_after_ms([0], now, 10) == MAX_LOOK_AFTER_MS  # a timestamp of 1970
    assert look_after_ms([now - 1], now, 10**12) == MAX_LOOK_AFTER_MS


@given(
    st.lists(st.integers(0, 2 * 10**12), min_size=1, max_size=20),
    st.integers(0, 2 * 10**12),
    st.integers(-(10**6), 10**9),
)
def test_the_advice_is_always_a_value_a_record_accepts(
    sent: list[int], now: int, previous: int
) -> None:
    advice = look_after_ms(sent, now, previous)
    assert advice is not None and 0 <= advice <= MAX_LOOK_AFTER_MS
    assert BatchRecord.parse(record(advice).to_bytes()).look_after_ms == advice
    assert advice >= min(MAX_LOOK_AFTER_MS, max(0, now - max(sent)))
    assert math.isfinite(advice)
