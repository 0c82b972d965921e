"""A verifying read client for any C2SP tlog-tiles log.

Given a :class:`~stelae.tiles.fetch.Fetcher` and the log's verifier keys, the client verifies the
checkpoint's signature and origin, returns entries with their inclusion proved against it, and
proves consistency between tree sizes. Proofs are computed from tiles, fetching only the tiles the
proof needs: a partial tile is requested only at a size a verified checkpoint implies, and the full
tile is used in its place when the partial one is gone (tlog-tiles allows logs to delete them).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stelae.tiles.checkpoint import Checkpoint, SignedCheckpoint, open_checkpoint
from stelae.tiles.errors import FormatError, NotFoundError, VerificationError
from stelae.tiles.fetch import Fetcher
from stelae.tiles.hashing import EMPTY_ROOT, leaf_hash, root_from_leaf_hashes
from stelae.tiles.layout import TILE_HEIGHT, TILE_WIDTH, TileID, tile_width
from stelae.tiles.note import NoteVerifier
from stelae.tiles.paths import CHECKPOINT
from stelae.tiles.proof import (
    consistency_ranges,
    inclusion_ranges,
    range_root,
    verify_consistency,
    verify_inclusion,
)
from stelae.tiles.tile import EntryBundle, HashTile

if TYPE_CHECKING:
    from stelae.tiles.locate import Located


class InconsistentCheckpointsError(VerificationError):
    """Two checkpoints of one log are not consistent: evidence of a fork or a rewritten log.

    Carries both signed checkpoints (``old``, ``new``) so the caller can print the evidence.
    """

    def __init__(self, old: bytes, new: bytes, cause: Exception) -> None:
        super().__init__(f"checkpoints are not consistent: {cause}")
        self.old = old
        self.new = new
        self.cause = cause


class TileReader:
    """Reads hash tiles and bundles for a given tree size and computes nodes and proofs.

    Tiles are fetched at the width they have at ``max(tree_size, read_size)`` and cut down to
    ``tree_size``: a log serves partial tiles only for sizes it published, so a proof for a size
    it never published (or a root at that size) is computed from the tiles of a larger, verified
    checkpoint. :class:`LogClient` sets ``read_size`` to the size of each checkpoint it verifies.
    """

    def __init__(self, fetcher: Fetcher, read_size: int = 0, *, cache_tiles: int = 256) -> None:
        self.fetcher = fetcher
        self.read_size = read_size
        # Parsed hash tiles by path: a path names immutable bytes, and one proof asks for the
        # same tile many times (once per node it needs from it).
        self._parsed: OrderedDict[str, tuple[bytes, ...]] = OrderedDict()
        self._cache_tiles = cache_tiles
        self._lock = threading.Lock()  # readers may be shared between threads (the write API)

    def _fetch_tile(self, tid: TileID) -> bytes:
        try:
            return self.fetcher.fetch(tid.path())
        except NotFoundError:
            if not tid.is_partial:
                raise
        # The partial tile is gone; the full one (if it exists by now) starts with the same hashes.
        return self.fetcher.fetch(tid.full().path())

    def hash_tile(self, level: int, index: int, tree_size: int) -> HashTile:
        return HashTile(self._tile_hashes(level, index, tree_size))

    def _tile_hashes(self, level: int, index: int, tree_size: int) -> tuple[bytes, ...]:
        """The hashes of tile (level, index) at ``tree_size``, from the parsed-tile cache (which
        holds only tiles that parsed, so the hashes need no second validation)."""
        width = tile_width(level, index, tree_size)
        if width == 0:
            raise FormatError(f"tile {level}/{index} does not exist at tree size {tree_size}")
        tid = TileID(level, index, tile_width(level, index, max(tree_size, self.read_size)))
        path = tid.path()
        with self._lock:
            hashes = self._parsed.get(path)
            if hashes is not None:
                self._parsed.move_to_end(path)
        if hashes is None:
            data = self._fetch_tile(tid)
            if len(data) > tid.width * 32 and len(data) == TILE_WIDTH * 32:
                data = data[: tid.width * 32]  # the full tile stood in for a missing partial
            try:
                hashes = HashTile.parse(data, tid.width).hashes
            except FormatError as err:
                raise FormatError(f"tile {path}: {err}") from err
            with self._lock:
                self._parsed[path] = hashes
                if len(self._parsed) > self._cache_tiles:
                    self._parsed.popitem(last=False)
        return hashes[:width]

    def bundle(self, index: int, tree_size: int) -> EntryBundle:
        width = tile_width(0, index, tree_size)
        if width == 0:
            raise FormatError(f"bundle {index} does not exist at tree size {tree_size}")
        tid = TileID.bundle(index, tile_width(0, index, max(tree_size, self.read_size)))
        data = self._fetch_tile(tid)
        try:
            bundle = EntryBundle.parse(data)
        except FormatError as err:
            raise FormatError(f"bundle {tid.path()}: {err}") from err
        if len(bundle) > width and len(bundle) in (tid.width, TILE_WIDTH):
            bundle = EntryBundle(bundle.entries[:width])
        if len(bundle) != width:
            raise FormatError(f"bundle {tid.path()} holds {len(bundle)} entries, want {width}")
        return bundle

    def node(self, level: int, index: int, tree_size: int) -> bytes:
        """The hash of the perfect subtree (level, index), which must be complete at tree_size."""
        if (index + 1) << level > tree_size:
            raise FormatError(f"node {level}/{index} is not complete at tree size {tree_size}")
        tile_level, sub = divmod(level, TILE_HEIGHT)
        first = index << sub  # leftmost descendant stored at this tile level
        hashes = self._tile_hashes(tile_level, first // TILE_WIDTH, tree_size)
        offset = first % TILE_WIDTH
        return root_from_leaf_hashes(hashes[offset : offset + (1 << sub)])

    def leaf_hash(self, index: int, tree_size: int) -> bytes:
        return self.node(0, index, tree_size)

    def root(self, tree_size: int) -> bytes:
        if tree_size == 0:
            return EMPTY_ROOT
        return range_root(0, tree_size, lambda lv, i: self.node(lv, i, tree_size))

    def inclusion_proof(self, index: int, tree_size: int) -> list[bytes]:
        return [
            range_root(a, b, lambda lv, i: self.node(lv, i, tree_size))
            for a, b in inclusion_ranges(index, tree_size)
        ]

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        return [
            range_root(a, b, lambda lv, i: self.node(lv, i, size2))
            for a, b in consistency_ranges(size1, size2)
        ]


@dataclass(frozen=True)
class VerifiedEntry:
    """An entry whose inclusion in ``checkpoint`` has been verified."""

    index: int
    data: bytes
    leaf_hash: bytes
    proof: tuple[bytes, ...]
    checkpoint: SignedCheckpoint


class LogClient:
    """Verifying reads from one log, identified by its origin and verifier keys."""

    def __init__(
        self,
        fetcher: Fetcher,
        verifiers: Sequence[NoteVerifier],
        origin: str,
        *,
        require_all: bool = False,
    ) -> None:
        """``require_all``: checkpoints must be signed by every key in ``verifiers`` (a reader
        pinning a log's Ed25519 and ML-DSA-44 keys), not by any one of them."""
        if not verifiers:
            raise FormatError("a log client needs at least one verifier key")
        self.fetcher = fetcher
        self.verifiers = tuple(verifiers)
        self.origin = origin
        self.require_all = require_all
        self.tiles = TileReader(fetcher)

    def checkpoint(self) -> SignedCheckpoint:
        """Fetch the current checkpoint and verify its signature and origin."""
        data = self.fetcher.fetch(CHECKPOINT)
        return self.open_checkpoint(data)

    def open_checkpoint(self, data: bytes) -> SignedCheckpoint:
        """Verify a signed checkpoint of this log; its size becomes the size tiles are read at."""
        cp = open_checkpoint(data, self.verifiers, self.origin, require_all=self.require_all)
        self.tiles.read_size = max(self.tiles.read_size, cp.checkpoint.size)
        return cp

    def prove_inclusion(self, index: int, leaf: bytes, checkpoint: Checkpoint) -> list[bytes]:
        """Compute and verify the inclusion of ``leaf`` (a leaf hash) at ``index``."""
        proof = self.tiles.inclusion_proof(index, checkpoint.size)
        verify_inclusion(index, checkpoint.size, leaf, proof, checkpoint.root_hash)
        return proof

    def entry(self, index: int, checkpoint: SignedCheckpoint | None = None) -> VerifiedEntry:
        """Entry ``index``, its inclusion in ``checkpoint`` (default: the current one) proved."""
        cp = checkpoint if checkpoint is not None else self.checkpoint()
        size = cp.checkpoint.size
        if not 0 <= index < size:
            raise FormatError(f"entry {index} is not in the log (tree size {size})")
        bundle = self.tiles.bundle(index // TILE_WIDTH, size)
        data = bundle.entries[index % TILE_WIDTH]
        lh = leaf_hash(data)
        proof = self.prove_inclusion(index, lh, cp.checkpoint)
        return VerifiedEntry(index, data, lh, tuple(proof), cp)

    def locate(self, leaf: bytes, checkpoint: SignedCheckpoint) -> Located | None:
        """Find the entry with leaf hash ``leaf`` through the log's verifiable lookup index
        (docs/index.md); None if the index proves it absent at ``checkpoint``. If the index
        objects of ``checkpoint`` were collected, the log's latest checkpoint answers."""
        from stelae.tiles.locate import locate_leaf  # noqa: PLC0415 - the index imports this module

        def latest() -> Checkpoint:
            # The runs of an old checkpoint may have been collected (docs/index.md, "Garbage
            # collection"): the latest one, proved to extend it, answers for it too.
            new = self.checkpoint()
            self.prove_consistency(checkpoint, new)
            return new.checkpoint

        return locate_leaf(
            self.fetcher.fetch,
            self.verifiers,
            self.origin,
            checkpoint.checkpoint,
            leaf,
            latest=latest,
        )

    def bundles(self, start: int, checkpoint: Checkpoint) -> Iterator[tuple[int, EntryBundle]]:
        """Every bundle from the one holding entry ``start`` to the end of ``checkpoint``.

        Yields ``(first_index, bundle)``. Entries are not proved one by one: callers that audit
        recompute the tiles from them (see the monitor) and compare to the signed root.
        """
        first_bundle = start // TILE_WIDTH
        end_bundle = (checkpoint.size + TILE_WIDTH - 1) // TILE_WIDTH
        for n in range(first_bundle, end_bundle):
            yield n * TILE_WIDTH, self.tiles.bundle(n, checkpoint.size)

    def prove_consistency(self, old: SignedCheckpoint, new: SignedCheckpoint) -> list[bytes]:
        """Prove ``new`` extends ``old``; raise :class:`InconsistentCheckpointsError` otherwise."""
        a, b = old.checkpoint, new.checkpoint
        try:
            if a.size > b.size:
                raise VerificationError(f"the log shrank from size {a.size} to size {b.size}")
            if a.size == 0:
                if a.root_hash != EMPTY_ROOT:
                    raise VerificationError("a size-0 checkpoint must have the empty-tree root")
                return []  # every tree extends the empty one
            proof = self.tiles.consistency_proof(a.size, b.size)
            verify_consistency(a.size, b.size, proof, a.root_hash, b.root_hash)
            return proof
        except VerificationError as err:
            raise InconsistentCheckpointsError(old.to_bytes(), new.to_bytes(), err) from err
