"""The sequencer: claims a batch, integrates it into tiles, and publishes a signed checkpoint.

One sequencer writes at a time, but correctness never depends on it (DESIGN.md "Sequencing and
storage"). The steps of :meth:`Sequencer.integrate`, and why a crash between any two is safe:

1. Read the published checkpoint and the intent record (both versioned). No writes.
2. **Recover**: if the intent record describes a batch beyond the published size, a previous run
   crashed after claiming it. Complete it first, with the same code as the normal path (step 5).
3. Deduplicate the new batch, within itself and against the log (leaf-hash index).
4. **Commit point 1 — claim**: compare-and-swap the intent record. Losing the swap means another
   sequencer moved first: raise :class:`LostRaceError` having written nothing. After it, the
   indices are ours and every object we write below is a pure function of (published tree,
   intent), so anyone repeating it writes identical bytes: immutable writes stay idempotent.
5. Integrate (:meth:`Sequencer._apply`):
   a. entry bundles and hash tiles (immutable, create-if-absent; same bytes = success);
   b. lookup indexes (leaf index create-if-absent; the others by CAS with set union);
   c. the checkpoint history object ``checkpoints/<size>`` (immutable);
   d. **commit point 2 — publish**: compare-and-swap ``checkpoint``. If the swap is lost, someone
      else completed this same intent (they had to, to move on) or raced us to it; we re-read and
      succeed if the published size covers our batch.
   A crash anywhere in 5a–5d leaves objects beyond the published size that the next run rewrites
   with the same bytes, and a checkpoint that still describes a complete, consistent tree. The
   store is flushed between 5c and 5d, so everything a checkpoint covers is durable before it is
   published; a local store may therefore leave 5a–5c's objects incomplete after a power loss,
   and lets the recovery's rewrite replace them (:mod:`stelae.sequencer.local`, "repair").
6. Tell the caller each entry's index and the checkpoint; only then may submitters be answered.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TypeVar

from stelae.sequencer.intent import INTENT_KEY, Intent, read_header
from stelae.sequencer.lookup import (
    ALL_INDEXES,
    IndexHead,
    IndexKind,
    LeafRecord,
    digest_path,
    identity_path,
    key_path,
    leaf_path,
    page_path,
)
from stelae.sequencer.pending import PendingEntry
from stelae.sequencer.store import (
    ObjectClass,
    ObjectNotFound,
    ObjectStore,
    PreconditionFailed,
)
from stelae.sequencer.timestamp import set_payload, v1_log_id
from stelae.tiles.builder import extend, right_edge_from_tiles
from stelae.tiles.checkpoint import Checkpoint
from stelae.tiles.compact import RightEdge
from stelae.tiles.errors import FormatError, StelaeError
from stelae.tiles.hashing import EMPTY_ROOT
from stelae.tiles.layout import TILE_WIDTH, TileID, right_edge_tiles
from stelae.tiles.note import open_note, sign_note
from stelae.tiles.notekeys import Ed25519NoteSigner
from stelae.tiles.tile import EntryBundle, HashTile

log = logging.getLogger("stelae.sequencer")

CHECKPOINT_KEY = "checkpoint"

_T = TypeVar("_T")
_R = TypeVar("_R")


def history_key(size: int) -> str:
    """Where the checkpoint of a given size is kept forever."""
    return f"checkpoints/{size}"


class LostRaceError(StelaeError):
    """Another sequencer claimed or published first; this one wrote nothing that matters."""


class LogCorruptedError(StelaeError):
    """The stored log contradicts itself (tiles vs checkpoint, intent vs checkpoint). Fatal."""


@dataclass(frozen=True)
class SequencerConfig:
    """How a sequencer builds the log. Field comments are the reference."""

    origin: str
    """The checkpoint origin; also the note key name of the log's signature."""
    indexes: frozenset[IndexKind] = ALL_INDEXES
    """Which lookup indexes to maintain beside the leaf-hash index."""
    leaf_index: bool = True
    """Maintain ``index/leaf/<hash>``. Without it the log cannot deduplicate against entries of
    earlier batches, and ``get --uuid`` / the write API's wait cannot find entries."""
    entry_timestamps: bool = True
    """Sign a Rekor v1 signed entry timestamp per entry, kept in its leaf record."""
    parallel_writes: int = 16
    """How many object writes (and leaf lookups) of one stage may be in flight at once: S3's
    latency hides behind 16. 1 means serial, on the calling thread, with no pool at all: what a
    local log uses (:mod:`stelae.sequencer.logdir`), whose writes are cheaper than a thread hop."""


@dataclass(frozen=True)
class Assignment:
    index: int
    duplicate: bool
    integrated_time: int = 0
    signed_entry_timestamp: bytes = b""


@dataclass(frozen=True)
class IntegrationResult:
    """The published checkpoint and where each submitted entry (by leaf hash) landed."""

    checkpoint: bytes
    size: int
    root: bytes
    assigned: Mapping[bytes, Assignment] = field(default_factory=dict)


@dataclass
class _Published:
    size: int
    root: bytes
    version: str | None
    note: bytes
    timestamps: tuple[bytes, ...] = ()  # the SETs of the batch just applied, in order


@dataclass
class _Edge:
    """Cached right edge of the published tree, so steady-state batches skip re-reading it."""

    size: int
    root: bytes
    edge: RightEdge
    tiles: dict[int, HashTile]
    bundle: tuple[bytes, ...]  # the entries of the partial right-edge bundle, if any


class Sequencer:
    """Integrates batches into a log in ``store``, signing checkpoints with ``signer``.

    Safe to call from one thread at a time per instance (a lock enforces it); any number of
    instances, in any number of processes, may share a store.
    """

    def __init__(
        self,
        store: ObjectStore,
        signer: Ed25519NoteSigner,
        config: SequencerConfig,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if signer.name != config.origin:
            raise StelaeError(
                f"the signing key is named {signer.name!r} but the origin is {config.origin!r}",
                hint="the note key name must equal the checkpoint origin",
            )
        self.store = store
        self.signer = signer
        self.config = config
        self._clock = clock
        self._v1_log_id = v1_log_id(signer.public_key_bytes)
        self._lock = threading.Lock()
        self._edge: _Edge | None = None
        # No pool at all for serial writes: a thread hop costs more than a local write.
        self._pool: ThreadPoolExecutor | None = None
        if config.parallel_writes > 1:
            self._pool = ThreadPoolExecutor(
                max_workers=config.parallel_writes, thread_name_prefix="stelae-write"
            )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    # -- public --------------------------------------------------------------------------------

    def published(self) -> IntegrationResult:
        """The current checkpoint, without integrating anything (recovering a crashed batch).

        A new log gets its size-0 checkpoint here, so readers always find a signed tree head.
        """
        result = self.integrate([])
        if result.checkpoint:
            return result
        note = sign_note(Checkpoint(self.config.origin, 0, EMPTY_ROOT).to_text(), [self.signer])
        data = note.to_bytes()
        self.store.put_immutable(history_key(0), data, ObjectClass.CHECKPOINT_HISTORY)
        self.store.flush()  # as in _apply: the history object is durable before the checkpoint
        # Someone else may have published first (the empty one, or more): then read theirs.
        with contextlib.suppress(PreconditionFailed):
            self.store.put_if(CHECKPOINT_KEY, data, ObjectClass.CHECKPOINT, None)
        return self.integrate([])

    def integrate(self, batch: Sequence[PendingEntry]) -> IntegrationResult:
        """Integrate ``batch`` and publish a checkpoint covering it (steps 1–6 above)."""
        with self._lock:
            published = self._read_checkpoint()
            intent_version: str | None = None
            try:
                stored = self.store.get_versioned(INTENT_KEY)
                intent_version = stored.version
                header = read_header(stored.data)
                if header.new_size > published.size:
                    if header.base_size != published.size:
                        raise LogCorruptedError(
                            f"the intent record starts at size {header.base_size} but the "
                            f"published checkpoint is at size {published.size}"
                        )
                    # Recovery (step 2): only now are the claimed entries worth parsing.
                    published = self._apply(Intent.parse(stored.data), published)
            except ObjectNotFound:
                pass

            assigned, fresh = self._dedup(batch, published.size)
            if not fresh:
                return IntegrationResult(published.note, published.size, published.root, assigned)

            intent = Intent(published.size, published.root, tuple(fresh), int(self._clock()))
            try:  # commit point 1: claim the indices
                self.store.put_if(INTENT_KEY, intent.to_bytes(), ObjectClass.STATE, intent_version)
            except PreconditionFailed as err:
                self._edge = None
                raise LostRaceError(
                    "another sequencer claimed the next batch first; nothing was written"
                ) from err
            published = self._apply(intent, published)
            for i, e in enumerate(fresh):
                index = intent.base_size + i
                assigned[e.leaf_hash] = Assignment(
                    index, False, intent.integrated_time, published.timestamps[i]
                )
            return IntegrationResult(published.note, published.size, published.root, assigned)

    # -- steps ---------------------------------------------------------------------------------

    def _read_checkpoint(self) -> _Published:
        try:
            stored = self.store.get_versioned(CHECKPOINT_KEY)
        except ObjectNotFound:
            return _Published(0, EMPTY_ROOT, None, b"")
        verified = open_note(stored.data, [self.signer.verifier])
        cp = Checkpoint.parse(verified.text)
        if cp.origin != self.config.origin:
            raise LogCorruptedError(
                f"the stored checkpoint is for origin {cp.origin!r}, not {self.config.origin!r}"
            )
        return _Published(cp.size, cp.root_hash, stored.version, stored.data)

    def _dedup(
        self, batch: Sequence[PendingEntry], size: int
    ) -> tuple[dict[bytes, Assignment], list[PendingEntry]]:
        assigned: dict[bytes, Assignment] = {}
        unique: dict[bytes, PendingEntry] = {}
        for e in batch:
            unique.setdefault(e.leaf_hash, e)
        if self.config.leaf_index and unique:
            found = self._map(self._lookup_leaf, list(unique))
            for lh, record in zip(list(unique), found, strict=True):
                if record is None:
                    continue
                index = record.index
                if index >= size:
                    raise LogCorruptedError(
                        f"leaf {lh.hex()} is indexed at {index}, beyond the published size {size}"
                    )
                assigned[lh] = Assignment(
                    index, True, record.integrated_time, record.signed_entry_timestamp
                )
                del unique[lh]
        return assigned, list(unique.values())

    def _lookup_leaf(self, lh: bytes) -> LeafRecord | None:
        try:
            return LeafRecord.parse(self.store.get(leaf_path(lh)))
        except ObjectNotFound:
            return None

    def _load_edge(self, published: _Published) -> _Edge:
        cached = self._edge
        if cached and cached.size == published.size and cached.root == published.root:
            return cached
        size = published.size
        tiles = {
            t.level: HashTile.parse(self.store.get(t.path()), t.width)
            for t in right_edge_tiles(size)
        }
        edge = right_edge_from_tiles(size, tiles)
        if edge.root() != published.root:
            raise LogCorruptedError(
                f"tiles at size {size} hash to {edge.root().hex()}, "
                f"but the checkpoint says {published.root.hex()}"
            )
        bundle: tuple[bytes, ...] = ()
        if size % TILE_WIDTH:
            tid = TileID.bundle(size // TILE_WIDTH, size % TILE_WIDTH)
            bundle = EntryBundle.parse(self.store.get(tid.path()), tid.width).entries
        return _Edge(size, published.root, edge, tiles, bundle)

    def _apply(self, intent: Intent, published: _Published) -> _Published:
        """Step 5: write everything for ``intent`` and publish. Recovery runs exactly this."""
        edge = self._load_edge(published)
        if edge.root != intent.base_root:
            raise LogCorruptedError("the intent record was built on another tree head")
        entries = intent.entries
        update = extend(edge.edge, edge.tiles, [e.leaf_hash for e in entries])
        new_size = update.edge.size

        # 5a. Bundles and tiles: immutable, idempotent.
        writes: list[tuple[str, bytes, ObjectClass]] = []
        pending = list(edge.bundle)
        first = intent.base_size - len(pending)  # index of pending[0]
        for e in entries:
            pending.append(e.body)
        for start in range(0, len(pending), TILE_WIDTH):
            chunk = pending[start : start + TILE_WIDTH]
            tid = TileID.bundle((first + start) // TILE_WIDTH, len(chunk))
            writes.append((tid.path(), EntryBundle(tuple(chunk)).to_bytes(), ObjectClass.BUNDLE))
        for tid, tile in update.tiles:
            writes.append((tid.path(), tile.to_bytes(), ObjectClass.TILE))
        self._run(self._put_immutable, writes)

        # 5b. Lookup indexes.
        timestamps = [self._entry_timestamp(intent, i) for i in range(len(intent.entries))]
        self._write_indexes(intent, timestamps)

        # 5c–d. History, then the checkpoint itself.
        root = update.edge.root()
        text = Checkpoint(self.config.origin, new_size, root).to_text()
        note = sign_note(text, [self.signer]).to_bytes()
        self.store.put_immutable(history_key(new_size), note, ObjectClass.CHECKPOINT_HISTORY)
        # Everything the checkpoint will cover must be durable before it is published.
        self.store.flush()
        try:
            version = self.store.put_if(
                CHECKPOINT_KEY, note, ObjectClass.CHECKPOINT, published.version
            )
        except PreconditionFailed as err:
            self._edge = None
            now = self._read_checkpoint()
            if now.size >= new_size:
                # Someone completed this same intent (or more) first; its SETs are ours too.
                return replace(now, timestamps=tuple(timestamps))
            raise LostRaceError(
                f"the checkpoint moved to size {now.size} while publishing size {new_size}"
            ) from err

        last_bundle = tuple(pending[(new_size - first) // TILE_WIDTH * TILE_WIDTH :])
        if new_size % TILE_WIDTH == 0:
            last_bundle = ()
        self._edge = _Edge(new_size, root, update.edge, dict(update.edge_tiles), last_bundle)
        return _Published(new_size, root, version, note, tuple(timestamps))

    def _write_indexes(self, intent: Intent, timestamps: Sequence[bytes]) -> None:
        leaf_writes = []
        lists: dict[str, set[int]] = {}
        for i, e in enumerate(intent.entries):
            index = intent.base_size + i
            if self.config.leaf_index:
                record = LeafRecord(index, intent.integrated_time, timestamps[i])
                leaf_writes.append(
                    (leaf_path(e.leaf_hash), record.to_bytes(), ObjectClass.ENTRY_LEAF_INDEX)
                )
            paths: list[str] = []
            if IndexKind.DIGEST in self.config.indexes:
                paths += [digest_path(d) for d in e.digests]
            if IndexKind.KEY in self.config.indexes:
                paths += [key_path(k) for k in e.key_fingerprints]
            if IndexKind.IDENTITY in self.config.indexes:
                paths += [identity_path(x) for x in e.identities]
            for p in paths:
                lists.setdefault(p, set()).add(index)
        self._run(self._put_immutable, leaf_writes)
        self._run(lambda item: self._merge_index(*item), list(lists.items()))

    def _merge_index(self, key: str, indices: set[int]) -> None:
        """Add ``indices`` to the list at ``key`` by CAS with set union; retries on contention."""
        for _ in range(20):
            try:
                stored = self.store.get_versioned(key)
                head, version = self._parse_head(key, stored.data), stored.version
            except ObjectNotFound:
                head, version = IndexHead(()), None
            if head.covers(indices):
                return  # already there: a retried or repeated batch
            new_head, pages = head.merge(indices)
            for number, data in pages:  # full pages first: the head must never point past them
                self.store.put_immutable(page_path(key, number), data, ObjectClass.INDEX)
            try:
                self.store.put_if(key, new_head.to_bytes(), ObjectClass.INDEX, version)
                return
            except PreconditionFailed:
                continue
        raise StelaeError(f"couldn't update lookup index {key}: too much contention")

    def _parse_head(self, key: str, data: bytes) -> IndexHead:
        try:
            return IndexHead.parse(data)
        except FormatError:
            if not self.store.may_hold_debris(key):
                raise
        # A head first created by the batch being recovered, cut short by a power loss: it held
        # only that batch's indices, which this merge adds again (stelae.sequencer.local).
        log.warning("rebuilding lookup index %s: its bytes are a power loss's debris", key)
        return IndexHead(())

    def _entry_timestamp(self, intent: Intent, i: int) -> bytes:
        # SETs live in leaf records: without the leaf index there is nowhere to keep them.
        if not (self.config.entry_timestamps and self.config.leaf_index):
            return b""
        payload = set_payload(
            intent.entries[i].body, intent.integrated_time, self._v1_log_id, intent.base_size + i
        )
        return self.signer.sign_bytes(payload)

    # -- plumbing --------------------------------------------------------------------------------

    def _put_immutable(self, item: tuple[str, bytes, ObjectClass]) -> None:
        key, data, cls = item
        self.store.put_immutable(key, data, cls)

    def _run(self, fn: Callable[[_T], object], items: Sequence[_T]) -> None:
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

    def _map(self, fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        if self._pool is None or len(items) <= 1:
            return [fn(i) for i in items]
        return list(self._pool.map(fn, items))
