"""The sequencer on every backend: integration, dedup, crash safety at every write, and races."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stelae.sequencer.engine import Sequencer, SequencerConfig
from stelae.sequencer.local import LocalStore
from stelae.sequencer.pending import PendingEntry, encode_entry
from stelae.sequencer.reader import StoreFetcher
from stelae.sequencer.receipt import LostRaceError
from stelae.sequencer.s3 import S3Store
from stelae.sequencer.store import ObjectStore
from stelae.tiles.batch import BatchRecord
from stelae.tiles.checkpoint import Checkpoint
from stelae.tiles.client import LogClient
from stelae.tiles.errors import VerificationError
from stelae.tiles.hashing import leaf_hash
from stelae.tiles.indexkeys import KeyKind
from stelae.tiles.layout import bundles_for_size, tiles_for_size
from stelae.tiles.manifest import Manifest
from stelae.tiles.note import Note
from stelae.tiles.notekeys import Ed25519NoteSigner
from stelae.tiles.paths import (
    CHECKPOINT,
    INTENT,
    ObjectClass,
    batch_path,
    history_path,
    manifest_path,
)
from stelae.tiles.proof import verify_inclusion
from stelae.tiles.search import lookup
from stelae.tiles.timestamp import set_payload, verify_set
from tests.conftest import MotoEndpoint
from tests.support.faults import FaultInjectingStore
from tests.support.memory import MemoryStore, WriteEvent
from tests.support.objects import holds

ORIGIN = "seq.example.test"
SIGNER = Ed25519NoteSigner.generate(ORIGIN)


def entry(i: int, *, tag: str = "") -> PendingEntry:
    body = f'{{"n":{i},"tag":"{tag}"}}'.encode()
    return PendingEntry(
        body,
        digests=(f"sha256:{leaf_hash(body).hex()}",),
        key_fingerprints=(f"{i % 3:064x}",),
        identities=(f"user{i % 2}@example.com",),
    )


def verify_whole_log(store: ObjectStore) -> list[bytes]:
    """Re-verify the log from its tiles with the read client; return every entry in order."""
    client = LogClient(StoreFetcher(store), [SIGNER.verifier], ORIGIN)
    cp = client.checkpoint()
    size = cp.checkpoint.size
    assert client.tiles.root(size) == cp.checkpoint.root_hash
    entries: list[bytes] = []
    for _, bundle in client.bundles(0, cp.checkpoint):
        entries.extend(bundle.entries)
    assert len(entries) == size
    # Every level-0 tile hash is the hash of the matching entry.
    for i in range(0, size, 97):
        assert client.tiles.leaf_hash(i, size) == leaf_hash(entries[i])
    for i in {0, size // 2, size - 1} if size else set():
        assert client.entry(i, cp).data == entries[i]
    # Every published object of the layout exists at this size.
    for tid in [*tiles_for_size(size), *bundles_for_size(size)]:
        assert holds(store, tid.path()), tid.path()
    assert holds(store, history_path(size))
    # The index the log signed for this size answers every entry's UUID, and nothing is missing.
    if size:
        for i in {0, size // 2, size - 1}:
            found = client.locate(leaf_hash(entries[i]), cp)
            assert found is not None and found.index == i
    return entries


def find(store: ObjectStore, kind: KeyKind, value: str) -> list[int]:
    """A verified, complete lookup in the log's index at its current checkpoint."""
    client = LogClient(StoreFetcher(store), [SIGNER.verifier], ORIGIN)
    cp = client.checkpoint().checkpoint
    return list(lookup(store.get, [SIGNER.verifier], ORIGIN, cp, kind, value).indices)


@pytest.fixture(params=["memory", "local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "memory":
        return MemoryStore()
    if request.param == "local":
        return LocalStore(tmp_path / "log", group_commit=True)
    moto: MotoEndpoint = request.getfixturevalue("moto_server")
    bucket = f"log-{uuid.uuid4().hex[:12]}"
    moto.client("s3").create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    return S3Store(bucket, endpoint_url=moto.url, region_name="us-east-1")


def make(store: ObjectStore, **kw: object) -> Sequencer:
    """A sequencer whose index merges run only when :meth:`Sequencer.merge` is called."""
    kw.setdefault("background_merges", False)
    return Sequencer(store, SIGNER, SequencerConfig(ORIGIN, **kw))  # type: ignore[arg-type]


def test_integrate_verify_and_indexes(store: ObjectStore) -> None:
    seq = make(store)
    r1 = seq.integrate([entry(i) for i in range(300)])
    assert r1.size == 300
    assert [r1.receipts[entry(i).leaf_hash].index for i in range(300)] == list(range(300))
    r2 = seq.integrate([entry(i) for i in range(300, 310)])
    assert r2.size == 310
    entries = verify_whole_log(store)
    assert entries == [entry(i).body for i in range(310)]
    receipt = r2.receipts[entry(305).leaf_hash]
    assert receipt.integrated_time > 1_700_000_000
    record = BatchRecord.parse(store.get(batch_path(300)))
    assert record.timestamps[5] == receipt.signed_entry_timestamp
    verify_set(
        SIGNER.public_key_bytes,
        receipt.signed_entry_timestamp,
        entry(305).body,
        receipt.integrated_time,
        305,
    )
    with pytest.raises(VerificationError):
        verify_set(
            SIGNER.public_key_bytes,
            receipt.signed_entry_timestamp,
            entry(305).body,
            receipt.integrated_time,
            304,
        )
    assert find(store, KeyKind.KEY, f"{1:064x}") == list(range(1, 310, 3))
    assert find(store, KeyKind.IDENTITY, "USER0@example.com") == list(range(0, 310, 2))
    assert find(store, KeyKind.DIGEST, entry(7).digests[0]) == [7]
    assert find(store, KeyKind.LEAF, entry(9).leaf_hash.hex()) == [9]
    assert find(store, KeyKind.DIGEST, "sha256:" + "ab" * 32) == []


def test_receipts_prove_inclusion_without_tiles(store: ObjectStore) -> None:
    """Each receipt's batch record alone proves its entry against the signed checkpoint."""
    seq = make(store)
    start = 0
    for n in (1, 255, 3, 300):
        result = seq.integrate([entry(i) for i in range(start, start + n)])
        cp = Checkpoint.parse(Note.parse(result.checkpoint).text)
        for i in range(start, start + n):
            r = result.receipts[entry(i).leaf_hash]
            assert r.batch is not None and r.batch.new_size == cp.size == result.size
            assert r.batch.new_root() == cp.root_hash
            proof = r.batch.inclusion_proof(r.index)
            verify_inclusion(r.index, cp.size, entry(i).leaf_hash, proof, cp.root_hash)
        start += n


def test_dedup_within_batch_and_against_log(store: ObjectStore) -> None:
    seq = make(store)
    r1 = seq.integrate([entry(1), entry(2), entry(1)])
    assert r1.size == 2
    r2 = seq.integrate([entry(2), entry(3)])
    assert r2.size == 3
    assert r2.receipts[entry(2).leaf_hash].duplicate
    assert r2.receipts[entry(2).leaf_hash].index == 1
    assert r2.receipts[entry(2).leaf_hash].signed_entry_timestamp == (
        r1.receipts[entry(2).leaf_hash].signed_entry_timestamp
    )
    assert not r2.receipts[entry(3).leaf_hash].duplicate
    r3 = seq.integrate([entry(3)])
    assert r3.size == 3 and r3.checkpoint == r2.checkpoint, (
        "an all-duplicate batch publishes nothing"
    )
    # A fresh sequencer (new process) dedups from storage, not memory.
    fresh = make(store).integrate([entry(1)]).receipts[entry(1).leaf_hash]
    assert fresh.index == 0 and fresh.duplicate


def test_without_the_lookup_index_only_tiles_are_written() -> None:
    store = MemoryStore()
    seq = make(store, lookup_index=False)
    seq.integrate([entry(i) for i in range(5)])
    assert not store.keys("index/")
    again = seq.integrate([entry(2)]).receipts[entry(2).leaf_hash]
    assert again.duplicate and again.index == 2


def test_merges_keep_lookups_complete() -> None:
    """Many batches, merged: every lookup still equals the reference; manifests list few runs."""
    store = MemoryStore()
    seq = make(store)
    total = 0
    for n in (40, 300, 7, 700, 1, 1100, 64, 900):
        seq.integrate([entry(i) for i in range(total, total + n)])
        seq.merge()
        total += n
    seq.integrate([entry(total)])
    total += 1
    manifest = Manifest.open(store.get(manifest_path(total)), [SIGNER.verifier], ORIGIN)
    assert len(manifest.runs) <= 3, manifest.runs
    assert find(store, KeyKind.KEY, f"{2:064x}") == list(range(2, total, 3))
    assert find(store, KeyKind.IDENTITY, "user1@example.com") == list(range(1, total, 2))
    for i in (0, 339, 2000, total - 1):
        assert find(store, KeyKind.LEAF, entry(i).leaf_hash.hex()) == [i]
    assert not store.violations


def test_empty_batch_on_empty_log() -> None:
    store = MemoryStore()
    r = make(store).integrate([])
    assert r.size == 0 and not store.keys()


# --- crash safety ---------------------------------------------------------------------------------


class Crash(Exception):  # noqa: N818 - a simulated process death, not an error
    pass


BIG_BATCHES = (260, 10)  # crosses a tile boundary
SMALL_BATCHES = (6, 3)  # every object class, few objects: for the slower real backends


def _batches(sizes: tuple[int, ...]) -> list[list[PendingEntry]]:
    out, start = [], 0
    for n in sizes:
        out.append([entry(i) for i in range(start, start + n)])
        start += n
    return out


def _write_steps(sizes: tuple[int, ...]) -> list[str]:
    """Every write a run of these batches makes, labelled 'op key-class #n', on a clean store."""
    steps: list[str] = []
    store = MemoryStore(after_write=lambda ev: steps.append(_label(ev, steps)))
    seq = make(store)
    for batch in _batches(sizes):
        seq.integrate(batch)
        seq.merge()
    return steps


def _label(ev: WriteEvent, seen: list[str]) -> str:
    head = ev.key.split("/")[0] if "/" in ev.key else ev.key
    if ev.key.startswith("tile/entries"):
        head = "bundle"
    elif ev.key.startswith("tile/"):
        head = "tile"
    elif ev.key.startswith("index/"):
        head = "index/" + ev.key.split("/")[1]
    base = f"{ev.op} {head}"
    return f"{base} #{sum(1 for s in seen if s.startswith(base + ' #'))}"


def _every_distinct_write(steps: list[str]) -> list[str]:
    """Every write of each class, except that the per-entry classes (one leaf record per entry,
    hundreds of interchangeable writes) are sampled at their first, middle and last write."""
    by_class: dict[str, list[str]] = {}
    for s in steps:
        by_class.setdefault(s.rsplit(" #", 1)[0], []).append(s)
    out: list[str] = []
    for group in by_class.values():
        out.extend(group if len(group) <= 8 else [group[0], group[len(group) // 2], group[-1]])
    return sorted(out)


WRITE_STEPS = _every_distinct_write(_write_steps(BIG_BATCHES))


def _first_and_last_of_each_class(steps: list[str]) -> list[str]:
    """Per object class and operation, its first and last write (the real backends are slower)."""
    by_class: dict[str, list[str]] = {}
    for s in steps:
        by_class.setdefault(s.rsplit(" #", 1)[0], []).append(s)
    return sorted({s for group in by_class.values() for s in (group[0], group[-1])})


REAL_BACKEND_STEPS = _first_and_last_of_each_class(_write_steps(SMALL_BATCHES))


@pytest.mark.parametrize("persisted", [False, True], ids=["not-persisted", "persisted"])
@pytest.mark.parametrize("step", WRITE_STEPS)
def test_crash_at_every_write(step: str, persisted: bool) -> None:
    """Crash at one write; restart; redeliver what was not acknowledged; nothing is lost."""
    store = MemoryStore()
    _crash_and_recover(store, step, persisted, BIG_BATCHES)
    assert not store.violations, store.violations


@pytest.mark.parametrize("persisted", [False, True], ids=["not-persisted", "persisted"])
@pytest.mark.parametrize("step", REAL_BACKEND_STEPS)
@pytest.mark.parametrize("backend", ["local", "s3"])
def test_crash_at_each_write_class_on_real_backends(
    backend: str, step: str, persisted: bool, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The same crash matrix on the local directory and on S3 (moto server mode)."""
    inner: ObjectStore
    if backend == "local":
        inner = LocalStore(tmp_path / "log", group_commit=True)
    else:
        moto: MotoEndpoint = request.getfixturevalue("moto_server")
        bucket = f"crash-{uuid.uuid4().hex[:12]}"
        moto.client("s3").create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
        inner = S3Store(bucket, endpoint_url=moto.url, region_name="us-east-1")
    _crash_and_recover(FaultInjectingStore(inner), step, persisted, SMALL_BATCHES)


def _crash_and_recover(
    store: MemoryStore | FaultInjectingStore, step: str, persisted: bool, sizes: tuple[int, ...]
) -> None:
    seen: list[str] = []
    armed = [True]

    def hook(ev: WriteEvent) -> None:
        label = _label(ev, seen)
        seen.append(label)
        if armed[0] and label == step:
            armed[0] = False
            raise Crash(step)

    if persisted:
        store.after_write = hook
    else:
        store.before_write = hook
    batches = _batches(sizes)
    acknowledged: set[bytes] = set()
    queue = [e for b in batches for e in b]  # what a queue would redeliver until acknowledged
    seq = make(store)
    crashed = False
    for batch in batches:
        try:
            result = seq.integrate(batch)
            acknowledged |= set(result.receipts)
            seq.merge()
        except Crash:
            crashed = True
            seq = make(store)  # the process dies; a new one starts on the same store
    assert crashed, f"step {step} was never reached"
    # Restart: the queue redelivers everything not acknowledged.
    retry = [e for e in queue if e.leaf_hash not in acknowledged]
    result = seq.integrate(retry)
    acknowledged |= set(result.receipts)
    assert acknowledged == {e.leaf_hash for e in queue}
    entries = verify_whole_log(store)
    assert sorted(entries) == sorted(e.body for e in queue), "every entry exactly once"


def test_crash_after_claim_is_recovered_by_an_idle_restart() -> None:
    """The next run completes a claimed batch even when it has nothing new to add."""

    def hook(ev: WriteEvent) -> None:
        if ev.key.startswith("tile/"):
            raise Crash("after claim")

    store = MemoryStore(before_write=hook)
    with pytest.raises(Crash):
        make(store).integrate([entry(i) for i in range(5)])
    assert holds(store, batch_path(0)) and not holds(store, CHECKPOINT)
    store.before_write = None
    assert make(store).published().size == 5
    assert verify_whole_log(store) == [entry(i).body for i in range(5)]


# --- races ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_two_sequencers_race(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if backend == "local":
        stores: list[ObjectStore] = [
            LocalStore(tmp_path / "log", group_commit=True) for _ in range(2)
        ]
    else:
        moto: MotoEndpoint = request.getfixturevalue("moto_serial")
        bucket = f"race-{uuid.uuid4().hex[:12]}"
        moto.client("s3").create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
        stores = [S3Store(bucket, endpoint_url=moto.url, region_name="us-east-1") for _ in range(2)]
    acknowledged: dict[bytes, int] = {}
    checkpoints: list[bytes] = []
    lock = threading.Lock()
    rounds = 12

    def run(worker: int) -> None:
        seq = make(stores[worker], parallel_writes=4)
        pending = [entry(i, tag=f"w{worker}") for i in range(rounds * 5)]
        while pending:
            batch = pending[:5]
            try:
                result = seq.integrate(batch)
            except LostRaceError:
                continue  # lost: nothing of ours was claimed; try again
            with lock:
                checkpoints.append(result.checkpoint)
                for lh, a in result.receipts.items():
                    assert acknowledged.setdefault(lh, a.index) == a.index
            pending = pending[5:]

    threads = [threading.Thread(target=run, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries = verify_whole_log(stores[0])
    assert len(entries) == 2 * rounds * 5
    for lh, index in acknowledged.items():
        assert leaf_hash(entries[index]) == lh
    # Every checkpoint anyone published is consistent with the final tree.
    client = LogClient(StoreFetcher(stores[0]), [SIGNER.verifier], ORIGIN)
    final = client.checkpoint()
    for cp in checkpoints:
        client.prove_consistency(client.open_checkpoint(cp), final)


def test_a_claimed_intent_of_an_earlier_stelae_is_finished() -> None:
    """A log that crashed with a batch claimed in `.state/intent` (before batch records) is
    finished by the new sequencer: same indices, same integrated time."""
    from stelae.sequencer.intent import Intent

    store = MemoryStore()
    seq = make(store)
    seq.integrate([entry(i) for i in range(3)])
    published = seq.published()
    intent = Intent(3, published.root, tuple(entry(i) for i in range(3, 6)), 1_700_000_123)
    store.put_if(INTENT, intent.to_bytes(), ObjectClass.STATE, None)
    result = make(store).published()
    assert result.size == 6
    record = BatchRecord.parse(store.get(batch_path(3)))
    assert record.integrated_time == 1_700_000_123
    assert verify_whole_log(store) == [entry(i).body for i in range(6)]


def test_intent_records_of_the_previous_format_are_still_read() -> None:
    """A v1 (JSON lines) intent left by an earlier stelae is recovered, not refused."""
    import base64
    import json

    from stelae.sequencer.intent import Intent, read_header

    entries = [entry(i) for i in range(3)]
    header = {
        "format": "stelae-intent/v1",
        "base_size": 0,
        "count": 3,
        "integrated_time": 7,
        "base_root": base64.b64encode(bytes(32)).decode(),
    }
    v1 = ("\n".join([json.dumps(header), *(encode_entry(e) for e in entries)]) + "\n").encode()
    assert read_header(v1).new_size == 3
    parsed = Intent.parse(v1)
    assert parsed.entries == tuple(entries) and parsed.integrated_time == 7
    current = Intent(5, bytes(32), tuple(entries), 9)
    assert Intent.parse(current.to_bytes()) == current


@settings(max_examples=500)
@given(
    st.binary(max_size=300),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.text(alphabet="0123456789abcdefABCDEF", max_size=64) | st.text(max_size=8),
    st.integers(min_value=0, max_value=2**63),
)
def test_set_payload_is_sorted_compact_json(
    body: bytes, time_: int, log_id: str, index: int
) -> None:
    """The SET payload's formatted fast path is byte for byte the canonical JSON it stands for."""
    canonical = json.dumps(
        {
            "body": base64.b64encode(body).decode(),
            "integratedTime": time_,
            "logID": log_id,
            "logIndex": index,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    assert set_payload(body, time_, log_id, index) == canonical


# --- a damaged store is refused, never extended --------------------------------------------------


def test_a_checkpoint_rolled_back_is_replayed_to_the_largest_tree() -> None:
    """The checkpoint replaced by an older, authentic one (and nothing else): the batch records
    are the high-water mark, and the next sequencer publishes the largest tree again."""

    store = MemoryStore()
    seq = make(store)
    for start in range(0, 50, 10):
        seq.integrate([entry(i) for i in range(start, start + 10)])
    newest = store.get(CHECKPOINT)
    old = store.get(history_path(10))
    version = store.get_versioned(CHECKPOINT).version
    store.put_if(CHECKPOINT, old, ObjectClass.CHECKPOINT, version)
    result = make(store).published()
    assert result.size == 50 and result.checkpoint == newest
    assert verify_whole_log(store) == [entry(i).body for i in range(50)]


@pytest.mark.parametrize(
    ("key", "damage"),
    [
        ("tile/0/000.p/30", lambda b: b[:100]),  # the right-edge tile, truncated
        ("tile/entries/000.p/30", lambda b: b[:-1] + bytes([b[-1] ^ 1])),  # the partial bundle
        ("tile/0/000.p/30", lambda b: b""),
    ],
)
def test_a_damaged_right_edge_is_fatal_not_a_client_error(key: str, damage: object) -> None:
    from stelae.sequencer.batcher import Batcher, LogHaltedError
    from stelae.sequencer.receipt import LogCorruptedError

    store = MemoryStore()
    make(store).integrate([entry(i) for i in range(30)])
    data = store.get(key)
    store.damage(key, damage(data))  # type: ignore[operator]
    with pytest.raises(LogCorruptedError):
        make(store).integrate([entry(30)])

    halted: list[BaseException] = []
    told = threading.Event()

    def on_fatal(err: BaseException) -> None:
        halted.append(err)
        told.set()

    batcher = Batcher(make(store), max_age=0.001, on_fatal=on_fatal)
    batcher.start()
    waiting = batcher.submit(entry(31))
    with pytest.raises(LogHaltedError):
        waiting.result(30)
    # The waiting writers are answered first, then the owner is told: await the telling.
    assert told.wait(30)
    assert len(halted) == 1 and isinstance(halted[0], LogCorruptedError)
    with pytest.raises(LogHaltedError):
        batcher.submit(entry(32))
    batcher.stop()
    assert store.get(CHECKPOINT) == store.get(history_path(30)), "nothing was extended"


@pytest.mark.parametrize(
    "damage",
    [lambda b: b[:100], lambda b: b[:-32] + bytes(32), None],
    ids=["cut", "zeroed", "gone"],
)
def test_the_newest_full_tile_damaged_is_refused_at_start(damage: object) -> None:
    """600 entries: tile/0/001 is full, left of the partial right edge, and the last full tile
    written. Truncated, changed or deleted, a starting sequencer refuses to extend the log."""
    from stelae.sequencer.receipt import LogCorruptedError

    store = MemoryStore()
    make(store).integrate([entry(i) for i in range(600)])
    key = "tile/0/001"
    if damage is None:
        del store._objects[key]
    else:
        store.damage(key, damage(store.get(key)))  # type: ignore[operator]
    with pytest.raises(LogCorruptedError, match="tile/0/001"):
        make(store).integrate([entry(600)])
    assert store.get(CHECKPOINT) == store.get(history_path(600)), "nothing was extended"
