"""What the log signs as it publishes: checkpoint notes (https://c2sp.org/tlog-checkpoint), the
history object ``checkpoints/<size>`` a checkpoint is published from, with witness cosignatures
when a policy asks for them (docs/witness.md), and Rekor v1 signed entry timestamps.

docs/sequencing.md, step 4.4, says why a repeated attempt publishes the stored history object
rather than signing again; docs/compatibility.md describes the log's key types.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Protocol

from stelae.errors import StelaeError
from stelae.sequencer.store import ImmutableConflictError, ObjectNotFound, ObjectStore
from stelae.tiles.checkpoint import Checkpoint
from stelae.tiles.client import TileReader
from stelae.tiles.note import NoteSigner, sign_note
from stelae.tiles.notekeys import Ed25519NoteSigner, RekorV1HintSigner
from stelae.tiles.paths import ObjectClass, history_path
from stelae.tiles.timestamp import set_payload, v1_log_id


class Cosigner(Protocol):
    """Collects witness cosignatures for a checkpoint before it is published (docs/witness.md)."""

    def cosign(
        self, note: bytes, size: int, consistency_proof: Callable[[int, int], list[bytes]]
    ) -> bytes:
        """``note`` with the cosignatures that satisfy the policy added; raises if they don't."""
        ...


class LogKeys:
    """The log's keys over ``store``: ``signer`` (Ed25519, named ``origin``) signs checkpoints,
    manifests and entry timestamps; each of ``extra_signers`` (also named ``origin``) adds a
    line to every checkpoint; ``cosigner``, if any, adds witness cosignatures."""

    def __init__(
        self,
        store: ObjectStore,
        signer: Ed25519NoteSigner,
        origin: str,
        *,
        extra_signers: tuple[NoteSigner, ...] = (),
        cosigner: Cosigner | None = None,
        entry_timestamps: bool = True,
    ) -> None:
        if signer.name != origin:
            raise StelaeError(
                f"the signing key is named {signer.name!r} but the origin is {origin!r}",
                hint="the note key name must equal the checkpoint origin",
            )
        # Every checkpoint is signed twice by the same key: the C2SP line and the line Rekor v1
        # clients look for (see RekorV1HintSigner for why both verifiers are satisfied).
        self._checkpoint_signers: tuple[NoteSigner, ...] = (
            signer,
            RekorV1HintSigner(signer),
            *extra_signers,
        )
        for extra in extra_signers:
            if extra.name != origin:
                raise StelaeError(
                    f"the log key {extra.name}+{extra.key_id:08x} is not named after the "
                    f"origin {origin!r}",
                    hint="every log key's name must equal the checkpoint origin",
                )
        self._store = store
        self._signer = signer
        self._origin = origin
        self._deterministic = not extra_signers
        self.cosigner = cosigner
        self._entry_timestamps = entry_timestamps
        self._v1_log_id = v1_log_id(signer.public_key_bytes)

    def signed_note(self, size: int, root: bytes) -> bytes:
        """The checkpoint note signed by the log's keys alone (no witnesses): the same bytes
        every time unless an ML-DSA-44 key signs too."""
        return sign_note(
            Checkpoint(self._origin, size, root).to_text(), self._checkpoint_signers
        ).to_bytes()

    def stored_history(self, size: int) -> bytes | None:
        """``checkpoints/<size>`` when it may already exist with other bytes than a new
        signature would make — an ML-DSA-44 signature is randomized and timestamped, so a
        repeated attempt (recovery, a restart) must publish the stored note, not rewrite an
        immutable object. None when the log's notes are deterministic (Ed25519 alone: writing
        the same bytes again is the idempotent path, and saves the read) or nothing is there."""
        if self._deterministic:
            return None
        try:
            return self._store.get(history_path(size))
        except ObjectNotFound:
            return None

    def checkpoint_note(self, size: int, root: bytes) -> bytes:
        """The signed (and, with a policy, cosigned) checkpoint, kept at ``checkpoints/<size>``.

        Cosignatures carry timestamps, so a repeated attempt would make other bytes: once the
        history object exists, it is the note to publish.
        """
        note = self.signed_note(size, root)
        cosigner = self.cosigner
        if cosigner is not None:
            with contextlib.suppress(ObjectNotFound):
                return self._store.get(history_path(size))
            note = cosigner.cosign(note, size, self._reader(size).consistency_proof)
        try:
            self._store.put_immutable(history_path(size), note, ObjectClass.CHECKPOINT_HISTORY)
        except ImmutableConflictError:
            note = self._store.get(history_path(size))
        return note

    def cosigned_note(self, size: int, root: bytes) -> bytes:
        """The checkpoint note signed and cosigned afresh and not kept: a refresh re-publishes
        the same tree (docs/witness.md). Without a cosigner, just the signed note."""
        note = self.signed_note(size, root)
        if self.cosigner is None:
            return note
        return self.cosigner.cosign(note, size, self._reader(size).consistency_proof)

    def _reader(self, size: int) -> TileReader:
        """Tiles of this store read at ``size`` (for witnesses' consistency proofs)."""
        from stelae.sequencer.reader import StoreFetcher  # noqa: PLC0415 - only with witnesses

        return TileReader(StoreFetcher(self._store), read_size=size)

    def entry_timestamp(self, body: bytes, integrated_time: int, index: int) -> bytes:
        """The Rekor v1 signed entry timestamp of the entry ``body`` at ``index``; empty when
        the log signs none."""
        if not self._entry_timestamps:
            return b""
        return self._signer.sign_bytes(set_payload(body, integrated_time, self._v1_log_id, index))
