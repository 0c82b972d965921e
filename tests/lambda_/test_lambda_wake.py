"""The write Lambda waking the sequencer (``sequencer_trigger = "writer_invoke"``): after each
``SendMessage`` it invokes the function named by ``STELAE_WAKE_FUNCTION`` asynchronously.

S3 and SQS are moto's server mode; the wake is a real Lambda ``Invoke`` made by a real boto3
client over HTTP. moto accepts an ``InvocationType=Event`` invoke of a function it holds (202) but
then tries to run the code in Docker and keeps no record of the call, so nothing about the request
could be checked there. The Lambda endpoint is therefore a small HTTP server on 127.0.0.1 that
records each request (path, headers, payload) and answers as Lambda would (202, empty body) or
fails (500); boto3 is pointed at it with its own per-service setting ``AWS_ENDPOINT_URL_LAMBDA``,
which wins over the ``AWS_ENDPOINT_URL`` that sends S3 and SQS to moto.
"""

from __future__ import annotations

import importlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from benchmarks.lambda_events import apigw_event
from stelae.client import signing
from stelae.sequencer.aws import WAKE_PAYLOAD, AwsConfig
from tests.conftest import MotoEndpoint
from tests.support.aws import AwsLog, create_aws_log

write_lambda = importlib.import_module("stelae.lambda.write")
sequence_lambda = importlib.import_module("stelae.lambda.sequence")

SEQUENCER = "stelae-wake-sequencer"


@dataclass(frozen=True)
class Invocation:
    """One request as the Lambda endpoint received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LambdaEndpoint:
    """A stand-in for Lambda's Invoke API: records every request and answers ``status``
    (202 and an empty body, as Lambda answers an accepted ``Event`` invoke, or an error).
    ``on_invoke`` runs after the answer is sent, as Lambda runs an async invocation after its 202.
    """

    url: str = ""
    status: int = 202
    requests: list[Invocation] = field(default_factory=list)
    on_invoke: Callable[[], None] | None = None


def _handler_for(endpoint: LambdaEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            endpoint.requests.append(
                Invocation("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            if endpoint.status == 202:
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                error = json.dumps({"Type": "Service", "message": "injected failure"}).encode()
                self.send_response(endpoint.status)
                self.send_header("x-amzn-ErrorType", "ServiceException")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(error)))
                self.end_headers()
                self.wfile.write(error)
            self.wfile.flush()
            if endpoint.on_invoke is not None:
                endpoint.on_invoke()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def lambda_endpoint() -> Iterator[LambdaEndpoint]:
    endpoint = LambdaEndpoint()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(endpoint))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    endpoint.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def aws_log(moto_server: MotoEndpoint) -> AwsLog:
    return create_aws_log(moto_server)


def deploy(monkeypatch: pytest.MonkeyPatch, log: AwsLog, lambda_url: str, **extra: str) -> None:
    """The write function's environment, with Lambda's API at ``lambda_url``."""
    for k, v in log.env(AWS_ENDPOINT_URL_LAMBDA=lambda_url, **extra).items():
        monkeypatch.setenv(k, v)
    clear_caches()


def clear_caches() -> None:
    """The handlers build their clients once per container; each test is a new deployment."""
    write_lambda.service.cache_clear()
    sequence_lambda.sequencer.cache_clear()
    sequence_lambda.sqs.cache_clear()


@pytest.fixture(autouse=True)
def _fresh_handlers() -> Iterator[None]:
    yield
    clear_caches()


def _request(i: int) -> dict[str, Any]:
    key = signing.generate_key("ecdsa-p256")
    art = f"wake artifact {i}".encode()
    _, dg = signing.digest(key, art)
    request: dict[str, Any] = signing.build_v2_hashedrekord(
        signing.sign_artifact(key, art), key, dg
    )
    return request


def post(i: int) -> dict[str, Any]:
    answer: dict[str, Any] = write_lambda.handler(
        apigw_event("/api/v2/log/entries", _request(i)), None
    )
    return answer


def queued(log: AwsLog) -> int:
    attrs = log.sqs.get_queue_attributes(
        QueueUrl=log.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"])


def test_write_wakes_the_sequencer_with_an_async_invoke(
    monkeypatch: pytest.MonkeyPatch, aws_log: AwsLog, lambda_endpoint: LambdaEndpoint
) -> None:
    deploy(
        monkeypatch,
        aws_log,
        lambda_endpoint.url,
        STELAE_WAIT_SECONDS="0",
        STELAE_WAKE_FUNCTION=SEQUENCER,
    )
    answer = post(1)
    assert answer["statusCode"] == 202, answer
    assert queued(aws_log) == 1, "the entry was queued before the wake"
    (wake,) = lambda_endpoint.requests
    assert wake.path == f"/2015-03-31/functions/{SEQUENCER}/invocations"
    assert wake.headers["x-amz-invocation-type"] == "Event"
    assert wake.body == WAKE_PAYLOAD
    assert json.loads(wake.body) == {"stelae": "wake"}
    # Signed for Lambda by boto3, as real AWS requires (the stand-in does not check it).
    assert wake.headers["authorization"].startswith("AWS4-HMAC-SHA256 ")
    assert "/us-east-1/lambda/aws4_request" in wake.headers["authorization"]


@pytest.mark.parametrize("failure", ["500", "closed"])
def test_a_failed_wake_still_answers_the_write(
    monkeypatch: pytest.MonkeyPatch,
    aws_log: AwsLog,
    lambda_endpoint: LambdaEndpoint,
    caplog: pytest.LogCaptureFixture,
    failure: str,
) -> None:
    """An endpoint answering 500, or none listening at all: the write is answered as usual (202
    here, wait 0), the entry stays queued for the sweep, and the failure is a WARNING."""
    url = lambda_endpoint.url
    if failure == "500":
        lambda_endpoint.status = 500
    else:
        with socket.socket() as s:  # a port that was free a moment ago: connection refused
            s.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{s.getsockname()[1]}"
    deploy(monkeypatch, aws_log, url, STELAE_WAIT_SECONDS="0", STELAE_WAKE_FUNCTION=SEQUENCER)
    with caplog.at_level(logging.WARNING, logger="stelae.sequencer"):
        answer = post(2)
    assert answer["statusCode"] == 202, answer
    assert queued(aws_log) == 1
    warnings = [r for r in caplog.records if "couldn't wake the sequencer" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING, caplog.records
    # One retry, then it gives up: the write does not wait on botocore's default retries.
    assert len(lambda_endpoint.requests) == (2 if failure == "500" else 0)


def test_without_the_variable_no_invoke_is_made(
    monkeypatch: pytest.MonkeyPatch, aws_log: AwsLog, lambda_endpoint: LambdaEndpoint
) -> None:
    """The default deployment (the event source mapping wakes the sequencer): no Lambda call."""
    deploy(monkeypatch, aws_log, lambda_endpoint.url, STELAE_WAIT_SECONDS="0")
    monkeypatch.delenv("STELAE_WAKE_FUNCTION", raising=False)
    assert AwsConfig.from_env().waker() is None
    assert post(3)["statusCode"] == 202
    assert queued(aws_log) == 1
    assert lambda_endpoint.requests == []


class LambdaContext:
    """The part of Lambda's context object the drain loop reads: the time left."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self._end - time.monotonic()) * 1000)


def test_the_wake_alone_gets_writes_integrated(
    monkeypatch: pytest.MonkeyPatch, aws_log: AwsLog, lambda_endpoint: LambdaEndpoint
) -> None:
    """No event source mapping: the only thing that runs the sequencer is the writer's wake. The
    stand-in, after its 202, does what Lambda does with an accepted Event invoke: it hands the
    payload it received, decoded, to the sequencer's handler, whose drain loop empties the queue;
    the waiting writer gets its 201 from that batch."""
    summaries: list[dict[str, Any]] = []
    drained = threading.Event()

    def run_sequencer() -> None:
        event = json.loads(lambda_endpoint.requests[-1].body)
        try:
            summaries.append(sequence_lambda.handler(event, LambdaContext(60)))
        finally:
            drained.set()

    lambda_endpoint.on_invoke = run_sequencer
    deploy(
        monkeypatch,
        aws_log,
        lambda_endpoint.url,
        STELAE_WAIT_SECONDS="15",
        STELAE_POLL_AFTER_SECONDS="0.3",
        STELAE_BATCH_WINDOW_SECONDS="0.2",
        STELAE_WAKE_FUNCTION=SEQUENCER,
    )
    answer = post(4)
    assert answer["statusCode"] == 201, answer
    assert int(json.loads(answer["body"])["logIndex"]) == 0
    assert len(lambda_endpoint.requests) == 1
    assert drained.wait(15), "the sequencer's drain did not finish"
    (summary,) = summaries
    assert summary["stopped"] == "empty"
    assert (summary["batches"], summary["entries"], summary["failures"]) == (1, 1, 0)
    attrs = aws_log.sqs.get_queue_attributes(QueueUrl=aws_log.queue_url, AttributeNames=["All"])
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "0"
    assert attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "0", "deleted"
