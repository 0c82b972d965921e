"""The serverless witness's state in S3 (moto's server mode, real boto3 clients): a replacement
is conditioned on the record that was read, and a retried write whose first attempt landed is
recognised as its own (through a proxy that loses moto's answer to it)."""

from __future__ import annotations

import uuid

import boto3
import pytest
from botocore.config import Config

from stelae.witness.s3state import S3WitnessState
from stelae.witness.state import StateConflictError, origin_hash
from tests.conftest import MotoEndpoint
from tests.sequencer.test_store import FaultProxy
from tests.support.witness import MemoryTree

ORIGIN = MemoryTree().signer.name


def _state(endpoint: str, moto: MotoEndpoint, retries: int = 1) -> S3WitnessState:
    bucket = f"w{uuid.uuid4().hex[:12]}"
    moto.client("s3").create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=moto.region,
        config=Config(retries={"total_max_attempts": retries, "mode": "standard"}),
    )
    return S3WitnessState(client, bucket, ".state/witness/")


def test_a_replacement_of_a_record_that_moved_writes_nothing(moto_server: MotoEndpoint) -> None:
    state = _state(moto_server.url, moto_server)
    tree = MemoryTree().grow(8)
    with state.locked(ORIGIN) as first, state.locked(ORIGIN) as second:
        first.replace(tree.note(4), tree.checkpoint(4))
        with pytest.raises(StateConflictError):
            second.replace(tree.note(5), tree.checkpoint(5))  # created meanwhile
    with state.locked(ORIGIN) as third, state.locked(ORIGIN) as fourth:
        assert third.checkpoint == tree.checkpoint(4)
        third.replace(tree.note(8), tree.checkpoint(8))
        with pytest.raises(StateConflictError):
            fourth.replace(tree.note(6), tree.checkpoint(6))  # replaced meanwhile
    assert state.latest(origin_hash(ORIGIN)) == tree.note(8)
    assert state.latest("not-a-hash") is None


def test_a_retried_write_that_had_landed_is_its_own(moto_server: MotoEndpoint) -> None:
    tree = MemoryTree().grow(4)
    with FaultProxy(moto_server.url) as proxy:
        state = _state(proxy.url, moto_server, retries=3)
        # The record's read goes through; moto's answer to the write is lost (a 500), so
        # botocore sends it again and S3 refuses it (412): the object holds our bytes.
        proxy.faults = ["forward", "lost"]
        with state.locked(ORIGIN) as record:
            record.replace(tree.note(4), tree.checkpoint(4))
        assert [f for _, f in proxy.seen[:3]] == ["forward", "lost", "forward"]
        assert state.latest(origin_hash(ORIGIN)) == tree.note(4)
