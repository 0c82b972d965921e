"""The sequencer Lambda's dispatch (stelae/lambda/sequence.py): a writer's wake and the scheduled
sweep drain the queue, an idle sweep builds nothing, anything else is refused.

As in test_lambda.py the handler runs with the environment the Terraform module gives it, against
moto in server mode with real boto3 clients; the test plays the Lambda runtime, whose context
object tells the handler how much time it has left. The drain here is the production one, with
its 1 s long poll: each drain below ends with one empty second.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from benchmarks.lambda_events import scheduled_event, wake_event
from stelae.sequencer.pending import encode_entry
from stelae.sequencer.reader import StoreFetcher
from stelae.sequencer.s3 import S3Store
from stelae.tiles.batch import PendingEntry
from stelae.tiles.client import LogClient
from stelae.tiles.errors import FormatError
from tests.conftest import MotoEndpoint
from tests.support.aws import AwsLog, create_aws_log

sequence_lambda = importlib.import_module("stelae.lambda.sequence")

SCHEDULED = scheduled_event()
WAKE = wake_event()


@dataclass(frozen=True)
class Context:
    """The part of the Lambda runtime's context object the handler uses."""

    millis: int = 60_000

    def get_remaining_time_in_millis(self) -> int:
        return self.millis


def clear_caches() -> None:
    sequence_lambda.sequencer.cache_clear()
    sequence_lambda.sqs.cache_clear()


@pytest.fixture
def aws_log(moto_server: MotoEndpoint, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsLog]:
    log = create_aws_log(moto_server)
    for k, v in log.env(STELAE_BATCH_SIZE="4", STELAE_BATCH_WINDOW_SECONDS="0.5").items():
        monkeypatch.setenv(k, v)
    clear_caches()
    yield log
    clear_caches()


def enqueue(log: AwsLog, n: int) -> set[bytes]:
    bodies = {f'{{"woken":{i}}}'.encode() for i in range(n)}
    for body in bodies:
        log.sqs.send_message(QueueUrl=log.queue_url, MessageBody=encode_entry(PendingEntry(body)))
    return bodies


def counts(log: AwsLog) -> tuple[int, int]:
    got = log.sqs.get_queue_attributes(
        QueueUrl=log.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(got["ApproximateNumberOfMessages"]), int(
        got["ApproximateNumberOfMessagesNotVisible"]
    )


def logged(log: AwsLog) -> set[bytes]:
    store = S3Store(log.bucket, endpoint_url=log.moto.url, region_name=log.moto.region)
    client = LogClient(StoreFetcher(store), [log.signer.verifier], log.signer.name)
    cp = client.checkpoint().checkpoint
    assert client.tiles.root(cp.size) == cp.root_hash
    entries = [e for _, bundle in client.bundles(0, cp) for e in bundle.entries]
    assert len(entries) == cp.size
    return set(entries)


def bucket_keys(log: AwsLog) -> list[str]:
    listed = log.s3.list_objects_v2(Bucket=log.bucket)
    return [o["Key"] for o in listed.get("Contents", [])]


@pytest.mark.parametrize("event", [WAKE, SCHEDULED], ids=["wake", "sweep"])
def test_a_wake_or_a_sweep_drains_the_queue(aws_log: AwsLog, event: dict[str, Any]) -> None:
    bodies = enqueue(aws_log, 11)
    summary = sequence_lambda.handler(event, Context())
    # STELAE_BATCH_SIZE=4: batches of 4, 4 and 3.
    assert summary == {
        "stopped": "empty",
        "batches": 3,
        "entries": 11,
        "failures": 0,
        "receives": summary["receives"],
    }
    assert logged(aws_log) == bodies
    assert counts(aws_log) == (0, 0)


def test_an_idle_sweep_builds_nothing(aws_log: AwsLog, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key parameter does not exist: building the sequencer would fail. An empty queue is
    answered from one GetQueueAttributes."""
    monkeypatch.setenv("STELAE_SIGNING_KEY_PARAM", "/no/such/parameter")
    assert sequence_lambda.handler(SCHEDULED, Context()) == {
        "stopped": "idle",
        "batches": 0,
        "entries": 0,
        "failures": 0,
        "receives": 0,
    }
    assert sequence_lambda.sequencer.cache_info().currsize == 0
    assert bucket_keys(aws_log) == []


def test_an_idle_sweep_does_not_import_the_engine(aws_log: AwsLog) -> None:
    """In a fresh interpreter, as a cold start: the handler's module and an empty sweep load
    neither the engine nor the configuration module."""
    script = (
        "import importlib, json, sys\n"
        "m = importlib.import_module('stelae.lambda.sequence')\n"
        "class C:\n"
        "    def get_remaining_time_in_millis(self): return 60000\n"
        f"answer = m.handler({SCHEDULED!r}, C())\n"
        "heavy = ('stelae.sequencer.engine', 'stelae.sequencer.aws')\n"
        "loaded = [n for n in heavy if n in sys.modules]\n"
        "print(json.dumps({'answer': answer, 'loaded': loaded}))\n"
    )
    env = {**os.environ, **aws_log.env(), "AWS_DEFAULT_REGION": aws_log.moto.region}
    done = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["answer"]["stopped"] == "idle"
    assert out["loaded"] == []


def test_a_sweep_with_messages_builds_the_sequencer(aws_log: AwsLog) -> None:
    """The check before the sweep is only a shortcut: a queue with an entry is drained."""
    bodies = enqueue(aws_log, 1)
    summary = sequence_lambda.handler(SCHEDULED, Context())
    assert (summary["stopped"], summary["entries"]) == ("empty", 1)
    assert logged(aws_log) == bodies


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"stelae": "wake", "please": True},
        {"source": "aws.events", "detail-type": "EC2 Instance State-change Notification"},
        {"version": "2.0", "routeKey": "POST /api/v2/log/entries"},
    ],
)
def test_an_unknown_event_is_refused_and_changes_nothing(
    aws_log: AwsLog, event: dict[str, Any]
) -> None:
    enqueue(aws_log, 3)
    with pytest.raises(FormatError, match="not a sequencer event"):
        sequence_lambda.handler(event, Context())
    assert counts(aws_log) == (3, 0)
    assert bucket_keys(aws_log) == []


def test_a_drain_needs_the_lambda_context(aws_log: AwsLog) -> None:
    enqueue(aws_log, 2)
    with pytest.raises(FormatError, match="get_remaining_time_in_millis"):
        sequence_lambda.handler(WAKE, None)
    assert counts(aws_log) == (2, 0)


def test_a_bad_batch_setting_is_refused_before_anything_is_received(
    aws_log: AwsLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    enqueue(aws_log, 2)
    monkeypatch.setenv("STELAE_BATCH_SIZE", "0")
    with pytest.raises(FormatError, match="STELAE_BATCH_SIZE"):
        sequence_lambda.handler(WAKE, Context())
    assert counts(aws_log) == (2, 0)
    assert bucket_keys(aws_log) == []


def test_a_short_timeout_drains_nothing(aws_log: AwsLog) -> None:
    """5 s left cannot fit a batch (a long poll, a window, an integration and a margin): the
    messages wait for the next wake or sweep, untouched."""
    enqueue(aws_log, 2)
    summary = sequence_lambda.handler(WAKE, Context(millis=5_000))
    assert (summary["stopped"], summary["receives"]) == ("time", 0)
    assert counts(aws_log) == (2, 0)
