"""Object writes per 1,000 entries, by class of object, at batch sizes 256, 1024 and 4096.

Integrates into a :class:`~tests.support.memory.MemoryStore` with the lookup index on (every
key kind: leaf hash, digest, signer key, identity; docs/index.md) and counts each write that
reaches the store through its ``after_write`` hook, classified by key: tiles, bundles, the
checkpoint and its history object, the batch record, the batch's own index run, the runs merges
write, and the signed index manifest. Merges run when the benchmark calls ``Sequencer.merge``
after every batch (:data:`benchmarks.workload.ALL_INDEXES` has no background merger), so every
write they make is counted and attributed to them. The store's request counters are reported
beside them: a PUT that found identical bytes already there is a request (billed on S3) but not
a write.

Enough entries are integrated that the default merge policy (``stelae.tiles.mergepolicy``:
classes of 10,240 × 10^k entries) reaches class 1 or 2, so the figures include the merges a
long-running log keeps doing, not just the cheap first ones.

Targets (all objects, merges included): ≤ 40 per 1,000 entries at batch 256 and ≤ 12 at batch
4096. The tlog-tiles part has a floor: every 256 entries need one full entry bundle and one full
level-0 tile, so no layout-conforming log writes fewer than 2000/256 = 7.8 such objects per 1,000
entries. The benchmark also computes the exact floor for the batches it ran (each changed tile and
bundle written once, plus the checkpoint and its history object per batch) and checks the
sequencer sits on it.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any, TextIO

from benchmarks import workload
from benchmarks.table import table
from stelae.tiles.layout import TILE_HEIGHT, TILE_WIDTH
from stelae.tiles.paths import ObjectClass, object_class_for_key
from tests.support.memory import MemoryStore, WriteEvent

BATCH_SIZES = (256, 1024, 4096)
KINDS = (
    "tiles",
    "bundles",
    "checkpoint",
    "history",
    "batch record",
    "index runs (batch)",
    "index runs (merges)",
    "manifests",
)
LOG_KINDS = ("tiles", "bundles", "checkpoint", "history")
TARGETS_PER_1000 = {256: 40.0, 4096: 12.0}
LAYOUT_FLOOR_PER_1000 = 2 * 1000 / TILE_WIDTH

# 65,536 entries: at batch 256 the runs reach class 1 (10,240 entries) six times; at 4096, too,
# with the class-1 run itself merged (the policy merges a class-0 run into it once they tie).
_ENTRIES = {256: 65536, 1024: 65536, 4096: 131072}
_QUICK_ENTRIES = {256: 1024, 1024: 2048, 4096: 8192}


_ROWS = {
    ObjectClass.BUNDLE: "bundles",
    ObjectClass.TILE: "tiles",
    ObjectClass.CHECKPOINT: "checkpoint",
    ObjectClass.CHECKPOINT_HISTORY: "history",
    ObjectClass.BATCH: "batch record",
    ObjectClass.INDEX_MANIFEST: "manifests",
}


def kind_of(key: str, *, merging: bool = False) -> str:
    """Which row of the table a write to ``key`` counts in (``merging``: made by a merge)."""
    cls = object_class_for_key(key)
    if cls is ObjectClass.INDEX_RUN:
        return "index runs (merges)" if merging else "index runs (batch)"
    if cls in _ROWS:
        return _ROWS[cls]
    raise AssertionError(f"a write to {key!r} fits no kind")


def floor_writes(start: int, count: int) -> int:
    """The fewest tile, bundle and checkpoint writes that publish leaves [start, start+count).

    Every bundle and tile that gains a hash must be written (once), and so must the checkpoint
    and its history object.
    """
    end = start + count
    writes = 2  # checkpoint and checkpoints/<size>
    writes += (end - 1) // TILE_WIDTH - start // TILE_WIDTH + 1  # bundles
    level = 0
    while True:
        old, new = start >> (TILE_HEIGHT * level), end >> (TILE_HEIGHT * level)
        if new == 0:
            break
        if new > old:  # hashes [old, new) are added at this level
            writes += (new - 1) // TILE_WIDTH - old // TILE_WIDTH + 1
        level += 1
    return writes


def _one(batch: int, count: int) -> dict[str, Any]:
    writes: Counter[str] = Counter()
    written_bytes: Counter[str] = Counter()
    merging = False

    def count_write(event: WriteEvent) -> None:
        kind = kind_of(event.key, merging=merging)
        if merging and kind != "index runs (merges)":
            raise AssertionError(f"a merge wrote {event.key!r}")
        writes[kind] += 1
        written_bytes[kind] += len(event.data)

    store = MemoryStore(after_write=count_write)
    floor = merges = 0
    with workload.sequencer(store, workload.ALL_INDEXES) as seq:
        for k in range(0, count, batch):
            n = min(batch, count - k)
            seq.integrate(workload.entries(k, n))
            floor += floor_writes(k, n)
            merging = True
            merges += seq.merge()
            merging = False
        runs = seq.published()  # nothing new: the final state, for the run count below
    manifest = store.keys(f"index/manifest/{runs.size}")
    if manifest != [f"index/manifest/{count}"]:
        raise AssertionError(f"no manifest for the final size {count}: {manifest}")
    requests = store.counters.as_dict()
    per_1000 = {kind: writes[kind] * 1000 / count for kind in KINDS}
    log_objects = sum(writes[k] for k in LOG_KINDS)
    return {
        "batch": batch,
        "entries": count,
        "batches": -(-count // batch),
        "merges": merges,
        "writes": {kind: writes[kind] for kind in KINDS},
        "bytes": {kind: written_bytes[kind] for kind in KINDS},
        "per_1000": per_1000,
        "log_objects_per_1000": log_objects * 1000 / count,
        "floor_per_1000": floor * 1000 / count,
        "total_per_1000": sum(writes.values()) * 1000 / count,
        "requests_per_1000": {k: v * 1000 / count for k, v in requests.items()},
    }


def run(quick: bool) -> dict[str, Any]:
    sizes = _QUICK_ENTRIES if quick else _ENTRIES
    rows = [_one(batch, sizes[batch]) for batch in BATCH_SIZES]
    by_batch = {r["batch"]: r for r in rows}
    targets = [
        {
            "batch": batch,
            "per_1000": limit,
            "measured": by_batch[batch]["total_per_1000"],
            "met": by_batch[batch]["total_per_1000"] <= limit,
        }
        for batch, limit in TARGETS_PER_1000.items()
    ]
    return {
        "name": "writes",
        "quick": quick,
        "runs": rows,
        "layout_floor_per_1000": LAYOUT_FLOOR_PER_1000,
        "targets": targets,
    }


def print_result(result: dict[str, Any], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    print(
        "writes — object writes per 1,000 entries (lookup index on, merges after every batch "
        f"counted; {workload.SIGNER_KEYS} signer keys, {workload.IDENTITIES} identities "
        "round-robin)",
        file=out,
    )
    runs = result["runs"]
    header = ["kind", *[f"batch {r['batch']}" for r in runs]]
    rows: list[list[object]] = [[kind, *[r["per_1000"][kind] for r in runs]] for kind in KINDS]
    rows.append(["= all writes", *[r["total_per_1000"] for r in runs]])
    rows.append(["  tiles+bundles+checkpoint+history", *[r["log_objects_per_1000"] for r in runs]])
    rows.append(["  floor for these batches", *[r["floor_per_1000"] for r in runs]])
    for kind in ("PUT", "GET"):
        rows.append([f"{kind} requests", *[r["requests_per_1000"][kind] for r in runs]])
    rows.append(["entries run", *[r["entries"] for r in runs]])
    rows.append(["merges", *[r["merges"] for r in runs]])
    table(out, header, rows)
    print("\nbytes written per entry, by kind", file=out)
    table(
        out,
        header,
        [[kind, *[r["bytes"][kind] / r["entries"] for r in runs]] for kind in KINDS],
    )
    for t in result["targets"]:
        print(
            f"target: all writes ≤ {t['per_1000']:g} per 1,000 at batch {t['batch']} — measured "
            f"{t['measured']:.2f}: {'met' if t['met'] else 'NOT met'}",
            file=out,
        )
    print(
        f"(the tlog-tiles floor alone is {result['layout_floor_per_1000']:.2f} per 1,000: a full "
        "bundle and a full level-0 tile per 256 entries)",
        file=out,
    )
