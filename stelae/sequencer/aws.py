"""Configuration and wiring for the AWS deployment, read from the Lambda environment.

Environment variables (set by the Terraform module; none holds key material):

==============================  ==========================================================
``STELAE_BUCKET``               the log's S3 bucket
``STELAE_PREFIX``               key prefix inside the bucket (default empty)
``STELAE_QUEUE_URL``            the SQS queue between the write and sequencer Lambdas
``STELAE_VKEY``                 the log's verifier key (public)
``STELAE_SIGNING_KEY_PARAM``    name of the SSM Parameter Store SecureString holding the
                                ``PRIVATE+KEY+...`` string (sequencer only); the operator
                                creates it with ``aws ssm put-parameter --type SecureString``
``STELAE_MLDSA_VKEY``           optional: the log's ML-DSA-44 verifier key (type 0x06, public),
                                or only its ``origin+keyid`` prefix (what Terraform sets: the
                                whole key is ~1.8 KB of Lambda's 4 KB environment); with it every
                                checkpoint carries a second log signature
``STELAE_MLDSA_SIGNING_KEY_PARAM`` the SecureString holding that key's ``PRIVATE+KEY+...``
                                string (``DATA/signing-mldsa.key``); set both or neither
``STELAE_INDEXES``              ignored (every key kind is always indexed: docs/index.md)
``STELAE_WAIT_SECONDS``         how long a write waits before answering 202 (default 20; 0: an
                                asynchronous log, every new entry answered 202 at once)
``STELAE_POLL_AFTER_SECONDS``   when a write first looks for its entry: the sequencer's batching
                                window plus its usual integration time (default 1); the latest
                                first look, since a warm container looks sooner when the last
                                batch record it read advised it (docs/sequencing.md)
``STELAE_WITNESS_POLICY_KEY``   the key, in the log's bucket, of a https://c2sp.org/tlog-policy
                                file: each checkpoint is published only with its quorum's
                                cosignatures (docs/witness.md); unset: no witnesses
``STELAE_WITNESS_POLICY_SHA256`` the SHA-256 (hex) that policy object must have
``STELAE_WITNESS_FAIL_OPEN``    ``true``: publish without the quorum (logged); default ``false``
``STELAE_WITNESS_TIMEOUT_SECONDS`` how long one checkpoint waits for cosignatures (default 10)
``STELAE_GC_GRACE_SECONDS``     seconds after a tile is full before the sequencer deletes its
                                partial tiles and bundles (default 60; ``off``: never); more
                                than the CDN caches the checkpoint (docs/durability.md)
``STELAE_WAKE_FUNCTION``        optional (write function only): the sequencer function's name
                                or ARN; after each ``SendMessage`` the writer invokes it
                                asynchronously to drain the queue (``sequencer_trigger =
                                "writer_invoke"``, terraform/README.md). Unset: no invoke, the
                                event source mapping wakes the sequencer
``STELAE_BATCH_SIZE``           sequencer only, drain loop (``sequencer_trigger =
                                "writer_invoke"``): most messages in one batch, 1 to 10000
                                (default 256, the module's ``sequencer_batch_size``)
``STELAE_BATCH_WINDOW_SECONDS`` drain loop: how long a batch gathers messages after its first,
                                in seconds, more than 0 and at most 300 (default 1; fractions
                                allowed); a batch also closes when a 1 s long poll brings
                                nothing (``stelae/sequencer/drain.py``)
``AWS_ENDPOINT_URL``            boto3's own override, used only against an emulator
==============================  ==========================================================
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from stelae.errors import StelaeError
from stelae.sequencer.drain import MAX_BATCH_SIZE, MAX_WINDOW_SECONDS
from stelae.sequencer.engine import ALL_INDEXES, IndexKind, Sequencer, SequencerConfig
from stelae.sequencer.s3 import S3Store
from stelae.sequencer.witnessing import WitnessCollector
from stelae.tiles.errors import FormatError
from stelae.tiles.gc import DEFAULT_GRACE, parse_grace
from stelae.tiles.mldsa import MLDSA44CosignatureSigner
from stelae.tiles.notekeys import Ed25519NoteSigner, parse_vkey
from stelae.tiles.policy import Policy

# The event a writer's wake carries (``sequencer_trigger = "writer_invoke"``): no data, only a
# request to drain the queue, which holds the entries. The sequencer Lambda recognises it.
WAKE_PAYLOAD = b'{"stelae": "wake"}'

# A wake is answered at once (202) or not usefully at all, and the write waits for it: short
# timeouts and one retry, not botocore's default of up to a minute. A wake that still fails is
# only logged; the scheduled sweep drains the queue (terraform/README.md).
WAKE_CLIENT_CONFIG = Config(
    connect_timeout=2, read_timeout=3, retries={"mode": "standard", "total_max_attempts": 2}
)


@dataclass(frozen=True)
class AwsConfig:
    bucket: str
    queue_url: str
    vkey: str
    prefix: str = ""
    key_parameter: str = ""
    indexes: frozenset[IndexKind] = ALL_INDEXES
    wait_seconds: float = 20.0
    poll_after_seconds: float = 1.0
    witnesses: WitnessSettings | None = None
    mldsa_vkey: str = ""
    mldsa_key_parameter: str = ""
    gc_grace: float | None = DEFAULT_GRACE
    wake_function: str = ""
    batch_size: int = 256
    batch_window_seconds: float = 1.0

    @property
    def origin(self) -> str:
        return parse_vkey(self.vkey).name

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AwsConfig:
        env = os.environ if env is None else env
        missing = [
            v for v in ("STELAE_BUCKET", "STELAE_QUEUE_URL", "STELAE_VKEY") if not env.get(v)
        ]
        if missing:
            raise FormatError(f"missing environment variables: {', '.join(missing)}")
        raw = env.get("STELAE_INDEXES")
        indexes = (
            ALL_INDEXES
            if raw is None
            else frozenset(IndexKind(x.strip()) for x in raw.split(",") if x.strip())
        )
        try:
            wait = float(env.get("STELAE_WAIT_SECONDS", "20"))
            poll_after = float(env.get("STELAE_POLL_AFTER_SECONDS", "1"))
        except ValueError as err:
            raise FormatError(
                "STELAE_WAIT_SECONDS or STELAE_POLL_AFTER_SECONDS is not a number"
            ) from err
        if poll_after < 0 or wait < 0:
            raise FormatError("STELAE_WAIT_SECONDS and STELAE_POLL_AFTER_SECONDS must be >= 0")
        batch_size, batch_window = _batch_env(env)
        return cls(
            bucket=env["STELAE_BUCKET"],
            queue_url=env["STELAE_QUEUE_URL"],
            vkey=env["STELAE_VKEY"],
            prefix=env.get("STELAE_PREFIX", ""),
            key_parameter=env.get("STELAE_SIGNING_KEY_PARAM", ""),
            indexes=indexes,
            wait_seconds=wait,
            poll_after_seconds=poll_after,
            witnesses=WitnessSettings.from_env(env),
            **_mldsa_env(env),
            gc_grace=_gc_grace_env(env),
            wake_function=env.get("STELAE_WAKE_FUNCTION", "").strip(),
            batch_size=batch_size,
            batch_window_seconds=batch_window,
        )

    def store(self, s3_client: Any = None) -> S3Store:
        return S3Store(self.bucket, self.prefix, client=s3_client)

    def s3_client(self) -> Any:
        """The S3 client both Lambdas use: botocore's retries off (S3Store retries and counts
        every request itself) and a connection per write the sequencer has in flight, so its
        one wave of writes per batch is one round trip, not several queued on a small pool."""
        return boto3.client(
            "s3",
            config=Config(
                retries={"total_max_attempts": 1},
                max_pool_connections=SequencerConfig.parallel_writes,
            ),
        )

    def waker(self, lambda_client: Any = None) -> Callable[[], None] | None:
        """What the writer calls after each ``SendMessage`` with ``STELAE_WAKE_FUNCTION`` set: an
        asynchronous Invoke of the sequencer (Lambda queues the event and answers 202 at once), or
        None without it. Whether a wake fails is the caller's concern: it raises."""
        if not self.wake_function:
            return None
        client = lambda_client or boto3.client("lambda", config=WAKE_CLIENT_CONFIG)
        function = self.wake_function

        def wake() -> None:
            client.invoke(FunctionName=function, InvocationType="Event", Payload=WAKE_PAYLOAD)

        return wake

    def signer(self, ssm_client: Any) -> Ed25519NoteSigner:
        """Load the signing key from Parameter Store and check it matches the public vkey.

        A SecureString, decrypted by SSM with its KMS key on the way out: a standard parameter
        and its GetParameter calls cost nothing, unlike a Secrets Manager secret's monthly fee,
        and the key still never passes through Terraform, the bucket or the environment."""
        if not self.key_parameter:
            raise FormatError("STELAE_SIGNING_KEY_PARAM is not set")
        signer = Ed25519NoteSigner.from_skey(_secure_string(ssm_client, self.key_parameter))
        if signer.vkey != self.vkey:
            raise StelaeError("the signing key in Parameter Store does not match STELAE_VKEY")
        return signer

    def mldsa_signer(self, ssm_client: Any) -> MLDSA44CosignatureSigner | None:
        """The optional ML-DSA-44 log key, loaded like :meth:`signer` from its own SecureString
        and checked against ``STELAE_MLDSA_VKEY``; None when the log has none."""
        if not self.mldsa_key_parameter:
            return None
        skey = _secure_string(ssm_client, self.mldsa_key_parameter)
        signer = MLDSA44CosignatureSigner.from_skey(skey)
        if (signer.name, signer.key_id) != key_ref(self.mldsa_vkey):
            raise StelaeError(
                f"the ML-DSA-44 key in Parameter Store, {signer.name}+{signer.key_id:08x}, "
                "does not match STELAE_MLDSA_VKEY"
            )
        return signer

    def cosigner(self, store: S3Store) -> WitnessCollector | None:
        """The witness collector for ``STELAE_WITNESS_POLICY_KEY``, or None without a policy."""
        if self.witnesses is None:
            return None
        return self.witnesses.collector(store, self.vkey, self.mldsa_vkey)

    def sequencer(
        self,
        signer: Ed25519NoteSigner,
        store: S3Store,
        cosigner: WitnessCollector | None = None,
        mldsa_signer: MLDSA44CosignatureSigner | None = None,
    ) -> Sequencer:
        extra = () if mldsa_signer is None else (mldsa_signer,)
        config = SequencerConfig(
            self.origin,
            background_merges=False,
            cosigner=cosigner,
            extra_log_signers=extra,
            gc_grace=self.gc_grace,
        )
        return Sequencer(store, signer, config)


def _gc_grace_env(env: Mapping[str, str]) -> float | None:
    """``STELAE_GC_GRACE_SECONDS``: seconds (0 or more), ``off``, or unset for the default."""
    raw = env.get("STELAE_GC_GRACE_SECONDS", "").strip()
    if not raw:
        return DEFAULT_GRACE
    try:
        return parse_grace(raw)
    except FormatError as err:
        raise FormatError(f"STELAE_GC_GRACE_SECONDS: {err}") from err


def _batch_env(env: Mapping[str, str]) -> tuple[int, float]:
    """``STELAE_BATCH_SIZE`` and ``STELAE_BATCH_WINDOW_SECONDS``, the drain loop's batches; the
    bounds are the module's (and the event source mapping's) for the same settings."""
    raw_size = env.get("STELAE_BATCH_SIZE", "256").strip()
    raw_window = env.get("STELAE_BATCH_WINDOW_SECONDS", "1").strip()
    if not (raw_size.isascii() and raw_size.isdigit()) or not 1 <= int(raw_size) <= MAX_BATCH_SIZE:
        raise FormatError(
            f"STELAE_BATCH_SIZE must be a whole number from 1 to 10000, not {raw_size!r}"
        )
    try:
        window = float(raw_window)
    except ValueError as err:
        raise FormatError(f"STELAE_BATCH_WINDOW_SECONDS is not a number: {raw_window!r}") from err
    if not 0 < window <= MAX_WINDOW_SECONDS:  # NaN fails this too
        raise FormatError(
            f"STELAE_BATCH_WINDOW_SECONDS must be more than 0 and at most 300, not {raw_window!r}"
        )
    return int(raw_size), window


def _mldsa_env(env: Mapping[str, str]) -> dict[str, str]:
    """``STELAE_MLDSA_VKEY`` and ``STELAE_MLDSA_SIGNING_KEY_PARAM``: both or neither."""
    vkey = env.get("STELAE_MLDSA_VKEY", "")
    parameter = env.get("STELAE_MLDSA_SIGNING_KEY_PARAM", "")
    if bool(vkey) != bool(parameter):
        raise FormatError(
            "set both STELAE_MLDSA_VKEY and STELAE_MLDSA_SIGNING_KEY_PARAM, or neither"
        )
    if vkey:
        try:
            key_ref(vkey)
        except FormatError as err:
            raise FormatError(f"STELAE_MLDSA_VKEY: {err}") from err
    return {"mldsa_vkey": vkey, "mldsa_key_parameter": parameter}


def key_ref(vkey: str) -> tuple[str, int]:
    """``(name, key ID)`` of a vkey, or of its ``name+hex8`` prefix alone: the pair that names a
    key in signature lines (https://c2sp.org/signed-note). The key ID hashes the whole public
    key, so the prefix still tells a mixed-up key from the configured one."""
    name, sep, hex8 = vkey.partition("+")
    if sep and "+" not in hex8:
        if len(hex8) != 8 or any(c not in "0123456789abcdef" for c in hex8):
            raise FormatError(f"{vkey!r} is neither a vkey nor name+<8 lowercase hex digits>")
        return name, int(hex8, 16)
    verifier = parse_vkey(vkey)
    return verifier.name, verifier.key_id


def _secure_string(ssm_client: Any, name: str) -> str:
    """The decrypted value of the SecureString ``name``; anything else (a plain String, an
    empty value) is refused, so a key never sits unencrypted in Parameter Store."""
    value = ssm_client.get_parameter(Name=name, WithDecryption=True)
    parameter = value.get("Parameter") or {}
    if parameter.get("Type") != "SecureString":
        raise StelaeError(
            f"the signing key parameter {name!r} is not a SecureString",
            hint="create it with `aws ssm put-parameter --type SecureString`",
        )
    text = str(parameter.get("Value") or "").strip()
    if not text:
        raise StelaeError(f"the signing key parameter {name!r} is empty")
    return text


@dataclass(frozen=True)
class WitnessSettings:
    """The sequencer's witness policy on AWS: the same :class:`WitnessCollector` as ``stelae
    serve --witness-policy``, its policy read from the bucket rather than the environment.

    Why an object and not the policy's text in a variable: Lambda allows 4 KB of environment in
    all, and a policy of a dozen witnesses (name, vkey and URL each) is already half of that. The
    object's SHA-256 is in the environment instead, so that a changed policy is a changed
    function configuration (new containers read the new text) and a container never runs with a
    policy other than the one deployed.
    """

    policy_key: str
    policy_sha256: str
    fail_open: bool = False
    timeout_seconds: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WitnessSettings | None:
        key = env.get("STELAE_WITNESS_POLICY_KEY", "")
        if not key:
            return None
        digest = env.get("STELAE_WITNESS_POLICY_SHA256", "").lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise FormatError("STELAE_WITNESS_POLICY_SHA256 must be 64 hex digits")
        fail_open = env.get("STELAE_WITNESS_FAIL_OPEN", "false").lower()
        if fail_open not in ("true", "false"):
            raise FormatError("STELAE_WITNESS_FAIL_OPEN must be true or false")
        try:
            timeout = float(env.get("STELAE_WITNESS_TIMEOUT_SECONDS", "10"))
        except ValueError as err:
            raise FormatError("STELAE_WITNESS_TIMEOUT_SECONDS is not a number") from err
        if not 0 < timeout <= 600:
            raise FormatError("STELAE_WITNESS_TIMEOUT_SECONDS must be in (0, 600]")
        return cls(key, digest, fail_open == "true", timeout)

    def policy(self, store: S3Store, vkey: str, mldsa_vkey: str = "") -> Policy:
        """The policy object, checked against its digest and required to name this log."""
        data = store.get(self.policy_key)
        actual = hashlib.sha256(data).hexdigest()
        if actual != self.policy_sha256:
            raise StelaeError(
                f"the witness policy {self.policy_key!r} has SHA-256 {actual}, "
                f"not {self.policy_sha256} (STELAE_WITNESS_POLICY_SHA256)",
                hint="re-apply the Terraform module: it uploads the policy and sets its digest",
            )
        policy = Policy.parse(data)
        ours = {key_ref(v) for v in (vkey, mldsa_vkey) if v}
        listed = {(log.verifier.name, log.verifier.key_id) for log in policy.logs}
        if listed and not listed & ours:  # naming either log key (Ed25519, ML-DSA-44) is enough
            # A policy for another log would make every batch fail (or, fail-open, publish
            # nothing witnessed) for a reason the operator should see at once.
            raise StelaeError(f"the witness policy {self.policy_key!r} does not list this log")
        return policy

    def collector(self, store: S3Store, vkey: str, mldsa_vkey: str = "") -> WitnessCollector:
        return WitnessCollector(
            self.policy(store, vkey, mldsa_vkey),
            timeout=self.timeout_seconds,
            fail_open=self.fail_open,
        )
