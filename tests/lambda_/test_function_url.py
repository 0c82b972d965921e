"""The write handler behind a Lambda Function URL (the module's write_front_door =
"function_url"): the same payload format 2.0 as the HTTP API, with a plain-text body, route
``$default``, and every path and method reaching the function (no API Gateway routes in front).
Against moto server mode, the test playing the event source mapping as in test_lambda.py."""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

from benchmarks.lambda_events import function_url_event
from stelae.tiles.hashing import leaf_hash
from stelae.tiles.proof import verify_inclusion
from tests.lambda_.test_lambda import _request, deployment, pump, sequence_lambda, write_lambda

__all__ = ["deployment"]  # the fixture, used by name


def test_a_write_through_a_function_url_is_answered_201_with_a_proof(
    deployment: dict[str, Any],
) -> None:
    request, _ = _request(40)
    result: dict[str, Any] = {}

    def post() -> None:
        event = function_url_event("/api/v2/log/entries", request)
        assert event["isBase64Encoded"] is False and event["routeKey"] == "$default"
        result.update(write_lambda.handler(event, None))

    writer = threading.Thread(target=post)
    writer.start()
    while writer.is_alive():
        pump(deployment)
        writer.join(timeout=0.05)
    assert result["statusCode"] == 201, result
    body = json.loads(result["body"])
    proof = body["inclusionProof"]
    leaf = base64.b64decode(body["canonicalizedBody"])
    verify_inclusion(
        int(body["logIndex"]),
        int(proof["treeSize"]),
        leaf_hash(leaf),
        [base64.b64decode(h) for h in proof["hashes"]],
        base64.b64decode(proof["rootHash"]),
    )


def test_other_paths_and_methods_are_answered_by_the_function_not_queued(
    deployment: dict[str, Any],
) -> None:
    """Without API Gateway's two routes in front, anything reaches the handler: it answers 404
    or 405 (never a 5xx) and queues nothing."""
    request, _ = _request(41)
    cases = [
        (function_url_event("/", None, method="GET"), 404),
        (function_url_event("/api/v2/log/entries/extra", request), 404),
        (function_url_event("/api/v2/log/entries", None, method="GET"), 405),
        (function_url_event("/api/v2/log/entries", None, method="DELETE"), 405),
        (function_url_event("/api/v2/log/entries", "{", content_type="text/plain"), 415),
    ]
    for event, status in cases:
        got = write_lambda.handler(event, None)
        assert got["statusCode"] == status, (event["requestContext"]["http"], got)
    queued = deployment["sqs"].receive_message(QueueUrl=deployment["queue_url"], WaitTimeSeconds=0)
    assert not queued.get("Messages")
    assert sequence_lambda.sequencer.cache_info().currsize == 0  # nothing to sequence
