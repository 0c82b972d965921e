"""Smoke tests of the benchmarks: each runs in --quick mode and reports sane, exact-where-possible
figures. Nothing here asserts on a timing (that is what the benchmarks themselves are for)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import integration, lookups, memory, monitor, proofs, run, writes
from stelae.tiles.compact import perfect_subtrees
from stelae.tiles.layout import TILE_HEIGHT, TILE_WIDTH, TileID, tile_width
from stelae.tiles.proof import Range, consistency_ranges, inclusion_ranges

_cache: dict[str, dict[str, Any]] = {}


def quick(name: str) -> dict[str, Any]:
    """Each benchmark's quick result, computed once for all the tests that read it."""
    if name not in _cache:
        _cache[name] = run.BENCHMARKS[name].run(True)
    return _cache[name]


# -- proofs ------------------------------------------------------------------------------------


def naive_tiles(ranges: list[Range], size: int) -> set[str]:
    """The tiles a proof made of ``ranges`` must read: the tile holding each perfect node."""
    out = set()
    for start, end in ranges:
        for level, index in perfect_subtrees(start, end):
            tile_level, sub = divmod(level, TILE_HEIGHT)
            tile_index = (index << sub) // TILE_WIDTH
            width = tile_width(tile_level, tile_index, size)
            out.add(TileID(tile_level, tile_index, width).path())
    return out


@pytest.mark.parametrize(
    ("index", "size"),
    [(0, 1), (0, 1000), (999, 1000), (255, 257), (123_456, 10**6), (10**9 - 1, 10**9), (7, 10**9)],
)
def test_inclusion_tiles_match_a_naive_count(index: int, size: int) -> None:
    fetched = proofs.inclusion_fetches(index, size)
    assert set(fetched) == naive_tiles(inclusion_ranges(index, size), size)


@pytest.mark.parametrize(
    ("size1", "size2"), [(1, 2), (256, 257), (999, 1000), (65_536, 10**6), (12_345, 10**9)]
)
def test_consistency_tiles_match_a_naive_count(size1: int, size2: int) -> None:
    fetched = proofs.consistency_fetches(size1, size2)
    assert set(fetched) == naive_tiles(consistency_ranges(size1, size2), size2)


def test_proofs_report() -> None:
    r = quick("proofs")
    assert r["node_hashes_per_second"] > 0
    assert [s["size"] for s in r["sizes"]] == [10**k for k in range(3, 10)]
    for s in r["sizes"]:
        levels = 1 + (s["size"] - 1).bit_length() // TILE_HEIGHT  # tile levels that exist
        for kind in ("inclusion", "consistency"):
            k = s[kind]
            assert 1 <= k["tiles"]["avg"] <= k["tiles"]["max"] <= 2 * levels
            assert k["fetch_calls"]["avg"] >= k["tiles"]["avg"]
            assert k["proof_hashes"]["max"] <= 2 * s["size"].bit_length()
            for timing in ("verify", "generate"):
                assert set(k[timing]) == {"per_second", "microseconds", "node_hashes"}
                assert k[timing]["per_second"] > 0


def test_consistency_roots_verify() -> None:
    from stelae.tiles.client import TileReader
    from stelae.tiles.proof import verify_consistency

    reader = TileReader(proofs.SyntheticTiles())
    for m, n in [(3, 10), (4, 10), (1000, 70_000)]:
        p = reader.consistency_proof(m, n)
        r1, r2 = proofs.consistency_roots(m, n, p, reader.root(m))
        verify_consistency(m, n, p, r1, r2)


# -- lookups -----------------------------------------------------------------------------------


def test_lookup_simulation_follows_the_policy() -> None:
    sizes = (10**4, 10**5, 2 * 10**5)
    sim = lookups.simulate(sizes)
    policy = lookups.POLICY
    runs: list[tuple[int, int]] = []
    rewritten = most = 0
    for n in range(lookups.BATCH, sizes[-1] + 1, lookups.BATCH):
        runs.append((n - lookups.BATCH, n))
        while (i := policy.plan(runs)) is not None:
            runs[i : i + 2] = [(runs[i][0], runs[i + 1][1])]
            rewritten += runs[i][1] - runs[i][0]
        most = max(most, len(runs))
        if n in sim:
            assert sim[n]["runs"] == runs
            assert sim[n]["rewritten_entries"] == rewritten
            assert sim[n]["max_runs"] == most


def test_lookup_record_bytes() -> None:
    assert lookups.mean_uvarint_bytes(128) == 1
    assert lookups.mean_uvarint_bytes(256) == 1.5
    # The model against real runs: one batch with 4 fresh keys per entry (the leaf, a digest,
    # a signer key shared by many, an identity), so the model is an upper bound within ~25%.
    _, shards = lookups.real_run(1000)
    real = sum(len(r.encode(0)) for sh in shards for r in sh.records)
    assert 0.75 * lookups.record_bytes(1000) <= real <= lookups.record_bytes(1000)


def test_lookups_report() -> None:
    r = quick("lookups")
    assert [s["size"] for s in r["sizes"]] == list(lookups.QUICK_SIZES)
    assert r["node_hashes_per_second"] > 0
    for s in r["sizes"]:
        # One run per size class at most: log10(N / 1024) + 1, plus the checkpoint and manifest.
        assert 1 <= s["runs"] <= len(str(s["size"] // 1024))
        assert s["objects_per_lookup"] == 2 + s["runs"] <= s["max_objects_per_lookup"]
        assert s["batch_shards_per_1000"] == 1
        assert s["verify_proofs_node_hashes"] > 0 and s["verify_shards_node_hashes"] > 0
        assert s["merge_cpu_node_hashes"] >= 0
    first = r["sizes"][0]
    assert first["runs"] == 1 and first["rewrites_per_entry"] == 0 == first["merges"]
    rewrites = [s["rewrites_per_entry"] for s in r["sizes"]]
    assert rewrites == sorted(rewrites) and rewrites[-1] < 5 * len(rewrites)
    real = r["real_run"]
    assert real["records"] >= real["entries"] * 3
    for cost in ("verify_proof", "verify_shard", "build_per_entry", "merge_per_entry"):
        assert set(real[cost]) == {"microseconds", "node_hashes"}
        assert real[cost]["node_hashes"] > 0


# -- integration -------------------------------------------------------------------------------


def test_integration_report() -> None:
    r = quick("integration")
    runs = r["runs"]
    assert [(x["config"], x["batch"]) for x in runs] == [
        (c, b) for c in ("none", "all", integration.FLOOR) for b in integration.BATCH_SIZES
    ]
    for x in runs:
        config = "none" if x["config"] == integration.FLOOR else x["config"]
        assert x["entries"] == integration._QUICK_ENTRIES[config][x["batch"]]
        assert x["seconds"] > 0 and x["entries_per_second"] > 0 and x["ratio"] > 0
        assert x["ratio"] == pytest.approx(
            x["entries_per_second"] / x["baseline_entries_per_second"]
        )
    t = r["target"]
    assert t["met"] == (t["measured"] >= 0.4)
    t = r["index_target"]
    assert t["batch"] == 4096 and t["entries"] == integration._QUICK_ENTRIES["all"][4096]
    assert t["measured"] == pytest.approx(
        t["indexed_entries_per_second"] / t["bare_entries_per_second"]
    )
    assert t["met"] == (t["measured"] >= 0.5)


# -- writes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "count", "floor"),
    [(0, 1, 4), (1, 1, 4), (255, 1, 5), (0, 256, 5), (0, 4096, 35), (65_535, 1, 6)],
)
def test_floor_writes(start: int, count: int, floor: int) -> None:
    # bundles + tiles at each level that gains a hash + checkpoint + history
    assert writes.floor_writes(start, count) == floor


def test_writes_are_exact() -> None:
    r = quick("writes")
    by_batch = {x["batch"]: x for x in r["runs"]}
    # Two batches of 4096: 32 bundles, 32 level-0 tiles, a level-1 tile written at widths 16
    # and 32; per batch a checkpoint, its history, a batch record, a run and a manifest; then
    # one merge of the two runs, into a run of its own.
    w = by_batch[4096]["writes"]
    assert {k: v for k, v in w.items() if "runs" not in k} == {
        "tiles": 34,
        "bundles": 32,
        "checkpoint": 2,
        "history": 2,
        "batch record": 2,
        "manifests": 2,
    }
    assert by_batch[4096]["merges"] == 1
    assert w["index runs (batch)"] >= 2 and w["index runs (merges)"] >= 1
    for x in r["runs"]:
        # The sequencer writes each changed tile and bundle exactly once: it sits on the floor.
        assert x["log_objects_per_1000"] == pytest.approx(x["floor_per_1000"])
        assert x["requests_per_1000"]["PUT"] >= x["total_per_1000"]
        n = x["batches"]
        for kind in ("checkpoint", "history", "batch record", "manifests"):
            assert x["writes"][kind] == n, kind
        assert x["writes"]["index runs (batch)"] >= n  # a run of at least one shard per batch
        assert (x["merges"] > 0) == (x["writes"]["index runs (merges)"] > 0)
    # Quick sizes are below the first class boundary (10,240): every batch after the first
    # merges into the one class-0 run.
    assert by_batch[256]["merges"] == by_batch[256]["batches"] - 1
    assert r["layout_floor_per_1000"] == pytest.approx(7.8125)
    assert [t["batch"] for t in r["targets"]] == [256, 4096]
    for t in r["targets"]:
        assert t["met"] == (t["measured"] <= t["per_1000"])


def test_every_key_has_a_kind() -> None:
    with pytest.raises(AssertionError):
        writes.kind_of("elsewhere/x")
    with pytest.raises(AssertionError):  # the per-entry objects of the old index are gone
        writes.kind_of("index/sha256/ab")
    assert writes.kind_of("tile/entries/000.p/3") == "bundles"
    assert writes.kind_of("tile/1/000") == "tiles"
    assert writes.kind_of("batch/4096") == "batch record"
    assert writes.kind_of("index/run/0-256/0") == "index runs (batch)"
    assert writes.kind_of("index/run/0-512/1", merging=True) == "index runs (merges)"
    assert writes.kind_of("index/manifest/512") == "manifests"


# -- memory ------------------------------------------------------------------------------------


def test_memory_report() -> None:
    r = quick("memory")
    if "skipped" in r:
        pytest.skip(r["skipped"])
    assert r["entries"] == memory.QUICK_ENTRIES
    assert r["batches"] == -(-memory.QUICK_ENTRIES // memory.BATCH)
    peaks = r["peak_rss"]
    assert list(peaks) == ["10%", "50%", "100%"]
    assert r["rss_before"] > 0 and peaks["10%"] <= peaks["50%"] <= peaks["100%"] <= r["vm_hwm"]
    assert r["disk_bytes"] > memory.QUICK_ENTRIES * 1024


# -- monitor -----------------------------------------------------------------------------------


def test_monitor_report() -> None:
    r = quick("monitor")
    if "skipped" in r:
        pytest.skip(r["skipped"])
    n, grow = monitor.QUICK_ENTRIES, r["growth"]
    assert r["entries"] == n and grow == round(n * monitor.GROWTH)
    assert [x["how"] for x in r["full"]] == ["core", "round", "process"]
    assert [x["how"] for x in r["resumed"]] == ["round", "process"]
    for x in r["full"]:
        assert x["entries"] == x["tree_size"] == n
    for x in r["resumed"]:
        assert x["entries"] == grow and x["tree_size"] == n + grow
    for x in [*r["full"], *r["resumed"]]:
        assert x["seconds"] > 0 and x["ratio"] > 0
        assert x["ratio"] == pytest.approx(
            x["entries_per_second"] / r["baseline_entries_per_second"]
        )
    bundles = -(-n // 256)
    core, rnd = r["full"][0], r["full"][1]
    # A full audit reads every bundle exactly once; a resumed one only those with new entries.
    assert core["bundles_fetched"] == rnd["bundles_fetched"] == bundles
    assert (
        r["resumed"][0]["bundles_fetched"] == r["new_bundles"] == -(-(n + grow) // 256) - n // 256
    )
    assert r["disk_bytes"] > n * 1024


# -- s3_latency --------------------------------------------------------------------------------


def test_s3_latency_waves_group_requests_in_flight_together() -> None:
    from benchmarks.s3_latency import Request, waves

    def req(start: float, end: float) -> Request:
        return Request("PUT", "batch/0", start, end, 0.05, "t")

    # Two issued together, one after the first completed, then two more together.
    rs = [req(0, 5), req(0.1, 5.1), req(5.2, 10), req(10.1, 15), req(10.2, 15)]
    assert [len(w) for w in waves(rs)] == [2, 1, 2]
    assert waves([]) == []


def test_s3_latency_report() -> None:
    from benchmarks import s3_latency

    r = quick("s3_latency")
    rows = {x["lookup_index"]: x for x in r["runs"]}
    for index, x in rows.items():
        n = x["requests_per_batch"]
        # Per batch: the claim, the history object, the checkpoint swap; at most one checkpoint
        # read (none when the sequencer trusts what it published itself).
        for label in ("PUT batch", "PUT checkpoint-history", "PUT checkpoint"):
            assert n[label] == 1, (label, n)
        assert n.get("GET checkpoint", 0) <= 1
        assert n.get("PUT index-manifest", 0) == (1 if index else 0)
        assert (n.get("PUT index-run", 0) >= 1) is index
        # The claim comes first and the swap last, each in a wave of its own, the tiles and
        # bundles in between.
        assert x["waves_max"] >= x["waves_mean"] >= 3
        assert x["critical_path_ms"] >= x["waves_mean"] * x["get_ms"]
        assert x["entries_per_second"] == pytest.approx(x["entries"] / x["seconds"])
        assert "PUT batch" in x["typical_waves"][:2]
        assert x["typical_waves"][-1] == "PUT checkpoint"
    # Merges are off the critical path: only the merger thread writes merged runs.
    assert rows[True]["merges"] >= 1 and rows[True]["merger_requests"]["PUT index-run"] >= 1
    assert r["target"]["batch"] == s3_latency.TARGET["batch"] and r["target"]["met"] is False


# -- the runner and the printers ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["proofs", "lookups", "integration", "writes", "memory", "monitor", "s3_latency", "write_path"],
)
def test_printer(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    run.BENCHMARKS[name].print_result(quick(name))
    assert capsys.readouterr().out.startswith(name)


def test_cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    assert run.main(["--quick", "--only", "proofs", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["quick"] is True and data["commit"]
    assert set(data["machine"]) == {"cpu", "cores", "python", "system", "date"}
    assert list(data["benchmarks"]) == ["proofs"]
    printed = capsys.readouterr()
    assert "inclusion proofs" in printed.out and "running proofs" in printed.err


# -- aws_cost ----------------------------------------------------------------------------------


def test_aws_cost_counts_are_exact() -> None:
    from collections import Counter

    from benchmarks import aws_cost

    r = quick("aws_cost")
    if "skipped" in r:
        pytest.skip(r["skipped"])
    assert [p["rate"] for p in r["profiles"]] == list(aws_cost.RATES)
    for p in r["profiles"]:
        n, b, waves = p["entries"], p["batch"], p["waves"]
        assert n == b * waves and p["statuses"] == {"201": n}
        assert not p["proxy_errors"]
        calls: Counter[tuple[str, str, str, str]] = Counter()
        ops: Counter[tuple[str, str, str]] = Counter()
        for row in p["requests"]:
            calls[row["caller"], row["service"], row["operation"], row["detail"]] += row["calls"]
            ops[row["caller"], row["service"], row["operation"]] += row["calls"]
        # The write function, on the virtual clock: one SendMessage per new entry; the
        # checkpoint before it and one per look, exactly as many looks as the handler's schedule
        # needs to see its batch published (usually one: three GETs per write); the batch
        # record that is its receipt; no tile, no index look-up, no write.
        assert ops["write", "sqs", "SendMessage"] == n
        assert calls["write", "s3", "GetObject", "checkpoint"] == n + p["model"]["expected_polls"]
        assert calls["write", "s3", "GetObject", "batch record"] == n
        assert ops["write", "s3", "GetObject"] == 2 * n + p["model"]["expected_polls"]
        assert not any(k[0] == "write" and k[3] in ("tile", "bundle") for k in calls)
        assert not any(k[1] == "s3" and k[2].startswith("Put") for k in ops if k[0] == "write")
        # The ESM: a receive per ≤ 10 messages at least, a DeleteMessageBatch per ≤ 10 exactly.
        assert ops["esm", "sqs", "DeleteMessageBatch"] == waves * -(-b // 10)
        assert ops["esm", "sqs", "ReceiveMessage"] >= waves * -(-b // 10)
        # The sequencer: per batch a batch record, a manifest, a history object and a
        # checkpoint; runs, tiles and bundles by the batch; nothing per entry; the key only at
        # start-up.
        assert p["sequencer"]["invocations"] == waves and p["sequencer"]["entries"] == [b] * waves
        for kind in ("batch record", "index manifest", "checkpoint history"):
            assert calls["sequencer", "s3", "PutObject If-None-Match", kind] == waves
        assert calls["sequencer", "s3", "PutObject If-Match", "checkpoint"] == waves
        assert calls["sequencer", "s3", "PutObject If-None-Match", "index run"] >= waves
        assert not any(k[3] in ("index/leaf", "older index", "intent") for k in calls)
        assert not any(k[1] == "ssm" for k in ops)
        warmup = Counter((x["caller"], x["service"], x["operation"]) for x in p["warmup_requests"])
        assert warmup["sequencer", "ssm", "GetParameter"] == 1
        assert p["write"]["invocations"] == len(p["write"]["seconds"]) == n
        c = p["cost"]
        assert c["idle"]["total_without_storage"] == pytest.approx(0.2592)  # the ESM's pollers
        assert c["month"]["entries"] == p["rate"] * 30 * 86_400
        assert p["storage"]["bytes"] > 500 * n  # each entry's body, in its bundle and record
        # Asynchronous writes (wait 0): answered 202 at once, a SendMessage each and no GET.
        a = p["async"]
        assert a["statuses"] == {"202": a["entries"]} and a["entries"] > 0
        a_ops: Counter[tuple[str, str, str]] = Counter()
        for row in a["requests"]:
            a_ops[row["caller"], row["service"], row["operation"]] += row["calls"]
        assert {k: v for k, v in a_ops.items() if k[0] == "write"} == {
            ("write", "sqs", "SendMessage"): a["entries"]
        }
        assert a["cost"]["usd_per_million_total"] < c["usd_per_million_total"]
    assert [v["tree_size"] for v in r["verification"]] == [10**6, 10**9]
    assert {k for k in r["prices"]["items"]} >= {"s3_put", "s3_get", "lambda_gb_second"}


def test_aws_cost_prices() -> None:
    """API Gateway at the month's volume, the first-tier and Function URL variants, and no
    access log in the totals (api_access_log = false by default)."""
    r = quick("aws_cost")
    if "skipped" in r:
        pytest.skip(r["skipped"])
    for p in r["profiles"]:
        n = p["entries"]
        c = p["cost"]
        assert c["usd_per_million_total"] == pytest.approx(sum(c["usd_per_million"].values()))
        # HTTP API requests at the month's volume: USD 1.00 per million for the first 300
        # million, 0.90 beyond (1,000/s is 2.59 billion a month: a blend).
        month = p["rate"] * 30 * 86_400
        apigw = (min(month, 300e6) * 1.0 + max(0, month - 300e6) * 0.9) / month
        assert apigw == (1.0 if p["rate"] <= 100 else pytest.approx(0.9116, abs=1e-4))
        assert c["usd_per_million"]["API Gateway HTTP API requests"] == pytest.approx(apigw)
        assert c["variants"]["apigw_first_tier_usd_per_million_total"] == pytest.approx(
            c["usd_per_million_total"] + 1.0 - apigw
        )
        assert c["usd_per_million"]["Lambda write: requests"] == pytest.approx(0.2)
        assert c["variants"]["function_url_usd_per_million_total"] == pytest.approx(
            c["usd_per_million_total"] - apigw
        )
        # No access log by default (api_access_log = false): the logs are the handlers' own
        # lines (none on success); the access log's line per write is priced apart.
        assert c["usd_per_million"]["CloudWatch Logs ingestion"] == pytest.approx(
            p["app_log"]["bytes"] / n * 1e6 / 1e9 * 0.50
        )
        assert 0.10 < c["variants"]["access_log_usd_per_million"] < 0.14


def test_aws_cost_async_at_its_own_cadence() -> None:
    """At 100 and 1,000/s, asynchronous waves at window 5 s and batch 1,000 (capped at 8 entries
    a wave in --quick), counted like the others; none at 1/s."""
    from collections import Counter

    from benchmarks.aws_model import ASYNC_CADENCE

    r = quick("aws_cost")
    if "skipped" in r:
        pytest.skip(r["skipped"])
    by_rate = {p["rate"]: p for p in r["profiles"]}
    assert "own_async" not in by_rate[1]
    for rate in (100, 1000):
        own = by_rate[rate]["own_async"]
        b, waves, n = own["batch"], own["waves"], own["entries"]
        assert (own["window"], own["batch_size"]) == (5.0, 1000)
        assert b == min(8, ASYNC_CADENCE.batch(rate)) and n == b * waves >= 8
        assert own["statuses"] == {"202": n} and not own["proxy_errors"]
        ops: Counter[tuple[str, str, str]] = Counter()
        for row in own["requests"]:
            ops[row["caller"], row["service"], row["operation"]] += row["calls"]
        assert {k: v for k, v in ops.items() if k[0] == "write"} == {
            ("write", "sqs", "SendMessage"): n
        }
        assert ops["esm", "sqs", "DeleteMessageBatch"] == waves * -(-b // 10)
        assert own["sequencer"]["entries"] == [b] * waves
        assert any(k[:2] == ("sequencer", "s3") and k[2].startswith("Put") for k in ops)
        c = own["cost"]
        assert c["usd_per_million_total"] == pytest.approx(sum(c["usd_per_million"].values()))
        assert c["month"]["entries"] == rate * 30 * 86_400


def test_aws_cost_writer_invoke_is_modelled() -> None:
    """sequencer_trigger = writer_invoke, modelled on the counted profiles and marked †: idle is
    a cold sweep every 10 minutes; per entry, the drain loop against the ESM."""
    import math

    from benchmarks import aws_wake

    r = quick("aws_cost")
    if "skipped" in r:
        pytest.skip(r["skipped"])
    w = r["writer_invoke"]
    assert w["idle"]["items"]["sweeps a month"] == 30 * 86_400 / 600 == 4320
    # Per sweep: a request, the INIT (the measured import time) and one GetQueueAttributes at
    # 1 GB arm64, one SQS request; the rule's events free.
    billed = math.ceil((r["lambda_init_seconds"] + 0.010) * 1000) / 1000
    per_sweep = 0.20e-6 + billed * 1.0 * 0.0000133334 + 0.40e-6
    assert w["idle"]["total_without_storage"] == pytest.approx(4320 * per_sweep)
    assert [p["rate"] for p in w["profiles"]] == [1, 100, 1000]
    for p in w["profiles"]:
        d = dict(p["difference_usd_per_million"])
        total = d.pop("= difference per million entries")
        assert total == pytest.approx(sum(d.values()))
        assert d["write λ: the Invoke's ~20 ms (GB-s)"] == pytest.approx(0.020 * 0.125 * 13.3334)
        assert p["loop"]["continuous"] == 1.0  # an arrival at least once per long poll
    # At 1/s the loop never finds the queue empty for a whole poll: billed all the time.
    assert w["profiles"][0]["loop"]["sequencer_seconds_per_entry"] == 1.0
    header, rows = aws_wake.rows(r)
    assert len(header) == 4 and rows and all(str(row[0]).endswith("†") for row in rows)
    assert any("writer_invoke" in a for a in r["assumptions"])


def _profile(rate: int, batch: int, integrate: float) -> dict[str, Any]:
    """A counted profile as aws_cost records it, reduced to what the writer_invoke model reads:
    the ESM's ⌈b/10⌉ receives and deletes per batch, one sequencer invocation per batch."""
    waves = 4
    chunks = -(-batch // 10) * waves
    return {
        "rate": rate,
        "batch": batch,
        "window": 1.0,
        "entries": batch * waves,
        "sequencer": {"invocations": waves},
        "model": {"integrate_seconds": integrate},
        "requests": [
            {"caller": "esm", "operation": op, "billed": chunks}
            for op in ("ReceiveMessage", "DeleteMessageBatch")
        ],
    }


@pytest.mark.parametrize(
    ("rate", "batch", "integrate", "keeps_up", "billed_per_entry"),
    [
        (1, 1, 0.25, True, 1.0),  # the loop never finds the queue empty: billed all the time
        (100, 100, 0.27, True, 0.01),  # ditto: 1/rate per entry
        # Full batches of 256 take 0.34 s + 26 receives + 26 deletes at 10 ms: behind.
        (1000, 256, 0.34, False, (0.34 + 0.52) / 256),
    ],
)
def test_writer_invoke_loop_model(
    rate: int, batch: int, integrate: float, keeps_up: bool, billed_per_entry: float
) -> None:
    from benchmarks import aws_wake

    p = _profile(rate, batch, integrate)
    loop = aws_wake.per_entry(p, 256)
    assert loop["keeps_up"] == float(keeps_up) and loop["continuous"] == 1.0
    assert loop["sequencer_seconds_per_entry"] == pytest.approx(billed_per_entry)
    # One invocation per loop: the 120 s timeout less two 1 s long polls + the 1 s window +
    # max(5, I) + 1 s.
    assert loop["invocations_per_entry"] == pytest.approx(1 / (rate * 111))
    d = aws_wake.difference(p, 256)
    esm_gb_s = 4 * (integrate * 1.0 * 0.0000133334) / (4 * batch) * 1e6
    assert d["sequencer λ: GB-s (billed while the loop waits and polls)"] == pytest.approx(
        billed_per_entry * 13.3334 - esm_gb_s, rel=1e-3
    )
    assert d["sequencer λ: requests (one per drain loop, not per batch)"] == pytest.approx(
        0.2 / (rate * 111) - 0.2 / batch
    )


def test_aws_cost_printers(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import aws_cost

    r = quick("aws_cost")
    if "skipped" in r:
        pytest.skip(r["skipped"])
    aws_cost.print_result(r)
    assert capsys.readouterr().out.startswith("aws_cost")
    md = aws_cost.markdown(r)
    assert "| SQS | SendMessage | write λ |  | 1,000,000 |" in md
    assert "| asynchronous at its own cadence (window 5 s, batch 1,000), counted | — |" in md
    assert "**sequencer_trigger = writer_invoke (a model on the measured figures, †)**" in md


def test_file_creation_reports_one_figure_pair_per_round(tmp_path: Path) -> None:
    from benchmarks import file_creation

    figures = file_creation.rounds(str(tmp_path), 2)
    assert len(figures) == 2
    assert all(opened > 0 and cpu >= 0 for opened, cpu in figures)
    assert list(tmp_path.iterdir()) == []  # its files are deleted afterwards


def test_write_path_report() -> None:
    r = quick("write_path")
    assert [s["stage"] for s in r["stages"]] == [
        "kinds",
        "service",
        "sequencer, bare log",
        "sequencer, every index",
    ]
    assert r["baseline_us"] > 0
    for s in r["stages"]:
        assert s["cpu_us"] > 0
        assert s["ratio"] == pytest.approx(s["cpu_us"] / r["baseline_us"])
