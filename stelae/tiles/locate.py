"""Finding an entry by its leaf hash (its Rekor UUID): the one way every reader does it.

The verifiable index (docs/index.md) answers a ``leaf`` lookup with the entry's index and the
first index of the batch that sequenced it; that batch's record (``stelae.tiles.batch``) holds the
entry's integrated time and signed entry timestamp. Index keys are 16-byte prefixes, so a hit is
confirmed against the batch record's leaf hash before it is believed; callers that read the entry
itself prove its inclusion and compare its leaf hash too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stelae.tiles.batch import BatchRecord
from stelae.tiles.checkpoint import Checkpoint
from stelae.tiles.errors import NotFoundError
from stelae.tiles.indexkeys import KeyKind
from stelae.tiles.note import NoteVerifier
from stelae.tiles.paths import batch_path
from stelae.tiles.search import lookup, lookup_or_latest


@dataclass(frozen=True)
class Located:
    index: int
    batch: BatchRecord | None
    """The receipt part of the entry's batch record; None for an entry sequenced before batch
    records existed (its index is then only as good as the caller's own check of the entry)."""

    @property
    def integrated_time(self) -> int:
        return self.batch.integrated_time if self.batch is not None else 0

    @property
    def signed_entry_timestamp(self) -> bytes:
        if self.batch is None:
            return b""
        return self.batch.timestamps[self.index - self.batch.first]


def locate_leaf(
    fetch: Callable[[str], bytes],
    verifiers: Sequence[NoteVerifier],
    origin: str,
    checkpoint: Checkpoint,
    leaf_hash: bytes,
    *,
    latest: Callable[[], Checkpoint] | None = None,
) -> Located | None:
    """Where the entry with ``leaf_hash`` is in the tree of ``checkpoint`` (already verified), or
    None when the index proves no entry has it. Raises VerificationError if the index's proofs
    fail.

    With ``latest`` (the log's latest checkpoint, verified and proved to extend ``checkpoint`` by
    the caller), an index object of ``checkpoint`` that the log has deleted since
    (docs/index.md, "Garbage collection") is no error: the lookup is made once more at the latest
    checkpoint, and only entries below ``checkpoint.size`` count."""
    if latest is None:
        answer = lookup(fetch, verifiers, origin, checkpoint, KeyKind.LEAF, leaf_hash.hex())
    else:
        answer = lookup_or_latest(
            fetch, verifiers, origin, checkpoint, KeyKind.LEAF, leaf_hash.hex(), latest
        )
    starts = answer.batch_starts or tuple(answer.indices)
    for index, first in zip(answer.indices, starts, strict=True):
        if index >= checkpoint.size:
            continue  # found at a newer checkpoint, after the tree the caller asked about
        try:
            record = BatchRecord.parse_receipt(fetch(batch_path(first)))
        except NotFoundError:
            return Located(index, None)
        if record.position(leaf_hash) == index:
            return Located(index, record)
    return None
