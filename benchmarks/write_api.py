"""Write API throughput and latency end to end: signed uploads over HTTP to ``stelae serve``.

A real ``stelae serve`` child process on 127.0.0.1 (fsync on) takes Rekor v2
``hashedRekordRequestV002`` uploads (ECDSA P-256, each a distinct artifact) from many concurrent
clients on loopback. It runs as one process (the default, ``--workers 1``) and with two
front-end worker processes beside the sequencer (``--workers 2``), in the default configuration:
every lookup key in the batch-level index (docs/index.md), merged by the server's background
merger. Every request is signed before the clock starts;
the load generator is keep-alive asyncio connections (raw HTTP/1.1, see :func:`drive`) in this
(separate) process. Latency is from the first byte sent to the whole 201 read, which carries an
inclusion proof and the signed checkpoint; a sample of the 201s (and always the last one) is
verified outside the timed loop: checkpoint signature with the log's vkey, inclusion proof
against it, and the entry read back from the log's tiles.

The baseline, measured in the same run against the same server with the same load generator and
concurrency: ``GET /checkpoint`` (a static read of a small file), i.e. what the HTTP server and
the load generator alone can do on this machine. ``ratio`` = uploads/s over baseline GETs/s.

The targets (2-core machine): ≥ 1,500 uploads/s in one process and ≥ 3,000/s with
``--workers 2``, each with p99 ≤ 500 ms at that rate. For each worker count the best point whose
p99 is within 500 ms is reported (the best point overall if none is).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from benchmarks.table import table
from stelae.client import signing
from stelae.sequencer.logdir import init_log
from stelae.tiles.client import LogClient
from stelae.tiles.fetch import HTTPFetcher
from stelae.tiles.hashing import leaf_hash
from stelae.tiles.notekeys import parse_vkey
from stelae.tiles.proof import verify_inclusion

ORIGIN = "bench.example/write-api"
PATH = "/api/v2/log/entries"
P99_TARGET = 0.5
TARGETS = {1: 1500.0, 2: 3000.0}
"""Uploads/s wanted, by ``--workers``, each with p99 ≤ :data:`P99_TARGET` seconds."""

# The batch is the default 1024 entries / 50 ms: with a closed loop of C clients no batch holds
# more than C entries, so a longer age only adds latency.
BATCH = (1024, 50)
# (clients, workers): one process, then two front-end workers.
POINTS: tuple[tuple[int, int], ...] = ((256, 1), (256, 2), (512, 2))
REQUESTS = 4000
QUICK_REQUESTS = 200
SAMPLE = 64  # 201s verified per run, outside the timing


@dataclass
class Server:
    proc: subprocess.Popen[str]
    host: str
    port: int
    vkey: str
    log: str = ""
    """What the server wrote to stderr after starting, once stopped."""

    def stop(self) -> int:
        self.proc.terminate()
        _, self.log = self.proc.communicate(timeout=120)
        return self.proc.returncode


def stelae_command() -> list[str]:
    script = Path(sys.executable).with_name("stelae")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from stelae.cli.main import main; main()"]


def start_server(
    data: Path,
    batch_max_size: int,
    batch_max_age_ms: int,
    *,
    workers: int = 1,
    prefix: Sequence[str] = (),
) -> Server:
    """``stelae serve`` on a free port over a new log in ``data`` with these settings.

    ``prefix`` wraps the command (e.g. a profiler)."""
    local, _ = init_log(
        data,
        ORIGIN,
        batch_max_size=batch_max_size,
        batch_max_age_ms=batch_max_age_ms,
    )
    cmd = [*prefix, *stelae_command(), "serve", "--data", str(data), "--listen", "127.0.0.1:0"]
    cmd += ["--workers", str(workers)]
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stderr is not None
    seen: list[str] = []
    while True:
        line = proc.stderr.readline()
        if not line:
            raise RuntimeError(f"stelae serve exited: {''.join(seen)}")
        seen.append(line)
        if m := re.search(r" on http://([\d.]+):(\d+) ", line):
            return Server(proc, m.group(1), int(m.group(2)), local.config.vkey)


def signed_requests(n: int, salt: str) -> list[bytes]:
    """``n`` distinct, validly signed v2 uploads (P-256), as request bodies."""
    key = signing.generate_key("ecdsa-p256")
    out = []
    for i in range(n):
        digest = signing.digest(key, f"{salt} artifact {i}".encode())[1]
        obj = signing.build_v2_hashedrekord(signing.sign_digest(key, digest), key, digest)
        out.append(json.dumps(obj).encode())
    return out


@dataclass
class Load:
    seconds: float
    latencies: list[float]  # sorted, seconds
    statuses: dict[int, int]
    bodies: dict[int, bytes]  # request number -> response body, for the 201s kept

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        return self.latencies[min(len(self.latencies) - 1, int(p * len(self.latencies)))]


def drive(
    server: Server,
    clients: int,
    count: int,
    method: str,
    path: str,
    *,
    bodies: Sequence[bytes] | None = None,
    keep: int = 0,
) -> Load:
    """``count`` requests from ``clients`` keep-alive connections, closed loop.

    The clients are asyncio streams in one thread writing pre-built HTTP/1.1 requests and reading
    status line, headers and ``Content-Length`` bodies: a few tens of µs per request, so on a
    2-core machine the load generator leaves the server most of the CPU (``http.client`` in
    threads cost several hundred µs per request, a third of what was being measured)."""
    return asyncio.run(_drive(server, clients, count, method, path, bodies, keep))


def _request(method: str, path: str, host: str, body: bytes | None) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + (body or b"")


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def _drive(  # noqa: PLR0917 - drive()'s arguments, passed through
    server: Server,
    clients: int,
    count: int,
    method: str,
    path: str,
    bodies: Sequence[bytes] | None,
    keep: int,
) -> Load:
    host = f"{server.host}:{server.port}"
    fixed = _request(method, path, host, None) if bodies is None else b""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    kept: dict[int, bytes] = {}
    keep_every = max(1, count // keep) if keep else 0
    numbers = itertools.count()
    connections = [
        await asyncio.open_connection(server.host, server.port, limit=1 << 22)
        for _ in range(clients)
    ]

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (i := next(numbers)) < count:
            request = fixed if bodies is None else _request(method, path, host, bodies[i])
            t0 = time.perf_counter()
            writer.write(request)
            status, data = await _read_response(reader)
            latencies.append(time.perf_counter() - t0)
            statuses[status] = statuses.get(status, 0) + 1
            if keep_every and status == 201 and (i % keep_every == 0 or i == count - 1):
                kept[i] = data

    t0 = time.perf_counter()
    await asyncio.gather(*(client(r, w) for r, w in connections))
    seconds = time.perf_counter() - t0
    for _, w in connections:
        w.close()
    return Load(seconds, sorted(latencies), statuses, kept)


def verify_sample(server: Server, bodies: dict[int, bytes]) -> int:
    """Verify each kept 201 as a Rekor v2 client would, and read the entry back; returns the
    number verified (raises on the first failure)."""
    client = LogClient(
        HTTPFetcher(f"http://{server.host}:{server.port}"), [parse_vkey(server.vkey)], ORIGIN
    )
    import base64

    for raw in bodies.values():
        e = json.loads(raw)
        proof = e["inclusionProof"]
        cp = client.open_checkpoint(proof["checkpoint"]["envelope"].encode()).checkpoint
        body = base64.b64decode(e["canonicalizedBody"])
        index = int(e["logIndex"])
        hashes = [base64.b64decode(h) for h in proof["hashes"]]
        assert base64.b64decode(proof["rootHash"]) == cp.root_hash
        verify_inclusion(index, cp.size, leaf_hash(body), hashes, cp.root_hash)
        if client.entry(index).data != body:
            raise AssertionError(f"entry {index} in the log is not the body the 201 returned")
    return len(bodies)


def unverifiable(bodies: Sequence[bytes]) -> list[bytes]:
    """The same requests with a digest the signature does not cover: every one is parsed,
    validated and signature-checked like an upload, then refused (400) without sequencing."""
    out = []
    for raw in bodies:
        obj = json.loads(raw)
        obj["hashedRekordRequestV002"]["digest"] = "A" * 43 + "="
        out.append(json.dumps(obj).encode())
    return out


def one(
    batch: tuple[int, int], clients: int, workers: int, count: int, root: Path
) -> dict[str, Any]:
    bodies = signed_requests(count + clients, f"{batch} {clients} {workers}")
    warm, timed = bodies[:clients], bodies[clients:]
    data = root / f"b{batch[0]}-{batch[1]}-c{clients}-w{workers}"
    server = start_server(data, *batch, workers=workers)
    try:
        drive(
            server, clients, len(warm), "POST", PATH, bodies=warm
        )  # connections, caches, first tiles
        base = drive(server, clients, count, "GET", "/checkpoint")
        front = drive(server, clients, count, "POST", PATH, bodies=unverifiable(timed))
        load = drive(server, clients, count, "POST", PATH, bodies=timed, keep=SAMPLE)
        verified = verify_sample(server, load.bodies)
    finally:
        status = server.stop()
    ok = load.statuses.get(201, 0)
    assert front.statuses == {400: count}, front.statuses
    return {
        "batch_max_size": batch[0],
        "batch_max_age_ms": batch[1],
        "clients": clients,
        "workers": workers,
        "requests": count,
        "created": ok,
        "statuses": {str(k): v for k, v in sorted(load.statuses.items())},
        "seconds": load.seconds,
        "uploads_per_second": ok / load.seconds,
        "p50_seconds": load.percentile(0.50),
        "p99_seconds": load.percentile(0.99),
        "max_seconds": load.latencies[-1] if load.latencies else float("nan"),
        "baseline_gets_per_second": base.rate,
        "baseline_p99_seconds": base.percentile(0.99),
        "ratio": (ok / load.seconds) / base.rate,
        "refused_per_second": front.rate,
        "verified": verified,
        "exit_status": status,
        # Why anything but a 201 happened, from the server's own log.
        "server_log_tail": server.log.splitlines()[-20:] if set(load.statuses) != {201} else [],
    }


def best_of(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The fastest row whose p99 meets :data:`P99_TARGET` (the fastest row if none does)."""
    sustainable = [r for r in rows if r["p99_seconds"] <= P99_TARGET]
    return max(sustainable or rows, key=lambda r: r["uploads_per_second"])


def targets(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each worker count's target against its best row."""
    out = []
    for workers, rate in TARGETS.items():
        mine = [r for r in rows if r["workers"] == workers]
        if not mine:
            continue
        b = best_of(mine)
        out.append(
            {
                "workers": workers,
                "uploads_per_second": rate,
                "p99_seconds": P99_TARGET,
                "measured": b["uploads_per_second"],
                "measured_p99_seconds": b["p99_seconds"],
                "met": b["uploads_per_second"] >= rate and b["p99_seconds"] <= P99_TARGET,
            }
        )
    return out


def run(quick: bool) -> dict[str, Any]:
    points = [(16, 2)] if quick else list(POINTS)
    count = QUICK_REQUESTS if quick else REQUESTS
    with tempfile.TemporaryDirectory(prefix="stelae-write-api-") as tmp:
        rows = [one(BATCH, c, w, count, Path(tmp)) for c, w in points]
    return {
        "name": "write_api",
        "quick": quick,
        "runs": rows,
        "best": best_of(rows),
        "targets": targets(rows),
    }


def print_result(result: dict[str, Any], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    print(
        "write_api — signed v2 hashedrekord uploads (P-256) to `stelae serve` over loopback, "
        "closed loop, fsync on, every lookup key indexed (the default); ratio = uploads/s over "
        "GET /checkpoint/s (same server, same clients); refused/s = the same requests with a "
        "wrong digest (parsed, verified, 400)",
        file=out,
    )
    table(
        out,
        [
            "batch",
            "age ms",
            "clients",
            "workers",
            "201s",
            "uploads/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "GETs/s",
            "ratio",
            "refused/s",
            "verified",
        ],
        [
            [
                r["batch_max_size"],
                r["batch_max_age_ms"],
                r["clients"],
                r["workers"],
                r["created"],
                r["uploads_per_second"],
                r["p50_seconds"] * 1000,
                r["p99_seconds"] * 1000,
                r["max_seconds"] * 1000,
                r["baseline_gets_per_second"],
                r["ratio"],
                r["refused_per_second"],
                r["verified"],
            ]
            for r in result["runs"]
        ],
    )
    b = result["best"]
    print(
        f"best sustainable: {b['uploads_per_second']:,.0f} uploads/s, p99 "
        f"{b['p99_seconds'] * 1000:,.0f} ms ({b['clients']} clients, {b['workers']} "
        f"worker(s), batch {b['batch_max_size']}/{b['batch_max_age_ms']} ms)",
        file=out,
    )
    for t in result["targets"]:
        print(
            f"target with --workers {t['workers']}: ≥ {t['uploads_per_second']:,.0f}/s with p99 "
            f"≤ {t['p99_seconds'] * 1000:,.0f} ms — measured {t['measured']:,.0f}/s, p99 "
            f"{t['measured_p99_seconds'] * 1000:,.0f} ms: {'met' if t['met'] else 'NOT met'}",
            file=out,
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Ad hoc: ``python -m benchmarks.write_api [CLIENTS BATCH AGE_MS [REQUESTS [WORKERS]]]``."""
    args = list(argv if argv is not None else sys.argv[1:])
    if not args:
        print_result(run(False))
        return 0
    clients, batch, age = int(args[0]), int(args[1]), int(args[2])
    count = int(args[3]) if len(args) > 3 else REQUESTS
    workers = int(args[4]) if len(args) > 4 else 2
    with tempfile.TemporaryDirectory(prefix="stelae-write-api-") as tmp:
        row = one((batch, age), clients, workers, count, Path(tmp))
    print_result({"runs": [row], "best": row, "targets": targets([row])})
    return 0


if __name__ == "__main__":
    sys.exit(main())
