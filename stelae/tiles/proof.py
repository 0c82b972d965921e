"""Merkle inclusion and consistency proofs: which nodes a proof needs, and verification.

The *math* (which leaf ranges a proof is made of, RFC 6962 §2.1.1–2.1.2) is kept apart from the
*fetching* (reading those nodes from tiles, in :mod:`stelae.tiles.client`). Verification follows
RFC 9162 §2.1.3.2 and §2.1.4.2 and raises typed errors that carry the evidence; it never returns a
bool.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from stelae.tiles.compact import perfect_subtrees
from stelae.tiles.counts import count
from stelae.tiles.errors import VerificationError
from stelae.tiles.hashing import HASH_SIZE, largest_power_of_two_below, node_hash

Range = tuple[int, int]
"""A leaf range ``[start, end)`` whose RFC 6962 MTH is one proof element."""


class ProofError(VerificationError):
    """A proof is malformed for the sizes it claims (wrong length, bad sizes, bad hash length)."""


class RootMismatchError(VerificationError):
    """A proof is well-formed but leads to another root than the expected one."""

    def __init__(self, what: str, expected: bytes, calculated: bytes) -> None:
        super().__init__(
            f"{what}: calculated root {calculated.hex()} does not match expected {expected.hex()}"
        )
        self.expected = expected
        self.calculated = calculated


# --- which nodes --------------------------------------------------------------------------------


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The ranges of RFC 6962 ``PATH(index, D[size])``, leaf to root."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not inside a tree of size {size}")
    out: list[Range] = []
    start, end = 0, size
    # Walk down to the leaf collecting siblings, then reverse to get leaf-to-root order.
    while end - start > 1:
        k = largest_power_of_two_below(end - start)
        if index - start < k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start += k
    out.reverse()
    return out


def consistency_ranges(size1: int, size2: int) -> list[Range]:
    """The ranges of RFC 6962 ``PROOF(size1, D[size2])`` for ``0 < size1 <= size2``."""
    if not 0 < size1 <= size2:
        raise ProofError(f"no consistency proof from size {size1} to size {size2}")
    out: list[Range] = []
    start, end, m, complete = 0, size2, size1, True
    while m != end - start:
        k = largest_power_of_two_below(end - start)
        if m <= k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start, m, complete = start + k, m - k, False
    if not complete:
        out.append((start, end))
    out.reverse()
    return out


def range_root(start: int, end: int, node: Callable[[int, int], bytes]) -> bytes:
    """MTH of leaves [start, end), from the perfect nodes ``node(level, index)``.

    Valid for the ranges :func:`inclusion_ranges` and :func:`consistency_ranges` produce, which
    start at a multiple of their largest perfect subtree, so RFC 6962's split is the binary one.
    """
    parts = perfect_subtrees(start, end)
    if not parts:
        raise ProofError(f"empty range [{start}, {end})")
    acc = node(*parts[-1])
    for level, index in reversed(parts[:-1]):
        acc = node_hash(node(level, index), acc)
    return acc


# --- verification ---------------------------------------------------------------------------------


def _check_hashes(what: str, hashes: Sequence[bytes]) -> None:
    for i, h in enumerate(hashes):
        if len(h) != HASH_SIZE:
            raise ProofError(f"{what}: proof hash {i} is {len(h)} bytes, want {HASH_SIZE}")


def root_from_inclusion_proof(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> bytes:
    """The root that ``proof`` implies for ``leaf_hash`` at ``index`` (RFC 9162 §2.1.3.2)."""
    what = f"inclusion of leaf {index} in tree of size {size}"
    if size <= 0 or not 0 <= index < size:
        raise ProofError(f"{what}: the index is outside the tree")
    if len(leaf_hash) != HASH_SIZE:
        raise ProofError(f"{what}: leaf hash is {len(leaf_hash)} bytes, want {HASH_SIZE}")
    _check_hashes(what, proof)
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError(f"{what}: proof has {count(len(proof), 'hash', 'hashes')}, too many")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"{what}: proof has {count(len(proof), 'hash', 'hashes')}, too few")
    return r


def verify_inclusion(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise unless ``proof`` shows ``leaf_hash`` at ``index`` in the tree ``(size, root)``."""
    calculated = root_from_inclusion_proof(index, size, leaf_hash, proof)
    if calculated != root:
        raise RootMismatchError(
            f"inclusion of leaf {index} in tree of size {size}", root, calculated
        )


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Raise unless ``proof`` shows tree ``(size1, root1)`` is a prefix of ``(size2, root2)``.

    Policy for the edge cases RFC 9162 leaves open (as transparency-dev/merkle): ``size1 == 0`` is
    rejected as meaningless (callers that accept growth from empty, like a witness, special-case
    it); ``size1 == size2`` needs an empty proof and equal roots; ``size1 > size2`` is an error.
    """
    what = f"consistency from size {size1} to size {size2}"
    if size1 <= 0 or size2 < size1:
        raise ProofError(f"{what}: sizes must satisfy 0 < size1 <= size2")
    _check_hashes(what, proof)
    if size1 == size2:
        if proof:
            raise ProofError(
                f"{what}: equal sizes need an empty proof, "
                f"got {count(len(proof), 'hash', 'hashes')}"
            )
        if root1 != root2:
            raise RootMismatchError(what, root1, root2)
        return
    fr, sr = roots_from_consistency_proof(size1, size2, proof, root1)
    if fr != root1:
        raise RootMismatchError(f"{what} (old root)", root1, fr)
    if sr != root2:
        raise RootMismatchError(f"{what} (new root)", root2, sr)


def roots_from_consistency_proof(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes
) -> tuple[bytes, bytes]:
    """The (old, new) roots that ``proof`` implies (RFC 9162 §2.1.4.2 run forwards).

    Requires ``0 < size1 < size2``. ``root1`` is used only when ``size1`` is a power of two
    (the proof then omits that node). :func:`verify_consistency` compares both results.
    """
    what = f"consistency from size {size1} to size {size2}"
    path = _consistency_path(what, size1, size2, proof, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"{what}: proof has {count(len(proof), 'hash', 'hashes')}, too many")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"{what}: proof has {count(len(proof), 'hash', 'hashes')}, too few")
    return fr, sr


def _consistency_path(
    what: str, size1: int, size2: int, proof: Sequence[bytes], root1: bytes
) -> list[bytes]:
    """The nodes :func:`roots_from_consistency_proof` folds, after checking its preconditions:
    the proof's hashes, preceded by ``root1`` when the proof omits it."""
    if not 0 < size1 < size2:
        raise ProofError(f"{what}: sizes must satisfy 0 < size1 < size2")
    _check_hashes(what, proof)
    if not proof:
        raise ProofError(f"{what}: proof is empty")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # size1 is a power of two: its root is the first node
        path.insert(0, root1)
    return path
