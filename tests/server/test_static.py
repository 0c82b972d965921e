"""Static reads of a log directory: only regular files inside the published layout, never through
a symbolic link, and an answer for every path (stelae/server/static.py)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from stelae.server.static import StaticFiles
from tests.support.api import LiveLog, served

SECRET = b"private intent bytes\n"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A log directory with a private .state/ and published files beside it."""
    root = tmp_path / "log"
    (root / ".state").mkdir(parents=True)
    (root / ".state" / "intent").write_bytes(SECRET)
    (root / "tile" / "0").mkdir(parents=True)
    (root / "tile" / "0" / "000").write_bytes(b"\x01" * 32)
    (root / "index").mkdir()
    (root / "checkpoints").mkdir()
    (root / "checkpoint").write_bytes(b"origin\n1\nroot\n")
    (tmp_path / "outside").write_bytes(SECRET)
    return root


def test_regular_published_files_are_served(tree: Path) -> None:
    res = StaticFiles(tree).get("/tile/0/000")
    assert res.status == 200 and res.body == b"\x01" * 32
    assert StaticFiles(tree).get("/checkpoint").body == b"origin\n1\nroot\n"


@pytest.mark.parametrize(
    ("link", "target", "url"),
    [
        # a link as the last component, into .state/ (what leaked the intent) and outside the log
        ("index/x", "../.state/intent", "/index/x"),
        ("tile/0/001", "../../../outside", "/tile/0/001"),
        ("tile/0/002", str(Path("/etc/hostname")), "/tile/0/002"),
        ("tile/0/003", "000", "/tile/0/003"),  # even to a published file: links are not served
        # a link as a directory component
        ("tile/1", "../.state", "/tile/1/intent"),
        ("index/d", "..", "/index/d/.state/intent"),
        ("index/e", "../tile/0", "/index/e/000"),
    ],
)
def test_symlinks_are_never_followed(tree: Path, link: str, target: str, url: str) -> None:
    os.symlink(target, tree / link)
    res = StaticFiles(tree).get(url)
    assert res.status == 404, res.body
    assert SECRET not in res.body


def test_only_regular_files_are_served(tree: Path) -> None:
    (tree / "tile" / "0" / "dir").mkdir()
    os.mkfifo(tree / "tile" / "0" / "fifo")  # opening it must not wait for a writer
    static = StaticFiles(tree)
    assert static.get("/tile/0/dir").status == 404
    assert static.get("/tile/0/fifo").status == 404
    assert static.get("/tile/0").status == 404
    assert static.get("/.state/intent").status == 404
    assert static.get("/tile/0/000/x").status == 404  # a file used as a directory: ENOTDIR


@pytest.mark.parametrize(
    "url", ["/tile/0/" + "a" * 300, "/checkpoints/" + "9" * 300, "/index/" + "é" * 200]
)
def test_a_segment_longer_than_the_file_system_allows_is_404(tree: Path, url: str) -> None:
    assert StaticFiles(tree).get(url).status == 404


# -- over HTTP ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveLog]:
    with served(tmp_path_factory.mktemp("static") / "data") as log:
        yield log


def _get(live: LiveLog, path: str) -> bytes:
    """A raw GET and everything the server sends until it closes (it is asked to)."""
    with socket.create_connection((live.host, live.port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data


@pytest.mark.parametrize("path", ["/tile/0/" + "a" * 300, "/checkpoints/" + "9" * 4000])
def test_a_long_segment_is_answered_not_dropped(live: LiveLog, path: str) -> None:
    # The parent directory exists, so the file system itself is asked about the long name.
    (live.log_dir / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
    assert _get(live, path).startswith(b"HTTP/1.1 404 ")


def test_a_symlink_into_state_is_not_served_over_http(live: LiveLog) -> None:
    state = live.log_dir / ".state"
    assert state.is_dir()
    intent = state / "intent"
    target = intent.relative_to(live.log_dir) if intent.exists() else Path(".state")
    link = live.log_dir / "index" / "leak"
    link.parent.mkdir(exist_ok=True)
    os.symlink(Path("..") / target, link)
    try:
        reply = _get(live, "/index/leak")
        assert reply.startswith(b"HTTP/1.1 404 ")
    finally:
        link.unlink()
