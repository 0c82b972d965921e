"""Peak memory while integrating 10^6 entries: it must stay flat as the log grows.

1 KiB entries in batches of 4096 go into a :class:`~stelae.sequencer.local.LocalStore` in a
temporary directory (no lookup indexes). The run happens in a fresh child process, so that what
earlier benchmarks allocated does not hide or inflate its footprint; it samples the resident set
size (``VmRSS``) after every batch and reports the peak over the first 10%, 50% and 100% of the
batches. Entries are generated batch by batch, so the only thing that could grow is the sequencer.

The log takes about 1.1 GB on disk (``--quick``: 10^4 entries, ~11 MB) and is deleted afterwards;
the run is skipped, with the reason, when the temporary directory's disk has less than 3 GB free.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

from benchmarks import baseline, workload
from benchmarks.table import table
from stelae.sequencer.local import LocalStore

BATCH = 4096
ENTRIES = 1_000_000
QUICK_ENTRIES = 10_000
MIN_FREE_BYTES = 3 * 10**9
CHECKPOINTS = (0.1, 0.5, 1.0)


def _disk_usage(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def measure(entries: int, batch: int = BATCH) -> dict[str, Any]:
    """Integrate ``entries`` in this process, sampling RSS after every batch."""
    rss_start, _ = baseline.rss_bytes()
    samples: list[int] = []
    with tempfile.TemporaryDirectory(prefix="stelae-bench-memory-") as d:
        root = Path(d) / "log"
        store = LocalStore(root, group_commit=True)
        start = time.perf_counter()
        with workload.sequencer(store, workload.NO_INDEXES) as seq:
            for k in range(0, entries, batch):
                seq.integrate(workload.entries(k, min(batch, entries - k)))
                samples.append(baseline.rss_bytes()[0])
        elapsed = time.perf_counter() - start
        disk = _disk_usage(root)
    _, hwm = baseline.rss_bytes()
    peaks = {}
    for frac in CHECKPOINTS:
        upto = max(1, round(len(samples) * frac))
        peaks[f"{round(frac * 100)}%"] = max(samples[:upto])
    return {
        "entries": entries,
        "batch": batch,
        "batches": len(samples),
        "seconds": elapsed,
        "entries_per_second": entries / elapsed,
        "rss_before": rss_start,
        "peak_rss": peaks,
        "growth_10_to_100": peaks["100%"] - peaks["10%"],
        "vm_hwm": hwm,
        "disk_bytes": disk,
    }


def run(quick: bool) -> dict[str, Any]:
    entries = QUICK_ENTRIES if quick else ENTRIES
    tmp = Path(tempfile.gettempdir())
    free = shutil.disk_usage(tmp).free
    need = MIN_FREE_BYTES if not quick else 100 * 10**6
    if free < need:
        return {
            "name": "memory",
            "quick": quick,
            "skipped": f"only {free / 1e9:.1f} GB free in {tmp}; need {need / 1e9:.1f} GB",
        }
    if not baseline.rss_bytes()[0]:
        return {"name": "memory", "quick": quick, "skipped": "no /proc/self/status to read RSS"}
    child = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", "--entries", str(entries)],
        check=True,
        capture_output=True,
        text=True,
    )
    return {"name": "memory", "quick": quick, **json.loads(child.stdout)}


def print_result(result: dict[str, Any], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    if "skipped" in result:
        print(f"memory — skipped: {result['skipped']}", file=out)
        return
    mib = 1 << 20
    print(
        f"memory — {result['entries']:,} × {workload.ENTRY_SIZE} B entries, batch "
        f"{result['batch']}, local backend, no lookup indexes: {result['seconds']:.1f} s "
        f"({result['entries_per_second']:,.0f} entries/s), {result['disk_bytes'] / 1e9:.2f} GB "
        "on disk (deleted)",
        file=out,
    )
    table(
        out,
        ["RSS", "MiB"],
        [
            ["before the first batch", result["rss_before"] / mib],
            *[[f"peak over first {k} of batches", v / mib] for k, v in result["peak_rss"].items()],
            ["growth from 10% to 100%", result["growth_10_to_100"] / mib],
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="the memory benchmark's measuring child")
    parser.add_argument("--entries", type=int, default=ENTRIES)
    parser.add_argument("--batch", type=int, default=BATCH)
    args = parser.parse_args()
    json.dump(measure(args.entries, args.batch), sys.stdout)


if __name__ == "__main__":
    main()
