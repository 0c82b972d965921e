"""What a sequencer answers — an entry's :class:`Receipt` and a batch's
:class:`IntegrationResult` — and the errors it raises (docs/sequencing.md, "What is fatal").

Kept apart from the engine so that the pieces it drives (deduplication, the batcher, the relay,
the SQS submitter) share these types without importing the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from stelae.errors import StelaeError
from stelae.tiles.batch import BatchRecord
from stelae.tiles.locate import Located


class LostRaceError(StelaeError):
    """Other sequencers kept claiming or publishing first; this one's batch was not written."""


class LogCorruptedError(StelaeError):
    """The stored log contradicts itself (tiles vs checkpoint, batch record vs checkpoint). Fatal:
    the sequencer must stop rather than extend a tree it cannot verify."""


class IndexMissingError(LogCorruptedError):
    """The published checkpoint has no index manifest: a log from before the batch-level index."""


@dataclass(frozen=True)
class Receipt:
    """Where an entry landed and the signed checkpoint that covers it."""

    index: int
    duplicate: bool
    integrated_time: int
    checkpoint: bytes
    tree_size: int
    signed_entry_timestamp: bytes = b""
    batch: BatchRecord | None = None
    """The receipt part of the batch that sequenced the entry, when this checkpoint is that
    batch's: enough to compute the inclusion proof without reading tiles."""


def receipt_of_duplicate(found: Located, note: bytes, tree_size: int) -> Receipt:
    """The receipt of an entry found already in the log (by :func:`locate_leaf`), answered with
    the checkpoint ``note`` of ``tree_size``: its original index, time and SET."""
    return Receipt(
        found.index, True, found.integrated_time, note, tree_size, found.signed_entry_timestamp
    )


@dataclass(frozen=True)
class IntegrationResult:
    """The published checkpoint and where each submitted entry (by leaf hash) landed."""

    checkpoint: bytes
    size: int
    root: bytes
    receipts: Mapping[bytes, Receipt] = field(default_factory=dict)
