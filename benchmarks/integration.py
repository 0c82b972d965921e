"""Integration throughput on the local backend, as a fraction of hashing the tree alone.

Entries (1 KiB, :mod:`benchmarks.workload`) are built before the clock starts, then integrated in
batches of 1, 16, 256 and 4096 into a fresh :class:`~stelae.sequencer.local.LocalStore` in a
temporary directory (``TMPDIR`` chooses the disk; every write is fsynced). Two configurations:
the bare log (``lookup_index=False``: tiles, bundles, batch record, checkpoint) and the lookup
index (every key kind; one run and one signed manifest per batch, docs/index.md). With the index,
``Sequencer.merge`` runs after every batch inside the timed loop, so the merges a background
thread would otherwise do are paid for in the figure.

The baseline, measured in alternation with the runs, is raw SHA-256 leaf hashing plus RFC 6962
node hashing of the same entries: what building the tree costs with nothing else. ``ratio`` is
integration throughput over baseline throughput. The targets: ≥ 0.4 at batch 4096 without
lookup indexes, and with the index at least half the throughput without it at batch 4096
(:func:`index_ratio`: the two configurations measured in alternation, best of two each, so a
burst of load from a neighbour hits both).

For context, ``ceiling`` is the ratio a sequencer would reach if, besides hashing, it did nothing
but write and fsync each entry bundle it touches once (:func:`benchmarks.baseline.durable_bundles`,
on the same disk): the best any durable sequencer could do there.

The ``files`` rows are the storage floor measured honestly, without the sequencer: the same
entries hashed and published by plain ``open``/``write``/``fsync``/``rename`` calls as the
objects a tlog-tiles log cannot avoid writing per batch — every bundle and hash tile that gains
an entry, a checkpoint and a history object — with each touched directory fsynced once per batch
(:func:`benchmarks.baseline.plain_log`). Their ``ratio`` is what a sequencer with no overhead of
its own (no batch record, no signing, no store abstraction) would reach on this disk; the gap
between it and the ``none`` rows is our code, the gap between it and 1.0 is the disk.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

from benchmarks import baseline, workload
from benchmarks.table import table
from stelae.sequencer.engine import SequencerConfig
from stelae.sequencer.local import LocalStore
from stelae.sequencer.pending import PendingEntry

BATCH_SIZES = (1, 16, 256, 4096)
TARGET = {"config": "none", "batch": 4096, "ratio": 0.4}
INDEX_TARGET = {"batch": 4096, "ratio": 0.5}

# Entries per run, by batch size: enough batches to be stable, bounded for the slow small batches.
_ENTRIES = {
    "none": {1: 512, 16: 4096, 256: 16384, 4096: 32768},
    "all": {1: 128, 16: 1024, 256: 8192, 4096: 32768},
}
_QUICK_ENTRIES = {
    "none": {1: 4, 16: 32, 256: 512, 4096: 4096},
    "all": {1: 2, 16: 16, 256: 64, 4096: 256},
}
CONFIGS = {"none": workload.NO_INDEXES, "all": workload.ALL_INDEXES}
FLOOR = "files"
"""The config name of the rows written by plain file calls, without the sequencer."""


def integrate(
    config: SequencerConfig, entries: list[PendingEntry], batch: int, root: Path
) -> float:
    """Seconds to integrate ``entries`` in batches of ``batch`` into a new log under ``root``,
    with the index merges the policy asks for after each batch (when there is an index)."""
    store = LocalStore(root, group_commit=True)
    with workload.sequencer(store, config) as seq:
        start = time.perf_counter()
        for k in range(0, len(entries), batch):
            seq.integrate(entries[k : k + batch])
            if config.lookup_index:
                seq.merge()
        elapsed = time.perf_counter() - start
        final = seq.published()
    if final.size != len(entries):
        raise AssertionError(f"integrated {final.size} entries, want {len(entries)}")
    return elapsed


def index_ratio(count: int, repeat: int = 2) -> dict[str, Any]:
    """Entries/s with the index over entries/s without it, at :data:`INDEX_TARGET`'s batch,
    the two measured in alternation (best of ``repeat`` each)."""
    entries = workload.entries(0, count)
    batch = INDEX_TARGET["batch"]

    def measure(config: SequencerConfig) -> float:
        with tempfile.TemporaryDirectory(prefix="stelae-bench-") as d:
            return integrate(config, entries, int(batch), Path(d) / "log")

    result = baseline.paired(
        lambda: measure(workload.ALL_INDEXES), lambda: measure(workload.NO_INDEXES), repeat=repeat
    )
    return {
        **INDEX_TARGET,
        "entries": count,
        "indexed_entries_per_second": count / result.seconds,
        "bare_entries_per_second": count / result.baseline_seconds,
        "measured": result.baseline_seconds / result.seconds,
        "met": result.baseline_seconds / result.seconds >= INDEX_TARGET["ratio"],
    }


def _one(config_name: str, batch: int, count: int, repeat: int) -> dict[str, Any]:
    entries = workload.entries(0, count)
    bodies = [e.body for e in entries]
    runs = 0

    def measure() -> float:
        nonlocal runs
        runs += 1
        with tempfile.TemporaryDirectory(prefix="stelae-bench-") as d:
            return integrate(CONFIGS[config_name], entries, batch, Path(d) / "log")

    result = baseline.paired(measure, lambda: baseline.tree_hashing(bodies), repeat=repeat)
    io = float("inf")
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="stelae-bench-io-") as d:
            io = min(io, baseline.durable_bundles(bodies, batch, d))
    return {
        "config": config_name,
        "batch": batch,
        "entries": count,
        "seconds": result.seconds,
        "entries_per_second": count / result.seconds,
        "baseline_entries_per_second": count / result.baseline_seconds,
        "ratio": result.ratio,
        "bundle_io_seconds": io,
        "ceiling": result.baseline_seconds / (result.baseline_seconds + io),
    }


def _plain(batch: int, count: int, repeat: int) -> dict[str, Any]:
    bodies = [e.body for e in workload.entries(0, count)]

    def measure() -> float:
        with tempfile.TemporaryDirectory(prefix="stelae-bench-files-") as d:
            return baseline.plain_log(bodies, batch, d)

    result = baseline.paired(measure, lambda: baseline.tree_hashing(bodies), repeat=repeat)
    return {
        "config": FLOOR,
        "batch": batch,
        "entries": count,
        "seconds": result.seconds,
        "entries_per_second": count / result.seconds,
        "baseline_entries_per_second": count / result.baseline_seconds,
        "ratio": result.ratio,
    }


def run(quick: bool) -> dict[str, Any]:
    sizes = _QUICK_ENTRIES if quick else _ENTRIES
    # Runs with every index are dominated by thousands of fsynced writes: one repeat is enough.
    rows = [
        _one(name, batch, sizes[name][batch], 1 if quick or name == "all" else 2)
        for name in ("none", "all")
        for batch in BATCH_SIZES
    ]
    rows += [_plain(batch, sizes["none"][batch], 1 if quick else 2) for batch in BATCH_SIZES]
    target = next(
        r for r in rows if r["config"] == TARGET["config"] and r["batch"] == TARGET["batch"]
    )
    return {
        "name": "integration",
        "quick": quick,
        "entry_size": workload.ENTRY_SIZE,
        "runs": rows,
        "target": {
            **TARGET,
            "measured": target["ratio"],
            "met": target["ratio"] >= TARGET["ratio"],
        },
        "index_target": index_ratio(sizes["all"][int(INDEX_TARGET["batch"])], 1 if quick else 2),
    }


def print_result(result: dict[str, Any], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    print(
        f"integration — {result['entry_size']} B entries, local backend (fsync), "
        "ratio = throughput / (leaf + node hashing of the same entries)",
        file=out,
    )
    table(
        out,
        ["indexes", "batch", "entries", "seconds", "entries/s", "baseline/s", "ratio", "ceiling"],
        [
            [
                r["config"],
                r["batch"],
                r["entries"],
                r["seconds"],
                r["entries_per_second"],
                r["baseline_entries_per_second"],
                r["ratio"],
                r.get("ceiling", "-"),
            ]
            for r in result["runs"]
        ],
    )
    print(
        f"{FLOOR}: the same entries hashed and written as bundles, tiles, checkpoint and history "
        "by plain open/write/fsync/rename, no sequencer (the storage floor)",
        file=out,
    )
    t = result["target"]
    print(
        f"target: ratio ≥ {t['ratio']} at batch {t['batch']} without lookup indexes — "
        f"measured {t['measured']:.3f}: {'met' if t['met'] else 'NOT met'}",
        file=out,
    )
    t = result["index_target"]
    print(
        f"target: with the index ≥ {t['ratio']} × the bare log's entries/s at batch "
        f"{t['batch']} (merges included; {t['entries']:,} entries, the two in alternation: "
        f"{t['indexed_entries_per_second']:,.0f} vs {t['bare_entries_per_second']:,.0f}/s) — "
        f"measured {t['measured']:.3f}: {'met' if t['met'] else 'NOT met'}",
        file=out,
    )
