"""``stelae serve --workers N``: front-end processes beside one sequencer, as real processes.

What the supervisor promises: workers that die are replaced and the log keeps taking uploads;
when the supervisor dies, requests waiting in a worker are refused (503, never a false 201) and
the workers exit instead of serving a log nobody sequences; ``--workers 1`` is one process.
Every wait is on an event (a line on stderr, a pidfd becoming readable), never a sleep.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import socket
import threading
from pathlib import Path

import pytest

from stelae.client import signing
from stelae.sequencer.batcher import QueueFullError, ShuttingDownError
from stelae.sequencer.logdir import init_log
from stelae.sequencer.pending import PendingEntry
from stelae.sequencer.receipt import Receipt
from stelae.server.relay import Channel, RemoteSubmitter, SequencingFailedError
from tests.support.api import ORIGIN, ServeProcess, check_v2, start_serve

V2 = "/api/v2/log/entries"
JSON = {"Content-Type": "application/json"}


def v2_request(key: signing.PrivateKey, artifact: bytes) -> bytes:
    digest = signing.digest(key, artifact)[1]
    return json.dumps(
        signing.build_v2_hashedrekord(signing.sign_digest(key, digest), key, digest)
    ).encode()


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue  # a thread that ended meanwhile has no children to report
    return found


def parent_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    raise AssertionError(f"/proc/{pid}/status has no PPid line")


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait for a process that is not our child to exit: its pidfd becomes readable."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([fd], [], [], timeout)
        return bool(readable)
    finally:
        os.close(fd)


def read_until(serve: ServeProcess, needle: str) -> str:
    assert serve.proc.stderr is not None
    while True:
        line = serve.proc.stderr.readline()
        assert line, f"stelae serve exited before printing {needle!r}"
        serve.stderr_lines.append(line)
        if needle in line:
            return line


pytestmark = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs Linux pidfds")


def test_two_workers_beside_the_supervisor(tmp_path: Path) -> None:
    serve = start_serve(tmp_path / "data", "127.0.0.1:0", "--workers", "2")
    try:
        assert "2 workers" in "".join(serve.stderr_lines)
        workers = children(serve.proc.pid)
        assert len(workers) == 2
        for pid in workers:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            assert b"stelae.server.worker" in cmdline
    finally:
        assert serve.terminate()[0] == 0
    assert all(wait_gone(pid, 30) for pid in workers)


def test_one_worker_is_one_process(tmp_path: Path) -> None:
    serve = start_serve(tmp_path / "data", "127.0.0.1:0", "--workers", "1")
    try:
        assert children(serve.proc.pid) == []
        key = signing.generate_key("ecdsa-p256")
        reply = serve.log.request("POST", V2, v2_request(key, b"single"), JSON)
        check_v2(serve.log, reply, "hashedrekord", "0.0.2")
    finally:
        assert serve.terminate()[0] == 0


def test_a_killed_worker_is_replaced_and_uploads_continue(tmp_path: Path) -> None:
    serve = start_serve(tmp_path / "data", "127.0.0.1:0", "--workers", "2")
    try:
        victim = children(serve.proc.pid)[0]
        os.kill(victim, signal.SIGKILL)
        read_until(serve, "starting another")
        replacement = int(read_until(serve, "is served by pid").split()[-1])
        # The replacement's parent is the supervisor. (Not children(): the replacement is spawned
        # by a watcher thread that ends right after this line, and while Linux moves a finished
        # thread's children to another thread they are briefly listed under neither.)
        assert parent_of(replacement) == serve.proc.pid
        assert replacement != victim
        assert wait_gone(victim, 30)
        key = signing.generate_key("ecdsa-p256")
        indices = []
        for i in range(12):  # fresh connections, so both workers (old and new) take some
            reply = serve.log.request("POST", V2, v2_request(key, b"after %d" % i), JSON)
            indices.append(check_v2(serve.log, reply, "hashedrekord", "0.0.2")[0])
        assert sorted(indices) == list(range(12))
    finally:
        status, stderr = serve.terminate()
    assert status == 0, stderr


def test_when_the_supervisor_dies_nothing_is_acknowledged_and_workers_exit(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    init_log(data, ORIGIN, batch_max_age_ms=60_000)  # nothing is integrated before the kill
    serve = start_serve(data, "127.0.0.1:0", "--workers", "2")
    workers = children(serve.proc.pid)
    key = signing.generate_key("ecdsa-p256")
    outcome: list[object] = []
    sent = threading.Event()

    def upload() -> None:
        conn = http.client.HTTPConnection(serve.log.host, serve.log.port, timeout=60)
        try:
            conn.request("POST", V2, v2_request(key, b"orphaned"), JSON)
            sent.set()
            resp = conn.getresponse()
            outcome.append((resp.status, resp.headers.get("Retry-After"), resp.read()))
        except (OSError, http.client.HTTPException) as err:
            outcome.append(err)  # cut before the worker read it: not an acknowledgement either
        finally:
            conn.close()

    thread = threading.Thread(target=upload)
    thread.start()
    assert sent.wait(10)
    serve.proc.kill()
    serve.proc.wait(30)
    thread.join(60)
    assert len(outcome) == 1
    if isinstance(outcome[0], tuple):  # the usual case: the worker had the request
        status, retry_after, body = outcome[0]
        assert status == 503, body
        assert retry_after
        assert "sequencer is unavailable" in json.loads(body)["message"]
    assert all(wait_gone(pid, 30) for pid in workers)
    assert not (data / "log" / "tile").exists()  # nothing was integrated, nothing acknowledged


def test_a_waiting_submission_fails_when_the_supervisor_end_closes() -> None:
    """The worker side of the relay, deterministically: the submit frame is read (so the
    request is waiting), then the supervisor's end closes: the wait ends in ShuttingDownError."""
    ours, theirs = socket.socketpair()
    closed = threading.Event()
    submitter = RemoteSubmitter(Channel(ours), closed.set)
    supervisor = Channel(theirs)
    errors: list[BaseException] = []

    def submit() -> None:
        try:
            submitter.submit(PendingEntry(b'{"x":1}'), 60)
        except BaseException as err:  # checked below
            errors.append(err)

    thread = threading.Thread(target=submit)
    thread.start()
    message = supervisor.receive()
    assert message[0] == "submit" and message[2] == PendingEntry(b'{"x":1}')
    supervisor.close()
    thread.join(10)
    assert closed.is_set()
    assert len(errors) == 1 and isinstance(errors[0], ShuttingDownError), errors
    with pytest.raises(ShuttingDownError, match="sequencer is unavailable"):
        submitter.submit(PendingEntry(b'{"x":2}'), 60)


def test_receipts_and_refusals_cross_the_relay() -> None:
    """Supervisor answers for three submissions in one frame: a receipt, a full queue (with its
    Retry-After) and a failed batch each reach the right waiting request."""
    ours, theirs = socket.socketpair()
    submitter = RemoteSubmitter(Channel(ours))
    supervisor = Channel(theirs)
    results: dict[int, object] = {}

    def submit(n: int) -> None:
        try:
            results[n] = submitter.submit(PendingEntry(b'{"n":%d}' % n), 60)
        except BaseException as err:  # checked below
            results[n] = err

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    ids = {}
    for _ in range(3):
        _, rid, entry = supervisor.receive()
        ids[json.loads(entry.body)["n"]] = rid
    receipt = Receipt(41, False, 1700000000, b"checkpoint", 42, b"set")
    supervisor.send(
        [
            ("ok", ids[0], receipt),
            ("refused", ids[1], "full", "12 the log is busy", 7),
            ("refused", ids[2], "failed", "sequencing failed: disk full", 1),
        ]
    )
    for t in threads:
        t.join(10)
    assert results[0] == receipt
    assert isinstance(results[1], QueueFullError) and results[1].retry_after == 7
    assert str(results[1]) == "the log is busy" and results[1].pending == 12
    assert isinstance(results[2], SequencingFailedError)
    assert "disk full" in str(results[2])
    supervisor.close()
