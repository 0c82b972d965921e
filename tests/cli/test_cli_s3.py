"""Reader commands straight from an S3 bucket (moto in server mode, real boto3, real process)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

from stelae.sequencer.engine import Sequencer, SequencerConfig
from stelae.sequencer.pending import PendingEntry
from stelae.sequencer.s3 import S3Store
from stelae.tiles.notekeys import Ed25519NoteSigner
from tests.conftest import MotoEndpoint
from tests.support.cli import run_stelae


def _stelae(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_stelae(*args, env=env, timeout=120)


def test_loginfo_get_and_monitor_read_s3(moto_server: MotoEndpoint, tmp_path: Path) -> None:
    bucket = f"cli-{uuid.uuid4().hex[:12]}"
    moto_server.client("s3").create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    origin = "s3cli.example/log"
    signer = Ed25519NoteSigner.generate(origin)
    store = S3Store(bucket, "logs/one", endpoint_url=moto_server.url, region_name="us-east-1")
    seq = Sequencer(store, signer, SequencerConfig(origin))
    seq.integrate([PendingEntry(f'{{"n":{i}}}'.encode()) for i in range(300)])
    env = {
        "AWS_ENDPOINT_URL": moto_server.url,
        "STELAE_LOG_URL": f"s3://{bucket}/logs/one",
        "STELAE_VKEY": signer.vkey,
        "STELAE_STATE_DIR": str(tmp_path / "state"),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return _stelae(env, *args)

    info = run("loginfo", "--json")
    assert info.returncode == 0, info.stderr
    assert '"size": 300' in info.stdout or '"tree_size": 300' in info.stdout
    got = run("get", "--log-index", "299")
    assert got.returncode == 0, got.stderr
    assert '"n": 299' in got.stdout
    audit = run("monitor", "--once")
    assert audit.returncode == 0, audit.stderr
    # The wrong prefix is an empty log location: a clear failure, not a traceback.
    env["STELAE_LOG_URL"] = f"s3://{bucket}/nothing-here"
    missing = run("loginfo")
    assert missing.returncode == 1
    assert "Traceback" not in missing.stderr


def test_index_rebuild_and_search_on_s3(moto_server: MotoEndpoint, tmp_path: Path) -> None:
    """An S3 log without an index (as an earlier stelae left it) gets one from `stelae index
    rebuild --s3`, after which `stelae search` proves its answers from the bucket."""
    import hashlib
    import json

    from stelae.client import signing
    from stelae.kinds import from_v1_proposed

    bucket = f"idx-{uuid.uuid4().hex[:12]}"
    moto_server.client("s3").create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    origin = "s3index.example/log"
    signer = Ed25519NoteSigner.generate(origin)
    store = S3Store(bucket, "log", endpoint_url=moto_server.url, region_name="us-east-1")
    key = signing.generate_key("ecdsa-p256")
    entries = []
    for i in range(5):
        sig = signing.sign_artifact(key, b"s3 artifact %d" % i)
        e = from_v1_proposed(
            signing.build_v1_hashedrekord(
                sig, signing.public_key_pem(key), artifact=b"s3 artifact %d" % i
            )
        )
        entries.append(PendingEntry(e.body, e.artifact_digests, e.key_fingerprints))
    seq = Sequencer(store, signer, SequencerConfig(origin, lookup_index=False))
    seq.integrate(entries)
    seq.close()
    key_file = tmp_path / "signing.key"
    key_file.write_text(signer.skey)
    env = {
        "AWS_ENDPOINT_URL": moto_server.url,
        "AWS_DEFAULT_REGION": "us-east-1",
        "STELAE_LOG_URL": f"s3://{bucket}/log",
        "STELAE_VKEY": signer.vkey,
        "STELAE_STATE_DIR": str(tmp_path / "state"),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return _stelae(env, *args)

    before = run("search", "--sha", hashlib.sha256(b"s3 artifact 2").hexdigest())
    assert before.returncode == 1 and "index/manifest/5" in before.stderr
    rebuilt = run("index", "rebuild", "--s3", f"s3://{bucket}/log", "--key-file", str(key_file))
    assert rebuilt.returncode == 0, rebuilt.stderr
    found = run("search", "--sha", hashlib.sha256(b"s3 artifact 2").hexdigest(), "--json")
    assert found.returncode == 0, found.stderr
    assert [e["index"] for e in json.loads(found.stdout)["entries"]] == [2]
