"""How much this disk charges to create a file, round by round: the caveat in the README.

Not one of the ``benchmarks.run`` set (it measures the machine, not stelae). It creates small
files the way the local store does (hidden temporary, ``link`` to the final name, ``unlink`` the
temporary; no fsync, as under group commit) in a fresh directory under ``DIR``, in rounds of
1,000, and prints the wall time of the ``open(O_CREAT|O_EXCL)`` and the process CPU per file for
each round. On a quiet filesystem every round costs about the same, tens of µs; where many files
were recently deleted, the first rounds can cost tens of times more and the cost falls as the
allocator moves on — which is what makes the per-entry-file benchmarks (leaf and digest indexes)
swing from run to run on a shared machine.

``python -m benchmarks.file_creation [DIR] [ROUNDS]`` (default: ``$TMPDIR`` or /tmp, 8 rounds).
The files are deleted afterwards.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
import time

PER_ROUND = 1000


def rounds(parent: str, count: int) -> list[tuple[float, float]]:
    """(µs of wall time in open, µs of process CPU) per file, for each round."""
    directory = tempfile.mkdtemp(prefix="stelae-file-creation-", dir=parent)
    out = []
    try:
        for _ in range(count):
            in_open = 0.0
            cpu0 = time.process_time()
            for _ in range(PER_ROUND):
                name = secrets.token_hex(32)
                final = f"{directory}/{name}"
                tmp = f"{directory}/.{name}.{secrets.token_hex(8)}.tmp"
                t0 = time.perf_counter()
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                in_open += time.perf_counter() - t0
                try:
                    os.write(fd, b"x" * 150)
                finally:
                    os.close(fd)
                os.link(tmp, final)
                os.unlink(tmp)
            cpu = time.process_time() - cpu0
            out.append((in_open * 1e6 / PER_ROUND, cpu * 1e6 / PER_ROUND))
    finally:
        shutil.rmtree(directory)
    return out


def main(argv: list[str]) -> int:
    parent = argv[0] if argv else tempfile.gettempdir()
    count = int(argv[1]) if len(argv) > 1 else 8
    print(f"file creation in a fresh directory under {parent}, {PER_ROUND} files per round")
    print("round  open µs/file  CPU µs/file")
    for n, (opened, cpu) in enumerate(rounds(parent, count)):
        print(f"{n:>5}  {opened:>12,.0f}  {cpu:>11,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
