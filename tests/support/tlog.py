"""Test support: build a tlog-tiles tree in a dict with the library's own tile builder.

Objects are written for every intermediate size passed to :meth:`MemoryLog.append`, as a sequencer
would, so partial tiles exist at each "published" size.
"""

from __future__ import annotations

from collections.abc import Sequence

from stelae.tiles.builder import extend
from stelae.tiles.compact import RightEdge
from stelae.tiles.errors import NotFoundError
from stelae.tiles.hashing import leaf_hash
from stelae.tiles.layout import TILE_WIDTH, TileID
from stelae.tiles.tile import EntryBundle, HashTile


class MemoryLog:
    """A fetcher over an in-memory tree (tiles and bundles only; no checkpoint)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.edge = RightEdge.empty()
        self.edge_tiles: dict[int, HashTile] = {}
        self.entries: list[bytes] = []

    def append(self, entries: Sequence[bytes]) -> None:
        update = extend(self.edge, self.edge_tiles, [leaf_hash(e) for e in entries])
        for tid, tile in update.tiles:
            self.objects[tid.path()] = tile.to_bytes()
        start = self.edge.size
        self.entries.extend(entries)
        for b in range(start // TILE_WIDTH, (len(self.entries) - 1) // TILE_WIDTH + 1):
            chunk = self.entries[b * TILE_WIDTH : (b + 1) * TILE_WIDTH]
            self.objects[TileID.bundle(b, len(chunk)).path()] = EntryBundle(tuple(chunk)).to_bytes()
        self.edge = update.edge
        self.edge_tiles = dict(update.edge_tiles)

    def fetch(self, path: str) -> bytes:
        try:
            return self.objects[path]
        except KeyError:
            raise NotFoundError(f"{path} not found") from None
