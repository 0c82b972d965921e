"""The Lambda handlers with real API Gateway v2 and SQS event payloads, against moto server mode.

The test plays the part of the two AWS services that call the handlers: API Gateway (an HTTP API
event for each write) and the SQS event source mapping (receive, invoke the sequencer with the
records, delete the ones not reported as failures). Everything else is real: boto3 clients, S3,
SQS and Secrets Manager on moto's HTTP endpoint.
"""

from __future__ import annotations

import base64
import importlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks.lambda_events import apigw_event, sqs_event
from stelae.client import signing
from stelae.sequencer.reader import StoreFetcher
from stelae.sequencer.s3 import S3Store
from stelae.tiles.client import LogClient
from stelae.tiles.notekeys import Ed25519NoteSigner
from stelae.tiles.proof import verify_inclusion
from tests.conftest import MotoEndpoint
from tests.support.aws import create_aws_log

write_lambda = importlib.import_module("stelae.lambda.write")
sequence_lambda = importlib.import_module("stelae.lambda.sequence")


@pytest.fixture
def deployment(
    moto_server: MotoEndpoint, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    log = create_aws_log(moto_server)
    for k, v in log.env(STELAE_WAIT_SECONDS="15").items():
        monkeypatch.setenv(k, v)
    write_lambda.service.cache_clear()
    sequence_lambda.sequencer.cache_clear()
    yield {
        "signer": log.signer,
        "sqs": log.sqs,
        "queue_url": log.queue_url,
        "bucket": log.bucket,
        "moto": moto_server,
    }
    write_lambda.service.cache_clear()
    sequence_lambda.sequencer.cache_clear()


def pump(d: dict[str, Any], *, batch: int = 10) -> list[dict[str, Any]]:
    """The SQS event source mapping: receive, invoke the sequencer, delete what succeeded."""
    sqs, url = d["sqs"], d["queue_url"]
    got = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=batch, WaitTimeSeconds=1, AttributeNames=["All"]
    )
    messages = got.get("Messages", [])
    if not messages:
        return []
    event = sqs_event(messages, f"arn:aws:sqs:us-east-1:123456789012:{d['bucket']}")
    failures: list[dict[str, Any]] = sequence_lambda.handler(event, None)["batchItemFailures"]
    failed = {f["itemIdentifier"] for f in failures}
    for m in messages:
        if m["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return failures


def _request(i: int) -> tuple[dict[str, Any], bytes]:
    key = signing.generate_key("ecdsa-p256")
    art = f"artifact {i}".encode()
    _, dg = signing.digest(key, art)
    return signing.build_v2_hashedrekord(signing.sign_artifact(key, art), key, dg), art


def test_writes_flow_through_sqs_and_verify(deployment: dict[str, Any]) -> None:
    results: dict[int, dict[str, Any]] = {}

    def post(i: int) -> None:
        results[i] = write_lambda.handler(apigw_event("/api/v2/log/entries", _request(i)[0]), None)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    # Deliver until every writer has its answer (the writers poll the static leaf index).
    while any(t.is_alive() for t in threads):
        pump(deployment)
        for t in threads:
            t.join(timeout=0.05)
    assert {r["statusCode"] for r in results.values()} == {201}, results
    store = S3Store(
        deployment["bucket"], endpoint_url=deployment["moto"].url, region_name="us-east-1"
    )
    signer = deployment["signer"]
    client = LogClient(StoreFetcher(store), [signer.verifier], signer.name)
    cp = client.checkpoint()
    assert cp.checkpoint.size == 6
    indices = set()
    for r in results.values():
        body = json.loads(r["body"])
        index = int(body["logIndex"])
        indices.add(index)
        proof = [base64.b64decode(h) for h in body["inclusionProof"]["hashes"]]
        leaf = client.entry(index, cp)
        assert base64.b64decode(body["canonicalizedBody"]) == leaf.data
        size = int(body["inclusionProof"]["treeSize"])
        root = base64.b64decode(body["inclusionProof"]["rootHash"])
        verify_inclusion(index, size, leaf.leaf_hash, proof, root)
    assert indices == set(range(6))


def test_duplicate_is_answered_with_the_original_entry(deployment: dict[str, Any]) -> None:
    """A resubmission is queued like any entry (the writer does no per-upload look-up); the
    sequencer recognises it and publishes nothing, and the writer finds it through the index."""
    req, _ = _request(1)

    def upload() -> dict[str, Any]:
        out: list[dict[str, Any]] = []
        t = threading.Thread(
            target=lambda: out.append(
                write_lambda.handler(apigw_event("/api/v2/log/entries", req), None)
            )
        )
        t.start()
        while t.is_alive():
            pump(deployment)
            t.join(timeout=0.05)
        return out[0]

    first = upload()
    assert first["statusCode"] == 201
    again = upload()
    assert again["statusCode"] == 201
    assert again["headers"].get("X-Stelae-Duplicate") == "true"
    assert json.loads(again["body"])["logIndex"] == json.loads(first["body"])["logIndex"]
    client = LogClient(
        StoreFetcher(
            S3Store(
                deployment["bucket"],
                endpoint_url=deployment["moto"].url,
                region_name="us-east-1",
            )
        ),
        [deployment["signer"].verifier],
        deployment["signer"].name,
    )
    assert client.checkpoint().checkpoint.size == 1, "the duplicate was not logged again"


def test_deadline_answers_202(deployment: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STELAE_WAIT_SECONDS", "0.3")
    write_lambda.service.cache_clear()
    result = write_lambda.handler(apigw_event("/api/v2/log/entries", _request(2)[0]), None)
    assert result["statusCode"] == 202
    assert result["headers"]["Location"].startswith("/api/v1/log/entries/")


def test_bad_request_is_400_and_queues_nothing(deployment: dict[str, Any]) -> None:
    result = write_lambda.handler(
        apigw_event("/api/v2/log/entries", {"hashedRekordRequestV002": {"digest": "!!"}}), None
    )
    assert result["statusCode"] == 400
    assert "digest" in json.loads(result["body"])["message"] or "field" in json.loads(
        result["body"]
    )
    bad_type = write_lambda.handler(
        apigw_event("/api/v2/log/entries", {}, content_type="text/plain"), None
    )
    assert bad_type["statusCode"] == 415
    attrs = deployment["sqs"].get_queue_attributes(
        QueueUrl=deployment["queue_url"], AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "0"
    assert write_lambda.handler({"not": "an event"}, None)["statusCode"] == 400


def test_poison_message_is_reported_and_the_rest_integrate(deployment: dict[str, Any]) -> None:
    sqs, url = deployment["sqs"], deployment["queue_url"]
    sqs.send_message(QueueUrl=url, MessageBody="this is not an entry")
    from stelae.kinds import from_v2_request
    from stelae.sequencer.pending import PendingEntry, encode_entry

    entry = from_v2_request(_request(3)[0])
    sqs.send_message(
        QueueUrl=url, MessageBody=encode_entry(PendingEntry(entry.body, entry.artifact_digests))
    )
    failures = pump(deployment)
    assert len(failures) == 1
    store = S3Store(
        deployment["bucket"], endpoint_url=deployment["moto"].url, region_name="us-east-1"
    )
    signer = deployment["signer"]
    cp = LogClient(StoreFetcher(store), [signer.verifier], signer.name).checkpoint()
    assert cp.checkpoint.size == 1


def test_sequencer_refuses_a_key_that_does_not_match(
    deployment: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    other = Ed25519NoteSigner.generate(deployment["signer"].name)
    monkeypatch.setenv("STELAE_VKEY", other.vkey)
    sequence_lambda.sequencer.cache_clear()
    deployment["sqs"].send_message(QueueUrl=deployment["queue_url"], MessageBody="{}")
    with pytest.raises(Exception, match="does not match"):
        pump(deployment)


def test_a_claim_before_the_first_checkpoint_is_not_yet_integrated(
    deployment: dict[str, Any],
) -> None:
    """The first batch is claimed (its batch record written) before the first checkpoint
    exists: the writer keeps waiting instead of answering from an unpublished batch."""
    from stelae.kinds import from_v2_request
    from stelae.sequencer.batcher import NotYetIntegratedError
    from stelae.sequencer.engine import Sequencer, SequencerConfig
    from stelae.sequencer.pending import PendingEntry
    from stelae.sequencer.sqs import SqsSubmitter
    from stelae.tiles.paths import CHECKPOINT, batch_path
    from tests.support.faults import FaultInjectingStore
    from tests.support.memory import WriteEvent
    from tests.support.objects import holds

    store = S3Store(
        deployment["bucket"], endpoint_url=deployment["moto"].url, region_name="us-east-1"
    )
    signer = deployment["signer"]
    entry = from_v2_request(_request(9)[0])
    pending = PendingEntry(entry.body, entry.artifact_digests)

    def die_at_publication(ev: WriteEvent) -> None:
        if ev.key == "checkpoint":
            raise RuntimeError("the sequencer died before publishing")

    crashing = Sequencer(
        FaultInjectingStore(store, before_write=die_at_publication),
        signer,
        SequencerConfig(signer.name, background_merges=False),
    )
    with pytest.raises(RuntimeError):
        crashing.integrate([pending])
    assert holds(store, batch_path(0)) and not holds(store, CHECKPOINT)
    waits: list[float] = []
    submitter = SqsSubmitter(
        deployment["sqs"],
        deployment["queue_url"],
        store,
        signer.verifier,
        sleep=waits.append,
        clock=lambda: sum(waits),
    )
    with pytest.raises(NotYetIntegratedError):
        submitter.submit(pending, timeout=2.0)
    assert waits, "it polled instead of failing on the missing checkpoint"


def test_write_polls_after_the_batching_window_then_every_200ms(deployment: dict[str, Any]) -> None:
    """No GET before the window can have closed; then short, even polls until published."""
    from stelae.kinds import from_v2_request
    from stelae.sequencer.engine import Sequencer, SequencerConfig
    from stelae.sequencer.pending import PendingEntry
    from stelae.sequencer.sqs import SqsSubmitter

    store = S3Store(
        deployment["bucket"], endpoint_url=deployment["moto"].url, region_name="us-east-1"
    )
    signer = deployment["signer"]
    entry = from_v2_request(_request(11)[0])
    pending = PendingEntry(entry.body, entry.artifact_digests)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:  # the sequencer (its own client) publishes during the third wait
            other = S3Store(
                deployment["bucket"], endpoint_url=deployment["moto"].url, region_name="us-east-1"
            )
            config = SequencerConfig(signer.name, background_merges=False)
            Sequencer(other, signer, config).integrate([pending])

    gets_before = store.counters.get("GET", 0)
    submitter = SqsSubmitter(
        deployment["sqs"],
        deployment["queue_url"],
        store,
        signer.verifier,
        sleep=sleep,
        clock=lambda: sum(waits),
    )
    receipt = submitter.submit(pending, timeout=10.0)
    assert receipt.index == 0 and not receipt.duplicate
    assert waits == [1.0, 0.2, 0.2]
    # The checkpoint before sending (where to look), one checkpoint miss after each of the
    # first two waits, then the checkpoint and the batch record that is the receipt: five.
    assert store.counters.get("GET", 0) - gets_before == 5


def test_a_write_whose_batch_is_published_within_the_window_costs_three_gets(
    deployment: dict[str, Any],
) -> None:
    """The usual case once first_poll covers the batch: the checkpoint before sending, then one
    look after the window — the checkpoint and the batch record that is the receipt. No tile."""
    from stelae.kinds import from_v2_request
    from stelae.sequencer.engine import Sequencer, SequencerConfig
    from stelae.sequencer.pending import PendingEntry
    from stelae.sequencer.sqs import SqsSubmitter

    store = S3Store(
        deployment["bucket"], endpoint_url=deployment["moto"].url, region_name="us-east-1"
    )
    signer = deployment["signer"]
    config = SequencerConfig(signer.name, background_merges=False)
    other = S3Store(
        deployment["bucket"], endpoint_url=deployment["moto"].url, region_name="us-east-1"
    )
    sequencer = Sequencer(other, signer, config)
    sequencer.integrate([PendingEntry(from_v2_request(_request(20)[0]).body)])  # a log of 1
    entry = from_v2_request(_request(21)[0])
    pending = PendingEntry(entry.body, entry.artifact_digests)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        sequencer.integrate([pending])  # the batch closes and publishes within the window

    gets_before = store.counters.get("GET", 0)
    submitter = SqsSubmitter(
        deployment["sqs"],
        deployment["queue_url"],
        store,
        signer.verifier,
        first_poll=0.5,
        sleep=sleep,
        clock=lambda: sum(waits),
    )
    receipt = submitter.submit(pending, timeout=10.0)
    assert receipt.index == 1 and not receipt.duplicate
    assert waits == [0.5]
    assert store.counters.get("GET", 0) - gets_before == 3
    sequencer.close()


def test_a_write_that_will_not_wait_reads_nothing(deployment: dict[str, Any]) -> None:
    """An asynchronous write (its wait shorter than the first look) only enqueues: no GET, the
    entry is in the queue, and the answer is 'not yet integrated' (202)."""
    from stelae.kinds import from_v2_request
    from stelae.sequencer.batcher import NotYetIntegratedError
    from stelae.sequencer.pending import PendingEntry, decode_entry
    from stelae.sequencer.sqs import SqsSubmitter

    store = S3Store(
        deployment["bucket"], endpoint_url=deployment["moto"].url, region_name="us-east-1"
    )
    entry = from_v2_request(_request(30)[0])
    pending = PendingEntry(entry.body, entry.artifact_digests)
    waits: list[float] = []
    submitter = SqsSubmitter(
        deployment["sqs"],
        deployment["queue_url"],
        store,
        deployment["signer"].verifier,
        first_poll=1.5,
        sleep=waits.append,
        clock=lambda: sum(waits),
    )
    with pytest.raises(NotYetIntegratedError):
        submitter.submit(pending, timeout=0.0)
    assert waits == [] and store.counters.get("GET", 0) == 0
    got = deployment["sqs"].receive_message(QueueUrl=deployment["queue_url"], WaitTimeSeconds=1)
    assert [decode_entry(m["Body"]).leaf_hash for m in got["Messages"]] == [pending.leaf_hash]
