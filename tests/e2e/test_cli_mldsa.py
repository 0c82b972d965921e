"""The ML-DSA-44 log key from the command line, run for real: ``stelae init --mldsa``, then
``stelae serve`` (a child process on 127.0.0.1), a write over HTTP, and ``stelae loginfo`` /
``stelae verify`` given the ML-DSA vkey, the Ed25519 one, or both."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stelae.client import signing
from stelae.tiles.checkpoint import open_checkpoint
from stelae.tiles.note import Note
from stelae.tiles.notekeys import parse_vkey
from stelae.tiles.proofbundle import ProofBundle
from tests.support.api import ORIGIN, ServeProcess, start_serve, stelae_command


def run(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STELAE_STATE_DIR": str(state)}
    for name in ("STELAE_VKEY", "STELAE_LOG_URL", "STELAE_DATA"):
        env.pop(name, None)
    return subprocess.run(
        [*stelae_command(), *args], check=False, capture_output=True, text=True, env=env, timeout=60
    )


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``stelae init --mldsa --json`` in a fresh data directory."""
    data = tmp_path_factory.mktemp("mldsa") / "data"
    state = data.parent / "state"
    done = run("init", "--data", str(data), "--origin", ORIGIN, "--mldsa", "--json", state=state)
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    out["data"] = data
    return out


@pytest.fixture(scope="module")
def server(keys: dict[str, Any]) -> Iterator[ServeProcess]:
    proc = start_serve(keys["data"])
    try:
        yield proc
    finally:
        proc.terminate()


def test_init_prints_both_verifier_keys(keys: dict[str, Any], tmp_path: Path) -> None:
    assert parse_vkey(keys["vkey"]).key_type == 0x01
    mldsa = parse_vkey(keys["mldsa_vkey"])
    assert (mldsa.key_type, mldsa.name) == (0x06, ORIGIN)
    # Again, without --json: stdout stays the Ed25519 vkey alone (`init > vkey.txt`), and the
    # ML-DSA one is on stderr.
    again = run("init", "--data", str(keys["data"]), "--origin", ORIGIN, state=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == keys["vkey"]
    assert f"ML-DSA-44 verifier key: {keys['mldsa_vkey']}" in again.stderr


def test_serve_signs_with_both_and_loginfo_verifies_with_the_ml_dsa_key(
    keys: dict[str, Any], server: ServeProcess, tmp_path: Path
) -> None:
    line = server.proc.stderr.readline() if server.proc.stderr else ""
    assert line.strip() == f"ML-DSA-44 verifier key: {keys['mldsa_vkey']}"
    key = signing.generate_key("ecdsa-p256")
    artifact = b"post-quantum hello\n"
    _, digest = signing.digest(key, artifact)
    request = signing.build_v2_hashedrekord(signing.sign_artifact(key, artifact), key, digest)
    reply = server.log.post("/api/v2/log/entries", request)
    assert reply.status == 201, reply.body
    # The 201 answer's checkpoint carries the ML-DSA line, and so does a tlog-proof made from
    # it, which `stelae verify --bundle` checks offline with the ML-DSA vkey alone.
    envelope = reply.json["inclusionProof"]["checkpoint"]["envelope"].encode()
    assert Note.parse(envelope).signatures[-1].key_id == parse_vkey(keys["mldsa_vkey"]).key_id
    proof_file = tmp_path / "entry.tlog-proof"
    proof_file.write_bytes(ProofBundle.from_tle(reply.json).to_tlog_proof())
    assert envelope.decode() in proof_file.read_text()
    offline = run(
        "verify", "--bundle", str(proof_file), "--vkey", keys["mldsa_vkey"], state=tmp_path
    )
    assert offline.returncode == 0, offline.stderr
    note = server.log.checkpoint_bytes()
    assert Note.parse(note).signatures[-1].key_id == parse_vkey(keys["mldsa_vkey"]).key_id
    assert open_checkpoint(note, [parse_vkey(keys["mldsa_vkey"])], ORIGIN).checkpoint.size == 1

    url = server.log.url
    for vkeys in ([keys["mldsa_vkey"]], [keys["vkey"]], [keys["vkey"], keys["mldsa_vkey"]]):
        args = [a for v in vkeys for a in ("--vkey", v)]
        done = run("loginfo", "--log-url", url, *args, "--json", state=tmp_path / str(len(vkeys)))
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["tree_size"] == 1
    # Both keys from one file (what `stelae init --json | jq` would write), and offline too.
    both = tmp_path / "vkeys.txt"
    both.write_text(f"{keys['vkey']}\n{keys['mldsa_vkey']}\n")
    done = run("get", "--log-url", url, "--vkey", f"@{both}", "--log-index", "0", state=tmp_path)
    assert done.returncode == 0, done.stderr


def test_a_reader_pinning_both_keys_refuses_a_checkpoint_without_the_ml_dsa_line(
    keys: dict[str, Any], server: ServeProcess, tmp_path: Path
) -> None:
    """A copy of the log whose checkpoint lost its ML-DSA line: fine for a reader pinning the
    Ed25519 key alone, refused (exit 1, naming the key) by one pinning both."""
    copy = tmp_path / "copy"
    shutil.copytree(keys["data"] / "log", copy)
    note = Note.parse((copy / "checkpoint").read_bytes())
    mldsa_id = parse_vkey(keys["mldsa_vkey"]).key_id
    kept = tuple(s for s in note.signatures if s.key_id != mldsa_id)
    (copy / "checkpoint").write_bytes(Note(note.text, kept).to_bytes())
    ed_only = run("loginfo", "--log-url", str(copy), "--vkey", keys["vkey"], state=tmp_path / "a")
    assert ed_only.returncode == 0, ed_only.stderr
    args = ("--vkey", keys["vkey"], "--vkey", keys["mldsa_vkey"])
    pinned = run("loginfo", "--log-url", str(copy), *args, state=tmp_path / "b")
    assert pinned.returncode == 1, pinned.stderr
    assert f"{mldsa_id:08x}" in pinned.stderr
    assert "no signature from the log key" in pinned.stderr
    # fsck pinning both keys checks what such a reader checks: the checkpoint is a problem.
    checked = run("fsck", "--log-url", str(copy), *args, "--json", state=tmp_path / "c")
    assert checked.returncode == 1, checked.stderr
    problems = json.loads(checked.stdout)["problems"]
    assert [p["path"] for p in problems] == ["checkpoint"], problems


def test_index_readers_need_the_ed25519_key_beside_the_ml_dsa_one(
    keys: dict[str, Any], server: ServeProcess, tmp_path: Path
) -> None:
    """The lookup index is signed by the Ed25519 key alone: with the ML-DSA key only, commands
    that read it are usage errors naming the fix (not "forged manifest" alarms), while get by
    index still proves the entry."""
    url, mldsa = server.log.url, keys["mldsa_vkey"]
    by_index = run("get", "--log-url", url, "--vkey", mldsa, "--log-index", "0", state=tmp_path)
    assert by_index.returncode == 0, by_index.stderr
    for command in (
        ("get", "--uuid", "00" * 32),
        ("search", "--sha", "00" * 32),
        ("fsck",),
        ("monitor", "--once"),
    ):
        done = run(*command[:1], "--log-url", url, "--vkey", mldsa, *command[1:], state=tmp_path)
        assert done.returncode == 2, (command, done.stderr)
        assert "signs with its Ed25519 key alone" in done.stderr, (command, done.stderr)
