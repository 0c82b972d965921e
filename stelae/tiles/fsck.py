"""Checking a whole log against its signed checkpoint and naming every damaged object.

A monitor (:mod:`stelae.tiles.audit`) stops at the first tile that differs, because for a
monitor any difference is an alarm. ``stelae fsck`` asks another question — *which* objects of
this log are damaged or missing — so it keeps going and reports each one with its evidence:

1. the checkpoint: signed by the log's key, for the log's origin (https://c2sp.org/tlog-checkpoint);
2. every entry bundle and hash tile up to the checkpoint's size (https://c2sp.org/tlog-tiles),
   recomputed from the entries as the monitor does. A bundle and its level-0 tile are two copies
   of the same leaf hashes; when they disagree, the copy that hashes to the node above it (the
   level-1 tile's hash, or for the right edge the signed root) is the intact one, and the other
   is reported. A bundle that cannot be read is replaced by its tile's hashes, a tile by the
   recomputed ones, so the walk goes on past either;
3. the checkpoint history objects ``checkpoints/<size>`` it can find (docs/layout.md): signed by
   the log, and holding the root of the log's first ``size`` entries;
4. the batch records ``batch/<first>`` (docs/sequencing.md): their leaf hashes are the level-0
   hashes at their indices, their base root the root of the tree at their first index, their
   bodies those leaf hashes' bodies, their Rekor v1 signed entry timestamps valid, and each
   ends where the next begins;
5. the lookup index the log signed for the checkpoint's size (docs/index.md), run by run, with
   :func:`~stelae.tiles.indexaudit.audit_index`.

Pure apart from the injected ``fetch`` (the :mod:`stelae.tiles.fetch` contract: NotFoundError for
a missing object; any other StelaeError means the log could not be read, which is not damage and
propagates) and ``list_names`` (a local directory can be listed, a static HTTP prefix cannot).
Memory is O(log n) for the tree plus one root per history object and batch record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

from stelae.errors import StelaeError
from stelae.tiles.audit import AuditState, partial_edge_tiles
from stelae.tiles.batch import BatchRecord
from stelae.tiles.builder import extend
from stelae.tiles.checkpoint import Checkpoint, open_checkpoint
from stelae.tiles.errors import FormatError, NotFoundError, VerificationError
from stelae.tiles.fsckreport import Problem, Report
from stelae.tiles.hashing import EMPTY_ROOT, HASH_SIZE, root_from_leaf_hashes
from stelae.tiles.indexaudit import IndexMismatchError, KeysOf, audit_index
from stelae.tiles.indexrun import InvalidShardError, RunRef, Shard
from stelae.tiles.layout import (
    TILE_WIDTH,
    TileID,
    tile_width,
)
from stelae.tiles.manifest import Manifest
from stelae.tiles.note import NoteVerifier
from stelae.tiles.paths import (
    BATCH_DIR,
    CHECKPOINT,
    HISTORY_DIR,
    batch_path,
    history_path,
    manifest_path,
    run_path,
    run_shard_path,
)
from stelae.tiles.tile import EntryBundle, HashTile
from stelae.tiles.timestamp import verify_set

__all__ = ["Problem", "Report", "fsck"]

Fetch = Callable[[str], bytes]
ListNames = Callable[[str], Sequence[str] | None]
"""``folder -> names of the objects directly in it``, or None when the log cannot be listed."""


def _sized(data: bytes) -> str:
    return f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}"


def _decimal_names(names: Iterable[str]) -> list[int]:
    """The canonical decimal names; others (stray or temporary files) are no objects of ours."""
    return sorted(int(n) for n in names if n.isascii() and n.isdigit() and str(int(n)) == n)


def fsck(
    fetch: Fetch,
    verifiers: Sequence[NoteVerifier],
    origin: str,
    keys_of: KeysOf,
    *,
    list_names: ListNames | None = None,
    set_key: bytes | None = None,
    require_all: bool = False,
) -> Report:
    """Check the whole log (steps 1–5 of the module docstring) and report every problem.

    ``keys_of`` derives an entry's lookup keys (``stelae.kinds.lookup_keys``); ``set_key`` is the
    log's raw Ed25519 public key, with which the batch records' signed entry timestamps are
    checked (None: not checked). With ``require_all`` the checkpoint and every history object
    must carry a valid signature by each of ``verifiers``, as for a reader that pins them all
    (:func:`~stelae.tiles.checkpoint.open_checkpoint`).
    """
    return _Fsck(
        fetch,
        verifiers,
        origin,
        keys_of=keys_of,
        list_names=list_names,
        set_key=set_key,
        require_all=require_all,
    ).run()


class _Fsck:
    def __init__(
        self,
        fetch: Fetch,
        verifiers: Sequence[NoteVerifier],
        origin: str,
        *,
        keys_of: KeysOf,
        list_names: ListNames | None,
        set_key: bytes | None,
        require_all: bool = False,
    ) -> None:
        self.fetch = fetch
        self.verifiers = tuple(verifiers)
        self.require_all = require_all
        self.origin = origin
        self.keys_of = keys_of
        self.list_names = list_names
        self.set_key = set_key
        self.report = Report()
        self.size = 0
        # Level-0 hashes that differ from the served tile (the tile is damaged): the batch check
        # compares records with these, not with the damaged copy.
        self.level0_fixed: dict[int, tuple[bytes, ...]] = {}
        self.bad_bundles: set[int] = set()  # bundles whose entries could not be read
        self.bad_batches: list[int] = []  # batch records that do not parse
        self.tree_ok = True  # the recomputed tree reached the signed root
        self.leaf_tile: tuple[int, tuple[bytes, ...] | None] = (-1, None)

    def problem(self, path: str, problem: str, expected: str = "", found: str = "") -> None:
        self.report.problems.append(Problem(path, problem, expected, found))

    def run(self) -> Report:
        cp = self.checkpoint()
        if cp is None:
            return self.report
        self.size = self.report.tree_size = cp.size
        history = self.history_sizes()
        firsts = self.batch_firsts()
        roots = self.walk(cp, set(history) | set(firsts))
        self.check_history(history, roots)
        self.check_batches(firsts, roots)
        self.check_index(cp, firsts[-1] if firsts else None)
        return self.report

    # -- 1. the checkpoint -----------------------------------------------------------------------

    def checkpoint(self) -> Checkpoint | None:
        try:
            data = self.fetch(CHECKPOINT)
        except NotFoundError:
            self.problem(CHECKPOINT, "missing", "a signed checkpoint", "missing")
            return None
        self.report.checked["checkpoint"] += 1
        try:
            return self.open_checkpoint(data)
        except (FormatError, VerificationError) as err:
            # Without a trusted root nothing else can be checked against anything.
            self.problem(CHECKPOINT, f"not a checkpoint of {self.origin} signed by its key: {err}")
            return None

    # -- 2. bundles and tiles --------------------------------------------------------------------

    def open_checkpoint(self, data: bytes) -> Checkpoint:
        """``data`` verified as a checkpoint of this log, by every pinned key with require_all."""
        return open_checkpoint(
            data, self.verifiers, self.origin, require_all=self.require_all
        ).checkpoint

    def served(self, tid: TileID) -> bytes:
        """The bytes of ``tid``; a missing partial tile is served by the full one's prefix
        (tlog-tiles lets a log delete partial tiles once the full one exists)."""
        try:
            return self.fetch(tid.path())
        except NotFoundError:
            if not tid.is_partial:
                raise
        data = self.fetch(tid.full().path())
        if tid.is_bundle:  # keep its first ``width`` entries
            return EntryBundle(EntryBundle.parse(data).entries[: tid.width]).to_bytes()
        return data[: tid.width * HASH_SIZE]

    def served_tile(self, tid: TileID) -> tuple[tuple[bytes, ...] | None, str]:
        """The served tile's hashes, or None and what was found instead."""
        try:
            data = self.served(tid)
        except NotFoundError:
            return None, "missing"
        try:
            return HashTile.parse(data, tid.width).hashes, _sized(data)
        except FormatError:
            return None, _sized(data)

    def served_bundle(self, n: int, width: int) -> tuple[EntryBundle | None, str, str]:
        """The served bundle, or None, why, and what was found instead."""
        try:
            data = self.served(TileID.bundle(n, width))
        except NotFoundError:
            return None, "missing", "missing"
        except FormatError as err:  # the full bundle standing in for the partial one
            return None, f"does not parse: {err}", "unreadable"
        try:
            return EntryBundle.parse(data, width), "", ""
        except FormatError as err:
            return None, f"does not parse: {err}", _sized(data)

    def walk(self, cp: Checkpoint, wanted: set[int]) -> dict[int, bytes]:
        """Recompute the tree bundle by bundle; return the root at each size in ``wanted``."""
        state = AuditState()
        roots = {0: EMPTY_ROOT}
        end = (cp.size + TILE_WIDTH - 1) // TILE_WIDTH
        for n in range(end):
            width = tile_width(0, n, cp.size)
            leaves = self.level0(n, width, state, cp)
            if leaves is None:
                self.tree_ok = False
                continue  # the tree above cannot be recomputed; bundles are still checked
            if not self.tree_ok:
                continue
            for s in sorted(s for s in wanted if state.size < s <= state.size + width):
                roots[s] = state.edge.append(leaves[: s - state.size]).root()
            update = extend(state.edge, state.tiles, leaves)
            state = AuditState(dict(update.edge_tiles), update.edge.size)
            for tid, tile in update.tiles:
                if tid.level > 0 and not tid.is_partial:
                    self.compare(tid, tile)
        if self.tree_ok:
            self.check_top(state, cp)
        return roots

    def check_top(self, state: AuditState, cp: Checkpoint) -> None:
        """After :meth:`walk` recomputed the whole tree: compare the partial tiles above level
        0 (the walk compared only full ones) and the root with the checkpoint's."""
        for tid, tile in partial_edge_tiles(state):
            if tid.level > 0:
                self.compare(tid, tile)
        if state.root() != cp.root_hash:
            self.tree_ok = False
            self.problem(
                CHECKPOINT,
                f"the signed root is not the root of the log's {cp.size} entries",
                cp.root_hash.hex(),
                state.root().hex(),
            )

    def level0(
        self, n: int, width: int, state: AuditState, cp: Checkpoint
    ) -> tuple[bytes, ...] | None:
        """The leaf hashes of bundle ``n``, from the bundle and its level-0 tile, reporting
        whichever of the two is damaged; None if neither can be used."""
        self.report.checked["bundles"] += 1
        self.report.checked["tiles"] += 1
        self.report.checked["entries"] += width
        btid, ttid = TileID.bundle(n, width), TileID(0, n, width)
        bundle, why, bundle_found = self.served_bundle(n, width)
        tile, tile_found = self.served_tile(ttid)
        from_bundle = tuple(bundle.leaf_hashes()) if bundle is not None else None
        if from_bundle is None:
            self.bad_bundles.add(n)
            self.problem(btid.path(), why, f"{width} entries", bundle_found)
        if tile is None:
            want = _sized(b"".join(from_bundle)) if from_bundle else f"{width * HASH_SIZE} bytes"
            why = "missing" if tile_found == "missing" else "truncated or malformed"
            self.problem(ttid.path(), why, want, tile_found)
        if from_bundle is None or tile is None:
            if from_bundle is None and tile is not None:
                return tile
            if from_bundle is not None:
                self.level0_fixed[n] = from_bundle
            return from_bundle
        if from_bundle == tile:
            return tile
        # Two copies disagree: the one the tree above commits to is the intact one.
        bundle_ok = self.vouched(n, from_bundle, state, cp)
        tile_ok = self.vouched(n, tile, state, cp)
        i = next(i for i, (a, b) in enumerate(zip(from_bundle, tile, strict=True)) if a != b)
        if tile_ok and not bundle_ok:
            self.bad_bundles.add(n)
            self.problem(
                btid.path(),
                f"entry {n * TILE_WIDTH + i}'s leaf hash differs from {ttid.path()}",
                tile[i].hex(),
                from_bundle[i].hex(),
            )
            return tile
        differ = sum(a != b for a, b in zip(from_bundle, tile, strict=True))
        self.problem(
            ttid.path(),
            f"{differ} of {width} hashes differ from the entries' leaf hashes, first hash {i}"
            + (
                ""
                if bundle_ok
                else f" (neither matches the tree above; {btid.path()} may be damaged too)"
            ),
            from_bundle[i].hex(),
            tile[i].hex(),
        )
        self.level0_fixed[n] = from_bundle
        return from_bundle

    def vouched(self, n: int, leaves: tuple[bytes, ...], state: AuditState, cp: Checkpoint) -> bool:
        """Whether the node above tile 0/``n`` (in a level-1 tile, or the signed root for the
        last bundle) is the hash of ``leaves``."""
        width = tile_width(1, n // TILE_WIDTH, cp.size)
        if len(leaves) == TILE_WIDTH and width:
            parent, _ = self.served_tile(TileID(1, n // TILE_WIDTH, width))
            if parent is not None and root_from_leaf_hashes(list(leaves)) == parent[n % TILE_WIDTH]:
                return True
        last = state.size + len(leaves) == cp.size
        return last and state.edge.append(leaves).root() == cp.root_hash

    def compare(self, tid: TileID, calculated: HashTile) -> None:
        """Report the served tile ``tid`` unless it holds exactly the recomputed hashes."""
        self.report.checked["tiles"] += 1
        served, found = self.served_tile(tid)
        if served is None:
            problem = "missing" if found == "missing" else "truncated or malformed"
            self.problem(tid.path(), problem, _sized(calculated.to_bytes()), found)
            return
        if served != calculated.hashes:
            pairs = list(zip(calculated.hashes, served, strict=True))
            i = next(i for i, (a, b) in enumerate(pairs) if a != b)
            self.problem(
                tid.path(),
                f"{sum(a != b for a, b in pairs)} of {tid.width} hashes differ from those "
                f"recomputed from the entries, first hash {i}",
                calculated.hashes[i].hex(),
                served[i].hex(),
            )

    # -- 3. checkpoint history -------------------------------------------------------------------

    def history_sizes(self) -> list[int]:
        names = self.list_names(HISTORY_DIR) if self.list_names else None
        found = _decimal_names(names or ())
        return sorted({s for s in found if s <= self.size} | {self.size})

    def check_history(self, sizes: Sequence[int], roots: dict[int, bytes]) -> None:
        for s in sizes:
            path = history_path(s)
            try:
                data = self.fetch(path)
            except NotFoundError:
                if s == self.size:  # written before the checkpoint was published
                    self.problem(path, "missing", "the checkpoint of this size", "missing")
                continue
            self.report.checked["history"] += 1
            try:
                hist = self.open_checkpoint(data)
            except (FormatError, VerificationError) as err:
                self.problem(
                    path, f"not a checkpoint this log signed: {err}", self.origin, _sized(data)
                )
                continue
            if hist.size != s:
                self.problem(path, "holds a checkpoint of another size", str(s), str(hist.size))
            elif s in roots and hist.root_hash != roots[s] and self.tree_ok:
                self.problem(
                    path,
                    f"not consistent with the checkpoint: its root is not the root of the log's "
                    f"first {s} entries",
                    roots[s].hex(),
                    hist.root_hash.hex(),
                )

    # -- 4. batch records ------------------------------------------------------------------------

    def batch_firsts(self) -> list[int]:
        """The first indices of the batch records to check: listed, or the chain from 0."""
        names = self.list_names(BATCH_DIR) if self.list_names else None
        if names is not None:
            return [f for f in _decimal_names(names) if f < self.size]
        out: list[int] = []
        first = 0
        while first < self.size:
            try:
                record = BatchRecord.parse_receipt(self.fetch(batch_path(first)))
            except NotFoundError:
                break  # none at 0: a log from before batch records; else reported as missing
            except FormatError:
                out.append(first)  # reported by check_batches; the chain cannot go on
                break
            out.append(first)
            if record.new_size <= first:
                break
            first = record.new_size
        return out

    def check_batches(self, firsts: Sequence[int], roots: dict[int, bytes]) -> None:
        expected_next: int | None = None
        for first in firsts:
            path = batch_path(first)
            if expected_next is not None and first > expected_next:
                self.missing_batch(expected_next)
            expected_next = None
            self.report.checked["batch records"] += 1
            try:
                record = BatchRecord.parse(self.fetch(path))
            except NotFoundError:
                self.problem(path, "missing", "a batch record", "missing")
                continue
            except FormatError as err:
                self.bad_batches.append(first)
                self.problem(path, f"does not parse: {err}")
                continue
            if record.first != first:
                self.problem(path, "is the record of another batch", str(first), str(record.first))
                continue
            if record.new_size > self.size:
                why = "extends beyond the checkpoint"
                self.problem(path, why, f"at most {self.size}", str(record.new_size))
                continue
            expected_next = record.new_size
            self.check_batch(path, record, roots)
        if expected_next is not None and expected_next < self.size:
            self.missing_batch(expected_next)

    def missing_batch(self, first: int) -> None:
        self.bad_batches.append(first)  # the index names it too: reported here only
        why = "missing: the batch record before it ends there"
        self.problem(batch_path(first), why, "a batch record", "missing")

    def check_batch(self, path: str, record: BatchRecord, roots: dict[int, bytes]) -> None:
        if self.tree_ok and roots.get(record.first, record.base_root) != record.base_root:
            self.problem(
                path,
                f"its base root is not the root of the tree at size {record.first}",
                roots[record.first].hex(),
                record.base_root.hex(),
            )
        for offset, lh in enumerate(record.leaf_hashes):
            index = record.first + offset
            want = self.leaf(index)
            if want is not None and want != lh:
                self.problem(
                    path,
                    f"entry {index}'s leaf hash differs from its level-0 tile",
                    want.hex(),
                    lh.hex(),
                )
                return
        for offset, entry in enumerate(record.entries):
            if entry.leaf_hash != record.leaf_hashes[offset]:
                self.problem(
                    path,
                    f"the body of entry {record.first + offset} does not hash to its leaf hash",
                    record.leaf_hashes[offset].hex(),
                    entry.leaf_hash.hex(),
                )
                return
        if self.set_key is None:
            return
        for offset, stamp in enumerate(record.timestamps):
            if not stamp:
                continue  # a log that signs no entry timestamps
            index = record.first + offset
            try:
                verify_set(
                    self.set_key, stamp, record.entries[offset].body, record.integrated_time, index
                )
            except VerificationError:
                self.problem(
                    path,
                    f"the signed entry timestamp of entry {index} does not verify",
                    "an Ed25519 signature by the log's key",
                    stamp.hex(),
                )
                return
            self.report.checked["entry timestamps"] += 1

    def leaf(self, index: int) -> bytes | None:
        """The level-0 hash at ``index``: the intact copy, or None if the tree is unknown there."""
        n, i = divmod(index, TILE_WIDTH)
        if self.leaf_tile[0] != n:  # records are read in index order: one parse per tile
            fixed = self.level0_fixed.get(n)
            tile = (
                (fixed, "")
                if fixed
                else self.served_tile(TileID(0, n, tile_width(0, n, self.size)))
            )
            self.leaf_tile = (n, tile[0])
        hashes = self.leaf_tile[1]
        return hashes[i] if hashes is not None else None

    # -- 5. the lookup index ---------------------------------------------------------------------

    def check_index(self, cp: Checkpoint, previous: int | None) -> None:
        """``previous`` is the size the last batch started from: if the log had an index then,
        a missing manifest now is damage; if not, the log publishes no index (configured so,
        or older than the index) and there is nothing to check."""
        path = manifest_path(cp.size)
        try:
            data = self.fetch(path)
        except NotFoundError:
            if previous is not None and self.exists(manifest_path(previous)):
                self.problem(path, "missing", "the signed index manifest of this size", "missing")
            else:
                self.report.checked["index not published"] += 1
            return
        self.report.checked["index manifests"] += 1
        try:
            manifest = Manifest.open(data, self.verifiers, self.origin)
        except (FormatError, VerificationError) as err:
            self.problem(
                path, f"not an index manifest this log signed: {err}", self.origin, _sized(data)
            )
            return
        if (manifest.size, manifest.root) != (cp.size, cp.root_hash):
            self.problem(
                path,
                "not the manifest of the checkpoint's tree",
                f"size {cp.size} root {cp.root_hash.hex()}",
                f"size {manifest.size} root {manifest.root.hex()}",
            )
            return
        for ref in manifest.runs:
            if self.overlaps_damage(ref):
                self.report.checked["index runs not checked (damaged entries)"] += 1
                continue
            # Every other run counts as verified, so each call checks this one run.
            others = {(r.a, r.b): r.root.hex() for r in manifest.runs if r != ref}
            self.report.checked["index runs"] += 1
            try:
                audit_index(
                    self.fetch,
                    self.verifiers,
                    cp,
                    self.keys_of,
                    entries_of=self.entries,
                    verified=others,
                )
            except IndexMismatchError as err:
                where = getattr(err.__cause__, "path", err.path)
                self.problem(
                    where, str(err).removeprefix(f"{err.path}: "), err.calculated, err.served
                )
            except (FormatError, VerificationError) as err:
                self.problem(self.bad_shard(ref, err), str(err))

    def exists(self, path: str) -> bool:
        try:
            return bool(self.fetch(path))
        except NotFoundError:
            return False

    def overlaps_damage(self, ref: RunRef) -> bool:
        bundles = range(ref.a // TILE_WIDTH, (ref.b + TILE_WIDTH - 1) // TILE_WIDTH)
        return any(n in self.bad_bundles for n in bundles) or any(
            ref.a <= f < ref.b for f in self.bad_batches
        )

    def bad_shard(self, ref: RunRef, err: StelaeError) -> str:
        """The path of the shard of ``ref`` that failed, as precisely as it can be told."""
        if isinstance(err, InvalidShardError):
            return run_shard_path(ref.a, ref.b, err.s)
        for s in range(ref.shards):
            path = run_shard_path(ref.a, ref.b, s)
            try:
                Shard.parse(self.fetch(path), ref, s)
            except (NotFoundError, FormatError, VerificationError):
                return path
        return run_path(ref.a, ref.b)

    def entries(self, a: int, b: int) -> list[bytes]:
        """Bodies of entries ``[a, b)`` (their bundles all matched their tiles in the walk)."""
        out: list[bytes] = []
        for n in range(a // TILE_WIDTH, (b + TILE_WIDTH - 1) // TILE_WIDTH):
            bundle, why, _ = self.served_bundle(n, tile_width(0, n, self.size))
            if bundle is None:
                raise FormatError(f"bundle {n}: {why}")
            first = n * TILE_WIDTH
            out.extend(bundle.entries[max(a, first) - first : min(b, first + len(bundle)) - first])
        return out
