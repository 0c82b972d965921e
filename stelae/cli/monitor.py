"""``stelae monitor``: audit a whole log from its tiles, resume where it stopped, watch for entries.

One round (:func:`audit_round`):

1. Get the current checkpoint through :meth:`Reader.current` (signature, consistency with the
   last checkpoint this machine saw).
2. Prove the tree audited so far (its size and recomputed root, from the saved state) is a prefix
   of the current checkpoint's tree. A failure is a fork.
3. Fetch every new bundle, re-hash its entries and rebuild the tiles
   (:mod:`stelae.tiles.audit`); compare each tile that became full with the served one, then the
   partial right-edge tiles and the root with the signed checkpoint.
4. Check the log's checkpoint history objects (``checkpoints/<size>``) this round can see are
   signed by the log and consistent with the current checkpoint.
5. Save the audit state (right-edge tiles: O(log n) bytes), so the next round or the next run
   starts from here and reads only new bundles. Long audits also save every
   :data:`SAVE_EVERY_BUNDLES` bundles, each time after proving the partial tree consistent with
   the signed checkpoint, so a saved state is never one that was not checked.

Output: one JSON object per line on stdout per alert (a watched entry, a fork, a bad tile, a
wrong root); diagnostics and the progress bar (on a terminal only) on stderr.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import click

from stelae.cli.output import json_option
from stelae.cli.reading import Reader, print_fork_evidence, reader_options
from stelae.cli.search import Query, digest_query, identity_query, key_query, parse_entry
from stelae.cli.splitview import check_witness_views
from stelae.tiles.audit import (
    AuditState,
    TileMismatchError,
    audit_bundle,
    check_root,
    compare_tile,
    partial_edge_tiles,
)
from stelae.tiles.checkpoint import SignedCheckpoint
from stelae.tiles.client import InconsistentCheckpointsError
from stelae.tiles.counts import count
from stelae.tiles.errors import FormatError, NotFoundError, StelaeError, VerificationError
from stelae.tiles.fetch import FetchError
from stelae.tiles.hashing import EMPTY_ROOT, leaf_hash
from stelae.tiles.indexaudit import IndexMismatchError, Verified, audit_index
from stelae.tiles.layout import TILE_WIDTH, TileID
from stelae.tiles.proof import RootMismatchError, verify_consistency

SAVE_EVERY_BUNDLES = 64
"""How often a long audit saves verified progress (64 bundles = 16,384 entries)."""

Alert = Callable[[dict[str, Any]], None]


class _Progress(Protocol):
    def update(self, n_steps: int) -> None: ...


class _NoProgress:
    def update(self, n_steps: int) -> None:
        pass


@contextlib.contextmanager
def progress_bar(length: int) -> Iterator[_Progress]:
    """A progress bar on a terminal; nothing at all in a pipe or a log file."""
    if length <= 0 or not sys.stderr.isatty():
        yield _NoProgress()
        return
    with click.progressbar(length=length, label="auditing bundles", file=sys.stderr) as bar:
        yield bar


def print_alert(alert: dict[str, Any]) -> None:
    click.echo(json.dumps(alert, sort_keys=True))


@dataclass(frozen=True)
class Watches:
    """What to alert on when it appears in the log."""

    queries: tuple[Query, ...]

    def match(self, body: bytes) -> list[str] | None:
        """The labels of the queries ``body`` matches; None if it is not a known entry kind."""
        try:
            entry = parse_entry(body)
        except FormatError:
            return None
        return [q.label() for q in self.queries if q.matches(entry)]


@dataclass
class RoundResult:
    start: int
    size: int
    unparsed: int = 0


def _saved(reader: Reader) -> tuple[AuditState, SignedCheckpoint | None]:
    obj = reader.state.load_monitor()
    if obj is None:
        return AuditState(), None
    try:
        audit = AuditState.from_json(obj.get("audit"))
        note = obj.get("checkpoint")
        cp = reader.client.open_checkpoint(note.encode()) if isinstance(note, str) else None
    except StelaeError as err:
        raise StelaeError(
            f"the monitor state in {reader.state.dir} is damaged: {err}",
            hint="remove monitor.json there to audit the log again from the start",
        ) from err
    return audit, cp


def _save(
    reader: Reader, audit: AuditState, cp: SignedCheckpoint, index: Verified | None = None
) -> None:
    obj: dict[str, Any] = {"checkpoint": cp.to_bytes().decode("utf-8"), "audit": audit.to_json()}
    if index is None:
        index = _saved_index(reader)
    obj["index"] = [[a, b, root] for (a, b), root in sorted(index.items())]
    reader.state.store_monitor(obj)


def _prove_prefix(reader: Reader, audit: AuditState, cp: SignedCheckpoint) -> None:
    """Raise unless the audited tree (size, recomputed root) is a prefix of ``cp``'s tree."""
    size, current = audit.size, cp.checkpoint.size
    if size == 0:
        return
    proof = reader.client.tiles.consistency_proof(size, current) if size < current else []
    verify_consistency(size, current, proof, audit.root(), cp.checkpoint.root_hash)


def audit_round(
    reader: Reader,
    watches: Watches,
    alert: Alert,
    *,
    show_progress: bool = True,
    save_every: int = SAVE_EVERY_BUNDLES,
) -> RoundResult:
    """One audit of the log up to its current checkpoint (steps 1–5 of the module docstring).

    ``save_every`` (bundles) is how often a long audit saves verified progress; tests lower it.
    """
    try:
        cp = reader.current()
    except InconsistentCheckpointsError as err:
        alert(
            {
                "alert": "fork",
                "old": err.old.decode(),
                "new": err.new.decode(),
                "reason": str(err.cause),
            }
        )
        raise
    check_witness_views(reader, cp, alert)  # a witness holding another tree: split view
    audit, saved_cp = _saved(reader)
    size = cp.checkpoint.size
    result = RoundResult(audit.size, size)
    if audit.size > size:
        return result  # an older checkpoint (a stale cache): nothing new to audit
    try:
        _prove_prefix(reader, audit, cp)
    except VerificationError as err:
        old = saved_cp.to_bytes() if saved_cp else b""
        print_fork_evidence(
            old,
            cp.to_bytes(),
            "the checkpoint of the last audit",
            "the checkpoint the log serves now",
        )
        alert(
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

    try:
        audit = _audit_entries(
            reader,
            audit=audit,
            cp=cp,
            watches=watches,
            alert=alert,
            result=result,
            show_progress=show_progress,
            save_every=save_every,
        )
    except TileMismatchError as err:
        alert(
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
        alert(
            {
                "alert": "bad_root",
                "tree_size": size,
                "expected": err.expected.hex(),
                "calculated": err.calculated.hex(),
                "reason": str(err),
            }
        )
        raise
    except (VerificationError, FormatError) as err:
        alert({"alert": "bad_log", "reason": str(err)})
        raise

    _check_history(reader, cp, result.start, alert)
    index = _audit_index(reader, cp, _saved_index(reader), alert)
    _save(reader, audit, cp, index)
    return result


def _saved_index(reader: Reader) -> Verified:
    obj = reader.state.load_monitor() or {}
    runs = obj.get("index")
    if not isinstance(runs, list):
        return {}
    out: Verified = {}
    for r in runs:
        if isinstance(r, list) and len(r) == 3 and all(isinstance(x, int) for x in r[:2]):
            out[(r[0], r[1])] = str(r[2])
    return out


def _audit_index(
    reader: Reader, cp: SignedCheckpoint, verified: Verified, alert: Alert
) -> Verified:
    """Recompute the runs of the index the log signed for ``cp`` that no earlier round checked
    (docs/index.md, "Monitors")."""
    from stelae.kinds import lookup_keys  # noqa: PLC0415 - loads the entry kinds

    tiles, size = reader.client.tiles, cp.checkpoint.size

    def entries_of(a: int, b: int) -> list[bytes]:
        # Bundles again, each checked against its level-0 tile, which the audit verified.
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

    try:
        return audit_index(
            reader.client.fetcher.fetch,
            reader.client.verifiers,
            cp.checkpoint,
            lookup_keys,
            entries_of=entries_of,
            verified=verified,
        )
    except IndexMismatchError as err:
        alert(
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
        alert({"alert": "bad_index", "reason": str(err)})
        raise


def _audit_entries(
    reader: Reader,
    *,
    audit: AuditState,
    cp: SignedCheckpoint,
    watches: Watches,
    alert: Alert,
    result: RoundResult,
    show_progress: bool,
    save_every: int,
) -> AuditState:
    size = cp.checkpoint.size
    if audit.size == size:
        check_root(audit, cp.checkpoint)
        return audit
    tiles = reader.client.tiles
    first_bundle = audit.size // TILE_WIDTH
    end_bundle = (size + TILE_WIDTH - 1) // TILE_WIDTH
    with progress_bar(end_bundle - first_bundle if show_progress else 0) as bar:
        for n in range(first_bundle, end_bundle):
            bundle = tiles.bundle(n, size)
            start = audit.size
            step = audit_bundle(audit, n, bundle)
            for tid, tile in step.full_tiles:
                compare_tile(tid, tile, tiles.hash_tile(tid.level, tid.index, size))
            audit = step.state
            if watches.queries:
                for i in range(start, audit.size):
                    body = bundle.entries[i - n * TILE_WIDTH]
                    matched = watches.match(body)
                    if matched is None:
                        result.unparsed += 1
                    elif matched:
                        alert(
                            {
                                "alert": "watch",
                                "index": i,
                                "uuid": leaf_hash(body).hex(),
                                "matched": matched,
                            }
                        )
            bar.update(1)
            if (n + 1 - first_bundle) % save_every == 0 and audit.size < size:
                _prove_prefix(reader, audit, cp)  # never save a state the checkpoint disowns
                _save(reader, audit, cp)
    for tid, tile in partial_edge_tiles(audit):
        compare_tile(tid, tile, tiles.hash_tile(tid.level, tid.index, size))
    check_root(audit, cp.checkpoint)
    return audit


def _check_history(reader: Reader, cp: SignedCheckpoint, audited: int, alert: Alert) -> None:
    """Every history object this round can find must be the log's and a prefix of ``cp``.

    A local log is listed; an HTTP prefix cannot be, so there the sizes checked are the ones
    this machine has seen: the current checkpoint's, round after round. Sizes already covered by
    an earlier audit were checked against an earlier checkpoint, which ``cp`` extends.
    """
    size = cp.checkpoint.size
    sizes = {s for s in reader.history_sizes() if audited < s <= size} | {size}
    for s in sorted(sizes):
        try:
            hist = reader.history(s)
        except VerificationError as err:
            alert({"alert": "bad_history", "size": s, "reason": str(err)})
            raise
        if hist is None:
            continue
        try:
            if s in (0, size):  # no proof to check: the roots must simply be the same
                want = EMPTY_ROOT if s == 0 else cp.checkpoint.root_hash
                if hist.checkpoint.root_hash != want:
                    raise RootMismatchError(f"root at size {s}", want, hist.checkpoint.root_hash)
            else:
                proof = reader.client.tiles.consistency_proof(s, size)
                verify_consistency(
                    s, size, proof, hist.checkpoint.root_hash, cp.checkpoint.root_hash
                )
        except VerificationError as err:
            print_fork_evidence(
                hist.to_bytes(),
                cp.to_bytes(),
                f"checkpoints/{s}",
                "the checkpoint the log serves now",
            )
            alert(
                {
                    "alert": "fork",
                    "old": hist.to_bytes().decode(),
                    "new": cp.to_bytes().decode(),
                    "reason": f"checkpoints/{s}: {err}",
                }
            )
            raise InconsistentCheckpointsError(hist.to_bytes(), cp.to_bytes(), err) from err


PEM = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command()
@click.option("--once", is_flag=True, help="Audit up to the current checkpoint, then exit.")
@click.option("--watch-key", type=PEM, multiple=True, help="Alert on entries signed by this key.")
@click.option("--watch-email", multiple=True, help="Alert on entries for this email identity.")
@click.option("--watch-uri", multiple=True, help="Alert on entries for this URI identity.")
@click.option("--watch-digest", multiple=True, help="Alert on entries for this artifact digest.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds between rounds (without --once).",
)
@reader_options
@json_option
def monitor(  # noqa: PLR0917 - click passes options as arguments
    reader: Reader,
    once: bool,
    watch_key: tuple[Path, ...],
    watch_email: tuple[str, ...],
    watch_uri: tuple[str, ...],
    watch_digest: tuple[str, ...],
    interval: float,
    as_json: bool,
) -> None:
    """Audit the whole log from its tiles and watch for keys, identities and digests.

    Every entry is re-hashed and every tile and the root recomputed and compared with what the
    log serves and signs; the audit resumes where it stopped (state in --state-dir). Alerts are
    JSON lines on stdout ({"alert": "watch" | "fork" | "bad_tile" | "bad_root" | ...}). A fork or
    a bad tile exits 1 with the evidence; Ctrl-C or SIGTERM exits 0. --json is accepted like
    everywhere else: the alerts are JSON lines with or without it.

    \b
    Example:
      stelae monitor --log-url https://log.example.test --vkey @vkey.txt \\
        --watch-email alice@example.com --interval 60
    """
    queries = [
        *(key_query(p, "--watch-key") for p in watch_key),
        *(identity_query(e, "--watch-email") for e in watch_email),
        *(identity_query(u, "--watch-uri") for u in watch_uri),
        *(digest_query(d, "--watch-digest") for d in watch_digest),
    ]
    watches = Watches(tuple(queries))
    del as_json  # stdout is JSON lines either way
    # A service manager stops us with SIGTERM: end exactly as Ctrl-C does (same message, and
    # the audit state already saved after each verified step).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while True:
            try:
                result = audit_round(reader, watches, print_alert)
            except (FetchError, NotFoundError) as err:
                # Unreachable, or not there yet (a CDN still propagating new tiles): a long-running
                # monitor retries; a one-shot audit fails. Verification failures always exit.
                if once:
                    raise
                click.echo(f"warning: {err}; retrying in {interval:g} s", err=True)
            else:
                _report(result)
            if once:
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        click.echo("interrupted; the audit resumes from its last saved state", err=True)


def _report(result: RoundResult) -> None:
    if result.size > result.start:
        msg = f"audited entries {result.start}..{result.size - 1}: every tile and the root match"
    else:
        msg = f"no new entries (tree size {result.size})"
    click.echo(msg, err=True)
    if result.unparsed:
        click.echo(
            f"{count(result.unparsed, 'entry', 'entries')} "
            f"{'is' if result.unparsed == 1 else 'are'} not a known entry kind; "
            "watches cannot match them",
            err=True,
        )
