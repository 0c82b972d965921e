"""The AWS deployment in terraform/: format, validate, plan-time security properties, a real
``terraform apply`` of the example against moto's server mode, and the Lambda package builder.

Terraform runs in a temporary copy of terraform/, so no state, lock file or .terraform directory is
left in the work tree. Providers come from /opt/tf-plugins when it exists (offline init).

Where moto lacks an API, the example's ``emulator_compatible`` variable turns the matching feature
off (see terraform/README.md, "Testing against moto"); the plan-time checks run on the real-AWS
shape of the configuration, with every feature on.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.request
import uuid
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from stelae.tiles.mldsa import MLDSA44CosignatureSigner

REPO = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO / "terraform"
PLUGIN_DIR = Path("/opt/tf-plugins")
TERRAFORM = shutil.which("terraform")

needs_terraform = pytest.mark.skipif(
    TERRAFORM is None, reason="terraform is not on PATH; install Terraform >= 1.5 to run these"
)

# Terraform waits ~25 s for each SQS queue's attributes to settle (the provider's own waiter),
# so an apply takes about a minute even against moto.
APPLY_TIMEOUT = 300

# What a developer may have left in terraform/ that a test copy must not inherit.
TF_COPY_IGNORE = (".terraform", "*.tfstate*", ".terraform.lock.hcl", "*.tfvars", "*.tfvars.json",
                  "__pycache__")  # fmt: skip


# ---------------------------------------------------------------------------------------------
# helpers


def _terraform_env(tmp: Path) -> dict[str, str]:
    """A clean environment: no real AWS credentials or profile, no user CLI config."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "TF_")) and k != "CHECKPOINT_DISABLE"
    }
    cli_config = tmp / "terraformrc"
    cli_config.write_text("")
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        CHECKPOINT_DISABLE="1",
        TF_CLI_CONFIG_FILE=str(cli_config),
    )
    return env


def terraform(
    *args: str, cwd: Path, env: dict[str, str], timeout: int = 120
) -> subprocess.CompletedProcess[str]:
    assert TERRAFORM is not None
    result = subprocess.run(
        [TERRAFORM, *args, "-no-color"] if args[0] != "fmt" else [TERRAFORM, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"terraform {' '.join(args)} failed ({result.returncode}) in {cwd}:\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def terraform_init(cwd: Path, env: dict[str, str]) -> None:
    args = ["init", "-backend=false", "-input=false"]
    if PLUGIN_DIR.is_dir():
        args.append(f"-plugin-dir={PLUGIN_DIR}")
    terraform(*args, cwd=cwd, env=env)


def tiny_zip(path: Path) -> Path:
    """A stand-in deployment package: the module only needs a file to upload."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("stelae/__init__.py", "")
    return path


def walk_modules(module: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from module.get("resources", [])
    for child in module.get("child_modules", []):
        yield from walk_modules(child)


def statements(policy: str | dict[str, Any]) -> list[dict[str, Any]]:
    doc = json.loads(policy) if isinstance(policy, str) else policy
    found = doc["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# Key material as it could appear in an environment variable: PEM, a signed-note private key, or
# a long base64 run (an Ed25519 seed is 44 base64 characters).
def moto_provider(url: str, region: str, services: Iterable[str]) -> dict[str, Any]:
    """The AWS provider block (Terraform's JSON syntax) of a root module applied against moto:
    test credentials, no account or metadata lookups, path-style S3, every service at ``url``."""
    return {
        "aws": {
            "region": region,
            "access_key": "testing",
            "secret_key": "testing",
            "skip_credentials_validation": True,
            "skip_requesting_account_id": True,
            "skip_metadata_api_check": True,
            "s3_use_path_style": True,
            "endpoints": [{s: url for s in services}],
        }
    }


KEY_MATERIAL = re.compile(r"-----BEGIN|PRIVATE\+KEY|PRIVATE KEY|[A-Za-z0-9+/]{40,}={0,2}")
# The one long base64 run allowed: the public verifier key, <name>+<hash>+<base64(0x01||pub)>.
VKEY = re.compile(r"^[^+\s]+\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}$")


def assert_no_key_material(function: str, env: dict[str, str]) -> None:
    for name, value in env.items():
        if name == "STELAE_VKEY":
            assert VKEY.match(value), f"{function}: STELAE_VKEY is not a verifier key"
            assert base64.b64decode(value.split("+", 2)[2])[0] == 0x01, "an Ed25519 public key"
            continue
        assert not KEY_MATERIAL.search(value), f"{function}: {name} looks like key material"
        if re.search(r"KEY|SECRET|PARAM", name):
            assert value.startswith("arn:") or re.fullmatch(r"/[A-Za-z0-9_./-]+", value), (
                f"{function}: {name}={value!r} should name a parameter or ARN, nothing else"
            )


# The plan's optional ML-DSA-44 log key (docs/compatibility.md, "Post-quantum log signatures").
PLAN_MLDSA = MLDSA44CosignatureSigner.generate("example.org/stelae-plan")


def make_vkey(origin: str) -> str:
    """A fresh Ed25519 note verifier key (C2SP signed-note), as `stelae init` prints."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = b"\x01" + Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    key_hash = hashlib.sha256(origin.encode() + b"\n" + key).digest()[:4].hex()
    return f"{origin}+{key_hash}+{base64.b64encode(key).decode()}"


def assert_no_wildcard_actions(where: str, stmts: list[dict[str, Any]]) -> None:
    for stmt in stmts:
        actions = as_list(stmt.get("Action", stmt.get("actions", [])))
        assert actions, f"{where}: statement {stmt.get('Sid', stmt.get('sid'))} has no actions"
        assert "NotAction" not in stmt, f"{where}: NotAction grants everything else"
        for action in actions:
            assert "*" not in action, f"{where}: wildcard action {action!r}"


# ---------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def tf_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return _terraform_env(tmp_path_factory.mktemp("tfenv"))


@pytest.fixture(scope="module")
def tf_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """terraform/ copied without any .terraform directory or state a developer left there."""
    dest = tmp_path_factory.mktemp("tf") / "terraform"
    shutil.copytree(TERRAFORM_DIR, dest, ignore=shutil.ignore_patterns(*TF_COPY_IGNORE))
    return dest


@pytest.fixture(scope="module")
def example_dir(tf_copy: Path, tf_env: dict[str, str]) -> Path:
    example = tf_copy / "examples" / "basic"
    terraform_init(example, tf_env)
    return example


# ---------------------------------------------------------------------------------------------
# format and validate


@needs_terraform
def test_terraform_fmt(tf_env: dict[str, str]) -> None:
    # fmt -check never writes, so it runs on the work tree itself.
    terraform("fmt", "-check", "-recursive", "-diff", str(TERRAFORM_DIR), cwd=REPO, env=tf_env)


@needs_terraform
def test_validate_module(tf_copy: Path, tf_env: dict[str, str]) -> None:
    module = tf_copy / "modules" / "stelae"
    terraform_init(module, tf_env)
    out = terraform("validate", "-json", cwd=module, env=tf_env)
    report = json.loads(out.stdout)
    assert report["valid"], report
    assert report["warning_count"] == 0, report["diagnostics"]


@needs_terraform
def test_validate_example(example_dir: Path, tf_env: dict[str, str]) -> None:
    out = terraform("validate", "-json", cwd=example_dir, env=tf_env)
    report = json.loads(out.stdout)
    assert report["valid"], report
    assert report["warning_count"] == 0, report["diagnostics"]


def test_every_variable_is_typed_and_described() -> None:
    for tf in sorted(TERRAFORM_DIR.glob("**/variables.tf")):
        blocks = re.findall(r'^variable "([^"]+)" \{\n(.*?)^\}', tf.read_text(), re.M | re.S)
        assert blocks, f"{tf}: no variables found"
        for name, body in blocks:
            assert re.search(r"^\s+type\s+=", body, re.M), f"{tf}: variable {name} has no type"
            assert re.search(r'^\s+description\s+=\s+"\S', body, re.M), (
                f"{tf}: variable {name} has no description"
            )


# ---------------------------------------------------------------------------------------------
# plan-time security properties of the real-AWS configuration


@pytest.fixture(scope="module")
def real_aws_plan(
    example_dir: Path,
    tf_env: dict[str, str],
    moto_server: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """The plan of the example as it would be on real AWS (every feature on, emulator_compatible
    false). Only data sources (the caller identity) are read, from moto."""
    zip_path = tiny_zip(tmp_path_factory.mktemp("plan") / "lambda.zip")
    plan_file = example_dir / "real.tfplan"
    terraform(
        "plan",
        "-input=false",
        "-refresh=false",
        f"-out={plan_file}",
        f"-var=lambda_zip={zip_path}",
        f"-var=aws_endpoint_url={moto_server.url}",
        "-var=aws_access_key_id=testing",
        "-var=aws_secret_access_key=testing",
        "-var=name=stelae-plan",
        f"-var=verifier_key={make_vkey('example.org/stelae-plan')}",
        f"-var=mldsa_verifier_key={PLAN_MLDSA.vkey}",
        # Off by default (the moto apply checks that); on here, so its shape is checked too.
        "-var=api_access_log=true",
        cwd=example_dir,
        env=tf_env,
    )
    shown = terraform("show", "-json", str(plan_file), cwd=example_dir, env=tf_env)
    plan: dict[str, Any] = json.loads(shown.stdout)
    return plan


def planned(plan: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [r for r in walk_modules(plan["planned_values"]["root_module"]) if r["type"] == rtype]


def policy_documents(plan: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every aws_iam_policy_document's statements, whether read at plan time or deferred."""
    docs: dict[str, list[dict[str, Any]]] = {}
    for r in walk_modules(plan.get("prior_state", {}).get("values", {}).get("root_module", {})):
        if r["type"] == "aws_iam_policy_document":
            docs[r["address"]] = r["values"]["statement"]
    for rc in plan["resource_changes"]:
        if rc["type"] == "aws_iam_policy_document":
            docs[rc["address"]] = rc["change"]["after"]["statement"]
    return docs


@needs_terraform
def test_plan_bucket_is_private(real_aws_plan: dict[str, Any]) -> None:
    (pab,) = planned(real_aws_plan, "aws_s3_bucket_public_access_block")
    for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                 "restrict_public_buckets"):  # fmt: skip
        assert pab["values"][flag] is True, flag
    (ownership,) = planned(real_aws_plan, "aws_s3_bucket_ownership_controls")
    assert ownership["values"]["rule"][0]["object_ownership"] == "BucketOwnerEnforced"
    assert not planned(real_aws_plan, "aws_s3_bucket_acl"), "no ACLs: ownership is enforced"

    bucket = policy_documents(real_aws_plan)["module.stelae.data.aws_iam_policy_document.bucket"]
    by_sid = {s["sid"]: s for s in bucket}
    for stmt in bucket:
        if stmt["effect"] in (None, "Allow"):
            # Nobody but CloudFront, and only this distribution (checked fully after apply).
            assert stmt["principals"] == [
                {"type": "Service", "identifiers": ["cloudfront.amazonaws.com"]}
            ], stmt
            assert [c["variable"] for c in stmt["condition"]] == ["AWS:SourceArn"], stmt
    deny_state = by_sid["CloudFrontNeverReadsState"]
    assert deny_state["effect"] == "Deny" and deny_state["actions"] == ["s3:GetObject"]
    assert "DenyInsecureTransport" in by_sid


@needs_terraform
def test_plan_no_wildcard_actions(real_aws_plan: dict[str, Any]) -> None:
    docs = policy_documents(real_aws_plan)
    assert {a.rsplit(".", 1)[-1] for a in docs} >= {"bucket", "write", "sequencer", "lambda_assume"}
    for address, stmts in docs.items():
        assert_no_wildcard_actions(address, stmts)


@needs_terraform
def test_plan_never_holds_the_signing_key(real_aws_plan: dict[str, Any]) -> None:
    # Terraform only names the SecureString the operator creates: no parameter resource or data
    # source (either would read the key into the state), no secret, no generated key.
    types = {rc["type"] for rc in real_aws_plan["resource_changes"]}
    for forbidden in (
        "aws_ssm_parameter",
        "aws_secretsmanager_secret",
        "aws_secretsmanager_secret_version",
        "tls_private_key",
        "random_password",
    ):
        assert forbidden not in types
    config_types = {
        r["type"]
        for r in real_aws_plan["configuration"]["root_module"]["module_calls"]["stelae"]["module"][
            "resources"
        ]
    }
    assert "aws_ssm_parameter" not in config_types, "a data source would read the key"

    # Function environments are built only from names, URLs and the parameter's name.
    config = real_aws_plan["configuration"]["root_module"]["module_calls"]["stelae"]["module"]
    allowed = re.compile(
        r"^(var\.(write|sequencer)_environment|local\.common_environment|local\.signing_key_parameter"
        r"|var\.write_wait_seconds|var\.sequencer_batching_window_seconds"
        r"|var\.write_poll_margin_seconds"
        r"|var\.partial_tile_grace_seconds"  # a number of seconds
        r"|local\.mldsa_environment"  # the ML-DSA parameter's name and origin+keyid: no key
        r"|local\.witness_policy_environment|local\.witness_environment"  # names, digests
        r"|local\.wake_environment|local\.drain_environment)$"  # an ARN; batch size and window
    )
    functions = [r for r in config["resources"] if r["type"] == "aws_lambda_function"]
    assert len(functions) == 3  # write, sequencer, and the optional witness (count 0 here)
    for fn in functions:
        for ref in fn["expressions"]["environment"][0]["variables"]["references"]:
            assert allowed.match(ref), f"{fn['address']} environment uses {ref}"


@needs_terraform
def test_plan_names_the_ml_dsa_key_parameter_and_never_holds_the_key(
    real_aws_plan: dict[str, Any],
) -> None:
    """With mldsa_verifier_key the sequencer (only) gets the ML-DSA environment (the key's
    origin+keyid and its parameter's name: the values are unknown until apply, so the plan's
    expressions are checked) and may read that parameter; the key itself is nowhere in the plan."""
    config = real_aws_plan["configuration"]["root_module"]["module_calls"]["stelae"]["module"]
    env_refs = {
        r["address"]: r["expressions"]["environment"][0]["variables"]["references"]
        for r in config["resources"]
        if r["type"] == "aws_lambda_function"
    }
    assert "local.mldsa_environment" in env_refs["aws_lambda_function.sequencer"]
    assert "local.mldsa_environment" not in env_refs["aws_lambda_function.write"]
    docs = policy_documents(real_aws_plan)
    statements = docs["module.stelae.data.aws_iam_policy_document.sequencer"]
    (signing,) = [s for s in statements if s["sid"] == "SigningKey"]
    assert {r.rsplit(":parameter/", 1)[-1] for r in signing["resources"]} == {
        "stelae-plan/signing-key",
        "stelae-plan/mldsa-signing-key",
    }
    seed = PLAN_MLDSA.skey.rsplit("+", 1)[-1]
    assert seed not in json.dumps(real_aws_plan)


@needs_terraform
def test_plan_access_log_when_asked(real_aws_plan: dict[str, Any]) -> None:
    """api_access_log = true: the stage logs a JSON line per request to a group of its own, kept
    as long as the functions' logs (the default, off, is checked on the applied deployment)."""
    (stage,) = planned(real_aws_plan, "aws_apigatewayv2_stage")
    (settings,) = stage["values"]["access_log_settings"]
    assert set(json.loads(settings["format"])) == {
        "requestId", "ip", "requestTime", "routeKey", "status", "responseLength", "latency",
        "error",
    }  # fmt: skip
    groups = {g["values"]["name"]: g for g in planned(real_aws_plan, "aws_cloudwatch_log_group")}
    assert groups["/aws/apigateway/stelae-plan"]["values"]["retention_in_days"] == 30
    module = real_aws_plan["configuration"]["root_module"]["module_calls"]["stelae"]["module"]
    assert module["variables"]["api_access_log"]["default"] is False


@needs_terraform
def test_plan_cache_behaviours(real_aws_plan: dict[str, Any]) -> None:
    (dist,) = planned(real_aws_plan, "aws_cloudfront_distribution")
    behaviours = {b["path_pattern"]: b for b in dist["values"]["ordered_cache_behavior"]}
    assert set(behaviours) == {
        "tile/*",
        "checkpoints/*",
        "batch/*",
        "index/run/*",
        "index/manifest/*",
        "checkpoint",
    }
    policies = {
        p["values"]["name"]: p for p in planned(real_aws_plan, "aws_cloudfront_cache_policy")
    }
    immutable, mutable = policies["stelae-plan-immutable"], policies["stelae-plan-checkpoint"]
    assert immutable["values"]["min_ttl"] == immutable["values"]["max_ttl"] == 31536000
    assert mutable["values"]["max_ttl"] <= 5
    headers = {
        p["values"]["name"]: p
        for p in planned(real_aws_plan, "aws_cloudfront_response_headers_policy")
    }
    cors = headers["stelae-plan-immutable"]["values"]["cors_config"][0]
    assert cors["access_control_allow_origins"][0]["items"] == ["*"]
    cache_control = headers["stelae-plan-immutable"]["values"]["custom_headers_config"][0]["items"]
    assert cache_control[0]["value"].endswith("immutable")


# ---------------------------------------------------------------------------------------------
# a real apply against moto
#
# The provider's own waits make an apply take over a minute even against moto (about 25 s for
# each SQS queue's attributes to settle; the dead-letter queue must exist before the queue that
# redrives to it). So the apply starts in a background thread when the module starts, while the
# format, validate, plan and package tests run, and test_apply_against_moto (last in the file)
# joins it, checks the deployment and destroys it.


def moto_immediate_transitions(url: str) -> None:
    """Moto's own state-manager API: CloudFront distributions are Deployed at once instead of
    after several polls."""
    body = json.dumps(
        {"model_name": "cloudfront::distribution", "transition": {"progression": "immediate"}}
    ).encode()
    req = urllib.request.Request(
        url + "/moto-api/state-manager/set-transition", data=body, method="POST"
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


class MotoDeployment:
    """The example applied against moto, in a background thread, from its own copy of the
    example (so that the plan tests can use theirs meanwhile) and its own state file."""

    def __init__(self, workdir: Path, env: dict[str, str], moto_url: str, tmp: Path) -> None:
        self.workdir, self.env, self.tmp = workdir, env, tmp
        self.name = f"stelae-t{uuid.uuid4().hex[:8]}"
        self.state = tmp / "terraform.tfstate"
        tfvars = {
            "name": self.name,
            "lambda_zip": str(tiny_zip(tmp / "lambda.zip")),
            "aws_endpoint_url": moto_url,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "emulator_compatible": True,
            "bucket_force_destroy": True,
            "alarms": True,
            # Destroy only disables the distribution (saves the provider's wait for deletion);
            # the test deletes it afterwards.
            "cloudfront_retain_on_delete": True,
            "verifier_key": make_vkey("example.org/stelae-test"),
            # The example's default is relative to the checkout; this copy lives elsewhere.
            "explorer_dir": str(Path(__file__).resolve().parents[2] / "stelae" / "explorer"),
        }
        (workdir / "moto.auto.tfvars.json").write_text(json.dumps(tfvars))
        self.applied: subprocess.CompletedProcess[str] | BaseException | None = None
        self.destroyed = False
        self.thread = threading.Thread(target=self._apply, name="terraform-apply", daemon=True)

    def _apply(self) -> None:
        assert TERRAFORM is not None
        try:
            self.applied = subprocess.run(
                [TERRAFORM, "apply", "-auto-approve", "-input=false", "-no-color",
                 f"-state={self.state}"],
                cwd=self.workdir, env=self.env, capture_output=True, text=True,
                timeout=APPLY_TIMEOUT, check=False,
            )  # fmt: skip
        except BaseException as err:  # reported by wait(), in the test's thread
            self.applied = err

    def wait(self) -> None:
        self.thread.join(APPLY_TIMEOUT + 30)
        if isinstance(self.applied, BaseException):
            raise self.applied
        assert self.applied is not None, "terraform apply did not finish"
        if self.applied.returncode != 0:
            pytest.fail(
                f"terraform apply against moto failed:\n{self.applied.stdout[-4000:]}\n"
                f"{self.applied.stderr[-4000:]}"
            )

    def terraform(self, *args: str) -> subprocess.CompletedProcess[str]:
        return terraform(*args, cwd=self.workdir, env=self.env, timeout=APPLY_TIMEOUT)

    def destroy(self) -> None:
        if self.destroyed:
            return
        self.destroyed = True
        # The state is fresh, so skip the refresh: one less round of provider calls.
        self.terraform("destroy", "-auto-approve", "-input=false", "-refresh=false",
                       f"-state={self.state}")  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def moto_deployment(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    tf_env: dict[str, str],
) -> Iterator[MotoDeployment | None]:
    """Starts the apply at once, if test_apply_against_moto is among the selected tests."""
    selected = any(
        isinstance(item, pytest.Function)
        and item.module is request.module
        and item.originalname == "test_apply_against_moto"
        for item in request.session.items
    )
    if TERRAFORM is None or not selected:
        yield None
        return
    moto_server = request.getfixturevalue("moto_server")
    moto_immediate_transitions(moto_server.url)
    tmp = tmp_path_factory.mktemp("apply")
    workdir = tmp / "terraform"
    shutil.copytree(TERRAFORM_DIR, workdir, ignore=shutil.ignore_patterns(*TF_COPY_IGNORE))
    example = workdir / "examples" / "basic"
    terraform_init(example, tf_env)
    deployment = MotoDeployment(example, tf_env, moto_server.url, tmp)
    deployment.thread.start()
    yield deployment
    # Whatever happened in the test, leave nothing behind in the shared moto server.
    deployment.thread.join(APPLY_TIMEOUT + 30)
    if deployment.state.exists():
        deployment.destroy()


def check_deployment(moto: Any, name: str, outputs: dict[str, Any], state: dict[str, Any]) -> None:
    """Every property of a deployment, service by service, as moto holds it."""
    check_outputs(outputs)
    check_bucket(moto, outputs)
    check_distribution(moto, name, outputs)
    queue_arn = check_queues(moto, outputs)
    check_functions(moto, name, outputs, queue_arn)
    check_no_parameter(moto, outputs)
    check_roles(moto, name, outputs["bucket_name"])
    check_api(moto, name)
    check_logs_and_alarms(moto, name)
    check_state(state)


def check_outputs(outputs: dict[str, Any]) -> None:
    """The outputs: the URLs, and the commands printed for the operator."""
    parameter = outputs["signing_key_parameter_name"]
    assert outputs["read_url"].startswith("https://") and outputs["read_url"].endswith(
        ".cloudfront.net"
    )
    assert outputs["write_url"].startswith("https://") and not outputs["write_url"].endswith("/")
    assert outputs["sequencer_function_name"] in outputs["verifier_key_command"]
    assert f"--name '{parameter}' --type SecureString" in outputs["put_signing_key_command"]


def check_bucket(moto: Any, outputs: dict[str, Any]) -> None:
    """S3: private, readable only by this distribution, .state/ never."""
    bucket = outputs["bucket_name"]
    dist_arn = outputs["cloudfront_distribution_arn"]
    s3 = moto.client("s3")
    pab = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(pab.values()) and len(pab) == 4, pab
    stmts = statements(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    allows = [s for s in stmts if s["Effect"] == "Allow"]
    assert len(allows) == 1
    (allow,) = allows
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Condition"] == {"StringEquals": {"AWS:SourceArn": dist_arn}}
    assert as_list(allow["Action"]) == ["s3:GetObject"]
    denies = [s for s in stmts if s["Effect"] == "Deny"]
    assert any(
        as_list(s["Resource"]) == [f"arn:aws:s3:::{bucket}/.state/*"]
        and s["Principal"] == {"Service": "cloudfront.amazonaws.com"}
        for s in denies
    ), denies


def check_distribution(moto: Any, name: str, outputs: dict[str, Any]) -> None:
    """CloudFront: the distribution the policy names, over this bucket, with its OAC."""
    bucket = outputs["bucket_name"]
    dist_arn = outputs["cloudfront_distribution_arn"]
    s3 = moto.client("s3")
    cloudfront = moto.client("cloudfront")
    dist_id = dist_arn.rsplit("/", 1)[-1]
    config = cloudfront.get_distribution(Id=dist_id)["Distribution"]["DistributionConfig"]
    (origin,) = config["Origins"]["Items"]
    assert origin["DomainName"].startswith(f"{bucket}.s3.")
    oacs = cloudfront.list_origin_access_controls()["OriginAccessControlList"].get("Items", [])
    assert any(o["Name"] == f"{name}-log" and o["SigningBehavior"] == "always" for o in oacs)
    behaviours = {b["PathPattern"]: b for b in config["CacheBehaviors"]["Items"]}
    # emulator_compatible: legacy TTLs stand in for the cache policies moto does not implement.
    for pattern in ("tile/*", "checkpoints/*", "batch/*", "index/run/*", "index/manifest/*"):
        assert behaviours[pattern]["MinTTL"] == behaviours[pattern]["MaxTTL"] == 31536000
    assert behaviours["checkpoint"]["MaxTTL"] <= 5
    # The explorer page is uploaded beside the log, as the distribution's root (docs/explorer.md).
    assert config["DefaultRootObject"] == "index.html"
    page = s3.head_object(Bucket=bucket, Key="index.html")
    assert page["ContentType"] == "text/html; charset=utf-8"
    assert page["CacheControl"] == "no-cache"
    script = s3.head_object(Bucket=bucket, Key="explorer/app.js")
    assert script["ContentType"] == "text/javascript; charset=utf-8"
    assert config["DefaultCacheBehavior"]["MaxTTL"] <= 5
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    errors = {e["ErrorCode"]: e for e in config["CustomErrorResponses"]["Items"]}
    assert errors[403]["ResponseCode"] == "404" and errors[403]["ErrorCachingMinTTL"] <= 5


def check_queues(moto: Any, outputs: dict[str, Any]) -> str:
    """SQS: a redrive policy to the DLQ, visibility > six function timeouts. Returns the
    queue's ARN."""
    sqs = moto.client("sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=outputs["queue_url"], AttributeNames=["All"])[
        "Attributes"
    ]
    dlq_arn = sqs.get_queue_attributes(
        QueueUrl=outputs["dead_letter_queue_url"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq_arn
    assert int(redrive["maxReceiveCount"]) >= 5
    assert int(attrs["VisibilityTimeout"]) == 6 * 120
    assert attrs.get("SqsManagedSseEnabled") == "true"
    queue_arn: str = attrs["QueueArn"]
    return queue_arn


def check_functions(moto: Any, name: str, outputs: dict[str, Any], queue_arn: str) -> None:
    """Lambda: handlers, one sequencer at a time, batch settings, no key material."""
    bucket = outputs["bucket_name"]
    parameter = outputs["signing_key_parameter_name"]
    lam = moto.client("lambda")
    write = lam.get_function(FunctionName=outputs["write_function_name"])
    seq = lam.get_function(FunctionName=outputs["sequencer_function_name"])
    assert write["Configuration"]["Handler"] == "stelae.lambda.write.handler"
    assert seq["Configuration"]["Handler"] == "stelae.lambda.sequence.handler"
    assert write["Configuration"]["Runtime"] == seq["Configuration"]["Runtime"] == "python3.11"
    # At least the mapping's maximum concurrency (2), or Lambda throttles the mapping.
    assert seq["Concurrency"]["ReservedConcurrentExecutions"] == 2
    write_env = write["Configuration"]["Environment"]["Variables"]
    seq_env = seq["Configuration"]["Environment"]["Variables"]
    # The contract of stelae/sequencer/aws.py.
    assert write_env["STELAE_QUEUE_URL"] == seq_env["STELAE_QUEUE_URL"] == outputs["queue_url"]
    assert write_env["STELAE_BUCKET"] == seq_env["STELAE_BUCKET"] == bucket
    assert write_env["STELAE_VKEY"] == seq_env["STELAE_VKEY"] == outputs["verifier_key"]
    assert seq_env["STELAE_SIGNING_KEY_PARAM"] == parameter == f"/{name}/signing-key"
    assert "STELAE_SIGNING_KEY_PARAM" not in write_env, "the write side never signs"
    assert float(write_env["STELAE_WAIT_SECONDS"]) < 29
    assert_no_key_material("write", write_env)
    assert_no_key_material("sequencer", seq_env)

    # moto filters FunctionName by the exact string given at creation (Terraform gives the ARN).
    (esm,) = lam.list_event_source_mappings(EventSourceArn=queue_arn)["EventSourceMappings"]
    assert esm["FunctionArn"].endswith(f":function:{outputs['sequencer_function_name']}")
    assert esm["BatchSize"] == 256
    assert esm["MaximumBatchingWindowInSeconds"] == 1
    assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert esm["ScalingConfig"] == {"MaximumConcurrency": 2}
    # The default sequencer_trigger: the mapping alone; no wake, no sweep (wake.tf).
    assert "STELAE_WAKE_FUNCTION" not in write_env
    assert not moto.client("events").list_rules(NamePrefix=name)["Rules"]

    policy = json.loads(lam.get_policy(FunctionName=outputs["write_function_name"])["Policy"])
    sources = sorted(s["Condition"]["ArnLike"]["AWS:SourceArn"] for s in policy["Statement"])
    assert [s.split("/", 1)[1] for s in sources] == [
        "*/POST/api/v1/log/entries",
        "*/POST/api/v2/log/entries",
    ]


def check_no_parameter(moto: Any, outputs: dict[str, Any]) -> None:
    """Parameter Store: Terraform neither created nor read the key's parameter."""
    parameter = outputs["signing_key_parameter_name"]
    ssm = moto.client("ssm")
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name=parameter, WithDecryption=True)


def check_roles(moto: Any, name: str, bucket: str) -> None:
    """IAM: one role per function, each action named, resources this log's own."""
    iam = moto.client("iam")
    role_actions: dict[str, set[str]] = {}
    for role in (f"{name}-write", f"{name}-sequencer"):
        (policy_name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
        doc = iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
        stmts = statements(doc)
        assert_no_wildcard_actions(role, stmts)
        for stmt in stmts:
            for resource in as_list(stmt["Resource"]):
                assert resource != "*", f"{role}: unscoped resource in {stmt}"
                assert bucket in resource or name in resource, resource
        role_actions[role] = {
            a for s in stmts if s["Effect"] == "Allow" for a in as_list(s["Action"])
        }
        # Garbage collection: the sequencer deletes partial tiles and bundles, and replaced
        # index runs, and nothing else.
        deleting = [s for s in stmts if "s3:DeleteObject" in as_list(s["Action"])]
        deletable = sorted(r for s in deleting for r in as_list(s["Resource"]))
        collected = ["index/run/*", "tile/*.p/*"]
        expected = [f"arn:aws:s3:::{bucket}/{k}" for k in collected]
        assert deletable == (expected if "sequencer" in role else [])
    assert "sqs:SendMessage" in role_actions[f"{name}-write"]
    assert "s3:PutObject" not in role_actions[f"{name}-write"]
    assert "ssm:GetParameter" not in role_actions[f"{name}-write"]
    sequencer_needs = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                       "s3:GetObject", "s3:PutObject", "ssm:GetParameter"}  # fmt: skip
    assert sequencer_needs <= role_actions[f"{name}-sequencer"]
    assert "sqs:SendMessage" not in role_actions[f"{name}-sequencer"]


def check_api(moto: Any, name: str) -> None:
    """API Gateway: the two routes, payload 2.0, throttled."""
    apigw = moto.client("apigatewayv2")
    (api,) = [a for a in apigw.get_apis()["Items"] if a["Name"] == name]
    routes = {r["RouteKey"]: r for r in apigw.get_routes(ApiId=api["ApiId"])["Items"]}
    assert set(routes) == {"POST /api/v1/log/entries", "POST /api/v2/log/entries"}
    (integration,) = apigw.get_integrations(ApiId=api["ApiId"])["Items"]
    assert integration["PayloadFormatVersion"] == "2.0"
    assert integration["IntegrationType"] == "AWS_PROXY"
    stage = apigw.get_stage(ApiId=api["ApiId"], StageName="$default")
    assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] == 100
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == 50
    # api_access_log is false by default: no line per request in CloudWatch Logs.
    assert "AccessLogSettings" not in stage, stage.get("AccessLogSettings")


def check_logs_and_alarms(moto: Any, name: str) -> None:
    """Logs with retention, and the alarms."""
    logs = moto.client("logs")
    groups = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")["logGroups"]
    assert {g["logGroupName"]: g.get("retentionInDays") for g in groups} == {
        f"/aws/lambda/{name}-write": 30,
        f"/aws/lambda/{name}-sequencer": 30,
    }
    assert not logs.describe_log_groups(logGroupNamePrefix=f"/aws/apigateway/{name}")["logGroups"]
    alarms = moto.client("cloudwatch").describe_alarms(AlarmNamePrefix=name)["MetricAlarms"]
    metrics = {(a["Namespace"], a["MetricName"]) for a in alarms}
    assert {
        ("AWS/Lambda", "Errors"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
    } <= metrics


def check_state(state: dict[str, Any]) -> None:
    """The same static properties, now on the fully known state."""
    for r in walk_modules(state["values"]["root_module"]):
        if r["type"] in ("aws_iam_role_policy", "aws_s3_bucket_policy"):
            assert_no_wildcard_actions(r["address"], statements(r["values"]["policy"]))
        if r["type"] == "aws_lambda_function":
            assert_no_key_material(r["address"], r["values"]["environment"][0]["variables"])
        assert r["type"] not in ("aws_secretsmanager_secret_version", "aws_ssm_parameter")
        if r["type"] == "aws_apigatewayv2_stage" and r["name"] == "this":
            assert r["values"]["access_log_settings"] == [], "api_access_log is off by default"
        assert not r["address"].endswith("aws_cloudwatch_log_group.api[0]")


# ---------------------------------------------------------------------------------------------
# the Lambda package


def load_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_lambda", TERRAFORM_DIR / "build_lambda.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def lambda_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The deployment zip for x86_64 Lambda (this machine runs x86_64, so its handlers can be
    imported here), or for this interpreter if manylinux wheels cannot be downloaded (said in a
    warning: such a zip proves less)."""
    builder = load_builder()
    out = tmp_path_factory.mktemp("package") / "stelae-lambda.zip"
    try:
        builder.build(out, platform=builder.PLATFORMS["x86_64"], architecture="x86_64")
    except builder.BuildError as err:
        warnings.warn(
            f"couldn't build for {builder.PLATFORMS['x86_64']}; built for the local platform "
            f"instead, so the package test shows less about Lambda: {err}",
            stacklevel=1,
        )
        print(f"build_lambda: manylinux build failed, using the local platform: {err}")
        builder.build(out, platform=None)
    return out


def test_arm64_package_holds_only_arm64_or_pure_python(tmp_path: Path) -> None:
    """The package the module deploys (arm64) cannot run here, so its files are read: every
    wheel's tags are aarch64 or ``any``, every shared object is an AArch64 ELF file; and the
    builder's own check refuses an x86_64 shared object in it."""
    builder = load_builder()
    out = tmp_path / "arm64.zip"
    try:
        builder.build(out)  # the default: the module's architecture
    except builder.BuildError as err:
        pytest.skip(f"couldn't download manylinux2014_aarch64 wheels: {err}")
    root = unzip(out, tmp_path / "pkg")
    tags = [
        line.split(":", 1)[1].strip()
        for wheel in root.glob("*.dist-info/WHEEL")
        for line in wheel.read_text().splitlines()
        if line.startswith("Tag:")
    ]
    assert tags, "no wheel metadata in the package"
    assert all(t.endswith(("-any", "_aarch64")) for t in tags), tags
    objects = [p for p in root.rglob("*.so*") if builder.elf_machine(p) is not None]
    assert objects, "cryptography, pycryptodome, httptools ship shared objects"
    assert {builder.elf_machine(p) for p in objects} == {0xB7}, "not all AArch64"
    builder.check_architecture(root, "arm64")
    (root / "intruder.so").write_bytes(b"\x7fELF" + bytes(14) + (0x3E).to_bytes(2, "little"))
    with pytest.raises(builder.BuildError, match=r"intruder\.so: ELF machine 0x3e"):
        builder.check_architecture(root, "arm64")


IMPORT_CHECK = """
import importlib, pkgutil, sys
sys.path.insert(0, {root!r})
sys.path.extend({after!r})
assert not any("site-packages" in p for p in sys.path), sys.path
imported = []
for name in {packages!r}:
    package = importlib.import_module(name)
    assert package.__file__.startswith({root!r}), (name, package.__file__)
    imported.append(name)
    for info in pkgutil.walk_packages(package.__path__, name + "."):
        importlib.import_module(info.name)
        imported.append(info.name)
for name in {handlers!r}:
    module = importlib.import_module(name)
    assert module.__file__.startswith({root!r}), (name, module.__file__)
    assert callable(module.handler), name
    imported.append(name)
print("\\n".join(imported))
"""


def import_in_clean_interpreter(
    root: Path, packages: Sequence[str], handlers: Sequence[str] = (), after: Sequence[str] = ()
) -> list[str]:
    """Import *packages* (and every submodule) and *handlers* from the unzipped package *root*
    in a fresh interpreter; return what was imported.

    -I: no PYTHON* variables, no user site, no script directory; -S: no site-packages at all. So
    third-party code can come only from *root* (and *after*, which stands in for what the Lambda
    runtime itself provides, searched after the package as on Lambda)."""
    code = IMPORT_CHECK.format(
        root=str(root), after=list(after), packages=list(packages), handlers=list(handlers)
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=root,
    )
    assert result.returncode == 0, f"import in a clean interpreter failed:\n{result.stderr}"
    return result.stdout.split()


def unzip(package: Path, dest: Path) -> Path:
    with zipfile.ZipFile(package) as zf:
        zf.extractall(dest)
    return dest


# What the Lambda Python runtime provides besides the standard library.
RUNTIME_SDK = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")


@pytest.fixture(scope="module")
def runtime_sdk(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """A directory standing in for the SDK the Lambda runtime provides (and the package leaves
    out): this interpreter's boto3 and its dependencies, searched after the package as on Lambda."""
    sdk = tmp_path_factory.mktemp("runtime-sdk")
    for dist in RUNTIME_SDK:
        spec = importlib.util.find_spec(dist)
        if spec is None or spec.origin is None:
            continue
        origin = Path(spec.origin)
        if origin.name == "__init__.py":
            shutil.copytree(origin.parent, sdk / dist, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, sdk / origin.name)
    return [str(sdk)]


def test_lambda_package_imports(
    lambda_package: Path, runtime_sdk: list[str], tmp_path: Path
) -> None:
    root = unzip(lambda_package, tmp_path / "pkg")
    names = {p.name.split("-")[0].lower() for p in root.iterdir()}
    assert "boto3" not in names and "botocore" not in names, "the runtime provides the SDK"
    assert not list(root.rglob("__pycache__")), "no bytecode: it would differ from build to build"
    packages = ["stelae.tiles", "stelae.sequencer", "stelae.kinds"]
    imported = import_in_clean_interpreter(root, packages, after=runtime_sdk)
    assert set(packages) <= set(imported)


def test_lambda_package_handlers(
    lambda_package: Path, runtime_sdk: list[str], tmp_path: Path
) -> None:
    root = unzip(lambda_package, tmp_path / "pkg")
    handlers = ["stelae.lambda.write", "stelae.lambda.sequence", "stelae.lambda.witness"]
    missing = [h for h in handlers if not (root / (h.replace(".", "/") + ".py")).exists()]
    if missing:
        pytest.skip(
            f"handler modules not written yet: {', '.join(missing)}; the package's other "
            "imports are checked by test_lambda_package_imports"
        )
    imported = import_in_clean_interpreter(root, [], handlers, after=runtime_sdk)
    assert set(handlers) <= set(imported)


def test_zip_is_deterministic(tmp_path: Path) -> None:
    builder = load_builder()
    tree = tmp_path / "tree"
    (tree / "pkg" / "sub").mkdir(parents=True)
    (tree / "pkg" / "sub" / "b.py").write_text("B = 1\n")
    (tree / "pkg" / "a.py").write_text("A = 1\n")
    (tree / "tool").write_text("#!/bin/sh\n")
    (tree / "tool").chmod(0o775)
    first = builder.write_zip(tree, tmp_path / "one.zip")
    os.utime(tree / "pkg" / "a.py", (1_000_000_000, 1_000_000_000))  # mtimes do not matter
    second = builder.write_zip(tree, tmp_path / "two.zip")
    assert first == second
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "one.zip") as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == ["pkg/a.py", "pkg/sub/b.py", "tool"]
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.filename: i.external_attr >> 16 & 0o777 for i in infos} == {
        "pkg/a.py": 0o644,
        "pkg/sub/b.py": 0o644,
        "tool": 0o755,
    }


def test_builder_drops_runtime_provided_sdk(tmp_path: Path) -> None:
    builder = load_builder()
    for name in ("boto3", "boto3-1.40.0.dist-info", "botocore", "botocore-1.40.0.dist-info",
                 "cryptography", "s3transfer"):  # fmt: skip
        (tmp_path / name).mkdir()
    builder.remove_runtime_provided(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cryptography", "s3transfer"]
    assert builder.requirement_name("boto3>=1.34") == "boto3"
    assert builder.requirement_name("Foo_Bar.baz [x] ; python_version<'3.12'") == "foo-bar-baz"


# ---------------------------------------------------------------------------------------------
# last: join the background apply


@needs_terraform
def test_apply_against_moto(moto_deployment: MotoDeployment | None, moto_server: Any) -> None:
    assert moto_deployment is not None
    deployment = moto_deployment
    deployment.wait()
    out = json.loads(deployment.terraform("output", "-json", f"-state={deployment.state}").stdout)
    outputs = {k: v["value"] for k, v in out.items()}
    shown = deployment.terraform("show", "-json", str(deployment.state))
    check_deployment(moto_server, deployment.name, outputs, json.loads(shown.stdout))

    deployment.destroy()
    s3 = moto_server.client("s3")
    assert outputs["bucket_name"] not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    # cloudfront_retain_on_delete: Terraform disabled the distribution and let it be.
    cloudfront = moto_server.client("cloudfront")
    dist_id = outputs["cloudfront_distribution_arn"].rsplit("/", 1)[-1]
    dist = cloudfront.get_distribution(Id=dist_id)
    assert dist["Distribution"]["DistributionConfig"]["Enabled"] is False
    cloudfront.delete_distribution(Id=dist_id, IfMatch=dist["ETag"])
