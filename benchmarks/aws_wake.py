"""The ``writer_invoke`` way of waking the sequencer, **modelled** on the measured ESM profiles.

With ``sequencer_trigger = "writer_invoke"`` (terraform/README.md; docs/sequencing.md, "Waking
the sequencer on AWS") there is no event source mapping: each write invokes the sequencer
asynchronously after its ``SendMessage``, the sequencer drains the queue in a loop
(:mod:`stelae.sequencer.drain`) and an EventBridge rule sweeps every
``sequencer_sweep_minutes``. Nothing here is run against the emulator: the figures follow from
the profiles :mod:`benchmarks.aws_cost` counted (batch, integration time alone, the ESM's
counted receives and deletes) and the drain loop's own constants, and every assumption is in
:func:`assumptions`.

**Idle, per month**: one sweep every 10 minutes, each a cold start (INIT billed at the
sequencer's memory, the measured import time) that asks ``GetQueueAttributes`` once and
returns; the rule's events are not charged.

**Per entry, against the ESM**, at a steady rate ``r`` with batches of ``b`` integrated in
``I`` seconds: the drain loop stays in its function for as long as entries keep coming (with
arrivals at least once per long poll the queue is never empty for a whole poll), so Lambda bills
the sequencer for all of that time, waiting for windows and arrivals included — the mapping's
pollers wait for free. So the sequencer's GB-s per entry become ``max(1 / r, cycle / b)``
(``cycle`` = integration plus the loop's SQS calls once the backlog fills batches), where the
ESM bills ``I / b``. A loop ends when its time runs short (the function's timeout less what a
batch may need), and the next wake starts another: one billed invocation per loop instead of
one per batch; the writers' other wakes, throttled at reserved concurrency 1, age out after
60 s and are never billed. The loop receives and deletes in place of the mapping, with fewer
messages per receive while a batch trickles in. Each write waits about 20 ms more for its
``Invoke``.
"""

from __future__ import annotations

import math
from typing import Any

from benchmarks.aws_model import (
    LAMBDA_GB_SECOND,
    MONTH_SECONDS,
    SEQUENCER_MEMORY_GB,
    WINDOW,
    WRITE_MEMORY_GB,
)
from benchmarks.prices import price
from stelae.sequencer.drain import (
    GATHER_PAUSE_SECONDS,
    INTEGRATION_SECONDS,
    LONG_POLL_SECONDS,
    MARGIN_SECONDS,
    SQS_MAX_MESSAGES,
)

SWEEP_MINUTES = 10  # terraform: sequencer_sweep_minutes
SEQUENCER_TIMEOUT_S = 120  # terraform: sequencer_timeout_seconds
WAKE_SECONDS = 0.020
"""What the writer's asynchronous ``Invoke`` adds to a write (Lambda answers 202 at once; not
measured here)."""
SQS_CALL_SECONDS = 0.010
"""One SQS call from the sequencer in the same region (not measured here; moto answers in about
a millisecond): the drain loop waits for its receives and deletes, billed."""

RATE_HEADER = "writer_invoke − ESM, USD per million entries †"


def _gb_s(seconds: float, gb: float) -> float:
    return seconds * gb * price(LAMBDA_GB_SECOND)


def idle_month(init_seconds: float) -> dict[str, float]:
    """USD a month for an idle log in writer_invoke mode, by item (storage apart)."""
    sweeps = MONTH_SECONDS / (SWEEP_MINUTES * 60)
    billed = math.ceil((init_seconds + SQS_CALL_SECONDS) * 1000) / 1000
    return {
        "sweeps a month": sweeps,
        "Lambda sequencer: requests": sweeps * price("lambda_request"),
        "Lambda sequencer: GB-s (INIT + one GetQueueAttributes)": sweeps
        * _gb_s(billed, SEQUENCER_MEMORY_GB),
        "SQS GetQueueAttributes": sweeps * price("sqs_request"),
        "EventBridge scheduled events": sweeps * price("eventbridge_scheduled_event"),
    }


def idle_total(items: dict[str, float]) -> float:
    return sum(v for k, v in items.items() if k != "sweeps a month")


def _esm_side(profile: dict[str, Any]) -> dict[str, float]:
    """Per entry, what the mapping costs in the measured profile and writer_invoke replaces."""
    n = profile["entries"]
    runs = profile["sequencer"]["invocations"]
    sqs = sum(r["billed"] for r in profile["requests"] if r["caller"] == "esm")
    billed = math.ceil(profile["model"]["integrate_seconds"] * 1000) / 1000
    return {
        "requests": runs / n * price("lambda_request"),
        "gb_s": runs * _gb_s(billed, SEQUENCER_MEMORY_GB) / n,
        "sqs": sqs / n * price("sqs_request"),
    }


def per_entry(profile: dict[str, Any], batch_size: int) -> dict[str, float]:
    """writer_invoke's per-entry costs at the profile's rate and batch, and the loop's shape."""
    rate, b = float(profile["rate"]), int(profile["batch"])
    window = float(profile.get("window", WINDOW))
    integrate = float(profile["model"]["integrate_seconds"])
    deletes = math.ceil(b / SQS_MAX_MESSAGES)
    # While a batch trickles in, the loop pauses GATHER_PAUSE_SECONDS after a receive of fewer
    # than ten, so a receive returns what arrived during a pause and a call (at least one
    # message); a backlog comes ten at a time. One more receive closes the window.
    per_receive = min(SQS_MAX_MESSAGES, max(1.0, rate * (GATHER_PAUSE_SECONDS + SQS_CALL_SECONDS)))
    receives = math.ceil(b / per_receive) + 1
    # Once the window has closed: integrate, then delete; what arrived meanwhile is received
    # at once, ten at a time, by the next batch's first receives.
    cycle = integrate + deletes * SQS_CALL_SECONDS
    fill = window if b < batch_size else math.ceil(b / SQS_MAX_MESSAGES) * SQS_CALL_SECONDS
    keeps_up = rate * (fill + cycle) <= batch_size if b < batch_size else b / (fill + cycle) >= rate
    continuous = rate * (window + cycle + LONG_POLL_SECONDS) >= 1
    needed = 2 * LONG_POLL_SECONDS + window + max(INTEGRATION_SECONDS, integrate) + MARGIN_SECONDS
    if continuous:
        # Billed the whole time entries arrive; behind (it does not keep up), for the time it
        # takes per batch, while the queue grows.
        seconds = 1 / rate if keeps_up else (fill + cycle) / b
        invocations = 1 / (rate * (SEQUENCER_TIMEOUT_S - needed))
    else:
        # Each batch its own invocation: its window, its integration, the empty long poll.
        seconds = (window + cycle + LONG_POLL_SECONDS) / b
        invocations = 1 / b
        receives += 1
    return {
        "requests": invocations * price("lambda_request"),
        "gb_s": _gb_s(seconds, SEQUENCER_MEMORY_GB),
        "sqs": (receives + deletes) / b * price("sqs_request"),
        "write_gb_s": _gb_s(WAKE_SECONDS, WRITE_MEMORY_GB),
        "keeps_up": float(keeps_up),
        "continuous": float(continuous),
        "sequencer_seconds_per_entry": seconds,
        "invocations_per_entry": invocations,
        "receives_per_batch": float(receives),
    }


def difference(profile: dict[str, Any], batch_size: int) -> dict[str, float]:
    """writer_invoke minus the ESM, USD per million entries, by item, and its total."""
    esm, wake = _esm_side(profile), per_entry(profile, batch_size)
    items = {
        "write λ: the Invoke's ~20 ms (GB-s)": wake["write_gb_s"],
        "sequencer λ: requests (one per drain loop, not per batch)": wake["requests"]
        - esm["requests"],
        "sequencer λ: GB-s (billed while the loop waits and polls)": wake["gb_s"] - esm["gb_s"],
        "SQS: the loop's receives and deletes instead of the ESM's": wake["sqs"] - esm["sqs"],
    }
    out = {k: v * 1e6 for k, v in items.items()}
    out["= difference per million entries"] = sum(out.values())
    return out


def model(result: dict[str, Any], init_seconds: float, batch_size: int) -> dict[str, Any]:
    """The writer_invoke figures for :mod:`benchmarks.aws_cost`'s result."""
    idle = idle_month(init_seconds)
    return {
        "idle": {"items": idle, "total_without_storage": idle_total(idle)},
        "profiles": [
            {
                "rate": p["rate"],
                "difference_usd_per_million": difference(p, batch_size),
                "loop": per_entry(p, batch_size),
            }
            for p in result["profiles"]
        ],
    }


def rows(result: dict[str, Any]) -> tuple[list[str], list[list[object]]]:
    """The model as a table: idle per month, then the per-entry difference by rate."""
    w = result["writer_invoke"]
    header = ["writer_invoke mode (modelled †)", *[f"{p['rate']:,}/s" for p in w["profiles"]]]
    width = len(w["profiles"])
    out: list[list[object]] = []
    for k, v in w["idle"]["items"].items():
        out.append([f"idle: {k} †", v, *[""] * (width - 1)])
    out.append(
        [
            "idle: = USD per month (storage apart) †",
            w["idle"]["total_without_storage"],
            *[""] * (width - 1),
        ]
    )
    for k in w["profiles"][0]["difference_usd_per_million"]:
        out.append(
            [f"per entry: {k} †", *[p["difference_usd_per_million"][k] for p in w["profiles"]]]
        )
    out.append(
        [
            "  one drain loop keeps up at the module's batch size †",
            *["yes" if p["loop"]["keeps_up"] else "no" for p in w["profiles"]],
        ]
    )
    out.append(
        [
            "  sequencer λ s billed per entry (ESM: integration / batch) †",
            *[p["loop"]["sequencer_seconds_per_entry"] for p in w["profiles"]],
        ]
    )
    return header, out


def assumptions(init_seconds: float) -> list[str]:
    return [
        "writer_invoke (modelled †, not run): idle = one EventBridge sweep every "
        f"{SWEEP_MINUTES} min ({MONTH_SECONDS // (SWEEP_MINUTES * 60):,} a month), each a cold "
        f"start whose INIT is billed at the sequencer's {int(SEQUENCER_MEMORY_GB * 1024)} MB "
        f"({init_seconds:.2f} s, the measured import time of both handlers: an upper bound for "
        "the sweep, which imports less) plus one GetQueueAttributes (one SQS request, "
        f"{SQS_CALL_SECONDS * 1000:.0f} ms); no log line (WARN). EventBridge's scheduled "
        "rules are not charged per event (benchmarks/prices.py; even at the custom-event price "
        "of USD 1.00 per million the sweeps would add USD 0.004 a month). The ESM's idle "
        "polling is gone.",
        "writer_invoke per entry, against the ESM at the same batches (b, the integration "
        "time I measured alone): with arrivals at least once per "
        f"{LONG_POLL_SECONDS} s long poll after a batch (regular arrivals, as in the "
        "profiles: all three rates), a drain loop never finds the queue empty and is billed "
        "for all its time, waiting included: 1/rate seconds per entry at the sequencer's "
        "memory (where it does not keep up, (fill + I + deletes) / b, and the queue grows), "
        "where the ESM bills I / b; more sparse "
        "arrivals would make each batch its own invocation (window + I + the 1 s empty long "
        "poll). A loop runs until its time left cannot fit a batch "
        f"({SEQUENCER_TIMEOUT_S} s timeout less two long polls + window + "
        f"max({INTEGRATION_SECONDS:g} s, I) + {MARGIN_SECONDS:g} s), then the next wake starts "
        "one: one billed request per loop; the other wakes are throttled (reserved "
        "concurrency 1), dropped after 60 s and not billed (Lambda bills invocations that "
        "run).",
        f"writer_invoke SQS: each SQS call takes {SQS_CALL_SECONDS * 1000:.0f} ms (assumed); "
        "while a batch fills from arrivals, the loop pauses "
        f"{GATHER_PAUSE_SECONDS:g} s after a receive of fewer than 10, so a receive returns what "
        "arrived during a pause and a call (at least one message, at most 10), plus one "
        "receive that closes the window; a backlog "
        "comes 10 at a time; DeleteMessageBatch ≤ 10 per call, as the ESM. The ESM side is "
        "its counted receives and deletes (the stand-in receives each batch after its close, "
        "10 at a time: fewer than AWS's pollers may need). Batches are taken as the ESM's "
        "(the loop's are a little larger: entries that arrive during an integration join the "
        "next batch; not credited; a batch also closes when a whole 1 s long poll brings "
        "nothing, which at these rates does not happen). A loop ends by its "
        "time, not by an empty poll, at these steady rates. Each write waits "
        f"{WAKE_SECONDS * 1000:.0f} ms more for its asynchronous Invoke (assumed), billed at "
        f"{int(WRITE_MEMORY_GB * 1024)} MB.",
    ]
