"""Tile paths, tile and bundle contents, and the right-edge tile builder."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stelae.tiles.builder import extend, right_edge_from_tiles
from stelae.tiles.client import TileReader
from stelae.tiles.compact import RightEdge
from stelae.tiles.errors import FormatError
from stelae.tiles.hashing import leaf_hash
from stelae.tiles.layout import (
    TileID,
    bundles_for_size,
    encode_index,
    right_edge_tiles,
    tile_width,
    tiles_for_size,
)
from stelae.tiles.proof import verify_consistency, verify_inclusion
from stelae.tiles.tile import MAX_ENTRY_SIZE, EntryBundle, EntryTooLargeError, HashTile
from tests.support import merkle_reference as ref
from tests.support.tlog import MemoryLog
from tests.support.vectors import load_vectors

V = load_vectors("merkle.json")


@pytest.mark.parametrize(("path", "level", "index", "width"), V["tile_paths"]["valid"])
def test_tile_path_vectors(path: str, level: int, index: int, width: int) -> None:
    tid = TileID.parse(path)
    assert (tid.level, tid.index, tid.width) == (level, index, width)
    assert tid.path() == path


@pytest.mark.parametrize("path", V["tile_paths"]["invalid"])
def test_tile_path_rejects(path: str) -> None:
    with pytest.raises(FormatError):
        TileID.parse(path)


def test_encode_index_examples() -> None:
    assert encode_index(1234067) == "x001/x234/067"
    assert encode_index(0) == "000"
    assert encode_index(123456789) == "x123/x456/789"
    assert encode_index(1000) == "x001/000"


@settings(max_examples=300)
@given(
    st.integers(min_value=-1, max_value=63),
    st.integers(min_value=0, max_value=2**64 - 1),
    st.integers(min_value=1, max_value=256),
)
def test_tile_path_round_trip(level: int, index: int, width: int) -> None:
    tid = TileID(level, index, width)
    assert TileID.parse(tid.path()) == tid


@pytest.mark.parametrize(("size", "want"), sorted(V["tile_sets"].items()))
def test_right_edge_tiles_examples(size: str, want: list[str]) -> None:
    got = [t.path() for t in tiles_for_size(int(size))]
    assert [p for p in got if p in want] == [p for p in want if p in got]
    assert set(want) <= set(got)
    assert {t.path() for t in right_edge_tiles(int(size))} <= set(want)


def test_tiles_for_70000() -> None:
    tiles = tiles_for_size(70000)
    assert sum(1 for t in tiles if t.level == 0 and not t.is_partial) == 273
    assert [t.path() for t in tiles if t.is_partial] == [
        "tile/0/273.p/112",
        "tile/1/001.p/17",
        "tile/2/000.p/1",
    ]
    assert tile_width(0, 274, 70000) == 0
    assert len(bundles_for_size(70000)) == 274


def test_hash_tile_round_trip_and_errors() -> None:
    tile = HashTile(tuple(leaf_hash(bytes([i])) for i in range(7)))
    assert HashTile.parse(tile.to_bytes(), 7) == tile
    with pytest.raises(FormatError, match="whole number"):
        HashTile.parse(b"\x00" * 33)
    with pytest.raises(FormatError, match="want 8"):
        HashTile.parse(tile.to_bytes(), 8)
    with pytest.raises(FormatError):
        HashTile.parse(b"")
    with pytest.raises(FormatError):
        HashTile.parse(b"\x00" * 32 * 257)


def test_bundle_round_trip_and_limits() -> None:
    entries = (b"", b"a", b"x" * 1000, b"y" * MAX_ENTRY_SIZE)
    bundle = EntryBundle(entries)
    data = bundle.to_bytes()
    assert data[:2] == b"\x00\x00" and data[2:4] == b"\x00\x01"
    assert EntryBundle.parse(data) == bundle
    with pytest.raises(EntryTooLargeError, match="65535"):
        EntryBundle((b"z" * (MAX_ENTRY_SIZE + 1),))
    with pytest.raises(FormatError, match="claims"):
        EntryBundle.parse(b"\x00\x05abc")
    with pytest.raises(FormatError, match="truncated"):
        EntryBundle.parse(b"\x00\x01a\x00")
    with pytest.raises(FormatError, match="want 3"):
        EntryBundle.parse(data, 3)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=256))
def test_bundle_property_round_trip(entries: list[bytes]) -> None:
    assert EntryBundle.parse(EntryBundle(tuple(entries)).to_bytes()).entries == tuple(entries)


def _entries(n: int, start: int = 0) -> list[bytes]:
    return [f"entry {i}".encode() for i in range(start, start + n)]


@pytest.mark.parametrize(
    "batches",
    [
        [1],
        [255],
        [256],
        [257],
        [255, 1, 1],
        [100, 156, 1],
        [3, 300, 7, 256, 1000],
    ],
)
def test_builder_matches_reference_and_proofs_verify(batches: list[int]) -> None:
    log = MemoryLog()
    reader = TileReader(log)
    total = 0
    sizes = []
    for n in batches:
        log.append(_entries(n, total))
        total += n
        sizes.append(total)
        hashes = [leaf_hash(e) for e in log.entries]
        root = ref.mth(hashes)
        assert log.edge.root() == root
        assert reader.root(total) == root
        for idx in {0, total // 2, total - 1}:
            verify_inclusion(idx, total, hashes[idx], reader.inclusion_proof(idx, total), root)
        for old in sizes:
            verify_consistency(
                old, total, reader.consistency_proof(old, total), ref.mth(hashes[:old]), root
            )


@pytest.mark.parametrize("size", [255, 256, 257, 65535, 65536, 65537])
def test_tile_boundaries(size: int) -> None:
    """Proofs at every tile boundary, on a tree grown in uneven batches."""
    log = MemoryLog()
    step = max(1, size // 3)
    pos = 0
    while pos < size:
        n = min(step, size - pos)
        log.append(_entries(n, pos))
        pos += n
    reader = TileReader(log)
    root = log.edge.root()
    assert reader.root(size) == root
    for idx in (0, 1, size // 2, size - 2, size - 1):
        lh = leaf_hash(log.entries[idx])
        assert reader.leaf_hash(idx, size) == lh
        verify_inclusion(idx, size, lh, reader.inclusion_proof(idx, size), root)
    hashes = [leaf_hash(e) for e in log.entries]
    for old in (1, 255, 256, 257, size - 1):
        if old <= size:
            old_root = RightEdge.empty().append(hashes[:old]).root()
            verify_consistency(old, size, reader.consistency_proof(old, size), old_root, root)


def _edge_tiles(log: MemoryLog, size: int) -> dict[int, HashTile]:
    reader = TileReader(log)
    return {t.level: reader.hash_tile(t.level, t.index, size) for t in right_edge_tiles(size)}


def test_right_edge_from_tiles_recovers_state() -> None:
    log = MemoryLog()
    log.append(_entries(773))
    rebuilt = right_edge_from_tiles(773, _edge_tiles(log, 773))
    assert rebuilt == log.edge
    # Continue from the rebuilt state: same result as continuing from memory.
    more = [leaf_hash(e) for e in _entries(300, 773)]
    a = extend(rebuilt, _edge_tiles(log, 773), more)
    b = extend(log.edge, log.edge_tiles, more)
    assert a.edge == b.edge and a.tiles == b.tiles


def test_builder_rejects_wrong_edge_tiles() -> None:
    log = MemoryLog()
    log.append(_entries(10))
    with pytest.raises(FormatError, match="wrong width"):
        extend(log.edge, {0: HashTile(log.edge_tiles[0].hashes[:5])}, [leaf_hash(b"x")])
    with pytest.raises(FormatError):
        right_edge_from_tiles(10, {})


def test_partial_tile_falls_back_to_full() -> None:
    log = MemoryLog()
    log.append(_entries(5))
    log.append(_entries(300, 5))
    # The log deleted its partial tiles once the full ones existed (tlog-tiles allows it).
    del log.objects["tile/0/000.p/5"]
    del log.objects["tile/entries/000.p/5"]
    reader = TileReader(log)
    tile = reader.hash_tile(0, 0, 5)
    assert len(tile) == 5 and tile.hashes[4] == leaf_hash(b"entry 4")
    assert reader.bundle(0, 5).entries[4] == b"entry 4"


def test_right_edge_sizes_are_logarithmic() -> None:
    for size in (1, 10**3, 10**6, 10**9, 2**40 + 12345):
        assert len(right_edge_tiles(size)) <= (size.bit_length() + 7) // 8
    assert RightEdge.empty().root() == ref.mth([])
