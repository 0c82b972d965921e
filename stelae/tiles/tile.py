"""Tile and entry-bundle contents (https://c2sp.org/tlog-tiles)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stelae.tiles.errors import FormatError
from stelae.tiles.hashing import HASH_SIZE, leaf_hash
from stelae.tiles.layout import TILE_WIDTH

MAX_ENTRY_SIZE = 0xFFFF
"""Bundle records carry a uint16 length, so an entry can be at most 65,535 bytes."""


class EntryTooLargeError(FormatError):
    """An entry does not fit a bundle record; it is refused, never truncated."""

    def __init__(self, size: int) -> None:
        super().__init__(
            f"entry is {size} bytes; entry bundles hold at most {MAX_ENTRY_SIZE} bytes per entry",
            hint="shrink the entry (e.g. log a digest instead of the content)",
        )
        self.size = size


@dataclass(frozen=True)
class HashTile:
    """The hashes of one tile: 1..256 hashes of 32 bytes."""

    hashes: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.hashes) <= TILE_WIDTH:
            raise FormatError(f"a tile holds 1..{TILE_WIDTH} hashes, not {len(self.hashes)}")
        if any(len(h) != HASH_SIZE for h in self.hashes):
            raise FormatError(f"a tile hash is not {HASH_SIZE} bytes")

    @classmethod
    def parse(cls, data: bytes, width: int | None = None) -> HashTile:
        """Parse tile bytes; with ``width``, the tile must hold exactly that many hashes."""
        if len(data) % HASH_SIZE:
            raise FormatError(f"tile of {len(data)} bytes is not a whole number of hashes")
        n = len(data) // HASH_SIZE
        if width is not None and n != width:
            raise FormatError(f"tile holds {n} hashes, want {width}")
        return cls(tuple(data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)))

    def to_bytes(self) -> bytes:
        return b"".join(self.hashes)

    def __len__(self) -> int:
        return len(self.hashes)


@dataclass(frozen=True)
class EntryBundle:
    """Up to 256 entries, each serialized as ``uint16_be(len) || bytes``."""

    entries: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.entries) <= TILE_WIDTH:
            raise FormatError(f"a bundle holds 1..{TILE_WIDTH} entries, not {len(self.entries)}")
        for e in self.entries:
            if len(e) > MAX_ENTRY_SIZE:
                raise EntryTooLargeError(len(e))

    @classmethod
    def parse(cls, data: bytes, width: int | None = None) -> EntryBundle:
        """Parse bundle bytes; with ``width``, the bundle must hold exactly that many entries."""
        entries: list[bytes] = []
        pos = 0
        while pos < len(data):
            if pos + 2 > len(data):
                raise FormatError(f"bundle truncated in the length of entry {len(entries)}")
            n = int.from_bytes(data[pos : pos + 2], "big")
            pos += 2
            if pos + n > len(data):
                raise FormatError(
                    f"bundle entry {len(entries)} claims {n} bytes, only {len(data) - pos} left"
                )
            entries.append(data[pos : pos + n])
            pos += n
            if len(entries) > TILE_WIDTH:
                raise FormatError(f"bundle holds more than {TILE_WIDTH} entries")
        if width is not None and len(entries) != width:
            raise FormatError(f"bundle holds {len(entries)} entries, want {width}")
        return cls(tuple(entries))

    def to_bytes(self) -> bytes:
        return encode_records(self.entries)

    def leaf_hashes(self) -> list[bytes]:
        return [leaf_hash(e) for e in self.entries]

    def __len__(self) -> int:
        return len(self.entries)


def encode_records(entries: Sequence[bytes]) -> bytes:
    """Serialize entries as bundle records, refusing (never truncating) oversized ones."""
    out = bytearray()
    for e in entries:
        if len(e) > MAX_ENTRY_SIZE:
            raise EntryTooLargeError(len(e))
        out += len(e).to_bytes(2, "big")
        out += e
    return bytes(out)
