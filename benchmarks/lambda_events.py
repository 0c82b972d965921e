"""The events AWS hands the Lambda handlers, built as AWS delivers them.

Shared by the cost model (:mod:`benchmarks.aws_cost`) and the handler tests
(``tests/lambda_/test_lambda.py``), which both invoke the real handlers without a Lambda runtime:

- :func:`apigw_event`: an API Gateway HTTP API payload-format-2.0 request (body base64, as API
  Gateway sends a JSON body to a Lambda proxy integration);
- :func:`function_url_event`: the same request through a Lambda Function URL, which uses the
  same payload format 2.0 but with route ``$default``, the URL's own domain, and a text body
  (JSON) not base64-encoded
  (https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html#urls-payloads);
- :func:`sqs_event`: what the SQS event source mapping passes the sequencer for the messages it
  received (``receive_message`` output with ``AttributeNames=["All"]``);
- :func:`wake_event` and :func:`scheduled_event`: what starts the sequencer's drain loop with
  ``sequencer_trigger = "writer_invoke"`` — a writer's asynchronous invoke, and the EventBridge
  rule's sweep (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-run-lambda-schedule.html).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from stelae.sequencer.aws import WAKE_PAYLOAD

ACCOUNT = "123456789012"
REGION = "us-east-1"
API_HOST = "abc.execute-api.us-east-1.amazonaws.com"


def http_api_event(
    method: str,
    path: str,
    raw: bytes,
    content_type: str,
    *,
    host: str = API_HOST,
    base64_body: bool = True,
) -> dict[str, Any]:
    """``method path`` with the body ``raw`` through an API Gateway HTTP API on ``host``, as a
    Lambda proxy integration (payload format 2.0) receives it: base64 (a JSON body) or as text
    (``base64_body=False``: a ``text/plain`` body, as witness clients send)."""
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "content-type": content_type,
            "content-length": str(len(raw)),
            "host": host,
        },
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": host.partition(".")[0],
            "domainName": host,
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "sigstore-python/3.0",
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "timeEpoch": int(time.time() * 1000),
        },
        "body": base64.b64encode(raw).decode() if base64_body else raw.decode(),
        "isBase64Encoded": base64_body,
    }


def apigw_event(path: str, body: object, content_type: str = "application/json") -> dict[str, Any]:
    """``POST path`` with ``body`` serialized as JSON."""
    return http_api_event("POST", path, json.dumps(body).encode(), content_type)


def function_url_event(
    path: str, body: object = None, method: str = "POST", content_type: str = "application/json"
) -> dict[str, Any]:
    """``method path`` through a Function URL; ``body`` (if any) serialized as JSON."""
    raw = "" if body is None else json.dumps(body)
    url_id = "abcdefghijklmnopqrstuvwxyz012345"
    domain = f"{url_id}.lambda-url.{REGION}.on.aws"
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": content_type, "content-length": str(len(raw)), "host": domain},
        "requestContext": {
            "accountId": "anonymous",
            "apiId": url_id,
            "domainName": domain,
            "domainPrefix": url_id,
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "sigstore-python/3.0",
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
        },
        "body": raw,
        "isBase64Encoded": False,
    }


def sqs_event(messages: Iterable[Mapping[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The sequencer's event for SQS ``messages`` received from the queue ``queue_arn``."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def wake_event() -> dict[str, Any]:
    """A writer's wake: the payload of its asynchronous Invoke, decoded as Lambda decodes it."""
    event: dict[str, Any] = json.loads(WAKE_PAYLOAD)
    return event


def scheduled_event(rule: str = "stelae-sequencer-sweep") -> dict[str, Any]:
    """The sweep: an EventBridge rule's Scheduled Event invoking the sequencer."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule}"],
        "detail": {},
    }
