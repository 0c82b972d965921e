"""The lookup index's pure core (docs/index.md): keys, records, runs, shards and lookup proofs.

Round trips for every format, hypothesis properties against a plain dict of the entries' keys
over random batches and random merges, and mutations that must all be caught with typed errors.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stelae.errors import StelaeError
from stelae.tiles.errors import FormatError, VerificationError
from stelae.tiles.hashing import EMPTY_ROOT, root_from_leaf_hashes
from stelae.tiles.indexkeys import KeyKind, entry_keys, index_key, normalize
from stelae.tiles.indexproof import (
    LookupProof,
    MalformedLookupProofError,
    RecordProof,
    level_path,
    levels_root,
    tree_levels,
)
from stelae.tiles.indexrecord import (
    MalformedRecordError,
    Record,
    RunRef,
    decode_record,
    read_uvarint,
    uvarint,
)
from stelae.tiles.indexrun import (
    SHARD_TARGET,
    BatchEntryKeys,
    BuiltRun,
    IndexMissingError,
    InvalidShardError,
    Shard,
    batch_records,
    bits_for,
    build_run,
    merge_records,
    read_run,
    shard_of,
)
from stelae.tiles.paths import batch_path, manifest_path, run_shard_path
from stelae.tiles.proof import RootMismatchError, verify_inclusion

H = "ab" * 32
SHA = hashlib.sha256


# --- keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "normal"),
    [
        (KeyKind.LEAF, "AB" * 32, "ab" * 32),
        (KeyKind.DIGEST, H, f"sha256:{H}"),
        (KeyKind.DIGEST, f"SHA256:{H.upper()}", f"sha256:{H}"),
        (KeyKind.DIGEST, "sha384:" + "0" * 96, "sha384:" + "0" * 96),
        (KeyKind.DIGEST, "sha512:" + "F" * 128, "sha512:" + "f" * 128),
        (KeyKind.KEY, "A" * 40, "a" * 40),
        (KeyKind.KEY, H, H),
        (KeyKind.IDENTITY, " Alice@Example.COM ", "alice@example.com"),
        (
            KeyKind.IDENTITY,
            "https://github.com/Org/Repo/.github/w.yml@refs/heads/Main",
            "https://github.com/Org/Repo/.github/w.yml@refs/heads/Main",
        ),
    ],
)
def test_normalize(kind: KeyKind, value: str, normal: str) -> None:
    assert normalize(kind, value) == normal
    assert normalize(kind, normal) == normal
    assert index_key(kind, value) == index_key(kind, normal)
    data = b"stelae-index-key/v1\n" + kind.value.encode() + b"\n" + normal.encode()
    assert index_key(kind, value) == SHA(data).digest()[:16]


@pytest.mark.parametrize(
    ("kind", "value", "problem"),
    [
        (KeyKind.LEAF, "ab" * 31, "64 hex digits"),
        (KeyKind.LEAF, "zz" * 32, "64 hex digits"),
        (KeyKind.DIGEST, "md5:" + "0" * 32, "sha256:<hex>"),
        (KeyKind.DIGEST, "sha256:" + "0" * 63, "64 hex digits, not 63"),
        (KeyKind.DIGEST, "sha256:" + "٠" * 64, "sha256:<hex>"),  # Arabic-Indic zeros
        (KeyKind.KEY, "a" * 39, "40..128"),
        (KeyKind.KEY, "g" * 40, "40..128"),
        (KeyKind.IDENTITY, "   ", "not an empty string"),
        (KeyKind.IDENTITY, "a\ud800@x", "UTF-8"),
    ],
)
def test_normalize_rejects(kind: KeyKind, value: str, problem: str) -> None:
    with pytest.raises(FormatError, match=problem):
        normalize(kind, value)


def test_kinds_are_separated() -> None:
    assert index_key(KeyKind.LEAF, H) != index_key(KeyKind.KEY, H)


def test_entry_keys() -> None:
    leaf = bytes(range(32))
    keys = entry_keys(
        leaf,
        [H, f"sha256:{H}", "SHA512:" + "A" * 128],
        ["B" * 40, "b" * 40],
        ["X@Y.z", "x@y.z", "https://A"],
    )
    assert keys == [
        (KeyKind.LEAF, leaf.hex()),
        (KeyKind.DIGEST, f"sha256:{H}"),
        (KeyKind.DIGEST, "sha512:" + "a" * 128),
        (KeyKind.KEY, "b" * 40),
        (KeyKind.IDENTITY, "x@y.z"),
        (KeyKind.IDENTITY, "https://A"),
    ]
    with pytest.raises(FormatError):
        entry_keys(leaf[:31], [], [], [])


def test_layout_paths() -> None:
    assert manifest_path(0) == "index/manifest/0"
    assert run_shard_path(1024, 2048, 3) == "index/run/1024-2048/3"
    assert batch_path(4096) == "batch/4096"


# --- records ------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 127, 128, 300, 2**14, 2**21 - 1, 2**63 - 1])
def test_uvarint_round_trip(n: int) -> None:
    data = uvarint(n) + b"tail"
    assert read_uvarint(data, 0) == (n, len(data) - 4)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "truncated"),
        (b"\x80", "truncated"),
        (b"\x80\x00", "not minimal"),
        (b"\xff" * 9 + b"\x01", "longer than 9"),
    ],
)
def test_uvarint_rejects(data: bytes, problem: str) -> None:
    with pytest.raises(MalformedRecordError, match=problem):
        read_uvarint(data, 0)


def key(n: int) -> bytes:
    return SHA(n.to_bytes(8, "big")).digest()[:16]


@pytest.mark.parametrize(
    "record",
    [
        Record(key(1), (100,)),
        Record(key(2), (100, 101, 500, 100_000)),
        Record(key(3), (150,), (50,)),
        Record(key(4), (100, 300, 301), (0, 200, 1)),
    ],
)
def test_record_round_trip(record: Record) -> None:
    data = record.encode(100)
    assert decode_record(data + b"more", 0, 100, 200_000) == (record, len(data))


def test_record_encoding_cache_follows_the_value() -> None:
    record = Record(key(1), (100, 105))
    assert record.encode(100) == key(1) + b"\x00\x02\x00\x04"
    assert record.encode(50) == key(1) + b"\x00\x02\x32\x04"  # another run start
    moved = replace(record, indices=(101, 105))
    assert moved.encode(100) == key(1) + b"\x00\x02\x01\x03"
    assert moved == Record(key(1), (101, 105)) != record
    decoded, _ = decode_record(record.encode(100), 0, 100, 200)
    assert decoded.encoded(100) == (record.encode(100), SHA(b"\x00" + record.encode(100)).digest())


def test_record_bytes_are_the_documented_ones() -> None:
    k = key(5)
    assert Record(k, (10, 11, 20)).encode(10) == k + b"\x00\x03" + b"\x00\x00\x08"
    assert Record(k, (12, 200), (2, 60)).encode(10) == k + b"\x01\x02\x02\xbb\x01\x02\x3c"


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        (Record(key(1), ()), "no indices"),
        (Record(key(1), (99,)), "before the run"),
        (Record(key(1), (100, 100)), "not above"),
        (Record(key(1), (100,), (1,)), "outside the run"),
        (Record(key(1), (100, 101), (0,)), "1 offsets for 2"),
        (Record(b"short", (100,)), "not 16"),
    ],
)
def test_record_encode_rejects(record: Record, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        record.encode(100)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (key(1) + b"\x02\x01\x00", "unknown flags"),
        (key(1) + b"\x00\x00\x00", "claims 0"),
        (key(1) + b"\x00\x05\x00", "claims 5"),
        (key(1) + b"\x00\x01\x80\x00", "not minimal"),
        (key(1) + b"\x00\x01\x64", "outside"),  # index 200 in [100, 200)
        (key(1) + b"\x00\x02\x00\x63", "outside"),
        (key(1) + b"\x01\x01\x00\x01", "before the run"),
        (key(1) + b"\x00\x01", "truncated"),
    ],
)
def test_record_decode_rejects(data: bytes, problem: str) -> None:
    with pytest.raises(MalformedRecordError, match=problem):
        decode_record(data, 0, 100, 200)


# --- batches and merges -------------------------------------------------------------------------


def leaf_of(i: int) -> bytes:
    return SHA(b"leaf %d" % i).digest()


def test_batch_records() -> None:
    d = (KeyKind.DIGEST, f"sha256:{H}")
    k = (KeyKind.KEY, "c" * 64)
    entries = [
        BatchEntryKeys(leaf_of(0), (d, k, d)),  # a key listed twice by one entry counts once
        BatchEntryKeys(leaf_of(1), (k,)),
        BatchEntryKeys(leaf_of(0), ()),  # the same leaf sequenced twice
    ]
    records = batch_records(1000, entries)
    assert [r.key for r in records] == sorted(r.key for r in records)
    got = {r.key: r for r in records}
    assert got[index_key(*d)] == Record(index_key(*d), (1000,))
    assert got[index_key(*k)] == Record(index_key(*k), (1000, 1001))
    leaf0 = index_key(KeyKind.LEAF, leaf_of(0).hex())
    assert got[leaf0] == Record(leaf0, (1000, 1002), (0, 2))
    assert got[leaf0].batch_starts() == (1000, 1000)
    assert len(records) == 4
    with pytest.raises(ValueError, match="implied"):
        batch_records(0, [BatchEntryKeys(leaf_of(0), ((KeyKind.LEAF, leaf_of(1).hex()),))])
    with pytest.raises(FormatError):
        batch_records(0, [BatchEntryKeys(leaf_of(0), ((KeyKind.DIGEST, "nope"),))])


def test_merge_records() -> None:
    a, b, c = key(1), key(2), key(3)
    a, b, c = sorted((a, b, c))
    older = [Record(a, (0, 3)), Record(b, (1,), (1,))]
    newer = [Record(b, (5,), (0,)), Record(c, (4, 6))]
    assert merge_records(older, newer) == [
        Record(a, (0, 3)),
        Record(b, (1, 5), (1, 0)),
        Record(c, (4, 6)),
    ]
    assert merge_records([], newer) == newer
    with pytest.raises(ValueError, match="reach index 3, newer start at 3"):
        merge_records(older, [Record(c, (3,))])
    with pytest.raises(ValueError, match="leaf key in one run only"):
        merge_records(older, [Record(b, (5,))])
    with pytest.raises(ValueError, match="not sorted"):
        merge_records(list(reversed(older)), newer)


# --- trees --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [*range(1, 20), 31, 32, 33, 100])
def test_tree_levels_are_rfc6962(n: int) -> None:
    leaves = [SHA(bytes([i])).digest() for i in range(n)]
    levels = tree_levels(leaves)
    root = levels_root(levels)
    assert root == root_from_leaf_hashes(leaves)
    for j in range(n):
        verify_inclusion(j, n, leaves[j], list(level_path(levels, j)), root)
    assert levels_root(tree_levels([])) == EMPTY_ROOT


# --- runs and shards ----------------------------------------------------------------------------


def records_of(n: int, a: int = 0) -> list[Record]:
    """``n`` records, one per index from ``a``, every fourth a leaf record."""
    out = [Record(key(i), (a + i,), (0,) if i % 4 == 0 else None) for i in range(n)]
    return sorted(out, key=lambda r: r.key)


def test_bits_for() -> None:
    assert bits_for(0) == 0
    assert bits_for(SHARD_TARGET) == 0
    assert bits_for(SHARD_TARGET + 1) == 1
    assert bits_for(5 * SHARD_TARGET) == 3
    assert bits_for(10**20) == 24


def test_build_and_read_a_run() -> None:
    records = records_of(200, 1000)
    run = build_run(1000, 1200, records, target=512)
    assert run.ref.bits == bits_for(sum(len(r.encode(1000)) for r in records), 512) > 0
    assert len(run.shards) == 1 << run.ref.bits
    assert [p for p, _ in run.objects()] == [
        run_shard_path(1000, 1200, s) for s in range(len(run.shards))
    ]
    store = dict(run.objects())
    assert read_run(store.__getitem__, run.ref) == records
    # The default target puts these in one shard; the root is the records' RFC 6962 root.
    one = build_run(1000, 1200, records)
    assert one.ref.bits == 0
    leaves = [SHA(b"\x00" + r.encode(1000)).digest() for r in records]
    assert one.ref.root == root_from_leaf_hashes(leaves)
    # Deterministic: the same records give the same bytes.
    assert build_run(1000, 1200, list(records), target=512) == run


def test_read_run_missing_shard() -> None:
    run = build_run(0, 64, records_of(64), target=256)

    def fetch(path: str) -> bytes:
        if path.endswith("/1"):
            from stelae.tiles.errors import NotFoundError

            raise NotFoundError(path)
        return dict(run.objects())[path]

    with pytest.raises(IndexMissingError) as info:
        read_run(fetch, run.ref)
    assert info.value.path == run_shard_path(0, 64, 1)
    assert isinstance(info.value, VerificationError)


def test_build_run_rejects() -> None:
    records = records_of(10)
    with pytest.raises(ValueError, match="not sorted"):
        build_run(0, 10, list(reversed(records)))
    with pytest.raises(ValueError, match="beyond the run's end"):
        build_run(0, 9, records)
    with pytest.raises(ValueError, match="empty"):
        build_run(5, 5, [])


def test_empty_run_and_empty_shards() -> None:
    run = build_run(0, 1, [])
    assert run.ref.root == EMPTY_ROOT
    shard = Shard.parse(run.shards[0], run.ref, 0)
    k = key(9)
    assert shard.find(k) is None
    proof = shard.prove(k)
    assert proof.records == () and proof.count == 0
    assert proof.verify(k, run.ref) is None
    # Two records over 16 shards: most shards are empty, each proves its own emptiness.
    records = records_of(2)
    run = build_run(0, 2, records, target=1)
    assert run.ref.bits == 6
    empties = 0
    for s, data in enumerate(run.shards):
        shard = Shard.parse(data, run.ref, s)
        if not shard.records:
            empties += 1
            probe = (s << (128 - 6)).to_bytes(16, "big")
            assert shard.prove(probe).verify(probe, run.ref) is None
    assert empties == 62


def test_key_before_first_and_after_last() -> None:
    records = records_of(50)
    run = build_run(0, 50, records)
    shard = Shard.parse(run.shards[0], run.ref, 0)
    first, last = records[0].key, records[-1].key
    before = (int.from_bytes(first, "big") - 1).to_bytes(16, "big")
    after = (int.from_bytes(last, "big") + 1).to_bytes(16, "big")
    for probe, position in ((before, 0), (after, 49)):
        proof = shard.prove(probe)
        assert [rp.position for rp in proof.records] == [position]
        assert proof.verify(probe, run.ref) is None
    middle = (int.from_bytes(records[20].key, "big") + 1).to_bytes(16, "big")
    proof = shard.prove(middle)
    assert [rp.position for rp in proof.records] == [20, 21]
    assert proof.verify(middle, run.ref) is None
    assert shard.prove(records[20].key).verify(records[20].key, run.ref) == records[20]


def test_shard_parse_checks_the_header() -> None:
    run = build_run(0, 64, records_of(64), target=256)
    ref = run.ref
    with pytest.raises(InvalidShardError, match="names shard 0"):
        Shard.parse(run.shards[0], ref, 1)
    other = replace(ref, a=1)
    with pytest.raises(InvalidShardError, match="run 0-64"):
        Shard.parse(run.shards[0], other, 0)
    with pytest.raises(InvalidShardError, match="only"):
        Shard.parse(run.shards[0], ref, ref.shards)
    with pytest.raises(InvalidShardError, match="after the last record"):
        Shard.parse(run.shards[0] + b"\x00", ref, 0)
    with pytest.raises(RootMismatchError):
        Shard.parse(run.shards[0], replace(ref, root=bytes(32)), 0)


def test_a_dropped_record_is_caught() -> None:
    records = records_of(40)
    run = build_run(0, 40, records, target=256)
    for drop in range(0, 40, 7):
        s = shard_of(records[drop].key, run.ref.bits)
        dishonest = build_run(0, 40, records[:drop] + records[drop + 1 :], target=256)
        # Same shard count (so the header fits), but not the same root.
        assert dishonest.ref.bits == run.ref.bits
        assert dishonest.ref.root != run.ref.root
        with pytest.raises(RootMismatchError):
            Shard.parse(dishonest.shards[s], run.ref, s)


def test_every_byte_of_a_shard_matters() -> None:
    run = build_run(0, 40, records_of(40), target=256)
    s = max(range(len(run.shards)), key=lambda i: len(run.shards[i]))
    data = run.shards[s]
    for i in range(len(data)):
        for flip in (0x01, 0x80, 0xFF):
            mutated = data[:i] + bytes([data[i] ^ flip]) + data[i + 1 :]
            with pytest.raises(VerificationError):
                Shard.parse(mutated, run.ref, s)
    with pytest.raises(VerificationError):
        Shard.parse(data[:-1], run.ref, s)


# --- lookup proofs ------------------------------------------------------------------------------


def proofs_for(run: BuiltRun, probe: bytes) -> LookupProof:
    s = shard_of(probe, run.ref.bits)
    return Shard.parse(run.shards[s], run.ref, s).prove(probe)


def test_proof_json_round_trip() -> None:
    records = records_of(60)
    run = build_run(0, 60, records, target=300)
    for probe in [records[3].key, key(10**6), bytes(16), b"\xff" * 16]:
        proof = proofs_for(run, probe)
        text = json.dumps(proof.to_json())
        again = LookupProof.from_json(json.loads(text))
        assert again == proof
        assert again.verify(probe, run.ref) == proof.verify(probe, run.ref)


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda o: o.pop("count"), "exactly"),
        (lambda o: o.update(count=-1), "count"),
        (lambda o: o.update(count=True), "count"),
        (lambda o: o.update(shardProof="AAAA"), "shardProof"),
        (lambda o: o["shardProof"].append("AAAA"), "3-byte hash"),
        (lambda o: o["shardProof"].append("=" * 44), "not base64"),
        (lambda o: o.update(records=[{}] * 3), "0 to 2"),
        (lambda o: o["records"][0].update(record=""), "empty"),
        (lambda o: o["records"][0].update(record="AB=="), "canonical"),
        (lambda o: o["records"][0].update(extra=1), "exactly"),
        (lambda o: o.update(records=o["records"][::-1]), "ascending position"),
    ],
)
def test_proof_from_json_rejects(mutate: object, problem: str) -> None:
    records = records_of(60)
    run = build_run(0, 60, records, target=300)
    probe = (int.from_bytes(records[30].key, "big") + 1).to_bytes(16, "big")
    obj = proofs_for(run, probe).to_json()
    assert len(obj["records"]) == 2 and obj["shardProof"]
    mutate(obj)  # type: ignore[operator]
    with pytest.raises(MalformedLookupProofError, match=problem):
        LookupProof.from_json(obj)


def proof_mutations(proof: LookupProof) -> list[LookupProof]:
    """Every single-byte change of a proof's byte fields, and every position moved by one."""
    out = []
    for i, h in enumerate(proof.shard_path):
        for j in range(len(h)):
            path = list(proof.shard_path)
            path[i] = h[:j] + bytes([h[j] ^ 0x01]) + h[j + 1 :]
            out.append(replace(proof, shard_path=tuple(path)))
    for n, rp in enumerate(proof.records):

        def with_record(new: RecordProof, n: int = n) -> LookupProof:
            records = list(proof.records)
            records[n] = new
            return replace(proof, records=tuple(records))

        for j in range(len(rp.record)):
            data = rp.record[:j] + bytes([rp.record[j] ^ 0x01]) + rp.record[j + 1 :]
            out.append(with_record(replace(rp, record=data)))
        for i, h in enumerate(rp.path):
            path = list(rp.path)
            path[i] = h[:-1] + bytes([h[-1] ^ 0x80])
            out.append(with_record(replace(rp, path=tuple(path))))
        for delta in (-1, 1):
            if rp.position + delta >= 0:
                out.append(with_record(replace(rp, position=rp.position + delta)))
    out.append(replace(proof, records=proof.records[:-1]))
    out.append(replace(proof, shard_path=proof.shard_path[:-1]))
    return out


def test_every_proof_mutation_is_caught() -> None:
    records = records_of(60)
    run = build_run(0, 60, records, target=300)
    assert run.ref.bits >= 2
    probes = [
        records[5].key,  # membership
        (int.from_bytes(records[30].key, "big") + 1).to_bytes(16, "big"),  # between two
        bytes(16),  # before everything
        b"\xff" * 16,  # after everything
    ]
    for probe in probes:
        proof = proofs_for(run, probe)
        for bad in proof_mutations(proof):
            with pytest.raises(VerificationError):
                bad.verify(probe, run.ref)
        # The record count is not bound by an RFC 6962 inclusion proof for every position; a
        # changed count may verify, but then it must give the same answer.
        for count in (proof.count - 1, proof.count + 1):
            try:
                answer = replace(proof, count=count).verify(probe, run.ref)
            except VerificationError:
                continue
            assert answer == proof.verify(probe, run.ref)


def test_a_proof_for_another_key_or_run_fails() -> None:
    records = records_of(60)
    run = build_run(0, 60, records, target=300)
    proof = proofs_for(run, records[5].key)
    with pytest.raises(VerificationError):
        proof.verify(records[6].key, run.ref)
    with pytest.raises(VerificationError):
        proof.verify(records[5].key, replace(run.ref, root=bytes(32)))
    with pytest.raises(VerificationError):
        proof.verify(records[5].key[:15], run.ref)


# --- properties against a plain dict ------------------------------------------------------------

POOL = (
    [(KeyKind.DIGEST, f"sha256:{SHA(b'd%d' % i).hexdigest()}") for i in range(10)]
    + [(KeyKind.KEY, SHA(b"k%d" % i).hexdigest()) for i in range(3)]
    + [(KeyKind.IDENTITY, f"user{i}@example.com") for i in range(3)]
)
ABSENT = [(KeyKind.DIGEST, f"sha256:{SHA(b'absent%d' % i).hexdigest()}") for i in range(4)]

batches_strategy = st.lists(
    st.lists(
        st.tuples(st.integers(0, 40), st.lists(st.sampled_from(POOL), max_size=4)),
        min_size=1,
        max_size=6,
    ),
    min_size=1,
    max_size=8,
)


def build_log(
    batches: Sequence[Sequence[tuple[int, list[tuple[KeyKind, str]]]]],
    merges: Sequence[int],
    target: int,
) -> tuple[list[tuple[int, int, list[Record]]], dict[bytes, list[int]], dict[int, int]]:
    """Runs after the merges (each merge picks an adjacent pair by ``merges[k] % pairs``), the
    reference answer of each key, and each index's batch start."""
    runs: list[tuple[int, int, list[Record]]] = []
    reference: dict[bytes, list[int]] = {}
    starts: dict[int, int] = {}
    base = 0
    for batch in batches:
        entries = []
        for offset, (leaf, keys) in enumerate(batch):
            leaf_hash = leaf_of(leaf)
            entries.append(BatchEntryKeys(leaf_hash, tuple(keys)))
            pairs = entry_keys(
                leaf_hash,
                [v for k, v in keys if k is KeyKind.DIGEST],
                [v for k, v in keys if k is KeyKind.KEY],
                [v for k, v in keys if k is KeyKind.IDENTITY],
            )
            for kind, value in pairs:
                reference.setdefault(index_key(kind, value), []).append(base + offset)
            starts[base + offset] = base
        runs.append((base, base + len(batch), batch_records(base, entries)))
        base += len(batch)
    for m in merges:
        if len(runs) < 2:
            break
        i = m % (len(runs) - 1)
        (a, _, older), (_, b, newer) = runs[i], runs[i + 1]
        runs[i : i + 2] = [(a, b, merge_records(older, newer))]
    return runs, reference, starts


@settings(max_examples=100, deadline=None)
@given(
    batches=batches_strategy,
    merges=st.lists(st.integers(0, 100), max_size=8),
    target=st.sampled_from([40, 200, SHARD_TARGET]),
)
def test_runs_answer_like_a_dict(
    batches: list[list[tuple[int, list[tuple[KeyKind, str]]]]], merges: list[int], target: int
) -> None:
    runs, reference, starts = build_log(batches, merges, target)
    probes = {index_key(k, v) for k, v in POOL + ABSENT} | set(reference)
    answers: dict[bytes, list[int]] = {p: [] for p in probes}
    for a, b, records in runs:
        built = build_run(a, b, records, target=target)
        shards = [Shard.parse(data, built.ref, s) for s, data in enumerate(built.shards)]
        assert [r for sh in shards for r in sh.records] == records
        for probe in probes:
            shard = shards[shard_of(probe, built.ref.bits)]
            record = shard.prove(probe).verify(probe, built.ref)
            assert record == shard.find(probe)
            if record is not None:
                answers[probe].extend(record.indices)
                if record.offsets is not None:
                    assert record.batch_starts() == tuple(starts[i] for i in record.indices)
    assert {p: v for p, v in answers.items() if v} == reference


@settings(max_examples=60, deadline=None)
@given(batches=batches_strategy, seed=st.integers(0, 2**32))
def test_random_mutations_of_real_shards_and_proofs_are_caught(
    batches: list[list[tuple[int, list[tuple[KeyKind, str]]]]], seed: int
) -> None:
    runs, reference, _ = build_log(batches, [0] * 8, 64)
    rng = random.Random(seed)
    a, b, records = runs[0]
    built = build_run(a, b, records, target=64)
    s = rng.randrange(len(built.shards))
    data = built.shards[s]
    i = rng.randrange(len(data))
    mutated = data[:i] + bytes([data[i] ^ rng.randrange(1, 256)]) + data[i + 1 :]
    with pytest.raises(VerificationError):
        Shard.parse(mutated, built.ref, s)
    probe = rng.choice(sorted(reference))
    proof = proofs_for(built, probe)
    bad = rng.choice(proof_mutations(proof))
    with pytest.raises(StelaeError):
        bad.verify(probe, built.ref)


def test_run_ref_validation() -> None:
    for bad in [(5, 5, 0, bytes(32)), (0, 1, 25, bytes(32)), (0, 1, 0, bytes(31))]:
        with pytest.raises(FormatError):
            RunRef(*bad)
