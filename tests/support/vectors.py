"""The published test vectors in tests/vectors/ (their sources: docs/compatibility.md, "Test
vectors"). Tests load them by name, wherever the test file sits in the tree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def load_vectors(name: str) -> Any:
    """``tests/vectors/<name>`` parsed as JSON: ``"merkle.json"``, ``"kinds/rekor_bodies.json"``."""
    return json.loads((VECTORS / name).read_text("utf-8"))
