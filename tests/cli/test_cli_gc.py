"""``stelae gc``, run for real as a child process: a one-off collection of a local log and of a
log in S3 (moto in server mode) that were grown without garbage collection."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from stelae.sequencer.engine import Sequencer, SequencerConfig
from stelae.sequencer.logdir import init_log
from stelae.sequencer.pending import PendingEntry
from stelae.sequencer.reader import StoreFetcher
from stelae.sequencer.s3 import S3Store
from stelae.tiles.client import LogClient
from stelae.tiles.notekeys import Ed25519NoteSigner
from tests.conftest import MotoEndpoint
from tests.support.cli import run_stelae

SIZES = (1, 2, 3, 250, 300, 515, 600)  # tiles 0/000 and 0/001 full; 0/002.p/88 the right edge
FULL = 2  # full level-0 tiles (and bundles) at 600
DELETED = FULL * 2 * 255  # every width of each, whether it was written or not


def _grow(seq: Sequencer) -> None:
    seq.published()
    start = 0
    for size in SIZES:
        seq.integrate([PendingEntry(f'{{"n":{i}}}'.encode()) for i in range(start, size)])
        start = size
    seq.close()


def test_gc_collects_a_local_log(tmp_path: Path) -> None:
    data = tmp_path / "stelae-data"
    local, _ = init_log(data, "gc.example/log")
    _grow(local.sequencer())
    local.store.flush()
    log_dir = data / "log"
    assert sorted(p.name for p in (log_dir / "tile/0/002.p").iterdir()) == ["3", "88"]

    proc = run_stelae("gc", "--data", str(data), "--grace", "0", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"tree_size": 600, "deleted_keys": DELETED}
    for folder in ("tile/0/000.p", "tile/0/001.p", "tile/entries/000.p", "tile/entries/001.p"):
        assert not (log_dir / folder).exists(), folder
    # Tile 2 is not full: its partials stay, the right edge's and the older one.
    assert sorted(p.name for p in (log_dir / "tile/0/002.p").iterdir()) == ["3", "88"]
    assert {p.name for p in (log_dir / "tile/1/000.p").iterdir()} == {"1", "2"}  # not full

    again = run_stelae("gc", "--data", str(data), "--grace", "0")
    assert again.returncode == 0, again.stderr
    assert f"deleted {DELETED} partial" in again.stdout

    fsck = run_stelae("fsck", "--log-url", str(data), "--vkey", local.config.vkey)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


def test_gc_collects_a_log_in_s3(moto_server: MotoEndpoint) -> None:
    bucket = f"gc-{uuid.uuid4().hex[:12]}"
    moto_server.client("s3").create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    signer = Ed25519NoteSigner.generate("gc-s3.example/log")
    store = S3Store(bucket, "logs/one", endpoint_url=moto_server.url, region_name="us-east-1")
    _grow(Sequencer(store, signer, SequencerConfig(signer.name, background_merges=False)))
    env = {"AWS_ENDPOINT_URL": moto_server.url}
    url = f"s3://{bucket}/logs/one"

    refused = run_stelae("gc", "--s3", url, "--grace", "0", env=env)
    assert refused.returncode == 2 and "--vkey" in refused.stderr

    wrong = Ed25519NoteSigner.generate("gc-s3.example/log").vkey
    bad = run_stelae("gc", "--s3", url, "--vkey", wrong, "--grace", "0", env=env)
    assert bad.returncode == 1 and "tile/0/000.p/1" not in bad.stderr
    assert store.get("tile/0/000.p/1")  # nothing deleted on an unverified checkpoint

    proc = run_stelae("gc", "--s3", url, "--vkey", signer.vkey, "--grace", "0", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"tree_size": 600, "deleted_keys": DELETED}
    listed = store.client.list_objects_v2(Bucket=bucket, Prefix="logs/one/tile/")
    partials = sorted(o["Key"] for o in listed["Contents"] if ".p/" in o["Key"])
    assert partials == [
        "logs/one/tile/0/002.p/3",
        "logs/one/tile/0/002.p/88",
        "logs/one/tile/1/000.p/1",
        "logs/one/tile/1/000.p/2",
        "logs/one/tile/entries/002.p/3",
        "logs/one/tile/entries/002.p/88",
    ]
    assert store.counters["DELETE"] == 0  # the command made its own requests: 2 DeleteObjects
    reader = LogClient(StoreFetcher(store), [signer.verifier], signer.name)
    old = reader.open_checkpoint(store.get("checkpoints/250"))
    assert reader.entry(249, old).data == b'{"n":249}'
