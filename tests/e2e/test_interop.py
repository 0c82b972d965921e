"""Interop with an independent implementation: Go's reference tlog code (golang.org/x/mod/sumdb).

"Compatibility is proven, not claimed." ``tests/e2e/interop/tlogcheck`` is a small Go program built
on ``golang.org/x/mod/sumdb/tlog`` and ``sumdb/note`` (see tests/e2e/interop/README.md). Both
directions:

1. stelae writes (the Sequencer, served by ``stelae serve`` over HTTP), Go verifies: the checkpoint
   signature, every tile it reads against the signed root, every entry against the level-0 tiles,
   inclusion proofs, and consistency with older checkpoints; and it rejects tampered tiles,
   bundles and checkpoints.
2. Go writes a log (tiles from ``tlog.StoredHashes``/``tlog.ReadTileData``, checkpoints signed
   with ``note.Sign``), a plain static server serves it, and stelae's LogClient and CLI read and
   verify it; and reject it once tampered.

The Go toolchain comes from Debian (``tests/e2e/interop/install.sh``). Without it these tests skip
on a developer machine but fail under CI (``CI`` set), so CI can never pass by silently skipping
them.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import http.server
import itertools
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stelae.errors import StelaeError
from stelae.sequencer.engine import Sequencer, SequencerConfig
from stelae.sequencer.logdir import init_log
from stelae.sequencer.pending import PendingEntry
from stelae.tiles.checkpoint import Checkpoint
from stelae.tiles.client import LogClient
from stelae.tiles.fetch import DirectoryFetcher, HTTPFetcher
from stelae.tiles.note import Note, sign_note
from stelae.tiles.notekeys import Ed25519NoteSigner, parse_vkey
from tests.support.cli import run_stelae

INTEROP = Path(__file__).parent / "interop"
GO_SOURCE = INTEROP / "tlogcheck" / "main.go"
GOPATH = Path("/usr/share/gocode")
GO_TLOG = GOPATH / "src/golang.org/x/mod/sumdb/tlog"

STELAE_ORIGIN = "127.0.0.1/stelae-interop"
GO_ORIGIN = "go.example/tlogcheck"
# Published sizes in both directions: one entry, exactly one full tile (no partial level-0 tile),
# a partial tile, exactly 256**2 (a full level-1 tile, a level-2 tile of width 1), and beyond it.
SIZES = (1, 256, 300, 65536, 70000)
SPOT_INDEXES = (0, 1, 7, 8, 255, 256, 299, 65535, 65536, 69999)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


# ------------------------------------------------------------------------------ the Go program


@pytest.fixture(scope="session")
def tlogcheck() -> Path:
    """The Go interop program, compiled once (cached by source hash and Go version)."""
    go = shutil.which("go")
    missing = [
        what
        for what, ok in (
            ("the go command (Debian golang-go)", go is not None),
            (f"{GO_TLOG} (Debian golang-golang-x-mod-dev)", GO_TLOG.is_dir()),
        )
        if not ok
    ]
    if missing:
        msg = (
            f"interop toolchain missing: {', '.join(missing)}. "
            "Install it with `bash tests/e2e/interop/install.sh` (needs root or sudo)."
        )
        if _in_ci():
            pytest.fail(f"CI is set, so the interop tests must run: {msg}", pytrace=False)
        pytest.skip(msg)
    assert go is not None
    version = subprocess.run([go, "version"], capture_output=True, text=True, check=True).stdout
    digest = hashlib.sha256(GO_SOURCE.read_bytes() + version.encode()).hexdigest()[:16]
    out_dir = Path(tempfile.gettempdir()) / f"stelae-tlogcheck-{digest}"
    binary = out_dir / "tlogcheck"
    if binary.exists():
        return binary
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GO111MODULE": "off",  # GOPATH mode: Debian's x/mod source, nothing downloaded
        "GOPATH": str(GOPATH),
        "GOCACHE": str(out_dir / "gocache"),
        "GOFLAGS": "",
        "GOPROXY": "off",
        "CGO_ENABLED": "0",
    }
    tmp = out_dir / f"tlogcheck.{os.getpid()}.tmp"
    build = subprocess.run(
        [go, "build", "-o", str(tmp), str(GO_SOURCE)],
        capture_output=True,
        text=True,
        env=env,
        cwd=out_dir,
        check=False,
    )
    if build.returncode != 0:
        pytest.fail(f"building {GO_SOURCE} failed:\n{build.stderr}", pytrace=False)
    tmp.replace(binary)
    return binary


@dataclass(frozen=True)
class GoResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, Any]:
        assert self.returncode == 0, self.stderr
        result: dict[str, Any] = json.loads(self.stdout)
        return result


def run_go(binary: Path, *args: str) -> GoResult:
    p = subprocess.run(
        [str(binary), *args], capture_output=True, text=True, timeout=60, check=False
    )
    return GoResult(p.returncode, p.stdout, p.stderr)


def go_verify(binary: Path, url: str, vkey: str, *extra: str) -> GoResult:
    # -keepalive=false: one connection per request. With keep-alive, `stelae serve` answers
    # every request after a connection's first ~40 ms late (headers and body are separate
    # writes and Nagle's algorithm is on), which makes the ~560 fetches take ~25 s.
    return run_go(binary, "verify", "-url", url, "-vkey", vkey, "-keepalive=false", *extra)


# ------------------------------------------------------------------------------ HTTP helpers


@dataclass
class StaticServer:
    """A plain static file server over ``root`` on 127.0.0.1 (not stelae's), with overrides:
    ``overrides[path] = bytes`` serves other bytes at that path; ``None`` makes it 404."""

    root: Path
    overrides: dict[str, bytes | None] = field(default_factory=dict)
    url: str = ""

    @contextlib.contextmanager
    def running(self) -> Iterator[StaticServer]:
        served = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.lstrip("/")
                if path in served.overrides:
                    body = served.overrides[path]
                    if body is None:
                        self.send_error(404)
                        return
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                super().do_GET()

        handler = functools.partial(Handler, directory=str(self.root))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join()


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


def stelae_cli(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    return run_stelae(*args, "--state-dir", str(state))


# ------------------------------------------------------------------------------ direction 1


@dataclass(frozen=True)
class StelaeLog:
    data: Path
    vkey: str
    url: str  # `stelae serve` on 127.0.0.1
    checkpoint: bytes

    @property
    def log_dir(self) -> Path:
        return self.data / "log"


def _stelae_entries(start: int, end: int) -> list[PendingEntry]:
    return [
        PendingEntry(f'{{"interop":{i},"pad":"{"x" * (i % 23)}"}}'.encode())
        for i in range(start, end)
    ]


def _build_stelae_log(data: Path) -> None:
    """A log published at every size in SIZES (and some between)."""
    log, _ = init_log(data, STELAE_ORIGIN)
    # The first 300 entries with the full configuration (lookup indexes, entry timestamps)...
    seq = log.sequencer()
    try:
        seq.published()
        for a, b in ((0, 1), (1, 256), (256, 300)):
            seq.integrate(_stelae_entries(a, b))
    finally:
        seq.close()
    # ...then without entry timestamps, which cost a signature per entry and change nothing in
    # tiles, bundles or checkpoints (the batch-level index costs a few objects per batch).
    lean = SequencerConfig(STELAE_ORIGIN, entry_timestamps=False, background_merges=False)
    seq = Sequencer(log.store, log.signer, lean)
    try:
        bounds = [300, *range(8492, 65536, 8192), 65536, 70000]
        for a, b in itertools.pairwise(bounds):
            seq.integrate(_stelae_entries(a, b))
    finally:
        seq.close()


@contextlib.contextmanager
def _stelae_serve(data: Path) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "stelae", "serve", "--data", str(data), "--listen", "127.0.0.1:0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stderr is not None
        seen: list[str] = []
        url = None
        while url is None:
            ready, _, _ = select.select([proc.stderr], [], [], 30)
            line = proc.stderr.readline() if ready else ""
            if not line:
                raise AssertionError(f"stelae serve did not start: {''.join(seen)}")
            seen.append(line)
            m = re.search(r" on (http://127\.0\.0\.1:\d+)", line)
            url = m.group(1) if m else None
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def stelae_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StelaeLog]:
    data = tmp_path_factory.mktemp("stelae-log") / "data"
    _build_stelae_log(data)
    vkey = json.loads((data / "config.json").read_text())["vkey"]
    with _stelae_serve(data) as url:
        yield StelaeLog(data, vkey, url, (data / "log" / "checkpoint").read_bytes())


def test_go_verifies_stelae_log(tlogcheck: Path, stelae_log: StelaeLog) -> None:
    cp = Checkpoint.parse(Note.parse(stelae_log.checkpoint).text)
    olds = ",".join(f"checkpoints/{n}" for n in (0, *SIZES))
    summary = go_verify(tlogcheck, stelae_log.url, stelae_log.vkey, "-old", olds).json()
    assert summary["origin"] == STELAE_ORIGIN
    assert summary["signed_by"] == STELAE_ORIGIN
    assert summary["size"] == cp.size == 70000
    assert summary["root"] == base64.b64encode(cp.root_hash).decode()
    assert summary["entries_checked"] == 70000
    # 273 full level-0 tiles and tile/0/273.p/112, tile/1/000, tile/1/001.p/17, tile/2/000.p/1.
    assert summary["tiles_audited"] == 277
    assert summary["inclusion_proofs"] == [
        0,
        1,
        2,
        255,
        256,
        257,
        511,
        65535,
        65536,
        35000,
        69744,
        69998,
        69999,
    ]
    assert summary["old_sizes"] == [0, *SIZES]


def test_go_verifies_stelae_log_in_its_own_layout_edge_cases(
    tlogcheck: Path, stelae_log: StelaeLog
) -> None:
    """Every published size's own tiles (partial ones included) give its signed root, per Go."""
    sizes = sorted(int(p.name) for p in (stelae_log.log_dir / "checkpoints").iterdir())
    assert set(SIZES) <= set(sizes)
    olds = ",".join(f"checkpoints/{n}" for n in sizes)
    summary = go_verify(
        tlogcheck,
        stelae_log.url,
        stelae_log.vkey,
        "-entries=false",
        "-proofs",
        "0,69999",
        "-old",
        olds,
    ).json()
    assert summary["old_sizes"] == sizes


def _resigned(checkpoint: bytes, signer: Ed25519NoteSigner, text: str | None = None) -> bytes:
    note = Note.parse(checkpoint)
    return sign_note(text if text is not None else note.text, [signer]).to_bytes()


def _tamper_cases(
    log: StelaeLog,
) -> dict[str, tuple[dict[str, bytes | None], tuple[str, ...], str]]:
    """name -> (overrides, extra Go flags, regular expression the error must match)."""
    root = log.log_dir
    key = Ed25519NoteSigner.from_skey((log.data / "signing.key").read_text().strip())
    other = Ed25519NoteSigner.generate(STELAE_ORIGIN)  # same name, another key
    text = Note.parse(log.checkpoint).text
    lines = text.split("\n")
    forged_root = base64.b64encode(hashlib.sha256(b"forged").digest()).decode()
    altered_text = "\n".join([lines[0], lines[1], forged_root, *lines[3:]])
    old300 = (root / "checkpoints/300").read_bytes()
    fork300 = sign_note(
        Checkpoint(STELAE_ORIGIN, 300, hashlib.sha256(b"fork").digest()).to_text(), [key]
    )
    bundle5 = (root / "tile/entries/005").read_bytes()
    # Go's messages: note.Open's ("note has no verifiable signatures", "invalid signature for
    # key ..."), tlog.TileHashReader's ("downloaded inconsistent tile"), CheckRecord's ("invalid
    # transparency proof", wrapped as "does not verify"), and tlogcheck's own audit's.
    tile_cases = {
        "level-0 tile": ("tile/0/000", 100),
        "level-1 tile": ("tile/1/000", 8000),
        "right-edge partial level-0 tile": ("tile/0/273.p/112", 3000),
        "right-edge partial level-2 tile": ("tile/2/000.p/1", 0),
    }
    cases: dict[str, tuple[dict[str, bytes | None], tuple[str, ...], str]] = {}
    for name, (path, at) in tile_cases.items():
        bad: dict[str, bytes | None] = {path: flip((root / path).read_bytes(), at)}
        # With the entries: the right-edge tiles make up the root, so TileHashReader's first
        # check (tree hash from tiles) refuses them; a bad full tile is found by the audit.
        expected = (
            "tree hash from tiles: downloaded inconsistent tile"
            if ".p/" in path
            else f"tile {re.escape(path)} differs from the tile computed from the entries"
        )
        cases[name] = (bad, (), expected)
        # Without them: Go's tile reader and proof checks alone must still refuse.
        cases[f"{name}, tile reader and proofs only"] = (
            bad,
            ("-entries=false", "-proofs", "0,255,256,65535,65536,69999"),
            "inconsistent tile|does not verify",
        )
    return {
        **cases,
        "entry bundle": (
            {"tile/entries/005": bundle5.replace(b'"interop":1282', b'"interop":1283')},
            (),
            "tree hash of the entries .* != signed root",
        ),
        "truncated bundle": ({"tile/entries/005": bundle5[:-1]}, (), "bundle 5: truncated record"),
        "checkpoint signed by another key": (
            {"checkpoint": _resigned(log.checkpoint, other)},
            (),
            "checkpoint signature: note has no verifiable signatures",
        ),
        "checkpoint with another root": (
            {"checkpoint": log.checkpoint.replace(lines[2].encode(), forged_root.encode())},
            (),
            "checkpoint signature: invalid signature for key",
        ),
        "checkpoint with another root, signed by another key": (
            {"checkpoint": _resigned(log.checkpoint, other, altered_text)},
            (),
            "checkpoint signature: note has no verifiable signatures",
        ),
        "forked old checkpoint": (
            {"checkpoints/300": fork300.to_bytes()},
            ("-old", "checkpoints/300"),
            "old tree 300",
        ),
        "old checkpoint signed by another key": (
            {"checkpoints/300": _resigned(old300, other)},
            ("-old", "checkpoints/300"),
            "old checkpoint checkpoints/300: checkpoint signature: note has no verifiable",
        ),
    }


def test_go_rejects_tampered_stelae_log(tlogcheck: Path, stelae_log: StelaeLog) -> None:
    server = StaticServer(stelae_log.log_dir)
    with server.running():
        # The untampered copy, served by a plain static server, passes (so each failure below
        # is the tampering, not the server).
        assert (
            go_verify(tlogcheck, server.url, stelae_log.vkey, "-old", "checkpoints/300").returncode
            == 0
        )
        failures = []
        for name, (overrides, extra, expected) in _tamper_cases(stelae_log).items():
            server.overrides = overrides
            res = go_verify(tlogcheck, server.url, stelae_log.vkey, *extra)
            if res.returncode != 1 or not re.search(expected, res.stderr):
                failures.append(f"{name}: exit {res.returncode}, stderr {res.stderr.strip()!r}")
        assert not failures, "\n".join(failures)


# ------------------------------------------------------------------------------ direction 2


def go_record(i: int) -> bytes:
    """The records tlogcheck writes (its func record), mirrored to check what stelae reads."""
    if i == 7:
        return b""
    if i == 8:
        return b"m" * 65535
    return f"go x/mod/sumdb/tlog record {i}\n".encode() + b"-" * (i % 37)


@dataclass(frozen=True)
class GoLog:
    root: Path  # the tlog-tiles prefix
    published: Path  # <size> -> the checkpoint Go signed at that size
    vkey: str
    roots: dict[int, bytes]


def _write_go_log(binary: Path, base: Path) -> GoLog:
    prefix = base / "log"
    res = run_go(
        binary,
        "write",
        "-dir",
        str(prefix),
        "-origin",
        GO_ORIGIN,
        "-sizes",
        ",".join(map(str, SIZES)),
    )
    out = res.json()
    assert out["sizes"] == list(SIZES)
    roots = {int(k): base64.b64decode(v) for k, v in out["roots"].items()}
    return GoLog(prefix, base / "published", str(out["vkey"]), roots)


@pytest.fixture(scope="module")
def go_log(tlogcheck: Path, tmp_path_factory: pytest.TempPathFactory) -> GoLog:
    return _write_go_log(tlogcheck, tmp_path_factory.mktemp("go-log"))


def _client(fetcher: HTTPFetcher | DirectoryFetcher, vkey: str) -> LogClient:
    verifier = parse_vkey(vkey)
    return LogClient(fetcher, [verifier], verifier.name)


def test_go_log_layout_is_tlog_tiles(go_log: GoLog) -> None:
    """What the Go writer produced at 70000 is the layout the spec's example names."""
    for path in (
        "tile/0/273.p/112",
        "tile/1/000",
        "tile/1/001.p/17",
        "tile/2/000.p/1",
        "tile/entries/273.p/112",
    ):
        assert (go_log.root / path).is_file(), path


def test_stelae_client_reads_go_log(go_log: GoLog) -> None:
    with StaticServer(go_log.root).running() as server:
        client = _client(HTTPFetcher(server.url), go_log.vkey)
        cp = client.checkpoint()
        assert cp.checkpoint.origin == GO_ORIGIN
        assert cp.checkpoint.size == 70000
        assert cp.checkpoint.root_hash == go_log.roots[70000]
        for i in SPOT_INDEXES:
            entry = client.entry(i, cp)
            assert entry.data == go_record(i), i
        # Consistency from every checkpoint Go published, and entries proved in the old ones.
        for size in SIZES:
            old = client.open_checkpoint((go_log.published / str(size)).read_bytes())
            assert old.checkpoint.root_hash == go_log.roots[size]
            client.prove_consistency(old, cp)
            assert client.entry(size - 1, old).data == go_record(size - 1)
        # Every entry's bytes (the monitor test below recomputes every tile from them).
        n = 0
        for first, bundle in client.bundles(0, cp.checkpoint):
            for j, data in enumerate(bundle.entries):
                assert data == go_record(first + j)
                n += 1
        assert n == 70000


def test_stelae_cli_reads_go_log(go_log: GoLog, tmp_path: Path) -> None:
    with StaticServer(go_log.root).running() as server:
        common = ("--log-url", server.url, "--vkey", go_log.vkey)
        state = tmp_path / "state"
        info = stelae_cli("loginfo", *common, "--json", state=state)
        assert info.returncode == 0, info.stderr
        obj = json.loads(info.stdout)
        assert obj["tree_size"] == 70000
        assert obj["root_hash_b64"] == base64.b64encode(go_log.roots[70000]).decode()

        for i in (7, 8):
            got = stelae_cli("get", *common, "--log-index", str(i), "--json", state=state)
            assert got.returncode == 0, got.stderr
            assert base64.b64decode(json.loads(got.stdout)["body_b64"]) == go_record(i)

        for first in (300, 65536):
            proof = stelae_cli(
                "logproof", *common, "--first-size", str(first), "--json", state=state
            )
            assert proof.returncode == 0, proof.stderr
            obj = json.loads(proof.stdout)
            assert obj["first_root"] == go_log.roots[first].hex()
            assert obj["last_root"] == go_log.roots[70000].hex()

        mon = stelae_cli("monitor", "--once", *common, state=state)
        assert mon.returncode == 0, mon.stderr
        assert "audited entries 0..69999: every tile and the root match" in mon.stderr


def test_stelae_reads_go_log_without_stale_partial_tiles(tlogcheck: Path, tmp_path: Path) -> None:
    """tlog-tiles lets a log delete a partial tile once the full one exists; stelae must then
    read older trees from the full tiles."""
    log = _write_go_log(tlogcheck, tmp_path)
    current = {"tile/0/273.p/112", "tile/1/001.p/17", "tile/2/000.p/1", "tile/entries/273.p/112"}
    removed = []
    for p in log.root.rglob("*"):
        rel = p.relative_to(log.root).as_posix()
        if p.is_file() and ".p/" in rel and rel not in current:
            p.unlink()
            removed.append(rel)
    assert "tile/0/001.p/44" in removed and "tile/1/000.p/1" in removed
    client = _client(DirectoryFetcher(log.root), log.vkey)
    cp = client.checkpoint()
    for size in SIZES:
        old = client.open_checkpoint((log.published / str(size)).read_bytes())
        client.prove_consistency(old, cp)
        assert client.entry(size - 1, old).data == go_record(size - 1)
    proof = stelae_cli(
        "logproof",
        "--log-url",
        str(log.root),
        "--vkey",
        log.vkey,
        "--first-size",
        "300",
        "--json",
        state=tmp_path / "state",
    )
    assert proof.returncode == 0, proof.stderr
    assert json.loads(proof.stdout)["first_root"] == log.roots[300].hex()


def test_stelae_rejects_tampered_go_log(go_log: GoLog, tmp_path: Path) -> None:
    root = go_log.root
    server = StaticServer(root)
    with server.running():
        common = ("--log-url", server.url, "--vkey", go_log.vkey)

        server.overrides = {"tile/0/010": flip((root / "tile/0/010").read_bytes(), 77)}
        mon = stelae_cli("monitor", "--once", *common, state=tmp_path / "s1")
        assert mon.returncode == 1, mon.stderr
        assert '"alert": "bad_tile"' in mon.stdout

        # Byte 40 of bundle 1 is inside its first record, entry 256.
        server.overrides = {"tile/entries/001": flip((root / "tile/entries/001").read_bytes(), 40)}
        client = _client(HTTPFetcher(server.url), go_log.vkey)
        with pytest.raises(StelaeError):
            client.entry(256)
        got = stelae_cli("get", *common, "--log-index", "256", state=tmp_path / "s2")
        assert got.returncode != 0

        server.overrides = {"tile/1/000": flip((root / "tile/1/000").read_bytes(), 5000)}
        with pytest.raises(StelaeError):
            _client(HTTPFetcher(server.url), go_log.vkey).entry(300)

        server.overrides = {}
        other = Ed25519NoteSigner.generate(GO_ORIGIN)
        info = stelae_cli(
            "loginfo", "--log-url", server.url, "--vkey", other.vkey, state=tmp_path / "s3"
        )
        assert info.returncode != 0
