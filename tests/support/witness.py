"""Real ``stelae witness`` processes and a small in-memory log that feeds them."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from stelae.tiles.addcheckpoint import AddCheckpointRequest
from stelae.tiles.checkpoint import Checkpoint, sign_checkpoint
from stelae.tiles.hashing import leaf_hash
from stelae.tiles.notekeys import Ed25519NoteSigner
from tests.support.merkle_reference import consistency, mth

LOG_ORIGIN = "example.test/witnessed-log"


def stelae_command() -> list[str]:
    """The installed ``stelae`` script beside this interpreter (what a user runs)."""
    script = Path(sys.executable).with_name("stelae")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from stelae.cli.main import main; main()"]


@dataclass
class MemoryTree:
    """Leaves and a log key: signed checkpoints and consistency proofs at any size."""

    signer: Ed25519NoteSigner = field(
        default_factory=lambda: Ed25519NoteSigner(LOG_ORIGIN, bytes([42]) * 32)
    )
    leaves: list[bytes] = field(default_factory=list)

    def grow(self, n: int, tag: bytes = b"") -> MemoryTree:
        for _ in range(n):
            self.leaves.append(leaf_hash(tag + b"entry %d" % len(self.leaves)))
        return self

    def fork(self, size: int) -> MemoryTree:
        """A tree that shares the first ``size`` leaves (grow it with another tag)."""
        return MemoryTree(self.signer, self.leaves[:size])

    def checkpoint(self, size: int | None = None) -> Checkpoint:
        size = len(self.leaves) if size is None else size
        return Checkpoint(self.signer.name, size, mth(self.leaves[:size]))

    def note(self, size: int | None = None) -> bytes:
        return sign_checkpoint(self.checkpoint(size), self.signer)

    def proof(self, old: int, new: int) -> list[bytes]:
        if old in (0, new):
            return []
        return consistency(old, self.leaves[:new])

    def request(self, old: int, size: int | None = None) -> bytes:
        size = len(self.leaves) if size is None else size
        return AddCheckpointRequest(old, tuple(self.proof(old, size)), self.note(size)).to_bytes()


def log_list(*entries: tuple[str, int]) -> bytes:
    lines = ["# test log list", "logs/v0", ""]
    for vkey, qpd in entries:
        lines += [f"vkey {vkey}", f"qpd {qpd}", "contact tests", ""]
    return "\n".join(lines).encode()


@dataclass
class WitnessProcess:
    proc: subprocess.Popen[str]
    url: str
    vkey: str
    data: Path

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.url.removeprefix("http://").rsplit(":", 1)
        return host, int(port)

    def post(self, body: bytes, timeout: float = 10.0) -> tuple[int, str, bytes]:
        conn = http.client.HTTPConnection(*self.address, timeout=timeout)
        try:
            conn.request("POST", "/add-checkpoint", body)
            res = conn.getresponse()
            return res.status, res.getheader("Content-Type", ""), res.read()
        finally:
            conn.close()

    def get(self, path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(*self.address, timeout=10)
        try:
            conn.request("GET", path)
            res = conn.getresponse()
            return res.status, res.read()
        finally:
            conn.close()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.communicate(timeout=30)
        return self.proc.returncode


def init_witness(data: Path, name: str, key_type: str = "ed25519") -> str:
    out = subprocess.run(
        [
            *stelae_command(),
            "witness",
            "init",
            "--data",
            str(data),
            "--name",
            name,
            "--key-type",
            key_type,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout


def start_witness(data: Path, log_list_file: Path) -> WitnessProcess:
    """``stelae witness`` on a free loopback port; returns once it prints its URL."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            *stelae_command(),
            "witness",
            "--data",
            str(data),
            "--listen",
            "127.0.0.1:0",
            "--log-list",
            str(log_list_file),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    lines: list[str] = []
    url = vkey = None
    while url is None:
        line = proc.stderr.readline()
        if not line:
            proc.wait(10)
            raise AssertionError(f"stelae witness exited {proc.returncode}: {''.join(lines)}")
        lines.append(line)
        if line.startswith("witness vkey: "):
            vkey = line.split(": ", 1)[1].strip()
        if m := re.search(r"serving on (http://\S+)", line):
            url = m.group(1)
    assert vkey is not None, lines
    return WitnessProcess(proc, url, vkey, data)
