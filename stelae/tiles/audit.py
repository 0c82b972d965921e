"""Auditing a tiled log from its entries: recompute every tile and the root, bundle by bundle.

A monitor does not trust a single served hash. It re-hashes every entry of every bundle, rebuilds
the level-0 tiles from those leaf hashes and each higher level from the full tiles below (the same
:func:`~stelae.tiles.builder.extend` a sequencer uses), compares every tile it rebuilt with the one
the log serves, and finally compares the rebuilt root with the signed checkpoint's.

The audit is resumable in O(new entries): its whole state is the right-edge tile of each level
(:class:`AuditState`), from which the compact range, and so the root, follows. Pure code: the
caller fetches bundles and tiles and hands them in as values.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stelae.tiles.builder import extend, right_edge_from_tiles
from stelae.tiles.checkpoint import Checkpoint
from stelae.tiles.compact import RightEdge
from stelae.tiles.decimals import parse_decimal
from stelae.tiles.errors import FormatError, VerificationError
from stelae.tiles.layout import MAX_LEVEL, TILE_WIDTH, TileID, right_edge_tiles
from stelae.tiles.proof import RootMismatchError
from stelae.tiles.tile import EntryBundle, HashTile

__all__ = [
    "AuditState",
    "AuditStep",
    "SavedAudit",
    "TileMismatchError",
    "audit_bundle",
    "check_root",
    "compare_tile",
    "partial_edge_tiles",
]


class TileMismatchError(VerificationError):
    """A served tile (or the audited prefix of a bundle) differs from what its entries imply.

    Evidence: ``path`` (the tile or bundle), ``position`` (the first differing hash), and the
    ``served`` and ``calculated`` hashes at that position (``served`` is empty when the served
    tile is shorter than it should be).
    """

    def __init__(
        self, path: str, position: int, served: bytes, calculated: bytes, *, why: str = ""
    ) -> None:
        super().__init__(
            why
            or f"{path}: hash {position} is {served.hex() or 'missing'} in the log but "
            f"{calculated.hex() or 'absent'} when recomputed from the entries"
        )
        self.path = path
        self.position = position
        self.served = served
        self.calculated = calculated


@dataclass(frozen=True)
class AuditState:
    """How far an audit got: the right-edge tile of each level of a tree of ``edge.size``.

    Valid once constructed: ``edge`` is recomputed from the tiles (never stored separately), so a
    state cannot describe a compact range its tiles do not hold.
    """

    tiles: Mapping[int, HashTile] = field(default_factory=dict)
    size: int = 0
    edge: RightEdge = field(init=False)

    def __post_init__(self) -> None:
        levels = {t.level for t in right_edge_tiles(self.size)}
        if set(self.tiles) != levels:
            raise FormatError(
                f"an audit at size {self.size} needs right-edge tiles at levels "
                f"{sorted(levels)}, not {sorted(self.tiles)}"
            )
        object.__setattr__(self, "edge", right_edge_from_tiles(self.size, self.tiles))

    def root(self) -> bytes:
        return self.edge.root()

    def to_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "tiles": {
                str(level): base64.b64encode(tile.to_bytes()).decode("ascii")
                for level, tile in sorted(self.tiles.items())
            },
        }

    @classmethod
    def from_json(cls, obj: object) -> AuditState:
        """Parse :meth:`to_json` output; raises :class:`FormatError` on anything else."""
        if not isinstance(obj, dict):
            raise FormatError("audit state is not a JSON object")
        size, tiles = obj.get("size"), obj.get("tiles")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise FormatError("audit state has no non-negative 'size'")
        if not isinstance(tiles, dict):
            raise FormatError("audit state has no 'tiles' object")
        parsed: dict[int, HashTile] = {}
        for level, b64 in tiles.items():
            if not isinstance(level, str) or not isinstance(b64, str):
                raise FormatError(f"audit state has a bad tile entry {level!r}")
            try:
                tile_level = parse_decimal(level, "tile level", maximum=MAX_LEVEL)
            except FormatError as err:
                raise FormatError(f"audit state has a bad tile entry {level!r}: {err}") from err
            try:
                data = base64.b64decode(b64.encode("ascii"), validate=True)
            except ValueError as err:
                raise FormatError(f"audit state tile {level} is not base64") from err
            parsed[tile_level] = HashTile.parse(data)
        return cls(parsed, size)


@dataclass(frozen=True)
class SavedAudit:
    """What a monitor keeps between rounds: how far it audited, the signed checkpoint it checked
    that against, and the index runs it recomputed (``(a, b) -> hex run root``).

    ``checkpoint`` is the note as stored: whoever loads it verifies it with the log's key before
    trusting it (a state file is not trusted). Index runs are a cache: a malformed one is left out
    and so merely checked again.
    """

    audit: AuditState = field(default_factory=AuditState)
    checkpoint: bytes | None = None
    index: Mapping[tuple[int, int], str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"audit": self.audit.to_json()}
        if self.checkpoint is not None:
            obj["checkpoint"] = self.checkpoint.decode("utf-8")
        obj["index"] = [[a, b, root] for (a, b), root in sorted(self.index.items())]
        return obj

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> SavedAudit:
        """Parse :meth:`to_json` output; raises :class:`FormatError` if the audit state is bad."""
        note = obj.get("checkpoint")
        checkpoint = note.encode("utf-8") if isinstance(note, str) else None
        return cls(
            AuditState.from_json(obj.get("audit")), checkpoint, _index_runs(obj.get("index"))
        )


def _index_runs(runs: object) -> dict[tuple[int, int], str]:
    if not isinstance(runs, list):
        return {}
    out: dict[tuple[int, int], str] = {}
    for r in runs:
        if isinstance(r, list) and len(r) == 3 and all(isinstance(x, int) for x in r[:2]):
            out[(r[0], r[1])] = str(r[2])
    return out


@dataclass(frozen=True)
class AuditStep:
    """The state after one bundle, and the tiles that became full on the way.

    Full tiles never change again, so each is compared with the served one exactly once, here.
    Partial tiles are compared only at the end of an audit (:func:`partial_edge_tiles`), at the
    size of the checkpoint the audit is checked against, because those are the ones served.
    """

    state: AuditState
    full_tiles: tuple[tuple[TileID, HashTile], ...]


def audit_bundle(state: AuditState, bundle_index: int, bundle: EntryBundle) -> AuditStep:
    """Add the entries of bundle ``bundle_index`` that are beyond ``state.size``.

    The bundle must be the one holding entry ``state.size``. When the audit stopped inside it, its
    first entries were audited before: their leaf hashes must still be those recorded in the
    level-0 right-edge tile, or the log rewrote entries (:class:`TileMismatchError`).
    """
    first = bundle_index * TILE_WIDTH
    done = state.size - first
    if not 0 <= done < TILE_WIDTH or (done == 0 and state.size % TILE_WIDTH):
        raise FormatError(f"bundle {bundle_index} does not continue an audit at size {state.size}")
    if len(bundle) <= done:
        raise FormatError(
            f"bundle {bundle_index} holds {len(bundle)} entries, the audit already has {done}"
        )
    leaf_hashes = bundle.leaf_hashes()
    if done:
        recorded = state.tiles[0].hashes
        for i, (seen, now) in enumerate(zip(recorded, leaf_hashes[:done], strict=False)):
            if seen != now:
                path = TileID.bundle(bundle_index, len(bundle)).path()
                raise TileMismatchError(
                    path,
                    i,
                    now,
                    seen,
                    why=f"{path}: entry {first + i} was rewritten since it was audited "
                    f"(leaf hash {seen.hex()} then, {now.hex()} now)",
                )
    update = extend(state.edge, state.tiles, leaf_hashes[done:])
    new_state = AuditState(dict(update.edge_tiles), update.edge.size)
    full = tuple((tid, tile) for tid, tile in update.tiles if not tid.is_partial)
    return AuditStep(new_state, full)


def partial_edge_tiles(state: AuditState) -> list[tuple[TileID, HashTile]]:
    """The right-edge tiles of ``state`` that are not full: what the log serves as ``.p/W``."""
    out = []
    for tid in right_edge_tiles(state.size):
        if tid.is_partial:
            out.append((tid, state.tiles[tid.level]))
    return out


def compare_tile(tid: TileID, calculated: HashTile, served: HashTile) -> None:
    """Raise :class:`TileMismatchError` unless ``served`` holds exactly ``calculated``."""
    for i, want in enumerate(calculated.hashes):
        got = served.hashes[i] if i < len(served) else b""
        if got != want:
            raise TileMismatchError(tid.path(), i, got, want)
    if len(served) != len(calculated):
        raise TileMismatchError(tid.path(), len(calculated), served.hashes[len(calculated)], b"")


def check_root(state: AuditState, checkpoint: Checkpoint) -> None:
    """Raise :class:`RootMismatchError` unless the audited tree is the checkpoint's tree."""
    if state.size != checkpoint.size:
        raise FormatError(f"the audit is at size {state.size}, the checkpoint at {checkpoint.size}")
    calculated = state.root()
    if calculated != checkpoint.root_hash:
        raise RootMismatchError(
            f"root of the {state.size} audited entries", checkpoint.root_hash, calculated
        )
