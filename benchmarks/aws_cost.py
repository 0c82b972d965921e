"""What the AWS deployment costs: requests counted against the emulator, priced at list prices.

The real Lambda handlers run against a moto server (a child process), behind a small
counting HTTP proxy on 127.0.0.1 that classifies every request by caller, service and operation
and forwards it unchanged; boto3 is not patched. One proxy port per caller, so every request is
attributed to the write function, the sequencer function or the event source mapping (ESM):

- **write λ**: each submission is an API Gateway HTTP API payload-2.0 event given to
  ``stelae.lambda.write.handler`` in its own thread. Each invocation runs in an "execution
  environment": a fresh import of the handler module (its own ``service()`` and boto3 clients),
  reused by later invocations when idle, as Lambda does. Environments are created before the
  measured waves (the account's steady state), not counted as cold starts.
- **ESM** (the stand-in for AWS's SQS event source mapping): ``ReceiveMessage`` (≤ 10 messages per
  call, as SQS allows) until the batch is complete, invokes ``stelae.lambda.sequence.handler``
  with a real SQS event, then deletes what succeeded with ``DeleteMessageBatch`` (≤ 10 per call,
  so ⌈n/10⌉ calls per batch).
- **sequencer λ**: one execution environment; its cold start (the SSM ``GetParameter`` and the
  first reads) is counted separately from the steady state.

Three steady profiles, 1, 100 and 1,000 entries/s, with the module's batch size (256), batching
window (1 s) and first look (window + 0.5 s; sooner in an environment whose last receipt carried
the sequencer's advice, ``look_after_ms``: docs/sequencing.md). A profile runs in *waves*, one
per sequencer invocation: ``b = min(256, rate × window)`` entries (1, 100, 256) arriving at the
profile's rate;
the ESM closes the batch when the window expires (``b < 256``) or when it is full (``256 / rate``
s after the first arrival). A warm-up wave (not counted) comes first; then synchronous waves (the
module's 20 s wait) and asynchronous ones (``STELAE_WAIT_SECONDS=0``). At 100 and 1,000/s, more
asynchronous waves follow on the same log at the cadence an asynchronous log's operator would set
(:data:`~benchmarks.aws_model.ASYNC_CADENCE`: window 5 s, batch 1,000, so waves of 500 and 1,000),
the sequencer timed alone again at that batch. Requests per entry are scaled to a million
entries.

**Time is virtual** (:mod:`benchmarks.virtual_time`): a 2-core box cannot run 1,000 entries/s in
real time, and one moto process serving the writers and the sequencer at once made the
sequencer several times slower than alone, so writers used to poll — and be billed — for the
emulator's slowness. Now each write handler sleeps on a discrete-event clock (the submitter's
``sleep``/``clock`` seams); the batch's checkpoint is published on that clock at the close plus
the sequencer's integration time measured alone (best of three batches), the sequencer really
running while every writer is parked. The ESM stand-in gives each record the virtual time its
writer sent it as ``SentTimestamp``, and the sequencer's clock reads the batch's close when the
batch is handed over (:class:`~benchmarks.aws_profile.SequencerClock`), so the advice it writes
is on the same timeline. Every GET is still issued by the real handler and counted; what it finds
depends only on the virtual time of its look. A write's duration is the virtual
time it slept plus the real time it worked (its handler's wall time minus the time parked). S3's
latency (GET 25 ms, PUT 50 ms) is added by the proxy for both functions.

The workload: Rekor v2 hashedrekord requests, each signed with a fresh ECDSA P-256 key (so each
entry adds a leaf record, a digest index list and a key index list; no identity index), every
lookup index on (the default).

Added on top of what the emulator shows (see :func:`~benchmarks.aws_pricing.assumptions`): API
Gateway requests (at the month's volume) and data out, CloudWatch Logs ingestion (the access
log, off by default, and Lambda's system lines, estimated from their formats and shown apart),
alarms (optional), the ESM's idle long polling, Lambda init, S3 storage growth (measured: bytes
listed in the bucket) and CloudFront / S3 reads per 1,000 proof verifications from tiles (tiles
per proof from :mod:`benchmarks.proofs`). Prices: :mod:`benchmarks.prices`.

The code, by concept: :mod:`benchmarks.aws_model` (the deployment's settings and assumptions),
:mod:`benchmarks.aws_emulator` (moto and the counting proxy), :mod:`benchmarks.aws_profile` (one
profile's waves through the real handlers), :mod:`benchmarks.aws_pricing` (what the emulator
cannot show, and the prices); this module runs the profiles and prints the tables.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TextIO

from benchmarks import aws_wake, prices
from benchmarks.aws_cadence import rows as cadence
from benchmarks.aws_emulator import moto_server
from benchmarks.aws_model import (
    ASYNC_CADENCE,
    BATCH_SIZE,
    DEFAULT_CADENCE,
    INITIAL_SIZE,
    SERVICE_NAMES,
    Cadence,
)
from benchmarks.aws_pricing import (
    assumptions,
    cost,
    lambda_init_seconds,
    priced_requests,
    verification_reads,
)
from benchmarks.aws_profile import AsyncRun, run_profile
from benchmarks.table import table

RATES = (1, 100, 1000)
_WAVES = {1: 256, 100: 5, 1000: 4}
"""Measured waves per profile (plus one warm-up wave). 256 batches of one cover a whole cycle of
partial bundles (widths 1…256), which dominates storage at 1 entry/s."""
_QUICK_WAVES = {1: 2, 100: 1, 1000: 1}
_ASYNC_WAVES = {1: 16, 100: 2, 1000: 2}
"""Waves of asynchronous writes after the synchronous ones (``--quick``: one each)."""
_OWN_ASYNC_WAVES = {100: 1, 1000: 1}
"""Waves of asynchronous writes at :data:`~benchmarks.aws_model.ASYNC_CADENCE` (window 5 s, batch
1,000: 500 and 1,000 entries a wave), on the same log after the others; not at 1/s, where a 5 s
window makes batches of 5. One each, so that the whole run stays under about 12 minutes (moto's
SendMessage slows as its queue fills: a wave of 1,000 is the slowest of the run)."""
_QUICK_BATCH_CAP = 8


# -- the benchmark ---------------------------------------------------------------------------------


def run(quick: bool) -> dict[str, Any]:
    try:
        import moto.server  # noqa: F401
    except ImportError as err:
        return {"name": "aws_cost", "quick": quick, "skipped": f"moto is not installed: {err}"}
    waves = _QUICK_WAVES if quick else _WAVES
    init_seconds = lambda_init_seconds()
    profiles = []
    cap = _QUICK_BATCH_CAP if quick else None
    with moto_server() as url:
        for rate in RATES:
            own: AsyncRun | None = None
            if rate in _OWN_ASYNC_WAVES:
                own = (
                    ASYNC_CADENCE,
                    _batch(ASYNC_CADENCE, rate, cap),
                    1 if quick else _OWN_ASYNC_WAVES[rate],
                )
            p = run_profile(
                url,
                rate,
                _batch(DEFAULT_CADENCE, rate, cap),
                waves[rate],
                0 if quick else INITIAL_SIZE,
                async_waves=1 if quick else _ASYNC_WAVES[rate],
                own_async=own,
            )
            for part in (p, p["async"], p.get("own_async")):
                if part is not None:
                    part["cost"] = cost(part, init_seconds)
            profiles.append(p)
    return {
        "name": "aws_cost",
        "quick": quick,
        "profiles": profiles,
        "lambda_init_seconds": init_seconds,
        "verification": verification_reads(),
        "writer_invoke": aws_wake.model({"profiles": profiles}, init_seconds, BATCH_SIZE),
        "assumptions": assumptions(init_seconds) + aws_wake.assumptions(init_seconds),
        "prices": {
            "as_of": prices.AS_OF,
            "region": prices.REGION,
            "items": {k: vars(v) for k, v in prices.PRICES.items()},
        },
    }


def _batch(cadence: Cadence, rate: int, cap: int | None) -> int:
    """Entries per wave: the cadence's batch at ``rate`` (``--quick``: at most ``cap``)."""
    b = cadence.batch(rate)
    return b if cap is None else min(b, cap)


# -- output ----------------------------------------------------------------------------------------

_CALLERS = {"write": "write λ", "sequencer": "sequencer λ", "esm": "ESM"}


def request_rows(result: dict[str, Any]) -> tuple[list[str], list[list[object]]]:
    """Requests per million entries: one row per (service, operation, caller, object kind)."""
    profiles = result["profiles"]
    keys: dict[tuple[str, str, str, str], list[float]] = {}
    for i, p in enumerate(profiles):
        scale = 1e6 / p["entries"]
        for r in priced_requests(p):
            detail = r["detail"] + (" †" if r.get("modelled") else "")
            k = (r["service"], r["operation"], r["caller"], detail)
            keys.setdefault(k, [0.0] * len(profiles))[i] = r["billed"] * scale
    header = ["service", "operation", "caller", "object", *[f"{p['rate']:,}/s" for p in profiles]]
    rows: list[list[object]] = [
        [SERVICE_NAMES.get(k[0], k[0]), k[1], _CALLERS.get(k[2], k[2]), k[3] or "", *v]
        for k, v in sorted(keys.items())
    ]
    extra: list[tuple[str, str, str, str, Callable[[dict[str, Any]], int]]] = [
        ("API Gateway", "HTTP API request", "client", "", lambda p: p["write"]["invocations"]),
        ("Lambda", "Invoke", "API Gateway", "write", lambda p: p["write"]["invocations"]),
        ("Lambda", "Invoke", "ESM", "sequencer", lambda p: p["sequencer"]["invocations"]),
    ]
    for svc, op, caller, obj, f in extra:
        rows.append([svc, op, caller, obj, *[f(p) * 1e6 / p["entries"] for p in profiles]])
    return header, rows


def cost_rows(result: dict[str, Any]) -> tuple[list[str], list[list[object]]]:
    profiles = result["profiles"]
    header = ["item (USD per million entries)", *[f"{p['rate']:,}/s" for p in profiles]]
    names = list(profiles[0]["cost"]["usd_per_million"])
    rows: list[list[object]] = [
        [k, *[p["cost"]["usd_per_million"][k] for p in profiles]] for k in names
    ]
    rows.append(
        ["= total per million entries", *[p["cost"]["usd_per_million_total"] for p in profiles]]
    )
    variants: list[tuple[str, Callable[[dict[str, Any]], float | str]]] = [
        (
            "  … with every HTTP API request at the first tier (USD 1.00 per million)",
            lambda p: p["cost"]["variants"]["apigw_first_tier_usd_per_million_total"],
        ),
        (
            "  … with a Lambda Function URL in front (no API Gateway request)",
            lambda p: p["cost"]["variants"]["function_url_usd_per_million_total"],
        ),
        (
            "  … the access log on (api_access_log = true) adds, not in the totals: +",
            lambda p: p["cost"]["variants"]["access_log_usd_per_million"],
        ),
        (
            "asynchronous (STELAE_WAIT_SECONDS=0: 202 at once), counted",
            lambda p: p["async"]["cost"]["usd_per_million_total"],
        ),
        (
            "  … with a Lambda Function URL in front",
            lambda p: p["async"]["cost"]["variants"]["function_url_usd_per_million_total"],
        ),
        (
            f"asynchronous at its own cadence (window {ASYNC_CADENCE.window:g} s, batch "
            f"{ASYNC_CADENCE.batch_size:,}), counted",
            lambda p: _own(p, "usd_per_million_total"),
        ),
        (
            "  … with a Lambda Function URL in front",
            lambda p: _own(p, "function_url_usd_per_million_total"),
        ),
        (
            "not spent: START/END/REPORT lines log_level WARN keeps out of CloudWatch",
            lambda p: p["cost"]["variants"]["platform_log_lines_usd_per_million"],
        ),
    ]
    rows += [[name, *[f(p) for p in profiles]] for name, f in variants]
    return header, rows


def _own(profile: dict[str, Any], key: str) -> float | str:
    """A figure of the profile's asynchronous run at its own cadence ("—" where none ran)."""
    own = profile.get("own_async")
    if own is None:
        return "—"
    c = own["cost"]
    return float(c[key] if key in c else c["variants"][key])


def month_rows(result: dict[str, Any]) -> tuple[list[str], list[list[object]]]:
    profiles = result["profiles"]
    header = ["per 30-day month at a steady rate", *[f"{p['rate']:,}/s" for p in profiles]]
    rows: list[list[object]] = [
        ["entries", *[float(p["cost"]["month"]["entries"]) for p in profiles]],
        ["entries per sequencer invocation", *[float(p["batch"]) for p in profiles]],
        [
            "sequencer λ s per invocation, alone (priced)",
            *[p["model"]["integrate_seconds"] for p in profiles],
        ],
        [
            "  … of which until its checkpoint is published (what writers wait for)",
            *[p["model"]["publish_seconds"] for p in profiles],
        ],
        [
            "  … in the measured waves (writers parked)",
            *[sum(p["sequencer"]["seconds"]) / p["sequencer"]["invocations"] for p in profiles],
        ],
        [
            "entries/s one sequencer sustains at this batch",
            *[p["batch"] / p["model"]["integrate_seconds"] for p in profiles],
        ],
        [
            "mean SendMessage → checkpoint (s)",
            *[p["model"]["checkpoint_latency_seconds"] for p in profiles],
        ],
        [
            "mean write λ duration, s (priced): virtual wait + real work",
            *[p["model"]["write_seconds"] for p in profiles],
        ],
        [
            "  … of which waiting for the first look or later ones (virtual)",
            *[p["model"]["write_waited_seconds"] for p in profiles],
        ],
        [
            "S3 GETs per write (checkpoint, polls, batch record), counted (priced)",
            *[
                sum(
                    r["calls"]
                    for r in p["requests"]
                    if r["caller"] == "write" and r["operation"] == "GetObject"
                )
                / p["entries"]
                for p in profiles
            ],
        ],
        [
            "  … by the handler's schedule (checkpoint + looks + batch record)",
            *[2 + p["model"]["expected_polls"] / p["entries"] for p in profiles],
        ],
        [
            "write λ peak RSS, MB (fresh interpreter, one write)",
            *[p["write_peak_rss"]["bytes"] / 2**20 for p in profiles],
        ],
        ["write λ concurrency", *[p["cost"]["month"]["write_concurrency"] for p in profiles]],
    ]
    for k in profiles[0]["cost"]["month"]["items"]:
        rows.append([f"USD: {k}", *[p["cost"]["month"]["items"][k] for p in profiles]])
    rows.append(["= USD per month", *[p["cost"]["month"]["total"] for p in profiles]])
    rows.append(
        ["S3 bytes stored per entry", *[p["cost"]["per_entry"]["storage_bytes"] for p in profiles]]
    )
    rows.append(
        ["S3 GB added per month", *[p["cost"]["month"]["storage_gb_added"] for p in profiles]]
    )
    rows.append(
        [
            "+ USD/month added to every later month (storage)",
            *[p["cost"]["month"]["storage_usd_added_per_month"] for p in profiles],
        ]
    )
    rows.append(
        [
            "idle: USD/month (alarms if on, ESM polling)",
            *[p["cost"]["idle"]["total_without_storage"] for p in profiles],
        ]
    )
    rows.append(
        [
            "idle: + USD/month per million entries stored",
            *[p["cost"]["idle"]["storage_usd_per_month_per_million_entries"] for p in profiles],
        ]
    )
    return header, rows


def verification_table(result: dict[str, Any]) -> tuple[list[str], list[list[object]]]:
    header = [
        "tree size",
        "requests / verification",
        "bytes / verification",
        "CloudFront USD / 1,000",
        "S3 origin USD / 1,000 (all misses)",
    ]
    rows: list[list[object]] = [
        [
            v["tree_size"],
            v["requests_per_verification"],
            v["bytes_per_verification"],
            v["cloudfront_usd_per_1000"],
            v["s3_origin_usd_per_1000_all_misses"],
        ]
        for v in result["verification"]
    ]
    return header, rows


def print_result(result: dict[str, Any], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    print(
        "aws_cost — AWS requests and list-price cost per million entries (moto, counted)", file=out
    )
    if "skipped" in result:
        print(f"skipped: {result['skipped']}", file=out)
        return
    for p in result["profiles"]:
        print(
            f"  {p['rate']:,}/s: {p['entries']} entries in {p['waves']} sequencer invocations of "
            f"{p['batch']} (batch closes after {p['close_seconds']:.3g} s), statuses "
            f"{p['statuses']}, {p['wall_seconds']:.1f} s; asynchronous: {p['async']['entries']} "
            f"entries, statuses {p['async']['statuses']}"
            + (
                f"; at its own cadence: {own['entries']} entries in {own['waves']} invocations "
                f"of {own['batch']}, statuses {own['statuses']}"
                if (own := p.get("own_async"))
                else ""
            ),
            file=out,
        )
    for title, (header, rows) in (
        ("requests per million entries", request_rows(result)),
        ("cost per million entries", cost_rows(result)),
        ("per month", month_rows(result)),
        ("reads per 1,000 inclusion proofs verified from tiles", verification_table(result)),
        (
            "batch cadence: windows and batch sizes (a model on the measured figures)",
            cadence(result),
        ),
        (
            "sequencer_trigger = writer_invoke (a model on the measured figures, †)",
            aws_wake.rows(result),
        ),
    ):
        print(f"\n{title}", file=out)
        table(out, header, rows)
    print("\nassumptions:", file=out)
    for a in result["assumptions"]:
        print(f"  - {a}", file=out)


def markdown(result: dict[str, Any]) -> str:
    """The tables as Markdown, for benchmarks/README.md."""

    def cell(v: object) -> str:
        from benchmarks.table import fmt

        return fmt(v)

    parts = []
    for title, (header, rows) in (
        ("Requests per million entries", request_rows(result)),
        ("Cost per million entries (USD)", cost_rows(result)),
        ("Per month at a steady rate", month_rows(result)),
        ("Reads per 1,000 inclusion proofs verified from tiles", verification_table(result)),
        ("Batch cadence (a model on the measured figures)", cadence(result)),
        (
            "sequencer_trigger = writer_invoke (a model on the measured figures, †)",
            aws_wake.rows(result),
        ),
    ):
        lines = [f"**{title}**", "", "| " + " | ".join(header) + " |"]
        numeric = [all(isinstance(row[i], int | float) for row in rows) for i in range(len(header))]
        lines.append("|" + "|".join("---:" if n else "---" for n in numeric) + "|")
        lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"
