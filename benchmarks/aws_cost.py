"""What the AWS deployment costs: requests counted against the emulator, priced at list prices.

The real Lambda handlers run against a moto server (a child process), behind a small
counting HTTP proxy on 127.0.0.1 that classifies every request by caller, service and operation
and forwards it unchanged; boto3 is not patched. One proxy port per caller, so every request is
attributed to the write function, the sequencer function or the event source mapping (ESM):

- **write λ**: each submission is an API Gateway HTTP API payload-2.0 event given to
  ``stelae.lambda.write.handler`` in its own thread. Each invocation runs in an "execution
  environment": a fresh import of the handler module (its own ``service()``, boto3 clients and
  tile cache), reused by later invocations when idle, as Lambda does. Environments are created
  before the measured waves (the account's steady state), not counted as cold starts.
- **ESM** (the stand-in for AWS's SQS event source mapping): ``ReceiveMessage`` (≤ 10 messages per
  call, as SQS allows) until the batch is complete, holds it until the batching window closes,
  invokes ``stelae.lambda.sequence.handler`` with a real SQS event, then deletes what succeeded
  with ``DeleteMessageBatch`` (≤ 10 per call, so ⌈n/10⌉ calls per batch).
- **sequencer λ**: one execution environment (reserved concurrency 1); its cold start (the
  ``GetSecretValue`` and the first reads) is counted separately from the steady state.

Three steady profiles, 1, 100 and 1,000 entries/s, with the module's batch size (256) and
batching window (1 s). What differs between them is modelled, not run in real time (a 2-core box
with moto cannot sustain 1,000 entries/s): a profile runs in *waves*, one per sequencer
invocation. A wave of ``b = min(256, rate × window)`` entries (1, 100, 256) arrives at the
profile's rate; the ESM closes the batch when the window expires (``b < 256``) or when the batch
is full (``256 / rate`` s after the first arrival); the sequencer integrates it; the next wave
starts when it is done (the sequencer keeps up). Writers poll the leaf index with the real
schedule while all of this happens. A warm-up wave (not counted) comes first. Requests per entry
are then scaled to a million entries.

One moto process serves the polling writers and the sequencer at once, so on the emulator the
sequencer integrates several times slower than alone, and the writers poll longer than they
would on S3. Their timing-dependent part (leaf-index polls, duration) is therefore priced from
:func:`model_writes`: window + the sequencer's integration time measured alone + the real
poll schedule + the measured time of a write that needs no wait. Both figures are reported.

The workload: Rekor v2 hashedrekord requests, each signed with a fresh ECDSA P-256 key (so each
entry adds a leaf record, a digest index list and a key index list; no identity index), every
lookup index on (the default).

Added on top of what the emulator shows (see :func:`assumptions`): API Gateway requests and data
out, CloudWatch Logs ingestion (estimated from the line formats), alarms, the secret, the ESM's
idle long polling, Lambda init, S3 storage growth (measured: bytes listed in the bucket) and
CloudFront / S3 reads per 1,000 proof verifications from tiles (tiles per proof from
:mod:`benchmarks.proofs`). Prices: :mod:`benchmarks.prices`.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import importlib.util
import json
import logging
import math
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO
from urllib.parse import parse_qs, unquote, urlsplit

from benchmarks import prices, proofs
from benchmarks.lambda_events import apigw_event, sqs_event
from benchmarks.prices import price
from benchmarks.table import table

RATES = (1, 100, 1000)
BATCH_SIZE = 256  # terraform: sequencer_batch_size
WINDOW = 1.0  # terraform: sequencer_batching_window_seconds
WRITE_MEMORY_GB = 512 / 1024  # terraform: write_memory_mb
SEQUENCER_MEMORY_GB = 1024 / 1024  # terraform: sequencer_memory_mb
WAIT_SECONDS = 20  # terraform: write_wait_seconds
ALARMS = 4  # terraform: sequencer errors, write errors, queue age, DLQ depth
LOG_RETENTION_DAYS = 30  # terraform: log_retention_days

MONTH_SECONDS = 30 * 86_400
ENVIRONMENT_LIFETIME_S = 2 * 3600
"""Assumed life of a busy Lambda execution environment (AWS documents none)."""
ESM_POLLERS = 5
"""Long-polling ReceiveMessage loops an SQS event source mapping keeps running while idle."""
ESM_LONG_POLL_S = 20
LOG_EVENT_OVERHEAD = 26  # bytes CloudWatch Logs adds to each event when metering ingestion

_WAVES = {1: 256, 100: 5, 1000: 4}
"""Measured waves per profile (plus one warm-up wave). 256 batches of one cover a whole cycle of
partial bundles (widths 1…256), which dominates storage at 1 entry/s."""
_QUICK_WAVES = {1: 2, 100: 1, 1000: 1}
INITIAL_SIZE = 100_000
"""Entries in the log before a profile starts: three tile levels, like any log of 65,536 to
16.7 million entries (``--quick``: an empty log)."""
_QUICK_BATCH_CAP = 8

SERVICE_NAMES = {"s3": "S3", "sqs": "SQS", "secretsmanager": "Secrets Manager"}
S3_PUT_CLASS = ("PutObject", "CopyObject", "PostObject", "ListObjects", "ListObjectsV2")


# -- the counting proxy ----------------------------------------------------------------------------


@dataclass
class Tally:
    """Requests seen by the proxies: (caller, service, operation, detail) → calls and more."""

    calls: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    billed: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    request_bytes: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, key: tuple[str, str, str, str], req: int, resp: int, status: int) -> None:
        with self.lock:
            self.calls[key] += 1
            # SQS meters each 64 KB chunk of a payload as one request.
            chunks = max(1, math.ceil(max(req, resp) / 65_536)) if key[1] == "sqs" else 1
            self.billed[key] += chunks
            self.request_bytes[key] += req
            if status >= 500 or status == 0:
                self.errors[f"{key[1]} {key[2]} {status}"] += 1

    def snapshot(self) -> Tally:
        with self.lock:
            return Tally(
                Counter(self.calls),
                Counter(self.billed),
                Counter(self.request_bytes),
                Counter(self.errors),
            )

    def since(self, before: Tally) -> Tally:
        now = self.snapshot()
        return Tally(
            now.calls - before.calls,
            now.billed - before.billed,
            now.request_bytes - before.request_bytes,
            now.errors - before.errors,
        )


def s3_kind(key: str) -> str:
    """Which kind of stelae object an S3 key is (for the breakdown rows)."""
    if key.startswith("tile/entries/"):
        return "bundle"
    if key.startswith("tile/"):
        return "tile"
    if key == "checkpoint":
        return "checkpoint"
    if key.startswith("checkpoints/"):
        return "checkpoint history"
    if key.startswith(".state/"):
        return "intent"
    for prefix in ("index/leaf/", "index/key/", "index/identity/"):
        if key.startswith(prefix):
            return prefix.rstrip("/")
    if key.startswith("index/"):
        return "index/digest"
    return "other"


_CREDENTIAL = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


def classify(
    method: str, path: str, headers: Any, body: bytes, status: int
) -> tuple[str, str, str]:
    """(service, operation, detail) of one request, from what is on the wire."""
    m = _CREDENTIAL.search(headers.get("Authorization", ""))
    service = m.group(1) if m else "unknown"
    target = headers.get("X-Amz-Target")
    if target:
        return service, target.rsplit(".", 1)[-1], ""
    if service == "s3":
        url = urlsplit(path)
        _bucket, _, key = url.path.lstrip("/").partition("/")
        key = unquote(key)
        if not key:
            op = {"GET": "ListObjectsV2" if "list-type=2" in url.query else "ListObjects"}.get(
                method, f"{method} bucket"
            )
            return service, op, ""
        op = {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject"}.get(method, method)
        if method == "PUT":
            if headers.get("If-None-Match"):
                op += " If-None-Match"
            elif headers.get("If-Match"):
                op += " If-Match"
        detail = s3_kind(key)
        if status == 404:
            detail += " (404)"
        elif status in (409, 412):
            detail += f" ({status})"
        return service, op, detail
    action = parse_qs(body.decode("latin-1")).get("Action", ["?"])[0]
    return service, action, ""


class _Proxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, role: str, upstream: tuple[str, int], tally: Tally) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.role = role
        self.upstream = upstream
        self.tally = tally

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Proxy

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    _upstream: http.client.HTTPConnection | None = None

    def _send(self, body: bytes) -> tuple[int, bytes, list[tuple[str, str]]]:
        """One request upstream on this client connection's own keep-alive connection."""
        for attempt in (1, 2):
            fresh = self._upstream is None
            if self._upstream is None:
                self._upstream = http.client.HTTPConnection(*self.server.upstream, timeout=300)
            conn = self._upstream
            try:
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for k, v in self.headers.items():
                    if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                        conn.putheader(k, v)
                if body or "Content-Length" in self.headers or "Transfer-Encoding" in self.headers:
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body)
                resp = conn.getresponse()
                data = resp.read()
                if resp.will_close:
                    conn.close()
                    self._upstream = None
                return resp.status, data, resp.getheaders()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
                self._upstream = None
                if fresh or attempt == 2:  # only a stale kept-alive connection is retried
                    raise
        raise AssertionError("unreachable")

    def _forward(self) -> None:
        body = self._body()
        status, data, headers = 0, b"", list[tuple[str, str]]()
        try:
            status, data, headers = self._send(body)
        except OSError as err:
            data = f"proxy: {err}".encode()
        service, op, detail = classify(self.command, self.path, self.headers, body, status)
        self.server.tally.add((self.server.role, service, op, detail), len(body), len(data), status)
        self.send_response(status or 502)
        skip: tuple[str, ...] = ("transfer-encoding", "connection", "server", "date")
        if self.command != "HEAD":
            skip += ("content-length",)
        for k, v in headers:
            if k.lower() not in skip:
                self.send_header(k, v)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward  # noqa: N815 - the stdlib's names


@contextlib.contextmanager
def proxies(upstream: str, roles: tuple[str, ...]) -> Iterator[tuple[dict[str, _Proxy], Tally]]:
    """One counting proxy per caller in front of ``upstream``, all feeding one tally."""
    url = urlsplit(upstream)
    tally = Tally()
    servers = {r: _Proxy(r, (url.hostname or "127.0.0.1", url.port or 80), tally) for r in roles}
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers.values()]
    for t in threads:
        t.start()
    try:
        yield servers, tally
    finally:
        for s in servers.values():
            s.shutdown()
            s.server_close()


# -- the emulator ----------------------------------------------------------------------------------


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto server in its own process (its own GIL), on a free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the moto server did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextlib.contextmanager
def environment(values: dict[str, str | None]) -> Iterator[None]:
    """Set (or, for None, remove) environment variables; restore them afterwards."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


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


class WritePool:
    """Execution environments of the write function: an idle one is reused, else one is made."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.idle: list[ModuleType] = []
        self.lock = threading.Lock()
        self.created = 0

    def prewarm(self, n: int) -> None:
        while self.created < n:
            self.release(self._new())

    def _new(self) -> ModuleType:
        mod = _load_handler("write", self.endpoint)
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
    from stelae.kinds import signing

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

    def __init__(self, moto_url: str, servers: dict[str, _Proxy]) -> None:
        import boto3

        from stelae.tiles.notekeys import Ed25519NoteSigner

        self.name = f"cost{uuid.uuid4().hex[:10]}"
        self.moto_url = moto_url
        self.signer = signer = Ed25519NoteSigner.generate(f"{self.name}.log.example")

        def client(service: str, url: str) -> Any:
            return boto3.client(service, endpoint_url=url, region_name="us-east-1")

        with _INIT_LOCK:
            self.s3 = client("s3", moto_url)  # the harness: not counted
            sqs, sm = client("sqs", moto_url), client("secretsmanager", moto_url)
            self.esm_sqs = client("sqs", servers["esm"].url)
        self.s3.create_bucket(Bucket=self.name)
        self.queue_url = sqs.create_queue(
            QueueName=self.name,
            Attributes={"VisibilityTimeout": "720", "ReceiveMessageWaitTimeSeconds": "20"},
        )["QueueUrl"]
        self.queue_arn = f"arn:aws:sqs:us-east-1:123456789012:{self.name}"
        secret = sm.create_secret(Name=self.name, SecretString=signer.skey)["ARN"]
        self.env = {
            "STELAE_BUCKET": self.name,
            "STELAE_QUEUE_URL": self.queue_url,
            "STELAE_VKEY": signer.vkey,
            "STELAE_SIGNING_KEY_SECRET": secret,
            # Long enough that writers are answered despite the emulator's contention; the
            # model uses the module's 20 s.
            "STELAE_WAIT_SECONDS": "120",
            "STELAE_PREFIX": None,
            "STELAE_INDEXES": None,
        }
        self.servers = servers
        self.writes: list[Invocation] = []
        self.sequencer_runs: list[Invocation] = []
        self.lock = threading.Lock()
        self.sequencer: ModuleType | None = None
        self.pool = WritePool(servers["write"].url)

    def bootstrap(self, size: int, body_bytes: int) -> None:
        """Grow the log to ``size`` small entries first, directly (not counted), so that the
        measured batches see a log with the right edge of a real one (tile levels 0-2)."""
        from stelae.sequencer.engine import Sequencer, SequencerConfig
        from stelae.sequencer.pending import PendingEntry
        from stelae.sequencer.s3 import S3Store

        with _INIT_LOCK:
            store = S3Store(self.name, endpoint_url=self.moto_url, region_name="us-east-1")
        config = SequencerConfig(self.signer.name, indexes=frozenset(), leaf_index=False)
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
        finally:
            seq.close()

    def start_sequencer(self) -> float:
        t0 = time.perf_counter()
        self.sequencer = _load_handler("sequence", self.servers["sequencer"].url)
        return time.perf_counter() - t0

    def stored_bytes(self) -> tuple[int, int]:
        """(objects, bytes) in the bucket, listed by the harness (not counted)."""
        objects = size = 0
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.name):
            for obj in page.get("Contents", []):
                objects += 1
                size += obj["Size"]
        return objects, size

    # -- the callers -----------------------------------------------------------------------------

    def _write(self, event: dict[str, Any], at: float) -> None:
        delay = at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        mod = self.pool.acquire()
        t0 = time.perf_counter()
        try:
            result = mod.handler(event, None)
        finally:
            seconds = time.perf_counter() - t0
            self.pool.release(mod)
        body = str(result.get("body", ""))
        with self.lock:
            self.writes.append(
                Invocation(seconds, int(result.get("statusCode", 0)), len(body.encode()), 1)
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
        from stelae import kinds
        from stelae.sequencer.pending import PendingEntry

        assert self.sequencer is not None
        records = []
        for ev in events:
            e = kinds.from_v2_request(json.loads(base64.b64decode(ev["body"])))
            body = PendingEntry(
                e.body, e.artifact_digests, e.key_fingerprints, e.identities
            ).to_json()
            records.append({"messageId": str(uuid.uuid4()), "body": body})
        t0 = time.perf_counter()
        result = self.sequencer.handler({"Records": records}, None)
        seconds = time.perf_counter() - t0
        assert not result["batchItemFailures"]
        return seconds

    def time_duplicates(self, events: list[dict[str, Any]]) -> list[float]:
        """Writes of entries already in the log, one at a time: the write function's own work
        (verify, look up, read checkpoint and tiles, build and check the proof) without waiting."""
        out = []
        for ev in events:
            mod = self.pool.acquire()
            t0 = time.perf_counter()
            try:
                result = mod.handler(ev, None)
            finally:
                out.append(time.perf_counter() - t0)
                self.pool.release(mod)
            assert result["statusCode"] == 201, result
        return out

    def wave(
        self, events: list[dict[str, Any]], rate: float, close: float
    ) -> list[threading.Thread]:
        """One sequencer invocation's worth of submissions, arriving at ``rate``.

        The batch closes ``close`` seconds after the first arrival: the batching window, or the
        moment the batch is full. Returns the writer threads (they may still be waiting).
        """
        start = time.monotonic() + 0.01
        threads = [
            threading.Thread(target=self._write, args=(e, start + i / rate), daemon=True)
            for i, e in enumerate(events)
        ]
        for t in threads:
            t.start()
        messages = self._collect(len(events), timeout=120)
        delay = start + close - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._deliver(messages)
        return threads


def join(threads: list[threading.Thread], timeout: float = 300) -> None:
    """Wait for the writers; a handler that never returns fails the run instead of hanging it."""
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    stuck = sum(t.is_alive() for t in threads)
    if stuck:
        raise RuntimeError(f"{stuck} write handler(s) did not return within {timeout:.0f} s")


def poll_times(
    first: float = WINDOW, interval: float = 0.2, limit: float = WAIT_SECONDS
) -> list[float]:
    """When SqsSubmitter looks for its entry, in seconds after SendMessage: first when the
    batching window can have closed (the module sets STELAE_POLL_AFTER_SECONDS to it), then
    every ``interval`` (its defaults)."""
    t, out = first, []
    while t <= limit:
        out.append(t)
        t += interval
    return out


def model_writes(
    rate: float, batch: int, close: float, integrate: float, overhead: float
) -> dict[str, float]:
    """The write function's polls and duration when the sequencer keeps up.

    Entry ``i`` of a batch is sent ``i / rate`` s after the first; its checkpoint is published
    ``close`` s after the first arrival plus ``integrate`` s. Each poll before that is one
    leaf-index GET answered 404 (and the lookup before SendMessage is another); the first poll
    after it finds the entry, and the write then takes ``overhead`` s more (its own work).
    """
    times = poll_times()
    misses = durations = latency = 0.0
    for i in range(batch):
        wait = close - i / rate + integrate
        k = next((j for j, p in enumerate(times) if p >= wait), len(times) - 1)
        misses += 1 + k
        durations += times[k] + overhead
        latency += wait
    return {
        "integrate_seconds": integrate,
        "overhead_seconds": overhead,
        "checkpoint_latency_seconds": latency / batch,
        "leaf_404_per_entry": misses / batch,
        "write_seconds": durations / batch,
    }


def _profile(moto_url: str, rate: int, batch: int, waves: int, initial: int) -> dict[str, Any]:
    close = WINDOW if batch < BATCH_SIZE else batch / rate
    timing_batches = 2
    events = submissions(batch * (waves + 1 + timing_batches), f"{rate}/s")
    timing_events = events[batch * (waves + 1) :]
    logs = _LogBytes()
    root = logging.getLogger()
    with (
        proxies(moto_url, ("write", "sequencer", "esm")) as (servers, tally),
        environment({**_FAKE_CREDENTIALS, "AWS_PROFILE": None, "AWS_SESSION_TOKEN": None}),
    ):
        d = Deployment(moto_url, servers)
        from stelae import kinds

        body = kinds.from_v2_request(json.loads(base64.b64decode(events[0]["body"]))).body
        d.bootstrap(initial, len(body))
        with environment(d.env):
            seq_init = d.start_sequencer()
            d.pool.prewarm(2 * batch + 2)
            # Warm-up: the log's first checkpoint, the sequencer's first reads.
            join(d.wave(events[:batch], rate, close))
            # The sequencer's integration time on its own, as S3 would give it (moto is shared
            # with the polling writers while they run: that time is reported, not used).
            integrate = [
                d.time_sequencer(timing_events[k * batch : (k + 1) * batch])
                for k in range(timing_batches)
            ]
            cold = tally.snapshot()
            objects0, bytes0 = d.stored_bytes()
            writes0, runs0, envs0 = len(d.writes), len(d.sequencer_runs), d.pool.created
            root.addHandler(logs)
            try:
                t0 = time.perf_counter()
                threads: list[threading.Thread] = []
                for w in range(waves):
                    chunk = events[batch * (w + 1) : batch * (w + 2)]
                    threads += d.wave(chunk, rate, close)
                join(threads)
                wall = time.perf_counter() - t0
            finally:
                root.removeHandler(logs)
            measured = tally.since(cold)
            objects1, bytes1 = d.stored_bytes()
            overhead = sorted(d.time_duplicates(events[: min(batch, 5)]))
    writes = d.writes[writes0:]
    runs = d.sequencer_runs[runs0:]
    entries = len(writes)
    statuses = Counter(w.status for w in writes)
    rows = [
        {
            "caller": k[0],
            "service": k[1],
            "operation": k[2],
            "detail": k[3],
            "calls": measured.calls[k],
            "billed": measured.billed[k],
            "request_bytes": measured.request_bytes[k],
        }
        for k in sorted(measured.calls)
    ]
    cold_rows = [
        {"caller": k[0], "service": k[1], "operation": k[2], "detail": k[3], "calls": n}
        for k, n in sorted(cold.calls.items())
    ]
    return {
        "rate": rate,
        "batch": batch,
        "initial_size": initial,
        "close_seconds": close,
        "waves": waves,
        "entries": entries,
        "wall_seconds": wall,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "requests": rows,
        "warmup_requests": cold_rows,
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
            "init_seconds": seq_init,
        },
        "app_log": {"events": logs.events, "bytes": logs.bytes},
        "model": model_writes(rate, batch, close, min(integrate), overhead[len(overhead) // 2]),
        "storage": {
            "objects": objects1 - objects0,
            "bytes": bytes1 - bytes0,
            "objects_total": objects1,
            "bytes_total": bytes1,
        },
    }


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
        **_FAKE_CREDENTIALS,
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


def _billed_ms(seconds: float) -> float:
    return math.ceil(seconds * 1000)


_TIMED = ("index/leaf (404)", "index/leaf", "checkpoint", "tile")


def priced_requests(profile: dict[str, Any]) -> list[dict[str, Any]]:
    """The counted requests, with the write function's timing-dependent reads modelled.

    How often a writer polls depends on how long integration takes, which on the emulator is
    inflated by the writers' own polling (one moto process serves everything). Those rows are
    replaced by :func:`model_writes`: per entry, ``leaf_404_per_entry`` leaf-index GETs answered
    404, one that finds the leaf record, one checkpoint GET, and the tile GETs the answered
    writes made (counted, per answer). Everything else is as counted.
    """
    n, m = profile["entries"], profile["model"]
    rows = [dict(r) for r in profile["requests"]]
    writes = [r for r in rows if r["caller"] == "write" and r["operation"] == "GetObject"]
    answered = sum(r["calls"] for r in writes if r["detail"] == "checkpoint")
    tiles = sum(r["calls"] for r in writes if r["detail"] == "tile")
    modelled = {
        "index/leaf (404)": m["leaf_404_per_entry"] * n,
        "index/leaf": float(n),
        "checkpoint": float(n),
        "tile": tiles / max(1, answered) * n,
    }
    out = [r for r in rows if r not in writes or r["detail"] not in _TIMED]
    for detail, calls in modelled.items():
        out.append(
            {
                "caller": "write",
                "service": "s3",
                "operation": "GetObject",
                "detail": detail,
                "calls": calls,
                "billed": calls,
                "request_bytes": 0,
                "modelled": True,
            }
        )
    return out


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
    secrets = total("calls", lambda r: r["service"] == "secretsmanager")
    w, s = profile["write"], profile["sequencer"]
    write_gbs = n * _billed_ms(model["write_seconds"]) / 1000 * WRITE_MEMORY_GB
    seq_gbs = s["invocations"] * _billed_ms(model["integrate_seconds"]) / 1000 * SEQUENCER_MEMORY_GB
    log_bytes = (
        w["invocations"] * (platform_log_bytes() + access_log_bytes())
        + s["invocations"] * platform_log_bytes()
        + profile["app_log"]["bytes"]
    )
    items = {
        "API Gateway HTTP API requests": w["invocations"] * price("apigw_http_request"),
        "API Gateway responses (data out)": w["response_bytes"] / 1e9 * price("internet_gb_out"),
        "Lambda write: requests": w["invocations"] * price("lambda_request"),
        "Lambda write: GB-s": write_gbs * price("lambda_gb_second"),
        "Lambda sequencer: requests": s["invocations"] * price("lambda_request"),
        "Lambda sequencer: GB-s": seq_gbs * price("lambda_gb_second"),
        "SQS requests": sqs * price("sqs_request"),
        "S3 PUT-class requests": s3_put * price("s3_put"),
        "S3 GET-class requests": s3_get * price("s3_get"),
        "Secrets Manager API calls": secrets * price("secret_api_call"),
        "CloudWatch Logs ingestion": log_bytes / 1e9 * price("logs_ingest_gb"),
    }
    per_million = {k: v * scale for k, v in items.items()}
    per_million_total = sum(per_million.values())

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
        "Secrets Manager secret": price("secret_month"),
        f"CloudWatch alarms ({ALARMS})": ALARMS * price("alarm_month"),
        f"ESM idle long polling ({ESM_POLLERS} pollers)": esm_idle * price("sqs_request"),
    }
    busy = {
        "per-entry costs above": per_million_total * month_entries / 1e6,
        "Secrets Manager GetSecretValue (sequencer cold starts)": seq_inits
        * price("secret_api_call"),
        "Lambda init (cold starts)": (
            write_inits * WRITE_MEMORY_GB + seq_inits * SEQUENCER_MEMORY_GB
        )
        * init_seconds
        * price("lambda_gb_second"),
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
        f"Lambda x86_64, write {int(WRITE_MEMORY_GB * 1024)} MB, sequencer "
        f"{int(SEQUENCER_MEMORY_GB * 1024)} MB (module defaults), rounded up to 1 ms per "
        "invocation. Sequencer duration = its handler's wall time integrating a batch alone "
        "(moto standing in for S3). The write function's duration is mostly waiting: it is "
        "modelled (model_writes) from the batching window, that integration time and "
        "SqsSubmitter's schedule (first poll at the batching window, then every 0.2 s), plus "
        "the measured time of a write that needs no wait; so are its leaf-index polls (rows "
        "marked †). On the emulator the writers' own polling slows the shared moto process, "
        "so the measured values (shown beside) are higher.",
        f"Each profile starts from a log of {INITIAL_SIZE:,} entries (written directly, not "
        "counted), so batches update three tile levels as in any log of 65,536 to 16.7 million "
        "entries; a log past 16.7 million writes one more tile per batch (and a writer may read "
        "one more tile).",
        f"Execution environments live {ENVIRONMENT_LIFETIME_S // 3600} h (AWS documents no "
        "lifetime); write concurrency = rate × mean write duration (Little's law); each "
        f"environment's init ({init_seconds:.2f} s measured: a fresh interpreter importing the "
        "handlers; Lambda's own runtime start not included) is billed as GB-s, and each "
        "sequencer cold start calls GetSecretValue once.",
        f"The ESM: measured ReceiveMessage calls (one poller filling the batch) plus, always, "
        f"{ESM_POLLERS} pollers long-polling every {ESM_LONG_POLL_S} s (AWS starts SQS event "
        "sources with five pollers; an upper bound while busy). DeleteMessageBatch deletes at "
        "most 10 messages per call.",
        "SQS: each 64 KB chunk of a request or response is one billed request.",
        "CloudWatch Logs: estimated, not measured: START/END/REPORT lines per invocation and "
        "one API Gateway access log line per write (the module's JSON format), each event + 26 "
        "bytes; the handlers log nothing at WARNING or above on success (counted during the run).",
        "API Gateway: one HTTP API request per write (requests < 512 KB); response bodies as "
        "data out at EC2 internet rates.",
        "Workload: hashedrekord v2 entries, a fresh ECDSA P-256 key each, every lookup index on.",
    ]


# -- the benchmark ---------------------------------------------------------------------------------


def run(quick: bool) -> dict[str, Any]:
    try:
        import moto.server  # noqa: F401
    except ImportError as err:
        return {"name": "aws_cost", "quick": quick, "skipped": f"moto is not installed: {err}"}
    waves = _QUICK_WAVES if quick else _WAVES
    init_seconds = lambda_init_seconds()
    profiles = []
    with moto_server() as url:
        for rate in RATES:
            batch = min(BATCH_SIZE, max(1, round(rate * WINDOW)))
            if quick:
                batch = min(batch, _QUICK_BATCH_CAP)
            p = _profile(url, rate, batch, waves[rate], 0 if quick else INITIAL_SIZE)
            p["cost"] = cost(p, init_seconds)
            profiles.append(p)
    return {
        "name": "aws_cost",
        "quick": quick,
        "profiles": profiles,
        "lambda_init_seconds": init_seconds,
        "verification": verification_reads(),
        "assumptions": assumptions(init_seconds),
        "prices": {
            "as_of": prices.AS_OF,
            "region": prices.REGION,
            "items": {k: vars(v) for k, v in prices.PRICES.items()},
        },
    }


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
    return header, rows


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
            "  … on the emulator, writers polling",
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
            "mean write λ duration, model (s, priced)",
            *[p["model"]["write_seconds"] for p in profiles],
        ],
        [
            "  … on the emulator",
            *[sum(p["write"]["seconds"]) / p["write"]["invocations"] for p in profiles],
        ],
        [
            "leaf-index 404 GETs per write, model (priced)",
            *[p["model"]["leaf_404_per_entry"] for p in profiles],
        ],
        [
            "  … on the emulator",
            *[
                sum(
                    r["calls"]
                    for r in p["requests"]
                    if r["caller"] == "write" and r["detail"] == "index/leaf (404)"
                )
                / p["entries"]
                for p in profiles
            ],
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
            "idle: USD/month (secret, alarms, ESM polling)",
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
            f"{p['statuses']}, {p['wall_seconds']:.1f} s",
            file=out,
        )
    for title, (header, rows) in (
        ("requests per million entries", request_rows(result)),
        ("cost per million entries", cost_rows(result)),
        ("per month", month_rows(result)),
        ("reads per 1,000 inclusion proofs verified from tiles", verification_table(result)),
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
    ):
        lines = [f"**{title}**", "", "| " + " | ".join(header) + " |"]
        numeric = [all(isinstance(row[i], int | float) for row in rows) for i in range(len(header))]
        lines.append("|" + "|".join("---:" if n else "---" for n in numeric) + "|")
        lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"
