"""Lookup proofs: that a key's record is in a run, or that no record for it is (docs/index.md,
"Lookups and their proofs").

A proof is made of up to two records of the key's shard with their RFC 6962 inclusion proofs in
the shard tree (RFC 6962 §2.1.1), and the shard root's inclusion proof in the run tree. One record
whose key is the query proves membership; otherwise the records bracket where the key would be —
two at consecutive positions, or one at an end of the shard, or none in an empty shard — which
proves absence: in a tree of leaves sorted by key, only adjacent leaves can be reached through
consecutive positions, and only the first and last leaves through positions ``0`` and
``count - 1``, whatever ``count`` a proof claims (leaf and interior hashes are domain-separated).

The same module holds the bottom-up tree helpers the run builder and shards use, so every tree in
the index is hashed by one piece of code. Verification raises typed errors with the evidence.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from stelae.tiles.base64field import decode_b64, encode_b64
from stelae.tiles.errors import FormatError, VerificationError
from stelae.tiles.hashing import EMPTY_ROOT, HASH_SIZE
from stelae.tiles.indexkeys import INDEX_KEY_SIZE
from stelae.tiles.indexrecord import (
    MalformedRecordError,
    Record,
    RunRef,
    decode_record,
    shard_of,
)
from stelae.tiles.proof import ProofError, RootMismatchError, root_from_inclusion_proof

__all__ = [
    "InvalidLookupProofError",
    "LookupProof",
    "MalformedLookupProofError",
    "RecordProof",
    "level_path",
    "record_hash",
    "tree_levels",
]

_sha256 = hashlib.sha256


class InvalidLookupProofError(VerificationError):
    """A lookup proof does not show what it claims for ``key`` in run ``ref`` (``reason`` says
    why); Merkle-level failures raise :class:`~stelae.tiles.proof.ProofError` or
    :class:`~stelae.tiles.proof.RootMismatchError` instead."""

    def __init__(self, key: bytes, ref: RunRef, reason: str) -> None:
        super().__init__(f"lookup proof for key {key.hex()} in run {ref.name}: {reason}")
        self.key = key
        self.ref = ref
        self.reason = reason


class MalformedLookupProofError(FormatError):
    """A lookup proof's JSON does not have the shape of docs/index.md."""


# --- trees --------------------------------------------------------------------------------------


def record_hash(record: bytes) -> bytes:
    """The RFC 6962 leaf hash of a record's bytes."""
    return _sha256(b"\x00" + record).digest()


def tree_levels(leaves: list[bytes]) -> list[list[bytes]]:
    """Every level of the RFC 6962 tree over ``leaves`` (already hashed), leaves first.

    Pairing from the left and carrying an odd last node up unchanged builds exactly RFC 6962's
    tree (its split point is the largest power of two below the size), so the last level holds
    the root, and :func:`level_path` reads inclusion proofs off the levels.
    """
    levels = [leaves]
    cur = leaves
    while len(cur) > 1:
        nxt = [_sha256(b"\x01" + cur[i] + cur[i + 1]).digest() for i in range(0, len(cur) - 1, 2)]
        if len(cur) & 1:
            nxt.append(cur[-1])
        levels.append(nxt)
        cur = nxt
    return levels


def levels_root(levels: list[list[bytes]]) -> bytes:
    """The root of :func:`tree_levels`' tree; the empty tree's root is ``SHA-256("")``."""
    return levels[-1][0] if levels[0] else EMPTY_ROOT


def level_path(levels: list[list[bytes]], index: int) -> tuple[bytes, ...]:
    """The RFC 6962 inclusion proof of leaf ``index``, leaf to root."""
    out = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):  # else the node was carried up unchanged: no proof element
            out.append(level[sibling])
        index >>= 1
    return tuple(out)


# --- proofs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordProof:
    """One record of a shard (its bytes in the run), its position, and its inclusion proof in
    the shard tree."""

    position: int
    record: bytes
    path: tuple[bytes, ...]


@dataclass(frozen=True)
class LookupProof:
    """Membership or non-membership of one key in one run.

    ``count`` is the shard's record count, ``shard_path`` the shard root's inclusion proof in
    the run tree (``bits`` hashes) and ``records`` the 0, 1 or 2 records described in the module
    docstring, by ascending position. The shard is the key's (:func:`shard_of`), so it is not
    stored. Parsed proofs are well-shaped, not trusted: :meth:`verify` decides.
    """

    count: int
    shard_path: tuple[bytes, ...]
    records: tuple[RecordProof, ...]

    def verify(self, key: bytes, ref: RunRef) -> Record | None:
        """The key's record if the proof shows membership, None if it shows absence.

        Raises :class:`InvalidLookupProofError`, :class:`~stelae.tiles.proof.ProofError` or
        :class:`~stelae.tiles.proof.RootMismatchError` (all verification errors) otherwise.
        """
        if len(key) != INDEX_KEY_SIZE:
            raise InvalidLookupProofError(key, ref, f"the key is {len(key)} bytes, not 16")
        s = shard_of(key, ref.bits)
        what = f"run {ref.name} shard {s}"
        if len(self.shard_path) != ref.bits:
            raise ProofError(
                f"{what}: shard proof has {len(self.shard_path)} hashes, not {ref.bits}"
            )
        decoded: list[Record] = []
        if self.count == 0:
            if self.records:
                raise InvalidLookupProofError(key, ref, "an empty shard has no records to show")
            shard_root = EMPTY_ROOT
        else:
            shard_root = self._shard_root(key, ref, s, decoded)
        run_root = root_from_inclusion_proof(s, ref.shards, shard_root, self.shard_path)
        if run_root != ref.root:
            raise RootMismatchError(what, ref.root, run_root)
        return self._answer(key, ref, decoded)

    def _shard_root(self, key: bytes, ref: RunRef, s: int, decoded: list[Record]) -> bytes:
        """Decode each record into ``decoded`` with every check, and return the one shard root
        they all lead to."""
        if not 1 <= len(self.records) <= 2:
            raise InvalidLookupProofError(key, ref, f"{len(self.records)} records, want 1 or 2")
        root: bytes | None = None
        for rp in self.records:
            try:
                record, end = decode_record(rp.record, 0, ref.a, ref.b)
            except MalformedRecordError as err:
                raise InvalidLookupProofError(key, ref, f"record: {err}") from err
            if end != len(rp.record):
                raise InvalidLookupProofError(key, ref, "record has trailing bytes")
            if shard_of(record.key, ref.bits) != s:
                raise InvalidLookupProofError(key, ref, f"record {record.key.hex()} is not in {s}")
            calculated = root_from_inclusion_proof(
                rp.position, self.count, record_hash(rp.record), rp.path
            )
            if root is not None and calculated != root:
                raise RootMismatchError(
                    f"run {ref.name} shard {s} (second record)", root, calculated
                )
            root = calculated
            decoded.append(record)
        assert root is not None
        return root

    def _answer(self, key: bytes, ref: RunRef, decoded: list[Record]) -> Record | None:
        """Which answer the (Merkle-verified) records give, or why they give none."""
        if not decoded:
            return None
        if len(decoded) == 1:
            (record,), (rp,) = decoded, self.records
            if record.key == key:
                return record
            if key < record.key and rp.position == 0:
                return None  # the key sorts before the shard's first record
            if key > record.key and rp.position == self.count - 1:
                return None  # ... or after its last
            raise InvalidLookupProofError(
                key,
                ref,
                f"record {record.key.hex()} at {rp.position} of {self.count} does not "
                "decide the key (neither it nor at an end of the shard on the key's side)",
            )
        lo, hi = decoded
        if self.records[1].position != self.records[0].position + 1:
            raise InvalidLookupProofError(key, ref, "the two records are not at adjacent positions")
        if not lo.key < key < hi.key:
            raise InvalidLookupProofError(
                key, ref, f"the key is not between records {lo.key.hex()} and {hi.key.hex()}"
            )
        return None

    # --- JSON (docs/index.md, "Lookup proofs as JSON") ---------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "shardProof": [encode_b64(h) for h in self.shard_path],
            "records": [
                {
                    "position": rp.position,
                    "record": encode_b64(rp.record),
                    "proof": [encode_b64(h) for h in rp.path],
                }
                for rp in self.records
            ],
        }

    @classmethod
    def from_json(cls, obj: object) -> LookupProof:
        """Parse the JSON form strictly (types, canonical base64, 32-byte hashes, at most two
        records by ascending position). Raises :class:`MalformedLookupProofError`."""
        o = _object(obj, "lookup proof", {"count", "shardProof", "records"})
        records_json = o["records"]
        if not isinstance(records_json, list) or len(records_json) > 2:
            raise MalformedLookupProofError("lookup proof 'records' is not a list of 0 to 2")
        records = []
        for i, item in enumerate(records_json):
            r = _object(item, f"lookup proof record {i}", {"position", "record", "proof"})
            record = _unb64(r["record"], f"record {i}")
            if not record:
                raise MalformedLookupProofError(f"lookup proof record {i} is empty")
            records.append(
                RecordProof(
                    _uint(r["position"], f"record {i} position"),
                    record,
                    _hashes(r["proof"], f"record {i} proof"),
                )
            )
        if len(records) == 2 and records[0].position >= records[1].position:
            raise MalformedLookupProofError("lookup proof records are not by ascending position")
        return cls(
            _uint(o["count"], "count"), _hashes(o["shardProof"], "shardProof"), tuple(records)
        )


def _unb64(value: object, what: str) -> bytes:
    return decode_b64(value, f"lookup proof {what}", MalformedLookupProofError)


def _hashes(value: object, what: str) -> tuple[bytes, ...]:
    if not isinstance(value, list) or len(value) > 64:
        raise MalformedLookupProofError(f"lookup proof {what} is not a list of hashes")
    out = tuple(_unb64(v, what) for v in value)
    for h in out:
        if len(h) != HASH_SIZE:
            raise MalformedLookupProofError(f"lookup proof {what} holds a {len(h)}-byte hash")
    return out


def _uint(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 63:
        raise MalformedLookupProofError(f"lookup proof {what} is not a non-negative integer")
    return value


def _object(value: object, what: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) != keys:
        raise MalformedLookupProofError(f"{what} is not an object with exactly {sorted(keys)}")
    return value
