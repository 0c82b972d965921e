"""Sequencer Lambda: an SQS batch → the same sequencer engine as ``stelae serve``."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3

from stelae.sequencer.aws import AwsConfig
from stelae.sequencer.engine import Sequencer
from stelae.sequencer.sqs import integrate_sqs_batch


@cache
def sequencer() -> Sequencer:
    """Built once per container; the key is read from Parameter Store, never the environment,
    and the witness policy (if any) from the bucket (docs/witness.md, "On AWS")."""
    cfg = AwsConfig.from_env()
    store = cfg.store(cfg.s3_client())
    ssm = boto3.client("ssm")
    return cfg.sequencer(cfg.signer(ssm), store, cfg.cosigner(store), cfg.mldsa_signer(ssm))


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return integrate_sqs_batch(sequencer(), event)
