"""The sequencer: claims a batch, integrates it into tiles and the index, publishes a checkpoint.

docs/sequencing.md is the reference, and the step numbers in the comments are its steps;
docs/durability.md says what is checked when. :meth:`Sequencer.integrate` runs the steps: the
published tree, read and checked, comes from :mod:`stelae.sequencer.published`, the claim (commit
point 1) from :mod:`stelae.sequencer.claim`, the write wave from :mod:`stelae.sequencer.wave` with
the notes of :mod:`stelae.sequencer.signing`; the publish (commit point 2) is here.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

from stelae.errors import StelaeError
from stelae.sequencer.claim import claim, new_record, pending_claim
from stelae.sequencer.collector import Collector
from stelae.sequencer.dedup import Deduplicator
from stelae.sequencer.merger import Merger
from stelae.sequencer.published import (
    Edge,
    Published,
    load_edge,
    manifest_runs,
    read_checkpoint,
    required,
)
from stelae.sequencer.receipt import (
    IntegrationResult,
    LogCorruptedError,
    LostRaceError,
    Receipt,
)
from stelae.sequencer.signing import Cosigner, LogKeys
from stelae.sequencer.store import (
    ImmutableConflictError,
    ObjectStore,
    PartialDeleter,
    PreconditionFailed,
)
from stelae.sequencer.wave import WritePool, index_writes, tile_writes, write_wave
from stelae.tiles.batch import BatchRecord, PendingEntry
from stelae.tiles.builder import extend
from stelae.tiles.hashing import EMPTY_ROOT
from stelae.tiles.indexkeys import KeyKind
from stelae.tiles.indexrecord import Record
from stelae.tiles.indexrun import RunRef
from stelae.tiles.layout import TILE_WIDTH
from stelae.tiles.lookafter import look_after_ms
from stelae.tiles.manifest import Manifest
from stelae.tiles.mergepolicy import MergePolicy
from stelae.tiles.note import NoteSigner
from stelae.tiles.notekeys import Ed25519NoteSigner
from stelae.tiles.paths import CHECKPOINT, ObjectClass, history_path, manifest_path

# Cosigner lives with the signing; importers know it from here.
__all__ = ["ALL_INDEXES", "CLAIM_ATTEMPTS", "Cosigner", "IndexKind", "Sequencer", "SequencerConfig"]

IndexKind = KeyKind
ALL_INDEXES = frozenset({KeyKind.DIGEST, KeyKind.KEY, KeyKind.IDENTITY})
"""The key kinds besides ``leaf``. Every one is always indexed (docs/index.md): the set is not a
setting, so that anyone can recompute the index from the entries alone."""

CLAIM_ATTEMPTS = 8
"""How many claims a batch may lose to other sequencers (each loss finishes their batch first)
before :class:`LostRaceError` is raised."""


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
        # Refuses a log key not named after the origin, before anything else starts.
        self._keys = LogKeys(
            store,
            signer,
            config.origin,
            extra_signers=config.extra_log_signers,
            cosigner=config.cosigner,
            entry_timestamps=config.entry_timestamps,
        )
        self.store = store
        self.signer = signer
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._edge: Edge | None = None
        self._last: Published | None = None  # what this sequencer last published or verified
        # Milliseconds from claim to published checkpoint of this sequencer's last batch (None
        # before its first): part of the advice to waiting writers in the next batch record.
        self._publish_ms: int | None = None
        # A pool starts no thread before its first task, so making it first costs nothing.
        self._writes = WritePool(config.parallel_writes)
        self._dedup = Deduplicator(
            store.get,
            partial(required, store),
            signer.verifier,
            config.origin,
            window=config.dedup_window,
            lookup_index=config.lookup_index,
            read_many=self._writes.map,
        )
        self.merger = Merger(store, config.merge_policy, background=config.background_merges)
        self.collector: Collector | None = None
        if config.gc_grace is not None:
            if not isinstance(store, PartialDeleter):
                raise StelaeError("gc_grace is set but this store cannot delete partial tiles")
            self.collector = Collector(
                store, config.gc_grace, clock=clock, background=config.background_merges
            )

    def close(self) -> None:
        self.merger.close()
        if self.collector is not None:
            self.collector.close()
        self._writes.close()

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
        data = self._keys.stored_history(0)
        if data is None:
            data = self._keys.signed_note(0, EMPTY_ROOT)
            try:
                self.store.put_immutable(history_path(0), data, ObjectClass.CHECKPOINT_HISTORY)
            except ImmutableConflictError:
                data = self.store.get(history_path(0))  # another sequencer's, just now
        self.store.flush()  # as in _apply: the history object is durable before the checkpoint
        # Someone else may have published first (the empty one, or more): then read theirs.
        with contextlib.suppress(PreconditionFailed):
            self.store.put_if(CHECKPOINT, data, ObjectClass.CHECKPOINT, None)
        return self.integrate([])

    def integrate(
        self, batch: Sequence[PendingEntry], *, sent_ms: Sequence[int] = ()
    ) -> IntegrationResult:
        """Integrate ``batch`` and publish a checkpoint covering it (steps 1–5 above).

        ``sent_ms`` are the times the batch's entries were sent to the queue, in milliseconds
        since the epoch on this sequencer's clock (SQS's ``SentTimestamp``; any number of them,
        in any order, none for entries whose time is unknown): with them, the batch record
        advises waiting writers when to look (:mod:`stelae.tiles.lookafter`)."""
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
                claimed_at = self._clock()
                record = self._claim(fresh, published, claimed_at, sent_ms)
                if record is None:
                    self._last = None  # lost: the next round finishes the winner's batch first
                    continue
                try:
                    done = self._apply(record, published, recovering=False)
                except BaseException:
                    self._last = None  # the claimed batch is finished by the next call
                    raise
                self._publish_ms = max(0, round((self._clock() - claimed_at) * 1000))
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
            if self.config.cosigner is None or not published.note:
                return IntegrationResult(published.note, published.size, published.root, {})
            note = self._keys.cosigned_note(published.size, published.root)
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

    def _current(self, *, trust_cache: bool = False) -> Published:
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
            self.collector.published(stored.size, runs=self._listed(stored.runs))
        self._last = stored
        return stored

    def _listed(self, runs: tuple[RunRef, ...]) -> tuple[RunRef, ...] | None:
        """The runs a published manifest lists, for the collector (None: no lookup index)."""
        return runs if self.config.lookup_index else None

    def _read_checkpoint(self) -> Published:
        return read_checkpoint(self.store, self.signer.verifier, self.config.origin)

    def _pending_claim(self, published: Published) -> BatchRecord | None:
        """The batch someone claimed at the published size and did not finish, if any."""
        return pending_claim(self.store, published, self._intent_record)

    def _intent_record(
        self, published: Published, entries: list[PendingEntry], integrated_time: int
    ) -> BatchRecord:
        """The batch record for what an intent record (a stelae before batch records) claimed;
        like every record it names the runs of the published manifest."""
        published.runs = self._manifest_runs(published)
        return self._record(entries, published, integrated_time)

    def _manifest_runs(self, published: Published) -> tuple[RunRef, ...]:
        if not self.config.lookup_index:
            return ()
        return manifest_runs(self.store, published, self.signer.verifier, self.config.origin)

    def _claim(
        self,
        fresh: list[PendingEntry],
        published: Published,
        now: float,
        sent_ms: Sequence[int],
    ) -> BatchRecord | None:
        """Step 3: create ``batch/<size>``; None if another sequencer created it first."""
        advice = look_after_ms(sent_ms, int(now * 1000), self._publish_ms)
        record = self._record(fresh, published, int(now), look_after=advice)
        return record if claim(self.store, record) else None

    def _record(
        self,
        entries: list[PendingEntry],
        published: Published,
        integrated_time: int,
        *,
        look_after: int | None = None,
    ) -> BatchRecord:
        edge = self._load_edge(published)
        runs = self.merger.substitute(published.runs)
        stamp = self._keys.entry_timestamp
        return new_record(
            entries,
            published,
            edge.edge,
            integrated_time,
            timestamp=stamp,
            runs=runs,
            look_after_ms=look_after,
        )

    def _load_edge(self, published: Published) -> Edge:
        cached = self._edge
        if cached and cached.size == published.size and cached.root == published.root:
            return cached
        return load_edge(self.store, published)

    def _apply(self, record: BatchRecord, published: Published, *, recovering: bool) -> Published:
        """Step 4: write everything for ``record`` and publish. Recovery runs exactly this."""
        if self.collector is not None:  # its runs are safe from collection until it publishes
            self.collector.claimed(record.runs)
        edge = self._load_edge(published)
        if edge.root != record.base_root:
            raise LogCorruptedError("the batch record was built on another tree head")
        update = extend(edge.edge, edge.tiles, list(record.leaf_hashes))
        new_size = update.edge.size
        root = update.edge.root()

        # 4.2. Bundles and tiles: immutable, idempotent.
        pending = [*edge.bundle, *(e.body for e in record.entries)]
        first = record.first - len(edge.bundle)  # index of pending[0]
        writes = tile_writes(pending, first, update)

        # 4.3. The batch's own index run and the manifest.
        runs: tuple[RunRef, ...] = ()
        records: list[Record] = []
        if self.config.lookup_index:
            runs, records = index_writes(record, new_size, root, self.signer, writes)

        # 4.4. The checkpoint and its history object, in the same wave when they can be.
        note = write_wave(
            self.store,
            self._writes,
            self._keys,
            writes,
            new_size=new_size,
            root=root,
            recovering=recovering,
        )

        # 4.5 and 4.6. Everything the checkpoint covers must be durable before it is published.
        self.store.flush()
        version = self._publish(note, published, new_size)
        if isinstance(version, Published):
            return version  # someone completed this same batch (or more) first

        last_bundle = tuple(pending[(new_size - first) // TILE_WIDTH * TILE_WIDTH :])
        if new_size % TILE_WIDTH == 0:
            last_bundle = ()
        self._edge = Edge(new_size, root, update.edge, dict(update.edge_tiles), last_bundle)
        self._dedup.remember(record.first, record.leaf_hashes)
        if self.config.lookup_index:
            self.merger.remember(runs[-1], records)
            self.merger.offer(runs)
        if self.collector is not None:  # published over ``published``: nothing came between
            self.collector.published(new_size, previous=published.size, runs=self._listed(runs))
        done = Published(new_size, root, version, note, runs)
        self._last = done
        return done

    def _publish(self, note: bytes, published: Published, new_size: int) -> str | Published:
        """Step 4.6: swap the checkpoint from ``published`` to ``note``. Returns its new version,
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
