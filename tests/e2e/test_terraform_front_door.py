"""The module's write_front_door = "function_url" and its logging settings: the plan of the
real-AWS configuration, then the Function URL itself applied against moto's server mode.

moto stores Function URL configurations and resource policies, so the URL, its auth type, its
CORS and the public InvokeFunctionUrl grant are checked after a real apply (targeted at them and
what they depend on: the write function, its role and log group, the queue and the bucket;
CloudFront, the sequencer and the alarms are the default apply's business, in test_terraform.py).
moto does not keep a function's LoggingConfig, so the logging settings are checked in the plan.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MotoEndpoint
from tests.e2e.test_terraform import (
    TERRAFORM_DIR,
    TF_COPY_IGNORE,
    _terraform_env,
    make_vkey,
    needs_terraform,
    statements,
    terraform,
    terraform_init,
    tiny_zip,
    walk_modules,
)


@pytest.fixture(scope="module")
def tf_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return _terraform_env(tmp_path_factory.mktemp("tfenv"))


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory, tf_env: dict[str, str]) -> Path:
    dest = tmp_path_factory.mktemp("tf") / "terraform"
    shutil.copytree(TERRAFORM_DIR, dest, ignore=shutil.ignore_patterns(*TF_COPY_IGNORE))
    terraform_init(dest / "examples" / "basic", tf_env)
    return dest / "examples" / "basic"


def emulator_vars(moto: MotoEndpoint, tmp: Path, name: str) -> list[str]:
    return [
        f"-var=lambda_zip={tiny_zip(tmp / 'lambda.zip')}",
        f"-var=aws_endpoint_url={moto.url}",
        "-var=aws_access_key_id=testing",
        "-var=aws_secret_access_key=testing",
        f"-var=name={name}",
        f"-var=verifier_key={make_vkey(f'example.org/{name}')}",
        "-var=write_front_door=function_url",
    ]


@pytest.fixture(scope="module")
def function_url_plan(
    example: Path,
    tf_env: dict[str, str],
    moto_server: MotoEndpoint,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """The example's plan as on real AWS (emulator_compatible false), Function URL in front."""
    tmp = tmp_path_factory.mktemp("plan")
    plan_file = tmp / "fu.tfplan"
    terraform(
        "plan", "-input=false", "-refresh=false", f"-out={plan_file}",
        *emulator_vars(moto_server, tmp, "stelae-fu"),
        cwd=example, env=tf_env,
    )  # fmt: skip
    shown = terraform("show", "-json", str(plan_file), cwd=example, env=tf_env)
    plan: dict[str, Any] = json.loads(shown.stdout)
    return plan


def planned(plan: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [r for r in walk_modules(plan["planned_values"]["root_module"]) if r["type"] == rtype]


@needs_terraform
def test_plan_function_url_replaces_the_http_api(function_url_plan: dict[str, Any]) -> None:
    (url,) = planned(function_url_plan, "aws_lambda_function_url")
    assert url["values"]["authorization_type"] == "NONE"
    assert url["values"]["cors"][0]["allow_methods"] == ["POST"]
    (grant,) = planned(function_url_plan, "aws_lambda_permission")
    assert grant["values"]["action"] == "lambda:InvokeFunctionUrl"
    assert grant["values"]["principal"] == "*"
    assert grant["values"]["function_url_auth_type"] == "NONE"
    types = {r["type"] for r in walk_modules(function_url_plan["planned_values"]["root_module"])}
    assert not {t for t in types if t.startswith("aws_apigatewayv2_")}
    groups = [g["values"]["name"] for g in planned(function_url_plan, "aws_cloudwatch_log_group")]
    assert not [g for g in groups if g.startswith("/aws/apigateway/")], groups


@needs_terraform
def test_plan_functions_log_nothing_below_warn(function_url_plan: dict[str, Any]) -> None:
    """JSON logs at WARN for both functions, so Lambda's INFO-level START/END/REPORT lines are
    not ingested; each function logs to the group the module creates with its retention."""
    functions = {
        f["values"]["function_name"]: f for f in planned(function_url_plan, "aws_lambda_function")
    }
    for name in ("stelae-fu-write", "stelae-fu-sequencer"):
        (logging_config,) = functions[name]["values"]["logging_config"]
        assert logging_config["log_format"] == "JSON"
        assert logging_config["system_log_level"] == "WARN"
        assert logging_config["application_log_level"] == "WARN"
        assert logging_config["log_group"] == f"/aws/lambda/{name}"
    # The first look (STELAE_POLL_AFTER_SECONDS): the batching window plus the margin for the
    # sequencer's integration (the environment's values are not known until the queue exists).
    module = function_url_plan["configuration"]["root_module"]["module_calls"]["stelae"]["module"]
    (write,) = [r for r in module["resources"] if r["address"] == "aws_lambda_function.write"]
    refs = write["expressions"]["environment"][0]["variables"]["references"]
    assert {"var.sequencer_batching_window_seconds", "var.write_poll_margin_seconds"} <= set(refs)
    assert module["variables"]["write_poll_margin_seconds"]["default"] == 0.5


def remove(moto: MotoEndpoint, name: str) -> None:
    """What the targeted apply created, deleted with boto3 (Terraform's destroy would wait on
    the provider's SQS and IAM waiters for about a minute more)."""
    clients: dict[str, Any] = {s: moto.client(s) for s in ("lambda", "sqs", "s3", "iam", "logs")}
    lam, sqs, s3, iam, logs = clients.values()
    lam.delete_function(FunctionName=f"{name}-write")  # its URL config and policy go with it
    for queue in (f"{name}-submissions", f"{name}-submissions-dlq"):
        sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=queue)["QueueUrl"])
    bucket = next(b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith(name))
    for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=obj["Key"])
    s3.delete_bucket(Bucket=bucket)
    for policy in iam.list_role_policies(RoleName=f"{name}-write")["PolicyNames"]:
        iam.delete_role_policy(RoleName=f"{name}-write", PolicyName=policy)
    iam.delete_role(RoleName=f"{name}-write")
    logs.delete_log_group(logGroupName=f"/aws/lambda/{name}-write")


@needs_terraform
@pytest.mark.slow
def test_function_url_applied_against_moto(
    example: Path,
    tf_env: dict[str, str],
    moto_server: MotoEndpoint,
    tmp_path: Path,
) -> None:
    """The Function URL, its grant and what they need, applied (targeted) against moto."""
    name = f"stelae-u{uuid.uuid4().hex[:8]}"
    args = [
        *emulator_vars(moto_server, tmp_path, name),
        "-var=emulator_compatible=true",
        f"-state={tmp_path / 'fu.tfstate'}",
        "-target=module.stelae.aws_lambda_function_url.write",
        "-target=module.stelae.aws_lambda_permission.function_url",
    ]
    try:
        terraform(
            "apply", "-auto-approve", "-input=false", *args, cwd=example, env=tf_env, timeout=300
        )
        lam: Any = moto_server.client("lambda")
        config = lam.get_function_url_config(FunctionName=f"{name}-write")
        assert config["AuthType"] == "NONE"
        assert config["Cors"]["AllowMethods"] == ["POST"]
        assert config["Cors"]["AllowOrigins"] == ["*"]
        # moto adds a grant of its own for an auth-NONE URL (FunctionURLAllowPublicAccess) and
        # stores the auth type beside the statement, not as a condition: only ours is checked.
        grants = statements(lam.get_policy(FunctionName=f"{name}-write")["Policy"])
        (grant,) = [g for g in grants if g["Sid"] == "AllowPublicFunctionUrl"]
        assert grant["Action"] == "lambda:InvokeFunctionUrl" and grant["Principal"] == "*"
        assert "NONE" in json.dumps(grant)
        assert all(g["Action"] == "lambda:InvokeFunctionUrl" for g in grants), grants
        env = lam.get_function(FunctionName=f"{name}-write")["Configuration"]["Environment"]
        assert float(env["Variables"]["STELAE_POLL_AFTER_SECONDS"]) == 1.5
    finally:
        remove(moto_server, name)
