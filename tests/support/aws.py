"""A log's AWS resources in moto (server mode, real boto3 clients), as the Lambda handlers find
them: a bucket, a queue, the log's signing key in an SSM SecureString, and the environment the
Terraform stack gives the functions (terraform/README.md)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stelae.tiles.notekeys import Ed25519NoteSigner
from tests.conftest import MotoEndpoint


@dataclass(frozen=True)
class AwsLog:
    """One log's resources, each named after ``name`` (unique per test: moto is shared)."""

    moto: MotoEndpoint
    name: str
    signer: Ed25519NoteSigner
    queue_url: str
    parameter: str
    s3: Any  # boto3 clients are untyped
    sqs: Any

    @property
    def bucket(self) -> str:
        return self.name

    def env(self, **extra: str) -> dict[str, str]:
        """The functions' environment, plus *extra* (a test's own STELAE_* settings)."""
        return {
            "AWS_ENDPOINT_URL": self.moto.url,
            "STELAE_BUCKET": self.name,
            "STELAE_QUEUE_URL": self.queue_url,
            "STELAE_VKEY": self.signer.vkey,
            "STELAE_SIGNING_KEY_PARAM": self.parameter,
            **extra,
        }


def create_aws_log(moto: MotoEndpoint, queue_attributes: Mapping[str, str] | None = None) -> AwsLog:
    """A fresh bucket, queue (with *queue_attributes*) and signing-key parameter in *moto*."""
    name = f"t{uuid.uuid4().hex[:10]}"
    signer = Ed25519NoteSigner.generate(f"{name}.log.example")
    s3: Any = moto.client("s3")
    sqs: Any = moto.client("sqs")
    ssm: Any = moto.client("ssm")
    s3.create_bucket(Bucket=name)
    queue_url = sqs.create_queue(QueueName=name, Attributes=dict(queue_attributes or {}))[
        "QueueUrl"
    ]
    parameter = f"/{name}/signing-key"
    ssm.put_parameter(Name=parameter, Value=signer.skey, Type="SecureString")
    return AwsLog(moto, name, signer, queue_url, parameter, s3, sqs)
