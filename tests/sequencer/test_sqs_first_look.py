"""SqsSubmitter's first look follows the advice of its last receipt (stelae/sequencer/sqs.py).

Over moto in server mode with real boto3 clients; the submitter's ``sleep`` and ``clock`` are
its seams (virtual time: a sleep returns at once and is recorded), and the sequencer, with a
fake clock of its own, publishes the batch during the writer's first sleep.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from stelae.sequencer.batcher import NotYetIntegratedError
from stelae.sequencer.engine import Sequencer, SequencerConfig
from stelae.sequencer.s3 import S3Store
from stelae.sequencer.sqs import SqsSubmitter, first_look
from stelae.tiles.batch import PendingEntry
from stelae.tiles.hashing import leaf_hash
from tests.conftest import MotoEndpoint
from tests.support.aws import AwsLog, create_aws_log

T = 1_700_000_000.0
FIRST_POLL = 1.5


def entry(i: int) -> PendingEntry:
    body = f'{{"first look":{i}}}'.encode()
    return PendingEntry(body, digests=(f"sha256:{leaf_hash(body).hex()}",))


@dataclass
class Rig:
    log: AwsLog
    store: S3Store
    sequencer: Sequencer
    waits: list[float] = field(default_factory=list)
    on_sleep: list[Callable[[], object]] = field(default_factory=list)
    """What happens during each next sleep (the sequencer publishing), first first."""

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.on_sleep:
            self.on_sleep.pop(0)()

    def submitter(self) -> SqsSubmitter:
        """A fresh submitter: a cold container."""
        return SqsSubmitter(
            self.log.sqs,
            self.log.queue_url,
            self.store,
            self.log.signer.verifier,
            first_poll=FIRST_POLL,
            sleep=self.sleep,
            clock=lambda: sum(self.waits),
        )

    def publish_during_next_sleep(self, e: PendingEntry, sent_ms: list[int]) -> None:
        self.on_sleep.append(lambda: self.sequencer.integrate([e], sent_ms=sent_ms))


@pytest.fixture
def rig(moto_server: MotoEndpoint) -> Iterator[Rig]:
    log = create_aws_log(moto_server)
    store = S3Store(log.bucket, endpoint_url=moto_server.url, region_name=moto_server.region)
    config = SequencerConfig(log.signer.name, background_merges=False)
    # A still clock: every batch takes 0 ms from claim to checkpoint, so the advice is exactly
    # the age of the batch's entries.
    other = S3Store(log.bucket, endpoint_url=moto_server.url, region_name=moto_server.region)
    sequencer = Sequencer(other, log.signer, config, clock=lambda: T)
    sequencer.integrate([entry(1000)])  # a log of 1
    yield Rig(log, store, sequencer)
    sequencer.close()


def test_a_warm_submitter_first_looks_when_its_last_receipt_advised(rig: Rig) -> None:
    submitter = rig.submitter()
    assert submitter.first_look() == FIRST_POLL  # cold: no receipt read yet
    # First write: its batch advises 300 ms (its one entry was 300 ms old at the claim).
    rig.publish_during_next_sleep(entry(1), [int(T * 1000) - 300])
    receipt = submitter.submit(entry(1), timeout=10.0)
    assert (receipt.index, receipt.duplicate) == (1, False)
    assert rig.waits == [FIRST_POLL]
    assert submitter.look_after == 0.3
    # Second write: first look at 300 ms + 50 ms of slack; published by then: one look, and
    # the same GETs as ever (checkpoint before sending, checkpoint, batch record).
    gets = rig.store.counters.get("GET", 0)
    rig.publish_during_next_sleep(entry(2), [])  # this batch gives no advice
    receipt = submitter.submit(entry(2), timeout=10.0)
    assert receipt.index == 2
    assert rig.waits[1:] == [pytest.approx(0.35)]
    assert rig.store.counters.get("GET", 0) - gets == 3
    # Its receipt had no advice: the third write is back to first_poll.
    assert submitter.first_look() == FIRST_POLL
    rig.publish_during_next_sleep(entry(3), [int(T * 1000) - 100])
    submitter.submit(entry(3), timeout=10.0)
    assert rig.waits[2:] == [FIRST_POLL]
    # A cold container (another submitter) does not share the advice.
    cold = rig.submitter()
    assert submitter.first_look() == pytest.approx(0.15)
    assert cold.first_look() == FIRST_POLL


def test_an_advice_too_early_costs_a_poll_and_later_looks_stay_poll_interval_apart(
    rig: Rig,
) -> None:
    """The batch advised 0 ms; the next batch is not published until the third look: the
    first look comes at the floor, misses, and the writer polls every 200 ms as before."""
    submitter = rig.submitter()
    rig.publish_during_next_sleep(entry(1), [int(T * 1000)])
    submitter.submit(entry(1), timeout=10.0)
    assert submitter.look_after == 0.0
    gets = rig.store.counters.get("GET", 0)
    rig.on_sleep.append(lambda: None)
    rig.publish_during_next_sleep(entry(2), [])
    receipt = submitter.submit(entry(2), timeout=10.0)
    assert receipt.index == 2
    assert rig.waits[1:] == [0.1, 0.2]
    # The checkpoint before sending, a checkpoint that had not moved, then checkpoint and
    # batch record: one GET more than a first look that came late enough.
    assert rig.store.counters.get("GET", 0) - gets == 4


def test_a_warm_submitter_that_will_not_wait_still_reads_nothing(rig: Rig) -> None:
    """An asynchronous write (its wait shorter than first_poll) neither notes the size nor
    looks, even when the advice would fit in its wait: it answers 'not yet integrated'."""
    submitter = rig.submitter()
    rig.publish_during_next_sleep(entry(1), [int(T * 1000) - 300])
    submitter.submit(entry(1), timeout=10.0)
    gets, waits = rig.store.counters.get("GET", 0), len(rig.waits)
    with pytest.raises(NotYetIntegratedError):
        submitter.submit(entry(2), timeout=1.0)
    assert rig.store.counters.get("GET", 0) == gets and len(rig.waits) == waits


@pytest.mark.parametrize(
    ("look_after", "expected"),
    [
        (None, 1.5),  # cold, or a receipt without advice
        (0.0, 0.1),  # the floor
        (0.04, 0.1),
        (0.3, 0.35),  # advice + slack
        (1.45, 1.5),
        (1.6, 1.5),  # never later than first_poll
        (600.0, 1.5),
    ],
)
def test_the_first_look_rule(look_after: float | None, expected: float) -> None:
    assert first_look(1.5, look_after, 0.05, 0.1) == pytest.approx(expected)
