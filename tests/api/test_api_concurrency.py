"""200 uploads at once over real HTTP: every one 201, provably included, exactly once.

The requests are signed before any is sent and released together by a barrier,
so they really do overlap in the server (and span several batches). Run against the in-process
server and against ``stelae serve --workers 2`` (two front-end processes, one sequencer).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stelae.client import signing
from stelae.sequencer.logdir import init_log
from tests.support.api import ORIGIN, LiveLog, Reply, check_v1, check_v2, served, start_serve

N = 200
BATCHING: dict[str, Any] = {"batch_max_age_ms": 20, "batch_max_size": 64}


@contextlib.contextmanager
def in_process(data: Path) -> Iterator[LiveLog]:
    with served(data, None, **BATCHING) as log:
        yield log


@contextlib.contextmanager
def two_workers(data: Path) -> Iterator[LiveLog]:
    init_log(data, ORIGIN, **BATCHING)
    serve = start_serve(data, "127.0.0.1:0", "--workers", "2")
    try:
        yield serve.log
    finally:
        status, stderr = serve.terminate()
        assert status == 0, stderr


def signed_requests() -> list[tuple[str, bytes]]:
    """N signed uploads (path, body), alternating Rekor v1 and v2: both APIs share the one
    sequencer."""
    key = signing.generate_key("ecdsa-p256")
    requests: list[tuple[str, bytes]] = []
    for i in range(N):
        artifact = f"concurrent artifact {i}".encode()
        if i % 2:
            sig = signing.sign_artifact(key, artifact)
            obj = signing.build_v1_hashedrekord(sig, key, artifact=artifact)
            requests.append(("/api/v1/log/entries", json.dumps(obj).encode()))
        else:
            digest = signing.digest(key, artifact)[1]
            obj = signing.build_v2_hashedrekord(signing.sign_digest(key, digest), key, digest)
            requests.append(("/api/v2/log/entries", json.dumps(obj).encode()))
    return requests


def upload_at_once(log: LiveLog, requests: list[tuple[str, bytes]]) -> list[Reply]:
    """Send every request from its own thread, released together by a barrier."""
    replies: list[Reply | BaseException | None] = [None] * len(requests)
    barrier = threading.Barrier(len(requests))

    def upload(i: int) -> None:
        path, body = requests[i]
        barrier.wait()
        try:
            replies[i] = log.request("POST", path, body, {"Content-Type": "application/json"})
        except BaseException as err:  # reported below, with the others
            replies[i] = err

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    ok = [r for r in replies if isinstance(r, Reply)]
    assert len(ok) == len(replies), [r for r in replies if not isinstance(r, Reply)][:3]
    return ok


def check_replies(
    log: LiveLog, requests: list[tuple[str, bytes]], replies: list[Reply]
) -> tuple[list[int], list[bytes]]:
    """Each reply's index and canonical body, checked against the log (201, proof verified)."""
    indices: list[int] = []
    bodies: list[bytes] = []
    for (path, _), reply in zip(requests, replies, strict=True):
        if path.startswith("/api/v2/"):
            index, body = check_v2(log, reply, "hashedrekord", "0.0.2")
        else:
            index, body = check_v1(log, reply, "hashedrekord")
        indices.append(index)
        bodies.append(body)
    return indices, bodies


@pytest.mark.parametrize("server", [in_process, two_workers], ids=["one-process", "two-workers"])
def test_200_concurrent_uploads_each_included_exactly_once(
    tmp_path: Path, server: Callable[[Path], contextlib.AbstractContextManager[LiveLog]]
) -> None:
    requests = signed_requests()
    with server(tmp_path / "data") as log:
        indices, bodies = check_replies(log, requests, upload_at_once(log, requests))
        assert sorted(indices) == list(range(N))

        cp = log.client.checkpoint()
        assert cp.checkpoint.size == N
        # Really batched: more than one checkpoint was published on the way to N.
        assert len(list((log.log_dir / "checkpoints").iterdir())) > 2
        seen: Counter[bytes] = Counter()
        for first, bundle in log.client.bundles(0, cp.checkpoint):
            for offset, entry in enumerate(bundle.entries):
                seen[entry] += 1
                # each body sits at the index its 201 promised
                assert bodies[indices.index(first + offset)] == entry
        assert seen == Counter(bodies)
        assert set(seen.values()) == {1}
