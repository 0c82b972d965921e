"""The batch cadence trade-off of the AWS deployment: latency against USD per million entries for
a few batching windows and batch sizes, at 1, 100 and 1,000 entries/s. **A model**, built on
what :mod:`benchmarks.aws_cost` measured: the sequencer's integration time alone at the measured
batch sizes (fitted as ``a + c × batch``), its requests per batch and the write function's own
work, all counted with the module's defaults; everything else follows from the schedule.

For a window ``W``, a batch size ``B`` and a rate ``r``: a batch holds ``b = min(B, r × W)``
entries and closes ``W`` s after its first arrival, or ``B / r`` s when full; it is integrated in
``I(b)``; a write first looks at ``W + I(b)`` (``write_poll_margin_seconds`` set to ``I(b)``), so
one look finds it (three GETs) and it is billed that long plus its own work. One sequencer keeps
up when ``I(b) ≤`` the close time (the ESM's second concurrent invocation would only lose the
batch claim). Per entry: API Gateway, the write function (request, GB-s, SendMessage, three
GETs), the ESM's receives and deletes (⌈b/10⌉ each per batch), and the batch's share of the
sequencer (invocation, GB-s, its PUTs and GETs, from the measured profile nearest in batch size);
API Gateway at the month's volume at the rate (:func:`~benchmarks.aws_pricing.apigw_request_price`);
CloudWatch Logs (no access log, the module's default) and data out as measured. The margin is the
one thing set better than the module's fixed default (0.5 s): at ``I(b)``, which is why a row can
be cheaper than the measured profile with the same batches.
"""

from __future__ import annotations

import math
from typing import Any

from benchmarks.aws_model import (
    MONTH_SECONDS,
    S3_PUT_CLASS,
    SEQUENCER_MEMORY_GB,
    WRITE_MEMORY_GB,
)
from benchmarks.aws_pricing import apigw_request_price
from benchmarks.prices import price

WINDOWS = (1, 2, 5)
BATCH_SIZES = (100, 256, 1000, 4096)
RATES = (1, 100, 1000)


def _fit(profiles: list[dict[str, Any]]) -> tuple[float, float]:
    """Least squares ``I(b) = a + c × b`` through the measured (batch, integration seconds)."""
    pts = [(float(p["batch"]), float(p["model"]["integrate_seconds"])) for p in profiles]
    n = len(pts)
    mx = sum(x for x, _ in pts) / n
    my = sum(y for _, y in pts) / n
    var = sum((x - mx) ** 2 for x, _ in pts)
    c = sum((x - mx) * (y - my) for x, y in pts) / var if var else 0.0
    return my - c * mx, max(c, 0.0)


def _per_batch(profiles: list[dict[str, Any]], b: int) -> tuple[float, float]:
    """The sequencer's S3 PUT- and GET-class requests per batch, from the measured profile whose
    batch is nearest ``b`` (by ratio: a batch spans more bundles and tiles as it grows)."""
    p = min(profiles, key=lambda q: abs(math.log(q["batch"] / b)))
    rows = [r for r in p["requests"] if r["caller"] == "sequencer" and r["service"] == "s3"]
    puts = sum(r["calls"] for r in rows if r["operation"].startswith(S3_PUT_CLASS))
    gets = sum(r["calls"] for r in rows) - puts
    runs = p["sequencer"]["invocations"]
    return puts / runs, gets / runs


def scenario(
    result: dict[str, Any], rate: float, window: float, batch_size: int
) -> dict[str, float]:
    profiles = result["profiles"]
    a, c = _fit(profiles)
    sync = profiles[-1]["cost"]
    model = profiles[-1]["model"]
    work = max(0.0, model["write_seconds"] - model["write_waited_seconds"])
    async_work = profiles[-1]["async"]["cost"]["per_entry"]["write_seconds"]
    b = max(1, min(batch_size, round(rate * window)))
    close = window if b < batch_size else batch_size / rate
    puts, gets = _per_batch(profiles, b)
    integrate = a + c * b
    first_look = window + integrate
    chunks = math.ceil(b / 10)
    shared = (
        apigw_request_price(rate * MONTH_SECONDS)
        + price("lambda_request") * (1 + 1 / b)
        + price("sqs_request") * (1 + 2 * chunks / b)
        + price("s3_get") * gets / b
        + price("s3_put") * puts / b
        + _gb_s(integrate, SEQUENCER_MEMORY_GB) / b
        + sync["per_entry"]["log_bytes"] / 1e9 * price("logs_ingest_gb")
    )
    out = "API Gateway responses (data out)"
    async_cost = profiles[-1]["async"]["cost"]
    per_entry = (
        shared
        + _gb_s(first_look + work, WRITE_MEMORY_GB)
        + 3 * price("s3_get")
        + sync["usd_per_million"][out] / 1e6
    )
    async_entry = (
        shared + _gb_s(async_work, WRITE_MEMORY_GB) + async_cost["usd_per_million"][out] / 1e6
    )
    return {
        "rate": rate,
        "window": window,
        "batch_size": batch_size,
        "entries_per_batch": b,
        "integrate_seconds": integrate,
        "keeps_up": float(integrate <= close),
        "latency_seconds": close - (b - 1) / rate / 2 + integrate,
        "write_seconds": first_look + work,
        "usd_per_million": per_entry * 1e6,
        "async_usd_per_million": async_entry * 1e6,
    }


def _gb_s(seconds: float, gb: float) -> float:
    return math.ceil(seconds * 1000) / 1000 * gb * price("lambda_gb_second_arm64")


def rows(result: dict[str, Any]) -> tuple[list[str], list[list[object]]]:
    header = [
        "rate/s",
        "window s",
        "batch size",
        "entries per batch",
        "integration s (fit)",
        "one sequencer keeps up",
        "mean send → checkpoint s",
        "write λ s",
        "USD per million (sync 201)",
        "USD per million (async 202)",
    ]
    out: list[list[object]] = []
    for rate in RATES:
        for window in WINDOWS:
            seen: set[int] = set()
            for size in BATCH_SIZES:
                s = scenario(result, rate, window, size)
                if s["entries_per_batch"] in seen:
                    continue  # the same batches as a smaller size: the same figures
                seen.add(int(s["entries_per_batch"]))
                out.append(
                    [
                        rate,
                        window,
                        size,
                        s["entries_per_batch"],
                        s["integrate_seconds"],
                        "yes" if s["keeps_up"] else "no",
                        s["latency_seconds"],
                        s["write_seconds"],
                        s["usd_per_million"],
                        s["async_usd_per_million"],
                    ]
                )
    return header, out
