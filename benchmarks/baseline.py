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


def plain_log(bodies: Sequence[bytes], batch: int, directory: str) -> float:
    """Seconds to hash ``bodies`` and publish them in batches as a tlog-tiles log, with plain calls.

    The storage floor of a durable sequencer on this disk, with no stelae code: per batch, the
    objects the ``writes`` benchmark counts as the floor — every entry bundle and every hash tile
    (at each level) that gains an entry, rewritten whole, then a checkpoint and a history object —
    each written as a temporary file, fsynced and renamed into place; then each directory
    touched is fsynced once. Tile contents are the real leaf and subtree hashes (computed as in
    :func:`tree_hashing`); the checkpoint is a stand-in of checkpoint size (no signature).
    The lookup index and the batch record are not written.
    """
    start = time.perf_counter()
    stack: list[bytes] = []
    levels: list[list[bytes]] = [[]]  # the hashes each tile level stores: 256**k-leaf roots
    dirs = {name: os.path.join(directory, name) for name in ("entries", "checkpoints")}
    for d in dirs.values():
        os.makedirs(d)
    for first in range(0, len(bodies), batch):
        end = min(first + batch, len(bodies))
        _hash_entries(bodies, first, end, stack, levels)
        touched = {directory, dirs["entries"], dirs["checkpoints"]}
        for b in range(first // 256, (end - 1) // 256 + 1):
            chunk = bodies[b * 256 : min((b + 1) * 256, end)]
            data = b"".join(len(e).to_bytes(2, "big") + e for e in chunk)
            _put(dirs["entries"], f"{b}.{len(chunk)}", data)
        touched |= _put_tiles(directory, levels, first, end)
        root = stack[-1]
        for h in reversed(stack[:-1]):
            root = _sha256(b"\x01" + h + root).digest()
        note = b"origin\n%d\n%s\n\n- origin %s\n" % (end, root.hex().encode(), b"x" * 96)
        _put(dirs["checkpoints"], str(end), note)
        _put(directory, "checkpoint", note)
        for d in sorted(touched):
            _fsync_dir(d)
    return time.perf_counter() - start


def _hash_entries(
    bodies: Sequence[bytes], first: int, end: int, stack: list[bytes], levels: list[list[bytes]]
) -> None:
    """Add entries ``[first, end)`` to the compact range ``stack``, and each leaf hash and each
    full tile's root to the tile level (``levels``) that stores it."""
    for size in range(first, end):
        h = _sha256(b"\x00" + bodies[size]).digest()
        levels[0].append(h)
        carry, height = size, 0
        while carry & 1:
            h = _sha256(b"\x01" + stack.pop() + h).digest()
            carry >>= 1
            height += 1
            if height % 8 == 0:  # a full tile's root: a hash of the next tile level
                if len(levels) == height // 8:
                    levels.append([])
                levels[height // 8].append(h)
        stack.append(h)


def _put_tiles(directory: str, levels: list[list[bytes]], first: int, end: int) -> set[str]:
    """Write every hash tile that gained a hash from entries ``[first, end)``, whole; return
    the level directories written to."""
    touched: set[str] = set()
    for level, hashes in enumerate(levels):
        before, after = first >> (8 * level), end >> (8 * level)
        if after == before:
            continue
        d = os.path.join(directory, str(level))
        if d not in touched:
            os.makedirs(d, exist_ok=True)
            touched.add(d)
        for t in range(before // 256, (after - 1) // 256 + 1):
            tile = hashes[t * 256 : min((t + 1) * 256, after)]
            _put(d, f"{t}.{len(tile)}", b"".join(tile))
    return touched


def _put(d: str, name: str, data: bytes) -> None:
    """Write ``d/name`` durably: a temporary file, fsynced, renamed into place."""
    tmp = f"{d}/.{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, f"{d}/{name}")


def _fsync_dir(d: str) -> None:
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
