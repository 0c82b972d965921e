"""Recomputing the lookup index from a log's entries, and checking what the log serves against it.

Every run is a pure function of the entries it covers and of where their batches started
(docs/index.md), so anyone holding the entries can rebuild it: ``stelae index rebuild`` does, to
give an old log its index, and ``stelae monitor`` does, to catch a log whose signed index leaves
an entry out, lists one under the wrong key, or serves a damaged or missing shard.

Which keys an entry has is decided by the entry kinds (``stelae.kinds``), which this pure package
does not import: callers pass ``keys_of(body)``.

Batch boundaries are checked, not trusted: a run's leaf records say where each entry's batch
started, and :func:`check_batch_starts` holds those against the batch records (an entry from a
log that predates batch records has offset 0 and no batch record).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from stelae.tiles.batch import BatchRecord
from stelae.tiles.checkpoint import Checkpoint
from stelae.tiles.errors import NotFoundError, VerificationError
from stelae.tiles.hashing import leaf_hash
from stelae.tiles.indexkeys import KeyKind, hash_normalized, normalize
from stelae.tiles.indexrun import BuiltRun, Record, RunRef, build_run, read_run
from stelae.tiles.manifest import Manifest
from stelae.tiles.note import NoteVerifier
from stelae.tiles.paths import batch_path, manifest_path, run_path

KeysOf = Callable[[bytes], tuple[Iterable[str], Iterable[str], Iterable[str]]]
"""``body -> (digests, key fingerprints, identities)``, as the write path derives them."""


class IndexMismatchError(VerificationError):
    """A served index object differs from the one recomputed from the entries.

    Evidence: ``path`` (the object or run), ``served`` and ``calculated`` (hex digests or roots).
    """

    def __init__(self, path: str, served: str, calculated: str, why: str) -> None:
        super().__init__(f"{path}: {why} (served {served}, recomputed {calculated})")
        self.path = path
        self.served = served
        self.calculated = calculated


@dataclass(frozen=True)
class IndexedEntry:
    index: int
    batch_start: int
    body: bytes


def entry_records(entries: Sequence[IndexedEntry], keys_of: KeysOf) -> list[Record]:
    """The records of a run over ``entries`` (ascending, contiguous indices), sorted by key."""
    found: dict[bytes, list[int]] = {}
    leaves: dict[bytes, tuple[list[int], list[int]]] = {}
    for e in entries:
        lk = hash_normalized(KeyKind.LEAF, leaf_hash(e.body).hex())
        got = leaves.setdefault(lk, ([], []))
        got[0].append(e.index)
        got[1].append(e.index - e.batch_start)
        digests, fingerprints, identities = keys_of(e.body)
        pairs = (
            *((KeyKind.DIGEST, d) for d in digests),
            *((KeyKind.KEY, k) for k in fingerprints),
            *((KeyKind.IDENTITY, x) for x in identities),
        )
        for kind, value in pairs:
            key = hash_normalized(kind, normalize(kind, value))
            indices = found.setdefault(key, [])
            if not indices or indices[-1] != e.index:
                indices.append(e.index)
    out = [Record(k, tuple(v)) for k, v in found.items()]
    out.extend(Record(k, tuple(i), tuple(o)) for k, (i, o) in leaves.items())
    out.sort(key=lambda r: r.key)
    return out


def rebuild_run(a: int, b: int, entries: Sequence[IndexedEntry], keys_of: KeysOf) -> BuiltRun:
    if [e.index for e in entries] != list(range(a, b)):
        raise ValueError(f"entries for run [{a}, {b}) are not exactly that range")
    return build_run(a, b, entry_records(entries, keys_of))


def served_batch_starts(fetch: Callable[[str], bytes], ref: RunRef) -> dict[int, int]:
    """``index -> batch start`` as the served run's leaf records state them (verified shards)."""
    out: dict[int, int] = {}
    for record in read_run(fetch, ref):
        starts = record.batch_starts()
        if starts is not None:
            out.update(zip(record.indices, starts, strict=True))
    return out


def check_batch_starts(
    fetch: Callable[[str], bytes], starts: dict[int, int], leaves: dict[int, bytes]
) -> None:
    """Raise :class:`IndexMismatchError` unless each entry's stated batch start names a batch
    record that lists the entry's leaf hash at its index (or, with no batch record there, the
    entry is its own start: a log from before batch records)."""
    cache: dict[int, BatchRecord | None] = {}
    for index, start in sorted(starts.items()):
        if start not in cache:
            try:
                cache[start] = BatchRecord.parse_receipt(fetch(batch_path(start)))
            except NotFoundError:
                cache[start] = None
        record = cache[start]
        if record is None:
            if start != index:
                raise IndexMismatchError(
                    batch_path(start),
                    "missing",
                    "a batch record",
                    f"the index says entry {index} was sequenced by the batch at {start}",
                )
            continue
        if record.position(leaves[index]) != index:
            raise IndexMismatchError(
                batch_path(start),
                "no such entry",
                leaves[index].hex(),
                f"the index says entry {index} was sequenced by this batch",
            )


def compare_run(fetch: Callable[[str], bytes], listed: RunRef, built: BuiltRun) -> None:
    """Raise :class:`IndexMismatchError` unless the manifest's run and every served shard are
    exactly the recomputed ones."""
    name = run_path(listed.a, listed.b)
    if (listed.bits, listed.root) != (built.ref.bits, built.ref.root):
        raise IndexMismatchError(
            name,
            f"bits {listed.bits} root {listed.root.hex()}",
            f"bits {built.ref.bits} root {built.ref.root.hex()}",
            "the signed manifest lists a run that is not the index of its entries",
        )
    for path, data in built.objects():
        try:
            served = fetch(path)
        except NotFoundError as err:
            raise IndexMismatchError(
                path, "missing", f"{len(data)} bytes", "shard missing"
            ) from err
        if served != data:
            raise IndexMismatchError(
                path,
                hashlib.sha256(served).hexdigest(),
                hashlib.sha256(data).hexdigest(),
                "shard differs from the recomputed one",
            )


Verified = dict[tuple[int, int], str]
"""Runs already checked against their entries: ``(a, b) -> hex run root``."""


def audit_index(
    fetch: Callable[[str], bytes],
    verifiers: Sequence[NoteVerifier],
    checkpoint: Checkpoint,
    keys_of: KeysOf,
    *,
    entries_of: Callable[[int, int], Sequence[bytes]],
    verified: Verified,
) -> Verified:
    """Check the index the log signed for ``checkpoint`` (already verified, its entries audited)
    against the entries: the manifest and every run not in ``verified``, every shard compared
    byte for byte. ``entries_of(a, b)`` returns the bodies of entries ``[a, b)``, authenticated by
    the caller. A log with no manifest passes while ``verified`` is empty (it publishes no index:
    a log written by another implementation); once an index was verified, a missing manifest is
    damage. Returns the runs now verified (those the manifest lists); raises
    :class:`IndexMismatchError` (or another VerificationError) with the evidence."""
    path = manifest_path(checkpoint.size)
    try:
        data = fetch(path)
    except NotFoundError as err:
        if not verified:
            return {}  # a log that publishes no index (another implementation, or none yet)
        raise IndexMismatchError(path, "missing", "a signed manifest", "no index manifest") from err
    manifest = Manifest.open(data, verifiers, checkpoint.origin)
    if (manifest.size, manifest.root) != (checkpoint.size, checkpoint.root_hash):
        raise IndexMismatchError(
            path,
            f"size {manifest.size} root {manifest.root.hex()}",
            f"size {checkpoint.size} root {checkpoint.root_hash.hex()}",
            "the manifest is not for the checkpoint it is published with",
        )
    out: Verified = {}
    for ref in manifest.runs:
        if verified.get((ref.a, ref.b)) != ref.root.hex():
            _audit_run(fetch, ref, keys_of, entries_of(ref.a, ref.b))
        out[(ref.a, ref.b)] = ref.root.hex()
    return out


def _audit_run(
    fetch: Callable[[str], bytes], ref: RunRef, keys_of: KeysOf, bodies: Sequence[bytes]
) -> None:
    name = run_path(ref.a, ref.b)
    try:
        starts = served_batch_starts(fetch, ref)
    except NotFoundError as err:
        raise IndexMismatchError(name, "a shard is missing", "every shard", str(err)) from err
    leaves = {ref.a + i: leaf_hash(body) for i, body in enumerate(bodies)}
    extra = sorted(set(starts) - set(leaves))
    if extra:
        raise IndexMismatchError(
            name, f"entry {extra[0]}", f"[{ref.a}, {ref.b})", "a leaf record outside the run"
        )
    check_batch_starts(fetch, starts, leaves)
    # An entry the served run does not list (omitted: the lie a monitor exists to catch) gets
    # its batch from the batch records, so the recomputed run is the honest one.
    entries: list[IndexedEntry] = []
    batch: tuple[int, int] = (ref.a, ref.a)  # [first, end) of the batch record in hand
    for i, body in enumerate(bodies):
        index = ref.a + i
        start = starts.get(index)
        if start is None:
            # Batches are contiguous: outside the one in hand, this entry starts the next.
            start = batch[0] if batch[0] <= index < batch[1] else index
        if not batch[0] <= index < batch[1]:
            batch = _batch_range(fetch, start, index)
        entries.append(IndexedEntry(index, start, body))
    compare_run(fetch, ref, rebuild_run(ref.a, ref.b, entries, keys_of))


def _batch_range(fetch: Callable[[str], bytes], start: int, index: int) -> tuple[int, int]:
    try:
        record = BatchRecord.parse_receipt(fetch(batch_path(start)))
    except NotFoundError:
        return (index, index + 1)
    return (record.first, record.new_size)
