"""Garbage collection of replaced lookup-index runs by the real sequencer (docs/index.md,
"Garbage collection"): after many single-entry batches (each merging into the newest run) and
collection, every run the newest manifest lists is whole, lookups verify, a reader of an old
checkpoint retries once at the latest one, and fsck and ``stelae search`` accept the collected
log."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from benchmarks.workload import rekord_entry
from stelae import kinds
from stelae.sequencer.engine import Sequencer, SequencerConfig
from stelae.sequencer.local import LocalStore
from stelae.sequencer.reader import StoreFetcher
from stelae.sequencer.store import ObjectStore
from stelae.tiles.client import LogClient
from stelae.tiles.fetch import DirectoryFetcher
from stelae.tiles.fsck import fsck
from stelae.tiles.hashing import leaf_hash
from stelae.tiles.indexkeys import KeyKind
from stelae.tiles.indexrun import IndexMissingError
from stelae.tiles.manifest import Manifest
from stelae.tiles.notekeys import Ed25519NoteSigner
from stelae.tiles.paths import manifest_path, parse_run_shard_path
from stelae.tiles.search import lookup, lookup_or_latest
from tests.sequencer.test_collector import Clock, NotFoundRecorder
from tests.support.cli import ok, run_stelae
from tests.support.memory import MemoryStore

ORIGIN = "example.com/index-gc"
SIGNER = Ed25519NoteSigner.generate(ORIGIN)
GRACE = 30.0
BATCHES = 300

Grown = tuple[MemoryStore, Clock, dict[int, float]]


def _sequencer(store: ObjectStore, clock: Clock, grace: float | None = GRACE) -> Sequencer:
    config = SequencerConfig(ORIGIN, background_merges=False, gc_grace=grace)
    return Sequencer(store, SIGNER, config, clock=clock)


def _digest(i: int) -> str:
    return hashlib.sha256(b"rekord artifact %d" % i).hexdigest()  # as rekord_entry's


def _grow(seq: Sequencer, clock: Clock, count: int) -> dict[int, float]:
    """Single-entry batches one second apart, merging and collecting after each (as the AWS
    sequencer does); when each size was published."""
    at = {}
    for i in range(count):
        clock.t += 1
        seq.integrate([rekord_entry(i)])
        at[i + 1] = clock.t
        seq.merge()
        seq.collect()
    return at


@pytest.fixture(scope="module")
def grown() -> Grown:
    store, clock = MemoryStore(), Clock()
    seq = _sequencer(store, clock)
    seq.published()
    at = _grow(seq, clock, BATCHES)
    seq.close()
    return store, clock, at


def _newest(store: MemoryStore) -> Manifest:
    return Manifest.open(store.get(manifest_path(BATCHES)), [SIGNER.verifier], ORIGIN)


def test_the_newest_runs_are_whole_and_only_recently_replaced_ones_remain(grown: Grown) -> None:
    store, _, _ = grown
    listed = {(r.a, r.b): r for r in _newest(store).runs}
    shards = [parse_run_shard_path(k) for k in store.keys("index/run/")]
    for (a, b), ref in listed.items():
        assert sorted(s for x, y, s in shards if (x, y) == (a, b)) == list(range(ref.shards))
    left = {(a, b) for a, b, _ in shards} - set(listed)
    # Each batch's own run and the merge that absorbed it were replaced within a second or two;
    # those replaced in the last GRACE seconds stay, and the newest merge, not listed yet.
    assert left and len(left) <= 2 * (GRACE + 1) + 1
    assert all(b > BATCHES - GRACE - 2 for _, b in left)
    # Manifests are the log's signed commitments: every one is kept.
    assert len(store.keys("index/manifest/")) == BATCHES + 1
    assert store.violations == []  # no immutable object was ever written twice differently


def test_lookups_at_the_newest_checkpoint_verify(grown: Grown) -> None:
    store, _, _ = grown
    client = LogClient(StoreFetcher(store), [SIGNER.verifier], ORIGIN)
    cp = client.checkpoint()
    for i in (0, 150, BATCHES - 1):
        answer = lookup(
            client.fetcher.fetch, [SIGNER.verifier], ORIGIN, cp.checkpoint, KeyKind.DIGEST,
            f"sha256:{_digest(i)}",
        )  # fmt: skip
        assert answer.indices == (i,)
        found = client.locate(leaf_hash(rekord_entry(i).body), cp)
        assert found is not None and found.index == i and found.batch is not None


def test_a_recently_superseded_checkpoint_needs_no_retry(grown: Grown) -> None:
    store, clock, at = grown
    for size in range(BATCHES - 20, BATCHES + 1):
        assert at.get(size + 1, clock.t) > clock.t - GRACE
        recorder = NotFoundRecorder(store)
        client = LogClient(recorder, [SIGNER.verifier], ORIGIN)
        old = client.open_checkpoint(store.get(f"checkpoints/{size}"))
        answer = lookup(
            recorder.fetch, [SIGNER.verifier], ORIGIN, old.checkpoint, KeyKind.DIGEST,
            f"sha256:{_digest(size - 1)}",
        )  # fmt: skip
        assert answer.indices == (size - 1,) and recorder.missing == []


def test_a_reader_of_an_old_checkpoint_retries_once_at_the_latest(grown: Grown) -> None:
    store, _, _ = grown
    recorder = NotFoundRecorder(store)
    client = LogClient(recorder, [SIGNER.verifier], ORIGIN)
    old = client.open_checkpoint(store.get("checkpoints/10"))
    digest = f"sha256:{_digest(5)}"
    with pytest.raises(IndexMissingError):  # the runs its manifest lists were collected
        lookup(recorder.fetch, [SIGNER.verifier], ORIGIN, old.checkpoint, KeyKind.DIGEST, digest)
    assert len(recorder.missing) == 1 and recorder.missing[0].startswith("index/run/")
    latest = client.checkpoint()
    answer = lookup_or_latest(
        recorder.fetch, [SIGNER.verifier], ORIGIN, old.checkpoint, KeyKind.DIGEST, digest,
        lambda: latest.checkpoint,
    )  # fmt: skip
    assert answer.tree_size == BATCHES and answer.indices == (5,)
    # The client's locate proves the latest checkpoint extends the old one and answers for it.
    found = client.locate(leaf_hash(rekord_entry(5).body), old)
    assert found is not None and found.index == 5 and found.batch is not None
    # An entry only the newer tree has is not in the old one.
    assert client.locate(leaf_hash(rekord_entry(200).body), old) is None
    # With no newer checkpoint to turn to, the missing object is the error.
    with pytest.raises(IndexMissingError):
        lookup_or_latest(
            recorder.fetch, [SIGNER.verifier], ORIGIN, old.checkpoint, KeyKind.DIGEST, digest,
            lambda: old.checkpoint,
        )  # fmt: skip


def test_without_a_grace_period_nothing_of_the_index_is_deleted() -> None:
    store, clock = MemoryStore(), Clock()
    seq = _sequencer(store, clock, grace=None)
    seq.published()
    _grow(seq, clock, 40)
    seq.close()
    assert store.counters["DELETE"] == 0
    assert len(store.keys("index/run/")) == 2 * 40 - 1  # each batch's run and each merge


def test_a_collected_local_log_passes_fsck_and_stelae_search(tmp_path: Path) -> None:
    root = tmp_path / "log"
    clock = Clock()
    seq = _sequencer(LocalStore(root), clock, grace=0.0)
    seq.published()
    _grow(seq, clock, 60)
    seq.close()
    assert len(list((root / "index/manifest").iterdir())) == 61
    # Emptied run folders are removed too: only the runs the newest manifest lists remain, and
    # the merge made after the last batch (listed by the next manifest).
    newest = Manifest.open((root / "index/manifest/60").read_bytes(), [SIGNER.verifier], ORIGIN)
    merged = f"{newest.runs[-2].a}-{newest.runs[-1].b}"
    assert sorted(p.name for p in (root / "index/run").iterdir()) == sorted(
        [merged, *(r.name for r in newest.runs)]
    )
    report = fsck(
        DirectoryFetcher(root).fetch,
        [SIGNER.verifier],
        ORIGIN,
        kinds.lookup_keys,
        list_names=lambda folder: sorted(p.name for p in (root / folder).iterdir()),
    )
    assert report.ok, [p.line() for p in report.problems]
    assert report.checked["index runs"] == len(newest.runs)
    vkey = tmp_path / "vkey.txt"
    vkey.write_text(SIGNER.vkey + "\n")
    env = {"STELAE_STATE_DIR": str(tmp_path / "state")}
    args = ("--log-url", str(root), "--vkey", f"@{vkey}", "--json")
    proc = ok(run_stelae("search", "--sha", _digest(7), *args, env=env))
    found = json.loads(proc.stdout)
    assert found["tree_size"] == 60 and [e["index"] for e in found["entries"]] == [7]
