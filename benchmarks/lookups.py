"""Lookup-index costs at tree sizes 10^3 … 10^9 for the default merge policy (docs/index.md).

No index is built for the large sizes: the runs the policy leaves after each batch of
:data:`BATCH` entries are simulated by index arithmetic alone (as ``proofs`` fabricates tiles),
with every merge applied as soon as the policy plans it (a merger that keeps up). Record sizes
follow docs/index.md with :data:`KEYS_PER_ENTRY` keys per entry, each key new (one index per
record: the most bytes, so the most shards). The costs that need real bytes are measured on one
real run whose shard is full (about 256 KiB), built with the index code itself.

Figures per tree size:

- objects per cold lookup: checkpoint + manifest + one shard per run, at that size and the worst
  at any size up to it;
- merge write amplification: how many times an entry's records are rewritten by merges on average
  (entries rewritten / entries), and the shard objects merges write per 1,000 entries (batches
  write their own run besides: one shard per batch at these record sizes);
- verification per lookup, in raw SHA-256 node hashes measured in the same run: the lookup proofs
  (one per run, verified by ``LookupProof.verify``), and the shards the client reads and verifies
  whole (``Shard.parse``, one per run), both from the real full shard.

Also the sequencer's side, per entry: a batch's records and run (``batch_records`` + ``build_run``)
and a merge of two batch-sized runs (``merge_records`` + ``build_run`` of the merged run), in node
hashes; and the merge CPU an entry has cost by each size (its rewrites times that per-entry
merge cost: an estimate, as large merges are measured by their small model).
"""

from __future__ import annotations

import functools
import random
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from benchmarks import baseline
from benchmarks.table import table
from stelae.tiles.errors import VerificationError
from stelae.tiles.indexkeys import KeyKind
from stelae.tiles.indexproof import LookupProof
from stelae.tiles.indexrun import (
    SHARD_TARGET,
    BatchEntryKeys,
    BuiltRun,
    Shard,
    batch_records,
    bits_for,
    build_run,
    merge_records,
    shard_of,
)
from stelae.tiles.mergepolicy import MergePolicy

SIZES = tuple(10**k for k in range(3, 10))
#: ``--quick`` simulates 10^4 batches, not 10^6 (a smoke run, not data).
QUICK_SIZES = SIZES[:5]
BATCH = 1000
#: The leaf key and about three more (an artifact digest, a signer key, an identity).
KEYS_PER_ENTRY = 4
POLICY = MergePolicy()
_BASELINE_HASHES = 200_000
_QUICK_BASELINE_HASHES = 10_000
#: Entries of the real run: as many as fill one shard of the default target.
_FULL_SHARD_ENTRIES = 3000
_QUICK_SHARD_ENTRIES = 300


def mean_uvarint_bytes(n: int) -> float:
    """The mean length of ``uvarint(d)`` for ``d`` uniform in ``[0, n)``."""
    total, length, low = 0, 1, 0
    while low < n:
        high = min(n, 1 << (7 * length))
        total += (high - low) * length
        low, length = high, length + 1
    return total / n


def record_bytes(entries: int, batch: int = BATCH) -> float:
    """The record bytes of a run of ``entries`` entries (docs/index.md, "Records"): per key, the
    16-byte key, flags, ``n = 1`` and one delta from the run's start; per entry one batch offset
    on its leaf record."""
    per_key = 16 + 1 + 1 + mean_uvarint_bytes(entries)
    return entries * (KEYS_PER_ENTRY * per_key + mean_uvarint_bytes(batch))


def run_shards(entries: int) -> int:
    """Shard objects of a run of ``entries`` entries at the default shard target."""
    return 1 << bits_for(round(record_bytes(entries)), SHARD_TARGET)


def simulate(
    sizes: tuple[int, ...], batch: int = BATCH, policy: MergePolicy = POLICY
) -> dict[int, dict[str, Any]]:
    """The runs and merge costs at each size in ``sizes``, batch after batch.

    The loop applies :meth:`MergePolicy.plan`'s rule (the newest adjacent pair whose older class
    is not above the newer's) on cached classes, so that 10^6 batches take seconds;
    ``tests/e2e/test_benchmarks.py`` checks it against ``plan`` itself.
    """
    runs: list[tuple[int, int, int]] = []  # (a, b, class)
    out: dict[int, dict[str, Any]] = {}
    rewritten = merge_shards = merges = most = n = 0
    # Run lengths are multiples of the batch and repeat from merge to merge: compute each once.
    size_class = functools.cache(policy.size_class)
    shards = functools.cache(run_shards)
    for target in sorted(sizes):
        while n < target:
            step = min(batch, target - n)
            runs.append((n, n + step, size_class(step)))
            n += step
            while True:
                i = len(runs) - 2
                while i >= 0 and runs[i][2] > runs[i + 1][2]:
                    i -= 1
                if i < 0:
                    break
                a, b = runs[i][0], runs[i + 1][1]
                runs[i : i + 2] = [(a, b, size_class(b - a))]
                rewritten += b - a
                merge_shards += shards(b - a)
                merges += 1
            most = max(most, len(runs))
        out[target] = {
            "runs": [(a, b) for a, b, _ in runs],
            "max_runs": most,
            "merges": merges,
            "rewritten_entries": rewritten,
            "merge_shards": merge_shards,
            "batches": -(-n // batch),
        }
    return out


# --- real bytes -----------------------------------------------------------------------------


def _entries(n: int, rng: random.Random) -> list[BatchEntryKeys]:
    keys = [rng.randbytes(32).hex() for _ in range(64)]
    return [
        BatchEntryKeys(
            rng.randbytes(32),
            (
                (KeyKind.DIGEST, "sha256:" + rng.randbytes(32).hex()),
                (KeyKind.KEY, rng.choice(keys)),
                (KeyKind.IDENTITY, f"user{rng.randrange(1 << 20)}@example.com"),
            ),
        )
        for _ in range(n)
    ]


def real_run(entries: int, seed: int = 7) -> tuple[BuiltRun, list[Shard]]:
    """A run of ``entries`` entries in one batch, built and parsed with the index code."""
    rng = random.Random(seed)
    built = build_run(0, entries, batch_records(0, _entries(entries, rng)))
    return built, [Shard.parse(d, built.ref, s) for s, d in enumerate(built.shards)]


def _probes(shards: list[Shard], count: int, rng: random.Random) -> list[bytes]:
    """Half absent keys (two-record proofs, the usual answer of a run), half present ones."""
    members = [r.key for sh in shards for r in sh.records]
    out = [rng.randbytes(16) for _ in range(count // 2)]
    return out + [rng.choice(members) for _ in range(count - len(out))]


def _cost(
    work: Callable[[], None],
    ops: int,
    repeat: int,
    hashes: int,
    measure: Callable[[], float] | None = None,
) -> dict[str, float]:
    """Per-op seconds and node hashes of ``work`` (or of what ``measure`` times and returns)."""
    result = baseline.paired(
        measure or (lambda: baseline.timed(work)),
        lambda: baseline.node_hashes(hashes),
        repeat=repeat,
    )
    per_op = result.seconds / ops
    return {
        "microseconds": per_op * 1e6,
        "node_hashes": per_op / (result.baseline_seconds / hashes),
    }


def _must_fail(proof: LookupProof, key: bytes, built: BuiltRun) -> None:
    h = proof.shard_path[0] if proof.shard_path else proof.records[0].path[0]
    bad = bytes([h[0] ^ 1]) + h[1:]
    if proof.shard_path:
        corrupted = LookupProof(proof.count, (bad, *proof.shard_path[1:]), proof.records)
    else:
        rp = proof.records[0]
        first = type(rp)(rp.position, rp.record, (bad, *rp.path[1:]))
        corrupted = LookupProof(proof.count, proof.shard_path, (first, *proof.records[1:]))
    try:
        corrupted.verify(key, built.ref)
    except VerificationError:
        return
    raise AssertionError("a corrupted lookup proof verified")


def measure_real(quick: bool, repeat: int, hashes: int) -> dict[str, Any]:
    entries = _QUICK_SHARD_ENTRIES if quick else _FULL_SHARD_ENTRIES
    built, shards = real_run(entries)
    rng = random.Random(entries)
    probes = _probes(shards, 64 if quick else 512, rng)
    bits = built.ref.bits
    proofs = [(k, shards[shard_of(k, bits)].prove(k)) for k in probes]
    _must_fail(proofs[0][1], proofs[0][0], built)
    largest = max(range(len(shards)), key=lambda s: len(built.shards[s]))

    def verify() -> None:
        for k, p in proofs:
            p.verify(k, built.ref)

    def parse() -> None:
        Shard.parse(built.shards[largest], built.ref, largest)

    # The sequencer's side: one batch of BATCH entries, and a merge of two runs of that size,
    # each built first as its own run (as the batches wrote them), which is what a merge starts
    # from: the older run's records keep their bytes (same start), the newer's are re-encoded.
    batch = _entries(min(BATCH, entries), rng)
    size = len(batch)
    older = batch_records(0, batch)
    build_run(0, size, older)
    newer_entries = _entries(size, rng)

    def build() -> None:
        build_run(0, size, batch_records(0, batch))

    def merge() -> float:
        newer = batch_records(size, newer_entries)
        build_run(size, 2 * size, newer)
        start = time.perf_counter()
        build_run(0, 2 * size, merge_records(older, newer))
        return time.perf_counter() - start

    return {
        "entries": entries,
        "records": sum(len(sh.records) for sh in shards),
        "bits": bits,
        "shard_bytes": len(built.shards[largest]),
        "shard_records": len(shards[largest].records),
        "proof_hashes": sum(
            len(p.shard_path) + sum(len(r.path) + 1 for r in p.records) for _, p in proofs
        )
        / len(proofs),
        "proof_bytes": sum(len(str(p.to_json())) for _, p in proofs) / len(proofs),
        "verify_proof": _cost(verify, len(proofs), repeat, hashes),
        "verify_shard": _cost(parse, 1, repeat, hashes),
        "build_per_entry": _cost(build, len(batch), repeat, hashes),
        "merge_per_entry": _cost(lambda: None, 2 * size, repeat, hashes, merge),
    }


def run(quick: bool) -> dict[str, Any]:
    repeat = 1 if quick else 3
    hashes = _QUICK_BASELINE_HASHES if quick else _BASELINE_HASHES
    per_hash = min(baseline.node_hashes(hashes) for _ in range(repeat)) / hashes
    real = measure_real(quick, repeat, hashes)
    chosen = QUICK_SIZES if quick else SIZES
    sim = simulate(chosen)
    sizes = []
    for size in chosen:
        s = sim[size]
        runs = len(s["runs"])
        largest = max(b - a for a, b in s["runs"])
        sizes.append(
            {
                "size": size,
                "runs": runs,
                "objects_per_lookup": 2 + runs,
                "max_objects_per_lookup": 2 + s["max_runs"],
                "largest_run": largest,
                "largest_run_shards": run_shards(largest),
                "merges": s["merges"],
                "rewrites_per_entry": s["rewritten_entries"] / size,
                "merge_shards_per_1000": s["merge_shards"] * 1000 / size,
                "batch_shards_per_1000": s["batches"] * 1000 / size,
                # Every shard of the real run is full; smaller runs' proofs cost no more.
                "verify_proofs_node_hashes": runs * real["verify_proof"]["node_hashes"],
                "verify_shards_node_hashes": runs * real["verify_shard"]["node_hashes"],
                # Merge CPU an entry costs over its life so far: each rewrite at the measured
                # per-entry cost of a two-run merge.
                "merge_cpu_node_hashes": s["rewritten_entries"]
                / size
                * real["merge_per_entry"]["node_hashes"],
            }
        )
    return {
        "name": "lookups",
        "quick": quick,
        "batch": BATCH,
        "keys_per_entry": KEYS_PER_ENTRY,
        "policy": {"fanout": POLICY.fanout, "unit": POLICY.unit},
        "node_hashes_per_second": 1 / per_hash,
        "real_run": real,
        "sizes": sizes,
    }


def print_result(result: dict[str, Any], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    real = result["real_run"]
    print(
        f"lookups — batches of {result['batch']:,} entries, {result['keys_per_entry']} keys per "
        f"entry, merge policy T={result['policy']['fanout']} U={result['policy']['unit']}; "
        f"baseline {result['node_hashes_per_second']:,.0f} raw node hashes/s",
        file=out,
    )
    rows = [
        [
            f"10^{len(str(s['size'])) - 1}",
            s["runs"],
            s["objects_per_lookup"],
            s["max_objects_per_lookup"],
            s["rewrites_per_entry"],
            s["merge_shards_per_1000"],
            s["batch_shards_per_1000"],
            s["merge_cpu_node_hashes"],
            s["largest_run_shards"],
            s["verify_proofs_node_hashes"],
            s["verify_shards_node_hashes"],
        ]
        for s in result["sizes"]
    ]
    table(
        out,
        [
            "size",
            "runs",
            "objects/lookup",
            "worst so far",
            "rewrites/entry",
            "merge shards/1000",
            "batch shards/1000",
            "merge CPU/entry (hashes)",
            "largest run shards",
            "verify proofs (hashes)",
            "verify shards (hashes)",
        ],
        rows,
    )
    vp, vs = real["verify_proof"], real["verify_shard"]
    bp, mp = real["build_per_entry"], real["merge_per_entry"]
    print(
        f"\nreal run: {real['entries']:,} entries, {real['records']:,} records, bits "
        f"{real['bits']}; largest shard {real['shard_bytes']:,} bytes, "
        f"{real['shard_records']:,} records\n"
        f"one lookup proof: {real['proof_hashes']:.1f} hashes, ~{real['proof_bytes']:,.0f} bytes "
        f"of JSON, verified in {vp['microseconds']:.1f} µs = {vp['node_hashes']:.1f} node hashes\n"
        f"one shard verified whole: {vs['microseconds'] / 1000:.1f} ms = "
        f"{vs['node_hashes']:,.0f} node hashes\n"
        f"sequencer per entry: batch records + run {bp['microseconds']:.1f} µs = "
        f"{bp['node_hashes']:.1f} node hashes; merge + run {mp['microseconds']:.1f} µs = "
        f"{mp['node_hashes']:.1f} node hashes",
        file=out,
    )
