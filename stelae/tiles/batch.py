"""The batch record: one immutable object per batch that claims it and is every writer's receipt.

A sequencer claims the indices ``[first, first + count)`` by creating ``batch/<first>`` (create-if-
absent: of two sequencers racing for the same tree size exactly one creates it). Everything it
then writes — tiles, bundles, the batch's index run, the manifest and the checkpoint — is a pure
function of the published tree and this record, so whoever finishes a claimed batch writes the
same bytes (docs/sequencing.md). The same object is the receipt a waiting writer reads: its leaf
hashes say where each entry landed, with its integrated time and Rekor v1 signed entry timestamp,
and the compact range of the tree before the batch lets the writer compute any entry's inclusion
proof in the new tree without reading a tile (:meth:`BatchRecord.inclusion_proof`).

Format (binary; the receipt part comes first so a writer may read only a prefix)::

    header JSON line   {"format": "stelae-batch/v1", "first", "count", "base_root",
                        "integrated_time", "edge": [base64 compact-range hashes, largest first],
                        "runs": [[a, b, bits, base64 root], ...], "lengths": [L, S, K, B],
                        optional "look_after_ms": N}
    leaf hashes        count × 32 bytes                                     (L bytes)
    timestamps         count × (u8 length || signature), length 0 = none    (S bytes)
    keys               JSON [[digests], [key fingerprints], [identities]] per entry (K bytes)
    bodies             count × (uint16_be length || body), as entry bundles (B bytes)

``runs`` are the lookup-index runs the batch's manifest lists before the batch's own run
(docs/index.md): recording them here makes the manifest a function of this record too.

``look_after_ms`` (optional) is advice to waiting writers, not part of the log: how many
milliseconds after sending an entry a writer should first look for its batch. The sequencer that
claims the batch sets it to the 90th percentile, over the batch's entries, of the time from each
entry's SQS ``SentTimestamp`` to the claim, plus its previous batch's claim-to-checkpoint time
(:func:`stelae.tiles.lookafter.look_after_ms`; docs/sequencing.md, "Receipts for waiting
writers"). It is absent in records from before it, when the sequencer knew no entry's send time,
and in the first batch a sequencer claims after it starts. Present, it is an integer from 0 to
:data:`~stelae.tiles.lookafter.MAX_LOOK_AFTER_MS`; any other value makes the record unreadable.
Like the rest of the record it is written once, in the claim, and whoever finishes the batch
reads it back rather than recomputing it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from stelae.tiles.compact import RightEdge
from stelae.tiles.errors import FormatError
from stelae.tiles.hashing import HASH_SIZE, leaf_hash, node_hash
from stelae.tiles.indexrun import RunRef
from stelae.tiles.lookafter import MAX_LOOK_AFTER_MS
from stelae.tiles.proof import ProofError, inclusion_ranges, range_root
from stelae.tiles.tile import MAX_ENTRY_SIZE, EntryTooLargeError, encode_records

FORMAT = "stelae-batch/v1"
_DIGEST = re.compile(r"(sha256|sha384|sha512):[0-9a-f]+")
_KEY_FP = re.compile(r"[0-9a-f]{40,128}")

MAX_HEADER = 1 << 20
"""A header line longer than this is refused before it is parsed."""


@dataclass(frozen=True)
class PendingEntry:
    """An entry on its way into the log: its canonical body and the lookup keys the write path
    derived from it. The one shape of an entry between the write API and a batch record.

    ``digests`` are ``"<alg>:<lowercase hex>"``; ``key_fingerprints`` are lowercase hex SHA-256
    of DER SubjectPublicKeyInfo (or OpenPGP fingerprints); ``identities`` are certificate SAN
    emails (lowercased) and URIs. The sequencer never re-parses the entry kind: it trusts these
    keys, and monitors re-derive them from the body when they audit the index.
    """

    body: bytes
    digests: tuple[str, ...] = ()
    key_fingerprints: tuple[str, ...] = ()
    identities: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.body) > MAX_ENTRY_SIZE:
            raise EntryTooLargeError(len(self.body))
        if not self.body:
            raise FormatError("an entry cannot be empty")
        for d in self.digests:
            if not _DIGEST.fullmatch(d):
                raise FormatError(f"digest {d!r} is not '<sha256|sha384|sha512>:<hex>'")
        for k in self.key_fingerprints:
            if not _KEY_FP.fullmatch(k):
                raise FormatError(f"key fingerprint {k!r} is not 40..128 lowercase hex digits")
        for i in self.identities:
            if not i or len(i) > 1024 or any(c in i for c in "\n\r\x00"):
                raise FormatError(f"identity {i!r} is empty, too long or has control characters")

    @cached_property
    def leaf_hash(self) -> bytes:
        return leaf_hash(self.body)


@dataclass(frozen=True)
class BatchRecord:
    first: int
    base_root: bytes
    edge: RightEdge
    """The compact range of the tree of size ``first`` (its root is ``base_root``)."""
    integrated_time: int
    leaf_hashes: tuple[bytes, ...]
    timestamps: tuple[bytes, ...]
    runs: tuple[RunRef, ...]
    entries: tuple[PendingEntry, ...] = ()
    """Empty when only the receipt part was parsed (:meth:`parse_receipt`)."""
    look_after_ms: int | None = None
    """Advice to waiting writers (the module docstring); None: the header has no such field."""

    def __post_init__(self) -> None:
        if self.edge.size != self.first:
            raise FormatError(
                f"batch record at {self.first} carries the compact range of size {self.edge.size}"
            )
        if self.edge.root() != self.base_root:
            raise FormatError(f"batch record at {self.first}: its compact range is not its root")
        if len(self.timestamps) != len(self.leaf_hashes):
            raise FormatError("batch record has a timestamp count unlike its entry count")
        if self.entries and len(self.entries) != len(self.leaf_hashes):
            raise FormatError("batch record has a body count unlike its entry count")
        if self.look_after_ms is not None:
            _look_after(self.look_after_ms)

    @property
    def count(self) -> int:
        return len(self.leaf_hashes)

    @property
    def new_size(self) -> int:
        return self.first + self.count

    def position(self, leaf_hash: bytes) -> int | None:
        """The log index of the entry with this leaf hash in this batch, or None."""
        try:
            return self.first + self.leaf_hashes.index(leaf_hash)
        except ValueError:
            return None

    # -- the receipt's proofs --------------------------------------------------------------

    def new_root(self) -> bytes:
        """The root of the tree after this batch: a writer checks it against the checkpoint."""
        return self.edge.append(self.leaf_hashes).root()

    def inclusion_proof(self, index: int) -> list[bytes]:
        """RFC 6962 inclusion proof of entry ``index`` (in this batch) in the tree of size
        :attr:`new_size`, from the compact range and the batch's leaves alone.

        Every left sibling on the path of a leaf at or after ``first`` is a maximal perfect
        subtree of ``[0, first)`` — a node of the compact range — or straddles ``first`` and is
        split until it is; every right sibling lies inside the batch.
        """
        if not self.first <= index < self.new_size:
            raise ProofError(f"entry {index} is not in the batch [{self.first}, {self.new_size})")
        ranges: dict[tuple[int, int], bytes] = self.__dict__.setdefault("_ranges", {})
        out = []
        for a, b in inclusion_ranges(index, self.new_size):
            value = ranges.get((a, b))
            if value is None:  # the composite right-hand ranges are shared by many proofs
                value = ranges[(a, b)] = range_root(a, b, self._node)
            out.append(value)
        return out

    def _node(self, level: int, index: int) -> bytes:
        # Memoized per record: every writer of a batch shares one record, and without the memo
        # each proof would re-hash its batch's subtrees (O(batch) per writer, O(batch²) in all).
        memo: dict[tuple[int, int], bytes] = self.__dict__.setdefault("_memo", {})
        hit = memo.get((level, index))
        if hit is not None:
            return hit
        start, end = index << level, (index + 1) << level
        if end <= self.first:
            edge = self.__dict__.get("_edge_index")
            if edge is None:
                edge = dict(zip(_edge_nodes(self.edge), self.edge.hashes, strict=True))
                self.__dict__["_edge_index"] = edge
            value = edge.get((level, index))
            if value is None:
                raise ProofError(
                    f"node ({level}, {index}) is not in the compact range of {self.first}"
                )
        elif start >= self.first and level == 0:
            value = self.leaf_hashes[start - self.first]
        else:  # inside the batch, or straddling its start: from the two children
            value = node_hash(
                self._node(level - 1, 2 * index), self._node(level - 1, 2 * index + 1)
            )
        memo[(level, index)] = value
        return value

    # -- bytes -------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        if len(self.entries) != self.count:
            raise FormatError("a batch record is written with its entries")
        leaves = b"".join(self.leaf_hashes)
        stamps = b"".join(bytes((len(t),)) + t for t in self.timestamps)
        keys = json.dumps(
            [[list(e.digests), list(e.key_fingerprints), list(e.identities)] for e in self.entries],
            separators=(",", ":"),
        ).encode()
        bodies = encode_records([e.body for e in self.entries])
        header = {
            "format": FORMAT,
            "first": self.first,
            "count": self.count,
            "base_root": _b64(self.base_root),
            "integrated_time": self.integrated_time,
            "edge": [_b64(h) for h in self.edge.hashes],
            "runs": [[r.a, r.b, r.bits, _b64(r.root)] for r in self.runs],
            "lengths": [len(leaves), len(stamps), len(keys), len(bodies)],
        }
        if self.look_after_ms is not None:  # absent otherwise: older records' bytes unchanged
            header["look_after_ms"] = self.look_after_ms
        head = json.dumps(header, separators=(",", ":")).encode() + b"\n"
        return b"".join((head, leaves, stamps, keys, bodies))

    @classmethod
    def parse(cls, data: bytes) -> BatchRecord:
        """The whole record (what recovery needs). FormatError names any problem."""
        return _parse(data, full=True)

    @classmethod
    def parse_receipt(cls, data: bytes) -> BatchRecord:
        """Only the header, leaf hashes and timestamps; ``data`` may be a prefix of the object
        that holds at least :func:`receipt_length` bytes."""
        return _parse(data, full=False)


def receipt_length(prefix: bytes) -> int | None:
    """How many leading bytes of the object the receipt part needs, from a prefix holding the
    header line; None if the prefix does not hold the whole header yet."""
    end = prefix.find(b"\n")
    if end < 0:
        return None
    header, _ = _header(prefix[:end])
    lengths: list[int] = header["lengths"]
    return end + 1 + lengths[0] + lengths[1]


def _edge_nodes(edge: RightEdge) -> list[tuple[int, int]]:
    out, pos = [], 0
    for level in edge.levels():
        out.append((level, pos >> level))
        pos += 1 << level
    return out


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _unb64(value: object, what: str, size: int | None = HASH_SIZE) -> bytes:
    if not isinstance(value, str):
        raise FormatError(f"batch record {what} is not a base64 string")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as err:
        raise FormatError(f"batch record {what} is not base64") from err
    if size is not None and len(raw) != size:
        raise FormatError(f"batch record {what} is {len(raw)} bytes, not {size}")
    return raw


def _nat(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FormatError(f"batch record {what} is not a non-negative integer")
    return value


def _look_after(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_LOOK_AFTER_MS:
        raise FormatError(
            f"batch record look_after_ms is not an integer from 0 to {MAX_LOOK_AFTER_MS}: "
            f"{value!r:.40}"
        )
    return value


def _header(line: bytes) -> tuple[dict[str, Any], int]:
    if len(line) > MAX_HEADER:
        raise FormatError("batch record header is too long")
    try:
        header = json.loads(line)
    except (ValueError, UnicodeDecodeError) as err:
        raise FormatError(f"batch record header is unreadable: {err}") from err
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise FormatError("not a batch record: unknown format")
    lengths = header.get("lengths")
    if not isinstance(lengths, list) or len(lengths) != 4:
        raise FormatError("batch record header has no section lengths")
    for i, n in enumerate(lengths):
        _nat(n, f"section length {i}")
    return header, _nat(header.get("count"), "count")


def _parse(data: bytes, *, full: bool) -> BatchRecord:
    end = data.find(b"\n")
    if end < 0:
        raise FormatError("batch record has no header line")
    header, count = _header(data[:end])
    first = _nat(header.get("first"), "first")
    itime = _nat(header.get("integrated_time"), "integrated_time")
    base_root = _unb64(header.get("base_root"), "base_root")
    edge_raw = header.get("edge")
    if not isinstance(edge_raw, list):
        raise FormatError("batch record has no compact range")
    edge = RightEdge(first, tuple(_unb64(h, "compact range hash") for h in edge_raw))
    runs = _runs(header.get("runs"))
    n_leaves, n_stamps, n_keys, n_bodies = header["lengths"]
    pos = end + 1
    if n_leaves != count * HASH_SIZE:
        raise FormatError("batch record leaf hash section does not match its count")
    leaves_raw = data[pos : pos + n_leaves]
    stamps_raw = data[pos + n_leaves : pos + n_leaves + n_stamps]
    if len(leaves_raw) != n_leaves or len(stamps_raw) != n_stamps:
        raise FormatError("batch record is truncated")
    leaves = tuple(leaves_raw[i : i + HASH_SIZE] for i in range(0, n_leaves, HASH_SIZE))
    stamps = _stamps(stamps_raw, count)
    entries: tuple[PendingEntry, ...] = ()
    if full:
        pos += n_leaves + n_stamps
        if len(data) != pos + n_keys + n_bodies:
            raise FormatError("batch record length does not match its sections")
        entries = _entries(data[pos : pos + n_keys], data[pos + n_keys :], count)
    # Absent is fine (older records); present, it must be valid: null is no more advice than -1.
    look_after = _look_after(header["look_after_ms"]) if "look_after_ms" in header else None
    return BatchRecord(first, base_root, edge, itime, leaves, stamps, runs, entries, look_after)


def _runs(runs_raw: object) -> tuple[RunRef, ...]:
    if not isinstance(runs_raw, list):
        raise FormatError("batch record has no run list")
    runs: list[RunRef] = []
    for r in runs_raw:
        if not isinstance(r, list) or len(r) != 4:
            raise FormatError("batch record run is not [a, b, bits, root]")
        runs.append(
            RunRef(
                _nat(r[0], "run a"),
                _nat(r[1], "run b"),
                _nat(r[2], "run bits"),
                _unb64(r[3], "run root"),
            )
        )
    return tuple(runs)


def _stamps(stamps_raw: bytes, count: int) -> tuple[bytes, ...]:
    # Each timestamp is one length byte and that many bytes; there is one per entry.
    stamps: list[bytes] = []
    p = 0
    while p < len(stamps_raw):
        n = stamps_raw[p]
        stamp = stamps_raw[p + 1 : p + 1 + n]
        if len(stamp) != n:
            raise FormatError("batch record timestamp section is truncated")
        stamps.append(stamp)
        p += 1 + n
    if len(stamps) != count:
        raise FormatError("batch record timestamp section does not match its count")
    return tuple(stamps)


def _entries(keys_raw: bytes, bodies: bytes, count: int) -> tuple[PendingEntry, ...]:
    try:
        keys: Any = json.loads(keys_raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise FormatError(f"batch record keys are unreadable: {err}") from err
    if not isinstance(keys, list) or len(keys) != count:
        raise FormatError("batch record keys do not match its entry count")
    out: list[PendingEntry] = []
    pos = 0
    for k in keys:
        if pos + 2 > len(bodies):
            raise FormatError("batch record bodies are truncated")
        n = int.from_bytes(bodies[pos : pos + 2], "big")
        body = bodies[pos + 2 : pos + 2 + n]
        if len(body) != n or not n:
            raise FormatError("batch record bodies are truncated")
        pos += 2 + n
        if not isinstance(k, list) or len(k) != 3:
            raise FormatError("batch record keys are malformed")
        out.append(PendingEntry(body, *(_strings(x) for x in k)))
    if pos != len(bodies):
        raise FormatError("batch record has trailing bytes")
    return tuple(out)


def _strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FormatError("batch record keys are malformed")
    return tuple(value)


def check_leaves(record: BatchRecord, leaf_hashes: Sequence[bytes]) -> None:
    """Raise FormatError unless ``leaf_hashes`` are the record's bodies' leaf hashes."""
    if tuple(leaf_hashes) != record.leaf_hashes:
        raise FormatError(f"batch record at {record.first}: leaf hashes do not match its bodies")
