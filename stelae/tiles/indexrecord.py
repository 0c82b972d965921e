"""Lookup-index records and run references: the byte format of one record (docs/index.md,
"Records") and the value naming a run ``(a, b, bits, root)``.

A record is ``key[16] || flags u8 || uvarint(n) || n × uvarint(delta) || [n × uvarint(offset)]``
with indices delta-coded from the run's first index ``a``. Encoding is on the sequencer's hot path
(thousands of records a batch), so :class:`Record` does no validation when constructed; its
:meth:`Record.encode` checks what a wrong caller could get wrong cheaply, and
:func:`decode_record` — the only way in from untrusted bytes — checks everything.

Pure code: no I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from stelae.tiles.errors import FormatError
from stelae.tiles.hashing import HASH_SIZE
from stelae.tiles.indexkeys import INDEX_KEY_SIZE

__all__ = [
    "FLAG_LEAF",
    "MAX_BITS",
    "MAX_INDEX",
    "MIN_RECORD_SIZE",
    "MalformedRecordError",
    "Record",
    "RunRef",
    "decode_record",
    "read_uvarint",
    "remember_encoding",
    "shard_of",
    "uvarint",
]

FLAG_LEAF = 0x01
MAX_BITS = 24
#: Log indices and run bounds are below 2^63, as tree sizes are (Go's tlog uses int64).
MAX_INDEX = (1 << 63) - 1
#: key, flags, n = 1, one delta: the smallest well-formed record.
MIN_RECORD_SIZE = INDEX_KEY_SIZE + 3
#: A uvarint of a value below 2^63 is at most 9 bytes.
_MAX_UVARINT_BYTES = 9

_SMALL = [bytes([i]) for i in range(0x80)]
_sha256 = hashlib.sha256


class MalformedRecordError(FormatError):
    """Bytes are not a well-formed record of the run they claim to belong to."""


def uvarint(n: int) -> bytes:
    """Unsigned LEB128, minimal length (protobuf's varint)."""
    if n < 0x80:
        if n < 0:
            raise ValueError(f"uvarint of negative {n}")
        return _SMALL[n]
    # Deltas in runs of up to 2^21 entries: two or three bytes, without the loop.
    if n < 0x4000:
        return bytes((n & 0x7F | 0x80, n >> 7))
    if n < 0x200000:
        return bytes((n & 0x7F | 0x80, (n >> 7) & 0x7F | 0x80, n >> 14))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def read_uvarint(data: bytes, pos: int) -> tuple[int, int]:
    """The minimal-length uvarint at ``pos`` (below 2^63) and the position after it.

    Raises :class:`MalformedRecordError` on a truncated, overlong or non-minimal encoding: one
    value must have one spelling, so that a record's hash names exactly one record.
    """
    try:
        byte = data[pos]
    except IndexError:
        raise MalformedRecordError(f"truncated varint at byte {pos}") from None
    if byte < 0x80:
        return byte, pos + 1
    value, shift, start = byte & 0x7F, 7, pos
    pos += 1
    while True:
        try:
            byte = data[pos]
        except IndexError:
            raise MalformedRecordError(f"truncated varint at byte {start}") from None
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
        if pos - start >= _MAX_UVARINT_BYTES:
            raise MalformedRecordError(f"varint at byte {start} is longer than 9 bytes")
    if byte == 0:
        raise MalformedRecordError(f"varint at byte {start} is not minimal")
    if value > MAX_INDEX:
        raise MalformedRecordError(f"varint at byte {start} is 2^63 or more")
    return value, pos


@dataclass(frozen=True, slots=True)
class Record:
    """One index key and its ascending log indices inside one run.

    ``offsets`` is set on ``leaf`` records only: for each index, the entry's position in the batch
    that sequenced it (so ``index - offset`` is that batch's first index). Not validated when
    constructed (see the module docstring); :func:`decode_record` builds only valid ones.
    """

    key: bytes
    indices: tuple[int, ...]
    offsets: tuple[int, ...] | None = None
    #: ``u64(a) || record hash || bytes`` of the last encoding, for the run start ``a``, so a
    #: run rebuilt from the same start — the older side of every merge — re-encodes and
    #: re-hashes nothing. One bytes object (about 100 bytes a record), replaced in one
    #: assignment so a thread never sees the start of one encoding with the bytes of another;
    #: not part of the value, and ``init=False`` so that ``dataclasses.replace`` never carries
    #: it to a record with other indices.
    _encoding: bytes = field(default=b"", init=False, compare=False, repr=False)

    def encode(self, a: int) -> bytes:
        """The record's bytes in a run starting at ``a``. ``ValueError`` if the indices are not
        strictly ascending from ``a``, the key is not 16 bytes or the offsets don't fit."""
        return self.encoded(a)[0]

    def encoded(self, a: int) -> tuple[bytes, bytes]:
        """The record's bytes in a run starting at ``a`` and their RFC 6962 leaf hash."""
        start = a.to_bytes(8, "big")
        cached = self._encoding
        if cached.startswith(start):
            return cached[8 + HASH_SIZE :], cached[8 : 8 + HASH_SIZE]
        data = encode_record(self.key, self.indices, self.offsets, a)
        digest = _sha256(b"\x00" + data).digest()
        object.__setattr__(self, "_encoding", start + digest + data)
        return data, digest

    def batch_starts(self) -> tuple[int, ...] | None:
        """``index - offset`` for each index of a leaf record (the batches' first indices)."""
        if self.offsets is None:
            return None
        return tuple(i - o for i, o in zip(self.indices, self.offsets, strict=True))


def encode_record(
    key: bytes, indices: tuple[int, ...], offsets: tuple[int, ...] | None, a: int
) -> bytes:
    """:meth:`Record.encode` without the object (merges and builds call it in a loop)."""
    if len(key) != INDEX_KEY_SIZE:
        raise ValueError(f"index key is {len(key)} bytes, not {INDEX_KEY_SIZE}")
    if len(indices) == 1 and offsets is None:  # most records: one entry, not a leaf key
        delta = indices[0] - a
        if delta < 0:
            raise ValueError(f"record {key.hex()}: index {indices[0]} is before the run ({a})")
        return key + b"\x00\x01" + (_SMALL[delta] if delta < 0x80 else uvarint(delta))
    if not indices:
        raise ValueError(f"record {key.hex()} has no indices")
    parts = [key, b"\x01" if offsets is not None else b"\x00", uvarint(len(indices))]
    prev = a - 1
    for i in indices:
        delta = i - prev - 1
        if delta < 0:
            raise ValueError(f"record {key.hex()}: index {i} is not above {prev} (run from {a})")
        parts.append(_SMALL[delta] if delta < 0x80 else uvarint(delta))
        prev = i
    if offsets is not None:
        _encode_offsets(parts, key, indices, offsets, a)
    return b"".join(parts)


def _encode_offsets(
    parts: list[bytes], key: bytes, indices: tuple[int, ...], offsets: tuple[int, ...], a: int
) -> None:
    """Append a leaf record's offsets to ``parts``, checking each lies inside the run."""
    if len(offsets) != len(indices):
        raise ValueError(f"record {key.hex()}: {len(offsets)} offsets for {len(indices)}")
    for i, o in zip(indices, offsets, strict=True):
        # A run starts where a batch starts, so no entry's batch begins before the run.
        if not 0 <= o <= i - a:
            raise ValueError(f"record {key.hex()}: offset {o} of index {i} is outside the run")
        parts.append(_SMALL[o] if o < 0x80 else uvarint(o))


def decode_record(data: bytes, pos: int, a: int, b: int) -> tuple[Record, int]:
    """The record at ``pos`` in a run ``[a, b)`` and the position after it, fully checked:
    flags 0 or 1, ``n >= 1``, minimal varints, indices strictly ascending inside ``[a, b)``,
    offsets with ``0 <= offset <= index - a``. Raises :class:`MalformedRecordError`."""
    # A client verifies a whole shard (thousands of records) per run it reads: the one- and
    # two-byte varints that make up nearly every record are decoded inline, the rest by
    # read_uvarint, and running off the end surfaces as one IndexError.
    start = pos
    if len(data) - pos < MIN_RECORD_SIZE:
        raise MalformedRecordError(f"record at byte {start} is truncated")
    try:
        key = data[pos : pos + INDEX_KEY_SIZE]
        pos += INDEX_KEY_SIZE
        flags = data[pos]
        if flags > FLAG_LEAF:
            raise MalformedRecordError(f"record at byte {start} has unknown flags 0x{flags:02x}")
        n, pos = _read_count(data, pos + 1, start, flags, b - a)
        indices = []
        prev = a - 1
        for _ in range(n):
            byte = data[pos]
            if byte < 0x80:
                prev += byte + 1
                pos += 1
            elif 0 < (second := data[pos + 1]) < 0x80:
                prev += (byte & 0x7F | second << 7) + 1
                pos += 2
            else:
                delta, pos = read_uvarint(data, pos)
                prev += delta + 1
            indices.append(prev)
        if prev >= b:
            raise MalformedRecordError(
                f"record at byte {start} lists index {prev}, outside [{a}, {b})"
            )
        if not flags:
            return Record(key, tuple(indices)), pos
        offsets, pos = _read_offsets(data, pos, start, indices, a)
        return Record(key, tuple(indices), tuple(offsets)), pos
    except IndexError:
        raise MalformedRecordError(f"record at byte {start} is truncated") from None


def _read_count(data: bytes, pos: int, start: int, flags: int, width: int) -> tuple[int, int]:
    """The record's index count ``n`` at ``pos`` and the position after it, for a run of
    ``width`` entries; part of :func:`decode_record` (its caller turns IndexError into
    "truncated")."""
    n = data[pos]
    if n < 0x80:
        pos += 1
    else:
        n, pos = read_uvarint(data, pos)
    # Each index needs at least one byte (two with an offset): bound n before looping.
    if n == 0 or n * (2 if flags else 1) > len(data) - pos or n > width:
        raise MalformedRecordError(f"record at byte {start} claims {n} indices")
    return n, pos


def _read_offsets(
    data: bytes, pos: int, start: int, indices: list[int], a: int
) -> tuple[list[int], int]:
    """A leaf record's offsets at ``pos`` (one per index) and the position after them; part
    of :func:`decode_record`."""
    offsets = []
    for i in indices:
        byte = data[pos]
        if byte < 0x80:
            o = byte
            pos += 1
        else:
            o, pos = read_uvarint(data, pos)
        if o > i - a:
            raise MalformedRecordError(
                f"record at byte {start}: offset {o} puts index {i}'s batch before the run"
            )
        offsets.append(o)
    return offsets, pos


def remember_encoding(record: Record, start: bytes, digest: bytes, data: bytes) -> None:
    """Let ``record`` remember that its bytes in a run from ``start`` (``u64(a)``) are ``data``
    with record hash ``digest``: for code that has just decoded and hashed them (a shard), so
    that rebuilding the run from its records re-encodes nothing. The caller vouches for it."""
    object.__setattr__(record, "_encoding", start + digest + data)


def shard_of(key: bytes, bits: int) -> int:
    """The shard of ``key`` in a run of ``2^bits`` shards: its top ``bits`` bits."""
    if not 0 <= bits <= MAX_BITS:
        raise ValueError(f"bits {bits} is outside 0..{MAX_BITS}")
    return int.from_bytes(key[:4], "big") >> (32 - bits)


@dataclass(frozen=True)
class RunRef:
    """A run as a manifest lists it: it indexes log entries ``[a, b)`` in ``2^bits`` shards
    whose RFC 6962 tree (over the shard roots) has root ``root``."""

    a: int
    b: int
    bits: int
    root: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.a < self.b <= MAX_INDEX:
            raise FormatError(f"run [{self.a}, {self.b}) is not a non-empty range of log indices")
        if not 0 <= self.bits <= MAX_BITS:
            raise FormatError(f"run {self.a}-{self.b} has bits {self.bits}, not 0..{MAX_BITS}")
        if len(self.root) != HASH_SIZE:
            raise FormatError(f"run {self.a}-{self.b} root is {len(self.root)} bytes, not 32")

    @property
    def shards(self) -> int:
        return 1 << self.bits

    @property
    def name(self) -> str:
        """``<a>-<b>``, as in the run's object paths."""
        return f"{self.a}-{self.b}"
