"""Write Lambda: API Gateway HTTP API (2.0) → the write service → SQS, waiting for integration.

With ``STELAE_WAKE_FUNCTION`` set, each write also wakes the sequencer (an asynchronous Invoke)
once its entry is queued: stelae/sequencer/sqs.py, ``SqsSubmitter``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3

from stelae.api.gateway import handle_event
from stelae.api.identity import LogIdentity
from stelae.api.service import ServiceConfig, WriteService
from stelae.api.wiring import write_service
from stelae.sequencer.aws import AwsConfig
from stelae.sequencer.sqs import SqsSubmitter


@cache
def service() -> WriteService:
    """Built once per container (cold start), from the environment."""
    cfg = AwsConfig.from_env()
    store = cfg.store(cfg.s3_client())
    submitter = SqsSubmitter(
        boto3.client("sqs"),
        cfg.queue_url,
        store,
        LogIdentity.from_vkey(cfg.vkey).verifier,
        first_poll=cfg.poll_after_seconds,
        # STELAE_WAKE_FUNCTION (sequencer_trigger = "writer_invoke"): None without it, and then no
        # Invoke at all; the event source mapping wakes the sequencer.
        wake=cfg.waker(),
    )
    return write_service(submitter, store, cfg.vkey, ServiceConfig(wait_seconds=cfg.wait_seconds))


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return handle_event(service(), event)
