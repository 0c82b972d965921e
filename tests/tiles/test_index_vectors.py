"""The lookup index's format pinned by tests/vectors/index.json: index keys, record bytes, whole
runs (batches, a merge, a run of several shards), lookup proofs and a manifest text."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from stelae.tiles.indexkeys import KeyKind, index_key, normalize
from stelae.tiles.indexproof import LookupProof
from stelae.tiles.indexrecord import Record, RunRef, decode_record
from stelae.tiles.indexrun import BatchEntryKeys, Shard, batch_records, build_run, merge_records
from stelae.tiles.manifest import Manifest
from tests.support.vectors import load_vectors

V: dict[str, Any] = load_vectors("index.json")


@pytest.mark.parametrize("case", V["index_keys"], ids=lambda c: c["kind"])
def test_index_keys(case: dict[str, str]) -> None:
    kind = KeyKind(case["kind"])
    assert normalize(kind, case["value"]) == case["normalized"]
    assert index_key(kind, case["value"]).hex() == case["index_key_hex"]


@pytest.mark.parametrize("case", V["records"], ids=lambda c: c["record_hex"][32:])
def test_records(case: dict[str, Any]) -> None:
    offsets = None if case["offsets"] is None else tuple(case["offsets"])
    record = Record(bytes.fromhex(case["key_hex"]), tuple(case["indices"]), offsets)
    data = bytes.fromhex(case["record_hex"])
    assert record.encode(case["a"]) == data
    assert decode_record(data, 0, case["a"], 1 << 32) == (record, len(data))
    assert hashlib.sha256(b"\x00" + data).hexdigest() == case["record_hash_hex"]


def vector_runs() -> list[tuple[int, int, list[Record]]]:
    entries = [
        BatchEntryKeys(bytes.fromhex(e["leaf_hex"]), tuple((KeyKind(k), v) for k, v in e["keys"]))
        for e in V["batches"]["entries"]
    ]
    first, second = V["batches"]["sizes"]
    older = batch_records(0, entries[:first])
    newer = batch_records(first, entries[first : first + second])
    merged = merge_records(older, newer)
    end = first + second
    return [(0, first, older), (first, end, newer), (0, end, merged), (0, end, merged)]


def test_runs() -> None:
    for (a, b, records), want in zip(vector_runs(), V["runs"], strict=True):
        built = build_run(a, b, records, target=want["target"])
        assert (built.ref.a, built.ref.b, built.ref.bits) == (want["a"], want["b"], want["bits"])
        assert built.ref.root.hex() == want["root_hex"]
        assert [s.hex() for s in built.shards] == want["shards_hex"]
        for s, data in enumerate(built.shards):
            assert list(Shard.parse(data, built.ref, s).records) == [
                r for r in records if int.from_bytes(r.key, "big") >> (128 - built.ref.bits) == s
            ]


@pytest.mark.parametrize("case", V["lookups"], ids=lambda c: c["kind"])
def test_lookup_proofs(case: dict[str, Any]) -> None:
    run = V["runs"][case["run"]]
    ref = RunRef(run["a"], run["b"], run["bits"], bytes.fromhex(run["root_hex"]))
    record = LookupProof.from_json(case["proof"]).verify(
        index_key(KeyKind(case["kind"]), case["value"]), ref
    )
    assert (None if record is None else list(record.indices)) == case["indices"]


def test_manifest_text() -> None:
    manifest = Manifest.parse(V["manifest_text"])
    assert manifest.to_text() == V["manifest_text"]
    run = V["runs"][3]
    assert manifest.runs == (
        RunRef(run["a"], run["b"], run["bits"], bytes.fromhex(run["root_hex"])),
    )
