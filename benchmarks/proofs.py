"""Proof costs at tree sizes 10^3 … 10^9: tiles fetched, verification and generation speed.

There is no real tree: :class:`SyntheticTiles` fabricates the bytes of any tile path, so the tile
arithmetic of :class:`~stelae.tiles.client.TileReader` can be exercised at a billion leaves. Tile
``(level, index)`` holds hashes derived from ``(level, index)`` alone, so a partial tile is a prefix
of the full one, as in a real log. The synthetic hashes do not hash up into each other, so the roots
a proof is checked against are the ones the proof itself implies (RFC 9162 §2.1.3.2 / §2.1.4.2 run
forwards); verification still does all of its work, and a corrupted proof is checked to fail.

Figures:

- tiles per proof: distinct tile paths one proof reads, with no cache between proofs (random leaf
  indices for inclusion, random old sizes for consistency); also raw fetch calls, which count the
  repeats a :class:`TileReader` without a cache makes within one proof;
- verification: proofs verified per second, and what one costs in raw SHA-256 node hashes
  measured in the same run (the proof's length is the floor);
- generation: proofs computed per second from a warm in-memory tile cache, also in node hashes.
"""

from __future__ import annotations

import hashlib
import random
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from benchmarks import baseline
from benchmarks.table import table
from stelae.tiles.client import TileReader
from stelae.tiles.errors import NotFoundError
from stelae.tiles.fetch import CachingFetcher
from stelae.tiles.hashing import HASH_SIZE
from stelae.tiles.layout import TILE_WIDTH, TileID
from stelae.tiles.proof import (
    RootMismatchError,
    root_from_inclusion_proof,
    roots_from_consistency_proof,
    verify_consistency,
    verify_inclusion,
)
from tests.support.fetch import CountingFetcher

SIZES = tuple(10**k for k in range(3, 10))
_BASELINE_HASHES = 200_000
_QUICK_BASELINE_HASHES = 10_000


class SyntheticTiles:
    """A fetcher that fabricates any hash tile deterministically; there are no bundles."""

    def fetch(self, path: str) -> bytes:
        tid = TileID.parse(path)
        if tid.is_bundle:
            raise NotFoundError(f"{path}: synthetic logs have no entry bundles")
        full = hashlib.shake_256(f"{tid.level}/{tid.index}".encode()).digest(TILE_WIDTH * HASH_SIZE)
        return full[: tid.width * HASH_SIZE]


def inclusion_fetches(index: int, size: int) -> list[str]:
    """The paths (with repeats, in order) one uncached inclusion proof fetches."""
    counter = CountingFetcher(SyntheticTiles())
    TileReader(counter).inclusion_proof(index, size)
    return counter.paths


def consistency_fetches(size1: int, size2: int) -> list[str]:
    """The paths (with repeats, in order) one uncached consistency proof fetches."""
    counter = CountingFetcher(SyntheticTiles())
    TileReader(counter).consistency_proof(size1, size2)
    return counter.paths


def consistency_roots(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes
) -> tuple[bytes, bytes]:
    """The (old, new) roots a consistency proof implies (the library's RFC 9162 loop)."""
    return roots_from_consistency_proof(size1, size2, proof, root1)


def _stats(values: Sequence[int]) -> dict[str, float | int]:
    return {"avg": sum(values) / len(values), "max": max(values)}


def _per_proof_cost(
    work: Callable[[], None], ops: int, passes: int, repeat: int, hashes: int
) -> dict[str, float]:
    """Run ``work`` (``ops`` proofs) ``passes`` times, paired with ``hashes`` node hashes."""

    def repeated() -> None:
        for _ in range(passes):
            work()

    def measure() -> float:
        return baseline.timed(repeated)

    result = baseline.paired(measure, lambda: baseline.node_hashes(hashes), repeat=repeat)
    per_proof = result.seconds / (ops * passes)
    per_hash = result.baseline_seconds / hashes
    return {
        "per_second": 1 / per_proof,
        "microseconds": per_proof * 1e6,
        "node_hashes": per_proof / per_hash,
    }


def _one_size(size: int, samples: int, passes: int, repeat: int, hashes: int) -> dict[str, Any]:
    rng = random.Random(size)  # reproducible indices: tile counts are exact from run to run
    indices = [rng.randrange(size) for _ in range(samples)]
    old_sizes = [rng.randrange(1, size) for _ in range(samples)]

    inc_paths = [inclusion_fetches(i, size) for i in indices]
    con_paths = [consistency_fetches(m, size) for m in old_sizes]

    # Proofs and the roots they imply, from a warm cache (generation is timed on it below).
    reader = TileReader(CachingFetcher(SyntheticTiles(), max_items=1 << 20))
    inc, con = _proofs(reader, size, indices, old_sizes)

    # Teeth: a verifier that did no work would accept a corrupted proof.
    i, leaf, proof, root = inc[0]
    _must_fail(lambda: verify_inclusion(i, size, leaf, _corrupt(proof), root))
    m, proof, r1, r2 = con[0]
    _must_fail(lambda: verify_consistency(m, size, _corrupt(proof), r1, r2))

    def verify_inc() -> None:
        for i, leaf, proof, root in inc:
            verify_inclusion(i, size, leaf, proof, root)

    def verify_con() -> None:
        for m, proof, r1, r2 in con:
            verify_consistency(m, size, proof, r1, r2)

    def gen_inc() -> None:
        for i in indices:
            reader.inclusion_proof(i, size)

    def gen_con() -> None:
        for m in old_sizes:
            reader.consistency_proof(m, size)

    return {
        "size": size,
        "samples": samples,
        "inclusion": {
            "tiles": _stats([len(set(p)) for p in inc_paths]),
            "fetch_calls": _stats([len(p) for p in inc_paths]),
            "proof_hashes": _stats([len(x[2]) for x in inc]),
            "verify": _per_proof_cost(verify_inc, samples, passes, repeat, hashes),
            "generate": _per_proof_cost(gen_inc, samples, max(1, passes // 20), repeat, hashes),
        },
        "consistency": {
            "tiles": _stats([len(set(p)) for p in con_paths]),
            "fetch_calls": _stats([len(p) for p in con_paths]),
            "proof_hashes": _stats([len(x[1]) for x in con]),
            "verify": _per_proof_cost(verify_con, samples, passes, repeat, hashes),
            "generate": _per_proof_cost(gen_con, samples, max(1, passes // 20), repeat, hashes),
        },
    }


#: An inclusion proof to verify: (index, leaf hash, proof, the root it implies).
_Inclusion = tuple[int, bytes, list[bytes], bytes]
#: A consistency proof to verify: (old size, proof, old root, new root).
_Consistency = tuple[int, list[bytes], bytes, bytes]


def _proofs(
    reader: TileReader, size: int, indices: list[int], old_sizes: list[int]
) -> tuple[list[_Inclusion], list[_Consistency]]:
    """Inclusion proofs of ``indices`` and consistency proofs from ``old_sizes``, each with the
    leaf or old root it starts from and the roots it implies."""
    inc: list[_Inclusion] = []
    for i in indices:
        proof = reader.inclusion_proof(i, size)
        leaf = reader.leaf_hash(i, size)
        inc.append((i, leaf, proof, root_from_inclusion_proof(i, size, leaf, proof)))
    con: list[_Consistency] = []
    for m in old_sizes:
        proof = reader.consistency_proof(m, size)
        con.append((m, proof, *consistency_roots(m, size, proof, reader.root(m))))
    return inc, con


def _must_fail(verify: Callable[[], None]) -> None:
    try:
        verify()
    except RootMismatchError:
        return
    raise AssertionError("a corrupted proof verified")


def _corrupt(proof: Sequence[bytes]) -> list[bytes]:
    out = list(proof)
    out[-1] = bytes([out[-1][0] ^ 1]) + out[-1][1:]
    return out


def run(quick: bool) -> dict[str, Any]:
    samples, passes, repeat = (4, 1, 1) if quick else (256, 20, 3)
    hashes = _QUICK_BASELINE_HASHES if quick else _BASELINE_HASHES
    per_hash = min(baseline.node_hashes(hashes) for _ in range(repeat)) / hashes
    return {
        "name": "proofs",
        "quick": quick,
        "node_hashes_per_second": 1 / per_hash,
        "sizes": [_one_size(size, samples, passes, repeat, hashes) for size in SIZES],
    }


def print_result(result: dict[str, Any], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    print(
        f"proofs — baseline {result['node_hashes_per_second']:,.0f} raw node hashes/s; "
        f"{result['sizes'][0]['samples']} random proofs per size, no tile cache",
        file=out,
    )
    for kind in ("inclusion", "consistency"):
        print(f"\n{kind} proofs", file=out)
        rows = []
        for s in result["sizes"]:
            k = s[kind]
            rows.append(
                [
                    f"10^{len(str(s['size'])) - 1}",
                    k["tiles"]["avg"],
                    k["tiles"]["max"],
                    k["fetch_calls"]["avg"],
                    k["proof_hashes"]["avg"],
                    k["verify"]["per_second"],
                    k["verify"]["node_hashes"],
                    k["generate"]["per_second"],
                    k["generate"]["node_hashes"],
                ]
            )
        table(
            out,
            [
                "size",
                "tiles avg",
                "tiles max",
                "fetches avg",
                "proof len",
                "verify/s",
                "verify cost (hashes)",
                "generate/s",
                "generate cost (hashes)",
            ],
            rows,
        )
