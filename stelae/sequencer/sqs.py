"""The AWS queue: the write Lambda enqueues to SQS and waits; the sequencer Lambda integrates.

Write side (:class:`SqsSubmitter`): the submitter notes the published size, sends the entry to SQS
(durable from then on) and waits for the batch that holds it. Batches start at published sizes, so
the entry is in ``batch/<size>`` for the size it noted or a later one: each poll reads the
checkpoint and then, only when it has grown, the batch records in between — usually one — until
one lists the entry's leaf hash. That record is the receipt: index, integrated time, signed entry
timestamp, and what the write service needs to build the inclusion proof without reading tiles
(docs/sequencing.md, "Receipts"). An entry that was already in the log is in no new batch: after
``duplicate_after`` seconds without finding it, the submitter asks the verifiable index
(docs/index.md), once.
Nothing can be published before the event source mapping's batching window closes and the
sequencer has integrated the batch, so the first poll waits for both (``first_poll``: the window
plus the sequencer's usual integration time, ``STELAE_POLL_AFTER_SECONDS``); a write whose batch
took no longer is answered after three GETs in all — the checkpoint before sending, the checkpoint
and the batch record after the wait — and its inclusion proof is built from that batch record
(:meth:`~stelae.tiles.batch.BatchRecord.inclusion_proof`), not from tiles. Later polls are
``poll_interval`` apart. A warm submitter (one Lambda container's) looks sooner when it can: the
batch record it last read may carry the sequencer's advice, ``look_after_ms`` (when writers of
that batch could have found it published, :mod:`stelae.tiles.lookafter`), and its next write
first looks after ``min(first_poll, advice + look_slack)``, never sooner than ``look_floor``.
The checkpoint before sending cannot be dropped: batch records are named by their first index,
and only the size published before the entry was sent says which batch can hold it
(docs/sequencing.md, "Receipts for waiting writers"). A write that will not wait (``timeout``
shorter than ``first_poll``: an asynchronous log answering 202 at once) reads nothing.
With ``wake`` (``sequencer_trigger = "writer_invoke"`` on AWS: no event source mapping), the
submitter calls it right after the entry is in the queue, to start the sequencer's drain loop; a
wake that fails is logged and the write goes on, since the entry is already durable and the
scheduled sweep drains the queue anyway (terraform/README.md).

Sequencer side (:func:`integrate_sqs_batch`): parses every record, integrates the valid ones in
one batch (with their ``SentTimestamp`` attributes, for the advice above), and reports
per-record failures (SQS partial batch responses) so a malformed message goes to the dead-letter
queue without blocking the rest. If integration itself fails, every
record is reported failed and SQS redelivers them; the batch record and the sequencer's
deduplication make that redelivery harmless.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from stelae.sequencer.awaiter import Deadline, not_yet_integrated
from stelae.sequencer.batcher import QueueUnavailableError
from stelae.sequencer.engine import Sequencer
from stelae.sequencer.pending import PendingEntry, decode_entry, encode_entry
from stelae.sequencer.receipt import Receipt, receipt_of_duplicate
from stelae.sequencer.store import ObjectNotFound, ObjectStore
from stelae.tiles.batch import BatchRecord
from stelae.tiles.checkpoint import Checkpoint
from stelae.tiles.errors import FormatError
from stelae.tiles.locate import locate_leaf
from stelae.tiles.note import NoteVerifier, open_note
from stelae.tiles.paths import CHECKPOINT, batch_path, history_path

log = logging.getLogger("stelae.sequencer")


class SqsSubmitter:
    """A :class:`~stelae.api.submit.Submitter` over SQS and the log's static objects.

    ``verifier`` checks every checkpoint and index manifest it reads: an answer is built only from
    what the log signed. ``wake``, if given, is called once after each successful ``SendMessage``
    (an asynchronous Invoke of the sequencer, :meth:`~stelae.sequencer.aws.AwsConfig.waker`); its
    exceptions are logged at WARNING and never fail the write.
    """

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        store: ObjectStore,
        verifier: NoteVerifier,
        *,
        first_poll: float = 1.0,
        duplicate_after: float | None = None,
        poll_interval: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wake: Callable[[], None] | None = None,
        look_slack: float = 0.05,
        look_floor: float = 0.1,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.store = store
        self.verifier = verifier
        self.first_poll = first_poll
        # A duplicate is in no new batch (a batch of duplicates publishes nothing), so after this
        # long without finding its entry a writer asks the index, once. Not sooner: for an entry
        # that simply is not published yet, the look-up would be GETs wasted.
        self.duplicate_after = 3 * first_poll if duplicate_after is None else duplicate_after
        self.poll_interval = poll_interval
        self._sleep = sleep
        self._clock = clock
        self._wake = wake
        self.look_slack = look_slack
        self.look_floor = look_floor
        # The advice of the last receipt this submitter read, in seconds (None: a cold container,
        # or a record without advice). Per instance, so per warm Lambda container.
        self.look_after: float | None = None

    def first_look(self) -> float:
        """Seconds between sending the entry and the first look: ``first_poll``, or sooner when
        the last receipt advised it (``look_after`` plus ``look_slack``, at least ``look_floor``).

        The advice can only move the first look earlier than ``first_poll``, never later, and it
        changes nothing of what is accepted: a look that comes too soon costs one more checkpoint
        GET and a poll ``poll_interval`` later, one that comes late costs waiting. So a wrong
        value (a skewed clock, a burst unlike the batch before) costs GETs or time, never a
        wrong answer."""
        return first_look(self.first_poll, self.look_after, self.look_slack, self.look_floor)

    def submit(self, entry: PendingEntry, timeout: float) -> Receipt:
        deadline = Deadline(timeout, self._clock)
        # Where to look later; a writer that will not wait for its first look (an asynchronous
        # write, wait 0) needs nothing but the queue: no GET at all.
        looks = self.first_poll <= timeout
        start = self._size() if looks else 0
        try:
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=encode_entry(entry))
        except Exception as err:
            # SQS has no "full"; throttling or an outage is the caller's 503.
            raise QueueUnavailableError(f"the queue refused the entry: {err}") from err
        self._wake_sequencer()
        # A write that noted no size must not look at all (it would scan from batch 0).
        delay = self.first_look() if looks else self.first_poll
        looked_up = False
        sent = self._clock()
        while True:
            if not deadline.allows(delay):
                raise not_yet_integrated(entry)
            self._sleep(delay)
            found, start, cp, note = self._scan(entry, start)
            waited = self._clock() - sent >= self.duplicate_after
            if found is None and waited and not looked_up and cp is not None and cp.size > 0:
                # Not in the batches published so far: it may have been logged before, and a
                # batch of duplicates publishes nothing. Ask the index once.
                looked_up = True
                found = self._lookup(entry, cp, note)
            if found is not None:
                return found
            delay = self.poll_interval

    def _wake_sequencer(self) -> None:
        if self._wake is None:
            return
        try:
            self._wake()
        except Exception as err:
            # Best effort, never the write's failure: the entry is already durable in the queue,
            # and the scheduled sweep drains whatever a lost wake left (later than a wake would:
            # the writer may answer 202 instead of 201). Failing the write here would make the
            # client retry an entry that is already queued.
            log.warning(
                "couldn't wake the sequencer; the scheduled sweep will integrate the entry: %s",
                err,
            )

    def _size(self) -> int:
        try:
            note = self.store.get(CHECKPOINT)
        except ObjectNotFound:
            return 0
        return self._open(note).size

    def _open(self, note: bytes) -> Checkpoint:
        return Checkpoint.parse(open_note(note, [self.verifier]).text)

    def _scan(
        self, entry: PendingEntry, start: int
    ) -> tuple[Receipt | None, int, Checkpoint | None, bytes]:
        """Read the batches from ``start`` up to the published size: the receipt if one holds
        the entry, where the next scan starts, and the checkpoint read."""
        try:
            note = self.store.get(CHECKPOINT)
        except ObjectNotFound:
            return None, start, None, b""
        cp = self._open(note)
        while start < cp.size:
            try:
                record = BatchRecord.parse_receipt(self.store.get(batch_path(start)))
            except ObjectNotFound:
                break  # a batch of a log from before batch records: look it up instead
            index = record.position(entry.leaf_hash)
            if index is not None:
                if record.new_size != cp.size:
                    note = self.store.get(history_path(record.new_size))
                i = index - record.first
                advice = record.look_after_ms
                self.look_after = None if advice is None else advice / 1000
                receipt = Receipt(
                    index,
                    False,
                    record.integrated_time,
                    note,
                    record.new_size,
                    record.timestamps[i],
                    record,
                )
                return receipt, start, cp, note
            start = record.new_size
        return None, start, cp, note

    def _lookup(self, entry: PendingEntry, cp: Checkpoint, note: bytes) -> Receipt | None:
        found = locate_leaf(self.store.get, [self.verifier], cp.origin, cp, entry.leaf_hash)
        if found is None or found.batch is None:
            return None
        return receipt_of_duplicate(found, note, cp.size)


def first_look(first_poll: float, look_after: float | None, slack: float, floor: float) -> float:
    """:meth:`SqsSubmitter.first_look`'s rule, for whoever predicts a submitter's schedule."""
    if look_after is None:
        return first_poll
    return max(floor, min(first_poll, look_after + slack))


def sent_timestamp(record: Mapping[str, Any]) -> int | None:
    """The ``SentTimestamp`` (milliseconds since the epoch) of an SQS record as the event source
    mapping delivers it (``record["attributes"]["SentTimestamp"]``, a decimal string), or None
    when it is missing or garbled: it only feeds advice, so it never fails a batch."""
    attributes = record.get("attributes")
    if not isinstance(attributes, Mapping):
        return None
    value = attributes.get("SentTimestamp")
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 15:
        return int(value)
    return None


def integrate_sqs_batch(sequencer: Sequencer, event: Mapping[str, Any]) -> dict[str, Any]:
    """Handle one SQS event for the sequencer Lambda; returns the partial-batch response."""
    records = event.get("Records")
    if not isinstance(records, list):
        raise FormatError("not an SQS event: no Records list")
    entries: list[PendingEntry] = []
    ids: list[str] = []
    valid: list[Mapping[str, Any]] = []
    failures: list[dict[str, str]] = []
    for record in records:
        message_id = str(record.get("messageId", ""))
        try:
            entries.append(decode_entry(record.get("body", "")))
            ids.append(message_id)
            valid.append(record)
        except FormatError:
            # Poison message: retrying cannot fix it; SQS moves it to the DLQ after maxReceiveCount.
            failures.append({"itemIdentifier": message_id})
    if entries:
        sent = [t for t in map(sent_timestamp, valid) if t is not None]
        try:
            sequencer.integrate(entries, sent_ms=sent)
        except Exception:
            # Nothing was acknowledged; let SQS redeliver the whole valid set.
            failures.extend({"itemIdentifier": i} for i in ids)
            if len(failures) == len(records):
                raise
        else:
            # The batch is published; index merges may now run. They are idempotent, and one
            # that fails is planned again after the next batch, so a failure is only logged.
            try:
                sequencer.merge()
            except Exception as err:
                log.error("index merge failed (retried after the next batch): %s", err)
            # Obsolete partial tiles and bundles whose grace period is over (docs/durability.md):
            # best effort too, after the answer, so a failure only delays a deletion.
            try:
                sequencer.collect()
            except Exception as err:
                log.error("garbage collection failed (retried after the next batch): %s", err)
    return {"batchItemFailures": failures}
