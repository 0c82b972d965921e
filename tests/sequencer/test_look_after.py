"""The sequencer's advice to waiting writers (``look_after_ms`` in the batch record): computed at
the claim from the entries' SQS send times and the previous batch's claim-to-checkpoint time,
kept byte for byte by recovery, fed from SQS records (garbled timestamps ignored) and, in the
drain loop, from a real ReceiveMessage (moto server mode, real boto3 clients)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from stelae.sequencer.drain import Drain
from stelae.sequencer.engine import Sequencer, SequencerConfig
from stelae.sequencer.pending import encode_entry
from stelae.sequencer.s3 import S3Store
from stelae.sequencer.sqs import integrate_sqs_batch, sent_timestamp
from stelae.tiles.batch import BatchRecord, PendingEntry
from stelae.tiles.hashing import leaf_hash
from stelae.tiles.notekeys import Ed25519NoteSigner
from stelae.tiles.paths import CHECKPOINT, batch_path
from tests.conftest import MotoEndpoint
from tests.support.aws import create_aws_log
from tests.support.memory import MemoryStore, WriteEvent

ORIGIN = "look-after.example.test"
SIGNER = Ed25519NoteSigner.generate(ORIGIN)
T = 1_700_000_000.0
"""The fake clock's start, in seconds since the epoch."""
T_MS = int(T * 1000)


class Clock:
    """The sequencer's clock: still, except where a test moves it."""

    def __init__(self, now: float = T) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def entry(i: int) -> PendingEntry:
    body = f'{{"look":{i}}}'.encode()
    return PendingEntry(body, digests=(f"sha256:{leaf_hash(body).hex()}",))


def sequencer(store: MemoryStore, clock: Clock) -> Sequencer:
    config = SequencerConfig(ORIGIN, background_merges=False)
    return Sequencer(store, SIGNER, config, clock=clock)


def publishing_takes(clock: Clock, seconds: float) -> MemoryStore:
    """A store on which writing the checkpoint moves ``clock`` on by ``seconds``: every batch
    takes that long from its claim to its published checkpoint."""

    def tick(ev: WriteEvent) -> None:
        if ev.key == CHECKPOINT:
            clock.now += seconds

    return MemoryStore(after_write=tick)


def advice(store: MemoryStore, first: int) -> int | None:
    return BatchRecord.parse(store.get(batch_path(first))).look_after_ms


def test_the_claim_advises_the_90th_percentile_of_ages_plus_the_last_publish_time() -> None:
    clock = Clock()
    store = publishing_takes(clock, 0.3)
    seq = sequencer(store, clock)
    # The sequencer's first batch: it has timed none before, so it advises nothing, and the
    # header has no such field.
    seq.integrate([entry(0)], sent_ms=[T_MS - 20])
    assert advice(store, 0) is None
    assert b"look_after_ms" not in store.get(batch_path(0))
    # That batch took 300 ms from claim to checkpoint. Ten entries sent 0, 100, ..., 900 ms
    # before this claim: 800 ms (the 90th percentile) + 300 ms.
    clock.now = T + 5
    now_ms = T_MS + 5000
    seq.integrate([entry(i) for i in range(1, 11)], sent_ms=[now_ms - 100 * i for i in range(10)])
    assert advice(store, 1) == 1100
    # The next: one entry 50 ms old, and the last batch's 300 ms.
    clock.now = T + 9
    seq.integrate([entry(11)], sent_ms=[T_MS + 9000 - 50])
    assert advice(store, 11) == 350
    # No send time known (stelae serve's batcher, records without attributes): no advice.
    seq.integrate([entry(12)])
    assert advice(store, 12) is None
    assert b"look_after_ms" not in store.get(batch_path(12))
    seq.close()


def test_send_times_of_resubmissions_count_but_a_batch_of_them_claims_nothing() -> None:
    clock = Clock()
    store = MemoryStore()
    seq = sequencer(store, clock)
    seq.integrate([entry(0)], sent_ms=[T_MS - 10])
    before = store.keys("batch/")
    # A batch holding only an entry already logged is answered from deduplication: no claim.
    seq.integrate([entry(0)], sent_ms=[T_MS - 999])
    assert store.keys("batch/") == before
    seq.close()


class Crash(Exception):  # noqa: N818 - a simulated process death, not an error
    pass


def test_recovery_finishes_the_claimed_batch_with_its_advice_and_the_same_bytes() -> None:
    """A sequencer dies after its claim; another, on another clock, with other send times and
    no batch of its own before, finishes the batch: the record is never rewritten (the memory
    store records any attempt) and its advice stays the first sequencer's."""

    def die_at_tiles(ev: WriteEvent) -> None:
        if ev.key.startswith("tile/"):
            raise Crash(ev.key)

    clock = Clock()
    store = publishing_takes(clock, 0.25)
    first = sequencer(store, clock)
    first.integrate([entry(100)])  # a batch timed: 250 ms
    store.before_write = die_at_tiles
    entries = [entry(i) for i in range(5)]
    with pytest.raises(Crash):
        first.integrate(entries, sent_ms=[T_MS + 250 - 400, T_MS + 250 - 100])
    claimed = store.get(batch_path(1))
    assert BatchRecord.parse(claimed).look_after_ms == 400 + 250
    store.before_write = None
    other = sequencer(store, Clock(T + 3600))
    result = other.integrate(entries, sent_ms=[T_MS + 3_600_000 - 7])  # the redelivery
    assert result.size == 6
    assert store.get(batch_path(1)) == claimed
    assert not store.violations, store.violations
    # The redelivered entries are answered with their indexes in that batch.
    assert [result.receipts[e.leaf_hash].index for e in entries] == list(range(1, 6))
    other.close()


def sqs_record(i: int, attributes: object) -> dict[str, Any]:
    record: dict[str, Any] = {"messageId": f"m{i}", "body": encode_entry(entry(i))}
    if attributes is not ...:
        record["attributes"] = attributes
    return record


GARBLED: list[object] = [
    ...,  # no attributes at all
    None,
    "SentTimestamp=1",
    [T_MS],
    {},
    {"SentTimestamp": None},
    {"SentTimestamp": T_MS},  # SQS sends a string; anything else is not SQS's
    {"SentTimestamp": ""},
    {"SentTimestamp": "-5"},
    {"SentTimestamp": "1e12"},
    {"SentTimestamp": "17000000000.5"},
    {"SentTimestamp": "9" * 40},
    {"SentTimestamp": "١٧٠٠"},  # Arabic-Indic digits: str.isdigit, but not SQS's
]


@pytest.mark.parametrize("attributes", GARBLED, ids=[repr(g)[:24] for g in GARBLED])
def test_a_missing_or_garbled_sent_timestamp_is_none(attributes: object) -> None:
    assert sent_timestamp(sqs_record(0, attributes)) is None


def test_sqs_records_give_their_send_times_and_garbled_ones_are_ignored() -> None:
    """Every record integrates; only the one readable SentTimestamp (250 ms before the claim)
    makes the advice; a poison message's is not counted."""
    store = MemoryStore()
    seq = sequencer(store, Clock())
    seq.integrate([entry(1000)])  # a batch timed (0 ms: the clock stands still)
    records = [sqs_record(i, g) for i, g in enumerate(GARBLED)]
    records.append(sqs_record(90, {"SentTimestamp": str(T_MS - 250), "SenderId": "AIDA"}))
    poison = {"messageId": "poison", "body": "not an entry"}
    poison["attributes"] = {"SentTimestamp": str(T_MS - 100_000)}  # type: ignore[assignment]
    records.append(poison)
    answer = integrate_sqs_batch(seq, {"Records": records})
    assert answer == {"batchItemFailures": [{"itemIdentifier": "poison"}]}
    assert BatchRecord.parse(store.get(batch_path(1))).count == len(GARBLED) + 1
    assert advice(store, 1) == 250
    # Nothing readable at all: the batch integrates, with no advice.
    integrate_sqs_batch(seq, {"Records": [sqs_record(100 + i, g) for i, g in enumerate(GARBLED)]})
    assert advice(store, len(GARBLED) + 2) is None
    seq.close()


def test_the_drain_receives_the_send_times_and_the_record_carries_their_advice(
    moto_server: MotoEndpoint,
) -> None:
    """Over moto: a real SendMessage stamps each message, the drain's ReceiveMessage asks for
    the stamp, and the sequencer (its clock 10 s ahead of the wall) advises 10 s plus the ages
    the messages really had — within the wall-clock interval around the sends."""
    log = create_aws_log(moto_server)
    store = S3Store(log.bucket, endpoint_url=moto_server.url, region_name=moto_server.region)
    config = SequencerConfig(log.signer.name, background_merges=False)
    ahead = time.time() + 10
    seq = Sequencer(store, log.signer, config, clock=lambda: ahead)
    seq.integrate([entry(99)])  # a batch timed (0 ms: the clock stands still)
    before_ms = int(time.time() * 1000)
    for i in range(3):
        log.sqs.send_message(QueueUrl=log.queue_url, MessageBody=encode_entry(entry(i)))
    after_ms = int(time.time() * 1000) + 1
    drain = Drain(log.sqs, log.queue_url, seq, batch_size=10, window_seconds=60, wait_seconds=0)
    summary = drain.run(lambda: 900.0)
    assert (summary.batches, summary.entries) == (1, 3)
    got = BatchRecord.parse(store.get(batch_path(1))).look_after_ms
    claim_ms = int(ahead * 1000)
    assert got is not None
    assert claim_ms - after_ms <= got <= claim_ms - before_ms, (before_ms, got, after_ms)
    header = json.loads(store.get(batch_path(1)).split(b"\n", 1)[0])
    assert header["look_after_ms"] == got
    seq.close()
