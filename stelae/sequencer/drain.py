"""The drain loop: the sequencer Lambda empties the queue itself when it is woken.

Why this mode exists. With an SQS event source mapping, AWS's pollers long-poll the queue all the
time, and those receives are billed even when nobody writes: the mapping has an idle cost. In the
``writer_invoke`` mode (docs/sequencing.md, "Waking the sequencer on AWS") nothing polls while
the log is idle. A writer that has just enqueued an entry wakes the sequencer with an
asynchronous invoke (``{"stelae": "wake"}``), and a scheduled EventBridge rule sweeps every few
minutes in case a wake was lost. Either runs :class:`Drain`: receive a batch, integrate it,
delete it, until the queue is empty or the function's time runs short.

Guarantees. A message is deleted only after the batch holding it is published: the records go
through :func:`stelae.sequencer.sqs.integrate_sqs_batch`, the same code as the event source
mapping, and only the messages it does not report as failures are deleted, after it returns. A
crash or a timeout anywhere in between only means redelivery once the queue's visibility timeout
has passed: the batch record a crashed sequencer left is finished by the next one, and
deduplication answers the redelivered entries with their original indexes (docs/sequencing.md,
"The steps" and "Deduplication"). A poison message is reported, left in the queue and
dead-lettered after ``maxReceiveCount`` receives, as with the mapping. If integration fails,
nothing of that batch is deleted and the error is raised: the invocation fails visibly, and the
messages come back after the visibility timeout.

Limits. One loop publishes one batch at a time: throughput is bounded by the integration time of
a batch of ``batch_size``. A loop stops when its remaining time cannot fit two more long polls,
the window, integration (``integration_seconds``, or the slowest batch so far if longer) and margin;
what is left waits for the next wake or sweep. So the function's timeout must exceed that sum
(with the defaults, the window plus 8 s, plus the witnesses' timeout): with less, no batch ever
starts, and the loop says so at WARNING. The queue's visibility timeout must exceed a batch's
time from receive to delete, or its messages are redelivered while it is integrated (harmless,
but wasted). A wake that is lost (throttled while a loop runs, or failed) delays its entry until
the next sweep. Two loops at once are safe — the batch claim and the checkpoint's
compare-and-swap settle the race — only slower. SQS long-polls in whole seconds, so a window
that ends while the queue is quiet may overrun by up to one long poll (nothing arrived then).

The module is cheap to import (the engine is loaded only when a batch is integrated), because an
idle sweep imports it and asks :func:`queue_is_empty` only.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from stelae.tiles.errors import FormatError

if TYPE_CHECKING:
    from stelae.sequencer.engine import Sequencer

log = logging.getLogger("stelae.sequencer")

SQS_MAX_MESSAGES = 10
"""SQS's most messages per ReceiveMessage, and entries per DeleteMessageBatch."""

LONG_POLL_SECONDS = 1
"""The first receive of each batch. A short poll asks only a sample of SQS's servers and may
answer "empty" while messages wait, so the loop's stop condition — nothing came back — needs a
long poll; one second is the shortest SQS offers, and it is paid once per drain."""

INTEGRATION_SECONDS = 5.0
"""What the loop reserves for one integration before its first batch (later, the slowest batch
so far if that took longer): a batch of 1,000 takes about 0.4 s at S3's latency
(benchmarks/README.md, s3_latency), one of 10,000 a few seconds; witnesses' time is added by
the caller."""

MARGIN_SECONDS = 1.0
"""Time kept back after the integration: the deletes, and the return to the Lambda runtime."""

GATHER_PAUSE_SECONDS = 0.1
"""After a receive that brought fewer than ten messages, the loop waits this long before the
next one while a batch's window is open: at 100 entries/s about ten receives a second instead of
one per message, for at most this much added to the batch's close."""

MAX_BATCH_SIZE = 10_000
MAX_WINDOW_SECONDS = 300.0


class Trigger(enum.Enum):
    """What invoked the sequencer Lambda."""

    RECORDS = "records"
    """The SQS event source mapping, with the messages it received (``"Records"``)."""
    WAKE = "wake"
    """A writer's asynchronous invoke ``{"stelae": "wake"}``: it has just sent an entry."""
    SWEEP = "sweep"
    """The EventBridge schedule: the safety net that drains what a lost wake left."""


def trigger_of(event: object) -> Trigger:
    """Classify a Lambda event; anything that is none of the three raises :class:`FormatError`
    before anything is read or written."""
    if not isinstance(event, Mapping):
        raise FormatError(f"the sequencer's event is a {type(event).__name__}, not an object")
    if "Records" in event:
        return Trigger.RECORDS
    if dict(event) == {"stelae": "wake"}:
        return Trigger.WAKE
    if event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event":
        return Trigger.SWEEP
    raise FormatError(
        "not a sequencer event: expected an SQS event (Records), a wake "
        '({"stelae": "wake"}) or an EventBridge Scheduled Event; got keys '
        f"{sorted(map(str, event))[:8]}"
    )


def queue_is_empty(sqs: Any, queue_url: str) -> bool:
    """What an idle sweep asks before anything else: one GetQueueAttributes. The count is
    approximate and lags by up to about a minute; a message it misses is drained by the next
    wake or sweep. Messages in flight (received and not yet deleted, or failed and waiting out
    the visibility timeout) are not counted: they come back to a later loop."""
    got = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(got["Attributes"]["ApproximateNumberOfMessages"]) == 0


def lambda_budget(context: object) -> Callable[[], float]:
    """Seconds the Lambda invocation has left, from its context object."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        raise FormatError("the drain loop needs the Lambda context's get_remaining_time_in_millis")
    return lambda: float(remaining()) / 1000.0


@dataclass(frozen=True)
class DrainSummary:
    """What one invocation did, for its log line and for tests."""

    stopped: str
    """``empty`` (a receive found nothing), ``time`` (no time for another batch) or ``idle``
    (a sweep found the queue empty and received nothing)."""
    batches: int = 0
    entries: int = 0
    """Messages integrated and deleted (new entries and resubmissions alike)."""
    failures: int = 0
    """Messages reported as failed and left in the queue (poison messages)."""
    receives: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Tally:
    batches: int = 0
    entries: int = 0
    failures: int = 0
    receives: int = 0
    slowest: float = 0.0

    def summary(self, stopped: str) -> DrainSummary:
        done = DrainSummary(stopped, self.batches, self.entries, self.failures, self.receives)
        log.info("drain: stopped (%s): %s", stopped, done.to_dict())
        return done


class Drain:
    """Receive, integrate and delete batches from ``queue_url`` until it is empty.

    ``sqs`` is a boto3 SQS client (untyped); ``sequencer`` the log's engine. A batch closes when
    it holds ``batch_size`` messages, ``window_seconds`` after its first message arrived, or
    when a whole long poll brings nothing. ``wait_seconds`` is every receive's long poll
    (``LONG_POLL_SECONDS``; tests against an emulator that answers short polls exactly may pass
    0). ``gather_pause`` is the wait after a receive of fewer than ten messages while the window
    is open (``sleep`` waits it). ``clock`` measures the window and the integrations.
    """

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        sequencer: Sequencer,
        *,
        batch_size: int,
        window_seconds: float,
        wait_seconds: int = LONG_POLL_SECONDS,
        integration_seconds: float = INTEGRATION_SECONDS,
        margin_seconds: float = MARGIN_SECONDS,
        gather_pause: float = GATHER_PAUSE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be 1 to {MAX_BATCH_SIZE}, not {batch_size}")
        if not 0 < window_seconds <= MAX_WINDOW_SECONDS:
            raise ValueError(f"window_seconds must be in (0, 300], not {window_seconds}")
        if not 0 <= wait_seconds <= 20:  # SQS's range for WaitTimeSeconds
            raise ValueError(f"wait_seconds must be 0 to 20, not {wait_seconds}")
        self.sqs = sqs
        self.queue_url = queue_url
        self.sequencer = sequencer
        self.batch_size = batch_size
        self.window_seconds = window_seconds
        self.wait_seconds = wait_seconds
        self.integration_seconds = integration_seconds
        self.margin_seconds = margin_seconds
        self.gather_pause = gather_pause
        self._clock = clock
        self._sleep = sleep

    def run(self, remaining: Callable[[], float]) -> DrainSummary:
        """Drain until a receive finds nothing or ``remaining()`` (seconds) is too short for
        another batch. Raises what integration raised, after deleting nothing of that batch."""
        tally = _Tally()
        while True:
            needed = self._needed(tally.slowest)
            if remaining() < needed:
                if tally.batches == 0:
                    log.warning(
                        "drain: %.1f s left, %.1f s needed for a batch: the function's timeout "
                        "is too short for its batching window",
                        remaining(),
                        needed,
                    )
                return tally.summary("time")
            messages = self._collect(tally)
            if not messages:
                return tally.summary("empty")
            self._batch(messages, tally)

    def _needed(self, slowest: float) -> float:
        """The time one more batch may take: its first long poll, its window, one long poll more
        (a window that ends while the queue is quiet overruns by one), its integration."""
        integration = max(self.integration_seconds, slowest)
        receives = 2 * self.wait_seconds
        return receives + self.window_seconds + integration + self.margin_seconds

    def _collect(self, tally: _Tally) -> list[dict[str, Any]]:
        messages = self._receive(self.batch_size, self.wait_seconds, tally)
        if not messages:
            return messages
        opened, last = self._clock(), len(messages)
        while len(messages) < self.batch_size:
            if last < SQS_MAX_MESSAGES:
                # The queue was all but empty: let more arrive before asking again, rather than
                # paying a receive (and SQS a request) for every message of a slow trickle.
                self._sleep(max(0.0, min(self.gather_pause, self._left(opened))))
            if self._left(opened) <= 0:
                break
            # Always a long poll: it answers as soon as a message is there, and a short poll
            # may answer "empty" while messages wait (it asks only some of SQS's servers), which
            # would close batches early and small. So a batch closes when its window has passed
            # or when a whole long poll brought nothing (the window may then overrun by at most
            # that poll: the queue was quiet meanwhile).
            more = self._receive(self.batch_size - len(messages), self.wait_seconds, tally)
            if not more:
                break
            messages.extend(more)
            last = len(more)
        return messages

    def _left(self, opened: float) -> float:
        return self.window_seconds - (self._clock() - opened)

    def _receive(self, want: int, wait: int, tally: _Tally) -> list[dict[str, Any]]:
        tally.receives += 1
        got = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(SQS_MAX_MESSAGES, want),
            WaitTimeSeconds=wait,
            # When each was sent: the advice to waiting writers (stelae/tiles/lookafter.py).
            MessageSystemAttributeNames=["SentTimestamp"],
        )
        return list(got.get("Messages", []))

    def _batch(self, messages: list[dict[str, Any]], tally: _Tally) -> None:
        started = self._clock()
        try:
            failed = self._integrate(messages)
        except Exception:
            log.exception(
                "drain: integration failed; none of its %d messages is deleted (they return "
                "after the queue's visibility timeout)",
                len(messages),
            )
            raise
        done = [m for m in messages if m["MessageId"] not in failed]
        self._delete(done)
        tally.batches += 1
        tally.entries += len(done)
        tally.failures += len(messages) - len(done)
        tally.slowest = max(tally.slowest, self._clock() - started)
        log.info(
            "drain: batch of %d integrated (%d failed) in %.2f s",
            len(messages),
            len(messages) - len(done),
            self._clock() - started,
        )

    def _integrate(self, messages: list[dict[str, Any]]) -> set[str]:
        """The event source mapping's code path, on records shaped as it delivers them: the IDs
        of the messages it reports as failed."""
        # Imported here, not at the top: an idle sweep imports this module, and the engine's
        # imports are a good part of a cold start that integrates nothing.
        from stelae.sequencer.sqs import integrate_sqs_batch  # noqa: PLC0415

        records = [
            {"messageId": m["MessageId"], "body": m["Body"], "attributes": m.get("Attributes", {})}
            for m in messages
        ]
        answer = integrate_sqs_batch(self.sequencer, {"Records": records})
        return {str(f["itemIdentifier"]) for f in answer["batchItemFailures"]}

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        """Delete integrated messages, ten per call. A delete that fails is logged, not raised:
        the entry is published, and its message, redelivered, is a resubmission that
        deduplication answers with its original index."""
        for start in range(0, len(messages), SQS_MAX_MESSAGES):
            chunk = messages[start : start + SQS_MAX_MESSAGES]
            # Ids by position: SQS may deliver one message twice, and Ids must be unique.
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
            ]
            answer = self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            for failed in answer.get("Failed", []):
                log.warning(
                    "drain: could not delete an integrated message (%s: %s); it will be "
                    "redelivered and deduplicated",
                    failed.get("Code"),
                    failed.get("Message"),
                )
