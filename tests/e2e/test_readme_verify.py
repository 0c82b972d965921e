"""The README's "verify it by hand" block: the leaf hash, the level-0 tile and the root agree."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_readme import README, walkthrough
from tests.support.api import start_serve

START = "curl -s http://127.0.0.1:8080/tile/entries/000.p/1 | tail -c +3"


def verify_block() -> str:
    lines = README.read_text(encoding="utf-8").splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(START))
    last = next(i for i in range(first, len(lines)) if lines[i].startswith("```"))
    return "\n".join(lines[first:last]) + "\n"


@pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("openssl", "curl", "xxd", "sha256sum")),
    reason="the walk-through needs openssl, curl, xxd and sha256sum",
)
def test_readme_hand_verification(tmp_path: Path) -> None:
    upload, address = walkthrough()
    serve = start_serve(tmp_path / "stelae-data", "127.0.0.1:0")
    try:
        actual = f"{serve.log.host}:{serve.log.port}"
        # The bundle the first block prints has no final newline: start the checks on a new line.
        script = "set -euo pipefail\n" + (upload + "echo\n" + verify_block()).replace(
            address, actual
        )
        done = subprocess.run(
            ["bash", "-c", script], cwd=tmp_path, check=False, capture_output=True, timeout=60
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        lines = done.stdout.decode(errors="replace").strip().splitlines()
        leaf, tile, root = lines[-3:]
        assert len(leaf) == 64
        assert leaf == tile == root, lines[-3:]
    finally:
        serve.terminate()
