"""The storage benchmark (benchmarks/storage.py) in --quick mode: exact where it can be."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import storage


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return storage.run(True)


def test_collection_deletes_exactly_tile_zero_and_its_bundle(result: dict[str, Any]) -> None:
    for r in result["runs"]:
        assert r["entries"] == storage.QUICK_ENTRIES
        if r["grace"] is None:
            assert r["deletes"] == 0
            continue
        # Tile 0 and bundle 0 (full at 256, due 60 batches later): 2 x 255 partial widths; tile
        # 1 is still partial, so its partials stay (the right edge and those of older sizes).
        assert r["objects"]["partial tiles"] + r["objects"]["partial bundles"] == 2 * 144 + 1
        # Manifests are kept (signed commitments), one per batch and the empty log's.
        assert r["objects"]["index manifests"] == storage.QUICK_ENTRIES + 1
        # Each batch's manifest replaces two single-shard runs (the older merge and the last
        # batch's run): 2 x 60 within the grace period, and the newest merge, not listed yet.
        assert r["objects"]["index runs (superseded)"] == 2 * 60 + 1


SHRINK = ("index runs (superseded)",)
"""Besides partials, what collection deletes: replaced index runs."""


def test_collection_only_ever_removes_partials_and_replaced_index_objects(
    result: dict[str, Any],
) -> None:
    runs = {(r["body"], r["grace"] is not None): r for r in result["runs"]}
    for body in {r["body"] for r in result["runs"]}:
        before, after = runs[(body, False)], runs[(body, True)]
        for cls in storage.CLASSES:
            if cls.startswith("partial") or cls in SHRINK:
                assert after["bytes_per_entry"][cls] < before["bytes_per_entry"][cls] / 2, cls
            else:
                assert after["bytes_per_entry"][cls] == before["bytes_per_entry"][cls], cls
        # Every deletion removed an object that existed (the ledgers know what was written).
        removed = sum(before["objects"].values()) - sum(after["objects"].values())
        assert removed == after["deletes"] > 2 * 255
