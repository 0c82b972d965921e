"""The verifiable lookup index end to end: `stelae search` over real HTTP against `stelae serve`
for every key kind (absent keys proven absent), and an older log given its index by `stelae
index rebuild` and by `stelae serve` itself."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from stelae.client import signing
from stelae.kinds import from_v1_proposed
from stelae.sequencer.engine import Sequencer, SequencerConfig
from stelae.sequencer.logdir import init_log
from stelae.sequencer.pending import PendingEntry
from stelae.sequencer.receipt import IndexMissingError
from stelae.tiles.paths import manifest_path
from tests.support import certificates
from tests.support.api import ORIGIN, start_serve
from tests.support.cli import run_stelae


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_stelae(*args, env=env, timeout=120)


def _v1(artifact: bytes, key: object, verifier: bytes) -> dict[str, object]:
    sig = signing.sign_artifact(key, artifact)  # type: ignore[arg-type]
    return signing.build_v1_hashedrekord(sig, verifier, artifact=artifact)


@pytest.mark.slow
def test_search_every_key_kind_over_http_against_stelae_serve(tmp_path: Path) -> None:
    serve = start_serve(tmp_path / "data")
    try:
        log = serve.log
        key = signing.generate_key("ecdsa-p256")
        other = signing.generate_key("ecdsa-p256")
        cert = signing.certificate_pem(
            certificates.self_signed_certificate(other, "Carol@Example.com")
        )
        key_file = tmp_path / "key.pem"
        key_file.write_bytes(signing.public_key_pem(key))
        uploads = [
            _v1(b"first artifact", key, signing.public_key_pem(key)),
            _v1(b"second artifact", key, signing.public_key_pem(key)),
            _v1(b"first artifact", other, cert),
        ]
        uuids = []
        for body in uploads:
            reply = log.post("/api/v1/log/entries", body)
            assert reply.status == 201, reply.body
            uuids.append(from_v1_proposed(body).uuid)

        env = {
            "STELAE_LOG_URL": log.url,
            "STELAE_VKEY": log.vkey,
            "STELAE_STATE_DIR": str(tmp_path / "state"),
        }

        def search(*args: str) -> dict[str, object]:
            proc = _run(["search", *args, "--json"], env)
            assert proc.returncode == 0, proc.stderr
            out: dict[str, object] = json.loads(proc.stdout)
            assert out["complete"] is True and out["tree_size"] == 3
            assert "complete for tree size 3" in proc.stderr
            return out

        def indices(out: dict[str, object]) -> list[int]:
            entries = out["entries"]
            assert isinstance(entries, list)
            return [int(e["index"]) for e in entries]

        first = hashlib.sha256(b"first artifact").hexdigest()
        assert indices(search("--sha", first)) == [0, 2]
        assert indices(
            search("--sha", f"sha256:{hashlib.sha256(b'second artifact').hexdigest()}")
        ) == [1]
        assert indices(search("--public-key", str(key_file))) == [0, 1]
        assert indices(search("--email", "carol@example.com")) == [2]
        # Absent keys of every kind: proven absent, exit 0, nothing printed.
        assert indices(search("--sha", "ab" * 32)) == []
        assert indices(search("--email", "nobody@example.com")) == []
        assert indices(search("--uri", "https://nobody.example.com")) == []
        # The UUID kind: get --uuid finds each entry through the same index.
        for i, uuid in enumerate(uuids):
            proc = _run(["get", "--uuid", uuid, "--json"], env)
            assert proc.returncode == 0, proc.stderr
            assert json.loads(proc.stdout)["index"] == i
        missing = _run(["get", "--uuid", "cd" * 32], env)
        assert missing.returncode == 1 and "no entry with UUID" in missing.stderr
    finally:
        serve.terminate()


def _old_log(data: Path, n: int) -> None:
    """A log as an earlier stelae left it: tiles and checkpoints, no index manifest."""
    local, _ = init_log(data, ORIGIN)
    seq = Sequencer(
        local.store,
        local.signer,
        SequencerConfig(ORIGIN, lookup_index=False, background_merges=False, parallel_writes=1),
    )
    key = signing.generate_key("ecdsa-p256")
    entries = []
    for i in range(n):
        e = from_v1_proposed(_v1(b"artifact %d" % i, key, signing.public_key_pem(key)))
        entries.append(PendingEntry(e.body, e.artifact_digests, e.key_fingerprints, e.identities))
    seq.integrate(entries)
    seq.close()
    assert not (local.log_dir / "index").exists()


def test_an_older_log_is_refused_until_rebuilt_then_searchable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _old_log(data, 5)
    local, _ = init_log(data, ORIGIN)
    with pytest.raises(IndexMissingError, match="no index manifest") as refused:
        local.sequencer().published()
    assert refused.value.hint is not None and "stelae index rebuild" in refused.value.hint

    env = {"STELAE_STATE_DIR": str(tmp_path / "state")}
    proc = _run(["index", "rebuild", "--data", str(data), "--json"], env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["tree_size"] == 5 and len(out["runs"]) == 1
    assert (local.log_dir / manifest_path(5)).exists()
    again = _run(["index", "rebuild", "--data", str(data), "--json"], env)
    assert again.returncode == 0 and json.loads(again.stdout) == out, "idempotent"

    digest = hashlib.sha256(b"artifact 3").hexdigest()
    env.update(STELAE_LOG_URL=str(data), STELAE_VKEY=local.config.vkey)
    found = _run(["search", "--sha", digest, "--json"], env)
    assert found.returncode == 0, found.stderr
    assert [e["index"] for e in json.loads(found.stdout)["entries"]] == [3]
    # And the sequencer extends it again.
    seq = local.sequencer()
    assert seq.integrate([PendingEntry(b'{"after":1}')]).size == 6
    seq.close()


def test_stelae_serve_rebuilds_an_older_logs_index_at_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _old_log(data, 3)
    serve = start_serve(data)
    try:
        assert (data / "log" / manifest_path(3)).exists()
        assert serve.log.size() == 3
    finally:
        status, err = serve.terminate()
    assert status == 0, err
