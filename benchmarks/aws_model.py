"""The AWS deployment the cost model measures: the Terraform module's defaults it mirrors and the
assumptions it adds (:mod:`benchmarks.aws_cost` explains the model)."""

from __future__ import annotations

from dataclasses import dataclass

BATCH_SIZE = 256  # terraform: sequencer_batch_size
WINDOW = 1.0  # terraform: sequencer_batching_window_seconds
WRITE_MEMORY_GB = 128 / 1024  # terraform: write_memory_mb (peak RSS measured: 70 MB)
ARCHITECTURE = "arm64"  # terraform: lambda_architecture
LAMBDA_GB_SECOND = "lambda_gb_second_arm64"  # its price in benchmarks/prices.py
SEQUENCER_MEMORY_GB = 1024 / 1024  # terraform: sequencer_memory_mb
WAIT_SECONDS = 20  # terraform: write_wait_seconds
POLL_MARGIN = 0.5  # terraform: write_poll_margin_seconds (the sequencer's usual integration time)
FIRST_POLL = WINDOW + POLL_MARGIN  # STELAE_POLL_AFTER_SECONDS, as the module sets it
POLL_INTERVAL = 0.2  # SqsSubmitter's poll_interval after a first look that missed


@dataclass(frozen=True)
class Cadence:
    """When the event source mapping closes a batch: after ``window`` seconds from its first
    message or when it holds ``batch_size`` (terraform: sequencer_batching_window_seconds and
    sequencer_batch_size; the defaults are the module's)."""

    window: float = WINDOW
    batch_size: int = BATCH_SIZE

    def batch(self, rate: float) -> int:
        """Entries per sequencer invocation at a steady ``rate``."""
        return min(self.batch_size, max(1, round(rate * self.window)))

    def close(self, rate: float, batch: int) -> float:
        """Seconds from a batch's first arrival to its close: the window, or filling it."""
        return self.window if batch < self.batch_size else batch / rate

    @property
    def first_poll(self) -> float:
        """STELAE_POLL_AFTER_SECONDS as the module sets it for this window."""
        return self.window + POLL_MARGIN


DEFAULT_CADENCE = Cadence()
"""The module's defaults: window 1 s, batch 256."""
ASYNC_CADENCE = Cadence(window=5.0, batch_size=1000)
"""What the operator of an asynchronous log (nobody waits for the batch) would set: fewer, larger
batches (terraform: sequencer_batching_window_seconds = 5, sequencer_batch_size = 1000)."""

S3_LATENCY = {"GET": 0.025, "PUT": 0.05}
"""Seconds S3 takes to answer, added by the counting proxy in front of moto (which answers in a
millisecond or two): the round trips the handlers wait for in real time (a model, the same as
the ``s3_latency`` benchmark's)."""
ALARMS = 0  # terraform: alarms = false by default (true: 4 — sequencer errors, write errors,
# queue age, DLQ depth — USD 0.40/month)
LOG_RETENTION_DAYS = 30  # terraform: log_retention_days
API_ACCESS_LOG = False  # terraform: api_access_log = false by default: no API Gateway access log
# line per request (priced apart as a variant: one JSON line per write in the module's format)
PLATFORM_LOGS = False  # terraform: log_level = "WARN": Lambda's START/END/REPORT lines (INFO-level
# system logs) are not sent to CloudWatch Logs; True prices them as with log_level = "INFO"

MONTH_SECONDS = 30 * 86_400
ENVIRONMENT_LIFETIME_S = 2 * 3600
"""Assumed life of a busy Lambda execution environment (AWS documents none)."""
ESM_POLLERS = 5
"""Long-polling ReceiveMessage loops an SQS event source mapping keeps running while idle."""
ESM_LONG_POLL_S = 20
LOG_EVENT_OVERHEAD = 26  # bytes CloudWatch Logs adds to each event when metering ingestion

INITIAL_SIZE = 100_000
"""Entries in the log before a profile starts: three tile levels, like any log of 65,536 to
16.7 million entries (``--quick``: an empty log)."""
SERVICE_NAMES = {"s3": "S3", "sqs": "SQS", "ssm": "SSM Parameter Store"}
S3_PUT_CLASS = ("PutObject", "CopyObject", "PostObject", "ListObjects", "ListObjectsV2")
