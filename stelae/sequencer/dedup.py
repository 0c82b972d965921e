"""Which entries of a batch are already in the log (docs/sequencing.md, "Deduplication").

A miss in the recent-leaf window (:mod:`stelae.sequencer.recent`) is exact and costs no read. A
hit is only a candidate, confirmed through the verifiable index (a ``leaf`` lookup) and the
original entry's batch record, which supplies its integrated time and signed entry timestamp; a
log without the index confirms from the level-0 tiles instead (and has no SET to answer with).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from stelae.sequencer.receipt import LogCorruptedError, Receipt, receipt_of_duplicate
from stelae.sequencer.recent import RecentLeaves
from stelae.tiles.batch import PendingEntry
from stelae.tiles.checkpoint import Checkpoint
from stelae.tiles.errors import FormatError
from stelae.tiles.layout import TILE_WIDTH, TileID
from stelae.tiles.locate import locate_leaf
from stelae.tiles.note import NoteVerifier
from stelae.tiles.tile import HashTile

Get = Callable[[str], bytes]


class Deduplicator:
    def __init__(
        self,
        get: Get,
        required: Get,
        verifier: NoteVerifier,
        origin: str,
        *,
        window: int,
        lookup_index: bool,
        read_many: Callable[[Get, list[str]], list[bytes]],
    ) -> None:
        self._get = get  # NotFoundError on a missing object (the index may lack a batch record)
        self._required = required  # LogCorruptedError on a missing object the tree needs
        self._verifier = verifier
        self._origin = origin
        self._window = window
        self._lookup_index = lookup_index
        self._read_many = read_many
        self.recent = RecentLeaves(window)

    @property
    def size(self) -> int:
        """One past the newest index remembered."""
        return self.recent.size

    def remember(self, first: int, leaf_hashes: Sequence[bytes]) -> None:
        self.recent.add(first, leaf_hashes)

    def warm(self, size: int) -> None:
        """Fill the window from the level-0 tiles of the newest ``window`` entries."""
        recent = RecentLeaves(self._window)
        start = max(0, size - self._window) // TILE_WIDTH * TILE_WIDTH
        tids = [
            TileID(0, n, min(TILE_WIDTH, size - n * TILE_WIDTH))
            for n in range(start // TILE_WIDTH, (size + TILE_WIDTH - 1) // TILE_WIDTH)
        ]
        tiles = self._read_many(self._required, [t.path() for t in tids])
        for tid, data in zip(tids, tiles, strict=True):
            try:
                recent.add(tid.index * TILE_WIDTH, HashTile.parse(data, tid.width).hashes)
            except FormatError as err:
                raise LogCorruptedError(f"{tid.path()}: {err}") from err
        self.recent = recent

    def split(
        self, batch: Sequence[PendingEntry], size: int, root: bytes, note: bytes
    ) -> tuple[dict[bytes, Receipt], list[PendingEntry]]:
        """The receipts of the entries already in the tree (``size``, ``root``, published as
        ``note``), and the others, once each, in order."""
        receipts: dict[bytes, Receipt] = {}
        unique: dict[bytes, PendingEntry] = {}
        for e in batch:
            unique.setdefault(e.leaf_hash, e)
        for lh in [lh for lh in unique if self.recent.candidates(lh)]:
            found = self._find(lh, size, root, note)
            if found is not None:
                receipts[lh] = found
                del unique[lh]
        return receipts, list(unique.values())

    def _find(self, leaf_hash: bytes, size: int, root: bytes, note: bytes) -> Receipt | None:
        if not self._lookup_index:
            return self._find_in_tiles(leaf_hash, size, note)
        cp = Checkpoint(self._origin, size, root)
        found = locate_leaf(self._get, [self._verifier], self._origin, cp, leaf_hash)
        if found is None:
            return None
        if found.batch is None:  # sequenced before batch records: confirm from the tiles
            return self._find_in_tiles(leaf_hash, size, note)
        return receipt_of_duplicate(found, note, size)

    def _find_in_tiles(self, leaf_hash: bytes, size: int, note: bytes) -> Receipt | None:
        for index in self.recent.candidates(leaf_hash):
            if index >= size:
                continue
            n = index // TILE_WIDTH
            tid = TileID(0, n, min(TILE_WIDTH, size - n * TILE_WIDTH))
            if HashTile.parse(self._required(tid.path()), tid.width).hashes[index % TILE_WIDTH] == (
                leaf_hash
            ):
                return Receipt(index, True, 0, note, size)
        return None
