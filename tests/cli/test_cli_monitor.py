"""The monitor: a full audit from tiles, resumed in O(new entries), catching tampered tiles,
bundles and history, forks against what it saw before, and alerting on watched entries."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pty
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stelae import kinds
from stelae.cli.reading import open_reader
from stelae.cli.state import LogState
from stelae.client.monitor import Monitor, Watches
from stelae.sequencer.local import LocalStore
from stelae.sequencer.reader import StoreFetcher
from stelae.tiles.audit import (
    AuditState,
    TileMismatchError,
    audit_bundle,
    check_root,
    compare_tile,
    partial_edge_tiles,
)
from stelae.tiles.checkpoint import Checkpoint, sign_checkpoint
from stelae.tiles.client import LogClient
from stelae.tiles.compact import RightEdge
from stelae.tiles.errors import NotFoundError
from stelae.tiles.layout import TILE_WIDTH
from stelae.tiles.notekeys import Ed25519NoteSigner
from stelae.tiles.proof import RootMismatchError
from stelae.tiles.tile import EntryBundle
from tests.cli.test_cli_read import ORIGIN, SIGNER, Log, Served, Signed, Stelae, flip

# The fixtures of test_cli_read, shared (the explicit re-export form keeps pytest finding them).
from tests.cli.test_cli_read import log as log  # noqa: PLC0414
from tests.cli.test_cli_read import served as served  # noqa: PLC0414
from tests.cli.test_cli_read import stelae as stelae  # noqa: PLC0414
from tests.support.cli import read_stderr_until, reaped, spawn_stelae


def alerts(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


# --- the pure audit -----------------------------------------------------------------------------


def test_audit_state_resumes_anywhere_and_round_trips(log: Log) -> None:
    log.add_json(1300, batch=300)
    client = LogClient(StoreFetcher(LocalStore(log.root)), [SIGNER.verifier], ORIGIN)
    cp = client.checkpoint().checkpoint
    bundles = [b for _, b in client.bundles(0, cp)]
    rng = random.Random(7)
    state = AuditState()
    reference = RightEdge.empty()
    while state.size < cp.size:
        # Stop at a random point inside the next bundle, as a size-limited earlier run would.
        n = state.size // TILE_WIDTH
        stop = min(cp.size, n * TILE_WIDTH + rng.randint(state.size % TILE_WIDTH + 1, TILE_WIDTH))
        bundle = EntryBundle(bundles[n].entries[: stop - n * TILE_WIDTH])
        step = audit_bundle(state, n, bundle)
        for tid, tile in step.full_tiles:
            compare_tile(tid, tile, client.tiles.hash_tile(tid.level, tid.index, cp.size))
        reference = reference.append(bundle.leaf_hashes()[state.size - n * TILE_WIDTH :])
        state = AuditState.from_json(json.loads(json.dumps(step.state.to_json())))
        assert state == step.state and state.root() == reference.root()
    for tid, tile in partial_edge_tiles(state):
        compare_tile(tid, tile, client.tiles.hash_tile(tid.level, tid.index, cp.size))
    check_root(state, cp)

    bad = Checkpoint(ORIGIN, cp.size, bytes(32))
    with pytest.raises(RootMismatchError):
        check_root(state, bad)
    # A rewritten entry in the part of a bundle that was already audited is caught.
    at_100 = audit_bundle(AuditState(), 0, EntryBundle(bundles[0].entries[:100])).state
    rewritten = EntryBundle((b"evil", *bundles[0].entries[1:]))
    with pytest.raises(TileMismatchError, match="entry 0 was rewritten"):
        audit_bundle(at_100, 0, rewritten)


# --- monitor --once -----------------------------------------------------------------------------


def test_monitor_audits_then_reads_only_new_bundles(
    log: Log, served: Served, stelae: Stelae
) -> None:
    log.add_json(600, batch=250)
    first = stelae("monitor", "--once")
    assert first.returncode == 0, first.stderr
    assert first.stdout == ""  # no alerts
    assert "audited entries 0..599" in first.stderr
    assert "auditing" not in first.stderr  # no progress bar in a pipe
    assert {"tile/entries/000", "tile/entries/001", "tile/entries/002.p/88"} <= set(
        served.bundles_requested()
    )

    log.add_json(300, batch=300)
    served.requests.clear()
    again = stelae("monitor", "--once")
    assert again.returncode == 0, again.stderr
    assert "audited entries 600..899" in again.stderr
    # Only the bundles holding new entries: 600 = 2*256 + 88, 900 = 3*256 + 132.
    assert sorted(served.bundles_requested()) == ["tile/entries/002", "tile/entries/003.p/132"]

    served.requests.clear()
    idle = stelae("monitor", "--once")
    assert idle.returncode == 0 and "no new entries" in idle.stderr
    assert served.bundles_requested() == []


@pytest.mark.parametrize(
    ("target", "offset"),
    [
        ("tile/entries/001", 2 + 4),  # an entry: its leaf hash no longer matches tile/0/001
        ("tile/0/001", 32 * 5),  # a leaf hash
        ("tile/1/000.p/2", 32 + 3),  # a level-1 hash (the root of tile/0/001)
        ("tile/0/002.p/44", 9),  # the partial right edge
    ],
)
def test_monitor_catches_a_tampered_tile_or_bundle(
    log: Log, stelae: Stelae, target: str, offset: int
) -> None:
    log.add_json(556, batch=556)
    flip(log.root / target, offset)
    proc = stelae("monitor", "--once")
    assert proc.returncode == 1
    (alert,) = alerts(proc.stdout)
    assert alert["alert"] == "bad_tile"
    expected = "tile/0/001" if target == "tile/entries/001" else target
    assert alert["path"] == expected
    assert alert["served"] != alert["calculated"]
    assert proc.stderr.startswith("error:") and "Traceback" not in proc.stderr


def test_monitor_catches_a_fork_against_what_it_saw(
    tmp_path: Path, log: Log, served: Served, stelae: Stelae
) -> None:
    log.add_json(300)
    assert stelae("monitor", "--once").returncode == 0
    seen = log.checkpoint()
    fork = Log(tmp_path / "fork")
    fork.add_json(310, tag="fork")
    fork.close()
    served.root = fork.root

    proc = stelae("monitor", "--once")
    assert proc.returncode == 1
    (alert,) = alerts(proc.stdout)
    assert alert["alert"] == "fork"
    assert alert["old"].encode() == seen and alert["new"].encode() == fork.checkpoint()
    assert "FORK" in proc.stderr

    # Without the last-seen checkpoint, the saved audit itself still proves the fork.
    LogState(stelae.state, ORIGIN, SIGNER.key_id).checkpoint_path.unlink()
    proc = stelae("monitor", "--once")
    assert proc.returncode == 1
    (alert,) = alerts(proc.stdout)
    assert alert["alert"] == "fork" and alert["audited_size"] == 300


def test_monitor_checks_history_objects(log: Log, stelae: Stelae) -> None:
    log.add_json(300, batch=100)
    genuine = (log.root / "checkpoints/200").read_bytes()
    lie = sign_checkpoint(Checkpoint(ORIGIN, 200, bytes(32)), SIGNER)
    (log.root / "checkpoints/200").write_bytes(lie)
    proc = stelae("monitor", "--once", url=str(log.root))  # a local log can be listed
    assert proc.returncode == 1
    (alert,) = alerts(proc.stdout)
    assert alert["alert"] == "fork" and "checkpoints/200" in alert["reason"]

    forged = sign_checkpoint(Checkpoint(ORIGIN, 100, bytes(32)), Ed25519NoteSigner.generate(ORIGIN))
    (log.root / "checkpoints/200").write_bytes(genuine)
    (log.root / "checkpoints/100").write_bytes(forged)
    proc = stelae("monitor", "--once", url=str(log.root))
    assert proc.returncode == 1
    (alert,) = alerts(proc.stdout)
    assert alert["alert"] == "bad_history" and alert["size"] == 100


def test_monitor_watch_alerts(tmp_path: Path, log: Log, stelae: Stelae) -> None:
    signed = Signed(tmp_path)
    log.add_json(2)
    log.add([signed.entry(b"a", 0), signed.entry(b"b", 1, with_cert=True), signed.entry(b"c", 1)])
    proc = stelae(
        "monitor",
        "--once",
        "--watch-key",
        str(signed.key_files[0]),
        "--watch-email",
        "ALICE@example.com",
        "--watch-digest",
        "sha256:" + hashlib.sha256(b"c").hexdigest(),
    )
    assert proc.returncode == 0, proc.stderr
    got = alerts(proc.stdout)
    assert [(a["alert"], a["index"]) for a in got] == [("watch", 2), ("watch", 3), ("watch", 4)]
    assert got[0]["matched"] == [f"key {_fingerprint(signed.key_files[0])}"]
    assert got[1]["matched"] == ["identity alice@example.com"]
    assert got[2]["matched"][0].startswith("digest sha256:")
    assert "2 entries are not a known entry kind" in proc.stderr
    # Resuming never re-alerts on entries already audited.
    log.add([signed.entry(b"d", 0)])
    again = stelae("monitor", "--once", "--watch-key", str(signed.key_files[0]))
    assert [a["index"] for a in alerts(again.stdout)] == [5]


def _fingerprint(path: Path) -> str:
    return kinds.fingerprint_public_key(path.read_bytes())


def test_monitor_loops_until_interrupted(log: Log, stelae: Stelae) -> None:
    log.add_json(20)
    env = {
        "STELAE_STATE_DIR": str(stelae.state),
        "STELAE_LOG_URL": stelae.url,
        "STELAE_VKEY": f"@{stelae.vkey_file}",
    }
    monitor = spawn_stelae("monitor", "--interval", "0.2", env=env, stdout=subprocess.PIPE)
    with reaped(monitor) as proc:
        # A round reports on stderr when it is done: wait for each report, not on a clock.
        read_stderr_until(proc, lambda line: "audited entries 0..19" in line)
        log.add_json(5)
        read_stderr_until(proc, lambda line: "audited entries 20..24" in line)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "interrupted" in err and "Traceback" not in err
    assert out == ""
    state = LogState(stelae.state, ORIGIN, SIGNER.key_id).load_monitor()
    assert state is not None and state["audit"]["size"] == 25


def test_an_interrupted_audit_resumes_from_its_last_verified_save(
    log: Log, served: Served, stelae: Stelae
) -> None:
    log.add_json(600, batch=600)
    bundle = log.root / "tile/entries/002.p/88"
    bundle.rename(log.root / "away")  # the audit stops at the last bundle, after two saves
    reader = open_reader(served.url, SIGNER.vkey, None, stelae.state)
    got: list[dict[str, Any]] = []
    with pytest.raises(NotFoundError):
        Monitor(reader, Watches(()), got.append, save_every=1).round()
    saved = reader.state.load_monitor()
    assert saved is not None and saved["audit"]["size"] == 512  # proved, then saved

    (log.root / "away").rename(bundle)
    served.requests.clear()
    reader = open_reader(served.url, SIGNER.vkey, None, stelae.state)
    result = Monitor(reader, Watches(()), got.append).round()
    assert (result.start, result.size) == (512, 600)
    # The tile audit reads only the new bundle. The index run [0, 600) was never verified (the
    # first round stopped before its index check), so it is then recomputed from every entry.
    requested = served.bundles_requested()
    assert requested[0] == "tile/entries/002.p/88"
    assert set(requested[1:]) <= {"tile/entries/000", "tile/entries/001", requested[0]}
    # Once verified, a run is not read again: the next round reads only the new batch.
    log.add_json(10, batch=10)
    served.requests.clear()
    reader = open_reader(served.url, SIGNER.vkey, None, stelae.state)
    Monitor(reader, Watches(()), got.append).round()
    assert set(served.bundles_requested()) == {"tile/entries/002.p/98"}
    assert not got


def test_monitor_shows_progress_on_a_terminal(log: Log, stelae: Stelae) -> None:
    log.add_json(600, batch=600)
    leader, follower = pty.openpty()
    env = {
        **os.environ,
        "STELAE_STATE_DIR": str(stelae.state),
        "STELAE_LOG_URL": stelae.url,
        "STELAE_VKEY": f"@{stelae.vkey_file}",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    with subprocess.Popen(
        [sys.executable, "-m", "stelae", "monitor", "--once"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=follower,
    ) as proc:
        os.close(follower)
        output = b""
        with contextlib.suppress(OSError):  # EIO once the child closes the terminal
            while chunk := os.read(leader, 4096):
                output += chunk
        proc.wait(timeout=30)
    os.close(leader)
    assert proc.returncode == 0
    assert b"auditing bundles" in output and b"audited entries 0..599" in output


def test_monitor_reports_a_signed_index_that_leaves_an_entry_out(
    tmp_path: Path, log: Log, served: Served, stelae: Stelae
) -> None:
    """The log re-signs its index with its own key, leaving one entry's UUID out: every proof a
    searcher checks still verifies, but the monitor recomputes the run and reports it."""
    from stelae.tiles.hashing import leaf_hash
    from stelae.tiles.indexkeys import KeyKind, index_key
    from stelae.tiles.indexrun import build_run, read_run
    from stelae.tiles.manifest import Manifest
    from stelae.tiles.paths import manifest_path

    signed = Signed(tmp_path)
    log.add([signed.entry(b"one", 0), signed.entry(b"two", 0), signed.entry(b"three", 1)])
    size = log.size
    manifest = Manifest.open(
        (log.root / manifest_path(size)).read_bytes(), [SIGNER.verifier], ORIGIN
    )
    (ref,) = manifest.runs
    body = LogClient(StoreFetcher(LocalStore(log.root)), [SIGNER.verifier], ORIGIN).entry(1).data
    omitted = index_key(KeyKind.LEAF, leaf_hash(body).hex())
    records = [r for r in read_run(lambda p: (log.root / p).read_bytes(), ref) if r.key != omitted]
    built = build_run(0, size, records)
    for path, data in built.objects():
        (log.root / path).write_bytes(data)
    lying = Manifest(manifest.origin, size, manifest.root, (built.ref,))
    (log.root / manifest_path(size)).write_bytes(lying.sign(SIGNER))

    # A searcher's proofs all verify: the entry is "proved absent".
    absent = stelae("get", "--uuid", leaf_hash(body).hex())
    assert absent.returncode == 1 and "no entry with UUID" in absent.stderr

    proc = stelae("monitor", "--once")
    assert proc.returncode == 1
    alerts = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [a["alert"] for a in alerts] == ["bad_index"]
    assert alerts[0]["path"] == "index/run/0-3"
    assert built.ref.root.hex() in alerts[0]["served"]  # the lying root, and what it should be
    assert ref.root.hex() in alerts[0]["calculated"]
