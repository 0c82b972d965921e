"""The AWS queue: the write Lambda enqueues to SQS and waits; the sequencer Lambda integrates.

Write side (:class:`SqsSubmitter`): an entry already in the log is answered from its leaf record
without touching the queue. Otherwise it is sent to SQS (durable from then on) and the submitter
polls the static leaf index, then the checkpoint, until a published checkpoint covers it or the
deadline passes (the caller then answers 202). Nothing can be integrated before the event source
mapping's batching window closes, so the first poll waits for it (``first_poll``), and later
polls are ``poll_interval`` apart: a GET costs about as much as 0.05 s of a 512 MB Lambda's
time, so polling every 0.2 s keeps both the wasted GETs and the time waited after publication
small (the cost model in benchmarks/README.md measured the old exponential backoff).

Sequencer side (:func:`integrate_sqs_batch`): parses every record, integrates the valid ones in
one batch, and reports per-record failures (SQS partial batch responses) so a malformed message
goes to the dead-letter queue without blocking the rest. If integration itself fails, every
record is reported failed and SQS redelivers them; the intent record and leaf-index dedup make
that redelivery harmless.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from stelae.sequencer.batcher import NotYetIntegratedError, QueueFullError, Receipt
from stelae.sequencer.engine import Sequencer
from stelae.sequencer.lookup import LeafRecord, leaf_path
from stelae.sequencer.pending import PendingEntry
from stelae.sequencer.store import ObjectNotFound, ObjectStore
from stelae.tiles.checkpoint import Checkpoint
from stelae.tiles.errors import FormatError
from stelae.tiles.note import Note


class SqsSubmitter:
    """A :class:`~stelae.api.submit.Submitter` over SQS and the log's static objects."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        store: ObjectStore,
        *,
        first_poll: float = 1.0,
        poll_interval: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.store = store
        self.first_poll = first_poll
        self.poll_interval = poll_interval
        self._sleep = sleep
        self._clock = clock

    def submit(self, entry: PendingEntry, timeout: float) -> Receipt:
        deadline = self._clock() + timeout
        found = self._receipt(entry, duplicate=True)
        if found is not None:
            return found
        try:
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=entry.to_json())
        except Exception as err:
            # SQS has no "full"; throttling or an outage is the caller's 503.
            raise QueueFullError(0, 1) from err
        delay = self.first_poll
        while True:
            if self._clock() + delay > deadline:
                raise NotYetIntegratedError(
                    f"entry {entry.leaf_hash.hex()} is queued but not yet integrated"
                )
            self._sleep(delay)
            found = self._receipt(entry, duplicate=False)
            if found is not None:
                return found
            delay = self.poll_interval

    def _receipt(self, entry: PendingEntry, *, duplicate: bool) -> Receipt | None:
        try:
            record = LeafRecord.parse(self.store.get(leaf_path(entry.leaf_hash)))
        except ObjectNotFound:
            return None
        try:
            note = self.store.get("checkpoint")
        except ObjectNotFound:
            return None  # the log's first batch is between its leaf records and its checkpoint
        cp = Checkpoint.parse(Note.parse(note).text)
        if cp.size <= record.index:
            return None  # indexed by a batch whose checkpoint is not published yet
        return Receipt(
            record.index,
            duplicate,
            record.integrated_time,
            note,
            cp.size,
            record.signed_entry_timestamp,
        )


def integrate_sqs_batch(sequencer: Sequencer, event: Mapping[str, Any]) -> dict[str, Any]:
    """Handle one SQS event for the sequencer Lambda; returns the partial-batch response."""
    records = event.get("Records")
    if not isinstance(records, list):
        raise FormatError("not an SQS event: no Records list")
    entries: list[PendingEntry] = []
    ids: list[str] = []
    failures: list[dict[str, str]] = []
    for record in records:
        message_id = str(record.get("messageId", ""))
        try:
            entries.append(PendingEntry.from_json(record.get("body", "")))
            ids.append(message_id)
        except FormatError:
            # Poison message: retrying cannot fix it; SQS moves it to the DLQ after maxReceiveCount.
            failures.append({"itemIdentifier": message_id})
    if entries:
        try:
            sequencer.integrate(entries)
        except Exception:
            # Nothing was acknowledged; let SQS redeliver the whole valid set.
            failures.extend({"itemIdentifier": i} for i in ids)
            if len(failures) == len(records):
                raise
    return {"batchItemFailures": failures}
