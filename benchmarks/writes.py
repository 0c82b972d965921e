"""Object writes per 1,000 entries, by kind of object, at batch sizes 1, 16, 256 and 4096.

Integrates into a :class:`~stelae.sequencer.memory.MemoryStore` with every lookup index on and
counts each write that reaches the store through its ``after_write`` hook, classified by key. The
store's request counters are reported beside them: a PUT that found identical bytes already there
is a request (billed on S3) but not a write.

The original goal was "tiles + bundles + checkpoint ≤ 4 per 1,000 entries at batch 4096". tlog-tiles
puts a floor under that: every 256 entries need one full entry bundle and one full level-0 tile,
so no layout-conforming log writes fewer than 2000/256 = 7.8 such objects per 1,000 entries. The
benchmark also computes the exact floor for the batches it ran (each changed tile and bundle
written once, plus the checkpoint and its history object per batch) and reports against both.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any, TextIO

from benchmarks import workload
from benchmarks.table import table
from stelae.sequencer.memory import MemoryStore, WriteEvent
from stelae.tiles.layout import TILE_HEIGHT, TILE_WIDTH

BATCH_SIZES = (1, 16, 256, 4096)
KINDS = (
    "tiles",
    "bundles",
    "checkpoint",
    "history",
    "intent",
    "leaf_index",
    "digest_index",
    "key_index",
    "identity_index",
)
TARGET_PER_1000 = 4.0
LAYOUT_FLOOR_PER_1000 = 2 * 1000 / TILE_WIDTH

_ENTRIES = {1: 4096, 16: 16384, 256: 65536, 4096: 65536}
_QUICK_ENTRIES = {1: 64, 16: 256, 256: 512, 4096: 4096}


def kind_of(key: str) -> str:
    """Which row of the table a write to ``key`` counts in."""
    if key.startswith("tile/entries/"):
        return "bundles"
    if key.startswith("tile/"):
        return "tiles"
    if key == "checkpoint":
        return "checkpoint"
    if key.startswith("checkpoints/"):
        return "history"
    if key.startswith(".state/"):
        return "intent"
    if key.startswith("index/leaf/"):
        return "leaf_index"
    if key.startswith(("index/sha256/", "index/sha384/", "index/sha512/")):
        return "digest_index"
    if key.startswith("index/key/"):
        return "key_index"
    if key.startswith("index/identity/"):
        return "identity_index"
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

    def count_write(event: WriteEvent) -> None:
        kind = kind_of(event.key)
        writes[kind] += 1
        written_bytes[kind] += len(event.data)

    store = MemoryStore(after_write=count_write)
    floor = 0
    with workload.sequencer(store, workload.ALL_INDEXES) as seq:
        for k in range(0, count, batch):
            n = min(batch, count - k)
            seq.integrate(workload.entries(k, n))
            floor += floor_writes(k, n)
    requests = store.counters.as_dict()
    per_1000 = {kind: writes[kind] * 1000 / count for kind in KINDS}
    log_objects = writes["tiles"] + writes["bundles"] + writes["checkpoint"] + writes["history"]
    return {
        "batch": batch,
        "entries": count,
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
    at_4096 = rows[-1]["log_objects_per_1000"]
    return {
        "name": "writes",
        "quick": quick,
        "runs": rows,
        "target": {
            "batch": 4096,
            "per_1000": TARGET_PER_1000,
            "layout_floor_per_1000": LAYOUT_FLOOR_PER_1000,
            "measured": at_4096,
            "met": at_4096 <= TARGET_PER_1000,
        },
    }


def print_result(result: dict[str, Any], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    print(
        "writes — object writes per 1,000 entries (every lookup index on; "
        f"{workload.SIGNER_KEYS} signer keys, {workload.IDENTITIES} identities round-robin)",
        file=out,
    )
    runs = result["runs"]
    header = ["kind", *[f"batch {r['batch']}" for r in runs]]
    rows: list[list[object]] = [[kind, *[r["per_1000"][kind] for r in runs]] for kind in KINDS]
    rows.append(["= tiles+bundles+checkpoint+history", *[r["log_objects_per_1000"] for r in runs]])
    rows.append(["  floor for these batches", *[r["floor_per_1000"] for r in runs]])
    rows.append(["= all writes", *[r["total_per_1000"] for r in runs]])
    for kind in ("PUT", "GET"):
        rows.append([f"{kind} requests", *[r["requests_per_1000"][kind] for r in runs]])
    rows.append(["entries run", *[r["entries"] for r in runs]])
    table(out, header, rows)
    print("\nbytes written per entry, by kind", file=out)
    table(
        out,
        header,
        [[kind, *[r["bytes"][kind] / r["entries"] for r in runs]] for kind in KINDS],
    )
    t = result["target"]
    print(
        f"target: tiles+bundles+checkpoint ≤ {t['per_1000']} per 1,000 at batch {t['batch']} — "
        f"measured {t['measured']:.2f}: {'met' if t['met'] else 'NOT met'}; the tlog-tiles floor "
        f"is {t['layout_floor_per_1000']:.2f} (a full bundle and a full level-0 tile per 256 "
        "entries), so the target cannot be met by any conforming layout",
        file=out,
    )
