"""Garbage collection in the AWS sequencer Lambda, against moto server mode with real boto3: after
answering an SQS batch it deletes the obsolete partial tiles and bundles from the bucket, and a
reader holding an old checkpoint still verifies from what is left."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks.lambda_events import sqs_event
from stelae.sequencer.aws import AwsConfig
from stelae.sequencer.engine import Sequencer, SequencerConfig
from stelae.sequencer.pending import PendingEntry, encode_entry
from stelae.sequencer.reader import StoreFetcher
from stelae.sequencer.s3 import S3Store
from stelae.tiles.client import LogClient
from stelae.tiles.errors import FormatError
from stelae.tiles.gc import DEFAULT_GRACE
from stelae.tiles.notekeys import Ed25519NoteSigner
from tests.conftest import MotoEndpoint
from tests.support.aws import create_aws_log

sequence_lambda = importlib.import_module("stelae.lambda.sequence")

BASE = {"STELAE_BUCKET": "b", "STELAE_QUEUE_URL": "q", "STELAE_VKEY": ""}


@pytest.mark.parametrize(
    ("value", "grace"), [(None, DEFAULT_GRACE), ("0", 0.0), ("90", 90.0), ("off", None)]
)
def test_the_grace_period_comes_from_the_environment(value: str | None, grace: float) -> None:
    env = {**BASE, "STELAE_VKEY": Ed25519NoteSigner.generate("a.example/log").vkey}
    if value is not None:
        env["STELAE_GC_GRACE_SECONDS"] = value
    assert AwsConfig.from_env(env).gc_grace == grace


@pytest.mark.parametrize("value", ["soon", "-1", "inf", "nan"])
def test_a_bad_grace_period_is_refused(value: str) -> None:
    env = {**BASE, "STELAE_VKEY": Ed25519NoteSigner.generate("a.example/log").vkey}
    with pytest.raises(FormatError, match="STELAE_GC_GRACE_SECONDS"):
        AwsConfig.from_env({**env, "STELAE_GC_GRACE_SECONDS": value})


@pytest.fixture
def grown(moto_server: MotoEndpoint, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A bucket holding a log grown to 300 entries in batches ending at 1, 2, 3, 250 and 300 (so
    tile 0 has partials of widths 1, 2, 3 and 250), and the sequencer Lambda's environment."""
    log = create_aws_log(moto_server)
    store = S3Store(log.bucket, client=log.s3)
    seq = Sequencer(store, log.signer, SequencerConfig(log.signer.name, background_merges=False))
    start = 0
    for size in (1, 2, 3, 250, 300):
        seq.integrate([PendingEntry(f'{{"n":{i}}}'.encode()) for i in range(start, size)])
        start = size
    seq.close()
    for k, v in log.env(STELAE_GC_GRACE_SECONDS="0").items():
        monkeypatch.setenv(k, v)
    sequence_lambda.sequencer.cache_clear()
    yield {
        "signer": log.signer,
        "sqs": log.sqs,
        "queue_url": log.queue_url,
        "bucket": log.bucket,
        "store": store,
    }
    sequence_lambda.sequencer.cache_clear()


def _keys(store: S3Store, prefix: str) -> list[str]:
    listed = store.client.list_objects_v2(Bucket=store.bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_the_sequencer_lambda_collects_after_answering(grown: dict[str, Any]) -> None:
    store: S3Store = grown["store"]
    assert _keys(store, "tile/0/000.p/") == [f"tile/0/000.p/{w}" for w in ("1", "2", "250", "3")]
    sqs, url = grown["sqs"], grown["queue_url"]
    sqs.send_message(QueueUrl=url, MessageBody=encode_entry(PendingEntry(b'{"n":300}')))
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    event = sqs_event(messages, f"arn:aws:sqs:us-east-1:123456789012:{grown['bucket']}")
    assert sequence_lambda.handler(event, None) == {"batchItemFailures": []}

    assert _keys(store, "tile/0/000.p/") == [] and _keys(store, "tile/entries/000.p/") == []
    assert _keys(store, "tile/0/001.p/") == ["tile/0/001.p/44", "tile/0/001.p/45"]
    assert store.get("tile/0/000") and store.get("tile/entries/000")
    # One DeleteObjects request for the whole catch-up (510 keys).
    assert sequence_lambda.sequencer().store.counters["DELETE"] == 1

    signer: Ed25519NoteSigner = grown["signer"]
    reader = LogClient(StoreFetcher(store), [signer.verifier], signer.name)
    old = reader.open_checkpoint(store.get("checkpoints/3"))
    assert reader.entry(2, old).data == b'{"n":2}'
    reader.prove_consistency(old, reader.checkpoint())
