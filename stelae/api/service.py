"""The write service: parse → validate → verify → canonicalize → enqueue → wait → answer.

Transport-neutral; :func:`WriteService.handle` is the whole API. Also answers the few Rekor v1
read endpoints that Rekor clients call (log info, entry by UUID or index, public key, consistency
proof), computed from the same static objects any reader can fetch.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from stelae import kinds
from stelae.api.errors import ApiError, error_response
from stelae.api.http import Request, Response
from stelae.api.identity import LogIdentity
from stelae.api.rekor import ProvedEntry, v1_entry, v1_log_info, v2_entry
from stelae.api.submit import NotYetIntegratedError, Submitter
from stelae.tiles.batch import PendingEntry
from stelae.tiles.checkpoint import Checkpoint
from stelae.tiles.client import TileReader
from stelae.tiles.counts import count
from stelae.tiles.decimals import parse_decimal
from stelae.tiles.errors import FormatError
from stelae.tiles.fetch import CachingFetcher, Fetcher
from stelae.tiles.hashing import leaf_hash
from stelae.tiles.layout import TILE_WIDTH
from stelae.tiles.locate import Located, locate_leaf
from stelae.tiles.note import Note
from stelae.tiles.paths import CHECKPOINT
from stelae.tiles.proof import (
    inclusion_ranges,
    range_root,
    verify_consistency,
    verify_inclusion,
)

log = logging.getLogger("stelae.api")

_UUID = re.compile(r"(?:[0-9a-f]{16})?([0-9a-f]{64})")


@dataclass(frozen=True)
class ServiceConfig:
    """Write API settings. Field comments are the reference."""

    max_request_bytes: int = 4 * 1024 * 1024
    """Larger request bodies are refused with 413 before parsing."""
    wait_seconds: float = 20.0
    """Seconds a request waits for integration before a 202 (Rekor v2 clients wait 20 s)."""
    strict_duplicates: bool = False
    """Answer duplicates as Rekor does (409 + x-log-index / Location) instead of with the entry.
    A request can also ask for it with the header ``X-Stelae-Strict: true``."""


@lru_cache(maxsize=8)
def _parse_checkpoint(note: bytes) -> Checkpoint:
    return Checkpoint.parse(Note.parse(note).text)


class WriteService:
    def __init__(
        self,
        submitter: Submitter,
        fetcher: Fetcher,
        identity: LogIdentity,
        config: ServiceConfig | None = None,
    ) -> None:
        self.submitter = submitter
        self.fetcher = CachingFetcher(fetcher, max_items=8192)
        self.tiles = _ProofReader(self.fetcher)
        self.identity = identity
        self.config = config or ServiceConfig()
        self._routes: dict[tuple[str, str], Callable[[Request], Response]] = {
            ("POST", "/api/v2/log/entries"): self._post_v2,
            ("POST", "/api/v1/log/entries"): self._post_v1,
            ("GET", "/api/v1/log"): self._get_log,
            ("GET", "/api/v1/log/publicKey"): self._get_public_key,
            ("GET", "/api/v1/log/proof"): self._get_proof,
            ("GET", "/api/v1/log/entries"): self._get_entry_by_index,
        }

    # -- entry point ---------------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        try:
            route = self._routes.get((req.method, req.path.rstrip("/") or "/"))
            if route is None:
                if req.method == "GET" and req.path.startswith("/api/v1/log/entries/"):
                    return self._get_entry_by_uuid(req)
                if any(p == req.path.rstrip("/") for _, p in self._routes):
                    raise ApiError(405, f"{req.method} is not allowed on {req.path}")
                raise ApiError(404, f"no such endpoint: {req.method} {req.path}")
            return route(req)
        except Exception as err:  # the one place errors become statuses
            return error_response(err)

    # -- writes ----------------------------------------------------------------------------------

    def _json_body(self, req: Request) -> object:
        ctype = req.header("content-type").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise ApiError(
                415, f"Content-Type must be application/json, not {ctype or 'missing'!r}"
            )
        if len(req.body) > self.config.max_request_bytes:
            raise ApiError(
                413,
                f"request body is {len(req.body)} bytes; "
                f"the limit is {self.config.max_request_bytes}",
            )
        if not req.body.strip():
            raise ApiError(400, "request body is empty")
        return kinds.load_json(req.body, limit=self.config.max_request_bytes)

    def _strict(self, req: Request) -> bool:
        return self.config.strict_duplicates or req.header("x-stelae-strict").lower() in (
            "1",
            "true",
        )

    def _integrate(self, entry: kinds.Entry) -> tuple[ProvedEntry, bool]:
        """Queue ``entry``, wait for its receipt, and prove it: the entry with its inclusion
        proof verified against the checkpoint it is answered with, and whether it was a
        duplicate of an entry already in the log."""
        pending = PendingEntry(
            entry.body, entry.artifact_digests, entry.key_fingerprints, entry.identities
        )
        receipt = self.submitter.submit(pending, self.config.wait_seconds)
        cp = _parse_checkpoint(receipt.checkpoint)
        batch = receipt.batch
        if batch is not None and batch.new_size == cp.size:
            # The receipt's batch record proves the entry in its own tree: no tile is read.
            proof = batch.inclusion_proof(receipt.index)
        else:
            self.tiles.published(cp.size)
            proof = self.tiles.inclusion_proof(receipt.index, cp.size)
        # Never answer with a proof that does not verify against the checkpoint we send.
        verify_inclusion(receipt.index, cp.size, entry.leaf_hash, proof, cp.root_hash)
        proved = ProvedEntry(
            entry.kind,
            entry.api_version,
            entry.body,
            receipt.index,
            receipt.integrated_time,
            receipt.signed_entry_timestamp,
            cp.size,
            cp.root_hash,
            proof,
            receipt.checkpoint,
        )
        return proved, receipt.duplicate

    def _post_v2(self, req: Request) -> Response:
        entry = kinds.from_v2_request(self._json_body(req))
        return self._answer(
            req,
            entry,
            lambda e: v2_entry(self.identity, e),
            {},
            lambda e: (f"with index {e.index}", {"x-log-index": str(e.index)}),
        )

    def _post_v1(self, req: Request) -> Response:
        entry = kinds.from_v1_proposed(self._json_body(req))
        location = f"/api/v1/log/entries/{entry.uuid}"
        return self._answer(
            req,
            entry,
            lambda e: v1_entry(self.identity, e),
            {"Location": location, "ETag": entry.uuid},
            lambda e: (f"with UUID {entry.uuid}", {"Location": location}),
        )

    def _answer(
        self,
        req: Request,
        entry: kinds.Entry,
        render: Callable[[ProvedEntry], object],
        headers: dict[str, str],
        conflict: Callable[[ProvedEntry], tuple[str, dict[str, str]]],
    ) -> Response:
        """Integrate ``entry`` and answer: 201 with ``render``'s body, the existing entry for a
        duplicate (or Rekor's 409, where ``conflict`` says which entry and with what headers,
        in strict mode), 202 past the deadline."""
        try:
            proved, duplicate = self._integrate(entry)
        except NotYetIntegratedError:
            return self._accepted(entry)
        if not duplicate:
            return Response.json(201, render(proved), headers)
        if self._strict(req):
            where, conflict_headers = conflict(proved)
            message = f"an equivalent entry already exists in the transparency log {where}"
            return Response.json(409, {"code": 409, "message": message}, conflict_headers)
        return Response.json(201, render(proved), {**headers, "X-Stelae-Duplicate": "true"})

    def _accepted(self, entry: kinds.Entry) -> Response:
        location = f"/api/v1/log/entries/{entry.uuid}"
        return Response.json(
            202,
            {
                "code": 202,
                "message": "the entry is queued and will be integrated shortly; "
                f"fetch it from {location}, or look it up with `stelae get --uuid {entry.uuid}`",
                "uuid": entry.uuid,
            },
            {"Location": location, "Retry-After": "2"},
        )

    # -- reads ------------------------------------------------------------------------------------

    def _current(self) -> tuple[Checkpoint, bytes]:
        note = self.fetcher.fetch(CHECKPOINT)
        cp = _parse_checkpoint(note)
        self.tiles.published(cp.size)
        return cp, note

    def _get_log(self, req: Request) -> Response:
        cp, note = self._current()
        return Response.json(200, v1_log_info(self.identity, cp.size, cp.root_hash, note))

    def _get_public_key(self, req: Request) -> Response:
        return Response(
            200, self.identity.public_key_pem.encode(), {"Content-Type": "application/x-pem-file"}
        )

    def _get_proof(self, req: Request) -> Response:
        cp, _ = self._current()
        first = _int_param(req, "firstSize", 1)
        last = _int_param(req, "lastSize", cp.size)
        if not 1 <= first <= last <= cp.size:
            raise ApiError(400, f"need 1 <= firstSize <= lastSize <= {cp.size}")
        proof = self.tiles.consistency_proof(first, last)
        old_root, new_root = self.tiles.root(first), self.tiles.root(last)
        verify_consistency(first, last, proof, old_root, new_root)
        return Response.json(200, {"hashes": [h.hex() for h in proof], "rootHash": new_root.hex()})

    def _get_entry_by_index(self, req: Request) -> Response:
        if "logIndex" not in req.query:
            raise ApiError(400, "query parameter logIndex is required")
        cp, note = self._current()
        index = _int_param(req, "logIndex", 0)
        if index >= cp.size:
            raise ApiError(
                404, f"no entry {index}: the log has {count(cp.size, 'entry', 'entries')}"
            )
        body = self.tiles.bundle(index // TILE_WIDTH, cp.size).entries[index % TILE_WIDTH]
        return self._v1_read(body, index, cp, note)

    def _get_entry_by_uuid(self, req: Request) -> Response:
        m = _UUID.fullmatch(req.path.rsplit("/", 1)[-1].lower())
        if not m:
            raise ApiError(400, "an entry UUID is 64 hex digits (or an 80-digit entry ID)")
        cp, note = self._current()
        leaf = bytes.fromhex(m.group(1))
        found = self._locate(leaf, cp)
        if found is None:
            raise ApiError(404, f"no entry with UUID {m.group(1)} in the log of size {cp.size}")
        body = self.tiles.bundle(found.index // TILE_WIDTH, cp.size).entries[
            found.index % TILE_WIDTH
        ]
        if leaf_hash(body) != leaf:  # a 16-byte index key collision, or a lying index
            raise ApiError(404, f"no entry with UUID {m.group(1)} in the log of size {cp.size}")
        return self._v1_read(body, found.index, cp, note, found)

    def _locate(self, leaf: bytes, cp: Checkpoint) -> Located | None:
        return locate_leaf(
            self.fetcher.fetch, [self.identity.verifier], self.identity.origin, cp, leaf
        )

    def _v1_read(
        self,
        body: bytes,
        index: int,
        cp: Checkpoint,
        note: bytes,
        found: Located | None = None,
    ) -> Response:
        if found is None:
            found = self._locate(leaf_hash(body), cp)
        itime, stamp = 0, b""
        if found is not None and found.index == index:
            itime, stamp = found.integrated_time, found.signed_entry_timestamp
        proof = self.tiles.inclusion_proof(index, cp.size)
        try:
            obj = json.loads(body)
            kind, version = str(obj.get("kind", "")), str(obj.get("apiVersion", ""))
        except (ValueError, AttributeError):
            kind, version = "", ""
        proved = ProvedEntry(
            kind, version, body, index, itime, stamp, cp.size, cp.root_hash, proof, note
        )
        return Response.json(200, v1_entry(self.identity, proved))


class _ProofReader(TileReader):
    """The service's tile reader, shared by every request thread.

    Every 201 carries an inclusion proof, and recomputing its nodes from tiles costs hundreds of
    hashes per request (a level-7 node is the root of 128 leaf hashes). A node that is complete
    at some tree size is the root of a perfect subtree of an append-only log: its hash never
    changes, so it is memoized by position. So is the hash of any leaf range [start, end) inside
    a published tree (the proof's composite right-hand ranges, shared by every proof at that
    size): it depends only on those leaves. This is an optimisation, not a trust decision: every
    proof the service sends is still verified against the signed checkpoint first, so a bad memo
    entry could only turn into an error, never into a wrong answer. Node computations are
    serialized so concurrent requests do not hash the same subtree twice.
    """

    MAX_NODES = 1 << 16  # ~10 MB each; cleared wholesale when full (misses just recompute)

    def __init__(self, fetcher: Fetcher) -> None:
        super().__init__(fetcher)
        self._nodes: dict[tuple[int, int], bytes] = {}
        self._ranges: dict[tuple[int, int], bytes] = {}
        # Not ``_lock``: TileReader holds its own, which node() below reaches while holding this.
        self._node_lock = threading.Lock()

    def published(self, size: int) -> None:
        """Read tiles at the widths of the largest published size. A log serves partial tiles
        only for sizes it published, so a proof or root at a smaller size (a consistency proof's
        firstSize, a size inside one batch) must be computed from those."""
        if size <= self.read_size:
            return  # the common case, without waiting behind a node computation
        with self._node_lock:
            self.read_size = max(self.read_size, size)

    def inclusion_proof(self, index: int, tree_size: int) -> list[bytes]:
        return [self._range(a, b, tree_size) for a, b in inclusion_ranges(index, tree_size)]

    def _range(self, start: int, end: int, tree_size: int) -> bytes:
        hit = self._ranges.get((start, end))
        if hit is not None:
            return hit
        value = range_root(start, end, lambda lv, i: self.node(lv, i, tree_size))
        if len(self._ranges) >= self.MAX_NODES:
            self._ranges.clear()
        self._ranges[(start, end)] = value
        return value

    def node(self, level: int, index: int, tree_size: int) -> bytes:
        if (index + 1) << level <= tree_size:  # otherwise TileReader raises, below
            hit = self._nodes.get((level, index))
            if hit is not None:
                return hit
        with self._node_lock:
            value = super().node(level, index, tree_size)
            if len(self._nodes) >= self.MAX_NODES:
                self._nodes.clear()
            self._nodes[(level, index)] = value
        return value


def _int_param(req: Request, name: str, default: int) -> int:
    raw = req.query.get(name)
    if raw is None:
        return default
    try:
        return parse_decimal(raw, f"query parameter {name}", maximum=2**63 - 1)
    except FormatError as err:
        raise ApiError(400, f"query parameter {name} must be a non-negative integer") from err
