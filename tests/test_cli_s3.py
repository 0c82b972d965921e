"""Reader commands straight from an S3 bucket (moto in server mode, real boto3, real process)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from stelae.sequencer.engine import Sequencer, SequencerConfig
from stelae.sequencer.pending import PendingEntry
from stelae.sequencer.s3 import S3Store
from stelae.tiles.notekeys import Ed25519NoteSigner
from tests.conftest import MotoEndpoint


def test_loginfo_get_and_monitor_read_s3(moto_server: MotoEndpoint, tmp_path: Path) -> None:
    bucket = f"cli-{uuid.uuid4().hex[:12]}"
    moto_server.client("s3").create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    origin = "s3cli.example/log"
    signer = Ed25519NoteSigner.generate(origin)
    store = S3Store(bucket, "logs/one", endpoint_url=moto_server.url, region_name="us-east-1")
    seq = Sequencer(store, signer, SequencerConfig(origin))
    seq.integrate([PendingEntry(f'{{"n":{i}}}'.encode()) for i in range(300)])
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": moto_server.url,
        "STELAE_LOG_URL": f"s3://{bucket}/logs/one",
        "STELAE_VKEY": signer.vkey,
        "STELAE_STATE_DIR": str(tmp_path / "state"),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "stelae", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

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
