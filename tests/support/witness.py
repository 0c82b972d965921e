"""Real ``stelae witness`` processes and a small in-memory log that feeds them."""

from __future__ import annotations

import http.client
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from stelae.tiles.addcheckpoint import AddCheckpointRequest
from stelae.tiles.checkpoint import Checkpoint, sign_checkpoint
from stelae.tiles.hashing import leaf_hash
from stelae.tiles.notekeys import Ed25519NoteSigner
from tests.support.cli import read_stderr_until, run_stelae, spawn_stelae
from tests.support.merkle_reference import consistency, mth

LOG_ORIGIN = "example.test/witnessed-log"


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
    init = ("witness", "init", "--data", str(data), "--name", name, "--key-type", key_type)
    out = run_stelae(*init)
    assert out.returncode == 0, out.stderr
    return out.stdout


def start_witness(data: Path, log_list_file: Path, port: int = 0) -> WitnessProcess:
    """``stelae witness`` on loopback (``port`` 0: a free one); returns once it prints its URL."""
    witness = ("witness", "--data", str(data), "--listen", f"127.0.0.1:{port}")
    proc = spawn_stelae(*witness, "--log-list", str(log_list_file))
    lines = read_stderr_until(proc, lambda line: "serving on http://" in line)
    url = lines[-1].split("serving on ", 1)[1].split()[0]
    (vkey,) = (
        line.split(": ", 1)[1].strip() for line in lines if line.startswith("witness vkey: ")
    )
    return WitnessProcess(proc, url, vkey, data)
