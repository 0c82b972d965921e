"""The read client against logs served over real HTTP on loopback, and from a directory."""

from __future__ import annotations

import gzip
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from stelae.tiles.checkpoint import Checkpoint, CheckpointMismatchError, sign_checkpoint
from stelae.tiles.client import InconsistentCheckpointsError, LogClient
from stelae.tiles.errors import NotFoundError, VerificationError
from stelae.tiles.fetch import (
    CachingFetcher,
    DirectoryFetcher,
    FetchError,
    HTTPFetcher,
)
from stelae.tiles.note import InvalidSignatureError, UnverifiedNoteError
from stelae.tiles.notekeys import Ed25519NoteSigner
from stelae.tiles.proof import RootMismatchError
from tests.support.fetch import CountingFetcher
from tests.support.tlog import MemoryLog

ORIGIN = "example.test/log"


def write_log(root: Path, log: MemoryLog, signer: Ed25519NoteSigner) -> bytes:
    for path, data in log.objects.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    cp = sign_checkpoint(Checkpoint(ORIGIN, log.edge.size, log.edge.root()), signer)
    (root / "checkpoint").write_bytes(cp)
    return cp


class _Handler(http.server.SimpleHTTPRequestHandler):
    gzip_paths: ClassVar[set[str]] = set()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        rel = self.path.lstrip("/")
        if rel in self.gzip_paths and "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress((Path(self.directory) / rel).read_bytes())
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return None
        return super().send_head()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    handler = lambda *a, **kw: _Handler(*a, directory=str(tmp_path), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", tmp_path
    finally:
        server.shutdown()
        thread.join()


def _grow(log: MemoryLog, n: int) -> None:
    start = log.edge.size
    log.append([f"entry {i}".encode() for i in range(start, start + n)])


def test_entries_verify_over_http(served: tuple[str, Path]) -> None:
    url, root = served
    signer = Ed25519NoteSigner.generate(ORIGIN)
    log = MemoryLog()
    _grow(log, 300)
    _grow(log, 30)
    write_log(root, log, signer)
    _Handler.gzip_paths = {"tile/entries/001.p/74"}
    counting = CountingFetcher(HTTPFetcher(url))
    client = LogClient(CachingFetcher(counting), [signer.verifier], ORIGIN)
    cp = client.checkpoint()
    assert cp.checkpoint.size == 330
    for i in (0, 255, 256, 329):
        entry = client.entry(i, cp)
        assert entry.data == f"entry {i}".encode()
    # Tiles are cached: reading the same entries again fetches nothing new but the checkpoint.
    before = len(counting.paths)
    client.entry(329, client.checkpoint())
    assert counting.paths[before:] == ["checkpoint"]


def test_tampered_tile_is_rejected(served: tuple[str, Path]) -> None:
    url, root = served
    signer = Ed25519NoteSigner.generate(ORIGIN)
    log = MemoryLog()
    _grow(log, 600)
    write_log(root, log, signer)
    tile = bytearray((root / "tile/0/001").read_bytes())
    tile[5] ^= 0xFF
    (root / "tile/0/001").write_bytes(bytes(tile))
    client = LogClient(HTTPFetcher(url), [signer.verifier], ORIGIN)
    with pytest.raises(RootMismatchError):
        client.entry(300)  # its proof hashes leaves 256..287 from tile 0/001
    client.entry(10)  # entry 10 needs only the level-1 tile, which is intact


def test_tampered_entry_is_rejected(tmp_path: Path) -> None:
    signer = Ed25519NoteSigner.generate(ORIGIN)
    log = MemoryLog()
    _grow(log, 20)
    write_log(tmp_path, log, signer)
    bundle = (tmp_path / "tile/entries/000.p/20").read_bytes().replace(b"entry 7", b"entry X")
    (tmp_path / "tile/entries/000.p/20").write_bytes(bundle)
    client = LogClient(DirectoryFetcher(tmp_path), [signer.verifier], ORIGIN)
    client.entry(6)
    with pytest.raises(RootMismatchError):
        client.entry(7)


def test_checkpoint_key_and_origin_checks(tmp_path: Path) -> None:
    signer = Ed25519NoteSigner.generate(ORIGIN)
    log = MemoryLog()
    _grow(log, 3)
    write_log(tmp_path, log, signer)
    fetcher = DirectoryFetcher(tmp_path)
    other = Ed25519NoteSigner.generate(ORIGIN)
    with pytest.raises(UnverifiedNoteError):
        LogClient(fetcher, [other.verifier], ORIGIN).checkpoint()
    with pytest.raises(CheckpointMismatchError):
        LogClient(fetcher, [signer.verifier], "another.origin").checkpoint()
    cp = (tmp_path / "checkpoint").read_bytes()
    (tmp_path / "checkpoint").write_bytes(cp.replace(b"\n3\n", b"\n4\n"))
    with pytest.raises(InvalidSignatureError):
        LogClient(fetcher, [signer.verifier], ORIGIN).checkpoint()


def test_consistency_and_fork_detection(tmp_path: Path) -> None:
    signer = Ed25519NoteSigner.generate(ORIGIN)
    log = MemoryLog()
    _grow(log, 100)
    client = LogClient(DirectoryFetcher(tmp_path), [signer.verifier], ORIGIN)
    write_log(tmp_path, log, signer)
    old = client.checkpoint()
    _grow(log, 500)
    write_log(tmp_path, log, signer)
    new = client.checkpoint()
    proof = client.prove_consistency(old, new)
    assert proof, "a real proof from 100 to 600"
    # A fork: the same signer publishes a different tree of the same history length.
    forked = MemoryLog()
    forked.append([b"evil"] + [f"entry {i}".encode() for i in range(1, 700)])
    fork_dir = tmp_path / "fork"
    fork_dir.mkdir()
    write_log(fork_dir, forked, signer)
    fork_client = LogClient(DirectoryFetcher(fork_dir), [signer.verifier], ORIGIN)
    forked_cp = fork_client.checkpoint()
    with pytest.raises(InconsistentCheckpointsError) as info:
        fork_client.prove_consistency(old, forked_cp)
    assert info.value.old == old.to_bytes() and info.value.new == forked_cp.to_bytes()
    with pytest.raises(InconsistentCheckpointsError, match="shrank"):
        client.prove_consistency(new, old)


def test_http_fetcher_errors(served: tuple[str, Path]) -> None:
    url, _ = served
    with pytest.raises(NotFoundError):
        HTTPFetcher(url).fetch("tile/0/000")
    sleeps: list[float] = []
    dead = HTTPFetcher("http://127.0.0.1:9/", attempts=3, timeout=1, sleep=sleeps.append)
    with pytest.raises(FetchError, match="couldn't fetch"):
        dead.fetch("checkpoint")
    assert len(sleeps) == 2, "retried with backoff between attempts"
    with pytest.raises(VerificationError.__mro__[1]):  # FormatError is a StelaeError
        HTTPFetcher("ftp://example.test/")
    with pytest.raises(ValueError, match="relative path"):
        HTTPFetcher(url).fetch("../etc/passwd")


def test_sizes_never_published_are_read_from_a_later_checkpoint(tmp_path: Path) -> None:
    """The log published 256 and 400 only; proofs about size 300 use the size-400 tiles."""
    signer = Ed25519NoteSigner.generate(ORIGIN)
    log = MemoryLog()
    _grow(log, 256)
    _grow(log, 144)
    write_log(tmp_path, log, signer)
    client = LogClient(DirectoryFetcher(tmp_path), [signer.verifier], ORIGIN)
    cp = client.checkpoint()
    from stelae.tiles.compact import RightEdge
    from stelae.tiles.hashing import leaf_hash
    from stelae.tiles.proof import verify_consistency

    hashes = [leaf_hash(e) for e in log.entries]
    root300 = RightEdge.empty().append(hashes[:300]).root()
    assert client.tiles.root(300) == root300
    proof = client.tiles.consistency_proof(300, 400)
    verify_consistency(300, 400, proof, root300, cp.checkpoint.root_hash)
    assert client.tiles.bundle(1, 300).entries[-1] == b"entry 299"
