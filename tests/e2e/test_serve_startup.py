"""``stelae serve`` refuses a data directory it could only half use, at start, naming the path.

Run as a subprocess, as a user runs it: a ``.state/intent`` that is a directory, a ``.state``
that is a file, a deleted ``signing.key`` or ``config.json`` beside a published log. Before,
the first two started and answered every write 500; the key's absence was reported as "holds no
stelae log" with advice to run ``stelae init``, which would create a different log.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.api import ORIGIN, served, stelae_command


def _serve(data: Path) -> tuple[int, str]:
    """Start ``stelae serve`` and return (exit status, stderr) once it exits; fail if it serves."""
    proc = subprocess.Popen(
        [
            *stelae_command(),
            "serve",
            "--data",
            str(data),
            "--origin",
            ORIGIN,
            "--listen",
            "127.0.0.1:0",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("verifier key: "):  # it started serving: the refusal is missing
            proc.terminate()
            proc.communicate(timeout=60)
            raise AssertionError(f"stelae serve started: {''.join(lines)}")
    return proc.wait(60), "".join(lines)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data directory holding a log with one published checkpoint."""
    data = tmp_path / "data"
    with served(data):
        pass
    assert (data / "log" / "checkpoint").is_file()
    return data


def _intent_dir(data: Path) -> Path:
    path = data / "log" / ".state" / "intent"
    if path.exists():
        path.unlink()
    path.mkdir(parents=True)
    return path


def _state_file(data: Path) -> Path:
    path = data / "log" / ".state"
    if path.exists():
        shutil.rmtree(path)
    path.write_bytes(b"not a directory\n")
    return path


@pytest.mark.parametrize(
    ("break_it", "words"),
    [(_intent_dir, "is not a regular file"), (_state_file, "is not a directory")],
    ids=["intent-is-a-directory", "state-is-a-file"],
)
def test_a_wrong_kind_of_state_path_is_refused_at_start(
    data: Path, break_it: Callable[[Path], Path], words: str
) -> None:
    path = break_it(data)
    status, err = _serve(data)
    assert status == 1, err
    assert f"error: {path} {words}" in err
    assert "Traceback" not in err


def test_a_missing_signing_key_is_named_and_init_is_not_advised(data: Path) -> None:
    (data / "signing.key").unlink()
    status, err = _serve(data)
    assert status == 1, err
    assert f"the signing key {data / 'signing.key'} of the log '{ORIGIN}' is missing" in err
    assert "holds no stelae log" not in err
    assert "stelae init --data" not in err
    assert not (data / "signing.key").exists()  # and nothing was created in its place


def test_a_missing_config_beside_a_published_log_is_refused(data: Path) -> None:
    (data / "config.json").unlink()
    key = (data / "signing.key").read_bytes()
    status, err = _serve(data)
    assert status == 1, err
    assert f"{data / 'config.json'} is missing, but {data / 'log'} holds a published log" in err
    assert not (data / "config.json").exists()
    assert (data / "signing.key").read_bytes() == key  # no new key over the old log
