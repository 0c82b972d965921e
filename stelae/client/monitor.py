"""A monitor's round: audit a whole log from its tiles, resume where it stopped, watch for entries.

One round (:meth:`Monitor.round`):

1. Get the current checkpoint from :meth:`AuditedLog.current` (signature, consistency with the
   last checkpoint this machine saw), then let the caller compare it with the witnesses' views.
2. Prove the tree audited so far (its size and recomputed root, from the saved state) is a prefix
   of the current checkpoint's tree. A failure is a fork.
3. Fetch every new bundle, re-hash its entries and rebuild the tiles
   (:mod:`stelae.tiles.audit`); compare each tile that became full with the served one, then the
   partial right-edge tiles and the root with the signed checkpoint.
4. Check the log's checkpoint history objects (``checkpoints/<size>``) this round can see are
   signed by the log and consistent with the current checkpoint, and recompute the index runs
   the log signed for the checkpoint that no earlier round checked (docs/index.md, "Monitors").
5. Save the audit state (right-edge tiles: O(log n) bytes), so the next round or the next run
   starts from here and reads only new bundles. Long audits also save every
   :data:`SAVE_EVERY_BUNDLES` bundles, each time after proving the partial tree consistent with
   the signed checkpoint, so a saved state is never one that was not checked.

Every finding is an alert (a JSON-ready dict: ``{"alert": "watch" | "fork" | "bad_tile" |
"bad_root" | "bad_log" | "bad_history" | "bad_index", ...}``) handed to the caller, and every
failed check then raises its typed error with the evidence. Nothing here prints: ``stelae
monitor`` (:mod:`stelae.cli.monitor`) parses options, calls a round and prints what it is told.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from stelae.errors import StelaeError
from stelae.tiles.audit import (
    AuditState,
    SavedAudit,
    TileMismatchError,
    audit_bundle,
    check_root,
    compare_tile,
    partial_edge_tiles,
)
from stelae.tiles.checkpoint import SignedCheckpoint
from stelae.tiles.client import InconsistentCheckpointsError, LogClient
from stelae.tiles.errors import FormatError, VerificationError
from stelae.tiles.hashing import EMPTY_ROOT, leaf_hash
from stelae.tiles.indexaudit import IndexMismatchError, Verified, audit_index
from stelae.tiles.layout import TILE_WIDTH, TileID
from stelae.tiles.paths import history_path
from stelae.tiles.proof import RootMismatchError, verify_consistency
from stelae.tiles.tile import EntryBundle

if TYPE_CHECKING:  # the entry kinds load only when a round needs them (CLI start-up time)
    from stelae.kinds import Entry

__all__ = [
    "SAVE_EVERY_BUNDLES",
    "AuditedLog",
    "Monitor",
    "MonitorState",
    "RoundResult",
    "Watches",
]

SAVE_EVERY_BUNDLES = 64
"""How often a long audit saves verified progress (64 bundles = 16,384 entries)."""

Alert = Callable[[dict[str, Any]], None]
ForkEvidence = Callable[[bytes, bytes, str, str], None]
"""Shown both signed notes of a fork, with a label for each (old first): for people, not alerts."""
ViewCheck = Callable[[SignedCheckpoint, Alert], None]
"""Compares the log's checkpoint with what witnesses cosigned; raises on a split view."""


class Progress(Protocol):
    def update(self, n_steps: int) -> None: ...


class _NoProgress:
    def update(self, n_steps: int) -> None:
        pass


@contextlib.contextmanager
def no_progress(length: int) -> Iterator[Progress]:
    del length
    yield _NoProgress()


ProgressFactory = Callable[[int], contextlib.AbstractContextManager[Progress]]


class MonitorState(Protocol):
    """Where the monitor keeps its progress between rounds (a JSON object, or None at first)."""

    @property
    def dir(self) -> Path: ...

    def load_monitor(self) -> dict[str, Any] | None: ...

    def store_monitor(self, obj: dict[str, Any]) -> None: ...


class AuditedLog(Protocol):
    """The log as a round reads it (:class:`stelae.cli.reading.Reader` is one)."""

    @property
    def client(self) -> LogClient: ...

    @property
    def state(self) -> MonitorState: ...

    def current(self) -> SignedCheckpoint:
        """The log's checkpoint, verified and consistent with the last one this machine saw."""
        ...

    def history(self, size: int) -> SignedCheckpoint | None:
        """The verified history object of ``size``, or None if the log has none."""
        ...

    def history_sizes(self) -> list[int]:
        """The sizes of the history objects the log can list (none for an HTTP prefix)."""
        ...


class Query(Protocol):
    def label(self) -> str: ...

    def matches(self, entry: Entry) -> bool: ...


@dataclass(frozen=True)
class Watches:
    """What to alert on when it appears in the log."""

    queries: tuple[Query, ...]

    def match(self, body: bytes) -> list[str] | None:
        """The labels of the queries ``body`` matches; None if it is not a known entry kind."""
        from stelae.kinds import from_body  # noqa: PLC0415 - loads the entry kinds when watching

        try:
            entry = from_body(body)
        except FormatError:
            return None
        return [q.label() for q in self.queries if q.matches(entry)]


@dataclass
class RoundResult:
    start: int
    size: int
    unparsed: int = 0


def _ignore_evidence(old: bytes, new: bytes, old_label: str, new_label: str) -> None:
    del old, new, old_label, new_label


@dataclass
class Monitor:
    """The audit of one log, round after round; see the module docstring."""

    log: AuditedLog
    watches: Watches
    alert: Alert
    evidence: ForkEvidence = _ignore_evidence
    check_views: ViewCheck | None = None
    progress: ProgressFactory = no_progress
    save_every: int = SAVE_EVERY_BUNDLES
    """Bundles between saves of verified progress in a long audit; tests lower it."""
    _saved: SavedAudit = field(default_factory=SavedAudit, init=False)

    def round(self) -> RoundResult:
        """One audit of the log up to its current checkpoint (steps 1–5 of the module docstring)."""
        cp = self._current()
        if self.check_views is not None:
            self.check_views(cp, self.alert)  # a witness holding another tree: split view
        self._saved, saved_cp = self._load()
        audit, size = self._saved.audit, cp.checkpoint.size
        result = RoundResult(audit.size, size)
        if audit.size > size:
            return result  # an older checkpoint (a stale cache): nothing new to audit
        self._prove_prefix_or_fork(audit, cp, saved_cp)
        audit = self._audit_tree(audit, cp, result)
        self._check_history(cp, result.start)
        index = self._audit_index(cp, dict(self._saved.index))
        self._save(audit, cp, index)
        return result

    # -- steps 1 and 2: the checkpoint, and the audited tree as its prefix -------------------------

    def _current(self) -> SignedCheckpoint:
        try:
            return self.log.current()
        except InconsistentCheckpointsError as err:
            self.alert(
                {
                    "alert": "fork",
                    "old": err.old.decode(),
                    "new": err.new.decode(),
                    "reason": str(err.cause),
                }
            )
            raise

    def _load(self) -> tuple[SavedAudit, SignedCheckpoint | None]:
        state = self.log.state
        obj = state.load_monitor()
        if obj is None:
            return SavedAudit(), None
        try:
            saved = SavedAudit.from_json(obj)
            note = saved.checkpoint
            cp = None if note is None else self.log.client.open_checkpoint(note)
        except StelaeError as err:
            raise StelaeError(
                f"the monitor state in {state.dir} is damaged: {err}",
                hint="remove monitor.json there to audit the log again from the start",
            ) from err
        return saved, cp

    def _save(self, audit: AuditState, cp: SignedCheckpoint, index: Verified) -> None:
        self._saved = SavedAudit(audit, cp.to_bytes(), index)
        self.log.state.store_monitor(self._saved.to_json())

    def _prove_prefix(self, audit: AuditState, cp: SignedCheckpoint) -> None:
        """Raise unless the audited tree (size, recomputed root) is a prefix of ``cp``'s tree."""
        size, current = audit.size, cp.checkpoint.size
        if size == 0:
            return
        tiles = self.log.client.tiles
        proof = tiles.consistency_proof(size, current) if size < current else []
        verify_consistency(size, current, proof, audit.root(), cp.checkpoint.root_hash)

    def _prove_prefix_or_fork(
        self, audit: AuditState, cp: SignedCheckpoint, saved_cp: SignedCheckpoint | None
    ) -> None:
        try:
            self._prove_prefix(audit, cp)
        except VerificationError as err:
            old = saved_cp.to_bytes() if saved_cp else b""
            self.evidence(
                old,
                cp.to_bytes(),
                "the checkpoint of the last audit",
                "the checkpoint the log serves now",
            )
            self.alert(
                {
                    "alert": "fork",
                    "old": old.decode(),
                    "new": cp.to_bytes().decode(),
                    "audited_size": audit.size,
                    "audited_root": audit.root().hex(),
                    "reason": str(err),
                }
            )
            raise InconsistentCheckpointsError(old, cp.to_bytes(), err) from err

    # -- step 3: every entry, tile and the root --------------------------------------------------

    def _audit_tree(
        self, audit: AuditState, cp: SignedCheckpoint, result: RoundResult
    ) -> AuditState:
        """:meth:`_audit_entries`, with each failure alerted before it is raised."""
        try:
            return self._audit_entries(audit, cp, result)
        except TileMismatchError as err:
            self.alert(
                {
                    "alert": "bad_tile",
                    "path": err.path,
                    "position": err.position,
                    "served": err.served.hex(),
                    "calculated": err.calculated.hex(),
                    "reason": str(err),
                }
            )
            raise
        except RootMismatchError as err:
            self.alert(
                {
                    "alert": "bad_root",
                    "tree_size": cp.checkpoint.size,
                    "expected": err.expected.hex(),
                    "calculated": err.calculated.hex(),
                    "reason": str(err),
                }
            )
            raise
        except (VerificationError, FormatError) as err:
            self.alert({"alert": "bad_log", "reason": str(err)})
            raise

    def _audit_entries(
        self, audit: AuditState, cp: SignedCheckpoint, result: RoundResult
    ) -> AuditState:
        size = cp.checkpoint.size
        if audit.size == size:
            check_root(audit, cp.checkpoint)
            return audit
        tiles = self.log.client.tiles
        first_bundle = audit.size // TILE_WIDTH
        end_bundle = (size + TILE_WIDTH - 1) // TILE_WIDTH
        with self.progress(end_bundle - first_bundle) as bar:
            for n in range(first_bundle, end_bundle):
                bundle = tiles.bundle(n, size)
                start = audit.size
                step = audit_bundle(audit, n, bundle)
                for tid, tile in step.full_tiles:
                    compare_tile(tid, tile, tiles.hash_tile(tid.level, tid.index, size))
                audit = step.state
                self._watch(bundle, n, range(start, audit.size), result)
                bar.update(1)
                if (n + 1 - first_bundle) % self.save_every == 0 and audit.size < size:
                    self._prove_prefix(audit, cp)  # never save a state the checkpoint disowns
                    self._save(audit, cp, dict(self._saved.index))
        for tid, tile in partial_edge_tiles(audit):
            compare_tile(tid, tile, tiles.hash_tile(tid.level, tid.index, size))
        check_root(audit, cp.checkpoint)
        return audit

    def _watch(self, bundle: EntryBundle, n: int, indexes: range, result: RoundResult) -> None:
        """Alert on the watched entries among ``indexes`` (all in bundle ``n``)."""
        if not self.watches.queries:
            return
        for i in indexes:
            body = bundle.entries[i - n * TILE_WIDTH]
            matched = self.watches.match(body)
            if matched is None:
                result.unparsed += 1
            elif matched:
                alert = {"alert": "watch", "index": i, "uuid": leaf_hash(body).hex()}
                self.alert({**alert, "matched": matched})

    # -- step 4: history objects and the index ---------------------------------------------------

    def _check_history(self, cp: SignedCheckpoint, audited: int) -> None:
        """Every history object this round can find must be the log's and a prefix of ``cp``.

        A local log is listed; an HTTP prefix cannot be, so there the sizes checked are the ones
        this machine has seen: the current checkpoint's, round after round. Sizes already covered
        by an earlier audit were checked against an earlier checkpoint, which ``cp`` extends.
        """
        size = cp.checkpoint.size
        sizes = {s for s in self.log.history_sizes() if audited < s <= size} | {size}
        for s in sorted(sizes):
            try:
                hist = self.log.history(s)
            except VerificationError as err:
                self.alert({"alert": "bad_history", "size": s, "reason": str(err)})
                raise
            if hist is not None:
                self._check_one_history(s, hist, cp)

    def _check_one_history(self, s: int, hist: SignedCheckpoint, cp: SignedCheckpoint) -> None:
        size = cp.checkpoint.size
        try:
            if s in (0, size):  # no proof to check: the roots must simply be the same
                want = EMPTY_ROOT if s == 0 else cp.checkpoint.root_hash
                if hist.checkpoint.root_hash != want:
                    raise RootMismatchError(f"root at size {s}", want, hist.checkpoint.root_hash)
            else:
                proof = self.log.client.tiles.consistency_proof(s, size)
                verify_consistency(
                    s, size, proof, hist.checkpoint.root_hash, cp.checkpoint.root_hash
                )
        except VerificationError as err:
            self.evidence(
                hist.to_bytes(),
                cp.to_bytes(),
                history_path(s),
                "the checkpoint the log serves now",
            )
            self.alert(
                {
                    "alert": "fork",
                    "old": hist.to_bytes().decode(),
                    "new": cp.to_bytes().decode(),
                    "reason": f"{history_path(s)}: {err}",
                }
            )
            raise InconsistentCheckpointsError(hist.to_bytes(), cp.to_bytes(), err) from err

    def _audit_index(self, cp: SignedCheckpoint, verified: Verified) -> Verified:
        """Recompute the runs of the index the log signed for ``cp`` that no earlier round
        checked (docs/index.md, "Monitors")."""
        from stelae.kinds import lookup_keys  # noqa: PLC0415 - loads the entry kinds

        client = self.log.client
        try:
            return audit_index(
                client.fetcher.fetch,
                client.verifiers,
                cp.checkpoint,
                lookup_keys,
                entries_of=lambda a, b: self._entries(cp.checkpoint.size, a, b),
                verified=verified,
            )
        except IndexMismatchError as err:
            self.alert(
                {
                    "alert": "bad_index",
                    "path": err.path,
                    "served": err.served,
                    "calculated": err.calculated,
                    "reason": str(err),
                }
            )
            raise
        except VerificationError as err:
            self.alert({"alert": "bad_index", "reason": str(err)})
            raise

    def _entries(self, size: int, a: int, b: int) -> list[bytes]:
        """Entries ``[a, b)`` from their bundles again, each bundle checked against its level-0
        tile, which the audit verified."""
        tiles = self.log.client.tiles
        out: list[bytes] = []
        for n in range(a // TILE_WIDTH, (b + TILE_WIDTH - 1) // TILE_WIDTH):
            bundle = tiles.bundle(n, size)
            if bundle.leaf_hashes() != list(tiles.hash_tile(0, n, size).hashes):
                raise TileMismatchError(
                    TileID.bundle(n, len(bundle)).path(),
                    0,
                    b"",
                    b"",
                    why=f"bundle {n} no longer matches its audited tile",
                )
            first = n * TILE_WIDTH
            out.extend(bundle.entries[max(a, first) - first : min(b, first + len(bundle)) - first])
        return out
