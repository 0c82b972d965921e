"""A batch's write wave (docs/sequencing.md, steps 4.2–4.4): the entry bundles and hash tiles it
creates or grows, its index run and signed manifest, and the checkpoint's history object — each a
pure function of the published tree and the batch record, all stored at once, since none depends
on another being stored ("Round trips" there says why that matters on S3).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from stelae.sequencer.signing import LogKeys
from stelae.sequencer.store import ImmutableConflictError, ObjectStore
from stelae.tiles.batch import BatchRecord, PendingEntry
from stelae.tiles.builder import TileUpdate
from stelae.tiles.indexkeys import KeyKind
from stelae.tiles.indexrecord import Record
from stelae.tiles.indexrun import BatchEntryKeys, RunRef, batch_records, build_run
from stelae.tiles.layout import TILE_WIDTH, TileID
from stelae.tiles.manifest import Manifest
from stelae.tiles.notekeys import Ed25519NoteSigner
from stelae.tiles.paths import ObjectClass, history_path, manifest_path
from stelae.tiles.tile import EntryBundle

_T = TypeVar("_T")
_R = TypeVar("_R")
#: One object of a batch's write wave: its key, bytes and class.
Write = tuple[str, bytes, ObjectClass]


class WritePool:
    """Runs one stage's object writes (or reads) ``parallel`` at a time: S3's latency hides
    behind 16. 1 means serial, on the calling thread, with no pool at all: what a local log
    uses."""

    def __init__(self, parallel: int) -> None:
        self._pool: ThreadPoolExecutor | None = None
        if parallel > 1:
            self._pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="stelae-write")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def run(self, fn: Callable[[_T], object], items: Sequence[_T]) -> None:
        """Run ``fn`` over ``items`` concurrently; wait for all; re-raise the first failure."""
        if self._pool is None or len(items) <= 1:
            for item in items:
                fn(item)
            return
        futures = [self._pool.submit(fn, item) for item in items]
        errors = [f.exception() for f in futures]
        for err in errors:
            if err is not None:
                raise err

    def map(self, fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        """``fn`` of each of ``items``, in order, computed concurrently."""
        if self._pool is None or len(items) <= 1:
            return [fn(i) for i in items]
        return list(self._pool.map(fn, items))


def tile_writes(pending: list[bytes], first: int, update: TileUpdate) -> list[Write]:
    """Step 4.2's objects: the entry bundles holding ``pending`` (the entries from index
    ``first`` on: the partial right-edge bundle's, then the batch's) and every tile the batch
    created or grew."""
    writes: list[Write] = []
    for start in range(0, len(pending), TILE_WIDTH):
        chunk = pending[start : start + TILE_WIDTH]
        tid = TileID.bundle((first + start) // TILE_WIDTH, len(chunk))
        writes.append((tid.path(), EntryBundle(tuple(chunk)).to_bytes(), ObjectClass.BUNDLE))
    for tid, tile in update.tiles:
        writes.append((tid.path(), tile.to_bytes(), ObjectClass.TILE))
    return writes


def index_writes(
    record: BatchRecord,
    new_size: int,
    root: bytes,
    signer: Ed25519NoteSigner,
    writes: list[Write],
) -> tuple[tuple[RunRef, ...], list[Record]]:
    """Step 4.3: add the batch's own index run and the manifest signed by ``signer`` (named
    after the origin) to ``writes``; return the manifest's runs and the batch's index records."""
    # The batch's own index run.
    keys = [BatchEntryKeys(e.leaf_hash, _keys(e)) for e in record.entries]
    records = batch_records(record.first, keys)
    run = build_run(record.first, new_size, records)
    writes.extend((path, data, ObjectClass.INDEX_RUN) for path, data in run.objects())
    runs = (*record.runs, run.ref)

    # The manifest: the runs the record names, then the batch's own. It depends only on the
    # record and the new root, not on any object above being stored, so it joins the same wave:
    # on S3 every request of a batch between the claim and the publish is issued at once, one
    # round trip (docs/sequencing.md, "Round trips").
    manifest = Manifest(signer.name, new_size, root, runs)
    writes.append((manifest_path(new_size), manifest.sign(signer), ObjectClass.INDEX_MANIFEST))
    return runs, records


def _keys(e: PendingEntry) -> tuple[tuple[KeyKind, str], ...]:
    # Every kind, always: a monitor recomputes the index from the bodies alone.
    return (
        *((KeyKind.DIGEST, d) for d in e.digests),
        *((KeyKind.KEY, k) for k in e.key_fingerprints),
        *((KeyKind.IDENTITY, x) for x in e.identities),
    )


def write_wave(
    store: ObjectStore,
    pool: WritePool,
    keys: LogKeys,
    writes: list[Write],
    *,
    new_size: int,
    root: bytes,
    recovering: bool,
) -> bytes:
    """Step 4.4: store ``writes`` in one concurrent wave and return the note to publish."""
    # The checkpoint and its history object. Without witnesses the note depends only on
    # (size, root) and the keys, so the history object joins the wave too; it is the same
    # bytes every time with Ed25519 alone, and with an ML-DSA-44 line (randomized,
    # timestamped) a repeat conflicts and the stored note is published, as below. Witnesses
    # need the new tiles stored to check consistency, so with a cosigner the note is made
    # after the wave.
    note = b""
    if keys.cosigner is None:
        stored = keys.stored_history(new_size) if recovering else None
        note = stored if stored is not None else keys.signed_note(new_size, root)
        if stored is None:
            writes.append((history_path(new_size), note, ObjectClass.CHECKPOINT_HISTORY))
    kept: list[str] = []

    def put(item: Write) -> None:
        key, data, cls = item
        try:
            store.put_immutable(key, data, cls)
        except ImmutableConflictError as err:
            # A history object made earlier with cosignatures (a witness policy since
            # removed) is the note to publish, as in LogKeys.checkpoint_note.
            if cls is not ObjectClass.CHECKPOINT_HISTORY:
                raise
            kept.append(err.key)

    pool.run(put, writes)
    if kept:
        note = store.get(kept[0])
    if keys.cosigner is not None:
        note = keys.checkpoint_note(new_size, root)
    return note
