"""CPU per upload on the write path, stage by stage, in-process (no HTTP, no load generator).

What ``write_api`` measures end to end is the sum of these, spread over processes; this splits it:

- ``kinds``: ``load_json`` + ``from_v2_request`` and the values the service reads from the entry
  (body, leaf hash, UUID, digests, fingerprints, identities), for Rekor v2 P-256 uploads;
- ``service``: the whole write service for the same uploads through ``handle_event`` (the Lambda's
  and ``stelae serve``'s entry point), with a submitter that answers at once from a log already
  holding them — request checks, ``kinds``, the inclusion proof, its verification, the 201;
- ``sequencer``: ``Sequencer.integrate`` per entry on the local backend (fsync on, group commit)
  at batch 1024, for the bare log (``lookup_index=False``) and with the lookup index (every key
  kind: one run and one manifest per batch, and the merges, run by ``Sequencer.merge`` between
  batches so that their CPU is counted). Kernel CPU included.

The baseline, measured in alternation with the stages: one ECDSA P-256 signature verification,
the irreducible part of accepting an upload. Every figure is the best of N rounds of process CPU
time per item; ``ratio`` = stage CPU / baseline CPU.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from benchmarks.table import table
from benchmarks.write_api import signed_requests
from stelae import kinds
from stelae.api.gateway import handle_event
from stelae.api.http import Request
from stelae.api.wiring import write_service
from stelae.client import signing
from stelae.sequencer.engine import Sequencer
from stelae.sequencer.logdir import LocalLog, init_log
from stelae.sequencer.pending import PendingEntry
from stelae.sequencer.receipt import Receipt

ORIGIN = "bench.example/write-path"
PATH = "/api/v2/log/entries"
COUNT, QUICK_COUNT = 3000, 200
BATCH, QUICK_BATCH = 1024, 100
ROUNDS, QUICK_ROUNDS = 3, 1


def cpu_per_item(fn: Callable[[], int]) -> float:
    """Process CPU seconds per item of one call of ``fn`` (which returns how many it did)."""
    t0 = time.process_time()
    n = fn()
    return (time.process_time() - t0) / n


def pending(entry: kinds.Entry) -> PendingEntry:
    return PendingEntry(
        entry.body, entry.artifact_digests, entry.key_fingerprints, entry.identities
    )


class _Instant:
    """A submitter that answers from a log which already holds every entry (no queue, no wait)."""

    def __init__(self, receipts: dict[bytes, Receipt]) -> None:
        self.receipts = receipts

    def submit(self, entry: PendingEntry, timeout: float) -> Receipt:
        return self.receipts[entry.leaf_hash]


def sequencer(log: LocalLog, *, lookup_index: bool) -> Sequencer:
    """The log's own sequencer configuration, with or without the index; merges on demand."""
    config = replace(
        log.config.sequencer_config(), lookup_index=lookup_index, background_merges=False
    )
    return Sequencer(log.store, log.signer, config)


def baseline_stage(count: int) -> Callable[[], int]:
    """``count`` ECDSA P-256 verifications of one prehashed signature: the baseline."""
    key = signing.generate_key("ecdsa-p256")
    digest = signing.digest(key, b"baseline")[1]
    signature = signing.sign_digest(key, digest)
    public = key.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)

    def baseline() -> int:
        for _ in range(count):
            public.verify(signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        return count

    return baseline


def kinds_stage(bodies: Sequence[bytes]) -> Callable[[], int]:
    """Parse every upload and read what the service reads from its entry."""

    def stage() -> int:
        for raw in bodies:
            e = kinds.from_v2_request(kinds.load_json(raw))
            _ = (e.body, e.leaf_hash, e.uuid, e.artifact_digests, e.key_fingerprints)
            _ = e.identities
        return len(bodies)

    return stage


def integrated(local: LocalLog, entries: Sequence[kinds.Entry], batch: int) -> dict[bytes, Receipt]:
    """Integrate ``entries`` into ``local`` (bare log) and return each one's receipt, by leaf
    hash: each carries its batch's checkpoint and record, what the service proves from."""
    seq = sequencer(local, lookup_index=False)
    seq.published()
    receipts: dict[bytes, Receipt] = {}
    for start in range(0, len(entries), batch):
        receipts.update(
            seq.integrate([pending(e) for e in entries[start : start + batch]]).receipts
        )
    seq.close()
    return receipts


def service_stage(
    local: LocalLog, receipts: dict[bytes, Receipt], bodies: Sequence[bytes], statuses: set[int]
) -> Callable[[], int]:
    """Every upload through the whole write service; each status is added to ``statuses``."""
    service = write_service(_Instant(receipts), local.store, local.config.vkey)
    events = [
        Request("POST", PATH, {"content-type": "application/json"}, {}, raw).to_apigw_v2()
        for raw in bodies
    ]

    def stage() -> int:
        for event in events:
            statuses.add(int(handle_event(service, event)["statusCode"]))
        return len(events)

    return stage


def sequencer_stage(
    directory: Path, entries: Sequence[kinds.Entry], batch: int, *, lookup_index: bool
) -> Callable[[], int]:
    """Integrate ``entries`` into a new log in ``directory`` each call (``log-<n>``, or
    ``index-<n>`` with the lookup index), merging between batches."""
    logs = iter(range(10**6))
    prefix = "index" if lookup_index else "log"

    def stage() -> int:
        target, _ = init_log(directory / f"{prefix}-{next(logs)}", ORIGIN)
        s = sequencer(target, lookup_index=lookup_index)
        s.published()
        for start in range(0, len(entries), batch):
            s.integrate([pending(e) for e in entries[start : start + batch]])
            s.merge()
        s.close()
        return len(entries)

    return stage


def best_of(
    rounds: int, baseline: Callable[[], int], stages: dict[str, Callable[[], int]]
) -> dict[str, float]:
    """Each stage's and the baseline's best CPU per item over ``rounds``, the baseline measured
    again after every stage, so that a burst of load hits both."""
    best = {name: float("inf") for name in ["baseline", *stages]}
    for _ in range(rounds):
        for name, fn in [("baseline", baseline), *stages.items()]:
            best[name] = min(best[name], cpu_per_item(fn))
            if name != "baseline":
                best["baseline"] = min(best["baseline"], cpu_per_item(baseline))
    return best


def run(quick: bool) -> dict[str, Any]:
    count = QUICK_COUNT if quick else COUNT
    batch = QUICK_BATCH if quick else BATCH
    rounds = QUICK_ROUNDS if quick else ROUNDS
    bodies = signed_requests(count, "write path")
    baseline = baseline_stage(count)
    entries = [kinds.from_v2_request(kinds.load_json(raw)) for raw in bodies]
    statuses: set[int] = set()
    with tempfile.TemporaryDirectory(prefix="stelae-write-path-") as tmp:
        local, _ = init_log(Path(tmp) / "served", ORIGIN)
        receipts = integrated(local, entries, batch)
        stages: dict[str, Callable[[], int]] = {
            "kinds": kinds_stage(bodies),
            "service": service_stage(local, receipts, bodies, statuses),
            "sequencer, bare log": sequencer_stage(Path(tmp), entries, batch, lookup_index=False),
            "sequencer, every index": sequencer_stage(Path(tmp), entries, batch, lookup_index=True),
        }
        best = best_of(rounds, baseline, stages)
    assert statuses == {201}, statuses
    base = best["baseline"]
    return {
        "name": "write_path",
        "quick": quick,
        "uploads": count,
        "batch": batch,
        "rounds": rounds,
        "baseline_us": base * 1e6,
        "stages": [
            {"stage": name, "cpu_us": best[name] * 1e6, "ratio": best[name] / base}
            for name in stages
        ],
    }


def print_result(result: dict[str, Any], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    print(
        f"write_path — process CPU per upload, in-process, {result['uploads']:,} signed v2 "
        f"uploads (P-256), best of {result['rounds']}; ratio = CPU / one ECDSA P-256 "
        f"verification ({result['baseline_us']:,.1f} µs, measured in alternation)",
        file=out,
    )
    table(
        out,
        ["stage", "µs per upload", "ratio"],
        [[s["stage"], s["cpu_us"], s["ratio"]] for s in result["stages"]],
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = list(argv if argv is not None else sys.argv[1:])
    result = run("--quick" in args)
    print_result(result)
    if "--json" in args:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
