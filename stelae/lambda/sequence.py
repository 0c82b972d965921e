"""Sequencer Lambda: the same sequencer engine as ``stelae serve``, woken one of three ways.

- an SQS event source mapping's batch (``"Records"``): integrated as delivered;
- a writer's wake (``{"stelae": "wake"}``) or the EventBridge schedule's sweep: the function
  drains the queue itself (``stelae/sequencer/drain.py``; docs/sequencing.md, "Waking the
  sequencer on AWS"). A sweep that finds the queue empty returns before the configuration, the
  engine or the key is loaded: that is most sweeps, and each is usually a cold start.

Any other event is refused with a :class:`~stelae.tiles.errors.FormatError`, before anything is
read or written.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3

from stelae.sequencer.drain import (
    INTEGRATION_SECONDS,
    Drain,
    DrainSummary,
    Trigger,
    lambda_budget,
    queue_is_empty,
    trigger_of,
)

if TYPE_CHECKING:
    from stelae.sequencer.aws import AwsConfig
    from stelae.sequencer.engine import Sequencer


def config() -> AwsConfig:
    # Imported on first use: the configuration module imports the engine, which an idle sweep
    # never needs.
    from stelae.sequencer.aws import AwsConfig  # noqa: PLC0415

    return AwsConfig.from_env()


@cache
def sequencer() -> Sequencer:
    """Built once per container; the key is read from Parameter Store, never the environment,
    and the witness policy (if any) from the bucket (docs/witness.md, "On AWS")."""
    cfg = config()
    store = cfg.store(cfg.s3_client())
    ssm = boto3.client("ssm")
    return cfg.sequencer(cfg.signer(ssm), store, cfg.cosigner(store), cfg.mldsa_signer(ssm))


@cache
def sqs() -> Any:
    return boto3.client("sqs")


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    trigger = trigger_of(event)
    if trigger is Trigger.RECORDS:
        from stelae.sequencer.sqs import integrate_sqs_batch  # noqa: PLC0415 - see config()

        return integrate_sqs_batch(sequencer(), event)
    budget = lambda_budget(context)
    # The queue's URL straight from the environment: an empty sweep reads nothing else. Unset,
    # it falls through to the configuration, which names what is missing.
    queue_url = os.environ.get("STELAE_QUEUE_URL", "")
    if trigger is Trigger.SWEEP and queue_url and queue_is_empty(sqs(), queue_url):
        return DrainSummary("idle").to_dict()
    return drain(config()).run(budget).to_dict()


def drain(cfg: AwsConfig) -> Drain:
    """The drain loop on the configured queue; an integration may wait for witnesses too."""
    witnesses = 0.0 if cfg.witnesses is None else cfg.witnesses.timeout_seconds
    return Drain(
        sqs(),
        cfg.queue_url,
        sequencer(),
        batch_size=cfg.batch_size,
        window_seconds=cfg.batch_window_seconds,
        integration_seconds=INTEGRATION_SECONDS + witnesses,
    )
