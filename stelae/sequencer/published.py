"""What a sequencer builds on, read and checked: the published checkpoint, the index runs its
manifest names, and the right edge of its tree.

A sequencer never extends a tree it has not verified (docs/sequencing.md, step 4.1);
docs/durability.md, "What is checked when", says which of these reads happen when. Each check
raises :class:`LogCorruptedError` when the store contradicts itself, which is fatal.
"""

from __future__ import annotations

from dataclasses import dataclass

from stelae.sequencer.receipt import IndexMissingError, LogCorruptedError
from stelae.sequencer.store import ObjectNotFound, ObjectStore
from stelae.tiles.builder import right_edge_from_tiles
from stelae.tiles.checkpoint import Checkpoint
from stelae.tiles.compact import RightEdge
from stelae.tiles.errors import FormatError, VerificationError
from stelae.tiles.hashing import EMPTY_ROOT, root_from_leaf_hashes
from stelae.tiles.indexrun import RunRef
from stelae.tiles.layout import TILE_HEIGHT, TILE_WIDTH, TileID, right_edge_tiles
from stelae.tiles.manifest import Manifest
from stelae.tiles.note import NoteVerifier, open_note
from stelae.tiles.paths import CHECKPOINT, manifest_path
from stelae.tiles.tile import EntryBundle, HashTile


@dataclass
class Published:
    """A published checkpoint: its tree, the store's version of ``checkpoint`` (None: no
    checkpoint yet) and note, and the runs its index manifest names once they have been read."""

    size: int
    root: bytes
    version: str | None
    note: bytes
    runs: tuple[RunRef, ...] = ()


@dataclass
class Edge:
    """Cached right edge of the published tree, so steady-state batches skip re-reading it."""

    size: int
    root: bytes
    edge: RightEdge
    tiles: dict[int, HashTile]
    bundle: tuple[bytes, ...]  # the entries of the partial right-edge bundle, if any


def required(store: ObjectStore, key: str) -> bytes:
    """``key``, which the published checkpoint needs: missing, it is :class:`LogCorruptedError`."""
    try:
        return store.get(key)
    except ObjectNotFound as err:
        raise LogCorruptedError(f"{key}, which the published checkpoint needs, is missing") from err


def read_checkpoint(store: ObjectStore, verifier: NoteVerifier, origin: str) -> Published:
    """The stored checkpoint, its signature and origin verified; size 0 when there is none."""
    try:
        stored = store.get_versioned(CHECKPOINT)
    except ObjectNotFound:
        return Published(0, EMPTY_ROOT, None, b"")
    verified = open_note(stored.data, [verifier])
    cp = Checkpoint.parse(verified.text)
    if cp.origin != origin:
        raise LogCorruptedError(
            f"the stored checkpoint is for origin {cp.origin!r}, not {origin!r}"
        )
    return Published(cp.size, cp.root_hash, stored.version, stored.data)


def manifest_runs(
    store: ObjectStore, published: Published, verifier: NoteVerifier, origin: str
) -> tuple[RunRef, ...]:
    """The runs the index manifest of ``published`` names; it must be signed by the log and
    be for the checkpoint's size and root."""
    if published.size == 0:
        return ()
    try:
        data = store.get(manifest_path(published.size))
    except ObjectNotFound as err:
        raise IndexMissingError(
            f"the checkpoint at size {published.size} has no index manifest "
            f"({manifest_path(published.size)})",
            hint="a log from before the batch-level index: run `stelae index rebuild`",
        ) from err
    try:
        manifest = Manifest.open(data, [verifier], origin)
    except (FormatError, VerificationError) as err:
        raise LogCorruptedError(f"{manifest_path(published.size)}: {err}") from err
    if manifest.size != published.size or manifest.root != published.root:
        raise LogCorruptedError(
            f"{manifest_path(published.size)} is for size {manifest.size} root "
            f"{manifest.root.hex()}, not the checkpoint's root {published.root.hex()}"
        )
    return manifest.runs


def load_edge(store: ObjectStore, published: Published) -> Edge:
    """Read the right edge of the published tree (one tile per level, and the partial
    right-edge bundle) and check it against the signed root and itself."""
    size = published.size
    try:
        tiles = {
            t.level: HashTile.parse(required(store, t.path()), t.width)
            for t in right_edge_tiles(size)
        }
        edge = right_edge_from_tiles(size, tiles)
    except FormatError as err:
        # The server's fault, never the writer's: a damaged right edge is fatal.
        raise LogCorruptedError(f"the right edge of the tree at size {size}: {err}") from err
    if edge.root() != published.root:
        raise LogCorruptedError(
            f"tiles at size {size} hash to {edge.root().hex()}, "
            f"but the checkpoint says {published.root.hex()}"
        )
    bundle: tuple[bytes, ...] = ()
    if size % TILE_WIDTH:
        tid = TileID.bundle(size // TILE_WIDTH, size % TILE_WIDTH)
        try:
            bundle = EntryBundle.parse(required(store, tid.path()), tid.width).entries
        except FormatError as err:
            raise LogCorruptedError(f"{tid.path()}: {err}") from err
        # The bundle is extended below: its entries must be the ones the tile commits to.
        if EntryBundle(bundle).leaf_hashes() != list(tiles[0].hashes):
            tile = TileID(0, tid.index, tid.width).path()
            raise LogCorruptedError(
                f"{tid.path()} does not hold the entries {tile} commits to: "
                "refusing to extend a damaged log"
            )
    check_newest_full_tiles(store, size, tiles)
    return Edge(size, published.root, edge, tiles, bundle)


def check_newest_full_tiles(store: ObjectStore, size: int, tiles: dict[int, HashTile]) -> None:
    """The newest full tile of each level, just left of a partial right edge, must hash to
    what its parent holds: the tile written last before the edge, the likeliest to be hurt
    by a crash or a careless operator. One read per level, at start (and after another
    writer); damage further left is ``stelae fsck``'s to find (docs/durability.md)."""
    level = 0
    while (parent := tiles.get(level + 1)) is not None:
        count = size >> (TILE_HEIGHT * level)  # hashes at this level
        if count % TILE_WIDTH and len(parent) < TILE_WIDTH:  # both right edges partial
            k = count // TILE_WIDTH - 1  # the newest full tile at this level
            tid = TileID(level, k, TILE_WIDTH)
            try:
                hashes = HashTile.parse(required(store, tid.path()), TILE_WIDTH).hashes
            except FormatError as err:
                raise LogCorruptedError(f"{tid.path()}: {err}") from err
            if root_from_leaf_hashes(hashes) != parent.hashes[k % TILE_WIDTH]:
                raise LogCorruptedError(
                    f"{tid.path()} does not hash to what its parent tile holds: "
                    "refusing to extend a damaged log"
                )
        level += 1
