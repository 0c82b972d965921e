"""The module's ``sequencer_trigger``: plans of both modes, its variables' checks, and a real
``terraform apply`` of ``writer_invoke`` against moto's server mode.

moto implements everything this mode creates: EventBridge rules and targets, Lambda resource
policies, event invoke configs and reserved concurrency. The apply is targeted at the mode's
resources (the sweep's rule, target and permission, the event invoke config) and the write
function; Terraform adds what they depend on (both functions, their roles and policies, log
groups, the queues and the bucket). CloudFront, the HTTP API and the alarms do not depend on the
trigger and are applied in full by tests/e2e/test_terraform.py, whose default-mode apply also
checks that the mapping exists and no sweep rule does.

The configuration applied is a root module written by the test around a copy of
terraform/modules/stelae, so that every module variable of this mode (a fractional batching
window, the sweep's period) can be set; the provider settings are the example's for an emulator.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import MotoEndpoint
from tests.e2e.test_terraform import (
    TERRAFORM,
    TERRAFORM_DIR,
    TF_COPY_IGNORE,
    _terraform_env,
    as_list,
    assert_no_key_material,
    make_vkey,
    moto_provider,
    needs_terraform,
    statements,
    terraform,
    terraform_init,
    tiny_zip,
    walk_modules,
)

SERVICES = ("apigatewayv2", "cloudfront", "cloudwatch", "events", "iam", "lambda", "logs", "s3",
            "ssm", "sqs", "sts")  # fmt: skip

# The resources of writer_invoke mode, and the write function that wakes the sequencer.
TARGETS = (
    "module.stelae.aws_cloudwatch_event_target.sweep",
    "module.stelae.aws_lambda_permission.sweep",
    "module.stelae.aws_lambda_function_event_invoke_config.sequencer",
    "module.stelae.aws_lambda_function.write",
)


def root_module(workdir: Path, moto_url: str, name: str, **module_vars: Any) -> Path:
    """A root module over a copy of the stelae module, with the emulator's provider settings."""
    shutil.copytree(
        TERRAFORM_DIR / "modules" / "stelae",
        workdir / "modules" / "stelae",
        ignore=shutil.ignore_patterns(*TF_COPY_IGNORE),
    )
    root = workdir / "root"
    root.mkdir()
    config = {
        "provider": moto_provider(moto_url, "us-east-1", SERVICES),
        "module": {
            "stelae": {
                "source": "../modules/stelae",
                "name": name,
                "write_lambda_zip": str(tiny_zip(workdir / "lambda.zip")),
                "verifier_key": make_vkey(f"example.org/{name}"),
                # What moto lacks or refuses (terraform/README.md, "Testing against moto").
                "create_cloudfront_policies": False,
                "wait_for_cloudfront_deployment": False,
                "create_dlq_redrive_allow_policy": False,
                "deny_insecure_transport": False,
                "bucket_force_destroy": True,
                **module_vars,
            }
        },
        "output": {"sweep_rule": {"value": "${module.stelae.sequencer_sweep_rule_name}"}},
    }
    (root / "main.tf.json").write_text(json.dumps(config, indent=2))
    return root


@pytest.fixture(scope="module")
def tf_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return _terraform_env(tmp_path_factory.mktemp("tfenv"))


def plan_json(root: Path, env: dict[str, str], *args: str) -> dict[str, Any]:
    plan_file = root / "wake.tfplan"
    terraform("plan", "-input=false", "-refresh=false", f"-out={plan_file}", *args,
              cwd=root, env=env)  # fmt: skip
    shown = terraform("show", "-json", str(plan_file), cwd=root, env=env)
    plan: dict[str, Any] = json.loads(shown.stdout)
    return plan


def failed_plan(root: Path, env: dict[str, str], *args: str) -> str:
    """The errors of a plan that must fail."""
    assert TERRAFORM is not None
    result = subprocess.run(
        [TERRAFORM, "plan", "-input=false", "-refresh=false", "-no-color", *args],
        cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode != 0, result.stdout[-2000:]
    return " ".join(result.stderr.split())


def planned(plan: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [r for r in walk_modules(plan["planned_values"]["root_module"]) if r["type"] == rtype]


def policy_statements(plan: dict[str, Any], address: str) -> list[dict[str, Any]]:
    for rc in plan["resource_changes"]:
        if rc["address"] == address:
            found: list[dict[str, Any]] = rc["change"]["after"]["statement"]
            return found
    for r in walk_modules(plan.get("prior_state", {}).get("values", {}).get("root_module", {})):
        if r["address"] == address:
            read: list[dict[str, Any]] = r["values"]["statement"]
            return read
    raise AssertionError(f"no {address} in the plan")


@pytest.fixture(scope="module")
def default_root(
    tmp_path_factory: pytest.TempPathFactory, tf_env: dict[str, str], moto_server: MotoEndpoint
) -> Path:
    root = root_module(tmp_path_factory.mktemp("default"), moto_server.url, "stelae-esm")
    terraform_init(root, tf_env)
    return root


# ---------------------------------------------------------------------------------------------
# plans and variable checks


@needs_terraform
def test_default_mode_keeps_the_mapping_and_adds_nothing(
    default_root: Path, tf_env: dict[str, str]
) -> None:
    plan = plan_json(default_root, tf_env)
    (esm,) = planned(plan, "aws_lambda_event_source_mapping")
    assert esm["values"]["maximum_batching_window_in_seconds"] == 1
    for rtype in ("aws_cloudwatch_event_rule", "aws_cloudwatch_event_target",
                  "aws_lambda_function_event_invoke_config"):  # fmt: skip
        assert not planned(plan, rtype), rtype
    assert [p["values"]["principal"] for p in planned(plan, "aws_lambda_permission")] == [
        "apigateway.amazonaws.com"
    ] * 2, "only the HTTP API's two routes may invoke a function"
    write = policy_statements(plan, "module.stelae.data.aws_iam_policy_document.write")
    assert not [s for s in write if any(a.startswith("lambda:") for a in s["actions"])]
    functions = {
        f["values"]["function_name"]: f["values"] for f in planned(plan, "aws_lambda_function")
    }
    assert functions["stelae-esm-sequencer"]["reserved_concurrent_executions"] == 2
    module = plan["configuration"]["root_module"]["module_calls"]["stelae"]["module"]
    assert module["variables"]["sequencer_trigger"]["default"] == "event_source_mapping"
    assert module["variables"]["sequencer_sweep_minutes"]["default"] == 10
    assert plan["planned_values"]["outputs"]["sweep_rule"].get("value") is None


@needs_terraform
def test_bad_trigger_and_sweep_are_refused(
    tmp_path: Path, tf_env: dict[str, str], moto_server: MotoEndpoint
) -> None:
    root = root_module(
        tmp_path,
        moto_server.url,
        "stelae-bad",
        sequencer_trigger="poll",
        sequencer_sweep_minutes=2.5,
    )
    terraform_init(root, tf_env)
    errors = failed_plan(root, tf_env)
    assert 'sequencer_trigger must be "event_source_mapping" or "writer_invoke"' in errors
    assert "sequencer_sweep_minutes must be a whole number of minutes" in errors


@needs_terraform
def test_fractional_window_needs_writer_invoke(
    tmp_path: Path, tf_env: dict[str, str], moto_server: MotoEndpoint
) -> None:
    """The mapping takes whole seconds only; the drain loop's window may be 0.5 s."""
    root = root_module(
        tmp_path, moto_server.url, "stelae-frac", sequencer_batching_window_seconds=0.5
    )
    terraform_init(root, tf_env)
    errors = failed_plan(root, tf_env)
    assert "sequencer_batching_window_seconds must be a whole number of seconds" in errors


@needs_terraform
def test_writer_invoke_needs_time_for_a_batch(
    tmp_path: Path, tf_env: dict[str, str], moto_server: MotoEndpoint
) -> None:
    """A timeout the drain loop cannot fit a batch in (window 5 s + 18 s > 20 s) is refused at
    plan time: with it, the loop would never start a batch and entries would expire queued."""
    root = root_module(
        tmp_path,
        moto_server.url,
        "stelae-short",
        sequencer_trigger="writer_invoke",
        sequencer_batching_window_seconds=5,
        sequencer_timeout_seconds=20,
    )
    terraform_init(root, tf_env)
    errors = failed_plan(root, tf_env)
    assert (
        "sequencer_timeout_seconds must be at least sequencer_batching_window_seconds + 18 s"
        in errors
    )


# ---------------------------------------------------------------------------------------------
# writer_invoke applied against moto


class Applied:
    """The writer_invoke deployment in moto, and its Terraform state."""

    def __init__(self, moto: MotoEndpoint, name: str, state: dict[str, Any]) -> None:
        self.moto, self.name, self.state = moto, name, state
        lam: Any = moto.client("lambda")
        self.lam = lam
        self.write = lam.get_function(FunctionName=f"{name}-write")
        self.sequencer = lam.get_function(FunctionName=f"{name}-sequencer")
        self.sequencer_arn: str = self.sequencer["Configuration"]["FunctionArn"]


def _delete_rule(events: Any, rule: str) -> None:
    targets = events.list_targets_by_rule(Rule=rule)["Targets"]
    if targets:
        events.remove_targets(Rule=rule, Ids=[t["Id"] for t in targets])
    events.delete_rule(Name=rule)


def _delete_role(iam: Any, role: str) -> None:
    for policy in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        iam.delete_role_policy(RoleName=role, PolicyName=policy)
    iam.delete_role(RoleName=role)


def _delete_buckets(s3: Any, prefix: str) -> None:
    for b in s3.list_buckets()["Buckets"]:
        if b["Name"].startswith(prefix):
            for obj in s3.list_objects_v2(Bucket=b["Name"]).get("Contents", []):
                s3.delete_object(Bucket=b["Name"], Key=obj["Key"])
            s3.delete_bucket(Bucket=b["Name"])


def _delete_queue(sqs: Any, queue: str) -> None:
    sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=queue)["QueueUrl"])


def remove(moto: MotoEndpoint, name: str) -> None:
    """What the targeted apply created, deleted with boto3 (Terraform's destroy would wait on the
    provider's SQS and IAM waiters for a minute more). Each step on its own: after a failed
    apply some resources do not exist, and the apply's error is the one to report."""
    clients: list[Any] = [moto.client(s) for s in ("lambda", "sqs", "s3", "iam", "logs", "events")]
    lam, sqs, s3, iam, logs, events = clients
    steps: list[Callable[[], object]] = [
        partial(_delete_rule, events, f"{name}-sequencer-sweep"),
        partial(_delete_buckets, s3, name),
        partial(_delete_queue, sqs, f"{name}-submissions"),
        partial(_delete_queue, sqs, f"{name}-submissions-dlq"),
    ]
    for fn in ("write", "sequencer"):
        steps += [
            # The function's resource policy and event invoke config go with it.
            partial(lam.delete_function, FunctionName=f"{name}-{fn}"),
            partial(logs.delete_log_group, logGroupName=f"/aws/lambda/{name}-{fn}"),
            partial(_delete_role, iam, f"{name}-{fn}"),
        ]
    for step in steps:
        with contextlib.suppress(ClientError):  # not created: nothing to remove
            step()


@dataclass
class Apply:
    """The writer_invoke apply, started when the module starts: it takes over a minute (the
    provider waits for each queue's attributes to settle), and the plan tests run meanwhile."""

    moto: MotoEndpoint
    name: str
    root: Path
    state: Path
    env: dict[str, str]
    result: Future[dict[str, Any]] | None = None

    def run(self) -> dict[str, Any]:
        targets = [f"-target={t}" for t in TARGETS]
        terraform("apply", "-auto-approve", "-input=false", f"-state={self.state}", *targets,
                  cwd=self.root, env=self.env, timeout=300)  # fmt: skip
        shown = terraform("show", "-json", str(self.state), cwd=self.root, env=self.env)
        state: dict[str, Any] = json.loads(shown.stdout)
        return state


@pytest.fixture(scope="module", autouse=True)
def writer_invoke_apply(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    tf_env: dict[str, str],
) -> Iterator[Apply | None]:
    """One apply of writer_invoke for every check, if any is selected: a fractional window, a
    one-minute sweep (the singular EventBridge wants) and a batch size of 100."""
    selected = any(
        item.module is request.module and "applied" in getattr(item, "fixturenames", ())
        for item in request.session.items
        if isinstance(item, pytest.Function)
    )
    if TERRAFORM is None or not selected:
        yield None
        return
    moto: MotoEndpoint = request.getfixturevalue("moto_server")
    name = f"stelae-w{uuid.uuid4().hex[:8]}"
    tmp = tmp_path_factory.mktemp("writer-invoke")
    root = root_module(
        tmp,
        moto.url,
        name,
        sequencer_trigger="writer_invoke",
        sequencer_batching_window_seconds=0.5,
        sequencer_sweep_minutes=1,
        sequencer_batch_size=100,
    )
    terraform_init(root, tf_env)
    apply = Apply(moto, name, root, tmp / "wake.tfstate", tf_env)
    with ThreadPoolExecutor(1, thread_name_prefix="terraform-apply") as pool:
        apply.result = pool.submit(apply.run)
        try:
            yield apply
        finally:
            # Whatever happened, leave nothing behind in the shared moto server.
            wait([apply.result])
            remove(moto, name)


@pytest.fixture(scope="module")
def applied(writer_invoke_apply: Apply | None) -> Applied:
    assert writer_invoke_apply is not None and writer_invoke_apply.result is not None
    state = writer_invoke_apply.result.result(timeout=330)  # re-raises the apply's failure
    return Applied(writer_invoke_apply.moto, writer_invoke_apply.name, state)


@needs_terraform
@pytest.mark.slow
def test_writer_invoke_has_no_mapping(applied: Applied) -> None:
    sqs: Any = applied.moto.client("sqs")
    url = sqs.get_queue_url(QueueName=f"{applied.name}-submissions")["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (
        applied.lam.list_event_source_mappings(EventSourceArn=attrs["QueueArn"])[
            "EventSourceMappings"
        ]
        == []
    )
    assert (
        applied.lam.list_event_source_mappings(FunctionName=applied.sequencer_arn)[
            "EventSourceMappings"
        ]
        == []
    )
    types = {r["type"] for r in walk_modules(applied.state["values"]["root_module"])}
    assert "aws_lambda_event_source_mapping" not in types
    # Receive to delete takes at most one run of the function: the visibility timeout covers it.
    assert int(attrs["VisibilityTimeout"]) > applied.sequencer["Configuration"]["Timeout"]


@needs_terraform
@pytest.mark.slow
def test_writer_invoke_sweeps_on_a_schedule(applied: Applied) -> None:
    events: Any = applied.moto.client("events")
    rule = events.describe_rule(Name=f"{applied.name}-sequencer-sweep")
    assert applied.state["values"]["outputs"]["sweep_rule"]["value"] == rule["Name"]
    assert rule["ScheduleExpression"] == "rate(1 minute)"
    assert rule["State"] == "ENABLED"
    (target,) = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"] == applied.sequencer_arn
    # EventBridge may invoke the sequencer, and only from this rule.
    grants = statements(applied.lam.get_policy(FunctionName=applied.sequencer_arn)["Policy"])
    (grant,) = grants
    assert grant["Principal"] == {"Service": "events.amazonaws.com"}
    assert grant["Action"] == "lambda:InvokeFunction"
    assert grant["Condition"]["ArnLike"]["AWS:SourceArn"] == rule["Arn"]
    # Wakes and sweeps carry no data: a throttled or failed one is dropped, not retried.
    config = applied.lam.get_function_event_invoke_config(FunctionName=applied.sequencer_arn)
    assert config["MaximumEventAgeInSeconds"] == 60
    assert config["MaximumRetryAttempts"] == 0


@needs_terraform
@pytest.mark.slow
def test_writer_invoke_environments(applied: Applied) -> None:
    write_env = applied.write["Configuration"]["Environment"]["Variables"]
    seq_env = applied.sequencer["Configuration"]["Environment"]["Variables"]
    assert write_env["STELAE_WAKE_FUNCTION"] == applied.sequencer_arn
    assert "STELAE_WAKE_FUNCTION" not in seq_env
    assert seq_env["STELAE_BATCH_SIZE"] == "100"
    assert float(seq_env["STELAE_BATCH_WINDOW_SECONDS"]) == 0.5
    assert not {"STELAE_BATCH_SIZE", "STELAE_BATCH_WINDOW_SECONDS"} & set(write_env)
    assert_no_key_material("write", write_env)
    assert_no_key_material("sequencer", seq_env)


@needs_terraform
@pytest.mark.slow
def test_writer_invoke_roles_and_concurrency(applied: Applied) -> None:
    assert applied.sequencer["Concurrency"]["ReservedConcurrentExecutions"] == 1
    iam: Any = applied.moto.client("iam")
    actions: dict[str, list[tuple[str, list[str]]]] = {}
    for role in ("write", "sequencer"):
        (policy,) = iam.list_role_policies(RoleName=f"{applied.name}-{role}")["PolicyNames"]
        doc = iam.get_role_policy(RoleName=f"{applied.name}-{role}", PolicyName=policy)
        actions[role] = [
            (a, as_list(s["Resource"]))
            for s in statements(doc["PolicyDocument"])
            if s["Effect"] == "Allow"
            for a in as_list(s["Action"])
        ]
    lambda_grants = [(a, r) for a, r in actions["write"] if a.startswith("lambda:")]
    assert lambda_grants == [("lambda:InvokeFunction", [applied.sequencer_arn])]
    assert not [a for a, _ in actions["sequencer"] if a.startswith("lambda:")]
    drained = {a for a, _ in actions["sequencer"] if a.startswith("sqs:")}
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"} <= drained
    assert "sqs:SendMessage" not in drained
