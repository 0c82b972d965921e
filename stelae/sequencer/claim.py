"""Commit point 1, the claim: the batch record ``batch/<size>`` (docs/sequencing.md, step 3), and
the claim a sequencer left unfinished at the published size (step 1) — in a batch record, or in
the intent record of a stelae from before batch records.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from stelae.sequencer.intent import Intent, read_header
from stelae.sequencer.published import Published
from stelae.sequencer.receipt import LogCorruptedError
from stelae.sequencer.store import ImmutableConflictError, ObjectNotFound, ObjectStore
from stelae.tiles.batch import BatchRecord, PendingEntry
from stelae.tiles.compact import RightEdge
from stelae.tiles.errors import FormatError
from stelae.tiles.indexrun import RunRef
from stelae.tiles.paths import INTENT, ObjectClass, batch_path

log = logging.getLogger("stelae.sequencer")

#: Signs one entry's Rekor v1 signed entry timestamp: (body, integrated time, index) -> bytes.
EntryTimestamp = Callable[[bytes, int, int], bytes]
#: Builds the batch record for entries an intent record claimed: (published, entries,
#: integrated time) -> record.
IntentRecord = Callable[[Published, list[PendingEntry], int], BatchRecord]


def new_record(
    entries: list[PendingEntry],
    published: Published,
    edge: RightEdge,
    integrated_time: int,
    *,
    timestamp: EntryTimestamp,
    runs: tuple[RunRef, ...],
    look_after_ms: int | None = None,
) -> BatchRecord:
    """The batch record for ``entries`` on top of ``published`` (whose right edge is ``edge``):
    it assigns their indices, carries their integrated time and signed entry timestamps (signed
    now, once), names the index ``runs`` the batch's manifest will list, and carries the advice
    to waiting writers, ``look_after_ms`` (:mod:`stelae.tiles.lookafter`). All of it is fixed
    here, in the claim: recovery reads the record back and never recomputes any of it."""
    first = published.size
    stamps = tuple(timestamp(e.body, integrated_time, first + i) for i, e in enumerate(entries))
    return BatchRecord(
        first,
        published.root,
        edge,
        integrated_time,
        tuple(e.leaf_hash for e in entries),
        stamps,
        runs,
        tuple(entries),
        look_after_ms,
    )


def claim(store: ObjectStore, record: BatchRecord) -> bool:
    """Step 3: create ``batch/<size>``; False if another sequencer created it first."""
    try:
        store.put_immutable(batch_path(record.first), record.to_bytes(), ObjectClass.BATCH)
    except ImmutableConflictError:
        log.info("lost the claim of batch %d to another sequencer", record.first)
        return False
    return True


def pending_claim(
    store: ObjectStore, published: Published, intent_record: IntentRecord
) -> BatchRecord | None:
    """The batch someone claimed at the published size and did not finish, if any."""
    try:
        record = BatchRecord.parse(store.get(batch_path(published.size)))
    except ObjectNotFound:
        return _legacy_claim(store, published, intent_record)
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


def _legacy_claim(
    store: ObjectStore, published: Published, intent_record: IntentRecord
) -> BatchRecord | None:
    """An intent record left by a stelae before batch records, claiming beyond the size."""
    try:
        data = store.get(INTENT)
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
    record = intent_record(published, list(intent.entries), intent.integrated_time)
    try:  # the batch record is the claim from now on, and the entries' receipt
        store.put_immutable(batch_path(record.first), record.to_bytes(), ObjectClass.BATCH)
    except ImmutableConflictError:
        return pending_claim(store, published, intent_record)  # someone converted it first
    return record
