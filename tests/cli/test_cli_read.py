"""The reader commands, run for real: `python -m stelae` against logs built by the real sequencer
and served over HTTP on loopback. loginfo (growth, fork, stale cache), get, logproof, search."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from stelae import kinds
from stelae.cli.main import main
from stelae.client import signing
from stelae.sequencer.engine import Sequencer, SequencerConfig
from stelae.sequencer.local import LocalStore
from stelae.sequencer.pending import PendingEntry
from stelae.tiles.checkpoint import Checkpoint, sign_checkpoint
from stelae.tiles.hashing import leaf_hash
from stelae.tiles.indexkeys import KeyKind, index_key
from stelae.tiles.indexrun import Record, build_run, read_run
from stelae.tiles.manifest import Manifest
from stelae.tiles.notekeys import Ed25519NoteSigner
from stelae.tiles.paths import manifest_path
from stelae.tiles.proof import verify_consistency, verify_inclusion
from tests.support import certificates
from tests.support.cli import run_stelae

ORIGIN = "cli.example.test/log"
SIGNER = Ed25519NoteSigner.generate(ORIGIN)

# --- fixtures shared with test_cli_monitor ------------------------------------------------------


class Log:
    """A log in a directory, grown by the real sequencer over a LocalStore."""

    def __init__(self, root: Path, signer: Ed25519NoteSigner = SIGNER) -> None:
        self.root = root
        self.sequencer = Sequencer(
            LocalStore(root), signer, SequencerConfig(signer.name, background_merges=False)
        )
        self.signer = signer

    def add(self, entries: list[PendingEntry], batch: int = 100) -> int:
        for i in range(0, len(entries), batch):
            self.sequencer.integrate(entries[i : i + batch])
        return self.size

    def add_json(self, n: int, tag: str = "", batch: int = 100) -> int:
        start = self.size
        return self.add(
            [PendingEntry(f'{{"n":{i},"tag":"{tag}"}}'.encode()) for i in range(start, start + n)],
            batch,
        )

    @property
    def size(self) -> int:
        return self.sequencer.published().size

    def checkpoint(self) -> bytes:
        return (self.root / "checkpoint").read_bytes()

    def close(self) -> None:
        self.sequencer.close()


class Served:
    """A directory served over HTTP on 127.0.0.1; ``root`` can be switched (to serve a fork at
    the same URL) and every requested path is recorded in ``requests``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        served = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                served.requests.append(self.path.lstrip("/"))
                super().do_GET()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        def handler(*args: Any, **kwargs: Any) -> Handler:
            return Handler(*args, directory=str(served.root), **kwargs)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def bundles_requested(self) -> list[str]:
        return [p for p in self.requests if p.startswith("tile/entries/")]

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join()


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Log]:
    lg = Log(tmp_path / "log")
    yield lg
    lg.close()


@pytest.fixture
def served(log: Log) -> Iterator[Served]:
    s = Served(log.root)
    yield s
    s.close()


class Stelae:
    """Runs ``python -m stelae`` with a private state directory and the log's options."""

    def __init__(self, tmp: Path, url: str, vkey: str) -> None:
        self.state = tmp / "state"
        self.url = url
        self.vkey_file = tmp / "vkey.txt"
        self.vkey_file.write_text(vkey + "\n")

    def __call__(self, *args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {
            "STELAE_STATE_DIR": str(self.state),
            "STELAE_LOG_URL": url or self.url,
            "STELAE_VKEY": f"@{self.vkey_file}",
            "XDG_STATE_HOME": str(self.state / "xdg-unused"),
        }
        return run_stelae(*args, env=env)

    def json(self, *args: str, url: str | None = None) -> Any:
        proc = self(*args, "--json", url=url)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def stored_checkpoint(self) -> bytes:
        (d,) = (self.state / "logs").iterdir()
        return (d / "checkpoint").read_bytes()


@pytest.fixture
def stelae(tmp_path: Path, served: Served) -> Stelae:
    return Stelae(tmp_path, served.url, SIGNER.vkey)


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


# --- loginfo ------------------------------------------------------------------------------------


def test_loginfo_remembers_and_proves_growth(log: Log, stelae: Stelae) -> None:
    log.add_json(10)
    first = stelae.json("loginfo")
    assert first["tree_size"] == 10 and first["origin"] == ORIGIN
    assert first["previous_size"] is None
    assert first["checkpoint"].encode() == log.checkpoint()
    assert base64.b64decode(first["root_hash_b64"]).hex() == first["root_hash"]
    assert stelae.stored_checkpoint() == log.checkpoint()

    log.add_json(300)
    proc = stelae("loginfo")
    assert proc.returncode == 0, proc.stderr
    assert "Tree size: 310" in proc.stdout and "consistent" in proc.stderr
    assert log.checkpoint().decode().rstrip() in proc.stdout
    assert stelae.stored_checkpoint() == log.checkpoint()


@pytest.mark.parametrize("fork_size", [10, 25])
def test_loginfo_detects_a_fork_and_keeps_the_evidence(
    tmp_path: Path, log: Log, served: Served, stelae: Stelae, fork_size: int
) -> None:
    log.add_json(10)
    assert stelae("loginfo").returncode == 0
    seen = log.checkpoint()
    # The same key signs another history: a split view, served at the same URL.
    fork = Log(tmp_path / "fork")
    fork.add_json(fork_size, tag="fork")
    fork.close()
    served.root = fork.root

    proc = stelae("loginfo")
    assert proc.returncode == 1
    assert "FORK" in proc.stderr and "not consistent" in proc.stderr
    assert seen.decode().rstrip() in proc.stderr
    assert fork.checkpoint().decode().rstrip() in proc.stderr
    assert "Traceback" not in proc.stderr
    assert stelae.stored_checkpoint() == seen  # the stored checkpoint is never overwritten


def test_loginfo_accepts_an_older_consistent_checkpoint_without_going_back(
    log: Log, stelae: Stelae
) -> None:
    log.add_json(10)
    old = log.checkpoint()
    log.add_json(300)
    assert stelae("loginfo").returncode == 0
    newest = log.checkpoint()
    (log.root / "checkpoint").write_bytes(old)  # a stale CDN copy
    proc = stelae("loginfo")
    assert proc.returncode == 0, proc.stderr
    assert "older than size 310" in proc.stderr
    assert stelae.stored_checkpoint() == newest


def test_loginfo_reads_a_local_directory_and_rejects_a_wrong_key(log: Log, stelae: Stelae) -> None:
    log.add_json(3)
    assert stelae.json("loginfo", url=str(log.root))["tree_size"] == 3
    other = Ed25519NoteSigner.generate(ORIGIN)
    stelae.vkey_file.write_text(other.vkey)
    proc = stelae("loginfo")
    assert proc.returncode == 1
    assert proc.stderr.startswith("error:") and "Traceback" not in proc.stderr


# --- get ----------------------------------------------------------------------------------------


def test_get_by_index_and_by_uuid(log: Log, stelae: Stelae) -> None:
    log.add_json(300)
    log.add([PendingEntry(b"\x00\xffnot json")])
    by_index = stelae.json("get", "--log-index", "257")
    assert by_index["index"] == 257 and by_index["body"] == {"n": 257, "tag": ""}
    body = base64.b64decode(by_index["body_b64"])
    assert by_index["uuid"] == leaf_hash(body).hex()
    assert by_index["inclusion_proof"]["tree_size"] == 301
    verify_inclusion(
        257,
        301,
        leaf_hash(body),
        [bytes.fromhex(h) for h in by_index["inclusion_proof"]["hashes"]],
        bytes.fromhex(by_index["inclusion_proof"]["root_hash"]),
    )
    assert by_index["checkpoint"].encode() == log.checkpoint()

    by_uuid = stelae.json("get", "--uuid", by_index["uuid"])
    assert by_uuid["index"] == 257 and by_uuid["integrated_time"] > 0
    rekor_id = "24296fb24b8ad77a" + by_index["uuid"]  # Rekor v1: tree ID + UUID
    assert stelae.json("get", "--uuid", rekor_id)["index"] == 257

    text = stelae("get", "--log-index", "300")
    assert text.returncode == 0
    assert "Body (base64):" in text.stdout
    assert base64.b64encode(b"\x00\xffnot json").decode() in text.stdout
    pretty = stelae("get", "--log-index", "5").stdout
    assert '  "n": 5,' in pretty and "Inclusion proof (verified" in pretty


def test_get_not_found_is_a_one_line_failure(log: Log, stelae: Stelae) -> None:
    log.add_json(5)
    for args in (["--log-index", "5"], ["--uuid", "ab" * 32]):
        proc = stelae("get", *args)
        assert proc.returncode == 1
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.parametrize("target", ["bundle", "tile"])
def test_get_refuses_a_tampered_log(log: Log, stelae: Stelae, target: str) -> None:
    log.add_json(300)
    if target == "bundle":
        flip(log.root / "tile/entries/000", 2 + 3)  # inside the first entry's bytes
    else:
        flip(log.root / "tile/0/000", 32 * 1 + 7)  # leaf 1 is entry 0's sibling
    proc = stelae("get", "--log-index", "0")
    assert proc.returncode == 1
    assert "does not match" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""  # nothing unverified is printed


# --- logproof -----------------------------------------------------------------------------------


def test_logproof_between_published_sizes(log: Log, stelae: Stelae) -> None:
    log.add_json(600, batch=100)
    out = stelae.json("logproof", "--first-size", "300", "--last-size", "500")
    history = {
        s: Checkpoint.parse((log.root / f"checkpoints/{s}").read_text().split("\n\n")[0] + "\n")
        for s in (300, 500)
    }
    assert out["first_root"] == history[300].root_hash.hex()
    assert out["last_root"] == history[500].root_hash.hex()
    verify_consistency(
        300,
        500,
        [bytes.fromhex(h) for h in out["hashes"]],
        history[300].root_hash,
        history[500].root_hash,
    )
    assert "checkpoints/300 (size 300)" in out["cross_checked"]

    # Sizes the log never published are fine too: tiles at the current size are used.
    odd = stelae.json("logproof", "--first-size", "257", "--last-size", "513")
    assert odd["tree_size"] == 600 and len(odd["hashes"]) > 0
    # --last-size defaults to the current size; the last-seen checkpoint is cross-checked.
    latest = stelae.json("logproof", "--first-size", "600")
    assert latest["hashes"] == [] and latest["last_size"] == 600
    assert "the checkpoint seen before (size 600)" in latest["cross_checked"]

    assert stelae("logproof", "--first-size", "10", "--last-size", "601").returncode == 1
    assert stelae("logproof", "--first-size", "20", "--last-size", "10").returncode == 2


def test_logproof_catches_a_history_object_that_disagrees(log: Log, stelae: Stelae) -> None:
    log.add_json(400, batch=100)
    lie = sign_checkpoint(Checkpoint(ORIGIN, 200, hashlib.sha256(b"lie").digest()), SIGNER)
    (log.root / "checkpoints/200").write_bytes(lie)
    proc = stelae("logproof", "--first-size", "200")
    assert proc.returncode == 1
    assert "checkpoints/200 has root" in proc.stderr and lie.decode().rstrip() in proc.stderr


# --- search -------------------------------------------------------------------------------------


class Signed:
    """Real hashedrekord entries (kinds builds and validates them), signed by two keys."""

    def __init__(self, tmp: Path) -> None:
        self.keys = [signing.generate_key("ecdsa-p256") for _ in range(2)]
        self.cert = certificates.self_signed_certificate(self.keys[1], "Alice@Example.com")
        self.key_files = []
        for i, key in enumerate(self.keys):
            path = tmp / f"key{i}.pem"
            path.write_bytes(signing.public_key_pem(key))
            self.key_files.append(path)

    def entry(self, artifact: bytes, signer: int, *, with_cert: bool = False) -> PendingEntry:
        key = self.keys[signer]
        sig = signing.sign_artifact(key, artifact)
        verifier = self.cert if with_cert else signing.public_key_pem(key)
        e = kinds.from_v1_proposed(signing.build_v1_hashedrekord(sig, verifier, artifact=artifact))
        return PendingEntry(e.body, e.artifact_digests, e.key_fingerprints, e.identities)


def test_search_verifies_every_hit(tmp_path: Path, log: Log, stelae: Stelae) -> None:
    signed = Signed(tmp_path)
    art = tmp_path / "artifact.bin"
    art.write_bytes(b"artifact one")
    log.add_json(3)
    log.add(
        [
            signed.entry(b"artifact one", 0),  # 3
            signed.entry(b"artifact two", 0),  # 4
            signed.entry(b"artifact one", 1, with_cert=True),  # 5
        ]
    )
    sha = hashlib.sha256(b"artifact one").hexdigest()
    found = stelae.json("search", "--sha", sha)
    assert [e["index"] for e in found["entries"]] == [3, 5]
    assert stelae.json("search", "--sha", f"sha256:{sha.upper()}")["entries"] == found["entries"]
    assert stelae.json("search", "--artifact", str(art))["entries"] == found["entries"]
    by_key = stelae.json("search", "--public-key", str(signed.key_files[0]))
    assert [e["index"] for e in by_key["entries"]] == [3, 4]
    by_email = stelae.json("search", "--email", "alice@example.com")
    assert [e["index"] for e in by_email["entries"]] == [5]

    text = stelae("search", "--sha", sha)
    assert text.returncode == 0
    assert text.stdout.split() == [
        found["entries"][0]["uuid"],
        "3",
        found["entries"][1]["uuid"],
        "5",
    ]

    missing = stelae("search", "--sha", "00" * 32)
    assert missing.returncode == 0 and missing.stdout == ""
    assert "no entries found" in missing.stderr


def _lie_in_index(log: Log, key: bytes, extra: tuple[int, ...]) -> None:
    """Re-sign the log's index (with the log's own key) so that ``key`` also lists ``extra``."""
    size = log.size
    manifest = Manifest.open(
        (log.root / manifest_path(size)).read_bytes(), [log.signer.verifier], log.signer.name
    )
    (ref,) = manifest.runs
    records = [
        Record(r.key, tuple(sorted({*r.indices, *extra})), r.offsets) if r.key == key else r
        for r in read_run(lambda p: (log.root / p).read_bytes(), ref)
    ]
    built = build_run(0, size, records)
    for path, data in built.objects():
        (log.root / path).write_bytes(data)
    lying = Manifest(manifest.origin, size, manifest.root, (built.ref,))
    (log.root / manifest_path(size)).write_bytes(lying.sign(log.signer))


def test_search_reports_a_lying_index(tmp_path: Path, log: Log, stelae: Stelae) -> None:
    """A validly signed index that files other entries under a key: every hit is re-checked
    against its entry, and the ones that do not match are reported, not printed."""
    signed = Signed(tmp_path)
    log.add([signed.entry(b"one", 0), signed.entry(b"two", 0), PendingEntry(b'{"n":1}')])
    sha = "sha256:" + hashlib.sha256(b"one").hexdigest()
    _lie_in_index(log, index_key(KeyKind.DIGEST, sha), (1, 2))
    proc = stelae("search", "--artifact", str(_write(tmp_path / "one", b"one")), "--json")
    assert proc.returncode == 1
    out = json.loads(proc.stdout)
    assert [e["index"] for e in out["entries"]] == [0]
    assert sorted(m["index"] for m in out["mismatched"]) == [1, 2]
    assert proc.stderr.count("MISMATCH") == 2
    text = stelae("search", "--sha", hashlib.sha256(b"one").hexdigest())
    assert text.returncode == 1 and len(text.stdout.split()) == 2  # only entry 0 is printed


def test_search_refuses_an_index_whose_proofs_fail(
    tmp_path: Path, log: Log, stelae: Stelae
) -> None:
    """A shard changed without the log's signature over it: exit 1 naming the shard."""
    signed = Signed(tmp_path)
    log.add([signed.entry(b"one", 0), signed.entry(b"two", 0)])
    shard = next((log.root / "index" / "run").glob("*/0"))
    data = bytearray(shard.read_bytes())
    data[-1] ^= 1
    shard.write_bytes(bytes(data))
    proc = stelae("search", "--sha", hashlib.sha256(b"one").hexdigest())
    assert proc.returncode == 1 and proc.stdout == ""
    assert "shard 0 of run 0-2" in proc.stderr, proc.stderr


def test_search_proves_absence(tmp_path: Path, log: Log, stelae: Stelae) -> None:
    signed = Signed(tmp_path)
    log.add([signed.entry(b"one", 0)])
    proc = stelae("search", "--sha", "00" * 32, "--json")
    assert proc.returncode == 0
    out = json.loads(proc.stdout)
    assert out["entries"] == [] and out["complete"] is True and out["tree_size"] == 1
    assert "complete for tree size 1" in proc.stderr


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_origin_override_for_logs_whose_key_name_differs(tmp_path: Path) -> None:
    """Rekor v1 signs checkpoints whose origin is not the key's name: --origin says which."""
    signer = Ed25519NoteSigner.generate("rekor.example.test")
    origin = "rekor.example.test - 1193050959916656506"
    root = tmp_path / "log"
    root.mkdir()
    (root / "checkpoint").write_bytes(
        sign_checkpoint(Checkpoint(origin, 0, hashlib.sha256(b"").digest()), signer)
    )
    env = {"STELAE_STATE_DIR": str(tmp_path / "state"), "STELAE_LOG_URL": str(root)}
    args = ["loginfo", "--vkey", signer.vkey, "--json"]
    result = CliRunner().invoke(main, [*args, "--origin", origin], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["origin"] == origin
    wrong = CliRunner().invoke(main, args, env=env)
    assert wrong.exit_code == 1 and "is not the expected" in wrong.output
