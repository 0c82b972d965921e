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
        # Tile 0 and bundle 0 (full at 256, due 60 batches later): 2 x 255 partial widths; tile
        # 1 is still partial, so its partials stay (the right edge and those of older sizes).
        assert r["deletes"] == (0 if r["grace"] is None else 2 * 255)


def test_collection_only_ever_removes_partials(result: dict[str, Any]) -> None:
    runs = {(r["body"], r["grace"] is not None): r for r in result["runs"]}
    for body in {r["body"] for r in result["runs"]}:
        before, after = runs[(body, False)], runs[(body, True)]
        for cls in storage.CLASSES:
            if cls.startswith("partial"):
                assert after["bytes_per_entry"][cls] < before["bytes_per_entry"][cls] / 2
            else:
                assert after["bytes_per_entry"][cls] == before["bytes_per_entry"][cls], cls
        assert sum(before["objects"].values()) - sum(after["objects"].values()) == 2 * 255
