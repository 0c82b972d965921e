"""The witness's two operations as plain calls returning a status, a content type and a body.

``add-checkpoint`` (https://c2sp.org/tlog-witness@v1.0.0), checks in this order:

1. the body parses (else 400): the old size, the proof, and a checkpoint
   (https://c2sp.org/tlog-checkpoint@v1.0.0) in a signed note (https://c2sp.org/signed-note@v1.0.0);
2. the checkpoint's origin is in the log list (else 404);
3. a signature from the log's key verifies; a known key's signature that fails, or none from a
   known key, is 403 (the current draft of the spec spells out the first case);
4. the log is within its ``qpd`` budget (else 429) — after the signature, so that nobody but
   the log can spend the log's budget;
5. old size <= checkpoint size (else 400);
6. under the log's lock: the old size is the size last cosigned, or 0 if none (else 409 with a
   ``text/x.tlog.size`` body); a size-0 checkpoint has the empty-tree root, old size 0 has an
   empty proof, and the proof proves consistency from the stored tree (else 422); equal sizes
   need equal roots (else 409 in v1.0.0, which this follows; the current draft says 422);
7. cosign, durably record the cosigned note, then answer 200 with the cosignature line. On a
   compare-and-swap store (S3) "under the log's lock" means: the record is replaced only if it
   is still the one checked; if another request replaced it first, step 6 runs again against
   the newer record (a few times, then 429), so two trees of one size are never both cosigned.

The monitoring read (``GET /<sha256(origin) hex>/checkpoint``, from the spec's current draft)
answers the latest cosigned checkpoint with the log's signature and the witness's cosignature.

Nothing here raises for bad input: every refusal is a status with a one-line reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from stelae.tiles.addcheckpoint import (
    SIZE_CONTENT_TYPE,
    AddCheckpointRequest,
    format_signature_lines,
    format_size_body,
)
from stelae.tiles.checkpoint import Checkpoint, MalformedCheckpointError
from stelae.tiles.errors import FormatError, VerificationError
from stelae.tiles.hashing import EMPTY_ROOT
from stelae.tiles.mldsa import MLDSA44CosignatureSigner
from stelae.tiles.note import Note, UnverifiedNoteError, open_note, sign_note
from stelae.tiles.proof import verify_consistency
from stelae.witness.identity import WitnessSigner
from stelae.witness.loglist import LogList, LogListEntry
from stelae.witness.ratelimit import RateLimiter
from stelae.witness.state import StateConflictError, WitnessStore

__all__ = ["Answer", "Witness"]

log = logging.getLogger("stelae.witness")

TEXT = "text/plain; charset=utf-8"
NOTE = "text/plain; charset=utf-8"

# How often one request is checked again after losing a compare-and-swap to another request for
# the same log. Each loss means the record moved, which usually turns this request into a 409;
# only a stream of re-submissions of the same tree can make it lose again and again.
CONFLICT_RETRIES = 4


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes
    allow: str | None = None
    """The methods a 405 answer allows (its ``Allow`` header)."""


def _refuse(status: int, reason: str) -> Answer:
    return Answer(status, TEXT, (reason.rstrip("\n") + "\n").encode())


class Witness:
    """A witness over ``log_list`` that records in ``state`` and cosigns with ``signer``."""

    def __init__(
        self,
        signer: WitnessSigner,
        log_list: LogList,
        state: WitnessStore,
        limiter: RateLimiter | None = None,
    ) -> None:
        if isinstance(signer, MLDSA44CosignatureSigner):
            # The ML-DSA-44 message carries the origin in at most 255 bytes: refuse at start-up
            # rather than fail on the first request of such a log.
            for origin in log_list.logs:
                if len(origin.encode()) > 255:
                    raise FormatError(
                        f"origin {origin[:60]!r}... is over 255 bytes: an ML-DSA-44 witness "
                        "cannot cosign it"
                    )
        self.signer = signer
        self.log_list = log_list
        self.state = state
        self.limiter = limiter or RateLimiter()

    def add_checkpoint(self, body: bytes) -> Answer:
        try:
            request = AddCheckpointRequest.parse(body)
            note = Note.parse(request.checkpoint)
            checkpoint = Checkpoint.parse(note.text)
        except FormatError as err:
            return _refuse(400, f"malformed add-checkpoint request: {err}")
        entry = self.log_list.get(checkpoint.origin)
        if entry is None:
            return _refuse(404, f"unknown log origin {checkpoint.origin!r}")
        try:
            open_note(request.checkpoint, [entry.verifier])
        except UnverifiedNoteError:
            return _refuse(403, f"no signature by the key of log {checkpoint.origin!r}")
        except VerificationError as err:
            return _refuse(403, f"bad signature: {err}")
        if not self.limiter.allow(entry.origin, entry.qpd):
            return _refuse(429, f"log {entry.origin!r} is over its {entry.qpd} requests a day")
        if request.old_size > checkpoint.size:
            return _refuse(
                400,
                f"old size {request.old_size} is larger than the checkpoint's {checkpoint.size}",
            )
        for _ in range(CONFLICT_RETRIES):
            try:
                return self._check_and_cosign(request, note, checkpoint, entry)
            except StateConflictError:
                # Another request for this log was recorded between our read and our write
                # (only a compare-and-swap store, such as S3, says so): nothing was cosigned,
                # so check this one again against the newer record.
                continue
        return _refuse(429, f"log {entry.origin!r} is being updated by other requests; retry")

    def _check_and_cosign(
        self,
        request: AddCheckpointRequest,
        note: Note,
        checkpoint: Checkpoint,
        entry: LogListEntry,
    ) -> Answer:
        """Step 6 and 7 for one read of the log's record."""
        with self.state.locked(entry.origin) as record:
            stored = record.checkpoint
            stored_size = 0 if stored is None else stored.size
            if request.old_size != stored_size:
                return Answer(409, SIZE_CONTENT_TYPE, format_size_body(stored_size))
            problem = _inconsistency(request, checkpoint, stored)
            if problem is not None:
                status, reason = problem
                # The request is signed by the log: it may be evidence of misbehaviour.
                log.warning("refused %s checkpoint of %s: %s", status, entry.origin, reason)
                if status == 409:
                    return Answer(409, SIZE_CONTENT_TYPE, format_size_body(stored_size))
                return _refuse(status, reason)
            # Keep only the log's signatures (and ours) in the record the monitors read.
            log_sigs = tuple(
                s
                for s in note.signatures
                if (s.name, s.key_id) == (entry.verifier.name, entry.verifier.key_id)
            )
            cosigned = sign_note(note.text, [self.signer], Note(note.text, log_sigs))
            record.replace(cosigned.to_bytes(), checkpoint)
        return Answer(200, TEXT, format_signature_lines(cosigned.signatures[-1:]))

    def latest(self, origin_hex: str) -> Answer:
        note = self.state.latest(origin_hex)
        if note is None:
            return _refuse(404, "this witness has cosigned no checkpoint of that log")
        return Answer(200, NOTE, note)


def _inconsistency(
    request: AddCheckpointRequest, checkpoint: Checkpoint, stored: Checkpoint | None
) -> tuple[int, str] | None:
    """Why ``checkpoint`` may not follow ``stored`` (status, reason), or None if it may."""
    if checkpoint.size == 0 and checkpoint.root_hash != EMPTY_ROOT:
        return 422, "a size-0 checkpoint must carry the empty tree's root"
    if request.old_size == 0:
        # Every tree extends the empty one, so there is nothing to prove.
        if request.proof:
            return 422, "old size 0 needs an empty consistency proof"
        return None
    assert stored is not None  # old size == stored size > 0
    if request.old_size == checkpoint.size:
        if request.proof:
            return 422, "equal sizes need an empty consistency proof"
        if checkpoint.root_hash != stored.root_hash:
            return 409, (
                f"split view: size {checkpoint.size} was cosigned with root "
                f"{stored.root_hash.hex()}, not {checkpoint.root_hash.hex()}"
            )
        return None
    try:
        verify_consistency(
            stored.size, checkpoint.size, request.proof, stored.root_hash, checkpoint.root_hash
        )
    except (VerificationError, MalformedCheckpointError) as err:
        return 422, f"consistency proof does not verify: {err}"
    return None
