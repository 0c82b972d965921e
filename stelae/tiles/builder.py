"""Growing a tiled tree from its right edge: which tiles change when leaves are appended.

A sequencer reads only the rightmost tile at each level
(:func:`~stelae.tiles.layout.right_edge_tiles`, O(log n) objects), rebuilds the compact range
from them, appends a batch, and writes the tiles the batch touched. The work is
O(batch + log n); the tree is never re-hashed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from stelae.tiles.compact import RightEdge, perfect_subtrees
from stelae.tiles.errors import FormatError
from stelae.tiles.hashing import root_from_leaf_hashes
from stelae.tiles.layout import TILE_HEIGHT, TILE_WIDTH, TileID, right_edge_tiles, tile_width
from stelae.tiles.tile import HashTile


def right_edge_from_tiles(size: int, tiles: Mapping[int, HashTile]) -> RightEdge:
    """The compact range of a tree of ``size``, from its right-edge tiles (level → tile).

    ``tiles`` must hold, for every level in :func:`right_edge_tiles(size)`, that tile's hashes.
    Every perfect subtree of the compact range lies inside one of them.
    """
    expected = {t.level: t for t in right_edge_tiles(size)}
    hashes: list[bytes] = []
    for level, index in perfect_subtrees(0, size):
        tile_level, sub = divmod(level, TILE_HEIGHT)
        first = index << sub
        tid = expected.get(tile_level)
        if tid is None or tid.index != first // TILE_WIDTH:
            raise FormatError(f"node {level}/{index} is not in a right-edge tile of size {size}")
        tile = tiles.get(tile_level)
        if tile is None:
            raise FormatError(f"right-edge tile at level {tile_level} is missing")
        if len(tile) != tid.width:
            raise FormatError(
                f"right-edge tile {tid.path()} holds {len(tile)} hashes, want {tid.width}"
            )
        offset = first % TILE_WIDTH
        hashes.append(root_from_leaf_hashes(tile.hashes[offset : offset + (1 << sub)]))
    return RightEdge(size, tuple(hashes))


@dataclass(frozen=True)
class TileUpdate:
    """The result of appending leaves: the new compact range and every tile that changed.

    ``tiles`` lists each new or grown tile once, with the width it has at ``edge.size``; it is
    ordered by level then index. ``edge_tiles`` is the new right-edge tile per level, ready for
    the next batch without re-reading storage.
    """

    edge: RightEdge
    tiles: tuple[tuple[TileID, HashTile], ...]
    edge_tiles: Mapping[int, HashTile]


def extend(
    edge: RightEdge, edge_tiles: Mapping[int, HashTile], leaf_hashes: Sequence[bytes]
) -> TileUpdate:
    """Append ``leaf_hashes`` to a tree given its compact range and right-edge tiles."""
    old_size = edge.size
    pending = _partial_edge_tiles(old_size, edge_tiles)

    def on_node(level: int, index: int, h: bytes) -> None:
        tiles = pending.setdefault(level // TILE_HEIGHT, {})
        tile_index, pos = divmod(index, TILE_WIDTH)
        hashes = tiles.setdefault(tile_index, [])
        if len(hashes) != pos:  # cannot happen unless the inputs were inconsistent
            raise FormatError(f"tile {level // TILE_HEIGHT}/{tile_index} out of order at {pos}")
        hashes.append(h)

    new_edge = edge.append_with_nodes(leaf_hashes, on_node, stride=TILE_HEIGHT)
    changed = _changed_tiles(pending, old_size, new_edge.size)
    new_edge_tiles: dict[int, HashTile] = {}
    for tid in right_edge_tiles(new_edge.size):
        grown = pending.get(tid.level, {}).get(tid.index)
        if grown is not None:
            new_edge_tiles[tid.level] = HashTile(tuple(grown))
        else:
            # Unchanged level: the old right-edge tile is still the right edge.
            new_edge_tiles[tid.level] = edge_tiles[tid.level]
    return TileUpdate(new_edge, changed, new_edge_tiles)


def _partial_edge_tiles(
    size: int, edge_tiles: Mapping[int, HashTile]
) -> dict[int, dict[int, list[bytes]]]:
    """The hashes of the partial right-edge tiles of a tree of ``size``, as level → {tile
    index: hashes}: where :func:`extend` starts collecting the tiles a batch touches. Checks
    that every right-edge tile is given, with its width."""
    pending: dict[int, dict[int, list[bytes]]] = {}
    for tid in right_edge_tiles(size):
        tile = edge_tiles.get(tid.level)
        if tile is None or len(tile) != tid.width:
            raise FormatError(f"right-edge tile {tid.path()} is missing or has the wrong width")
        if tid.width < TILE_WIDTH:
            pending.setdefault(tid.level, {})[tid.index] = list(tile.hashes)
    return pending


def _changed_tiles(
    pending: Mapping[int, Mapping[int, list[bytes]]], old_size: int, new_size: int
) -> tuple[tuple[TileID, HashTile], ...]:
    """The tiles in ``pending`` that growing the tree from ``old_size`` to ``new_size``
    created or grew, ordered by level then index, each checked to have its width."""
    changed: list[tuple[TileID, HashTile]] = []
    for level in sorted(pending):
        for index in sorted(pending[level]):
            hashes = pending[level][index]
            width = tile_width(level, index, new_size)
            if width != len(hashes):
                raise FormatError(f"tile {level}/{index} has {len(hashes)} hashes, want {width}")
            if index * TILE_WIDTH + width <= (old_size >> (TILE_HEIGHT * level)):
                continue  # unchanged by this batch (the old right edge, already written)
            changed.append((TileID(level, index, width), HashTile(tuple(hashes))))
    return tuple(changed)
