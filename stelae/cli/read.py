"""``stelae loginfo``, ``get`` and ``logproof``: verified reads of one log."""

from __future__ import annotations

import base64
import datetime
import json
from typing import Any

import click

from stelae.cli.output import emit, json_option
from stelae.cli.reading import Reader, print_fork_evidence, reader_options
from stelae.tiles.checkpoint import SignedCheckpoint
from stelae.tiles.client import LogClient, VerifiedEntry
from stelae.tiles.counts import count
from stelae.tiles.errors import NotFoundError, VerificationError
from stelae.tiles.notekeys import Ed25519NoteVerifier
from stelae.tiles.paths import history_path
from stelae.tiles.proof import consistency_ranges, range_root, verify_consistency
from stelae.tiles.timestamp import v1_log_id

_HEX = frozenset("0123456789abcdef")


class EntryNotFoundError(NotFoundError):
    """The entry asked for is not in the log (at the verified tree size)."""


def checkpoint_json(cp: SignedCheckpoint) -> dict[str, Any]:
    c = cp.checkpoint
    return {
        "origin": c.origin,
        "tree_size": c.size,
        "root_hash": c.root_hash.hex(),
        "root_hash_b64": base64.b64encode(c.root_hash).decode("ascii"),
        "checkpoint": cp.to_bytes().decode("utf-8"),
    }


def checkpoint_text(cp: SignedCheckpoint) -> str:
    c = cp.checkpoint
    return (
        f"Origin: {c.origin}\n"
        f"Tree size: {c.size}\n"
        f"Root hash: {c.root_hash.hex()}\n"
        f"Root hash (base64): {base64.b64encode(c.root_hash).decode('ascii')}\n"
        f"Checkpoint:\n{cp.to_bytes().decode('utf-8').rstrip()}"
    )


@click.command()
@reader_options
@json_option
def loginfo(reader: Reader, as_json: bool) -> None:
    """Print the log's verified checkpoint, proved consistent with the last one seen.

    The checkpoint's signature is verified with --vkey, then a consistency proof (computed from
    the log's tiles) shows it extends the checkpoint this machine saw last, which it then
    replaces. If it does not, both checkpoints are printed as evidence and the exit status is 1.

    \b
    Example:
      stelae loginfo --log-url https://log.example.test --vkey @vkey.txt --json
    """
    before = reader.last_seen()
    cp = reader.current()
    if before is None:
        click.echo("first checkpoint seen for this log; remembered as trusted", err=True)
    elif cp.checkpoint.size >= before.checkpoint.size:
        click.echo(
            f"consistent with the checkpoint seen before (size {before.checkpoint.size})", err=True
        )
    data = checkpoint_json(cp)
    data["previous_size"] = before.checkpoint.size if before else None
    emit(as_json, data, checkpoint_text(cp))


def parse_uuid(value: str) -> bytes:
    """A leaf hash from a UUID: 64 hex digits, or a Rekor v1 80-hex entry ID (tree ID + UUID)."""
    text = value.strip().lower()
    if len(text) == 80:
        text = text[16:]
    if len(text) != 64 or not set(text) <= _HEX:
        raise click.BadParameter(
            "a UUID is 64 hex digits (or an 80-hex Rekor entry ID)", param_hint="'--uuid'"
        )
    return bytes.fromhex(text)


def rekor_log_id(client: LogClient) -> str | None:
    """Rekor v1's ``logID`` of the log (hex SHA-256 of its key's SubjectPublicKeyInfo), what
    rekor-cli prints and v1 answers carry; None for a key that is not the log's Ed25519 key."""
    for verifier in client.verifiers:
        if isinstance(verifier, Ed25519NoteVerifier) and verifier.name == client.origin:
            return v1_log_id(verifier.public_key)
    return None


def rfc3339(seconds: int) -> str:
    """POSIX seconds as RFC 3339 UTC, as rekor-cli prints IntegratedTime."""
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def body_json(data: bytes) -> Any | None:
    """The body as JSON when it is JSON (most entry kinds), else None."""
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None


@click.command()
@click.option("--log-index", type=click.IntRange(min=0), help="The entry's index in the log.")
@click.option("--uuid", help="The entry's UUID (hex leaf hash) or Rekor 80-hex entry ID.")
@reader_options
@json_option
def get(reader: Reader, log_index: int | None, uuid: str | None, as_json: bool) -> None:
    """Print one entry, with its inclusion in the verified checkpoint proved.

    --uuid finds the entry through the log's verifiable lookup index (docs/index.md), then
    checks the entry found there really has that leaf hash.

    \b
    Example:
      stelae get --log-url https://log.example.test --vkey @vkey.txt --log-index 42
      stelae get --log-url ./stelae-data --vkey @vkey.txt --uuid 3f1c…(64 hex) --json
    """
    if (log_index is None) == (uuid is None):
        raise click.UsageError("give exactly one of --log-index or --uuid")
    if uuid is not None:
        reader.require_index_key()
        cp, entry, integrated_time = entry_by_uuid(reader, parse_uuid(uuid))
    else:
        assert log_index is not None
        cp = reader.current()
        entry = entry_at(reader.client, cp, log_index)
        # The time comes from the index, which only the Ed25519 key verifies: with the ML-DSA
        # key alone the entry is shown, proved, without it.
        integrated_time = entry_time(reader.client, entry, cp) if reader.index_key else None
    log_id = rekor_log_id(reader.client)
    emit(
        as_json,
        entry_json(cp, entry, log_id, integrated_time),
        entry_text(cp, entry, log_id, integrated_time),
    )


def entry_at(client: LogClient, cp: SignedCheckpoint, index: int) -> VerifiedEntry:
    """Entry ``index`` with its inclusion in ``cp`` proved; :class:`EntryNotFoundError` if
    the verified tree is not that large."""
    if index >= cp.checkpoint.size:
        raise EntryNotFoundError(
            f"entry {index} is not in the log (verified tree size {cp.checkpoint.size})"
        )
    return client.entry(index, cp)


def entry_by_uuid(
    reader: Reader, leaf: bytes
) -> tuple[SignedCheckpoint, VerifiedEntry, int | None]:
    """The verified checkpoint, the entry with leaf hash ``leaf`` found through the log's
    lookup index (its inclusion proved, and its leaf hash checked), and its batch time (None
    when the index does not record one)."""
    cp = reader.current()
    found = reader.client.locate(leaf, cp)
    if found is None:
        raise EntryNotFoundError(
            f"no entry with UUID {leaf.hex()} in this log (proved absent at tree size "
            f"{cp.checkpoint.size} by its lookup index)"
        )
    entry = entry_at(reader.client, cp, found.index)
    if entry.leaf_hash != leaf:
        raise VerificationError(
            f"the leaf index maps UUID {leaf.hex()} to entry {found.index}, "
            f"whose leaf hash is {entry.leaf_hash.hex()}"
        )
    return cp, entry, found.integrated_time if found.batch is not None else None


def entry_time(client: LogClient, entry: VerifiedEntry, cp: SignedCheckpoint) -> int | None:
    """The entry's batch time, for ``get --log-index``."""
    # rekor-cli shows the time for --log-index too: the entry's batch record, found through
    # the same verified lookup --uuid uses. A log with no index to ask has no time to show;
    # an index that does not verify still fails the command.
    try:
        found = client.locate(entry.leaf_hash, cp)
    except NotFoundError:
        return None
    if found is not None and found.batch is not None and found.index == entry.index:
        return found.integrated_time
    return None


def entry_json(
    cp: SignedCheckpoint, entry: VerifiedEntry, log_id: str | None, integrated_time: int | None
) -> dict[str, Any]:
    """``get --json``'s object."""
    data: dict[str, Any] = {
        "log_id": log_id,
        "index": entry.index,
        "uuid": entry.leaf_hash.hex(),
        "body": body_json(entry.data),
        "body_b64": base64.b64encode(entry.data).decode("ascii"),
        "inclusion_proof": {
            "tree_size": cp.checkpoint.size,
            "root_hash": cp.checkpoint.root_hash.hex(),
            "hashes": [h.hex() for h in entry.proof],
        },
        "checkpoint": cp.to_bytes().decode("utf-8"),
    }
    if integrated_time is not None:
        data["integrated_time"] = integrated_time
        data["integrated_time_rfc3339"] = rfc3339(integrated_time)
    return data


def entry_text(
    cp: SignedCheckpoint, entry: VerifiedEntry, log_id: str | None, integrated_time: int | None
) -> str:
    """``get``'s text: first the lines rekor-cli get prints (LogID, Index, IntegratedTime,
    UUID, Body), then the proof and the checkpoint."""
    parsed = body_json(entry.data)
    b64 = base64.b64encode(entry.data).decode("ascii")
    body_text = json.dumps(parsed, indent=2, sort_keys=True) if parsed is not None else b64
    lines = [f"LogID: {log_id}"] if log_id else []
    lines.append(f"Index: {entry.index}")
    if integrated_time is not None:
        lines.append(f"IntegratedTime: {rfc3339(integrated_time)}")
    lines += [
        f"UUID: {entry.leaf_hash.hex()}",
        f"Body ({'JSON' if parsed is not None else 'base64'}): {body_text}",
        f"Inclusion proof (verified; tree size {cp.checkpoint.size}, "
        f"root {cp.checkpoint.root_hash.hex()}):",
        *(f"  {h.hex()}" for h in entry.proof),
        "Checkpoint:",
        cp.to_bytes().decode("utf-8").rstrip(),
    ]
    return "\n".join(lines)


def _root_at(client: LogClient, size: int, tiles_size: int) -> bytes:
    """The root of the first ``size`` entries, from the tiles of a tree of ``tiles_size``.

    Reading tiles at the verified size (not at ``size``) matters: partial tiles exist only at
    sizes the log published, and ``size`` may be any number.
    """
    return range_root(0, size, lambda lv, i: client.tiles.node(lv, i, tiles_size))


def _proof(client: LogClient, size1: int, size2: int, tiles_size: int) -> list[bytes]:
    """The RFC 6962 consistency proof between two sizes, from the tiles at ``tiles_size``."""
    return [
        range_root(a, b, lambda lv, i: client.tiles.node(lv, i, tiles_size))
        for a, b in consistency_ranges(size1, size2)
    ]


def _proved_root(client: LogClient, size: int, cp: SignedCheckpoint) -> bytes:
    """The root at ``size``, proved to be a prefix of the signed checkpoint ``cp``."""
    current = cp.checkpoint.size
    if size == current:
        return cp.checkpoint.root_hash
    root = _root_at(client, size, current)
    verify_consistency(
        size, current, _proof(client, size, current, current), root, cp.checkpoint.root_hash
    )
    return root


@click.command()
@click.option("--first-size", type=click.IntRange(min=1), required=True, help="The older size.")
@click.option(
    "--last-size",
    type=click.IntRange(min=1),
    help="The newer size (default: the current verified size).",
)
@reader_options
@json_option
def logproof(reader: Reader, first_size: int, last_size: int | None, as_json: bool) -> None:
    """Print a verified consistency proof between two tree sizes.

    The proof and both roots come from the log's tiles; each root is proved to be a prefix of
    the current signed checkpoint, and the proof is verified between them. The root at
    --first-size is cross-checked against the checkpoint seen before and the log's history
    object checkpoints/<size> (signature verified) when they exist at that size.

    \b
    Example:
      stelae logproof --log-url https://log.example.test --vkey @vkey.txt --first-size 10
    """
    if last_size is not None and first_size > last_size:
        raise click.UsageError("--first-size must not be larger than --last-size")
    before = reader.last_seen()
    cp = reader.current()
    current = cp.checkpoint.size
    last = current if last_size is None else last_size
    if last > current:
        raise EntryNotFoundError(
            f"--last-size {last} is beyond the log's verified tree size {current}"
        )
    if first_size > last:
        raise EntryNotFoundError(
            f"--first-size {first_size} is beyond the log's verified tree size {current}"
        )
    client = reader.client
    root_last = _proved_root(client, last, cp)
    root_first = _proved_root(client, first_size, cp)
    proof = _proof(client, first_size, last, current) if first_size < last else []
    verify_consistency(first_size, last, proof, root_first, root_last)

    checked: list[str] = []
    witnesses: list[tuple[str, SignedCheckpoint | None]] = [("the checkpoint seen before", before)]
    for size in sorted({first_size, last}):
        witnesses.append((history_path(size), reader.history(size)))
    for label, seen in witnesses:
        if seen is None:
            continue
        size = seen.checkpoint.size
        if size not in (first_size, last):
            continue
        root = root_first if size == first_size else root_last
        if seen.checkpoint.root_hash != root:
            print_fork_evidence(
                seen.to_bytes(),
                cp.to_bytes(),
                f"{label} (size {size}, root {seen.checkpoint.root_hash.hex()})",
                f"the current checkpoint, whose tiles give root {root.hex()} at size {size}",
            )
            raise VerificationError(
                f"{label} has root {seen.checkpoint.root_hash.hex()} at size {size}, "
                f"but the current log has {root.hex()}"
            )
        checked.append(f"{label} (size {size})")
    for c in checked:
        click.echo(f"cross-checked with {c}", err=True)
    data = {
        "first_size": first_size,
        "last_size": last,
        "first_root": root_first.hex(),
        "last_root": root_last.hex(),
        "hashes": [h.hex() for h in proof],
        "tree_size": current,
        "cross_checked": checked,
    }
    text = "\n".join(
        [
            f"First size: {first_size}",
            f"First root: {root_first.hex()}",
            f"Last size: {last}",
            f"Last root: {root_last.hex()}",
            f"Current tree size: {current}",
            f"Consistency proof ({count(len(proof), 'hash', 'hashes')}, verified):",
            *(f"  {h.hex()}" for h in proof),
        ]
    )
    emit(as_json, data, text)
