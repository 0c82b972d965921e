"""``stelae serve --gc-grace`` as a real child process: a log grown one entry per batch gets its
obsolete partial tiles and bundles deleted, the static server then answers 404 for them, a
reader holding an old checkpoint still verifies over HTTP (the full tile stands in,
https://c2sp.org/tlog-tiles), and ``stelae fsck`` calls the collected log whole."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from stelae.sequencer.logdir import init_log
from stelae.sequencer.pending import PendingEntry
from stelae.tiles.client import LogClient
from stelae.tiles.fetch import HTTPFetcher
from stelae.tiles.notekeys import parse_vkey
from tests.support.api import ORIGIN, start_serve, stelae_command

SIZE = 300  # tile 0/000 full; 0/001.p/44 the right edge


@pytest.fixture
def grown(tmp_path: Path) -> Path:
    """A data directory whose log grew in small batches (sizes 1, 2, 3, 250, 300), every
    partial kept."""
    data = tmp_path / "stelae-data"
    local, _ = init_log(data, ORIGIN)
    seq = local.sequencer()
    seq.published()
    start = 0
    for size in (1, 2, 3, 250, SIZE):
        seq.integrate([PendingEntry(f'{{"n":{i}}}'.encode()) for i in range(start, size)])
        start = size
    seq.close()
    local.store.flush()
    assert sorted(p.name for p in (data / "log/tile/0/000.p").iterdir()) == ["1", "2", "250", "3"]
    return data


def test_serve_collects_and_readers_and_fsck_still_agree(grown: Path, tmp_path: Path) -> None:
    log_dir = grown / "log"
    # First run: the sequencer finds tile 0 full and, with no grace, deletes its partials; a
    # clean stop deletes whatever is due before exiting.
    first = start_serve(grown, "127.0.0.1:0", "--gc-grace", "0")
    status, err = first.terminate()
    assert status == 0, err
    assert not (log_dir / "tile/0/000.p").exists()
    assert not (log_dir / "tile/entries/000.p").exists()
    assert (log_dir / "tile/0/001.p/44").is_file() and (log_dir / "tile/0/000").is_file()

    served = start_serve(grown, "127.0.0.1:0", "--gc-grace", "off")
    try:
        assert served.log.request("GET", "/tile/0/000.p/100", None, {}).status == 404
        reader = LogClient(HTTPFetcher(served.log.url), [parse_vkey(served.log.vkey)], ORIGIN)
        old = reader.open_checkpoint((log_dir / "checkpoints/3").read_bytes())
        assert reader.entry(2, old).data == b'{"n":2}'
        reader.prove_consistency(old, reader.checkpoint())
    finally:
        status, err = served.terminate()
    assert status == 0, err

    vkey = tmp_path / "vkey.txt"
    vkey.write_text(served.log.vkey + "\n")
    proc = subprocess.run(
        [*stelae_command(), "fsck", "--log-url", str(log_dir), "--vkey", f"@{vkey}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_gc_grace_must_be_seconds_or_off(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*stelae_command(), "serve", "--data", str(tmp_path / "d"), "--gc-grace", "soon"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "'soon' is not a number of seconds or 'off'" in proc.stderr
    assert not (tmp_path / "d").exists()
