"""The real sequencer over a store with S3's request latency: entries/s and round trips per batch.

On S3 a sequencer is bound by round trips, not CPU: every request costs tens of milliseconds
however small the object, and only requests issued together overlap. This benchmark runs the
real :class:`~stelae.sequencer.engine.Sequencer` (the AWS configuration: ``parallel_writes=16``,
the lookup index on, merges on a background thread so that integration never waits for them)
over :class:`LatencyStore`: the in-memory store with a sleep per request — GET 25 ms,
PUT 50 ms by default, typical first-byte latencies of S3 Standard in-region for small objects.
Sleeps release the GIL, so requests issued in parallel overlap as they would on S3.

Every request the integrating thread or its write pool makes is recorded with its start and end.
Per batch the benchmark reports the requests by method and object class, and the **sequential
round trips**: the requests grouped into waves, a wave being the requests issued before any of
the wave's earlier requests had completed (what the sequencer sent together); a request issued
after one completed waited for it, so it starts the next wave. The critical path is then the
sum over waves of the slowest nominal latency in each; whatever the batch's wall time has beyond
it (``other``) is CPU and waiting for a core: ``CPU`` is the process's CPU time per batch, the
background merger's included, ``seq CPU`` the integrating thread's alone (the write pool's
threads only sleep and copy bytes), so ``other`` − ``seq CPU`` is time the sequencer spent
runnable but not running — on a busy machine, or holding out for the GIL while the merger
computes. The merger's own requests are counted apart: they are off the critical path.

``wall / PUT`` = wall time per batch over the PUT latency: the critical path in PUT round trips,
CPU included. Target: ≥ 2,000 entries/s at batch 1,000 with the lookup index.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, TextIO

from benchmarks import workload
from benchmarks.table import table
from stelae.sequencer.store import RequestCounters, Versioned
from stelae.tiles.paths import ObjectClass, object_class_for_key
from tests.support.memory import MemoryStore

GET_SECONDS = 0.025
PUT_SECONDS = 0.050
TARGET = {"batch": 1000, "entries_per_second": 2000.0}
# (lookup index, batch, timed batches): the target point, context on both sides, and the bare
# log at the target batch size for comparison.
POINTS: tuple[tuple[bool, int, int], ...] = (
    (True, 1000, 30),
    (True, 256, 40),
    (True, 4096, 12),
    (False, 1000, 30),
)
QUICK_POINTS: tuple[tuple[bool, int, int], ...] = ((True, 100, 4), (False, 100, 3))
MERGER_THREAD = "stelae-merger"


@dataclass(frozen=True)
class Request:
    """One request as the store saw it."""

    method: str  # GET or PUT
    key: str
    start: float
    end: float
    nominal: float  # the latency it was given
    thread: str

    @property
    def label(self) -> str:
        cls = object_class_for_key(self.key)
        return f"{self.method} {cls.label if cls else self.key}"


class LatencyStore:
    """A :class:`~tests.support.memory.MemoryStore` that sleeps like S3 before answering.

    Keeps the store contract (it delegates every call), adds ``get_seconds`` to each read and
    ``put_seconds`` to each write, and records every request in :attr:`requests`. Safe for
    concurrent use: many threads may sleep at once.
    """

    def __init__(self, get_seconds: float = GET_SECONDS, put_seconds: float = PUT_SECONDS) -> None:
        self.inner = MemoryStore()
        self.get_seconds = get_seconds
        self.put_seconds = put_seconds
        self.requests: list[Request] = []
        self._lock = threading.Lock()

    def _record(self, method: str, key: str, start: float, nominal: float) -> None:
        request = Request(
            method, key, start, time.perf_counter(), nominal, threading.current_thread().name
        )
        with self._lock:
            self.requests.append(request)

    @property
    def counters(self) -> RequestCounters:
        return self.inner.counters

    def get(self, key: str) -> bytes:
        return self.get_versioned(key).data

    def get_versioned(self, key: str) -> Versioned:
        start = time.perf_counter()
        time.sleep(self.get_seconds)
        try:
            return self.inner.get_versioned(key)
        finally:
            self._record("GET", key, start, self.get_seconds)

    def put_immutable(self, key: str, data: bytes, cls: ObjectClass) -> None:
        start = time.perf_counter()
        time.sleep(self.put_seconds)
        try:
            self.inner.put_immutable(key, data, cls)
        finally:
            self._record("PUT", key, start, self.put_seconds)

    def put_if(self, key: str, data: bytes, cls: ObjectClass, expected_version: str | None) -> str:
        start = time.perf_counter()
        time.sleep(self.put_seconds)
        try:
            return self.inner.put_if(key, data, cls, expected_version)
        finally:
            self._record("PUT", key, start, self.put_seconds)

    def flush(self) -> None:
        """S3 writes are durable on return: nothing to flush, no request."""

    def take(self) -> list[Request]:
        """The requests recorded since the last call, oldest first."""
        with self._lock:
            out, self.requests = self.requests, []
        return sorted(out, key=lambda r: r.start)


def waves(requests: Sequence[Request]) -> list[list[Request]]:
    """``requests`` (sorted by start) grouped into rounds of requests in flight together.

    A request joins the current wave if it started before any request of the wave had
    completed; otherwise it was issued after waiting on something, and starts a new wave.
    """
    out: list[list[Request]] = []
    first_end = float("-inf")
    for r in requests:
        if out and r.start < first_end:
            out[-1].append(r)
            first_end = min(first_end, r.end)
        else:
            out.append([r])
            first_end = r.end
    return out


def describe(wave: Sequence[Request]) -> str:
    """``PUT tile ×3 + PUT bundle ×4``: what a wave held."""
    counts = Counter(r.label for r in wave)
    return " + ".join(f"{label} ×{n}" if n > 1 else label for label, n in counts.items())


def one(
    lookup_index: bool,
    batch: int,
    batches: int,
    get_seconds: float = GET_SECONDS,
    put_seconds: float = PUT_SECONDS,
) -> dict[str, Any]:
    """``batches`` timed batches of ``batch`` entries after one untimed warm-up batch."""
    store = LatencyStore(get_seconds, put_seconds)
    config = workload.ALL_INDEXES if lookup_index else workload.NO_INDEXES
    config = replace(config, background_merges=lookup_index)  # the merger never blocks a batch
    entries = workload.entries(0, batch * (batches + 1))
    walls: list[float] = []
    cpu = thread_cpu = 0.0
    critical: list[float] = []
    per_batch_waves: list[list[list[Request]]] = []
    counts: Counter[str] = Counter()
    merger: Counter[str] = Counter()
    with workload.sequencer(store, config) as seq:
        seq.integrate(entries[:batch])  # a new log: its first batch writes no partial objects
        store.take()
        for k in range(1, batches + 1):
            chunk = entries[k * batch : (k + 1) * batch]
            t0, c0, d0 = time.perf_counter(), time.process_time(), time.thread_time()
            result = seq.integrate(chunk)
            walls.append(time.perf_counter() - t0)
            cpu += time.process_time() - c0
            thread_cpu += time.thread_time() - d0
            if result.size != (k + 1) * batch:
                raise AssertionError(f"batch {k} published size {result.size}")
            mine: list[Request] = []
            for r in store.take():
                if r.thread == MERGER_THREAD:
                    merger[r.label] += 1
                else:
                    mine.append(r)
                    counts[r.label] += 1
            w = waves(mine)
            per_batch_waves.append(w)
            critical.append(sum(max(r.nominal for r in wave) for wave in w))
        merges = seq.merger.merges
    for r in store.take():
        if r.thread == MERGER_THREAD:
            merger[r.label] += 1
    wall = sum(walls)
    # The batch whose wall time is the median shows the steady state's waves.
    typical = sorted(range(batches), key=lambda i: walls[i])[batches // 2]
    wave_counts = [len(w) for w in per_batch_waves]
    return {
        "lookup_index": lookup_index,
        "batch": batch,
        "batches": batches,
        "entries": batch * batches,
        "get_ms": get_seconds * 1000,
        "put_ms": put_seconds * 1000,
        "seconds": wall,
        "entries_per_second": batch * batches / wall,
        "batch_ms": wall / batches * 1000,
        "wall_in_puts": wall / batches / put_seconds,
        "waves_mean": sum(wave_counts) / batches,
        "waves_max": max(wave_counts),
        "critical_path_ms": sum(critical) / batches * 1000,
        "other_ms": (wall - sum(critical)) / batches * 1000,
        "cpu_ms": cpu / batches * 1000,
        "integrate_cpu_ms": thread_cpu / batches * 1000,
        "requests_per_batch": {k: v / batches for k, v in sorted(counts.items())},
        "typical_waves": [describe(w) for w in per_batch_waves[typical]],
        "merges": merges,
        "merger_requests": dict(sorted(merger.items())),
    }


def run(quick: bool) -> dict[str, Any]:
    if quick:
        rows = [one(i, b, n, 0.001, 0.002) for i, b, n in QUICK_POINTS]
    else:
        rows = [one(i, b, n) for i, b, n in POINTS]
    target = next((r for r in rows if r["lookup_index"] and r["batch"] == TARGET["batch"]), rows[0])
    return {
        "name": "s3_latency",
        "quick": quick,
        "runs": rows,
        "target": {
            **TARGET,
            "measured": target["entries_per_second"],
            "met": target["batch"] == TARGET["batch"]
            and target["entries_per_second"] >= TARGET["entries_per_second"],
        },
    }


def print_result(result: dict[str, Any], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    rows = result["runs"]
    first = rows[0]
    print(
        f"s3_latency — the sequencer over an in-memory store with S3-like latency (GET "
        f"{first['get_ms']:g} ms, PUT {first['put_ms']:g} ms, parallel_writes=16, background "
        "merges), 1 KiB entries",
        file=out,
    )
    table(
        out,
        [
            "index",
            "batch",
            "entries",
            "entries/s",
            "ms/batch",
            "wall/PUT",
            "waves",
            "critical ms",
            "other ms",
            "CPU ms",
            "seq CPU ms",
            "merges",
        ],
        [
            [
                "all" if r["lookup_index"] else "none",
                r["batch"],
                r["entries"],
                r["entries_per_second"],
                r["batch_ms"],
                r["wall_in_puts"],
                r["waves_mean"],
                r["critical_path_ms"],
                r["other_ms"],
                r["cpu_ms"],
                r["integrate_cpu_ms"],
                r["merges"],
            ]
            for r in rows
        ],
    )
    for r in rows:
        index = "with the index" if r["lookup_index"] else "bare log"
        print(f"\nbatch {r['batch']}, {index} — requests per batch on the critical path:", file=out)
        print("  " + ", ".join(f"{k} {v:g}" for k, v in r["requests_per_batch"].items()), file=out)
        print("  waves of the median batch, in order:", file=out)
        for n, wave in enumerate(r["typical_waves"], 1):
            print(f"    {n}. {wave}", file=out)
        if r["merger_requests"]:
            merged = ", ".join(f"{k} {v}" for k, v in r["merger_requests"].items())
            print(f"  background merger, whole run: {merged}", file=out)
    t = result["target"]
    print(
        f"\ntarget: ≥ {t['entries_per_second']:,.0f} entries/s at batch {t['batch']} with the "
        f"index — measured {t['measured']:,.0f}: {'met' if t['met'] else 'NOT met'}",
        file=out,
    )


if __name__ == "__main__":
    print_result(run("--quick" in sys.argv[1:]))
