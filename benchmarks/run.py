"""Run the benchmarks: ``python -m benchmarks.run [--quick] [--only NAME] [--json OUT]``.

Results go to stdout as tables; progress and the machine description go to stderr. ``--json``
also writes every figure, with the machine and the commit measured, to ``OUT`` (``-`` for stdout
instead of the tables). Exit status 0 whether or not a target is met: targets are reported, not
enforced, because a noisy machine must not fail a build.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmarks import (
    aws_cost,
    baseline,
    integration,
    lookups,
    memory,
    monitor,
    proofs,
    s3_latency,
    storage,
    write_api,
    write_path,
    writes,
)

BENCHMARKS: dict[str, ModuleType] = {
    "proofs": proofs,
    "lookups": lookups,
    "integration": integration,
    "writes": writes,
    "memory": memory,
    "monitor": monitor,
    "s3_latency": s3_latency,
    "storage": storage,
    "write_api": write_api,
    "write_path": write_path,
    "aws_cost": aws_cost,
}


def commit() -> str:
    """The commit measured, with ``+dirty`` when ``stelae/`` has uncommitted changes."""
    here = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "stelae"],
            cwd=here,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def run_all(
    names: list[str], quick: bool, progress: Callable[[str], None] = lambda _: None
) -> dict[str, Any]:
    results: dict[str, Any] = {
        "machine": baseline.machine(),
        "commit": commit(),
        "quick": quick,
        "benchmarks": {},
    }
    for name in names:
        progress(f"running {name}{' (quick)' if quick else ''}…")
        start = time.perf_counter()
        result = BENCHMARKS[name].run(quick)
        result["wall_seconds"] = time.perf_counter() - start
        results["benchmarks"][name] = result
        progress(f"{name} done in {result['wall_seconds']:.1f} s")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Run stelae's benchmarks. Example: python -m benchmarks.run --only proofs",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run, not data")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(BENCHMARKS),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--json", metavar="OUT", help="also write all figures as JSON (- = stdout)")
    args = parser.parse_args(argv)
    names = args.only or list(BENCHMARKS)

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    m = baseline.machine()
    progress(f"{m['date']} — {m['cpu']}, {m['cores']} cores, Python {m['python']}, {m['system']}")
    results = run_all(names, args.quick, progress)
    if args.json == "-":
        json.dump(results, sys.stdout, indent=2)
        print()
        return 0
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"commit {results['commit']}, {m['date']}, {m['cpu']} ({m['cores']} cores)")
    for name in names:
        print()
        BENCHMARKS[name].print_result(results["benchmarks"][name])
    return 0


if __name__ == "__main__":
    sys.exit(main())
