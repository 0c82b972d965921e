"""The drain loop (stelae/sequencer/drain.py) against moto in server mode with real boto3 clients.

The loop is driven directly with its seams: the long poll is 0 s (moto answers a short poll
exactly; SQS needs the 1 s long poll the loop uses by default, which the handler tests in
tests/lambda_/test_sequence_triggers.py run), the clock is real unless a test needs the window
or a slow batch to be deterministic (then it advances when the loop calls SQS, observed through
botocore's event hooks, which leave the requests untouched), and the time budget is a function.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from benchmarks.lambda_events import scheduled_event, wake_event
from stelae.sequencer.drain import LONG_POLL_SECONDS, Drain, Trigger, trigger_of
from stelae.sequencer.engine import Sequencer, SequencerConfig
from stelae.sequencer.reader import StoreFetcher
from stelae.sequencer.s3 import S3Store
from stelae.tiles.batch import BatchRecord, PendingEntry
from stelae.tiles.client import LogClient
from stelae.tiles.errors import FormatError
from stelae.tiles.hashing import leaf_hash
from stelae.tiles.paths import CHECKPOINT, batch_path
from tests.conftest import MotoEndpoint
from tests.support.aws import AwsLog, create_aws_log
from tests.support.faults import FaultInjectingStore
from tests.support.memory import WriteEvent
from tests.support.objects import holds

FOREVER: Callable[[], float] = lambda: 900.0  # noqa: E731 - a Lambda with all its time left


@dataclass
class Rig:
    """A log's bucket and queue in moto, and a sequencer on the bucket."""

    log: AwsLog
    store: S3Store
    sequencer: Sequencer
    received: list[dict[str, Any]]
    """Every message the loop received, as SQS returned it (receipt handles included)."""

    def drain(self, *, batch_size: int = 256, window: float = 60.0, **kw: Any) -> Drain:
        return Drain(
            self.log.sqs,
            self.log.queue_url,
            self.sequencer,
            batch_size=batch_size,
            window_seconds=window,
            wait_seconds=0,
            **kw,
        )

    def counts(self) -> tuple[int, int]:
        """(visible, in flight) messages in the queue."""
        got = self.log.sqs.get_queue_attributes(
            QueueUrl=self.log.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"]
        return (
            int(got["ApproximateNumberOfMessages"]),
            int(got["ApproximateNumberOfMessagesNotVisible"]),
        )

    def release(self, messages: list[dict[str, Any]]) -> None:
        """Make received, undeleted ``messages`` visible again at once: the end of their
        visibility timeout, without waiting for it."""
        for m in messages:
            self.log.sqs.change_message_visibility(
                QueueUrl=self.log.queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
            )

    def verified(self) -> list[bytes]:
        """Every entry of the log, read back through the verifying client."""
        signer = self.log.signer
        client = LogClient(StoreFetcher(self.store), [signer.verifier], signer.name)
        cp = client.checkpoint().checkpoint
        assert client.tiles.root(cp.size) == cp.root_hash
        entries: list[bytes] = []
        for _, bundle in client.bundles(0, cp):
            entries.extend(bundle.entries)
        assert len(entries) == cp.size
        return entries


def new_sequencer(log: AwsLog, store: Any) -> Sequencer:
    return Sequencer(store, log.signer, SequencerConfig(log.signer.name, background_merges=False))


@pytest.fixture
def rig(moto_server: MotoEndpoint) -> Iterator[Rig]:
    log = create_aws_log(moto_server)
    store = S3Store(log.bucket, endpoint_url=moto_server.url, region_name=moto_server.region)
    received: list[dict[str, Any]] = []

    def seen(parsed: dict[str, Any], **_: Any) -> None:
        received.extend(parsed.get("Messages", []))

    log.sqs.meta.events.register("after-call.sqs.ReceiveMessage", seen)
    sequencer = new_sequencer(log, store)
    yield Rig(log, store, sequencer, received)
    sequencer.close()


def entry(i: int) -> PendingEntry:
    body = f'{{"drained":{i}}}'.encode()
    return PendingEntry(body, digests=(f"sha256:{leaf_hash(body).hex()}",))


def enqueue(log: AwsLog, bodies: list[str]) -> None:
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        log.sqs.send_message_batch(
            QueueUrl=log.queue_url,
            Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(chunk)],
        )


def enqueue_entries(log: AwsLog, n: int) -> set[bytes]:
    from stelae.sequencer.pending import encode_entry

    entries = [entry(i) for i in range(n)]
    enqueue(log, [encode_entry(e) for e in entries])
    return {e.body for e in entries}


def batch_firsts(store: S3Store, size: int) -> list[int]:
    """The first index of every batch record of a log of ``size``, in order."""
    firsts = [0]
    while True:
        record = BatchRecord.parse_receipt(store.get(batch_path(firsts[-1])))
        if record.new_size >= size:
            return firsts
        firsts.append(record.new_size)


@pytest.mark.parametrize(
    ("batch_size", "firsts"), [(256, [0]), (10, [0, 10, 20]), (7, [0, 7, 14, 21])]
)
def test_every_queued_entry_is_integrated_and_deleted(
    rig: Rig, batch_size: int, firsts: list[int]
) -> None:
    """25 entries, more than one receive's worth: one batch of 25, or batches of the size."""
    bodies = enqueue_entries(rig.log, 25)
    summary = rig.drain(batch_size=batch_size).run(FOREVER)
    assert (summary.stopped, summary.entries, summary.failures) == ("empty", 25, 0)
    assert summary.batches == len(firsts)
    # 25 messages take at least three receives (ten at most each), plus the one that found
    # nothing and stopped the loop.
    assert summary.receives >= 4
    assert set(rig.verified()) == bodies
    assert batch_firsts(rig.store, 25) == firsts
    assert rig.counts() == (0, 0)


def test_a_batch_closes_when_its_window_has_passed(rig: Rig) -> None:
    """Time passes only while SQS answers (0.6 s a receive): the first batch takes what two
    receives bring before its 0.5 s window is over, the second the rest."""
    bodies = enqueue_entries(rig.log, 25)
    ticks: list[float] = []
    rig.log.sqs.meta.events.register("after-call.sqs.ReceiveMessage", lambda **_: ticks.append(0.6))
    summary = rig.drain(window=0.5, clock=lambda: sum(ticks)).run(FOREVER)
    assert (summary.stopped, summary.batches, summary.entries) == ("empty", 2, 25)
    assert batch_firsts(rig.store, 25) == [0, 20]
    assert set(rig.verified()) == bodies
    assert rig.counts() == (0, 0)


def test_a_trickle_is_gathered_into_one_batch_while_its_window_is_open(rig: Rig) -> None:
    """After a receive of fewer than ten messages the loop pauses (``gather_pause``) and asks
    again: what arrived meanwhile joins the same batch. The batch closes when a receive brings
    nothing, not at the first partial one."""
    from stelae.sequencer.pending import encode_entry

    enqueue(rig.log, [encode_entry(entry(0))])
    later = [[encode_entry(entry(1)), encode_entry(entry(2))], [encode_entry(entry(3))]]
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        if later:
            enqueue(rig.log, later.pop(0))  # messages that arrive during the pause

    summary = rig.drain(gather_pause=0.25, sleep=pause).run(FOREVER)
    assert (summary.stopped, summary.batches, summary.entries) == ("empty", 1, 4)
    assert pauses == [0.25, 0.25, 0.25], "a pause after each partial receive of the open batch"
    assert batch_firsts(rig.store, 4) == [0]
    assert rig.counts() == (0, 0)


def test_a_poison_message_stays_in_the_queue_and_the_rest_are_integrated(rig: Rig) -> None:
    bodies = enqueue_entries(rig.log, 12)
    enqueue(rig.log, ["this is not an entry"])
    summary = rig.drain().run(FOREVER)
    assert (summary.batches, summary.entries, summary.failures) == (1, 12, 1)
    assert set(rig.verified()) == bodies
    assert rig.counts() == (0, 1), "the poison message is in flight, not deleted"
    # At the end of its visibility timeout it comes back (and, after maxReceiveCount receives,
    # would go to the dead-letter queue).
    rig.release([m for m in rig.received if m["Body"] == "this is not an entry"])
    again = rig.log.sqs.receive_message(
        QueueUrl=rig.log.queue_url, AttributeNames=["ApproximateReceiveCount"]
    )["Messages"]
    assert [(m["Body"], m["Attributes"]["ApproximateReceiveCount"]) for m in again] == [
        ("this is not an entry", "2")
    ]


def test_an_integration_failure_deletes_nothing(rig: Rig) -> None:
    """The bucket is gone: the batch cannot be published, the error is raised, and every
    message of the batch stays in the queue."""
    enqueue_entries(rig.log, 12)
    rig.log.s3.delete_bucket(Bucket=rig.log.bucket)
    with pytest.raises(Exception, match=r"NoSuchBucket|bucket"):
        rig.drain().run(FOREVER)
    assert rig.counts() == (0, 12)
    assert len(rig.received) == 12


def test_a_crash_before_publishing_only_means_redelivery(rig: Rig) -> None:
    """The store refuses the checkpoint after the batch was claimed and its tiles written (a
    sequencer dying at its last step): nothing is deleted. Redelivered, the same messages are
    published once — the next sequencer finishes the claimed batch and deduplicates them."""
    bodies = enqueue_entries(rig.log, 12)

    def refuse_checkpoint(ev: WriteEvent) -> None:
        if ev.key == CHECKPOINT:
            raise RuntimeError("the sequencer died before publishing")

    crashing = new_sequencer(
        rig.log, FaultInjectingStore(rig.store, before_write=refuse_checkpoint)
    )
    try:
        with pytest.raises(RuntimeError, match="before publishing"):
            Drain(
                rig.log.sqs,
                rig.log.queue_url,
                crashing,
                batch_size=256,
                window_seconds=60.0,
                wait_seconds=0,
            ).run(FOREVER)
    finally:
        crashing.close()
    assert holds(rig.store, batch_path(0)) and not holds(rig.store, CHECKPOINT)
    assert rig.counts() == (0, 12)
    rig.release(list(rig.received))
    summary = rig.drain().run(FOREVER)
    assert (summary.entries, summary.failures) == (12, 0)
    assert sorted(rig.verified()) == sorted(bodies), "published once, in the claimed batch"
    assert rig.counts() == (0, 0)


def test_an_empty_queue_stops_the_loop_and_writes_nothing(rig: Rig) -> None:
    summary = rig.drain().run(FOREVER)
    assert summary.to_dict() == {
        "stopped": "empty",
        "batches": 0,
        "entries": 0,
        "failures": 0,
        "receives": 1,
    }
    assert not holds(rig.store, CHECKPOINT)


def test_a_short_budget_starts_no_batch(rig: Rig) -> None:
    """5 s left cannot hold a 1 s window and an integration: nothing is received."""
    enqueue_entries(rig.log, 12)
    summary = rig.drain(window=1.0).run(lambda: 5.0)
    assert (summary.stopped, summary.receives, summary.batches) == ("time", 0, 0)
    assert rig.counts() == (12, 0)


def test_the_loop_stops_when_the_time_left_fits_no_more_batch(rig: Rig) -> None:
    """Time for one batch: the first is integrated, the rest waits for the next wake."""
    bodies = enqueue_entries(rig.log, 25)
    budget = itertools.chain([60.0], itertools.repeat(3.0))
    summary = rig.drain(batch_size=10, window=1.0).run(lambda: next(budget))
    assert (summary.stopped, summary.batches, summary.entries) == ("time", 1, 10)
    assert set(rig.verified()) < bodies and len(rig.verified()) == 10
    assert rig.counts() == (15, 0)


def test_after_a_slow_batch_it_starts_no_batch_it_could_not_finish(rig: Rig) -> None:
    """A batch that took 30 s (time passes while its messages are deleted) raises what one more
    batch needs above the 20 s left, though the fixed allowance alone would fit."""
    enqueue_entries(rig.log, 25)
    ticks: list[float] = []
    rig.log.sqs.meta.events.register(
        "after-call.sqs.DeleteMessageBatch", lambda **_: ticks.append(30.0)
    )
    drain = rig.drain(
        batch_size=10,
        window=1.0,
        integration_seconds=1.0,
        margin_seconds=0.0,
        clock=lambda: sum(ticks),
    )
    summary = drain.run(lambda: 20.0)
    assert (summary.stopped, summary.batches, summary.entries) == ("time", 1, 10)
    assert rig.counts() == (15, 0)


def test_the_long_poll_is_one_second_by_default(rig: Rig) -> None:
    """The production loop long-polls: it is what tells an empty queue from a short poll that
    missed. One empty receive of one second, then the loop stops."""
    drain = Drain(rig.log.sqs, rig.log.queue_url, rig.sequencer, batch_size=10, window_seconds=1.0)
    assert drain.wait_seconds == LONG_POLL_SECONDS == 1
    summary = drain.run(FOREVER)
    assert (summary.stopped, summary.receives) == ("empty", 1)


@pytest.mark.parametrize(
    "kw",
    [
        {"batch_size": 0, "window_seconds": 1.0},
        {"batch_size": 10_001, "window_seconds": 1.0},
        {"batch_size": 10, "window_seconds": 0.0},
        {"batch_size": 10, "window_seconds": 301.0},
        {"batch_size": 10, "window_seconds": 1.0, "wait_seconds": 21},
    ],
)
def test_bad_loop_settings_are_refused(rig: Rig, kw: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        Drain(rig.log.sqs, rig.log.queue_url, rig.sequencer, **kw)


SCHEDULED = scheduled_event()


@pytest.mark.parametrize(
    ("event", "trigger"),
    [
        ({"Records": []}, Trigger.RECORDS),
        (wake_event(), Trigger.WAKE),  # the writer's payload, stelae.sequencer.aws.WAKE_PAYLOAD
        (SCHEDULED, Trigger.SWEEP),
    ],
)
def test_the_three_triggers(event: dict[str, Any], trigger: Trigger) -> None:
    assert trigger_of(event) is trigger


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"stelae": "sleep"},
        {"stelae": "wake", "and": "more"},
        {**SCHEDULED, "detail-type": "Object Created"},
        {**SCHEDULED, "source": "my.app"},
        ["Records"],
        "wake",
        None,
    ],
)
def test_anything_else_is_refused(event: object) -> None:
    with pytest.raises(FormatError, match="sequencer"):
        trigger_of(event)
