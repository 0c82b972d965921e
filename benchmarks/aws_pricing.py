"""Pricing of the AWS cost model: what the emulator cannot show (log bytes, Lambda init, reads
per verified proof) and the measured counts multiplied by list prices (:mod:`benchmarks.prices`).
:mod:`benchmarks.aws_cost` explains the model.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import uuid
from typing import Any

from benchmarks import prices, proofs
from benchmarks.aws_emulator import FAKE_CREDENTIALS
from benchmarks.aws_model import (
    ALARMS,
    API_ACCESS_LOG,
    ARCHITECTURE,
    ENVIRONMENT_LIFETIME_S,
    ESM_LONG_POLL_S,
    ESM_POLLERS,
    INITIAL_SIZE,
    LAMBDA_GB_SECOND,
    LOG_EVENT_OVERHEAD,
    LOG_RETENTION_DAYS,
    MONTH_SECONDS,
    PLATFORM_LOGS,
    S3_PUT_CLASS,
    SEQUENCER_MEMORY_GB,
    WRITE_MEMORY_GB,
)
from benchmarks.prices import price

# -- what the emulator cannot show -----------------------------------------------------------------


def platform_log_bytes(cold: bool = False) -> int:
    """CloudWatch Logs bytes of the START, END and REPORT lines Lambda writes per invocation."""
    rid = str(uuid.uuid4())
    lines = [
        f"START RequestId: {rid} Version: $LATEST\n",
        f"END RequestId: {rid}\n",
        f"REPORT RequestId: {rid}\tDuration: 1234.56 ms\tBilled Duration: 1235 ms\t"
        f"Memory Size: 1024 MB\tMax Memory Used: 123 MB\t"
        + ("Init Duration: 812.34 ms\t" if cold else "")
        + "\n",
    ]
    return sum(len(x) + LOG_EVENT_OVERHEAD for x in lines)


def access_log_bytes() -> int:
    """One API Gateway access log line in the module's JSON format (terraform main.tf)."""
    line = json.dumps(
        {
            "requestId": "Ab1CdEfGhIjKlM=",
            "ip": "203.0.113.7",
            "requestTime": "25/Nov/2026:06:26:55 +0000",
            "routeKey": "POST /api/v2/log/entries",
            "status": "201",
            "responseLength": "2345",
            "latency": "1234",
            "error": "-",
        }
    )
    return len(line) + 1 + LOG_EVENT_OVERHEAD


def lambda_init_seconds() -> float:
    """A cold start's init: a fresh interpreter importing both handlers and building the write
    service (no network), the best of three. Lambda's own runtime start-up is not included."""
    from stelae.tiles.notekeys import Ed25519NoteSigner

    code = (
        "import time, importlib, os; t = time.perf_counter(); "
        "w = importlib.import_module('stelae.lambda.write'); "
        "importlib.import_module('stelae.lambda.sequence'); w.service(); "
        "print(time.perf_counter() - t)"
    )
    env = {
        **os.environ,
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "STELAE_BUCKET": "b",
        "STELAE_QUEUE_URL": "http://127.0.0.1:9/q",
        "STELAE_VKEY": Ed25519NoteSigner.generate("init.example").vkey,
    }
    best = math.inf
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        best = min(best, float(out.stdout.strip()))
    return best


def verification_reads(seed: int = 6) -> list[dict[str, Any]]:
    """Per 1,000 inclusion proofs verified from tiles: CloudFront requests, bytes and cost.

    A verifier reads the checkpoint and the distinct tiles of the proof (``benchmarks.proofs``);
    a writer verifying the proof in its write response reads nothing.
    """
    rng = random.Random(seed)
    checkpoint_bytes = 250  # origin line, size, root, one Ed25519 signature line
    out = []
    for size in (10**6, 10**9):
        tiles = total_bytes = 0
        n = 256
        for _ in range(n):
            paths = set(proofs.inclusion_fetches(rng.randrange(size), size))
            tiles += len(paths)
            for p in paths:
                w = p.rsplit(".p/", 1)
                total_bytes += 32 * (int(w[1]) if len(w) == 2 else 256)
        req = 1 + tiles / n
        nbytes = checkpoint_bytes + total_bytes / n
        out.append(
            {
                "tree_size": size,
                "requests_per_verification": req,
                "bytes_per_verification": nbytes,
                "cloudfront_usd_per_1000": 1000
                * (
                    req * price("cloudfront_https_request")
                    + nbytes / 1e9 * price("cloudfront_gb_out")
                ),
                "s3_origin_usd_per_1000_all_misses": 1000 * req * price("s3_get"),
            }
        )
    return out


# -- pricing ---------------------------------------------------------------------------------------


def apigw_request_price(month_requests: float) -> float:
    """The mean price of one HTTP API request in a month of ``month_requests``: the first 300
    million at the first tier, the rest at the second. The tiers count an account's requests in
    a region; this log's API is taken to be the account's only HTTP API traffic."""
    first = min(month_requests, prices.APIGW_HTTP_FIRST_TIER_REQUESTS)
    usd = first * price("apigw_http_request") + (month_requests - first) * price(
        "apigw_http_request_over_300m"
    )
    return usd / month_requests if month_requests > 0 else price("apigw_http_request")


def _billed_ms(seconds: float) -> float:
    return math.ceil(seconds * 1000)


def priced_requests(profile: dict[str, Any]) -> list[dict[str, Any]]:
    """The requests as counted: the write function's looks included, issued by the real handler
    on the virtual clock (:mod:`benchmarks.virtual_time`), where each checkpoint is published
    when the sequencer alone would have published it."""
    return [dict(r) for r in profile["requests"]]


def cost(profile: dict[str, Any], init_seconds: float) -> dict[str, Any]:
    """Requests and dollars per million entries, per month at the profile's rate, and idle."""
    n = profile["entries"]
    scale = 1e6 / n
    rows = priced_requests(profile)
    model = profile["model"]

    def total(field: str, pred: Any) -> float:
        return float(sum(r[field] for r in rows if pred(r)))

    s3_put = total(
        "calls", lambda r: r["service"] == "s3" and r["operation"].startswith(S3_PUT_CLASS)
    )
    s3_get = total(
        "calls", lambda r: r["service"] == "s3" and not r["operation"].startswith(S3_PUT_CLASS)
    )
    sqs = total("billed", lambda r: r["service"] == "sqs")
    w, s = profile["write"], profile["sequencer"]
    # One HTTP API request per write, priced at the month's volume at this rate.
    apigw = apigw_request_price(profile["rate"] * MONTH_SECONDS)
    write_gbs = n * _billed_ms(model["write_seconds"]) / 1000 * WRITE_MEMORY_GB
    seq_gbs = s["invocations"] * _billed_ms(model["integrate_seconds"]) / 1000 * SEQUENCER_MEMORY_GB
    platform_bytes = (w["invocations"] + s["invocations"]) * platform_log_bytes()
    access_bytes = w["invocations"] * access_log_bytes()
    log_bytes = (
        (access_bytes if API_ACCESS_LOG else 0)
        + (platform_bytes if PLATFORM_LOGS else 0)
        + profile["app_log"]["bytes"]
    )
    items = {
        "API Gateway HTTP API requests": w["invocations"] * apigw,
        "API Gateway responses (data out)": w["response_bytes"] / 1e9 * price("internet_gb_out"),
        "Lambda write: requests": w["invocations"] * price("lambda_request"),
        "Lambda write: GB-s": write_gbs * price(LAMBDA_GB_SECOND),
        "Lambda sequencer: requests": s["invocations"] * price("lambda_request"),
        "Lambda sequencer: GB-s": seq_gbs * price(LAMBDA_GB_SECOND),
        "SQS requests": sqs * price("sqs_request"),
        "S3 PUT-class requests": s3_put * price("s3_put"),
        "S3 GET-class requests": s3_get * price("s3_get"),
        "CloudWatch Logs ingestion": log_bytes / 1e9 * price("logs_ingest_gb"),
    }
    per_million = {k: v * scale for k, v in items.items()}
    per_million_total = sum(per_million.values())
    variants = {
        # What log_level = "WARN" saves: Lambda's START/END/REPORT lines are INFO-level.
        "platform_log_lines_usd_per_million": platform_bytes
        * scale
        / 1e9
        * price("logs_ingest_gb"),
        # Every HTTP API request at the first tier, as if the month held under 300 million.
        "apigw_first_tier_usd_per_million_total": per_million_total
        + w["invocations"] * scale * (price("apigw_http_request") - apigw),
        # What api_access_log = true adds (or, on, what false saves): a line per request.
        "access_log_usd_per_million": access_bytes * scale / 1e9 * price("logs_ingest_gb"),
        # write_front_door = "function_url": no API Gateway request, no access log line.
        "function_url_usd_per_million_total": per_million_total
        - per_million["API Gateway HTTP API requests"]
        - (access_bytes * scale / 1e9 * price("logs_ingest_gb") if API_ACCESS_LOG else 0),
    }

    rate = profile["rate"]
    month_entries = rate * MONTH_SECONDS
    mean_write = model["write_seconds"]
    write_concurrency = rate * mean_write  # Little's law
    recycles = MONTH_SECONDS / ENVIRONMENT_LIFETIME_S
    write_inits = max(1.0, write_concurrency) * recycles
    seq_inits = recycles  # one environment, busy all the time
    esm_idle = ESM_POLLERS * MONTH_SECONDS / ESM_LONG_POLL_S
    storage_per_entry = profile["storage"]["bytes"] / n
    storage_gb_month = storage_per_entry * month_entries / 1e9
    log_gb_month = log_bytes * scale * month_entries / 1e6 / 1e9
    fixed = {
        # The key is a standard SecureString parameter: no monthly fee, GetParameter free at
        # standard throughput (https://aws.amazon.com/systems-manager/pricing/).
        f"CloudWatch alarms ({ALARMS}; optional, off by default)": ALARMS * price("alarm_month"),
        f"ESM idle long polling ({ESM_POLLERS} pollers)": esm_idle * price("sqs_request"),
    }
    busy = {
        "per-entry costs above": per_million_total * month_entries / 1e6,
        "Lambda init (cold starts)": (
            write_inits * WRITE_MEMORY_GB + seq_inits * SEQUENCER_MEMORY_GB
        )
        * init_seconds
        * price(LAMBDA_GB_SECOND),
        "CloudWatch Logs storage (30 days retained)": log_gb_month
        * price("logs_storage_gb_month")
        * LOG_RETENTION_DAYS
        / 30,
        **fixed,
    }
    return {
        "per_entry": {
            "s3_put": s3_put / n,
            "s3_get": s3_get / n,
            "sqs_billed": sqs / n,
            "log_bytes": log_bytes / n,
            "storage_bytes": storage_per_entry,
            "write_seconds": mean_write,
            "sequencer_seconds": s["invocations"] * model["integrate_seconds"] / n,
        },
        "usd_per_million": per_million,
        "usd_per_million_total": per_million_total,
        "variants": variants,
        "month": {
            "entries": month_entries,
            "write_concurrency": write_concurrency,
            "items": busy,
            "total": sum(busy.values()),
            "storage_gb_added": storage_gb_month,
            "storage_usd_added_per_month": storage_gb_month * price("s3_storage_gb_month"),
        },
        "idle": {
            "items": fixed,
            "total_without_storage": sum(fixed.values()),
            "storage_usd_per_month_per_million_entries": storage_per_entry
            * 1e6
            / 1e9
            * price("s3_storage_gb_month"),
        },
    }


def assumptions(init_seconds: float) -> list[str]:
    return [
        f"Prices: {prices.REGION} list prices as published by AWS in {prices.AS_OF} "
        "(benchmarks/prices.py, each with its page); not fetched by the benchmark: check them. "
        "Free tiers ignored.",
        "A month is 30 days. Storage: S3 Standard bytes listed in the bucket after the measured "
        "waves minus before, per entry; every month of traffic adds that much for as long as the "
        "log is kept (nothing is ever deleted).",
        f"Lambda {ARCHITECTURE}, write {int(WRITE_MEMORY_GB * 1024)} MB, sequencer "
        f"{int(SEQUENCER_MEMORY_GB * 1024)} MB (module defaults), rounded up to 1 ms per "
        "invocation. Time is virtual (benchmarks/virtual_time.py): the write handlers sleep on a "
        "discrete-event clock, each batch's checkpoint is published there when the ESM closes "
        "the batch plus the sequencer's integration time measured alone (best of three "
        "batches; the emulator's own slowness is not charged to the writers), and the real "
        "handler issues every GET it would, counted. Write duration = virtual time slept + real "
        "time working (verification, SendMessage, GETs, proof). S3 answers after 25 ms (GET) "
        "and 50 ms (PUT), added by the proxy in front of moto (a model of S3's latency): both "
        "functions wait for it in real time.",
        f"Each profile starts from a log of {INITIAL_SIZE:,} entries (written directly, not "
        "counted), so batches update three tile levels as in any log of 65,536 to 16.7 million "
        "entries; a log past 16.7 million writes one more tile per batch (and a writer may read "
        "one more tile).",
        f"Execution environments live {ENVIRONMENT_LIFETIME_S // 3600} h (AWS documents no "
        "lifetime); write concurrency = rate × mean write duration (Little's law); each "
        f"environment's init ({init_seconds:.2f} s measured: a fresh interpreter importing the "
        "handlers; Lambda's own runtime start not included) is billed as GB-s, and each "
        "sequencer cold start calls SSM GetParameter once (free at standard throughput).",
        f"The ESM: measured ReceiveMessage calls (one poller filling the batch) plus, always, "
        f"{ESM_POLLERS} pollers long-polling every {ESM_LONG_POLL_S} s (AWS starts SQS event "
        "sources with five pollers; an upper bound while busy). DeleteMessageBatch deletes at "
        "most 10 messages per call.",
        "SQS: each 64 KB chunk of a request or response is one billed request.",
        "CloudWatch Logs: no API Gateway access log (the module's api_access_log is false by "
        "default; with it on, one line per write in the module's JSON format + 26 bytes per "
        "event, estimated from the format, is shown apart and excluded from the totals); no "
        "START/END/REPORT lines (the module's log_level WARN filters Lambda's INFO-level "
        "system logs; their cost at INFO is shown apart); the handlers log nothing at WARNING "
        "or above on success (counted in the run).",
        "API Gateway: one HTTP API request per write (requests < 512 KB), priced at the "
        "month's volume at the profile's rate (USD 1.00 per million for the first 300 million "
        "a month, 0.90 beyond: 100/s is 259 million a month, all at the first tier; 1,000/s "
        "is 2.59 billion, a blend of 0.912 per million), taking this log's API to be the "
        "account's only HTTP API traffic in the region; the first-tier price alone is shown "
        "apart. Response bodies as data out at EC2 internet rates.",
        "Workload: hashedrekord v2 entries, a fresh ECDSA P-256 key each, every lookup index on.",
    ]
