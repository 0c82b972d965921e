"""The monitor's audit rate against hashing the same entries: a full audit and a resumed one.

A log of 10^6 entries (real stored ``rekord`` bodies of about 570 B,
:func:`benchmarks.workload.rekord_entry`, because the monitor recomputes the lookup index from
the bodies; ``--quick``: 10^4) is built with the sequencer in batches of 4096 into a
:class:`~stelae.sequencer.local.LocalStore` in a temporary directory, with the lookup index (the
default configuration; merges run after each batch). It takes about 1.1 GB on disk (batch
records included) and is deleted afterwards; the run is skipped, with the reason, when
the temporary directory's disk has less than 3 GB free. Building it is not timed. Then the whole
log is audited from its tiles — every entry re-hashed, every tile and the root recomputed and
compared with the served ones — three ways:

- ``core``: the pure audit functions (:mod:`stelae.tiles.audit`) over a
  :class:`~stelae.tiles.client.TileReader` on a :class:`~stelae.tiles.fetch.DirectoryFetcher`,
  nothing else: the audit loop of ``stelae monitor`` without its bookkeeping;
- ``round``: one :meth:`stelae.client.monitor.Monitor.round` in this process, as ``stelae monitor``
  runs it (checkpoint and consistency checks, periodic verified saves of the audit state, the
  checkpoint history check, and the lookup index: every run the signed manifest lists recomputed
  from the entries and compared shard by shard, docs/index.md "Monitors"), over a caching
  ``DirectoryFetcher`` with fresh state;
- ``process``: the real ``python -m stelae monitor --once --log-url DIR --vkey KEY --state-dir
  TMP`` as a child process, timed from start to exit (interpreter start-up and imports included).

Then the log grows by 1% (10^4 entries; ``--quick``: 100) and the ``round`` and ``process``
audits resume from their saved state: they should read only the new bundles (and the one they
stopped inside). Bundles fetched are counted for the in-process runs; ``noop`` is a further
``process`` run with nothing new, the fixed cost of one invocation.

The baseline, measured in alternation with each full audit, is raw SHA-256 leaf hashing plus
RFC 6962 node hashing of the same entries (:func:`benchmarks.baseline.tree_hashing`, streamed in
chunks so that the entries need not all be in memory): the work an audit cannot avoid. Each
``ratio`` is audit throughput over baseline throughput (1.0 = as fast as hashing alone).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

from benchmarks import workload
from benchmarks.table import table
from stelae.cli.reading import Reader
from stelae.cli.state import LogState
from stelae.client.monitor import Monitor, Watches
from stelae.sequencer.local import LocalStore
from stelae.tiles.audit import (
    AuditState,
    audit_bundle,
    check_root,
    compare_tile,
    partial_edge_tiles,
)
from stelae.tiles.client import LogClient
from stelae.tiles.fetch import CachingFetcher, DirectoryFetcher
from stelae.tiles.layout import TILE_WIDTH
from tests.support.fetch import CountingFetcher

ENTRIES = 1_000_000
QUICK_ENTRIES = 10_000
GROWTH = 0.01
BATCH = 4096
MIN_FREE_BYTES = 3 * 10**9
QUICK_MIN_FREE_BYTES = 100 * 10**6
HASH_CHUNK = 65_536

_REPO = Path(__file__).resolve().parent.parent


def build(root: Path, start: int, count: int) -> float:
    """Append entries ``start..start+count-1`` to the log under ``root``; seconds it took."""
    began = time.perf_counter()
    # The monitor audits the index too, so the log has one (as every log built now does).
    with workload.sequencer(LocalStore(root, group_commit=True), workload.ALL_INDEXES) as seq:
        for k in range(start, start + count, BATCH):
            seq.integrate(workload.rekord_entries(k, min(BATCH, start + count - k)))
            seq.merge()
        if seq.published().size != start + count:
            raise AssertionError(f"log has {seq.published().size} entries, want {start + count}")
    return time.perf_counter() - began


def hashing_seconds(count: int) -> float:
    """Seconds of raw leaf + node hashing of entries ``0..count-1``, generated in chunks.

    Only the hashing is timed (the chunks are made between measurements); the compact range is
    carried across chunks: exactly :func:`benchmarks.baseline.tree_hashing` of all the entries.
    """
    sha256 = hashlib.sha256
    total = 0.0
    stack: list[bytes] = []
    for first in range(0, count, HASH_CHUNK):
        chunk = range(first, min(first + HASH_CHUNK, count))
        bodies = [workload.rekord_entry(i).body for i in chunk]
        start = time.perf_counter()
        for size, body in enumerate(bodies, first):
            h = sha256(b"\x00" + body).digest()
            carry = size
            while carry & 1:
                h = sha256(b"\x01" + stack.pop() + h).digest()
                carry >>= 1
            stack.append(h)
        total += time.perf_counter() - start
    return total


def _bundles(paths: list[str]) -> int:
    return sum(p.startswith("tile/entries/") for p in paths)


def audit_core(log: Path) -> dict[str, Any]:
    """Audit the whole log with the pure audit functions; seconds and objects read."""
    fetcher = CountingFetcher(DirectoryFetcher(log))
    client = LogClient(fetcher, [workload.SIGNER.verifier], workload.ORIGIN)
    start = time.perf_counter()
    cp = client.checkpoint().checkpoint
    tiles = client.tiles
    state = AuditState()
    for n in range(-(-cp.size // TILE_WIDTH)):
        step = audit_bundle(state, n, tiles.bundle(n, cp.size))
        for tid, tile in step.full_tiles:
            compare_tile(tid, tile, tiles.hash_tile(tid.level, tid.index, cp.size))
        state = step.state
    for tid, tile in partial_edge_tiles(state):
        compare_tile(tid, tile, tiles.hash_tile(tid.level, tid.index, cp.size))
    check_root(state, cp)
    seconds = time.perf_counter() - start
    return _row("core", cp.size, cp.size, seconds, fetcher.paths)


def audit_in_process(log: Path, state_dir: Path) -> dict[str, Any]:
    """One ``Monitor.round`` as ``stelae monitor`` runs it, resuming from ``state_dir``."""
    counter = CountingFetcher(DirectoryFetcher(log))
    client = LogClient(CachingFetcher(counter), [workload.SIGNER.verifier], workload.ORIGIN)
    key_id = workload.SIGNER.verifier.key_id
    reader = Reader(str(log), client, key_id, LogState(state_dir, client.origin, key_id), log)
    alerts: list[dict[str, Any]] = []
    start = time.perf_counter()
    result = Monitor(reader, Watches(()), alerts.append).round()
    seconds = time.perf_counter() - start
    if alerts:
        raise AssertionError(f"the monitor raised alerts on an honest log: {alerts[:3]}")
    return _row("round", result.size - result.start, result.size, seconds, counter.paths)


def audit_process(log: Path, state_dir: Path, audited: int, size: int) -> dict[str, Any]:
    """Run the real ``stelae monitor --once`` in a child process and time it to exit."""
    vkey = state_dir.parent / "vkey.txt"
    vkey.write_text(workload.SIGNER.vkey + "\n", encoding="ascii")
    cmd = [sys.executable, "-m", "stelae", "monitor", "--once", "--log-url", str(log)]
    cmd += ["--vkey", f"@{vkey}", "--state-dir", str(state_dir)]
    # This checkout's stelae, even when an editable install points at another one.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(_REPO), os.environ.get("PYTHONPATH", "")]),
    }
    start = time.perf_counter()
    child = subprocess.run(cmd, cwd=_REPO, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if child.returncode != 0 or child.stdout.strip():
        raise AssertionError(
            f"stelae monitor exited {child.returncode}: {child.stdout[-500:]}{child.stderr[-500:]}"
        )
    return _row("process", size - audited, size, seconds, None)


def _row(
    how: str, entries: int, size: int, seconds: float, paths: list[str] | None
) -> dict[str, Any]:
    return {
        "how": how,
        "entries": entries,
        "tree_size": size,
        "seconds": seconds,
        "entries_per_second": entries / seconds if entries else 0.0,
        "bundles_fetched": _bundles(paths) if paths is not None else None,
        "objects_fetched": len(paths) if paths is not None else None,
    }


def _with_ratio(row: dict[str, Any], baseline_rate: float) -> dict[str, Any]:
    return {**row, "ratio": row["entries_per_second"] / baseline_rate}


def measure(entries: int, tmp: Path) -> dict[str, Any]:
    """Build the log under ``tmp``, audit it fully, grow it by 1%, audit again from the state."""
    log = tmp / "log"
    build_seconds = build(log, 0, entries)
    disk = sum(p.stat().st_size for p in log.rglob("*") if p.is_file())
    base = float("inf")
    full = []
    # Each audit is bracketed by baseline runs, so a burst of load hits both sides.
    base = min(base, hashing_seconds(entries))
    full.append(audit_core(log))
    base = min(base, hashing_seconds(entries))
    full.append(audit_in_process(log, tmp / "state-round"))
    base = min(base, hashing_seconds(entries))
    full.append(audit_process(log, tmp / "state-process", 0, entries))
    base = min(base, hashing_seconds(entries))
    rate = entries / base

    grow = max(1, round(entries * GROWTH))
    build(log, entries, grow)
    size = entries + grow
    resumed = [
        audit_in_process(log, tmp / "state-round"),
        audit_process(log, tmp / "state-process", entries, size),
    ]
    noop = audit_process(log, tmp / "state-process", size, size)
    return {
        "entries": entries,
        "entry_size": len(workload.rekord_entry(0).body),
        "batch": BATCH,
        "build_seconds": build_seconds,
        "disk_bytes": disk,
        "baseline_entries_per_second": rate,
        "full": [_with_ratio(r, rate) for r in full],
        "growth": grow,
        "resumed": [_with_ratio(r, rate) for r in resumed],
        "new_bundles": -(-size // TILE_WIDTH) - entries // TILE_WIDTH,
        "noop_seconds": noop["seconds"],
    }


def run(quick: bool) -> dict[str, Any]:
    entries = QUICK_ENTRIES if quick else ENTRIES
    tmp = Path(tempfile.gettempdir())
    free = shutil.disk_usage(tmp).free
    need = QUICK_MIN_FREE_BYTES if quick else MIN_FREE_BYTES
    if free < need:
        return {
            "name": "monitor",
            "quick": quick,
            "skipped": f"only {free / 1e9:.1f} GB free in {tmp}; need {need / 1e9:.1f} GB",
        }
    with tempfile.TemporaryDirectory(prefix="stelae-bench-monitor-") as d:
        return {"name": "monitor", "quick": quick, **measure(entries, Path(d))}


def print_result(result: dict[str, Any], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    if "skipped" in result:
        print(f"monitor — skipped: {result['skipped']}", file=out)
        return
    print(
        f"monitor — audit of {result['entries']:,} × {result['entry_size']} B entries from "
        f"tiles (local directory; built at batch {result['batch']} in "
        f"{result['build_seconds']:.0f} s, {result['disk_bytes'] / 1e9:.2f} GB, deleted), "
        f"ratio = audit entries/s / (leaf + node hashing: "
        f"{result['baseline_entries_per_second']:,.0f} entries/s)",
        file=out,
    )
    rows = [("full", r) for r in result["full"]] + [
        (f"resumed +{result['growth']:,}", r) for r in result["resumed"]
    ]
    table(
        out,
        [
            "audit",
            "how",
            "entries",
            "seconds",
            "entries/s",
            "ratio",
            "bundles read",
            "objects read",
        ],
        [
            [
                what,
                r["how"],
                r["entries"],
                r["seconds"],
                r["entries_per_second"],
                r["ratio"],
                "-" if r["bundles_fetched"] is None else r["bundles_fetched"],
                "-" if r["objects_fetched"] is None else r["objects_fetched"],
            ]
            for what, r in rows
        ],
    )
    print(
        f"resumed audits should read the {result['new_bundles']} bundles holding new entries; "
        f"a process run with nothing new takes {result['noop_seconds']:.2f} s",
        file=out,
    )
