"""Every test under tests/e2e/ is marked ``e2e``: it runs real processes (``stelae serve``,
``stelae witness``, the CLI against them), external tools (terraform, Go, Chromium, curl,
sigstore-python) or the benchmarks and the README as written. ``pytest -m "not e2e"`` runs the
unit tests alone; CI runs both."""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A conftest's collection hook sees the whole session's items, not just its folder's.
    for item in items:
        if _HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.e2e)
