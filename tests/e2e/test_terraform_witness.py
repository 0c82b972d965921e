"""The module's witnessing pieces (terraform/modules/stelae/witness.tf): validated, planned, and
applied for real against moto's server mode, then the deployed witness function driven with API
Gateway v2 events under the configuration Terraform gave it.

One apply serves every check. It is targeted at the witness's resources and the sequencer's
policy object (with what they depend on: the bucket, roles, log group), because the rest of the
stack is applied and checked by tests/e2e/test_terraform.py, and its SQS queues alone cost the
provider's ~25 s waits each. The sequencer's environment is checked in the plan instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stelae.witness.identity import KEY_FILE, create_key
from tests.conftest import MotoEndpoint
from tests.e2e.test_terraform import (
    TERRAFORM,
    TERRAFORM_DIR,
    TF_COPY_IGNORE,
    _terraform_env,
    as_list,
    assert_no_wildcard_actions,
    make_vkey,
    moto_provider,
    statements,
    terraform,
    terraform_init,
    tiny_zip,
)
from tests.support.witness import MemoryTree, log_list
from tests.support.witness_lambda import check_race, check_witness

pytestmark = pytest.mark.skipif(
    TERRAFORM is None, reason="terraform is not on PATH; install Terraform >= 1.5 to run these"
)

witness_lambda = importlib.import_module("stelae.lambda.witness")

TARGETS = [
    "aws_s3_object.witness_policy",
    "aws_s3_object.witness_log_list",
    "aws_lambda_function.witness",
    "aws_apigatewayv2_route.witness",
    "aws_apigatewayv2_stage.witness",
    "aws_lambda_permission.witness",
]


def _root(tmp: Path, moto: MotoEndpoint, name: str, policy: bytes, logs: bytes) -> Path:
    """A root module (Terraform's JSON syntax) that deploys the module with both pieces on."""
    modules = tmp / "terraform"
    shutil.copytree(TERRAFORM_DIR, modules, ignore=shutil.ignore_patterns(*TF_COPY_IGNORE))
    root = tmp / "root"
    root.mkdir()
    services = ["apigatewayv2", "cloudfront", "cloudwatch", "iam", "lambda", "logs", "s3"]
    services += ["ssm", "sqs", "sts"]
    config = {
        "provider": moto_provider(moto.url, moto.region, services),
        "module": {
            "stelae": {
                "source": str(modules / "modules" / "stelae"),
                "name": name,
                "write_lambda_zip": str(tiny_zip(tmp / "lambda.zip")),
                "verifier_key": make_vkey(f"{name}.example/log"),
                "bucket_force_destroy": True,
                "create_cloudfront_policies": False,
                "wait_for_cloudfront_deployment": False,
                "create_dlq_redrive_allow_policy": False,
                "deny_insecure_transport": False,
                "witness_policy": policy.decode(),
                "witness_timeout_seconds": 5,
                "witness_enabled": True,
                "witness_log_list": logs.decode(),
            }
        },
    }
    (root / "main.tf.json").write_text(json.dumps(config, indent=1))
    return root


class Applied:
    def __init__(self, root: Path, env: dict[str, str], name: str, policy: bytes, logs: bytes):
        self.root, self.env, self.name, self.policy, self.logs = root, env, name, policy, logs

    def run(self, *args: str) -> str:
        return terraform(*args, cwd=self.root, env=self.env, timeout=300).stdout


@pytest.fixture(scope="module")
def applied(
    moto_server: MotoEndpoint, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Applied]:
    tmp = tmp_path_factory.mktemp("witness-apply")
    env = _terraform_env(tmp)
    name = f"stelae-w{uuid.uuid4().hex[:8]}"
    vkey = MemoryTree().signer.vkey
    witness = make_vkey("w1.example")
    policy = f"log {vkey}\nwitness W1 {witness} https://w1.example\nquorum W1\n".encode()
    logs = log_list((vkey, 86400))
    deployment = Applied(_root(tmp, moto_server, name, policy, logs), env, name, policy, logs)
    terraform_init(deployment.root, env)
    # One plan, saved and applied: the tests read it too (its configuration section is the whole
    # module's, its changes the targeted resources').
    targets = [f"-target=module.stelae.{t}" for t in TARGETS]
    deployment.run("plan", "-input=false", "-out=plan.bin", *targets)
    try:
        deployment.run("apply", "-input=false", "plan.bin")
        yield deployment
    finally:
        _remove(moto_server, name)


def _remove(moto: MotoEndpoint, name: str) -> None:
    """Leave nothing behind in the shared moto server. With boto3 rather than `terraform
    destroy`, which under a loaded machine took longer than everything else here; the full
    stack's destroy is tested by tests/e2e/test_terraform.py."""
    s3, lam, iam = (moto.client(s) for s in ("s3", "lambda", "iam"))
    apigw, logs = moto.client("apigatewayv2"), moto.client("logs")
    for bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]:  # type: ignore[attr-defined]
        if bucket.startswith(f"{name}-tlog-"):
            for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):  # type: ignore[attr-defined]
                s3.delete_object(Bucket=bucket, Key=obj["Key"])  # type: ignore[attr-defined]
            s3.delete_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    with contextlib.suppress(Exception):  # absent when the apply failed before creating it
        lam.delete_function(FunctionName=f"{name}-witness")  # type: ignore[attr-defined]
    for api in apigw.get_apis()["Items"]:  # type: ignore[attr-defined]
        if api["Name"] == f"{name}-witness":
            apigw.delete_api(ApiId=api["ApiId"])  # type: ignore[attr-defined]
    with contextlib.suppress(Exception):
        iam.delete_role_policy(RoleName=f"{name}-witness", PolicyName="stelae-witness")  # type: ignore[attr-defined]
        iam.delete_role(RoleName=f"{name}-witness")  # type: ignore[attr-defined]
    with contextlib.suppress(Exception):
        logs.delete_log_group(logGroupName=f"/aws/lambda/{name}-witness")  # type: ignore[attr-defined]


def test_witness_variables_are_typed_and_described() -> None:
    tf = TERRAFORM_DIR / "modules" / "stelae" / "witness_variables.tf"
    blocks = re.findall(r'^variable "([^"]+)" \{\n(.*?)^\}', tf.read_text(), re.M | re.S)
    assert len(blocks) >= 10
    for name, body in blocks:
        assert re.search(r"^\s+type\s+=", body, re.M), f"variable {name} has no type"
        assert re.search(r'^\s+description\s+=\s+"\S', body, re.M), f"{name} has no description"


def test_the_sequencer_is_planned_with_the_policy(applied: Applied) -> None:
    """The policy object is planned with the policy's text, and the sequencer's environment
    (unknown until the bucket and queue exist, so read as the configuration's references)
    takes the variables that name it."""
    plan = json.loads(applied.run("show", "-json", "plan.bin"))
    changes = {r["address"]: r["change"]["after"] for r in plan["resource_changes"]}
    policy = changes["module.stelae.aws_s3_object.witness_policy[0]"]
    assert (policy["key"], policy["content"]) == (
        ".state/config/witness-policy",
        applied.policy.decode(),
    )
    module = plan["configuration"]["root_module"]["module_calls"]["stelae"]["module"]
    resources = {r["address"]: r for r in module["resources"]}
    env = resources["aws_lambda_function.sequencer"]["expressions"]["environment"][0]
    assert "local.witness_policy_environment" in env["variables"]["references"]
    witness = changes["module.stelae.aws_lambda_function.witness[0]"]
    assert witness["handler"] == "stelae.lambda.witness.handler"


def test_applied_witness_is_least_privilege_and_answers(
    applied: Applied, moto_server: MotoEndpoint, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    name = applied.name
    lam, iam, s3 = (moto_server.client(s) for s in ("lambda", "iam", "s3"))
    config = lam.get_function_configuration(FunctionName=f"{name}-witness")  # type: ignore[attr-defined]
    assert config["Handler"] == "stelae.lambda.witness.handler"
    env: dict[str, str] = config["Environment"]["Variables"]
    bucket = env["STELAE_WITNESS_BUCKET"]
    assert env["STELAE_WITNESS_PREFIX"] == ".state/witness/"
    assert env["STELAE_WITNESS_LOG_LIST_SHA256"] == hashlib.sha256(applied.logs).hexdigest()
    assert env["STELAE_WITNESS_KEY_PARAM"] == f"/{name}/witness-key"

    def body(key: str) -> bytes:
        data: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()  # type: ignore[attr-defined]
        return data

    assert body(".state/witness/log-list") == applied.logs
    assert body(".state/config/witness-policy") == applied.policy

    role = iam.get_role_policy(RoleName=f"{name}-witness", PolicyName="stelae-witness")  # type: ignore[attr-defined]
    _check_role(role, bucket, name)
    _check_api(moto_server, name, config["FunctionArn"])

    # The operator stores the key; Terraform never created the parameter.
    ssm = moto_server.client("ssm")
    assert not ssm.describe_parameters()["Parameters"] or all(  # type: ignore[attr-defined]
        p["Name"] != env["STELAE_WITNESS_KEY_PARAM"]
        for p in ssm.describe_parameters()["Parameters"]  # type: ignore[attr-defined]
    )
    create_key(tmp_path, "witness.test/deployed", "ed25519")
    ssm.put_parameter(  # type: ignore[attr-defined]
        Name=env["STELAE_WITNESS_KEY_PARAM"],
        Value=(tmp_path / KEY_FILE).read_text(),
        Type="SecureString",
    )
    for k, v in {**env, "AWS_ENDPOINT_URL": moto_server.url}.items():
        monkeypatch.setenv(k, v)
    witness_lambda.witness.cache_clear()
    try:
        tree = MemoryTree().grow(5)
        verifier = witness_lambda.witness().signer.verifier
        check_witness(lambda e: witness_lambda.handler(e, None), verifier, tree)
        check_race(witness_lambda.witness(), tree)
    finally:
        witness_lambda.witness.cache_clear()


def _check_role(policy: dict[str, Any], bucket: str, name: str) -> None:
    """Its own prefix of the bucket, its log group and its key parameter: nothing else."""
    stmts = statements(policy["PolicyDocument"])
    assert_no_wildcard_actions("witness role", stmts)
    by_sid = {s["Sid"]: s for s in stmts}
    prefix = f"arn:aws:s3:::{bucket}/.state/witness/"
    assert as_list(by_sid["ReadWitnessState"]["Resource"]) == [prefix + "*"]
    assert as_list(by_sid["WriteWitnessRecords"]["Resource"]) == [prefix + "logs/*"]
    assert as_list(by_sid["WriteWitnessRecords"]["Action"]) == ["s3:PutObject"]
    listing = by_sid["ListWitnessState"]
    assert as_list(listing["Resource"]) == [f"arn:aws:s3:::{bucket}"]
    assert "Condition" not in listing  # an s3:prefix condition would not apply to GetObject
    key = as_list(by_sid["WitnessKey"]["Resource"])
    assert len(key) == 1 and key[0].endswith(f":parameter/{name}/witness-key"), key
    assert set(by_sid) == {
        "Logs",
        "ReadWitnessState",
        "WriteWitnessRecords",
        "ListWitnessState",
        "WitnessKey",
    }
    assert all(r.startswith("arn:aws:logs:") for r in as_list(by_sid["Logs"]["Resource"]))


def _check_api(moto: MotoEndpoint, name: str, function_arn: str) -> None:
    apigw = moto.client("apigatewayv2")
    apis = [a for a in apigw.get_apis()["Items"] if a["Name"] == f"{name}-witness"]  # type: ignore[attr-defined]
    assert len(apis) == 1
    api_id = apis[0]["ApiId"]
    routes = {r["RouteKey"] for r in apigw.get_routes(ApiId=api_id)["Items"]}  # type: ignore[attr-defined]
    assert routes == {"POST /add-checkpoint", "GET /{origin_hash}/checkpoint"}
    integrations = apigw.get_integrations(ApiId=api_id)["Items"]  # type: ignore[attr-defined]
    assert [i["PayloadFormatVersion"] for i in integrations] == ["2.0"]
    assert function_arn in integrations[0]["IntegrationUri"]
