"""The sequencer: claims a batch, integrates it into tiles and the index, publishes a checkpoint.

One sequencer writes at a time, but correctness never depends on it. docs/sequencing.md is the
reference; in short, :meth:`Sequencer.integrate` does:

1. Read the published checkpoint. If it is not the one this sequencer last published, look for
   a batch record at the published size (``batch/<size>``): a batch someone claimed and did not
   finish. **Recover** it with the same code as the normal path (step 4).
2. Deduplicate the batch within itself and against the log (the recent-leaf window, confirmed
   through the verifiable index; :mod:`stelae.sequencer.recent`).
3. **Commit point 1 — claim**: create the batch record ``batch/<size>`` (create-if-absent). It
   assigns the indices, carries every entry's integrated time and signed entry timestamp, and
   names the index runs the batch's manifest will list. Losing the create means another
   sequencer claimed that size: finish its batch (step 4, as a recovery) and try again. From here
   every object written is a pure function of (published tree, batch record), so anyone
   repeating it writes identical bytes.
4. Integrate (:meth:`Sequencer._apply`):
   a. entry bundles and hash tiles (immutable, create-if-absent; same bytes = success);
   b. the batch's own lookup-index run (docs/index.md), immutable;
   c. the index manifest for the new size, signed, immutable;
   d. the checkpoint, signed, cosigned by witnesses if a policy asks for it, kept at
      ``checkpoints/<size>`` (immutable). 4a–4d are one wave of concurrent writes (with
      witnesses, 4d follows it: they check the stored tiles);
   e. **commit point 2 — publish**: compare-and-swap ``checkpoint``.
   A crash anywhere in 4a–4e leaves objects beyond the published size that the next run rewrites
   with the same bytes. The store is flushed before 4e, so everything a checkpoint covers is
   durable before it is published.
5. Answer each entry with a :class:`Receipt`; offer the new run list to the merger, which
   combines runs in the background (:mod:`stelae.sequencer.merger`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar

from stelae.errors import StelaeError
from stelae.sequencer.collector import Collector
from stelae.sequencer.dedup import Deduplicator
from stelae.sequencer.intent import Intent, read_header
from stelae.sequencer.merger import Merger
from stelae.sequencer.receipt import (
    IndexMissingError,
    IntegrationResult,
    LogCorruptedError,
    LostRaceError,
    Receipt,
)
from stelae.sequencer.store import (
    ImmutableConflictError,
    ObjectNotFound,
    ObjectStore,
    PartialDeleter,
    PreconditionFailed,
)
from stelae.tiles.batch import BatchRecord, PendingEntry
from stelae.tiles.builder import TileUpdate, extend, right_edge_from_tiles
from stelae.tiles.checkpoint import Checkpoint
from stelae.tiles.client import TileReader
from stelae.tiles.compact import RightEdge
from stelae.tiles.errors import FormatError, VerificationError
from stelae.tiles.hashing import EMPTY_ROOT, root_from_leaf_hashes
from stelae.tiles.indexkeys import KeyKind
from stelae.tiles.indexrecord import Record
from stelae.tiles.indexrun import BatchEntryKeys, RunRef, batch_records, build_run
from stelae.tiles.layout import (
    TILE_HEIGHT,
    TILE_WIDTH,
    TileID,
    right_edge_tiles,
)
from stelae.tiles.manifest import Manifest
from stelae.tiles.mergepolicy import MergePolicy
from stelae.tiles.note import NoteSigner, open_note, sign_note
from stelae.tiles.notekeys import Ed25519NoteSigner, RekorV1HintSigner
from stelae.tiles.paths import (
    CHECKPOINT,
    INTENT,
    ObjectClass,
    batch_path,
    history_path,
    manifest_path,
)
from stelae.tiles.tile import EntryBundle, HashTile
from stelae.tiles.timestamp import set_payload, v1_log_id

log = logging.getLogger("stelae.sequencer")

IndexKind = KeyKind
ALL_INDEXES = frozenset({KeyKind.DIGEST, KeyKind.KEY, KeyKind.IDENTITY})
"""The key kinds besides ``leaf``. Every one is always indexed (docs/index.md): the set is not a
setting, so that anyone can recompute the index from the entries alone."""

_T = TypeVar("_T")
_R = TypeVar("_R")
#: One object of a batch's write wave: its key, bytes and class.
_Write = tuple[str, bytes, ObjectClass]

CLAIM_ATTEMPTS = 8
"""How many claims a batch may lose to other sequencers (each loss finishes their batch first)
before :class:`LostRaceError` is raised."""


class Cosigner(Protocol):
    """Collects witness cosignatures for a checkpoint before it is published (docs/witness.md)."""

    def cosign(
        self, note: bytes, size: int, consistency_proof: Callable[[int, int], list[bytes]]
    ) -> bytes:
        """``note`` with the cosignatures that satisfy the policy added; raises if they don't."""
        ...


@dataclass(frozen=True)
class SequencerConfig:
    """How a sequencer builds the log. Field comments are the reference."""

    origin: str
    """The checkpoint origin; also the note key name of the log's signature."""
    lookup_index: bool = True
    """Build the lookup index (docs/index.md): runs and a manifest per batch. Without it the log
    answers no lookups (search, ``get --uuid``, v1 reads by UUID) and a resubmission is only
    recognised inside the recent window, with no signed entry timestamp; benchmarks and the
    interop tests use that to measure the bare tlog-tiles log."""
    entry_timestamps: bool = True
    """Sign a Rekor v1 signed entry timestamp per entry, kept in its batch record."""
    parallel_writes: int = 16
    """How many object writes of one stage may be in flight at once: S3's latency hides behind
    16. 1 means serial, on the calling thread, with no pool at all: what a local log uses."""
    merge_policy: MergePolicy = field(default_factory=MergePolicy)
    """Which index runs to merge (docs/index.md)."""
    background_merges: bool = True
    """Merge index runs (and collect garbage) on background threads; False: :meth:`Sequencer.merge`
    and :meth:`Sequencer.collect` do it when the owner calls them (the AWS sequencer after
    answering, tests)."""
    gc_grace: float | None = None
    """Delete each partial tile and bundle this many seconds after the checkpoint that made its
    full tile available (https://c2sp.org/tlog-tiles allows it; docs/durability.md, "Garbage
    collection"); None keeps them for ever. Must exceed how long readers may cache the checkpoint.
    The store must be a :class:`~stelae.sequencer.store.PartialDeleter`."""
    dedup_window: int = 10_000_000
    """Resubmissions of any of this many most recent entries are recognised exactly; older ones
    are logged again under a new index (never answered wrongly). Costs 16 bytes of memory per
    entry, and at start one level-0 tile read per 256 entries of the window."""
    cosigner: Cosigner | None = None
    """Witnesses that must cosign each checkpoint before it is published (None: none)."""
    extra_log_signers: tuple[NoteSigner, ...] = ()
    """More log keys that sign every checkpoint, after the Ed25519 lines: the optional ML-DSA-44
    key (type 0x06, which https://c2sp.org/tlog-checkpoint recommends; docs/compatibility.md).
    Each must be named after ``origin``. Clients that don't know a key ignore its line
    (https://c2sp.org/signed-note). Index manifests and entry timestamps stay Ed25519 only."""


@dataclass
class _Published:
    size: int
    root: bytes
    version: str | None
    note: bytes
    runs: tuple[RunRef, ...] = ()


@dataclass
class _Edge:
    """Cached right edge of the published tree, so steady-state batches skip re-reading it."""

    size: int
    root: bytes
    edge: RightEdge
    tiles: dict[int, HashTile]
    bundle: tuple[bytes, ...]  # the entries of the partial right-edge bundle, if any


def _tile_writes(pending: list[bytes], first: int, update: TileUpdate) -> list[_Write]:
    """Step 4a's objects: the entry bundles holding ``pending`` (the entries from index
    ``first`` on: the partial right-edge bundle's, then the batch's) and every tile the batch
    created or grew."""
    writes: list[_Write] = []
    for start in range(0, len(pending), TILE_WIDTH):
        chunk = pending[start : start + TILE_WIDTH]
        tid = TileID.bundle((first + start) // TILE_WIDTH, len(chunk))
        writes.append((tid.path(), EntryBundle(tuple(chunk)).to_bytes(), ObjectClass.BUNDLE))
    for tid, tile in update.tiles:
        writes.append((tid.path(), tile.to_bytes(), ObjectClass.TILE))
    return writes


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
        # Every checkpoint is signed twice by the same key: the C2SP line and the line Rekor v1
        # clients look for (see RekorV1HintSigner for why both verifiers are satisfied).
        self._checkpoint_signers: tuple[NoteSigner, ...] = (
            signer,
            RekorV1HintSigner(signer),
            *config.extra_log_signers,
        )
        for extra in config.extra_log_signers:
            if extra.name != config.origin:
                raise StelaeError(
                    f"the log key {extra.name}+{extra.key_id:08x} is not named after the "
                    f"origin {config.origin!r}",
                    hint="every log key's name must equal the checkpoint origin",
                )
        self.config = config
        self._clock = clock
        self._v1_log_id = v1_log_id(signer.public_key_bytes)
        self._lock = threading.Lock()
        self._edge: _Edge | None = None
        self._last: _Published | None = None  # what this sequencer last published or verified
        self._dedup = Deduplicator(
            store.get,
            self._get,
            signer.verifier,
            config.origin,
            window=config.dedup_window,
            lookup_index=config.lookup_index,
            read_many=self._map,
        )
        self.merger = Merger(store, config.merge_policy, background=config.background_merges)
        self.collector: Collector | None = None
        if config.gc_grace is not None:
            if not isinstance(store, PartialDeleter):
                raise StelaeError("gc_grace is set but this store cannot delete partial tiles")
            self.collector = Collector(
                store, config.gc_grace, clock=clock, background=config.background_merges
            )
        self._pool: ThreadPoolExecutor | None = None
        if config.parallel_writes > 1:
            self._pool = ThreadPoolExecutor(
                max_workers=config.parallel_writes, thread_name_prefix="stelae-write"
            )

    def close(self) -> None:
        self.merger.close()
        if self.collector is not None:
            self.collector.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    # -- public --------------------------------------------------------------------------------

    def published(self) -> IntegrationResult:
        """The current checkpoint, without integrating anything (recovering a claimed batch).

        A new log gets its size-0 checkpoint (and empty index manifest) here, so readers always
        find a signed tree head.
        """
        result = self.integrate([])
        if result.checkpoint:
            return result
        if self.config.lookup_index:
            manifest = Manifest(self.config.origin, 0, EMPTY_ROOT, ())
            self.store.put_immutable(
                manifest_path(0), manifest.sign(self.signer), ObjectClass.INDEX_MANIFEST
            )
        data = self._stored_history(0)
        if data is None:
            data = self._signed_note(0, EMPTY_ROOT)
            try:
                self.store.put_immutable(history_path(0), data, ObjectClass.CHECKPOINT_HISTORY)
            except ImmutableConflictError:
                data = self.store.get(history_path(0))  # another sequencer's, just now
        self.store.flush()  # as in _apply: the history object is durable before the checkpoint
        # Someone else may have published first (the empty one, or more): then read theirs.
        with contextlib.suppress(PreconditionFailed):
            self.store.put_if(CHECKPOINT, data, ObjectClass.CHECKPOINT, None)
        return self.integrate([])

    def integrate(self, batch: Sequence[PendingEntry]) -> IntegrationResult:
        """Integrate ``batch`` and publish a checkpoint covering it (steps 1–5 above)."""
        with self._lock:
            for _ in range(CLAIM_ATTEMPTS):
                published = self._current(trust_cache=bool(batch))
                receipts, fresh = self._dedup.split(
                    batch, published.size, published.root, published.note
                )
                if not fresh:
                    return IntegrationResult(
                        published.note, published.size, published.root, receipts
                    )
                record = self._claim(fresh, published)
                if record is None:
                    self._last = None  # lost: the next round finishes the winner's batch first
                    continue
                try:
                    done = self._apply(record, published, recovering=False)
                except BaseException:
                    self._last = None  # the claimed batch is finished by the next call
                    raise
                shared = replace(record, entries=())
                for i, lh in enumerate(record.leaf_hashes):
                    receipts.setdefault(
                        lh,
                        Receipt(
                            record.first + i,
                            False,
                            record.integrated_time,
                            done.note,
                            done.size,
                            record.timestamps[i],
                            shared,
                        ),
                    )
                return IntegrationResult(done.note, done.size, done.root, receipts)
            raise LostRaceError(
                f"other sequencers claimed the next batch {CLAIM_ATTEMPTS} times in a row; "
                "this batch was not written"
            )

    def refresh(self) -> IntegrationResult:
        """Re-publish the current checkpoint with fresh witness cosignatures — the same tree, so
        witnesses and monitors see the log is alive while no entries arrive (docs/witness.md).
        Without a cosigner there is nothing to refresh. Raises what cosigning raises."""
        with self._lock:
            published = self._current()
            cosigner = self.config.cosigner
            if cosigner is None or not published.note:
                return IntegrationResult(published.note, published.size, published.root, {})
            text = Checkpoint(self.config.origin, published.size, published.root).to_text()
            note = sign_note(text, self._checkpoint_signers).to_bytes()
            reader = self._reader(published.size)
            note = cosigner.cosign(note, published.size, reader.consistency_proof)
            try:
                version = self.store.put_if(
                    CHECKPOINT, note, ObjectClass.CHECKPOINT, published.version
                )
            except PreconditionFailed:
                self._last = None  # someone published meanwhile: theirs is fresher anyway
                return self.integrate([])
            self._last = replace(published, version=version, note=note)
            return IntegrationResult(note, published.size, published.root, {})

    def merge(self) -> int:
        """Run the index merges the policy wants now (for ``background_merges=False``)."""
        return self.merger.run_pending()

    def collect(self) -> int:
        """Delete the partial tiles and bundles now due (for ``background_merges=False``); how
        many keys were deleted. Never raises for a failed deletion: it is retried later."""
        return self.collector.run_pending() if self.collector is not None else 0

    # -- steps ---------------------------------------------------------------------------------

    def _current(self, *, trust_cache: bool = False) -> _Published:
        """Step 1: the published state, with any claimed-but-unpublished batch finished.

        With ``trust_cache`` (a batch to integrate) what this sequencer last published is taken
        as current without reading the checkpoint: if anyone has published since, they claimed
        ``batch/<that size>`` first, so this sequencer's claim of it loses and the next round
        reads the checkpoint; a checkpoint swapped under it fails the publish's compare-and-swap.
        Either way nothing is written on a stale view, and S3 is spared a GET per batch.
        """
        last = self._last
        if trust_cache and last is not None:
            return last
        stored = self._read_checkpoint()
        if last is not None and last.version == stored.version and last.size == stored.size:
            return last  # what we published ourselves: nothing can have been claimed beyond it
        # Every batch record at the published size is a claim to finish. A checkpoint rolled
        # back to an older (authentic) one is thereby replayed forward, batch by batch, to the
        # largest tree the log committed to: the batch records are its high-water mark.
        while (record := self._pending_claim(stored)) is not None:
            stored = self._apply(record, stored, recovering=True)
        stored.runs = self._manifest_runs(stored)
        if self._dedup.size != stored.size:
            self._dedup.warm(stored.size)
        if self.collector is not None:  # sizes before it unknown: the ledger catches up
            self.collector.published(stored.size)
        self._last = stored
        return stored

    def _read_checkpoint(self) -> _Published:
        try:
            stored = self.store.get_versioned(CHECKPOINT)
        except ObjectNotFound:
            return _Published(0, EMPTY_ROOT, None, b"")
        verified = open_note(stored.data, [self.signer.verifier])
        cp = Checkpoint.parse(verified.text)
        if cp.origin != self.config.origin:
            raise LogCorruptedError(
                f"the stored checkpoint is for origin {cp.origin!r}, not {self.config.origin!r}"
            )
        return _Published(cp.size, cp.root_hash, stored.version, stored.data)

    def _pending_claim(self, published: _Published) -> BatchRecord | None:
        """The batch someone claimed at the published size and did not finish, if any."""
        try:
            record = BatchRecord.parse(self.store.get(batch_path(published.size)))
        except ObjectNotFound:
            return self._legacy_claim(published)
        except FormatError as err:
            raise LogCorruptedError(f"{batch_path(published.size)} is unreadable: {err}") from err
        if record.base_root != published.root:
            raise LogCorruptedError(
                f"{batch_path(published.size)} was claimed on root {record.base_root.hex()}, "
                f"but the checkpoint at that size says {published.root.hex()}"
            )
        log.warning(
            "finishing batch [%d, %d) claimed but never published", record.first, record.new_size
        )
        return record

    def _legacy_claim(self, published: _Published) -> BatchRecord | None:
        """An intent record left by a stelae before batch records, claiming beyond the size."""
        try:
            data = self.store.get(INTENT)
        except ObjectNotFound:
            return None
        header = read_header(data)
        if header.new_size <= published.size:
            return None
        if header.base_size != published.size:
            raise LogCorruptedError(
                f"the intent record starts at size {header.base_size} but the published "
                f"checkpoint is at size {published.size}"
            )
        intent = Intent.parse(data)
        if intent.base_root != published.root:
            raise LogCorruptedError("the intent record was built on another tree head")
        published.runs = self._manifest_runs(published)
        record = self._record(list(intent.entries), published, intent.integrated_time)
        try:  # the batch record is the claim from now on, and the entries' receipt
            self.store.put_immutable(batch_path(record.first), record.to_bytes(), ObjectClass.BATCH)
        except ImmutableConflictError:
            return self._pending_claim(published)  # someone converted it first
        return record

    def _manifest_runs(self, published: _Published) -> tuple[RunRef, ...]:
        if published.size == 0 or not self.config.lookup_index:
            return ()
        try:
            data = self.store.get(manifest_path(published.size))
        except ObjectNotFound as err:
            raise IndexMissingError(
                f"the checkpoint at size {published.size} has no index manifest "
                f"({manifest_path(published.size)})",
                hint="a log from before the batch-level index: run `stelae index rebuild`",
            ) from err
        try:
            manifest = Manifest.open(data, [self.signer.verifier], self.config.origin)
        except (FormatError, VerificationError) as err:
            raise LogCorruptedError(f"{manifest_path(published.size)}: {err}") from err
        if manifest.size != published.size or manifest.root != published.root:
            raise LogCorruptedError(
                f"{manifest_path(published.size)} is for size {manifest.size} root "
                f"{manifest.root.hex()}, not the checkpoint's root {published.root.hex()}"
            )
        return manifest.runs

    def _claim(self, fresh: list[PendingEntry], published: _Published) -> BatchRecord | None:
        """Step 3: create ``batch/<size>``; None if another sequencer created it first."""
        record = self._record(fresh, published, int(self._clock()))
        try:
            self.store.put_immutable(batch_path(record.first), record.to_bytes(), ObjectClass.BATCH)
        except ImmutableConflictError:
            log.info("lost the claim of batch %d to another sequencer", record.first)
            return None
        return record

    def _record(
        self, entries: list[PendingEntry], published: _Published, integrated_time: int
    ) -> BatchRecord:
        edge = self._load_edge(published)
        first = published.size
        stamps = tuple(
            self._entry_timestamp(e.body, integrated_time, first + i) for i, e in enumerate(entries)
        )
        return BatchRecord(
            first,
            published.root,
            edge.edge,
            integrated_time,
            tuple(e.leaf_hash for e in entries),
            stamps,
            self.merger.substitute(published.runs),
            tuple(entries),
        )

    def _load_edge(self, published: _Published) -> _Edge:
        cached = self._edge
        if cached and cached.size == published.size and cached.root == published.root:
            return cached
        size = published.size
        try:
            tiles = {
                t.level: HashTile.parse(self._get(t.path()), t.width)
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
                bundle = EntryBundle.parse(self._get(tid.path()), tid.width).entries
            except FormatError as err:
                raise LogCorruptedError(f"{tid.path()}: {err}") from err
            # The bundle is extended below: its entries must be the ones the tile commits to.
            if EntryBundle(bundle).leaf_hashes() != list(tiles[0].hashes):
                tile = TileID(0, tid.index, tid.width).path()
                raise LogCorruptedError(
                    f"{tid.path()} does not hold the entries {tile} commits to: "
                    "refusing to extend a damaged log"
                )
        self._check_newest_full_tiles(size, tiles)
        return _Edge(size, published.root, edge, tiles, bundle)

    def _check_newest_full_tiles(self, size: int, tiles: dict[int, HashTile]) -> None:
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
                    hashes = HashTile.parse(self._get(tid.path()), TILE_WIDTH).hashes
                except FormatError as err:
                    raise LogCorruptedError(f"{tid.path()}: {err}") from err
                if root_from_leaf_hashes(hashes) != parent.hashes[k % TILE_WIDTH]:
                    raise LogCorruptedError(
                        f"{tid.path()} does not hash to what its parent tile holds: "
                        "refusing to extend a damaged log"
                    )
            level += 1

    def _get(self, key: str) -> bytes:
        try:
            return self.store.get(key)
        except ObjectNotFound as err:
            raise LogCorruptedError(
                f"{key}, which the published checkpoint needs, is missing"
            ) from err

    def _apply(self, record: BatchRecord, published: _Published, *, recovering: bool) -> _Published:
        """Step 4: write everything for ``record`` and publish. Recovery runs exactly this."""
        edge = self._load_edge(published)
        if edge.root != record.base_root:
            raise LogCorruptedError("the batch record was built on another tree head")
        update = extend(edge.edge, edge.tiles, list(record.leaf_hashes))
        new_size = update.edge.size
        root = update.edge.root()

        # 4a. Bundles and tiles: immutable, idempotent.
        pending = [*edge.bundle, *(e.body for e in record.entries)]
        first = record.first - len(edge.bundle)  # index of pending[0]
        writes = _tile_writes(pending, first, update)

        # 4b and 4c. The batch's own index run and the manifest.
        runs: tuple[RunRef, ...] = ()
        records: list[Record] = []
        if self.config.lookup_index:
            runs, records = self._index_writes(record, new_size, root, writes)

        # 4d. The checkpoint and its history object, in the same wave when they can be.
        note = self._write_wave(writes, new_size, root, published, recovering=recovering)

        # 4e. Everything the checkpoint covers must be durable before it is published.
        self.store.flush()
        version = self._publish(note, published, new_size)
        if isinstance(version, _Published):
            return version  # someone completed this same batch (or more) first

        last_bundle = tuple(pending[(new_size - first) // TILE_WIDTH * TILE_WIDTH :])
        if new_size % TILE_WIDTH == 0:
            last_bundle = ()
        self._edge = _Edge(new_size, root, update.edge, dict(update.edge_tiles), last_bundle)
        self._dedup.remember(record.first, record.leaf_hashes)
        if self.config.lookup_index:
            self.merger.remember(runs[-1], records)
            self.merger.offer(runs)
        if self.collector is not None:  # published over ``published``: nothing came between
            self.collector.published(new_size, previous=published.size)
        done = _Published(new_size, root, version, note, runs)
        self._last = done
        return done

    def _index_writes(
        self, record: BatchRecord, new_size: int, root: bytes, writes: list[_Write]
    ) -> tuple[tuple[RunRef, ...], list[Record]]:
        """Steps 4b and 4c: add the batch's own index run and the signed manifest to
        ``writes``; return the manifest's runs and the batch's index records."""
        # 4b. The batch's own index run.
        keys = [BatchEntryKeys(e.leaf_hash, self._keys(e)) for e in record.entries]
        records = batch_records(record.first, keys)
        run = build_run(record.first, new_size, records)
        writes.extend((path, data, ObjectClass.INDEX_RUN) for path, data in run.objects())
        runs = (*record.runs, run.ref)

        # 4c. The manifest: the runs the record names, then the batch's own. It depends only on
        # the record and the new root, not on any object above being stored, so it joins the
        # same wave: on S3 every request of a batch between the claim and the publish is issued
        # at once, one round trip (docs/sequencing.md, "Round trips").
        manifest = Manifest(self.config.origin, new_size, root, runs)
        writes.append(
            (manifest_path(new_size), manifest.sign(self.signer), ObjectClass.INDEX_MANIFEST)
        )
        return runs, records

    def _write_wave(
        self,
        writes: list[_Write],
        new_size: int,
        root: bytes,
        published: _Published,
        *,
        recovering: bool,
    ) -> bytes:
        """Step 4d: store ``writes`` in one concurrent wave and return the note to publish."""
        # 4d. The checkpoint and its history object. Without witnesses the note depends only on
        # (size, root) and the keys, so the history object joins the wave too; it is the same
        # bytes every time with Ed25519 alone, and with an ML-DSA-44 line (randomized,
        # timestamped) a repeat conflicts and the stored note is published, as below. Witnesses
        # need the new tiles stored to check consistency, so with a cosigner the note is made
        # after the wave.
        note = b""
        if self.config.cosigner is None:
            stored = self._stored_history(new_size) if recovering else None
            note = stored if stored is not None else self._signed_note(new_size, root)
            if stored is None:
                writes.append((history_path(new_size), note, ObjectClass.CHECKPOINT_HISTORY))
        kept: list[str] = []

        def put(item: _Write) -> None:
            try:
                self._put_immutable(item)
            except ImmutableConflictError as err:
                # A history object made earlier with cosignatures (a witness policy since
                # removed) is the note to publish, as in _checkpoint_note.
                if item[2] is not ObjectClass.CHECKPOINT_HISTORY:
                    raise
                kept.append(err.key)

        self._run(put, writes)
        if kept:
            note = self.store.get(kept[0])
        if self.config.cosigner is not None:
            note = self._checkpoint_note(new_size, root, published)
        return note

    def _publish(self, note: bytes, published: _Published, new_size: int) -> str | _Published:
        """Step 4e: swap the checkpoint from ``published`` to ``note``. Returns its new version,
        or the checkpoint now published when another sequencer completed this batch (or more)
        first; raises :class:`LostRaceError` when the checkpoint moved anywhere else."""
        expected = published.version
        while True:
            try:
                return self.store.put_if(CHECKPOINT, note, ObjectClass.CHECKPOINT, expected)
            except PreconditionFailed as err:
                self._edge = None
                self._last = None
                now = self._read_checkpoint()
                if now.size >= new_size:
                    return now  # someone completed this same batch (or more) first
                if (now.size, now.root) == (published.size, published.root) and (
                    now.version != expected
                ):
                    expected = now.version  # the same tree re-published (new cosignatures)
                    continue
                raise LostRaceError(
                    f"the checkpoint moved to size {now.size} while publishing size {new_size}"
                ) from err

    def _checkpoint_note(self, size: int, root: bytes, published: _Published) -> bytes:
        """The signed (and, with a policy, cosigned) checkpoint, kept at ``checkpoints/<size>``.

        Cosignatures carry timestamps, so a repeated attempt would make other bytes: once the
        history object exists, it is the note to publish.
        """
        note = self._signed_note(size, root)
        cosigner = self.config.cosigner
        if cosigner is not None:
            with contextlib.suppress(ObjectNotFound):
                return self.store.get(history_path(size))
            note = cosigner.cosign(note, size, self._reader(size).consistency_proof)
        try:
            self.store.put_immutable(history_path(size), note, ObjectClass.CHECKPOINT_HISTORY)
        except ImmutableConflictError:
            note = self.store.get(history_path(size))
        return note

    def _reader(self, size: int) -> TileReader:
        """Tiles of this store read at ``size`` (for witnesses' consistency proofs)."""
        from stelae.sequencer.reader import StoreFetcher  # noqa: PLC0415 - only with witnesses

        return TileReader(StoreFetcher(self.store), read_size=size)

    def _stored_history(self, size: int) -> bytes | None:
        """``checkpoints/<size>`` when it may already exist with other bytes than a new
        signature would make — an ML-DSA-44 signature is randomized and timestamped, so a
        repeated attempt (recovery, a restart) must publish the stored note, not rewrite an
        immutable object. None when the log's notes are deterministic (Ed25519 alone: writing
        the same bytes again is the idempotent path, and saves the read) or nothing is there."""
        if not self.config.extra_log_signers:
            return None
        try:
            return self.store.get(history_path(size))
        except ObjectNotFound:
            return None

    def _signed_note(self, size: int, root: bytes) -> bytes:
        """The checkpoint note signed by the log's keys alone (no witnesses): the same bytes
        every time unless an ML-DSA-44 key signs too."""
        return sign_note(
            Checkpoint(self.config.origin, size, root).to_text(), self._checkpoint_signers
        ).to_bytes()

    @staticmethod
    def _keys(e: PendingEntry) -> tuple[tuple[KeyKind, str], ...]:
        # Every kind, always: a monitor recomputes the index from the bodies alone.
        return (
            *((KeyKind.DIGEST, d) for d in e.digests),
            *((KeyKind.KEY, k) for k in e.key_fingerprints),
            *((KeyKind.IDENTITY, x) for x in e.identities),
        )

    def _entry_timestamp(self, body: bytes, integrated_time: int, index: int) -> bytes:
        if not self.config.entry_timestamps:
            return b""
        return self.signer.sign_bytes(set_payload(body, integrated_time, self._v1_log_id, index))

    # -- plumbing --------------------------------------------------------------------------------

    def _put_immutable(self, item: _Write) -> None:
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
