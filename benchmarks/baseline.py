"""The baselines every timing is divided by, and the clock that measures both.

A ratio against raw hashing measured seconds earlier on the same machine survives a noisy, shared
box far better than an absolute rate: both sides slow down together. Each measurement is the best
of a few repeats, interleaved with the baseline's own repeats so that a burst of load from a
neighbour hits both.
"""

from __future__ import annotations

import hashlib
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_sha256 = hashlib.sha256


def node_hashes(n: int) -> float:
    """Seconds to compute ``n`` RFC 6962 interior node hashes with raw hashlib (no stelae code)."""
    left = _sha256(b"left").digest()
    right = _sha256(b"right").digest()
    start = time.perf_counter()
    for _ in range(n):
        left = _sha256(b"\x01" + left + right).digest()
    return time.perf_counter() - start


def tree_hashing(bodies: Sequence[bytes]) -> float:
    """Seconds to build the Merkle tree of ``bodies`` alone: what integration cannot avoid.

    One SHA-256 leaf hash per entry and the n-1 node hashes of the tree, merged like a binary
    counter (the compact range), with raw hashlib and no stelae code.
    """
    start = time.perf_counter()
    stack: list[bytes] = []
    for size, body in enumerate(bodies):
        h = _sha256(b"\x00" + body).digest()
        carry = size
        while carry & 1:
            h = _sha256(b"\x01" + stack.pop() + h).digest()
            carry >>= 1
        stack.append(h)
    return time.perf_counter() - start


def durable_bundles(bodies: Sequence[bytes], batch: int, directory: str) -> float:
    """Seconds to persist ``bodies`` once as entry bundles, in batches, the way a log must.

    Per batch, every 256-entry bundle the batch touches is written whole (a partial bundle grows
    by rewriting it) and fsynced, then the directory is fsynced: the durable I/O no sequencer
    can skip. Plain ``os`` calls, no stelae code.
    """
    start = time.perf_counter()
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for first in range(0, len(bodies), batch):
            end = min(first + batch, len(bodies))
            for b in range(first // 256, (end - 1) // 256 + 1):
                chunk = bodies[b * 256 : min((b + 1) * 256, end)]
                data = b"".join(len(e).to_bytes(2, "big") + e for e in chunk)
                fd = os.open(f"{directory}/{b}.{len(chunk)}", os.O_WRONLY | os.O_CREAT, 0o644)
                try:
                    os.write(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return time.perf_counter() - start


@dataclass(frozen=True)
class Paired:
    """Best-of-N seconds for a measurement and for its baseline, taken in alternation."""

    seconds: float
    baseline_seconds: float

    @property
    def ratio(self) -> float:
        """Throughput relative to the baseline doing the same amount of work (1.0 = as fast)."""
        return self.baseline_seconds / self.seconds if self.seconds else float("inf")


def paired(
    measure: Callable[[], float], baseline: Callable[[], float], *, repeat: int = 3
) -> Paired:
    """Run ``baseline`` and ``measure`` alternately ``repeat`` times; keep each one's best."""
    best = best_base = float("inf")
    for _ in range(repeat):
        best_base = min(best_base, baseline())
        best = min(best, measure())
    return Paired(best, best_base)


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def rss_bytes() -> tuple[int, int]:
    """This process's resident set size now and its peak so far (VmRSS, VmHWM), in bytes.

    Linux only; elsewhere both are 0 and the memory benchmark says so.
    """
    now = peak = 0
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    now = int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) * 1024
    except OSError:
        pass
    return now, peak


def machine() -> dict[str, object]:
    """What the figures were measured on, for the results table."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
