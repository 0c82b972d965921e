"""The sequencer Lambda under a witness policy: moto in server mode for S3, SQS and SSM, three
real ``stelae witness`` processes on loopback, 2-of-3, and ``stelae.lambda.sequence.handler``
driven with real SQS events.

With the quorum the checkpoint in the bucket carries it; with two witnesses gone, fail-closed
publishes nothing and hands the batch back to SQS (every record reported failed); delivered again
to the same container once a witness is back, the batch is published with the quorum. Under
fail-open, a batch is published with the one cosignature it got. A policy object whose digest is
not the deployed one stops the sequencer.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from benchmarks.lambda_events import sqs_event
from stelae.client import signing
from stelae.errors import StelaeError
from stelae.kinds import from_v2_request
from stelae.sequencer.pending import PendingEntry, encode_entry
from stelae.sequencer.reader import StoreFetcher
from stelae.sequencer.s3 import S3Store
from stelae.tiles.client import LogClient
from stelae.tiles.notekeys import Ed25519NoteSigner
from stelae.tiles.policy import Policy, QuorumNotMetError
from stelae.witness.identity import create_key
from tests.conftest import MotoEndpoint
from tests.support.aws import create_aws_log
from tests.support.witness import WitnessProcess, log_list, start_witness

sequence_lambda = importlib.import_module("stelae.lambda.sequence")

POLICY_KEY = ".state/config/witness-policy"


@dataclass
class Deployment:
    moto: MotoEndpoint
    signer: Ed25519NoteSigner
    bucket: str
    queue_url: str
    sqs: Any
    policy: Policy
    witnesses: list[WitnessProcess]
    log_list_file: Path

    def store(self) -> S3Store:
        return S3Store(self.bucket, endpoint_url=self.moto.url, region_name=self.moto.region)

    def checkpoint(self) -> bytes:
        return self.store().get("checkpoint")

    def size(self) -> int:
        client = LogClient(StoreFetcher(self.store()), [self.signer.verifier], self.signer.name)
        return client.checkpoint().checkpoint.size

    def send(self, i: int) -> None:
        key = signing.generate_key("ecdsa-p256")
        art = f"witnessed artifact {i}".encode()
        _, digest = signing.digest(key, art)
        entry = from_v2_request(
            signing.build_v2_hashedrekord(signing.sign_artifact(key, art), key, digest)
        )
        body = encode_entry(PendingEntry(entry.body, entry.artifact_digests))
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)

    def deliver(self) -> dict[str, Any]:
        """The event source mapping: receive, invoke, delete what the handler did not report."""
        got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
        messages = got.get("Messages", [])
        assert messages, "a message to deliver"
        event = sqs_event(messages, f"arn:aws:sqs:us-east-1:123456789012:{self.bucket}")
        result: dict[str, Any] = sequence_lambda.handler(event, None)
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        for m in messages:
            if m["MessageId"] not in failed:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
        return result


def _witnesses(tmp_path: Path, vkey: str) -> list[WitnessProcess]:
    (tmp_path / "logs.txt").write_bytes(log_list((vkey, 86400)))
    witnesses = []
    for i in range(3):
        create_key(tmp_path / f"w{i}", f"witness.test/w{i}", "ed25519")
        witnesses.append(start_witness(tmp_path / f"w{i}", tmp_path / "logs.txt"))
    return witnesses


def _policy_text(vkey: str, witnesses: list[WitnessProcess]) -> bytes:
    lines = [f"log {vkey}"]
    lines += [f"witness W{i} {w.vkey} {w.url}" for i, w in enumerate(witnesses)]
    lines += ["group Q 2 W0 W1 W2", "quorum Q", ""]
    return "\n".join(lines).encode()


@pytest.fixture
def deployment(
    moto_server: MotoEndpoint, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Deployment]:
    # Visibility 0: a message the handler reported failed can be received again at once.
    log = create_aws_log(moto_server, {"VisibilityTimeout": "0"})
    witnesses = _witnesses(tmp_path, log.signer.vkey)
    policy = _policy_text(log.signer.vkey, witnesses)
    log.s3.put_object(Bucket=log.bucket, Key=POLICY_KEY, Body=policy)
    env = log.env(
        STELAE_WITNESS_POLICY_KEY=POLICY_KEY,
        STELAE_WITNESS_POLICY_SHA256=hashlib.sha256(policy).hexdigest(),
        STELAE_WITNESS_TIMEOUT_SECONDS="5",
    )
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    sequence_lambda.sequencer.cache_clear()
    try:
        yield Deployment(
            moto_server,
            log.signer,
            log.bucket,
            log.queue_url,
            log.sqs,
            Policy.parse(policy),
            witnesses,
            tmp_path / "logs.txt",
        )
    finally:
        sequence_lambda.sequencer.cache_clear()
        for w in witnesses:
            w.stop()


def test_published_with_the_quorum_and_not_without_it(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = deployment
    d.send(0)
    assert d.deliver() == {"batchItemFailures": []}
    first = d.checkpoint()
    assert d.size() == 1
    witnessed = d.policy.open_checkpoint(first, d.signer.name)  # raises without the quorum
    assert witnessed.checkpoint.size == 1
    assert len(d.policy.witnessed(first).signed) >= 2

    for w in d.witnesses[1:]:
        w.stop()
    d.send(1)
    # Fail-closed: every record fails, so the handler raises and SQS keeps the message.
    with pytest.raises(QuorumNotMetError):
        d.deliver()
    assert d.checkpoint() == first, "nothing new was published"
    assert d.size() == 1

    # The same container, the same batch delivered again once a second witness is back (on its
    # address, with its state): published with the quorum.
    back = start_witness(d.witnesses[1].data, d.log_list_file, d.witnesses[1].address[1])
    d.witnesses.append(back)
    assert d.deliver() == {"batchItemFailures": []}
    assert d.size() == 2
    assert d.policy.witnessed(d.checkpoint()).signed == ("W0", "W1")
    back.stop()

    # The operator turns fail-open on (a new function configuration, so a new container): with
    # one witness, the next batch is published with the one cosignature it could get.
    monkeypatch.setenv("STELAE_WITNESS_FAIL_OPEN", "true")
    sequence_lambda.sequencer.cache_clear()
    d.send(2)
    assert d.deliver() == {"batchItemFailures": []}
    assert d.size() == 3
    assert d.policy.witnessed(d.checkpoint()).signed == ("W0",)

    # A container never runs with a policy other than the deployed one.
    monkeypatch.setenv("STELAE_WITNESS_POLICY_SHA256", "0" * 64)
    sequence_lambda.sequencer.cache_clear()
    d.send(3)
    with pytest.raises(StelaeError, match="SHA-256"):
        d.deliver()
    assert d.size() == 3
