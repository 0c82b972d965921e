"""`stelae fsck`, run for real: a log of 600 entries written by the real sequencer over a
LocalStore, damaged one object at a time, checked by `python -m stelae fsck` as a subprocess.
Each damage must be reported by exactly the damaged object's path, and nothing else."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stelae import kinds
from stelae.sequencer.engine import Sequencer, SequencerConfig
from stelae.sequencer.local import LocalStore
from stelae.sequencer.pending import PendingEntry
from stelae.tiles.checkpoint import Checkpoint, sign_checkpoint
from stelae.tiles.errors import NotFoundError
from stelae.tiles.fsck import fsck as check
from stelae.tiles.notekeys import Ed25519NoteSigner
from tests.cli.test_cli_read import SIGNER, Log, Served, flip
from tests.support.cli import run_stelae

SIZE = 600  # bundles 000 and 001 full, 002.p/88; tile 1/000.p/2; batches of 100


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fsck") / "log"
    log = Log(root)
    try:
        assert log.add_json(SIZE) == SIZE
    finally:
        log.close()
    return root


@pytest.fixture
def log_dir(pristine: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "log"
    shutil.copytree(pristine, copy)
    return copy


def fsck(tmp: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    vkey = tmp / "vkey.txt"
    vkey.write_text(SIGNER.vkey + "\n")
    env = {"STELAE_STATE_DIR": str(tmp / "state")}
    return run_stelae("fsck", "--log-url", url, "--vkey", f"@{vkey}", *extra, env=env)


def report(tmp: Path, url: str) -> tuple[int, dict[str, Any]]:
    proc = fsck(tmp, url, "--json")
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_a_whole_log_is_ok(log_dir: Path, tmp_path: Path) -> None:
    proc = fsck(tmp_path, str(log_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert "tree size 600" in proc.stderr and "no problems" in proc.stderr
    # A `stelae init` data directory (config.json beside log/) is read like its log.
    data = tmp_path / "data"
    data.mkdir()
    log_dir.rename(data / "log")
    (data / "config.json").write_text("{}")
    code, out = report(tmp_path, str(data))
    assert code == 0
    assert out["ok"] is True and out["tree_size"] == SIZE and out["problems"] == []
    checked = out["checked"]
    assert checked["entries"] == SIZE and checked["bundles"] == 3
    assert checked["tiles"] == 4  # 0/000, 0/001, 0/002.p/88, 1/000.p/2
    assert checked["history"] == 7 and checked["batch records"] == 6
    assert checked["entry timestamps"] == SIZE and checked["index runs"] == 6


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def timestamp_offset(record: Path) -> int:
    """The offset of a byte inside the first signed entry timestamp of a batch record."""
    data = record.read_bytes()
    header_end = data.index(b"\n")
    count: int = json.loads(data[:header_end])["count"]
    stamps = header_end + 1 + 32 * count
    assert data[stamps] == 64  # an Ed25519 signature's length byte
    return stamps + 1 + 10


def other_logs_checkpoint(path: Path) -> None:
    other = Ed25519NoteSigner.generate("other.example.test/log")
    note = sign_checkpoint(Checkpoint(other.name, 300, b"\x07" * 32), other)
    path.write_bytes(note)


def other_logs_current_checkpoint(path: Path) -> None:
    other = Ed25519NoteSigner.generate(SIGNER.name)  # the same origin, another key
    path.write_bytes(sign_checkpoint(Checkpoint(other.name, SIZE, b"\x07" * 32), other))


DAMAGE: list[tuple[str, str, Callable[[Path], None], str]] = [
    ("checkpoint by another key", "checkpoint", other_logs_current_checkpoint, "signed"),
    ("tile truncated", "tile/0/001", truncate, "truncated"),
    ("tile deleted", "tile/0/001", Path.unlink, "missing"),
    ("full bundle, entry body", "tile/entries/001", lambda p: flip(p, 10), "leaf hash"),
    ("full bundle, length", "tile/entries/001", lambda p: flip(p, 0), "does not parse"),
    ("right-edge partial bundle", "tile/entries/002.p/88", lambda p: flip(p, 45), "leaf hash"),
    ("level-1 tile", "tile/1/000.p/2", lambda p: flip(p, 33), "differ"),
    ("another log's checkpoint", "checkpoints/300", other_logs_checkpoint, "signed"),
    ("batch timestamp", "batch/200", lambda p: flip(p, timestamp_offset(p)), "timestamp"),
    ("index shard", "index/run/100-200/0", lambda p: flip(p, p.stat().st_size - 1), ""),
    ("index manifest deleted", "index/manifest/600", Path.unlink, "missing"),
]


@pytest.mark.parametrize(
    ("path", "damage", "words"), [d[1:] for d in DAMAGE], ids=[d[0] for d in DAMAGE]
)
def test_each_damage_is_reported_by_exactly_its_object(
    log_dir: Path, tmp_path: Path, path: str, damage: Callable[[Path], None], words: str
) -> None:
    damage(log_dir / path)
    code, out = report(tmp_path, str(log_dir))
    assert code == 1, out
    assert out["ok"] is False
    assert out["tree_size"] == (0 if path == "checkpoint" else SIZE)  # no trusted size
    assert [p["path"] for p in out["problems"]] == [path], out["problems"]
    (problem,) = out["problems"]
    assert words in problem["problem"]


def test_evidence_names_expected_and_found(log_dir: Path, tmp_path: Path) -> None:
    flip(log_dir / "tile/0/000", 32 * 5)  # hash 5 of the first full tile
    code, out = report(tmp_path, str(log_dir))
    assert code == 1
    (problem,) = out["problems"]
    assert problem["path"] == "tile/0/000"
    assert "first hash 5" in problem["problem"]
    served = (log_dir / "tile/0/000").read_bytes()[32 * 5 : 32 * 6]
    assert problem["found"] == served.hex()
    assert problem["expected"] != problem["found"] and len(problem["expected"]) == 64
    # Without --json: one line per problem on stdout, the summary on stderr.
    proc = fsck(tmp_path, str(log_dir))
    assert proc.returncode == 1
    (line,) = proc.stdout.splitlines()
    assert line.startswith("tile/0/000: ") and problem["found"] in line
    assert "1 problem found" in proc.stderr


def test_several_damaged_objects_are_all_reported(log_dir: Path, tmp_path: Path) -> None:
    (log_dir / "tile/0/000").unlink()
    flip(log_dir / "tile/entries/002.p/88", 45)
    other_logs_checkpoint(log_dir / "checkpoints/100")
    code, out = report(tmp_path, str(log_dir))
    assert code == 1
    assert sorted(p["path"] for p in out["problems"]) == [
        "checkpoints/100",
        "tile/0/000",
        "tile/entries/002.p/88",
    ]


@pytest.fixture
def served_copy(log_dir: Path) -> Iterator[Served]:
    s = Served(log_dir)
    yield s
    s.close()


def test_over_http_a_deleted_tile_is_reported(
    log_dir: Path, tmp_path: Path, served_copy: Served
) -> None:
    code, out = report(tmp_path, served_copy.url)
    assert code == 0, out
    # HTTP cannot be listed: the current size's history object, and the batch chain from 0.
    assert out["checked"]["history"] == 1 and out["checked"]["batch records"] == 6
    (log_dir / "tile/0/001").unlink()
    code, out = report(tmp_path, served_copy.url)
    assert code == 1
    assert [p["path"] for p in out["problems"]] == ["tile/0/001"]
    assert out["problems"][0]["found"] == "missing"


def test_a_missing_batch_record_breaks_the_chain_visibly(log_dir: Path, tmp_path: Path) -> None:
    (log_dir / "batch/300").unlink()
    code, out = report(tmp_path, str(log_dir))
    assert code == 1
    assert [p["path"] for p in out["problems"]] == ["batch/300"]


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    proc = fsck(tmp_path, str(tmp_path / "no-such-log"))
    assert proc.returncode == 2
    assert "not a directory" in proc.stderr


def test_a_log_without_an_index_is_whole_without_one(tmp_path: Path) -> None:
    root = tmp_path / "log"
    config = SequencerConfig(SIGNER.name, background_merges=False, lookup_index=False)
    sequencer = Sequencer(LocalStore(root), SIGNER, config)
    try:
        sequencer.published()
        for i in range(0, 300, 100):
            sequencer.integrate([PendingEntry(f'{{"n":{n}}}'.encode()) for n in range(i, i + 100)])
    finally:
        sequencer.close()
    assert not (root / "index").exists()
    code, out = report(tmp_path, str(root))
    assert code == 0, out
    assert out["tree_size"] == 300 and out["checked"]["index not published"] == 1


def test_the_library_reports_a_bundle_and_its_tile_both_gone(pristine: Path) -> None:
    """With neither copy of a bundle's leaf hashes, the tree above cannot be recomputed: both
    objects are reported, the later bundles are still checked, and nothing is blamed for what
    could not be checked (pure code over an in-memory copy of the log)."""
    objects = {
        p.relative_to(pristine).as_posix(): p.read_bytes()
        for p in pristine.rglob("*")
        if p.is_file() and not p.name.startswith(".") and ".state" not in p.parts
    }
    del objects["tile/entries/001"], objects["tile/0/001"]

    def fetch(path: str) -> bytes:
        try:
            return objects[path]
        except KeyError:
            raise NotFoundError(path) from None

    def list_names(folder: str) -> list[str]:
        return [k[len(folder) + 1 :] for k in objects if k.startswith(folder + "/")]

    result = check(fetch, [SIGNER.verifier], SIGNER.name, kinds.lookup_keys, list_names=list_names)
    assert [p.path for p in result.problems] == ["tile/entries/001", "tile/0/001"]
    assert result.checked["bundles"] == 3 and result.checked["batch records"] == 6
    assert result.checked["index runs"] == 2  # 0-100 and 100-200; the others need bundle 1
