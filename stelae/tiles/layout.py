"""C2SP tlog-tiles paths and which tiles exist for a tree size (https://c2sp.org/tlog-tiles).

Tiles have height 8 (256 hashes). Tile ``n`` at level ``l`` holds the hashes of the perfect subtrees
of 256**l leaves numbered ``n*256 .. n*256+255``; a tile that is not yet full is served at
``<path>.p/<W>`` with W in 1..255. Entry bundles follow the same numbering under ``tile/entries``.
Every other key of a log (the checkpoint, its history, batch records, the lookup index) is spelled
in :mod:`stelae.tiles.paths`, with the class of object each key holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from stelae.tiles.decimals import parse_decimal
from stelae.tiles.errors import FormatError

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_LEVEL = 63
_MAX_INDEX = (1 << 64) - 1

ENTRIES = "entries"


def encode_index(n: int) -> str:
    """Tile index in 3-digit groups, every group but the last prefixed with ``x``.

    1234067 → ``x001/x234/067``; 0 → ``000``.
    """
    if not 0 <= n <= _MAX_INDEX:
        raise FormatError(f"tile index {n} is out of range")
    parts = [f"{n % 1000:03d}"]
    n //= 1000
    while n > 0:
        parts.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(parts))


def decode_index(groups: list[str]) -> int:
    """Inverse of :func:`encode_index`, given the path segments; strict about the grammar."""
    if not groups:
        raise FormatError("tile path has no index")
    *prefix, last = groups
    n = 0
    for g in prefix:
        if not g.startswith("x"):
            raise FormatError(f"tile index group {g!r} is not 'x' and three digits")
        n = n * 1000 + parse_decimal(g[1:], "tile index group", width=3)
    n = n * 1000 + parse_decimal(last, "tile index group", width=3)
    if n > _MAX_INDEX:
        raise FormatError("tile index overflows uint64")
    if prefix and prefix[0] == "x000":
        # Non-canonical: the encoder never writes a leading x000 group.
        raise FormatError("tile index has a leading zero group")
    return n


@dataclass(frozen=True, order=True)
class TileID:
    """A hash tile (``level >= 0``) or, with ``level == -1``, an entry bundle.

    ``width`` is 1..256; 256 means full (no ``.p/`` suffix).
    """

    level: int
    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        if not (-1 <= self.level <= MAX_LEVEL):
            raise FormatError(f"tile level {self.level} is out of range 0..{MAX_LEVEL}")
        if not 0 <= self.index <= _MAX_INDEX:
            raise FormatError(f"tile index {self.index} is out of range")
        if not 1 <= self.width <= TILE_WIDTH:
            raise FormatError(f"tile width {self.width} is out of range 1..{TILE_WIDTH}")

    @classmethod
    def bundle(cls, index: int, width: int = TILE_WIDTH) -> TileID:
        return cls(-1, index, width)

    @property
    def is_bundle(self) -> bool:
        return self.level == -1

    @property
    def is_partial(self) -> bool:
        return self.width < TILE_WIDTH

    def full(self) -> TileID:
        """The full tile at the same position (the fallback when a partial one is gone)."""
        return TileID(self.level, self.index)

    def path(self) -> str:
        """The path relative to the log prefix, e.g. ``tile/0/x001/234.p/7``."""
        head = f"tile/{ENTRIES}" if self.is_bundle else f"tile/{self.level}"
        suffix = f".p/{self.width}" if self.is_partial else ""
        return f"{head}/{encode_index(self.index)}{suffix}"

    @classmethod
    def parse(cls, path: str) -> TileID:
        """Parse a tile or bundle path (relative to the prefix); reject anything non-canonical."""
        segs = path.split("/")
        if len(segs) < 3 or segs[0] != "tile":
            raise FormatError(f"{path!r} is not a tile path")
        width = TILE_WIDTH
        if len(segs) >= 4 and segs[-2].endswith(".p"):
            w = segs[-1]
            try:
                width = parse_decimal(w, "partial width", maximum=TILE_WIDTH - 1)
            except FormatError as err:
                raise FormatError(f"{path!r}: partial width {w!r} is not 1..255") from err
            if width == 0:
                raise FormatError(f"{path!r}: partial width {w!r} is not 1..255")
            segs = [*segs[:-2], segs[-2][:-2]]
        if segs[1] == ENTRIES:
            level = -1
        else:
            try:
                level = parse_decimal(segs[1], "tile level", maximum=MAX_LEVEL)
            except FormatError as err:
                raise FormatError(
                    f"{path!r}: level {segs[1]!r} is not 0..{MAX_LEVEL} or 'entries'"
                ) from err
        try:
            index = decode_index(segs[2:])
        except FormatError as err:
            raise FormatError(f"{path!r}: {err}") from err
        return cls(level, index, width)


def tile_width(level: int, index: int, tree_size: int) -> int:
    """How many hashes tile (level, index) holds in a tree of ``tree_size`` (0 if it doesn't exist).

    For entry bundles use ``level = 0``: bundles are as wide as the level-0 tiles.
    """
    level_size = tree_size >> (TILE_HEIGHT * level)  # hashes stored at this tile level
    return max(0, min(TILE_WIDTH, level_size - index * TILE_WIDTH))


def tile_for(level: int, index: int, tree_size: int, *, bundle: bool = False) -> TileID:
    """The TileID (with the right width) of tile ``(level, index)`` at ``tree_size``."""
    w = tile_width(0 if bundle else level, index, tree_size)
    if w == 0:
        raise FormatError(f"tile {level}/{index} does not exist at tree size {tree_size}")
    return TileID(-1 if bundle else level, index, w)


def tiles_for_size(tree_size: int) -> list[TileID]:
    """Every hash tile (full and the partial right-edge ones) that exists at ``tree_size``.

    The list has O(tree_size / 256) items; use :func:`right_edge_tiles` for the O(log n) subset.
    """
    out: list[TileID] = []
    level = 0
    while True:
        level_size = tree_size >> (TILE_HEIGHT * level)
        if level_size == 0:
            break
        full, partial = divmod(level_size, TILE_WIDTH)
        out.extend(TileID(level, i) for i in range(full))
        if partial:
            out.append(TileID(level, full, partial))
        level += 1
    return out


def right_edge_tiles(tree_size: int) -> list[TileID]:
    """The rightmost tile at each level that exists at ``tree_size``: what a sequencer reads."""
    out: list[TileID] = []
    level = 0
    while True:
        level_size = tree_size >> (TILE_HEIGHT * level)
        if level_size == 0:
            return out
        index = (level_size - 1) // TILE_WIDTH
        out.append(TileID(level, index, tile_width(level, index, tree_size)))
        level += 1


def bundles_for_size(tree_size: int) -> list[TileID]:
    """Every entry bundle that exists at ``tree_size``."""
    full, partial = divmod(tree_size, TILE_WIDTH)
    out = [TileID.bundle(i) for i in range(full)]
    if partial:
        out.append(TileID.bundle(full, partial))
    return out
