"""Smoke test of ``benchmarks/write_api.py`` in quick mode: it runs end to end against a real
``stelae serve``, every timed upload is a 201, the sampled proofs verify, and the server exits 0.
Nothing here asserts on a timing (the benchmark reports those)."""

from __future__ import annotations

import io

from benchmarks import run, write_api


def test_write_api_quick() -> None:
    assert run.BENCHMARKS["write_api"] is write_api
    result = write_api.run(True)
    (row,) = result["runs"]
    assert row["created"] == row["requests"] == write_api.QUICK_REQUESTS
    assert row["statuses"] == {"201": row["requests"]}
    assert row["verified"] >= 2
    assert row["exit_status"] == 0
    assert 0 < row["p50_seconds"] <= row["p99_seconds"] <= row["max_seconds"]
    assert row["uploads_per_second"] > 0 and row["baseline_gets_per_second"] > 0
    assert row["refused_per_second"] > 0
    assert result["best"] is row
    out = io.StringIO()
    write_api.print_result(result, out)
    assert "uploads/s" in out.getvalue()
