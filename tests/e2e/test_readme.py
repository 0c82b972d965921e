"""The README's "Upload and verify with curl alone" walk-through, run as written.

The block from ``cd "$(mktemp -d)"`` to the entry-bundle ``curl`` is cut out of README.md and run
with bash, from an empty directory that must stay empty (the walk-through writes into the
scratch directory it makes), against a real ``stelae serve`` on the port the README names
(another free port is substituted when that one is taken). A ``curl`` wrapper appends each
status code to the output, so the test sees the 201 and can verify the returned proof and the
checkpoint. If the README changes so that the block is gone or fails, this test fails: that is
the point.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.support.api import Reply, check_v2, start_serve

README = Path(__file__).resolve().parents[2] / "README.md"
START = 'cd "$(mktemp -d)"'
END = "/tile/entries/"
STATUS = "\n@@status "


def walkthrough() -> tuple[str, str]:
    """The README's shell block and the host:port it talks to."""
    lines = README.read_text(encoding="utf-8").splitlines()
    first = next(i for i, line in enumerate(lines) if line.strip().startswith(START))
    last = next(i for i in range(first, len(lines)) if "curl" in lines[i] and END in lines[i])
    script = "\n".join(lines[first : last + 1]) + "\n"
    hosts = set(re.findall(r"http://(127\.0\.0\.1:\d+)/", script))
    assert len(hosts) == 1, hosts
    return script, hosts.pop()


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


@pytest.mark.skipif(
    shutil.which("openssl") is None or shutil.which("curl") is None,
    reason="the walk-through needs openssl and curl",
)
def test_readme_curl_walkthrough(tmp_path: Path) -> None:
    script, address = walkthrough()
    host, port = address.split(":")
    listen = address if port_is_free(host, int(port)) else f"{host}:0"
    serve = start_serve(tmp_path / "stelae-data", listen)
    try:
        actual = f"{serve.log.host}:{serve.log.port}"
        script = script.replace(address, actual)
        # Each curl also prints "@@status CODE" after the body.
        prelude = (
            "set -euo pipefail\ncurl() { command curl -w '\\n@@status %{http_code}\\n' \"$@\"; }\n"
        )
        # Run from a directory standing for the user's checkout: the walk-through must leave
        # it as it was and write its files into the scratch directory it makes (under TMPDIR).
        here, scratch = tmp_path / "checkout", tmp_path / "tmp"
        here.mkdir()
        scratch.mkdir()
        done = subprocess.run(
            ["bash", "-c", prelude + script],
            cwd=here,
            env={**os.environ, "TMPDIR": str(scratch)},
            check=False,
            capture_output=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        assert list(here.iterdir()) == []
        written = {p.name for p in scratch.rglob("*") if p.is_file()}
        assert {"artifact.txt", "key.pem", "request.json"} <= written, written
        out = done.stdout.decode(errors="replace")
        post, _, rest = out.partition(STATUS)
        status, _, rest = rest.partition("\n")
        assert status == "201", out
        check_v2(
            serve.log,
            Reply(201, {"content-type": "application/json"}, post.encode()),
            "hashedrekord",
            "0.0.2",
        )
        checkpoint, _, rest = rest.partition(STATUS)
        assert rest.startswith("200\n")
        cp = serve.log.client.open_checkpoint(checkpoint.encode())
        assert cp.checkpoint.size == 1
        assert checkpoint.encode() == (serve.log.log_dir / "checkpoint").read_bytes()
        # The tile dump and the bundle came back too (the last status codes in the output).
        assert out.rstrip().endswith(f"{STATUS.strip()} 200")
        assert json.loads(post)["logIndex"] == "0"
    finally:
        assert serve.terminate()[0] == 0
