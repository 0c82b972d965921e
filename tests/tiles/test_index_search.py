"""The verifying lookup client (stelae.tiles.search) over index objects built by the core:
complete answers at every published size against a plain dict, and a typed error for each way
the served objects can be wrong."""

from __future__ import annotations

import hashlib
import random

import pytest

from stelae.tiles.checkpoint import Checkpoint
from stelae.tiles.errors import FormatError, NotFoundError, VerificationError
from stelae.tiles.hashing import root_from_leaf_hashes
from stelae.tiles.indexkeys import KeyKind, entry_keys, index_key
from stelae.tiles.indexproof import LookupProof
from stelae.tiles.indexrecord import Record, RunRef
from stelae.tiles.indexrun import (
    BatchEntryKeys,
    IndexMissingError,
    Shard,
    batch_records,
    build_run,
    merge_records,
    shard_of,
)
from stelae.tiles.manifest import Manifest, ManifestMismatchError
from stelae.tiles.mergepolicy import MergePolicy
from stelae.tiles.note import UnverifiedNoteError
from stelae.tiles.notekeys import Ed25519NoteSigner
from stelae.tiles.paths import manifest_path, run_shard_path
from stelae.tiles.proof import RootMismatchError
from stelae.tiles.search import InvalidIndexObjectError, lookup

ORIGIN = "example.com/index-test"
SIGNER = Ed25519NoteSigner(ORIGIN, b"\x07" * 32)
SHA = hashlib.sha256

POOL = (
    [(KeyKind.DIGEST, f"sha256:{SHA(b'd%d' % i).hexdigest()}") for i in range(12)]
    + [(KeyKind.KEY, SHA(b"k%d" % i).hexdigest()) for i in range(3)]
    + [(KeyKind.IDENTITY, f"user{i}@example.com") for i in range(3)]
)


class IndexedLog:
    """A log's index built batch by batch with the core, merges settled after every batch."""

    def __init__(self, policy: MergePolicy, target: int) -> None:
        self.policy, self.target = policy, target
        self.store: dict[str, bytes] = {}
        self.runs: list[tuple[int, int, list[Record], RunRef]] = []
        self.leaves: list[bytes] = []
        self.reference: dict[tuple[KeyKind, str], list[int]] = {}
        self.batch_start: dict[int, int] = {}
        self.checkpoints: list[Checkpoint] = []

    def _put_run(self, a: int, b: int, records: list[Record]) -> RunRef:
        built = build_run(a, b, records, target=self.target)
        self.store.update(built.objects())
        return built.ref

    def append(self, batch: list[tuple[bytes, list[tuple[KeyKind, str]]]]) -> Checkpoint:
        base = len(self.leaves)
        entries = []
        for offset, (leaf, keys) in enumerate(batch):
            entries.append(BatchEntryKeys(leaf, tuple(keys)))
            by = {k: [v for kk, v in keys if kk is k] for k in KeyKind}
            for pair in entry_keys(leaf, by[KeyKind.DIGEST], by[KeyKind.KEY], by[KeyKind.IDENTITY]):
                self.reference.setdefault(pair, []).append(base + offset)
            self.batch_start[base + offset] = base
            self.leaves.append(leaf)
        end = len(self.leaves)
        records = batch_records(base, entries)
        self.runs.append((base, end, records, self._put_run(base, end, records)))
        while (i := self.policy.plan([(a, b) for a, b, _, _ in self.runs])) is not None:
            (a, _, older, _), (_, b, newer, _) = self.runs[i], self.runs[i + 1]
            merged = merge_records(older, newer)
            self.runs[i : i + 2] = [(a, b, merged, self._put_run(a, b, merged))]
        root = root_from_leaf_hashes(self.leaves)
        manifest = Manifest(ORIGIN, end, root, tuple(ref for _, _, _, ref in self.runs))
        self.store[manifest_path(end)] = manifest.sign(SIGNER)
        checkpoint = Checkpoint(ORIGIN, end, root)
        self.checkpoints.append(checkpoint)
        return checkpoint

    def fetch(self, path: str) -> bytes:
        try:
            return self.store[path]
        except KeyError:
            raise NotFoundError(f"{path} not found") from None


def random_log(seed: int, batches: int, policy: MergePolicy, target: int) -> IndexedLog:
    rng = random.Random(seed)
    log = IndexedLog(policy, target)
    n = 0
    for _ in range(batches):
        batch = []
        for _ in range(rng.randint(1, 7)):
            # Leaves repeat now and then: a log can hold the same entry twice.
            leaf = SHA(b"leaf %d" % (n if rng.random() > 0.05 else 0)).digest()
            batch.append((leaf, rng.sample(POOL, rng.randint(0, 3))))
            n += 1
        log.append(batch)
    return log


def query(log: IndexedLog, checkpoint: Checkpoint, kind: KeyKind, value: str) -> tuple[int, ...]:
    answer = lookup(log.fetch, [SIGNER.verifier], ORIGIN, checkpoint, kind, value)
    assert answer.tree_size == checkpoint.size
    assert len(answer.proofs) == answer.objects_read - 1
    for ref, proof in answer.proofs:  # exported proofs verify on their own, from JSON
        got = LookupProof.from_json(proof.to_json()).verify(index_key(kind, value), ref)
        assert (got is not None) == any(ref.a <= i < ref.b for i in answer.indices)
    return answer.indices


@pytest.mark.parametrize(
    ("seed", "policy", "target"),
    [
        (1, MergePolicy(fanout=2, unit=2), 64),
        (2, MergePolicy(fanout=3, unit=4), 200),
        (3, MergePolicy(), 1 << 18),
    ],
)
def test_every_size_answers_like_a_dict(seed: int, policy: MergePolicy, target: int) -> None:
    log = random_log(seed, 25, policy, target)
    assert any(ref.bits > 0 for _, _, _, ref in log.runs) or target > 1000
    for checkpoint in log.checkpoints[:: max(1, len(log.checkpoints) // 6)] + log.checkpoints[-1:]:
        for pair in [*POOL, (KeyKind.DIGEST, "sha256:" + "0" * 64)]:
            want = tuple(i for i in log.reference.get(pair, []) if i < checkpoint.size)
            assert query(log, checkpoint, *pair) == want


def test_leaf_lookups_name_the_batch() -> None:
    log = random_log(4, 12, MergePolicy(fanout=2, unit=2), 64)
    checkpoint = log.checkpoints[-1]
    for index in (0, 5, len(log.leaves) - 1):
        leaf = log.leaves[index].hex()
        answer = lookup(
            log.fetch, [SIGNER.verifier], ORIGIN, checkpoint, KeyKind.LEAF, leaf.upper()
        )
        assert index in answer.indices
        assert answer.value == leaf
        assert answer.batch_starts == tuple(log.batch_start[i] for i in answer.indices)
        assert answer.to_json()["batchStarts"] == list(answer.batch_starts)
    digest = lookup(log.fetch, [SIGNER.verifier], ORIGIN, checkpoint, *POOL[0])
    assert digest.batch_starts is None and "batchStarts" not in digest.to_json()


def test_empty_log_reads_nothing() -> None:
    def fetch(path: str) -> bytes:
        raise AssertionError(f"fetched {path}")

    empty = Checkpoint(ORIGIN, 0, SHA(b"").digest())
    answer = lookup(fetch, [SIGNER.verifier], ORIGIN, empty, *POOL[0])
    assert answer.indices == () and answer.objects_read == 0


def test_a_bad_query_fetches_nothing() -> None:
    def fetch(path: str) -> bytes:
        raise AssertionError(f"fetched {path}")

    checkpoint = Checkpoint(ORIGIN, 5, bytes(32))
    with pytest.raises(FormatError, match="not a digest"):
        lookup(fetch, [SIGNER.verifier], ORIGIN, checkpoint, KeyKind.DIGEST, "md5:00")


@pytest.fixture(scope="module")
def log() -> IndexedLog:
    return random_log(5, 10, MergePolicy(fanout=2, unit=2), 64)


def run_lookup(log: IndexedLog, checkpoint: Checkpoint | None = None) -> tuple[int, ...]:
    checkpoint = checkpoint or log.checkpoints[-1]
    return lookup(log.fetch, [SIGNER.verifier], ORIGIN, checkpoint, *POOL[0]).indices


def tampered(log: IndexedLog, path: str, data: bytes | None) -> IndexedLog:
    copy = IndexedLog(log.policy, log.target)
    copy.store = dict(log.store)
    copy.checkpoints = log.checkpoints
    if data is None:
        del copy.store[path]
    else:
        copy.store[path] = data
    return copy


def test_missing_manifest(log: IndexedLog) -> None:
    checkpoint = Checkpoint(ORIGIN, len(log.leaves) + 1, bytes(32))
    with pytest.raises(IndexMissingError) as info:
        run_lookup(log, checkpoint)
    assert info.value.path == manifest_path(len(log.leaves) + 1)
    assert isinstance(info.value, VerificationError) and isinstance(info.value, NotFoundError)


def test_manifest_for_another_checkpoint(log: IndexedLog) -> None:
    last = log.checkpoints[-1]
    with pytest.raises(ManifestMismatchError) as info:
        run_lookup(log, Checkpoint(ORIGIN, last.size, SHA(b"other").digest()))
    assert info.value.field == "root"


def test_manifest_signed_by_another_key(log: IndexedLog) -> None:
    path = manifest_path(log.checkpoints[-1].size)
    text = Manifest.open(log.store[path], [SIGNER.verifier], ORIGIN)
    other = Ed25519NoteSigner(ORIGIN, b"\x08" * 32)
    with pytest.raises(UnverifiedNoteError):
        run_lookup(tampered(log, path, text.sign(other)))


def test_malformed_manifest_signed_by_the_log(log: IndexedLog) -> None:
    from stelae.tiles.note import sign_note

    path = manifest_path(log.checkpoints[-1].size)
    bad = sign_note("stelae-index/v1\nnot a manifest\n", [SIGNER]).to_bytes()
    with pytest.raises(InvalidIndexObjectError) as info:
        run_lookup(tampered(log, path, bad))
    assert info.value.path == path


def the_shard(log: IndexedLog, run: int) -> tuple[str, RunRef, int]:
    ref = log.runs[run][3]
    s = shard_of(index_key(*POOL[0]), ref.bits)
    return run_shard_path(ref.a, ref.b, s), ref, s


def test_missing_shard(log: IndexedLog) -> None:
    path, _, _ = the_shard(log, 0)
    with pytest.raises(IndexMissingError) as info:
        run_lookup(tampered(log, path, None))
    assert info.value.path == path


def test_tampered_shard(log: IndexedLog) -> None:
    path, ref, s = the_shard(log, -1)
    data = log.store[path]
    with pytest.raises(RootMismatchError):
        run_lookup(tampered(log, path, data[:-1] + bytes([data[-1] ^ 1])))
    # A run with a record of the key's shard left out: well-formed, but not the signed run.
    checked = 0
    for run, (a, b, records, ref) in enumerate(log.runs):
        path, _, s = the_shard(log, run)
        in_shard = [r for r in records if shard_of(r.key, ref.bits) == s]
        if not in_shard:
            continue
        partial = [r for r in records if r is not in_shard[0]]
        dishonest = build_run(a, b, partial, target=log.target)
        if dishonest.ref.bits != ref.bits:
            continue
        with pytest.raises(RootMismatchError):
            run_lookup(tampered(log, path, dishonest.shards[s]))
        checked += 1
    assert checked


def test_a_leaf_record_must_carry_offsets() -> None:
    leaf = SHA(b"x").digest()
    key = index_key(KeyKind.LEAF, leaf.hex())
    digest = (KeyKind.DIGEST, f"sha256:{'1' * 64}")
    for record in (Record(key, (0,)), Record(index_key(*digest), (0,), (0,))):
        built = build_run(0, 1, [record])
        log = IndexedLog(MergePolicy(), 1 << 18)
        log.store.update(built.objects())
        checkpoint = Checkpoint(ORIGIN, 1, bytes(32))
        log.store[manifest_path(1)] = Manifest(ORIGIN, 1, bytes(32), (built.ref,)).sign(SIGNER)
        kind, value = (KeyKind.LEAF, leaf.hex()) if record.key == key else digest
        with pytest.raises(InvalidIndexObjectError, match="offsets"):
            lookup(log.fetch, [SIGNER.verifier], ORIGIN, checkpoint, kind, value)
        Shard.parse(built.shards[0], built.ref, 0)  # the shard itself is well-formed
