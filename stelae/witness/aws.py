"""Configuration and wiring of the serverless witness, read from its Lambda's environment.

Environment variables (set by the Terraform module, terraform/modules/stelae/witness.tf; none
holds key material):

===================================  =====================================================
``STELAE_WITNESS_BUCKET``            the S3 bucket holding the witness's objects
``STELAE_WITNESS_PREFIX``            their key prefix (default ``.state/witness/``): the
                                     log list at ``<prefix>log-list``, each log's latest
                                     cosigned checkpoint at ``<prefix>logs/<sha256 hex>``
``STELAE_WITNESS_LOG_LIST_SHA256``   the SHA-256 (hex) the log list object must have
``STELAE_WITNESS_KEY_PARAM``         name of the SSM SecureString holding the witness key
                                     file that ``stelae witness init`` writes (the operator
                                     creates it with ``aws ssm put-parameter``)
``STELAE_WITNESS_VKEY``              optional: the witness's verifier key; a key in Parameter
                                     Store that does not match it is refused
===================================  =====================================================

The log list is an object, not a variable: Lambda allows 4 KB of environment in all, and the
witness network's list of logs is larger than that. Its digest is in the environment, so that a
changed list is a changed function configuration (new containers read it) and a container never
witnesses under a list other than the one deployed.

Each log's ``qpd`` budget is counted per container (:mod:`stelae.witness.ratelimit`): Lambda may
run several, so a log may get up to that many times its budget. The budget protects the witness
from abuse, never its safety, which rests on the conditional writes alone
(:mod:`stelae.witness.s3state`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stelae.errors import StelaeError
from stelae.tiles.errors import FormatError
from stelae.witness.identity import WitnessSigner, parse_key, vkey_of
from stelae.witness.loglist import LogList
from stelae.witness.protocol import Witness
from stelae.witness.s3state import S3WitnessState

__all__ = ["WitnessAwsConfig"]

DEFAULT_PREFIX = ".state/witness/"
LOG_LIST = "log-list"


@dataclass(frozen=True)
class WitnessAwsConfig:
    bucket: str
    key_parameter: str
    log_list_sha256: str
    prefix: str = DEFAULT_PREFIX
    vkey: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WitnessAwsConfig:
        env = os.environ if env is None else env
        names = ("STELAE_WITNESS_BUCKET", "STELAE_WITNESS_KEY_PARAM")
        missing = [v for v in (*names, "STELAE_WITNESS_LOG_LIST_SHA256") if not env.get(v)]
        if missing:
            raise FormatError(f"missing environment variables: {', '.join(missing)}")
        digest = env["STELAE_WITNESS_LOG_LIST_SHA256"].lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise FormatError("STELAE_WITNESS_LOG_LIST_SHA256 must be 64 hex digits")
        return cls(
            bucket=env["STELAE_WITNESS_BUCKET"],
            key_parameter=env["STELAE_WITNESS_KEY_PARAM"],
            log_list_sha256=digest,
            prefix=env.get("STELAE_WITNESS_PREFIX", DEFAULT_PREFIX),
            vkey=env.get("STELAE_WITNESS_VKEY", ""),
        )

    def state(self, s3_client: Any) -> S3WitnessState:
        return S3WitnessState(s3_client, self.bucket, self.prefix)

    def log_list(self, state: S3WitnessState) -> LogList:
        key = self.prefix + LOG_LIST
        found = state.read(key)
        if found is None:
            raise StelaeError(f"the witness's log list s3://{self.bucket}/{key} does not exist")
        actual = hashlib.sha256(found[0]).hexdigest()
        if actual != self.log_list_sha256:
            raise StelaeError(
                f"the log list {key!r} has SHA-256 {actual}, not {self.log_list_sha256} "
                "(STELAE_WITNESS_LOG_LIST_SHA256)",
                hint="re-apply the Terraform module: it uploads the list and sets its digest",
            )
        return LogList.parse(found[0])

    def signer(self, ssm_client: Any) -> WitnessSigner:
        """The witness key from Parameter Store, as the log's key is loaded
        (stelae.sequencer.aws): a SecureString, never in Terraform, the bucket or the
        environment."""
        value = ssm_client.get_parameter(Name=self.key_parameter, WithDecryption=True)
        parameter = value.get("Parameter") or {}
        if parameter.get("Type") != "SecureString":
            raise StelaeError(
                f"the witness key parameter {self.key_parameter!r} is not a SecureString",
                hint="create it with `aws ssm put-parameter --type SecureString`",
            )
        data = str(parameter.get("Value") or "").encode()
        signer = parse_key(data, f"the parameter {self.key_parameter!r}")
        if self.vkey and vkey_of(signer) != self.vkey:
            raise StelaeError(
                "the witness key in Parameter Store does not match STELAE_WITNESS_VKEY"
            )
        return signer

    def witness(self, s3_client: Any, ssm_client: Any) -> Witness:
        state = self.state(s3_client)
        return Witness(self.signer(ssm_client), self.log_list(state), state)
