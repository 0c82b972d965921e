"""``stelae index rebuild``: give a log its lookup index from its own entries.

A log written before the batch-level index (docs/index.md) has per-entry index objects and no
manifests, and a sequencer refuses to extend it until it has one. Rebuilding reads every entry
the published checkpoint covers, computes their keys (``keys_of``: the entry kinds' job), writes
one run over the whole tree and the signed manifest for the published size. Every object written
is a pure function of the entries, so a rebuild cut short is simply run again, and a rebuild of a
log that has its index writes the same bytes (or stops at the first difference, which then is
evidence of a damaged index).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from stelae.errors import StelaeError
from stelae.sequencer.receipt import IndexMissingError
from stelae.sequencer.store import ObjectNotFound, ObjectStore
from stelae.tiles.batch import BatchRecord
from stelae.tiles.checkpoint import Checkpoint
from stelae.tiles.errors import FormatError
from stelae.tiles.indexaudit import IndexedEntry, KeysOf, rebuild_run
from stelae.tiles.indexrun import RunRef
from stelae.tiles.layout import TILE_WIDTH, TileID
from stelae.tiles.manifest import Manifest
from stelae.tiles.note import open_note
from stelae.tiles.notekeys import Ed25519NoteSigner
from stelae.tiles.paths import CHECKPOINT, ObjectClass, batch_path, manifest_path
from stelae.tiles.tile import EntryBundle, HashTile

log = logging.getLogger("stelae.rebuild")


def rebuild_index(
    store: ObjectStore,
    signer: Ed25519NoteSigner,
    keys_of: KeysOf,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Manifest:
    """Write the index run ``[0, size)`` and the manifest of the published checkpoint's size."""
    try:
        note = store.get(CHECKPOINT)
    except ObjectNotFound as err:
        raise StelaeError("the log has no checkpoint yet: nothing to index") from err
    cp = Checkpoint.parse(open_note(note, [signer.verifier]).text)
    if cp.origin != signer.name:
        raise StelaeError(f"the checkpoint is for origin {cp.origin!r}, not {signer.name!r}")
    size = cp.size
    runs: tuple[RunRef, ...] = ()
    if size:
        starts = _batch_starts(store, size)
        entries: list[IndexedEntry] = []
        for n in range(0, (size + TILE_WIDTH - 1) // TILE_WIDTH):
            width = min(TILE_WIDTH, size - n * TILE_WIDTH)
            bundle = EntryBundle.parse(store.get(TileID.bundle(n, width).path()), width)
            tile = HashTile.parse(store.get(TileID(0, n, width).path()), width)
            if bundle.leaf_hashes() != list(tile.hashes):
                raise FormatError(
                    f"{TileID.bundle(n, width).path()} does not hold the entries "
                    f"{TileID(0, n, width).path()} commits to: run `stelae fsck` first"
                )
            for i, body in enumerate(bundle.entries):
                index = n * TILE_WIDTH + i
                entries.append(IndexedEntry(index, starts.get(index, index), body))
            if progress is not None:
                progress(len(entries), size)
        built = rebuild_run(0, size, entries, keys_of)
        for path, data in built.objects():
            store.put_immutable(path, data, ObjectClass.INDEX_RUN)
        runs = (built.ref,)
    manifest = Manifest(cp.origin, size, cp.root_hash, runs)
    store.flush()
    store.put_immutable(manifest_path(size), manifest.sign(signer), ObjectClass.INDEX_MANIFEST)
    store.flush()
    return manifest


def ensure_index(store: ObjectStore, signer: Ed25519NoteSigner, keys_of: KeysOf) -> bool:
    """Rebuild the index if the published checkpoint has no manifest (a log from an earlier
    stelae); True if it did. ``stelae serve`` calls this before it starts sequencing."""
    try:
        note = store.get(CHECKPOINT)
    except ObjectNotFound:
        return False  # a new log: its first checkpoint comes with its manifest
    size = Checkpoint.parse(open_note(note, [signer.verifier]).text).size
    try:
        store.get(manifest_path(size))
        return False
    except ObjectNotFound:
        pass
    log.warning("the log has no lookup index manifest at size %d: rebuilding it", size)
    rebuild_index(store, signer, keys_of)
    return True


def _batch_starts(store: ObjectStore, size: int) -> dict[int, int]:
    """``index -> first index of its batch`` from the chain of batch records; entries of a log
    from before batch records are their own start (offset 0), as docs/index.md says."""
    starts: dict[int, int] = {}
    pos = 0
    while pos < size:
        try:
            record = BatchRecord.parse_receipt(store.get(batch_path(pos)))
        except ObjectNotFound:
            pos += 1  # sequenced before batch records
            continue
        end = min(record.new_size, size)
        starts.update(dict.fromkeys(range(pos, end), pos))
        pos = record.new_size
    return starts


__all__ = ["IndexMissingError", "ensure_index", "rebuild_index"]
