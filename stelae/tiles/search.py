"""The verifying lookup client: which entries of a log have a key, complete for a checkpoint
(docs/index.md, "Lookups and their proofs").

Given a checkpoint the caller has already verified, :func:`lookup` reads the manifest for its
size, checks the manifest's signature and that it is for exactly that checkpoint, then reads the
key's shard of every run the manifest lists, verifies each shard against its run root, and builds
and verifies a lookup proof per run (so the exported proofs are checked by the same code every
time). Any failure is a :class:`~stelae.tiles.errors.VerificationError` carrying its evidence.

Pure code: the only I/O is the injected ``fetch(path) -> bytes`` (which raises
:class:`~stelae.tiles.errors.NotFoundError` on a 404, like the fetchers of
:mod:`stelae.tiles.fetch`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from stelae.tiles.checkpoint import Checkpoint
from stelae.tiles.errors import FormatError, NotFoundError, VerificationError
from stelae.tiles.indexkeys import KeyKind, hash_normalized, normalize
from stelae.tiles.indexproof import LookupProof
from stelae.tiles.indexrecord import Record, RunRef, shard_of
from stelae.tiles.indexrun import IndexMissingError, Shard
from stelae.tiles.manifest import Manifest
from stelae.tiles.note import NoteVerifier
from stelae.tiles.paths import manifest_path, run_shard_path

__all__ = [
    "IndexMissingError",
    "InvalidIndexObjectError",
    "LookupAnswer",
    "lookup",
    "lookup_or_latest",
]


class InvalidIndexObjectError(VerificationError):
    """An index object the log served (``path``) is malformed or contradicts what it must say;
    ``reason`` says how."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}", hint="the log served a broken index object")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class LookupAnswer:
    """Every entry below ``tree_size`` indexed under (``kind``, ``value``), verified.

    ``indices`` is ascending and complete for the checkpoint of ``tree_size``. For ``leaf``
    lookups ``batch_starts[i]`` is the first index of the batch that sequenced ``indices[i]``
    (where its batch record is, docs/index.md); None for other kinds. ``proofs`` holds one
    verified lookup proof per run of the manifest; ``objects_read`` counts the fetches made
    (the manifest and one shard per run; the checkpoint was read by the caller).
    """

    kind: KeyKind
    value: str
    tree_size: int
    indices: tuple[int, ...]
    batch_starts: tuple[int, ...] | None
    proofs: tuple[tuple[RunRef, LookupProof], ...]
    objects_read: int

    def to_json(self) -> dict[str, Any]:
        """The answer with its proofs, for ``--json`` output (runs as in the manifest)."""
        obj: dict[str, Any] = {
            "kind": self.kind.value,
            "value": self.value,
            "treeSize": self.tree_size,
            "indices": list(self.indices),
            "proofs": [
                {"run": [ref.a, ref.b, ref.bits, ref.root.hex()], "proof": proof.to_json()}
                for ref, proof in self.proofs
            ],
        }
        if self.batch_starts is not None:
            obj["batchStarts"] = list(self.batch_starts)
        return obj


def _fetch(fetch: Callable[[str], bytes], path: str, why: str) -> bytes:
    try:
        return fetch(path)
    except NotFoundError as err:
        raise IndexMissingError(path, why) from err


def lookup(  # noqa: PLR0917 - the signature the sequencer and CLI were written against
    fetch: Callable[[str], bytes],
    verifiers: Sequence[NoteVerifier],
    origin: str,
    checkpoint: Checkpoint,
    kind: KeyKind,
    value: str,
) -> LookupAnswer:
    """Look (``kind``, ``value``) up in the log's index at ``checkpoint`` (already verified by
    the caller with the same ``verifiers``), verifying everything read.

    A bad query raises :class:`FormatError` before anything is fetched. A missing manifest or
    shard raises :class:`IndexMissingError` naming its path; a manifest that is not validly
    signed by ``verifiers``, or is for another log or checkpoint, or a shard or record that does
    not verify, raises a :class:`VerificationError` subclass with the evidence.
    """
    kind = KeyKind(kind)
    value = normalize(kind, value)
    key = hash_normalized(kind, value)
    leaf = kind is KeyKind.LEAF
    if checkpoint.size == 0:  # nothing to find, and no batch ever wrote a manifest
        return LookupAnswer(kind, value, 0, (), () if leaf else None, (), 0)
    path = manifest_path(checkpoint.size)
    data = _fetch(fetch, path, f"the log published a checkpoint of size {checkpoint.size}")
    try:
        manifest = Manifest.open(data, verifiers, origin)
    except FormatError as err:
        raise InvalidIndexObjectError(path, str(err)) from err
    manifest.check_checkpoint(checkpoint)
    indices: list[int] = []
    starts: list[int] = []
    proofs: list[tuple[RunRef, LookupProof]] = []
    for ref in manifest.runs:
        s = shard_of(key, ref.bits)
        shard_path = run_shard_path(ref.a, ref.b, s)
        shard = Shard.parse(_fetch(fetch, shard_path, f"{path} lists run {ref.name}"), ref, s)
        proof = shard.prove(key)
        record = proof.verify(key, ref)
        proofs.append((ref, proof))
        if record is None:
            continue
        _check_record(shard_path, record, leaf)
        indices.extend(record.indices)
        if record.offsets is not None:
            starts.extend(i - o for i, o in zip(record.indices, record.offsets, strict=True))
    return LookupAnswer(
        kind,
        value,
        checkpoint.size,
        tuple(indices),
        tuple(starts) if leaf else None,
        tuple(proofs),
        1 + len(manifest.runs),
    )


def lookup_or_latest(  # noqa: PLR0917 - lookup's arguments, and one more
    fetch: Callable[[str], bytes],
    verifiers: Sequence[NoteVerifier],
    origin: str,
    checkpoint: Checkpoint,
    kind: KeyKind,
    value: str,
    latest: Callable[[], Checkpoint],
) -> LookupAnswer:
    """:func:`lookup` at ``checkpoint``, or, if the manifest or a run it lists is gone, once
    more at the log's latest checkpoint; the answer's ``tree_size`` says which.

    A log deletes the runs that newer manifests replaced a grace period after they were replaced
    (docs/index.md, "Garbage collection"; manifests are kept), so a reader holding a checkpoint
    that was superseded longer ago than that may find them gone. ``latest()`` returns the latest
    checkpoint, verified by the caller (its signatures, and that it extends ``checkpoint``); an
    answer complete for it is complete for ``checkpoint`` too, for the indices below
    ``checkpoint.size``. If the latest checkpoint is no newer, the error stands.
    """
    try:
        return lookup(fetch, verifiers, origin, checkpoint, kind, value)
    except IndexMissingError:
        newer = latest()
        if newer.size <= checkpoint.size:
            raise
    return lookup(fetch, verifiers, origin, newer, kind, value)


def _check_record(path: str, record: Record, leaf: bool) -> None:
    # Only leaf records carry batch offsets (docs/index.md); a leaf answer without them could
    # not name the batch record, and offsets on another kind mean the key is not what it seems.
    if leaf and record.offsets is None:
        raise InvalidIndexObjectError(path, f"leaf record {record.key.hex()} has no offsets")
    if not leaf and record.offsets is not None:
        raise InvalidIndexObjectError(path, f"record {record.key.hex()} has leaf offsets")
