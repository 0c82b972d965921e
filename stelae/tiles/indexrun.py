"""Lookup-index runs: a batch's records, merging runs, building a run's shard objects, and
parsing and verifying one shard (docs/index.md, "Records" and "Runs and shards").

A run indexes every key of the entries ``[a, b)``: one record per key, sorted by key, split into
``2^bits`` shards by the keys' top bits, each shard one object carrying its records and the
inclusion proof of its root in the run tree. Building is on the sequencer's path (one run per
batch, and merges), so it works on lists and ``bytes.join`` and leaves the per-record checks to
:func:`~stelae.tiles.indexrecord.encode_record`; :meth:`Shard.parse`, which reads untrusted bytes,
checks everything. Pure code: the only I/O is the ``fetch`` callable :func:`read_run` is given.
"""

from __future__ import annotations

import hashlib
import operator
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from stelae.tiles.errors import NotFoundError, VerificationError
from stelae.tiles.hashing import HASH_SIZE
from stelae.tiles.indexkeys import INDEX_KEY_SIZE, KeyKind, hash_normalized, normalize
from stelae.tiles.indexproof import (
    LookupProof,
    RecordProof,
    level_path,
    levels_root,
    tree_levels,
)
from stelae.tiles.indexrecord import (
    MAX_BITS,
    MIN_RECORD_SIZE,
    MalformedRecordError,
    Record,
    RunRef,
    decode_record,
    read_uvarint,
    remember_encoding,
    shard_of,
    uvarint,
)
from stelae.tiles.paths import run_shard_path
from stelae.tiles.proof import RootMismatchError, root_from_inclusion_proof

__all__ = [
    "SHARD_MAGIC",
    "SHARD_TARGET",
    "BatchEntryKeys",
    "BuiltRun",
    "IndexMissingError",
    "InvalidShardError",
    "LookupProof",
    "Record",
    "RunRef",
    "Shard",
    "batch_records",
    "bits_for",
    "build_run",
    "merge_records",
    "read_run",
    "shard_of",
]

SHARD_MAGIC = b"stelae-index-shard/v1\n"
#: A run has as few shards as keep its record bytes per shard at or below this (docs/index.md).
SHARD_TARGET = 256 * 1024


class InvalidShardError(VerificationError):
    """A shard object is not shard ``s`` of run ``ref`` (bad header, malformed or misplaced
    records, trailing bytes); ``reason`` says what. A root that does not match raises
    :class:`~stelae.tiles.proof.RootMismatchError` with both hashes."""

    def __init__(self, ref: RunRef, s: int, reason: str) -> None:
        super().__init__(f"shard {s} of run {ref.name}: {reason}")
        self.ref = ref
        self.s = s
        self.reason = reason


class IndexMissingError(VerificationError, NotFoundError):
    """An index object the log should serve is missing (``path``).

    Both a :class:`NotFoundError` (there is nothing at that path: perhaps a log without the index,
    or a size it never published) and a :class:`VerificationError` (a published checkpoint or
    manifest promised it), so either kind of handler catches it.
    """

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"{path} is missing: {why}", hint="the log publishes no index for this")
        self.path = path


# --- records of a batch, and merges ---------------------------------------------------------


@dataclass(frozen=True)
class BatchEntryKeys:
    """What the sequencer knows of one entry: its leaf hash and its other keys, normalized
    (as :func:`~stelae.tiles.indexkeys.entry_keys` gives them, leaf key excluded)."""

    leaf_hash: bytes
    keys: tuple[tuple[KeyKind, str], ...]


def batch_records(base: int, entries: Sequence[BatchEntryKeys]) -> list[Record]:
    """The records of one batch whose first entry has log index ``base``, sorted by key.

    Entry ``i`` has index ``base + i`` and batch offset ``i``; a key several entries share gets
    one record listing all of them. Values are normalized again (it is cheap, and a wrong
    spelling would silently file an entry where no lookup finds it).
    """
    found: dict[bytes, list[int]] = {}
    leaves: dict[bytes, list[int]] = {}
    # Signer keys and identities repeat across a batch's entries: hash each spelling once.
    hashed: dict[tuple[KeyKind, str], bytes] = {}
    leaf = KeyKind.LEAF
    for offset, entry in enumerate(entries):
        index = base + offset
        if len(entry.leaf_hash) != HASH_SIZE:
            raise ValueError(f"entry {index}: leaf hash is {len(entry.leaf_hash)} bytes")
        leaves.setdefault(hash_normalized(leaf, entry.leaf_hash.hex()), []).append(offset)
        for pair in entry.keys:
            key = hashed.get(pair)
            if key is None:
                kind, value = pair
                if kind == leaf:
                    raise ValueError(f"entry {index}: the leaf key is implied, not listed")
                key = hashed[pair] = hash_normalized(kind, normalize(kind, value))
            got = found.get(key)
            if got is None:
                found[key] = [index]
            elif got[-1] != index:  # a key listed twice by one entry counts once
                got.append(index)
    out = [Record(k, tuple(v)) for k, v in found.items()]
    for key, offsets in leaves.items():
        if key in found:
            raise ValueError(f"index key {key.hex()} is both a leaf key and another key")
        out.append(Record(key, tuple(base + o for o in offsets), tuple(offsets)))
    out.sort(key=_record_key)
    return out


def merge_records(older: Sequence[Record], newer: Sequence[Record]) -> list[Record]:
    """The records of two adjacent runs as one run's: a sorted union where a key in both gets
    one record with the older indices then the newer (and offsets likewise).

    ``ValueError`` unless every index of ``older`` is below every index of ``newer``, each is
    sorted by key with one record per key, and a key in both is a leaf key in both or neither.
    """
    # Merges handle whole runs, so the per-record work is left to C: map, set and a sort of two
    # sorted lists, which Timsort merges in linear time.
    older_keys = list(map(_record_key, older))
    newer_keys = list(map(_record_key, newer))
    for what, keys in (("older", older_keys), ("newer", newer_keys)):
        if not all(map(operator.lt, keys, keys[1:])):
            raise ValueError(f"the {what} records are not sorted by key, one per key")
    if older and newer:
        top = max(map(_last, map(_indices, older)))
        bottom = min(map(_first, map(_indices, newer)))
        if top >= bottom:
            raise ValueError(f"older records reach index {top}, newer start at {bottom}")
    common = set(older_keys).intersection(newer_keys)
    if not common:
        out = [*older, *newer]
    else:
        shared = {r.key: r for r in newer if r.key in common}
        out = [_concat(r, shared[r.key]) if r.key in common else r for r in older]
        out.extend(r for r in newer if r.key not in common)
    out.sort(key=_record_key)
    return out


def _concat(x: Record, y: Record) -> Record:
    if x.offsets is None and y.offsets is None:
        return Record(x.key, x.indices + y.indices)
    if x.offsets is None or y.offsets is None:
        raise ValueError(f"index key {x.key.hex()} is a leaf key in one run only")
    return Record(x.key, x.indices + y.indices, x.offsets + y.offsets)


_record_key = operator.attrgetter("key")
_indices = operator.attrgetter("indices")
_first = operator.itemgetter(0)
_last = operator.itemgetter(-1)


# --- building a run -----------------------------------------------------------------------------


def bits_for(total_record_bytes: int, target: int = SHARD_TARGET) -> int:
    """The smallest ``bits`` in 0..24 with ``total / 2^bits <= target`` (docs/index.md)."""
    bits = 0
    while bits < MAX_BITS and total_record_bytes > target << bits:
        bits += 1
    return bits


def _header(a: int, b: int, bits: int, s: int, count: int) -> bytes:
    return b"".join(
        (SHARD_MAGIC, uvarint(a), uvarint(b), bytes([bits]), uvarint(s), uvarint(count))
    )


@dataclass(frozen=True)
class BuiltRun:
    """A run's reference (for the manifest) and its shard objects, element ``s`` being shard
    ``s``."""

    ref: RunRef
    shards: tuple[bytes, ...]

    def objects(self) -> list[tuple[str, bytes]]:
        """``(path, bytes)`` for every shard, in shard order."""
        a, b = self.ref.a, self.ref.b
        return [(run_shard_path(a, b, s), data) for s, data in enumerate(self.shards)]


def build_run(a: int, b: int, records: Sequence[Record], *, target: int = SHARD_TARGET) -> BuiltRun:
    """The shard objects and reference of the run ``[a, b)`` holding ``records`` (sorted by key,
    one per key, indices inside ``[a, b)``; ``ValueError`` otherwise).

    ``target`` is the shard size the number of shards is chosen for; anything but the default
    builds a run no other stelae would build (tests use it to get many shards from few records).
    """
    if not 0 <= a < b:
        raise ValueError(f"run [{a}, {b}) is empty")
    keys = list(map(_record_key, records))
    if not all(map(operator.lt, keys, keys[1:])):
        raise ValueError("records are not sorted by key, one per key")
    pairs = [r.encoded(a) for r in records]
    if records and max(map(_last, map(_indices, records))) >= b:
        raise ValueError(f"a record lists an index at or beyond the run's end {b}")
    encoded = list(map(_first, pairs))
    hashes = list(map(_last, pairs))
    bits = bits_for(sum(map(len, encoded)), target)
    # Shard s holds the keys from s << (128 - bits) up to the next shard's first key.
    bounds = [0]
    for s in range(1, 1 << bits):
        bounds.append(bisect_left(keys, (s << (128 - bits)).to_bytes(INDEX_KEY_SIZE, "big")))
    bounds.append(len(keys))
    shard_records = [encoded[bounds[s] : bounds[s + 1]] for s in range(1 << bits)]
    roots = [levels_root(tree_levels(hashes[bounds[s] : bounds[s + 1]])) for s in range(1 << bits)]
    run_levels = tree_levels(roots)
    ref = RunRef(a, b, bits, levels_root(run_levels))
    shards = tuple(
        b"".join((_header(a, b, bits, s, len(recs)), *level_path(run_levels, s), *recs))
        for s, recs in enumerate(shard_records)
    )
    return BuiltRun(ref, shards)


# --- reading a shard ----------------------------------------------------------------------------


def _read_shard_header(data: bytes, ref: RunRef, s: int) -> tuple[int, int]:
    """Check that ``data`` starts with the header of shard ``s`` of ``ref``; return the record
    count it declares and the position after it (where the run proof starts)."""
    if not data.startswith(SHARD_MAGIC):
        raise InvalidShardError(ref, s, "the object does not start with the shard header")
    try:
        pos = len(SHARD_MAGIC)
        a, pos = read_uvarint(data, pos)
        b, pos = read_uvarint(data, pos)
        if pos >= len(data):
            raise InvalidShardError(ref, s, "the header is truncated")
        bits = data[pos]
        got_s, pos = read_uvarint(data, pos + 1)
        count, pos = read_uvarint(data, pos)
    except MalformedRecordError as err:
        raise InvalidShardError(ref, s, f"header: {err}") from err
    if (a, b, bits, got_s) != (ref.a, ref.b, ref.bits, s):
        raise InvalidShardError(
            ref, s, f"the header names shard {got_s} of run {a}-{b} with bits {bits}"
        )
    return count, pos


def _read_shard_records(
    data: bytes, pos: int, count: int, ref: RunRef, s: int
) -> tuple[list[Record], list[bytes]]:
    """The ``count`` records of shard ``s`` of ``ref`` from ``pos`` to the end of ``data`` and
    their record hashes: each well-formed, keys strictly ascending and inside the shard, and no
    bytes left over. Each record remembers its encoding, so a merge re-encodes nothing."""
    a, b, bits = ref.a, ref.b, ref.bits
    records: list[Record] = []
    hashes: list[bytes] = []
    start, sha256, remember = a.to_bytes(8, "big"), hashlib.sha256, remember_encoding
    low = (s << (128 - bits)).to_bytes(INDEX_KEY_SIZE, "big") if bits else b""
    high = ((s + 1) << (128 - bits)).to_bytes(INDEX_KEY_SIZE + 1, "big")[-INDEX_KEY_SIZE:]
    last = bits == 0 or s == ref.shards - 1
    prev = b""
    for _ in range(count):
        try:
            record, end = decode_record(data, pos, a, b)
        except MalformedRecordError as err:
            raise InvalidShardError(ref, s, str(err)) from err
        key = record.key
        if key <= prev:
            raise InvalidShardError(ref, s, f"record {key.hex()} is not above {prev.hex()}")
        if key < low or (not last and key >= high):
            raise InvalidShardError(ref, s, f"record {key.hex()} belongs in another shard")
        records.append(record)
        encoded = data[pos:end]
        digest = sha256(b"\x00" + encoded).digest()
        hashes.append(digest)
        remember(record, start, digest, encoded)
        prev, pos = key, end
    if pos != len(data):
        raise InvalidShardError(ref, s, f"{len(data) - pos} bytes after the last record")
    return records, hashes


@dataclass(frozen=True)
class Shard:
    """Shard ``s`` of run ``ref``, verified: its records are exactly those the run root commits
    to in that shard. Built by :meth:`parse`."""

    ref: RunRef
    s: int
    records: tuple[Record, ...]
    _levels: list[list[bytes]] = field(repr=False, compare=False, default_factory=list)
    _run_path: tuple[bytes, ...] = field(repr=False, compare=False, default=())

    @classmethod
    def parse(cls, data: bytes, ref: RunRef, s: int) -> Shard:
        """Parse and verify shard ``s`` of ``ref``: header, every record (well-formed, strictly
        ascending keys, all in shard ``s``, indices inside the run), no trailing bytes, and the
        records plus the proof lead to ``ref.root``. Raises :class:`InvalidShardError` or
        :class:`~stelae.tiles.proof.RootMismatchError`."""
        if not 0 <= s < ref.shards:
            raise InvalidShardError(ref, s, f"there are only {ref.shards} shards")
        count, pos = _read_shard_header(data, ref, s)
        proof_end = pos + HASH_SIZE * ref.bits
        if proof_end > len(data) or count > (len(data) - proof_end) // MIN_RECORD_SIZE:
            raise InvalidShardError(ref, s, f"the object is too short for {count} records")
        run_path = tuple(data[i : i + HASH_SIZE] for i in range(pos, proof_end, HASH_SIZE))
        records, hashes = _read_shard_records(data, proof_end, count, ref, s)
        levels = tree_levels(hashes)
        root = root_from_inclusion_proof(s, ref.shards, levels_root(levels), run_path)
        if root != ref.root:
            raise RootMismatchError(f"shard {s} of run {ref.name}", ref.root, root)
        return cls(ref, s, tuple(records), levels, run_path)

    def _position(self, key: bytes) -> int:
        """Where ``key`` is or would be among the records (bisect on the sorted keys)."""
        lo, hi = 0, len(self.records)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.records[mid].key < key:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def find(self, key: bytes) -> Record | None:
        """The record for ``key``, or None if the shard has none (the key may be another
        shard's: that is the caller's business, see :func:`shard_of`)."""
        j = self._position(key)
        if j < len(self.records) and self.records[j].key == key:
            return self.records[j]
        return None

    def prove(self, key: bytes) -> LookupProof:
        """The membership or non-membership proof of ``key``, which must belong in this shard."""
        if len(key) != INDEX_KEY_SIZE or shard_of(key, self.ref.bits) != self.s:
            raise ValueError(f"key {key.hex()} is not in shard {self.s} of run {self.ref.name}")
        if not self._levels:
            raise ValueError("only a shard from Shard.parse holds the trees a proof is read from")
        n = len(self.records)
        j = self._position(key)
        if j < n and self.records[j].key == key:
            positions = [j]
        else:
            positions = [p for p in (j - 1, j) if 0 <= p < n]
        return LookupProof(
            n,
            self._run_path,
            tuple(
                RecordProof(p, self.records[p].encode(self.ref.a), level_path(self._levels, p))
                for p in positions
            ),
        )


def read_run(fetch: Callable[[str], bytes], ref: RunRef) -> list[Record]:
    """Every record of run ``ref``, each shard fetched and verified, in key order.

    A missing shard raises :class:`IndexMissingError`; a bad one :class:`InvalidShardError` or
    :class:`~stelae.tiles.proof.RootMismatchError`.
    """
    out: list[Record] = []
    for s in range(ref.shards):
        path = run_shard_path(ref.a, ref.b, s)
        try:
            data = fetch(path)
        except NotFoundError as err:
            raise IndexMissingError(path, f"run {ref.name} lists {ref.shards} shards") from err
        out.extend(Shard.parse(data, ref, s).records)
    return out
