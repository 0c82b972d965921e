"""Bytes a log stores per entry at 1 entry/s (one entry per batch), without and with garbage
collection of partial tiles and bundles (docs/durability.md, "Garbage collection") and of
replaced lookup-index runs (docs/index.md, "Garbage collection").

One entry per batch is the worst case for storage: every batch writes a partial level-0 tile and
a partial bundle one entry wider than the last, which tlog-tiles lets a log delete once the full
tile exists (https://c2sp.org/tlog-tiles). The run integrates N single-entry batches into a
``MemoryStore`` with the real sequencer, the lookup index on and ``Sequencer.merge()`` after every
batch (as the AWS sequencer does), the clock advanced one second per batch, and with garbage
collection ``Sequencer.collect()`` after every batch (grace period 60 s, the default). It then
sums the bytes of every object left, by class. Bodies: real Rekor v1 ``rekord`` entries (~570 B)
and the benchmarks' 1 KiB entries.

Superseded index runs (runs no longer listed by the newest manifest, because a merge replaced
them) are reported apart: without garbage collection they are every run ever replaced; with it,
only those replaced within the last grace period (and the newest merge, not listed yet).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TextIO

from benchmarks import workload
from benchmarks.table import table
from stelae.sequencer.engine import Sequencer
from stelae.sequencer.pending import PendingEntry
from stelae.tiles.gc import DEFAULT_GRACE
from stelae.tiles.manifest import Manifest
from stelae.tiles.paths import manifest_path
from tests.support.memory import MemoryStore

ENTRIES = 4096
QUICK_ENTRIES = 400
"""Past tile 0's grace period (full at 256, due 60 batches later): a smoke run collects."""
TARGET_BYTES = 2048
"""The target: ≤ 2 KB stored per entry at 1 entry/s after garbage collection."""

CLASSES = (
    "partial tiles",
    "partial bundles",
    "full tiles",
    "full bundles",
    "batch records",
    "checkpoint history",
    "index manifests",
    "index runs (listed)",
    "index runs (superseded)",
    "other",
)


class _Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def _class_of(key: str, listed: set[str]) -> str:
    if key.startswith("tile/"):
        kind = "bundles" if key.startswith("tile/entries/") else "tiles"
        return f"{'partial' if '.p/' in key else 'full'} {kind}"
    if key.startswith("index/run/"):
        run = key.rsplit("/", 1)[0].removeprefix("index/run/")
        return "index runs (listed)" if run in listed else "index runs (superseded)"
    return {
        "batch": "batch records",
        "checkpoints": "checkpoint history",
        "index": "index manifests",
    }.get(key.split("/", 1)[0], "other")


def _one(make: Callable[[int], PendingEntry], count: int, grace: float | None) -> dict[str, Any]:
    store, clock = MemoryStore(), _Clock()
    # Serial writes: a memory store gains nothing from the pool.
    config = replace(workload.ALL_INDEXES, gc_grace=grace, parallel_writes=1)
    seq = Sequencer(store, workload.SIGNER, config, clock=clock)
    try:
        seq.published()
        for i in range(count):
            clock.t += 1  # one batch a second
            seq.integrate([make(i)])
            seq.merge()
            seq.collect()
    finally:
        seq.close()
    manifest = Manifest.open(
        store.get(manifest_path(count)), [workload.SIGNER.verifier], workload.ORIGIN
    )
    listed = {f"{r.a}-{r.b}" for r in manifest.runs}
    sizes: Counter[str] = Counter()
    objects: Counter[str] = Counter()
    for key in store.keys(""):
        cls = _class_of(key, listed)
        sizes[cls] += len(store.object(key).data)
        objects[cls] += 1
    total = sum(sizes.values())
    return {
        "entries": count,
        "grace": grace,
        "bytes_per_entry": {c: sizes[c] / count for c in CLASSES},
        "objects": {c: objects[c] for c in CLASSES},
        "total_per_entry": total / count,
        "without_superseded_runs_per_entry": (total - sizes["index runs (superseded)"]) / count,
        "deletes": store.counters["DELETE"],
    }


def run(quick: bool) -> dict[str, Any]:
    count = QUICK_ENTRIES if quick else ENTRIES
    bodies: dict[str, Callable[[int], PendingEntry]] = {
        "rekord (~570 B)": workload.rekord_entry,
        "1 KiB": workload.entry,
    }
    if quick:  # a smoke run: one body
        bodies = dict(list(bodies.items())[:1])
    runs = []
    for label, make in bodies.items():
        for grace in (None, DEFAULT_GRACE):
            result = _one(make, count, grace)
            result["body"] = label
            runs.append(result)
    after = [r for r in runs if r["grace"] is not None]
    return {
        "name": "storage",
        "quick": quick,
        "runs": runs,
        "target": {
            "bytes_per_entry": TARGET_BYTES,
            "measured": {r["body"]: r["total_per_entry"] for r in after},
            "met": {r["body"]: r["total_per_entry"] <= TARGET_BYTES for r in after},
        },
    }


def print_result(result: dict[str, Any], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    runs = result["runs"]
    print(
        f"storage — bytes stored per entry after {runs[0]['entries']:,} single-entry batches "
        "(1 entry/s, lookup index on, merges after every batch), without and with garbage "
        "collection of partial tiles and bundles and of replaced index runs",
        file=out,
    )
    header = [
        "class",
        *[f"{r['body']} {'GC ' + format(r['grace'], 'g') + ' s' if r['grace'] else 'no GC'}"
          for r in runs],
    ]  # fmt: skip
    rows: list[list[object]] = [[c, *[r["bytes_per_entry"][c] for r in runs]] for c in CLASSES]
    rows.append(["= total", *[r["total_per_entry"] for r in runs]])
    rows.append(
        ["  without superseded runs", *[r["without_superseded_runs_per_entry"] for r in runs]]
    )
    rows.append(["objects left", *[sum(r["objects"].values()) for r in runs]])
    rows.append(["DELETE requests", *[r["deletes"] for r in runs]])
    table(out, header, rows)
    target = result["target"]
    for body, measured in target["measured"].items():
        verdict = "met" if target["met"][body] else "NOT met"
        print(
            f"target: ≤ {target['bytes_per_entry']:,} bytes per entry after GC ({body}) — "
            f"measured {measured:,.0f}: {verdict}",
            file=out,
        )
