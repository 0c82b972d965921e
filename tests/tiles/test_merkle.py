"""RFC 6962 hashing, right-edge appends and proofs: published vectors, mutations, properties."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stelae.tiles.compact import RightEdge, perfect_subtrees
from stelae.tiles.errors import VerificationError
from stelae.tiles.hashing import EMPTY_ROOT, leaf_hash, node_hash, root_from_leaf_hashes
from stelae.tiles.proof import (
    ProofError,
    RootMismatchError,
    consistency_ranges,
    inclusion_ranges,
    range_root,
    verify_consistency,
    verify_inclusion,
)
from tests.support import merkle_reference as ref
from tests.support.vectors import load_vectors

V = load_vectors("merkle.json")
b64 = base64.b64decode


def test_empty_and_record_hash() -> None:
    assert EMPTY_ROOT.hex() == V["empty_root_hex"]
    rh = V["record_hash"]
    assert leaf_hash(rh["data_utf8"].encode()) == b64(rh["hash_b64"])


def test_standard_leaves_levels_and_roots() -> None:
    leaves = [bytes.fromhex(x) for x in V["leaf_inputs_hex"]]
    hashes = [leaf_hash(x) for x in leaves]
    assert [h.hex() for h in hashes] == V["leaf_hashes_hex"]
    level1 = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, 8, 2)]
    assert [h.hex() for h in level1] == V["level1_hex"]
    level2 = [node_hash(level1[i], level1[i + 1]) for i in range(0, 4, 2)]
    assert [h.hex() for h in level2] == V["level2_hex"]
    edge = RightEdge.empty()
    for n, want in enumerate(V["roots_hex"]):
        assert root_from_leaf_hashes(hashes[:n]).hex() == want
        assert edge.root().hex() == want, f"right edge root at size {n}"
        if n < 8:
            edge = edge.append([hashes[n]])


def _incl(case: dict[str, Any]) -> tuple[int, int, bytes, list[bytes], bytes]:
    return (
        case["leafIdx"],
        case["treeSize"],
        b64(case["leafHash"]),
        [b64(p) for p in case["proof"]],
        b64(case["root"]),
    )


@pytest.mark.parametrize("case", V["inclusion"], ids=lambda c: c["dir"])
def test_inclusion_happy_path(case: dict[str, Any]) -> None:
    verify_inclusion(*_incl(case))


def _inclusion_mutations(case: dict[str, Any]) -> list[tuple[str, tuple[Any, ...]]]:
    """The mutations transparency-dev/merkle's testdata applies to each happy path."""
    idx, size, leaf, proof, root = _incl(case)
    garbage = b"\x00" * 32
    muts: list[tuple[str, tuple[Any, ...]]] = [
        ("wrong-leaf", (idx, size, leaf_hash(b"WRONG"), proof, root)),
        ("leaf-index-plus-one", (idx + 1, size, leaf, proof, root)),
        ("tree-size-times-two", (idx, size * 2, leaf, proof, root)),
        ("empty-root", (idx, size, leaf, proof, b"")),
        ("wrong-root", (idx, size, leaf, proof, EMPTY_ROOT)),
        ("trailing-garbage", (idx, size, leaf, [*proof, garbage], root)),
        ("preceding-garbage", (idx, size, leaf, [garbage, *proof], root)),
        ("root-appended", (idx, size, leaf, [*proof, root], root)),
    ]
    if idx > 0:
        muts.append(("leaf-index-minus-one", (idx - 1, size, leaf, proof, root)))
    if size > 1:
        muts.append(("tree-size-div-two", (idx, size // 2, leaf, proof, root)))
    for i, p in enumerate(proof):
        flipped = bytes([p[0] ^ 1, *p[1:]])
        muts.append(
            (f"modified-proof-{i}", (idx, size, leaf, [*proof[:i], flipped, *proof[i + 1 :]], root))
        )
        muts.append((f"removed-component-{i}", (idx, size, leaf, proof[:i] + proof[i + 1 :], root)))
        muts.append(
            (f"inserted-component-{i}", (idx, size, leaf, [*proof[:i], garbage, *proof[i:]], root))
        )
    return muts


@pytest.mark.parametrize(
    ("case", "name", "args"),
    [(c, n, a) for c in V["inclusion"] for n, a in _inclusion_mutations(c)],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_inclusion_mutations_fail(case: dict[str, Any], name: str, args: tuple[Any, ...]) -> None:
    with pytest.raises(VerificationError):
        verify_inclusion(*args)


def test_inclusion_size_zero_is_an_error() -> None:
    with pytest.raises(ProofError, match="outside the tree"):
        verify_inclusion(0, 0, EMPTY_ROOT, [], EMPTY_ROOT)


def test_root_mismatch_carries_evidence() -> None:
    case = V["inclusion"][1]
    idx, size, _leaf, proof, root = _incl(case)
    with pytest.raises(RootMismatchError) as info:
        verify_inclusion(idx, size, leaf_hash(b"x"), proof, root)
    assert info.value.expected == root
    assert info.value.calculated != root and len(info.value.calculated) == 32


def _cons(case: dict[str, Any]) -> tuple[int, int, list[bytes], bytes, bytes]:
    return (
        case["size1"],
        case["size2"],
        [b64(p) for p in case["proof"]],
        b64(case["root1"]),
        b64(case["root2"]),
    )


@pytest.mark.parametrize("case", V["consistency"], ids=lambda c: c["dir"])
def test_consistency_happy_path(case: dict[str, Any]) -> None:
    verify_consistency(*_cons(case))


def _consistency_mutations(case: dict[str, Any]) -> list[tuple[str, tuple[Any, ...]]]:
    s1, s2, proof, r1, r2 = _cons(case)
    garbage = b"\x00" * 32
    muts: list[tuple[str, tuple[Any, ...]]] = [
        ("wrong-root1", (s1, s2, proof, EMPTY_ROOT, r2)),
        ("wrong-root2", (s1, s2, proof, r1, EMPTY_ROOT)),
        ("swapped-roots", (s1, s2, proof, r2, r1))
        if r1 != r2
        else ("size2-plus-one", (s1, s2 + 1, proof, r1, r2)),
        ("trailing-garbage", (s1, s2, [*proof, garbage], r1, r2)),
        ("preceding-garbage", (s1, s2, [garbage, *proof], r1, r2)),
        ("size1-zero", (0, s2, proof, r1, r2)),
        ("size1-greater", (s2 + 1, s2, proof, r1, r2)),
    ]
    if s1 != s2:
        muts.append(("size2-times-two", (s1, s2 * 2, proof, r1, r2)))
        muts.append(("size1-plus-one", (s1 + 1, s2, proof, r1, r2)))
    for i, p in enumerate(proof):
        flipped = bytes([p[0] ^ 1, *p[1:]])
        muts.append(
            (f"modified-proof-{i}", (s1, s2, [*proof[:i], flipped, *proof[i + 1 :]], r1, r2))
        )
        muts.append((f"removed-component-{i}", (s1, s2, proof[:i] + proof[i + 1 :], r1, r2)))
    return muts


@pytest.mark.parametrize(
    ("case", "name", "args"),
    [(c, n, a) for c in V["consistency"] for n, a in _consistency_mutations(c)],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_consistency_mutations_fail(case: dict[str, Any], name: str, args: tuple[Any, ...]) -> None:
    with pytest.raises(VerificationError):
        verify_consistency(*args)


@pytest.mark.parametrize("case", V["consistency_additional"], ids=lambda c: c["name"])
def test_consistency_additional(case: dict[str, Any]) -> None:
    args = _cons(case)
    if case["wantErr"]:
        with pytest.raises(VerificationError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


# --- properties against the naive reference ------------------------------------------------------


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def _node_fn(hashes: list[bytes]):  # type: ignore[no-untyped-def]
    return lambda level, index: ref.mth(hashes[index << level : (index + 1) << level])


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=600), st.data())
def test_inclusion_matches_reference(size: int, data: st.DataObject) -> None:
    hashes = _leaves(size)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    proof = [range_root(a, b, _node_fn(hashes)) for a, b in inclusion_ranges(index, size)]
    assert proof == ref.path(index, hashes)
    verify_inclusion(index, size, hashes[index], proof, ref.mth(hashes))


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=600), st.data())
def test_consistency_matches_reference(size2: int, data: st.DataObject) -> None:
    hashes = _leaves(size2)
    size1 = data.draw(st.integers(min_value=1, max_value=size2))
    proof = [range_root(a, b, _node_fn(hashes)) for a, b in consistency_ranges(size1, size2)]
    assert proof == ref.consistency(size1, hashes)
    verify_consistency(size1, size2, proof, ref.mth(hashes[:size1]), ref.mth(hashes))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=6))
def test_right_edge_appends_in_batches_match_reference(batches: list[int]) -> None:
    hashes = _leaves(sum(batches))
    edge = RightEdge.empty()
    pos = 0
    for n in batches:
        edge = edge.append(hashes[pos : pos + n])
        pos += n
        assert edge.size == pos
        assert edge.root() == ref.mth(hashes[:pos])


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=2**40), st.integers(min_value=0, max_value=2**20))
def test_perfect_subtrees_cover_range_exactly(start: int, length: int) -> None:
    parts = perfect_subtrees(start, start + length)
    pos = start
    for level, index in parts:
        assert index << level == pos, "parts are contiguous and aligned"
        pos += 1 << level
    assert pos == start + length
    assert len(parts) <= 2 * 64


def test_append_with_nodes_reports_every_perfect_node() -> None:
    hashes = _leaves(20)
    seen: dict[tuple[int, int], bytes] = {}
    edge = RightEdge.empty().append_with_nodes(
        hashes[:7], lambda lv, i, h: seen.__setitem__((lv, i), h)
    )
    edge = edge.append_with_nodes(hashes[7:], lambda lv, i, h: seen.__setitem__((lv, i), h))
    expected = {
        (lv, i): ref.mth(hashes[i << lv : (i + 1) << lv])
        for lv in range(5)
        for i in range(20 >> lv)
    }
    assert seen == expected
    assert edge.root() == ref.mth(hashes)


def test_right_edge_rejects_inconsistent_state() -> None:
    with pytest.raises(ValueError, match="right-edge hashes"):
        RightEdge(3, (EMPTY_ROOT,))
