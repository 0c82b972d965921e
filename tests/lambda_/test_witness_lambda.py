"""The witness Lambda (``stelae.lambda.witness.handler``) with real API Gateway v2 events, its
state in S3 on moto's server mode and its key in SSM, as the Terraform module deploys it: the
add-checkpoint statuses of https://c2sp.org/tlog-witness, the monitoring read, and two trees of
one size racing (S3's conditional writes let exactly one be cosigned)."""

from __future__ import annotations

import hashlib
import importlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from stelae.errors import StelaeError
from stelae.witness.aws import WitnessAwsConfig
from stelae.witness.identity import KEY_FILE, create_key
from tests.conftest import MotoEndpoint
from tests.support.witness import MemoryTree, log_list
from tests.support.witness_lambda import check_race, check_witness

witness_lambda = importlib.import_module("stelae.lambda.witness")


@pytest.fixture
def env(
    moto_server: MotoEndpoint, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[dict[str, str]]:
    name = f"w{uuid.uuid4().hex[:10]}"
    s3, ssm = moto_server.client("s3"), moto_server.client("ssm")
    s3.create_bucket(Bucket=name)  # type: ignore[attr-defined]
    listed = log_list((MemoryTree().signer.vkey, 86400))
    s3.put_object(Bucket=name, Key=".state/witness/log-list", Body=listed)  # type: ignore[attr-defined]
    create_key(tmp_path, "witness.test/aws", "ed25519")
    key = (tmp_path / KEY_FILE).read_text()
    ssm.put_parameter(Name=f"/{name}/witness-key", Value=key, Type="SecureString")  # type: ignore[attr-defined]
    values = {
        "AWS_ENDPOINT_URL": moto_server.url,
        "STELAE_WITNESS_BUCKET": name,
        "STELAE_WITNESS_KEY_PARAM": f"/{name}/witness-key",
        "STELAE_WITNESS_LOG_LIST_SHA256": hashlib.sha256(listed).hexdigest(),
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    witness_lambda.witness.cache_clear()
    yield values
    witness_lambda.witness.cache_clear()


def test_the_witness_lambda_answers_as_the_spec_says(env: dict[str, str]) -> None:
    tree = MemoryTree().grow(5)
    verifier = witness_lambda.witness().signer.verifier
    check_witness(lambda e: witness_lambda.handler(e, None), verifier, tree)
    check_race(witness_lambda.witness(), tree)


def test_a_log_list_that_is_not_the_deployed_one_is_refused(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STELAE_WITNESS_LOG_LIST_SHA256", "0" * 64)
    with pytest.raises(StelaeError, match="SHA-256"):
        witness_lambda.witness()
    monkeypatch.setenv("STELAE_WITNESS_VKEY", MemoryTree().signer.vkey)
    cfg = WitnessAwsConfig.from_env()
    with pytest.raises(StelaeError, match="does not match"):
        cfg.signer(boto3.client("ssm"))
