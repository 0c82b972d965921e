"""The sequencer Lambda handler end to end over moto with S3's latency added in front.

``benchmarks/s3_latency.py`` measures the engine over an in-memory store; this runs the real
``stelae.lambda.sequence.handler`` (its boto3 client, its connection pool, the SQS event, the
merge it runs after publishing) against moto, behind the cost model's proxy
(:class:`~benchmarks.aws_emulator.CountingProxy`) told to hold each S3 GET/HEAD 25 ms and each
PUT 50 ms before forwarding it. Sleeps release the GIL, so requests the sequencer issues together
overlap. Reported per batch: wall time, entries/s and the S3 requests the handler made (counted
by the proxy), merges included — the merge runs inside the invocation on AWS.

    python -m benchmarks.aws_sequencer_latency [--quick]

moto's own time per request (a millisecond or more, and CPU shared with the handler on a
2-core box) comes on top of the added latency, so this is a bound from above.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Any

from benchmarks.aws_emulator import FAKE_CREDENTIALS, environment, moto_server, proxies
from benchmarks.aws_profile import Deployment, submissions
from benchmarks.s3_latency import GET_SECONDS, PUT_SECONDS


def run(quick: bool) -> dict[str, Any]:
    batch, batches = (50, 2) if quick else (1000, 5)
    events = submissions(batch * (batches + 1), "latency")
    rows: list[dict[str, object]] = []
    walls: list[float] = []
    with (
        moto_server() as url,
        proxies(url, ("write", "sequencer", "esm")) as (servers, tally),
        environment({**FAKE_CREDENTIALS, "AWS_PROFILE": None, "AWS_SESSION_TOKEN": None}),
    ):
        d = Deployment(url, servers)
        servers["sequencer"].s3_delays = {
            "GET": GET_SECONDS,
            "HEAD": GET_SECONDS,
            "PUT": PUT_SECONDS,
        }
        with environment(d.env):
            d.start_sequencer()
            d.time_sequencer(events[:batch])  # the log's first batch (cold: secret, first reads)
            for k in range(1, batches + 1):
                before = tally.snapshot()
                t0 = time.perf_counter()
                d.time_sequencer(events[k * batch : (k + 1) * batch])
                wall = time.perf_counter() - t0
                counted = tally.since(before).calls
                s3: Counter[str] = Counter()
                for (role, service, op, detail), n in counted.items():
                    if role == "sequencer" and service == "s3":
                        s3[f"{op} {detail}".strip()] += n
                rows.append({"seconds": wall, "s3": dict(sorted(s3.items()))})
                walls.append(wall)
    walls.sort()
    median = walls[len(walls) // 2]
    return {
        "name": "aws_sequencer_latency",
        "batch": batch,
        "get_ms": GET_SECONDS * 1000,
        "put_ms": PUT_SECONDS * 1000,
        "median_seconds": median,
        "entries_per_second": batch / median,
        "batches": rows,
    }


def print_result(result: dict[str, Any]) -> None:
    print(
        f"sequencer Lambda handler over moto + S3 latency (GET {result['get_ms']:g} ms, PUT "
        f"{result['put_ms']:g} ms), batch {result['batch']}: median "
        f"{result['median_seconds'] * 1000:.0f} ms per invocation, "
        f"{result['entries_per_second']:,.0f} entries/s"
    )
    for i, r in enumerate(result["batches"], 1):
        requests = ", ".join(f"{k} ×{n}" for k, n in r["s3"].items())
        print(f"  batch {i}: {r['seconds'] * 1000:.0f} ms — {requests}")


if __name__ == "__main__":
    print_result(run("--quick" in sys.argv[1:]))
