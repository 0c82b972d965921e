"""Rekor v1 reads over real HTTP on a log whose entries arrived in one batch, so that most tree
sizes were never published and have no partial tiles of their own.

Regression: ``GET /api/v1/log/proof?firstSize=3&lastSize=7`` answered 404 ("tile/0/000 not
found") because the service read tiles at the requested size instead of the published one.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from stelae.client import signing
from stelae.tiles.proof import verify_consistency
from tests.support.api import LiveLog, check_v2, served

N = 12


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A log of N entries integrated in one batch (the server is gone afterwards)."""
    key = signing.generate_key("ecdsa-p256")
    bodies = []
    for i in range(N):
        digest = signing.digest(key, b"one batch %d" % i)[1]
        obj = signing.build_v2_hashedrekord(signing.sign_digest(key, digest), key, digest)
        bodies.append(json.dumps(obj).encode())
    data = tmp_path_factory.mktemp("reads") / "data"
    with served(data, batch_max_age_ms=500) as live:
        replies = {}

        def post(i: int) -> None:
            replies[i] = live.request(
                "POST", "/api/v2/log/entries", bodies[i], {"Content-Type": "application/json"}
            )

        threads = [threading.Thread(target=post, args=(i,)) for i in range(N)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        for reply in replies.values():
            check_v2(live, reply, "hashedrekord", "0.0.2")
        assert live.size() == N
        assert not (live.log_dir / "tile/0/000.p/3").exists()  # size 3 was never published
    return data


@pytest.fixture
def log(data: Path) -> Iterator[LiveLog]:
    """A fresh server over that log: nothing about it is cached yet."""
    with served(data) as live:
        yield live


@pytest.mark.parametrize(("first", "last"), [(1, 2), (3, 7), (2, 12), (5, 5), (11, 12)])
def test_consistency_proof_between_unpublished_sizes(log: LiveLog, first: int, last: int) -> None:
    reply = log.request("GET", f"/api/v1/log/proof?firstSize={first}&lastSize={last}")
    assert reply.status == 200, reply.body
    proof = [bytes.fromhex(h) for h in reply.json["hashes"]]
    new_root = bytes.fromhex(reply.json["rootHash"])
    client = log.client
    client.checkpoint()  # verified; tiles are read at its size
    assert new_root == client.tiles.root(last)
    verify_consistency(first, last, proof, client.tiles.root(first), new_root)


@pytest.mark.parametrize("index", range(N))
def test_entry_by_index_inside_one_batch(log: LiveLog, index: int) -> None:
    reply = log.request("GET", f"/api/v1/log/entries?logIndex={index}")
    assert reply.status == 200, reply.body
    ((_, e),) = reply.json.items()
    assert e["logIndex"] == index
    assert e["verification"]["inclusionProof"]["treeSize"] == N


def test_log_info(log: LiveLog) -> None:
    reply = log.request("GET", "/api/v1/log")
    assert reply.status == 200
    cp = log.client.open_checkpoint(reply.json["signedTreeHead"].encode()).checkpoint
    assert reply.json["treeSize"] == cp.size == N
    assert bytes.fromhex(reply.json["rootHash"]) == cp.root_hash
