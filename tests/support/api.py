"""Shared helpers for the write API tests: a real LogServer on 127.0.0.1, raw HTTP, and checks
that a 201 is exactly Rekor's shape and that its proof verifies with the read client.

Everything goes over a real socket with ``http.client``; nothing is patched. The checks use only
public read-side code (the tiles client, the note verifier, ``verify_set``) and the log's vkey,
so they verify what any Rekor or tlog-tiles client would.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from stelae.api.identity import LogIdentity
from stelae.api.service import ServiceConfig
from stelae.sequencer.logdir import init_log
from stelae.server.app import LogServer, ServeOptions
from stelae.tiles.client import LogClient
from stelae.tiles.fetch import HTTPFetcher
from stelae.tiles.notekeys import parse_vkey, rekor_v2_log_id
from stelae.tiles.proof import verify_inclusion
from stelae.tiles.timestamp import v1_log_id, verify_set
from tests.support.cli import read_stderr_until, spawn_stelae
from tests.support.cli import stelae_command as stelae_command  # noqa: PLC0414  (tests import it from here)

ORIGIN = "api.test.example/log"


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]  # names lowercased
    body: bytes

    @cached_property
    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def request(
    host: str,
    port: int,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> Reply:
    """One request on a fresh connection (so a bad request can't poison the next one)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        data = resp.read()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


@dataclass
class LiveLog:
    """A log served over HTTP on loopback: in-process (``server``) or a ``stelae serve`` child."""

    data: Path
    host: str
    port: int
    vkey: str
    server: LogServer | None = None
    _client: LogClient | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.data / "log"

    @cached_property
    def identity(self) -> LogIdentity:
        return LogIdentity.from_vkey(self.vkey)

    @property
    def client(self) -> LogClient:
        if self._client is None:
            self._client = LogClient(HTTPFetcher(self.url), [parse_vkey(self.vkey)], ORIGIN)
        return self._client

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        return request(self.host, self.port, method, path, body=body, headers=headers)

    def post(self, path: str, obj: object, headers: Mapping[str, str] | None = None) -> Reply:
        return self.request(
            "POST",
            path,
            json.dumps(obj).encode(),
            {"Content-Type": "application/json", **(headers or {})},
        )

    def checkpoint_bytes(self) -> bytes:
        return (self.log_dir / "checkpoint").read_bytes()

    def size(self) -> int:
        return self.client.checkpoint().checkpoint.size


def make_log(data: Path, **settings: Any) -> str:
    """Create a log in ``data`` with LogConfig ``settings``; returns its vkey."""
    local, _ = init_log(data, ORIGIN, **settings)
    return local.config.vkey


@contextmanager
def served(data: Path, service: ServiceConfig | None = None, **settings: Any) -> Iterator[LiveLog]:
    """An in-process LogServer on 127.0.0.1, port 0, closed (drained) on exit."""
    local, _ = init_log(data, ORIGIN, **settings)
    vkey = local.config.vkey
    server = LogServer(local, ServeOptions("127.0.0.1", 0, service or ServiceConfig()))
    server.start()
    host, port = server.httpd.server_address[:2]
    try:
        yield LiveLog(data, str(host), int(port), vkey, server)
    finally:
        server.close()


def snapshot(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` and the SHA-256 of its bytes: equal snapshots mean no
    object was created, removed or rewritten."""
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


# -- checking 201s -------------------------------------------------------------------------------

_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_V2_KEYS = {
    "logIndex",
    "logId",
    "kindVersion",
    "integratedTime",
    "inclusionPromise",
    "inclusionProof",
    "canonicalizedBody",
}


def _b64(value: object) -> bytes:
    assert isinstance(value, str) and _B64.fullmatch(value), f"not base64: {value!r}"
    return base64.b64decode(value, validate=True)


def check_v2(log: LiveLog, reply: Reply, kind: str, version: str) -> tuple[int, bytes]:
    """A Rekor v2 ``TransparencyLogEntry``, field for field, whose proof verifies.

    Returns ``(index, canonical body)``.
    """
    assert reply.status == 201, reply.body
    assert reply.header("content-type") == "application/json"
    e = reply.json
    assert set(e) == _V2_KEYS, sorted(e)
    assert isinstance(e["logIndex"], str) and e["logIndex"].isdigit()  # int64 as a string
    index = int(e["logIndex"])
    key_id = _b64(e["logId"]["keyId"])
    assert len(key_id) == 32
    assert key_id == rekor_v2_log_id(ORIGIN, log.identity.public_key)
    assert e["kindVersion"] == {"kind": kind, "version": version}
    assert e["integratedTime"] == "0"
    assert e["inclusionPromise"] is None
    proof = e["inclusionProof"]
    assert set(proof) == {"logIndex", "rootHash", "treeSize", "hashes", "checkpoint"}
    assert proof["logIndex"] == e["logIndex"]
    assert isinstance(proof["treeSize"], str) and proof["treeSize"].isdigit()
    root = _b64(proof["rootHash"])
    assert len(root) == 32  # raw bytes, not b64 of hex
    hashes = [_b64(h) for h in proof["hashes"]]
    assert all(len(h) == 32 for h in hashes)
    envelope = proof["checkpoint"]["envelope"]
    assert set(proof["checkpoint"]) == {"envelope"}
    assert envelope.count("\n\n") == 1  # sigstore-python's note parser insists
    # The checkpoint is signed by the log's key (and names our key id's first 4 bytes) ...
    cp = log.client.open_checkpoint(envelope.encode())
    # (the log signs twice: the C2SP line and Rekor v1's key-hint line, RekorV1HintSigner)
    hints = [_b64(line.split(" ")[-1])[:4] for line in envelope.split("\n\n")[1].splitlines()]
    assert key_id[:4] in hints
    assert cp.checkpoint.size == int(proof["treeSize"])
    assert cp.checkpoint.root_hash == root
    # ... the proof verifies against it ...
    body = _b64(e["canonicalizedBody"])
    leaf = hashlib.sha256(b"\x00" + body).digest()
    verify_inclusion(index, cp.checkpoint.size, leaf, hashes, root)
    # ... the body is canonical JSON of the right kind, and the log holds exactly those bytes.
    obj = json.loads(body)
    assert json.dumps(obj, sort_keys=True, separators=(",", ":")).encode() == body
    assert (obj["kind"], obj["apiVersion"]) == (kind, version)
    assert log.client.entry(index).data == body
    return index, body


def check_v1(log: LiveLog, reply: Reply, kind: str) -> tuple[int, bytes]:
    """A Rekor v1 ``LogEntry`` keyed by UUID, hex proof, and a signed entry timestamp."""
    assert reply.status == 201, reply.body
    assert reply.header("content-type") == "application/json"
    (uuid, e), *rest = reply.json.items()
    assert not rest
    assert set(e) == {"body", "integratedTime", "logID", "logIndex", "verification"}
    body = _b64(e["body"])
    leaf = hashlib.sha256(b"\x00" + body).digest()
    assert uuid == leaf.hex()
    assert reply.header("location") == f"/api/v1/log/entries/{uuid}"
    assert reply.header("etag") == uuid
    index, t = e["logIndex"], e["integratedTime"]
    assert isinstance(index, int) and isinstance(t, int)
    assert abs(t - time.time()) < 300
    assert e["logID"] == v1_log_id(log.identity.public_key)
    proof = e["verification"]["inclusionProof"]
    assert proof["logIndex"] == index
    root = bytes.fromhex(proof["rootHash"])
    hashes = [bytes.fromhex(h) for h in proof["hashes"]]
    assert len(root) == 32 and all(len(h) == 32 for h in hashes)
    cp = log.client.open_checkpoint(proof["checkpoint"].encode())
    assert (cp.checkpoint.size, cp.checkpoint.root_hash) == (proof["treeSize"], root)
    verify_inclusion(index, proof["treeSize"], leaf, hashes, root)
    set_sig = base64.b64decode(e["verification"]["signedEntryTimestamp"], validate=True)
    verify_set(log.identity.public_key, set_sig, body, t, index)
    obj = json.loads(body)
    assert obj["kind"] == kind and obj["apiVersion"] == "0.0.1"
    assert json.dumps(obj, sort_keys=True, separators=(",", ":")).encode() == body
    assert log.client.entry(index).data == body
    return index, body


# -- stelae serve as a subprocess --------------------------------------------------------------


@dataclass
class ServeProcess:
    proc: subprocess.Popen[str]
    log: LiveLog
    stderr_lines: list[str]

    def terminate(self, timeout: float = 60.0) -> tuple[int, str]:
        """SIGTERM, then wait for the exit (no sleeping); returns (status, rest of stderr)."""
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, err


def start_serve(data: Path, listen: str = "127.0.0.1:0", *args: str) -> ServeProcess:
    """``stelae serve`` as a child process; returns once it prints its verifier key."""
    serve = ("serve", "--data", str(data), "--origin", ORIGIN, "--listen", listen, *args)
    proc = spawn_stelae(*serve)
    lines = read_stderr_until(proc, lambda line: line.startswith("verifier key: "))
    vkey = lines[-1].split(": ", 1)[1].strip()
    (url,) = (m.group(1) for line in lines if (m := re.search(r" on (http://\S+) ", line)))
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return ServeProcess(proc, LiveLog(data, host, int(port), vkey), lines)
