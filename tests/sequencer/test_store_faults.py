"""Faults that are not the client's: a full disk, a log that contradicts itself, a lost race.

Each is answered 503 with Retry-After (the entry was not logged; the same request succeeds once
the fault is gone), never a 500 with a traceback. The full disk is a real one: a 4 MiB tmpfs
mounted for the test (CI runs as root), filled until the kernel says ENOSPC.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import subprocess
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from stelae.api.http import Request
from stelae.api.wiring import write_service
from stelae.client import signing
from stelae.sequencer.batcher import Batcher, LogHaltedError
from stelae.sequencer.pending import PendingEntry
from stelae.sequencer.receipt import IntegrationResult, LogCorruptedError, LostRaceError, Receipt
from stelae.sequencer.store import StoreFullError
from stelae.server.relay import Channel, Relay, RemoteSubmitter
from tests.support.api import make_log, served

V2 = "/api/v2/log/entries"
JSON = {"content-type": "application/json"}


def _request(text: bytes) -> bytes:
    key = signing.generate_key("ecdsa-p256")
    digest = signing.digest(key, text)[1]
    request = signing.build_v2_hashedrekord(signing.sign_digest(key, digest), key, digest)
    return json.dumps(request).encode()


# -- a real full file system ------------------------------------------------------------------


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "fs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def _fill(path: Path) -> None:
    """Write zeros to ``path`` until the file system refuses with ENOSPC."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        block = bytes(65536)
        while True:
            try:
                os.write(fd, block)
            except OSError as err:
                assert err.errno == errno.ENOSPC, err
                break
        while True:  # the last partial page
            try:
                os.write(fd, b"\0")
            except OSError as err:
                assert err.errno == errno.ENOSPC, err
                return
    finally:
        os.close(fd)


def test_a_full_disk_is_503_with_retry_after_and_nothing_is_logged(
    tiny_fs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with served(tiny_fs / "data") as live:
        assert live.request("POST", V2, _request(b"fits"), JSON).status == 201
        checkpoint = live.checkpoint_bytes()
        _fill(tiny_fs / "filler")
        with caplog.at_level(logging.ERROR, logger="stelae"):
            reply = live.request("POST", V2, _request(b"no room"), JSON)
        assert reply.status == 503, reply.body
        assert reply.header("retry-after") == "30"
        assert "storage is full" in reply.json["message"]
        assert live.checkpoint_bytes() == checkpoint  # nothing published
        assert "storage full" in caplog.text and "Traceback" not in caplog.text
        # Reads still work meanwhile.
        assert live.request("GET", "/checkpoint").status == 200


# -- the mapping, through the service with a failing sequencer --------------------------------


class FailingSequencer:
    """A sequencer whose every batch fails with ``error`` (what the batcher calls)."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.calls = 0

    def integrate(self, entries: Sequence[PendingEntry]) -> IntegrationResult:
        self.calls += 1
        raise self.error

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def log_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The verifier key and directory of a fresh log."""
    data = tmp_path_factory.mktemp("faults") / "data"
    yield make_log(data), data


FAULTS = [
    (StoreFullError("couldn't write 'tile/0/000': the file system is full"), "30", "full"),
    (LogCorruptedError("tile/0/000 does not match the checkpoint"), "60", "halted"),
    (LostRaceError("other sequencers kept publishing first"), "1", "other sequencers"),
]


@pytest.mark.parametrize(("error", "retry_after", "message"), FAULTS, ids=lambda v: str(v)[:20])
def test_sequencer_faults_are_503_in_one_process(
    log_data: tuple[str, Path],
    error: BaseException,
    retry_after: str,
    message: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from stelae.api.submit import InProcessSubmitter
    from stelae.sequencer.logdir import open_log

    vkey, data = log_data
    sequencer = FailingSequencer(error)
    batcher = Batcher(sequencer, max_age=0)  # type: ignore[arg-type]
    batcher.start()
    try:
        service = write_service(InProcessSubmitter(batcher), open_log(data).store, vkey)
        with caplog.at_level(logging.ERROR, logger="stelae"):
            answer = service.handle(Request("POST", V2, JSON, {}, _request(b"fault")))
    finally:
        batcher.stop()
    assert sequencer.calls == 1
    assert answer.status == 503, answer.body
    assert answer.headers["Retry-After"] == retry_after
    assert message in json.loads(answer.body)["message"]
    assert not any(r.exc_info for r in caplog.records)  # no traceback: not a bug


@pytest.mark.parametrize(("error", "retry_after", "message"), FAULTS[:2], ids=["full", "halted"])
def test_sequencer_faults_keep_their_type_across_the_workers_relay(
    error: BaseException, retry_after: str, message: str
) -> None:
    """With --workers the batch fails in the supervisor; the worker's request still gets the
    fault's own 503, not the generic 'sequencing failed' that became a 500."""
    from stelae.api.errors import error_response

    ours, theirs = socket.socketpair()
    batcher = Batcher(FailingSequencer(error), max_age=0)  # type: ignore[arg-type]
    batcher.start()
    relay = Relay(Channel(theirs), batcher, lambda pid: None)
    relay.start()
    submitter = RemoteSubmitter(Channel(ours))
    outcome: list[BaseException | Receipt] = []
    thread = threading.Thread(
        target=lambda: outcome.append(_submit(submitter, PendingEntry(b'{"x":1}')))
    )
    thread.start()
    thread.join(30)
    submitter.channel.close()
    relay.join()
    batcher.stop()
    # A fatal fault halts the supervisor's batcher: the worker's writer learns the log halted.
    expected = LogHaltedError if isinstance(error, LogCorruptedError) else type(error)
    assert len(outcome) == 1 and isinstance(outcome[0], expected), outcome
    answer = error_response(outcome[0])
    assert answer.status == 503 and answer.headers["Retry-After"] == retry_after


def _submit(submitter: RemoteSubmitter, entry: PendingEntry) -> BaseException | Receipt:
    try:
        return submitter.submit(entry, 30)
    except Exception as err:  # the outcome under test
        return err
