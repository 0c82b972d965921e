"""Witness Lambda: API Gateway HTTP API (2.0) → the same tlog-witness as ``stelae witness``,
its per-log state in S3 under conditional writes (docs/witness.md, "On AWS")."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3

from stelae.witness.aws import WitnessAwsConfig
from stelae.witness.gateway import handle_event
from stelae.witness.protocol import Witness


@cache
def witness() -> Witness:
    """Built once per container (cold start): the key from Parameter Store, the log list from
    the bucket."""
    cfg = WitnessAwsConfig.from_env()
    return cfg.witness(boto3.client("s3"), boto3.client("ssm"))


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return handle_event(witness(), event)
