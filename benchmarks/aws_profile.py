"""One profile of the AWS cost model: the real Lambda handlers run against the emulator in waves.

Execution environments (a fresh import of a handler module each, reused when idle), the write
submissions and the stand-in for the SQS event source mapping, all on the virtual clock of
:mod:`benchmarks.virtual_time`. :mod:`benchmarks.aws_cost` explains the model;
:mod:`benchmarks.aws_emulator` counts the requests.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import logging
import math
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

from benchmarks.aws_emulator import FAKE_CREDENTIALS, CountingProxy, Tally, environment, proxies
from benchmarks.aws_model import (
    DEFAULT_CADENCE,
    FIRST_POLL,
    POLL_INTERVAL,
    S3_LATENCY,
    WAIT_SECONDS,
    Cadence,
)
from benchmarks.lambda_events import apigw_event, sqs_event
from benchmarks.virtual_time import VirtualTime

# -- execution environments ------------------------------------------------------------------------

_INIT_LOCK = threading.Lock()  # boto3's default session is not thread-safe; env is per process
_HANDLERS = Path(__file__).resolve().parent.parent / "stelae" / "lambda"


def _load_handler(file: str, endpoint: str) -> ModuleType:
    """A fresh import of a handler module with its clients built against ``endpoint``."""
    with _INIT_LOCK:
        name = f"_stelae_lambda_{file}_{uuid.uuid4().hex[:12]}"
        spec = importlib.util.spec_from_file_location(name, _HANDLERS / f"{file}.py")
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        with environment({"AWS_ENDPOINT_URL": endpoint}):
            if file == "write":
                mod.service()
            else:
                mod.sequencer()
        return mod


class SentOnVirtualTime:
    """The write function's SQS client, noting the virtual time each message was sent (by its
    MessageId, in ``sent``): the ESM stand-in gives the sequencer those times as the records'
    ``SentTimestamp``, which on AWS SQS stamps when it accepts the message. Every call is the
    real client's."""

    def __init__(self, sqs: Any, clock: VirtualTime, sent: dict[str, float]) -> None:
        self._sqs = sqs
        self._clock = clock
        self._sent = sent

    def send_message(self, **kwargs: Any) -> Any:
        at = self._clock.now()  # constant while the writer runs: its send time
        answer = self._sqs.send_message(**kwargs)
        self._sent[answer["MessageId"]] = at
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)


def on_virtual_time(mod: ModuleType, clock: VirtualTime, sent: dict[str, float]) -> None:
    """Make a write environment's submitter wait on ``clock``: a copy of the one its handler
    built (same clients, store, verifier and schedule), given the virtual ``sleep`` and
    ``clock`` seams, its SendMessages noted in ``sent``; the service is the handler's own."""
    from stelae.sequencer.sqs import SqsSubmitter

    service = mod.service()
    real = service.submitter
    assert isinstance(real, SqsSubmitter)
    service.submitter = SqsSubmitter(
        SentOnVirtualTime(real.sqs, clock, sent),
        real.queue_url,
        real.store,
        real.verifier,
        first_poll=real.first_poll,
        duplicate_after=real.duplicate_after,
        poll_interval=real.poll_interval,
        look_slack=real.look_slack,
        look_floor=real.look_floor,
        sleep=clock.sleep,
        clock=clock.now,
    )


class WritePool:
    """Execution environments of the write function: an idle one is reused, else one is made."""

    def __init__(self, endpoint: str, clock: VirtualTime, sent: dict[str, float]) -> None:
        self.endpoint = endpoint
        self.clock = clock
        self.sent = sent
        self.idle: list[ModuleType] = []
        self.lock = threading.Lock()
        self.created = 0

    def prewarm(self, n: int) -> None:
        while self.created < n:
            self.release(self._new())

    def _new(self) -> ModuleType:
        mod = _load_handler("write", self.endpoint)
        on_virtual_time(mod, self.clock, self.sent)
        with self.lock:
            self.created += 1
        return mod

    def acquire(self) -> ModuleType:
        with self.lock:
            if self.idle:
                return self.idle.pop()
        return self._new()

    def release(self, mod: ModuleType) -> None:
        with self.lock:
            self.idle.append(mod)


# -- submissions -----------------------------------------------------------------------------------


def submissions(n: int, tag: str) -> list[dict[str, Any]]:
    """``n`` hashedrekord v2 submissions, each signed with its own fresh ECDSA P-256 key."""
    from stelae.client import signing

    out = []
    for i in range(n):
        key = signing.generate_key("ecdsa-p256")
        artifact = f"aws_cost {tag} artifact {i}".encode()
        _, dg = signing.digest(key, artifact)
        out.append(
            apigw_event(
                "/api/v2/log/entries",
                signing.build_v2_hashedrekord(signing.sign_artifact(key, artifact), key, dg),
            )
        )
    return out


# -- one profile -----------------------------------------------------------------------------------


@dataclass
class Invocation:
    seconds: float
    status: int = 0
    response_bytes: int = 0
    entries: int = 0
    waited: float = 0.0
    """Virtual seconds the write slept (``seconds`` = this + the real time it worked)."""
    looks: int = 0
    """Checkpoint GETs after SendMessage by the submitter's schedule: its first look (as its
    last receipt advised, or ``first_poll``), then every ``poll_interval``, up to the first
    after its batch's publication. What the counted GETs must add up to (virtual time)."""


class _LogBytes(logging.Handler):
    """What the handlers log at the Lambda runtime's default level (WARNING and above)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.bytes = 0
        self.events = 0

    def emit(self, record: logging.LogRecord) -> None:
        # The Python runtime's text format: "[LEVEL]\t<time>\t<request id>\t<message>\n".
        self.bytes += len(self.format(record).encode()) + 70
        self.events += 1


class Deployment:
    """One log on the emulator (bucket, queue, secret) and the callers that drive it."""

    def __init__(
        self, moto_url: str, servers: dict[str, CountingProxy], first_poll: float = FIRST_POLL
    ) -> None:
        import boto3

        from stelae.tiles.notekeys import Ed25519NoteSigner

        self.name = f"cost{uuid.uuid4().hex[:10]}"
        self.moto_url = moto_url
        self.signer = signer = Ed25519NoteSigner.generate(f"{self.name}.log.example")

        def client(service: str, url: str) -> Any:
            return boto3.client(service, endpoint_url=url, region_name="us-east-1")

        with _INIT_LOCK:
            self.s3 = client("s3", moto_url)  # the harness: not counted
            sqs, ssm = client("sqs", moto_url), client("ssm", moto_url)
            self.esm_sqs = client("sqs", servers["esm"].url)
        self.s3.create_bucket(Bucket=self.name)
        self.queue_url = sqs.create_queue(
            QueueName=self.name,
            Attributes={"VisibilityTimeout": "720", "ReceiveMessageWaitTimeSeconds": "20"},
        )["QueueUrl"]
        self.queue_arn = f"arn:aws:sqs:us-east-1:123456789012:{self.name}"
        parameter = f"/{self.name}/signing-key"
        ssm.put_parameter(Name=parameter, Value=signer.skey, Type="SecureString")
        self.env = {
            "STELAE_BUCKET": self.name,
            "STELAE_QUEUE_URL": self.queue_url,
            "STELAE_VKEY": signer.vkey,
            "STELAE_SIGNING_KEY_PARAM": parameter,
            # The module's: on the virtual clock the emulator's slowness costs no waiting.
            "STELAE_WAIT_SECONDS": str(WAIT_SECONDS),
            # As the module sets it: the first look when the batching window can have closed
            # and the sequencer integrated the batch.
            "STELAE_POLL_AFTER_SECONDS": str(first_poll),
            "STELAE_PREFIX": None,
            "STELAE_INDEXES": None,
        }
        self.servers = servers
        self.writes: list[Invocation] = []
        self.sequencer_runs: list[Invocation] = []
        self.lock = threading.Lock()
        self.sequencer: ModuleType | None = None
        self.time = VirtualTime()
        # Virtual time 0 is this moment on the epoch: SentTimestamps and the sequencer's clock
        # (SequencerClock) are both read on it.
        self.epoch = time.time()
        self.sent: dict[str, float] = {}
        self.sequencer_clock = SequencerClock(self.epoch)
        self.published_at = 0.0
        """Virtual time the current wave's checkpoint is published (its writers' looks end)."""
        self.pool = WritePool(servers["write"].url, self.time, self.sent)

    def bootstrap(self, size: int, body_bytes: int) -> None:
        """Grow the log to ``size`` small entries first, directly (not counted), so that the
        measured batches see a log with the right edge of a real one (tile levels 0-2)."""
        from stelae.sequencer.engine import Sequencer, SequencerConfig
        from stelae.sequencer.pending import PendingEntry
        from stelae.sequencer.s3 import S3Store

        with _INIT_LOCK:
            store = S3Store(self.name, endpoint_url=self.moto_url, region_name="us-east-1")
        # The lookup index on (the Lambda's sequencer refuses a log without it); no signed
        # entry timestamps, which nobody reads back from the bootstrap entries.
        config = SequencerConfig(self.signer.name, entry_timestamps=False, background_merges=False)
        seq = Sequencer(store, self.signer, config)
        try:
            for k in range(0, size, 4096):
                n = min(4096, size - k)
                seq.integrate(
                    [
                        PendingEntry((b"bootstrap entry %d " % i).ljust(body_bytes, b"."))
                        for i in range(k, k + n)
                    ]
                )
                seq.merge()
        finally:
            seq.close()

    def start_sequencer(self) -> float:
        t0 = time.perf_counter()
        self.sequencer = _load_handler("sequence", self.servers["sequencer"].url)
        seconds = time.perf_counter() - t0
        on_sequencer_clock(self.sequencer, self.sequencer_clock)
        return seconds

    def stored_bytes(self) -> tuple[int, int]:
        """(objects, bytes) in the bucket, listed by the harness (not counted)."""
        objects = size = 0
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.name):
            for obj in page.get("Contents", []):
                objects += 1
                size += obj["Size"]
        return objects, size

    # -- the callers -----------------------------------------------------------------------------

    def _write(self, event: dict[str, Any]) -> None:
        """One invocation of the write handler, on the virtual clock: its duration is the
        virtual time it slept plus the real time it spent working."""
        mod = self.pool.acquire()
        t0, v0, b0 = time.perf_counter(), self.time.now(), self.time.blocked_seconds()
        first = mod.service().submitter.first_look()  # before the write: its state now
        looks = expected_looks(self.published_at - v0, first)
        try:
            result = mod.handler(event, None)
        finally:
            waited = self.time.now() - v0
            worked = time.perf_counter() - t0 - (self.time.blocked_seconds() - b0)
            self.pool.release(mod)
        body = str(result.get("body", ""))
        status = int(result.get("statusCode", 0))
        with self.lock:
            self.writes.append(
                Invocation(waited + worked, status, len(body.encode()), 1, waited, looks)
            )

    def _collect(self, n: int, timeout: float) -> list[dict[str, Any]]:
        """The ESM filling a batch: ReceiveMessage (≤ 10 at a time) until it holds ``n``."""
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(messages) < n and time.monotonic() < deadline:
            got = self.esm_sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, n - len(messages)),
                WaitTimeSeconds=1,
                AttributeNames=["All"],
            )
            messages += got.get("Messages", [])
        return messages

    def _deliver(self, messages: list[dict[str, Any]]) -> None:
        """The ESM invoking the sequencer, then deleting what succeeded, ≤ 10 per call."""
        assert self.sequencer is not None
        event = sqs_event(messages, self.queue_arn)
        for record in event["Records"]:
            # When each writer sent its message on the virtual clock, not when moto received
            # it in real time (the emulator's own stamp is dropped).
            attributes = dict(record["attributes"])
            attributes.pop("SentTimestamp", None)
            sent = self.sent.get(record["messageId"])
            if sent is not None:
                attributes["SentTimestamp"] = str(int((self.epoch + sent) * 1000))
            record["attributes"] = attributes
        t0 = time.perf_counter()
        result = self.sequencer.handler(event, None)
        seconds = time.perf_counter() - t0
        self.sequencer_runs.append(Invocation(seconds, 200, 0, len(messages)))
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        done = [m for m in messages if m["MessageId"] not in failed]
        for k in range(0, len(done), 10):
            self.esm_sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(done[k : k + 10])
                ],
            )

    def time_sequencer(self, events: list[dict[str, Any]]) -> float:
        """The sequencer alone integrating these submissions (no writers, no queue): seconds."""
        return self.run_sequencer(events).seconds

    def run_sequencer(self, events: list[dict[str, Any]]) -> SequencerTiming:
        """The sequencer alone integrating these submissions (no writers, no queue): the
        handler's whole run (billed) and the time until its checkpoint was published."""
        from stelae import kinds
        from stelae.sequencer.pending import PendingEntry, encode_entry

        assert self.sequencer is not None
        records = []
        for ev in events:
            e = kinds.from_v2_request(json.loads(base64.b64decode(ev["body"])))
            body = encode_entry(
                PendingEntry(e.body, e.artifact_digests, e.key_fingerprints, e.identities)
            )
            records.append({"messageId": str(uuid.uuid4()), "body": body})
        # The checkpoint is published when the engine's integrate returns; the index merge and
        # the garbage collection the handler runs next are billed but no writer waits for them.
        engine = self.sequencer.sequencer()
        real = engine.integrate
        published: list[float] = []

        def timed(*args: Any, **kwargs: Any) -> Any:
            try:
                return real(*args, **kwargs)
            finally:
                published.append(time.perf_counter())

        engine.integrate = timed
        t0 = time.perf_counter()
        try:
            result = self.sequencer.handler({"Records": records}, None)
        finally:
            del engine.integrate  # the class's own method again
        seconds = time.perf_counter() - t0
        assert not result["batchItemFailures"]
        return SequencerTiming(seconds, published[0] - t0)

    def wave(self, events: list[dict[str, Any]], rate: float, close: float, publish: float) -> None:
        """One sequencer invocation's worth of submissions, arriving at ``rate``, on the
        virtual clock, until every writer is answered.

        The batch closes ``close`` seconds after the first arrival (the batching window, or the
        moment the batch is full): the ESM receives it then; its checkpoint is published
        ``publish`` seconds later (the sequencer's time alone to its checkpoint; its index
        merge and garbage collection come after, billed but awaited by no writer): the
        sequencer runs then, while every writer is parked, so what a writer sees depends only
        on virtual time.
        """
        t0 = self.time.now()
        self.published_at = t0 + close + publish
        threads = [self.time.spawn(self._write, e, at=t0 + i / rate) for i, e in enumerate(events)]
        self.time.run_until(t0 + close)
        messages = self._collect(len(events), timeout=120)
        self.time.run_until(t0 + close + publish)
        # The sequencer claims the batch when the ESM hands it over, at the close; it then
        # works alone (every writer parked), in real time, as ``publish`` was measured.
        self.sequencer_clock.set(t0 + close)
        self._deliver(messages)
        self.time.run_until(math.inf)
        for t in threads:
            t.join(60)


class SequencerTiming(NamedTuple):
    """One sequencer invocation run alone: its whole run (what Lambda bills) and the time until
    its checkpoint was published (what a waiting writer sees), in seconds."""

    seconds: float
    publish: float


def best_of(runs: Iterable[SequencerTiming]) -> SequencerTiming:
    """The fastest of several timed runs, each figure on its own (the box is shared)."""
    done = list(runs)
    return SequencerTiming(min(r.seconds for r in done), min(r.publish for r in done))


def poll_times(
    first: float = FIRST_POLL, interval: float = POLL_INTERVAL, limit: float = WAIT_SECONDS
) -> list[float]:
    """When SqsSubmitter looks for its entry, in seconds after SendMessage: first at ``first``
    (STELAE_POLL_AFTER_SECONDS, when the batching window can have closed and the batch been
    integrated; sooner when the container's last receipt advised it), then every
    ``interval``."""
    t, out = first, []
    while t <= limit:
        out.append(t)
        t += interval
    return out


def expected_looks(wait: float, first: float = FIRST_POLL) -> int:
    """Checkpoint GETs after SendMessage for one write whose batch is published ``wait`` s after
    it sent its entry, by the handler's schedule from a first look ``first`` s after sending:
    each look before the publication is one GET more (virtual time)."""
    times = poll_times(first)
    return 1 + next((j for j, p in enumerate(times) if p > wait), len(times) - 1)


class SequencerClock:
    """The sequencer's clock in the harness: epoch seconds on the virtual timeline.

    The sequencer cannot run on the virtual clock itself: it publishes when the harness runs it
    (at the batch's close plus ``integrate``, so that no writer sees the checkpoint sooner), and
    its own claim-to-checkpoint time must be real time. So :meth:`set` puts it at the virtual
    time the ESM hands the batch over (the close: the claim's time, against which the records'
    SentTimestamps give each entry's age), and from there it runs in real time while the
    sequencer works alone, as ``integrate`` was measured. It may step back at the next
    :meth:`set` (real time runs faster than virtual time between waves): the integrated times
    of the harness's batches are not monotonic, which nothing here reads.
    """

    def __init__(self, epoch: float) -> None:
        self.epoch = epoch
        self._at = 0.0
        self._since = time.perf_counter()

    def set(self, virtual: float) -> None:
        self._at, self._since = virtual, time.perf_counter()

    def __call__(self) -> float:
        return self.epoch + self._at + (time.perf_counter() - self._since)


def on_sequencer_clock(mod: ModuleType, clock: SequencerClock) -> None:
    """Make a sequencer environment's engine read ``clock``: a copy of the one its handler
    built (same store, key and configuration), given the ``clock`` seam, before it integrated
    anything; the handler's module then serves the copy."""
    from stelae.sequencer.engine import Sequencer

    real = mod.sequencer()
    assert isinstance(real, Sequencer)
    seq = Sequencer(real.store, real.signer, real.config, clock=clock)
    real.close()
    # The handler calls its module's sequencer() for each event: serve the copy from there.
    vars(mod)["sequencer"] = lambda: seq


_RSS_CHECK = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("write", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
result = mod.handler(json.loads(sys.stdin.read()), None)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork and exec, so it would report the
# harness's own size.
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]
print(result["statusCode"], hwm)
"""


def write_peak_rss(event: dict[str, Any], env: dict[str, str | None]) -> tuple[int, int]:
    """(status, peak RSS in bytes) of the write handler answering ``event`` in a fresh
    interpreter, as one Lambda execution environment would: import, clients, one write."""
    import subprocess
    import sys

    child = {k: v for k, v in os.environ.items() if k not in env}
    child.update({k: v for k, v in env.items() if v is not None})
    out = subprocess.run(
        [sys.executable, "-c", _RSS_CHECK, str(_HANDLERS / "write.py")],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        env=child,
        timeout=120,
        check=True,
    ).stdout.split()
    return int(out[-2]), int(out[-1]) * 1024  # VmHWM is in kB


def _rows(t: Tally) -> list[dict[str, Any]]:
    return [
        {
            "caller": k[0],
            "service": k[1],
            "operation": k[2],
            "detail": k[3],
            "calls": t.calls[k],
            "billed": t.billed[k],
            "request_bytes": t.request_bytes[k],
        }
        for k in sorted(t.calls)
    ]


def _measure(
    d: Deployment,
    tally: Tally,
    chunks: list[list[dict[str, Any]]],
    *,
    rate: float,
    close: float,
    timing: SequencerTiming,
) -> dict[str, Any]:
    """Run one wave per chunk, counting everything: requests, writes, sequencer runs, log
    bytes at WARNING and above, bytes stored."""
    logs = _LogBytes()
    root = logging.getLogger()
    cold = tally.snapshot()
    objects0, bytes0 = d.stored_bytes()
    writes0, runs0, envs0 = len(d.writes), len(d.sequencer_runs), d.pool.created
    root.addHandler(logs)
    try:
        t0 = time.perf_counter()
        for chunk in chunks:
            d.wave(chunk, rate, close, timing.publish)
        wall = time.perf_counter() - t0
    finally:
        root.removeHandler(logs)
    measured = tally.since(cold)
    objects1, bytes1 = d.stored_bytes()
    writes = d.writes[writes0:]
    runs = d.sequencer_runs[runs0:]
    entries = len(writes)
    return {
        "waves": len(chunks),
        "entries": entries,
        "wall_seconds": wall,
        "statuses": {str(k): v for k, v in sorted(Counter(w.status for w in writes).items())},
        "requests": _rows(measured),
        "proxy_errors": dict(measured.errors),
        "write": {
            "invocations": entries,
            "seconds": [w.seconds for w in writes],
            "response_bytes": sum(w.response_bytes for w in writes),
            "environments": d.pool.created,
            "environments_created_while_measured": d.pool.created - envs0,
        },
        "sequencer": {
            "invocations": len(runs),
            "seconds": [r.seconds for r in runs],
            "entries": [r.entries for r in runs],
        },
        "app_log": {"events": logs.events, "bytes": logs.bytes},
        "storage": {
            "objects": objects1 - objects0,
            "bytes": bytes1 - bytes0,
            "objects_total": objects1,
            "bytes_total": bytes1,
        },
        "model": {
            "integrate_seconds": timing.seconds,
            "publish_seconds": timing.publish,
            "first_poll_seconds": float(d.env["STELAE_POLL_AFTER_SECONDS"] or 0),
            "checkpoint_latency_seconds": close + timing.publish - (len(chunks[0]) - 1) / rate / 2,
            "write_seconds": sum(w.seconds for w in writes) / entries,
            "write_waited_seconds": sum(w.waited for w in writes) / entries,
        },
    }


AsyncRun = tuple[Cadence, int, int]
"""An extra phase of asynchronous writes at a cadence of its own: (cadence, batch, waves)."""


def run_profile(
    moto_url: str,
    rate: int,
    batch: int,
    waves: int,
    initial: int,
    *,
    async_waves: int = 1,
    cadence: Cadence = DEFAULT_CADENCE,
    own_async: AsyncRun | None = None,
) -> dict[str, Any]:
    """One rate: a warm-up wave, the sequencer timed alone, ``waves`` measured waves of
    synchronous writes (the module's 20 s wait), then ``async_waves`` of asynchronous ones
    (``STELAE_WAIT_SECONDS=0``: answered 202 at once; the result's ``"async"``), all at
    ``cadence`` (the ESM's window and batch size; ``batch`` entries per wave); then, with
    ``own_async``, asynchronous waves at a cadence of their own on the same log (the result's
    ``"own_async"``), with the sequencer timed alone again at that batch."""
    close = cadence.close(rate, batch)
    timing_batches = 3
    n_waves = 1 + waves + async_waves
    events = submissions(batch * (n_waves + timing_batches), f"{rate}/s")
    chunks = [events[batch * w : batch * (w + 1)] for w in range(n_waves + timing_batches)]
    with (
        proxies(moto_url, ("write", "sequencer", "esm")) as (servers, tally),
        environment({**FAKE_CREDENTIALS, "AWS_PROFILE": None, "AWS_SESSION_TOKEN": None}),
    ):
        # S3's latency, which moto (a millisecond or two) does not have: the write function's
        # GETs and the sequencer's requests wait for it in real time (s3_latency's figures).
        for caller in ("write", "sequencer"):
            servers[caller].s3_delays = dict(S3_LATENCY)
        d = Deployment(moto_url, servers, cadence.first_poll)
        from stelae import kinds

        body = kinds.from_v2_request(json.loads(base64.b64decode(events[0]["body"]))).body
        d.bootstrap(initial, len(body))
        with environment(d.env):
            seq_init = d.start_sequencer()
            d.pool.prewarm(batch + 2)
            # Warm-up: the log's first checkpoint, the sequencer's first reads.
            d.wave(chunks[0], rate, close, 0.0)
            # The sequencer's integration time on its own (the best of three batches): where
            # each measured wave's checkpoint is placed on the virtual clock.
            timing = best_of(d.run_sequencer(c) for c in chunks[n_waves:])
            cold = tally.snapshot()
            writes0 = len(d.writes)
            sync = _measure(d, tally, chunks[1 : 1 + waves], rate=rate, close=close, timing=timing)
            # Each write's looks by its submitter's schedule: its first look as its container's
            # last receipt advised (the sequencer's look_after_ms) or first_poll, then every
            # poll interval, until the look after its batch's publication.
            sync["model"]["expected_polls"] = sum(w.looks for w in d.writes[writes0:])
            # A new entry is answered after its wait: the handler's whole path (verify,
            # enqueue, wait, look, proof) in a fresh interpreter, not counted.
            rss_status, rss = write_peak_rss(
                chunks[-1][0], {**d.env, "AWS_ENDPOINT_URL": moto_url, "STELAE_WAIT_SECONDS": "2"}
            )
        with environment({**d.env, "STELAE_WAIT_SECONDS": "0"}):
            # An asynchronous write never waits: on the virtual clock the writers of a wave
            # run one after another, so a few environments serve it.
            d.pool = WritePool(servers["write"].url, d.time, d.sent)
            d.pool.prewarm(2)
            answered_at_once = _measure(
                d, tally, chunks[1 + waves : n_waves], rate=rate, close=close, timing=timing
            )
            own = _own_async(d, tally, rate, own_async, timing_batches)
    common = {
        "rate": rate,
        "batch": batch,
        "window": cadence.window,
        "batch_size": cadence.batch_size,
        "initial_size": initial,
        "close_seconds": close,
        "write_peak_rss": {"status": rss_status, "bytes": rss},
    }
    cold_rows = [
        {"caller": k[0], "service": k[1], "operation": k[2], "detail": k[3], "calls": n}
        for k, n in sorted(cold.calls.items())
    ]
    sync["sequencer"]["init_seconds"] = seq_init
    out = {**common, **sync, "warmup_requests": cold_rows, "async": {**common, **answered_at_once}}
    if own is not None:
        out["own_async"] = {**common, **own}
    return out


def _own_async(
    d: Deployment, tally: Tally, rate: int, run: AsyncRun | None, timing_batches: int
) -> dict[str, Any] | None:
    """Asynchronous waves at a cadence of their own (``run``), on the deployment as it is."""
    if run is None:
        return None
    cadence, batch, waves = run
    events = submissions(batch * (waves + timing_batches), f"{rate}/s own cadence")
    chunks = [events[batch * w : batch * (w + 1)] for w in range(waves + timing_batches)]
    timing = best_of(d.run_sequencer(c) for c in chunks[waves:])
    close = cadence.close(rate, batch)
    measured = _measure(d, tally, chunks[:waves], rate=rate, close=close, timing=timing)
    return {
        **measured,
        "batch": batch,
        "window": cadence.window,
        "batch_size": cadence.batch_size,
        "close_seconds": close,
    }
