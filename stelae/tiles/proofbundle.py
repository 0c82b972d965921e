"""Offline proofs: a stapled proof that one entry is in a log, verifiable with no network.

A :class:`ProofBundle` holds the entry's canonical body (the Merkle leaf), its index, the RFC 6962
inclusion proof and the log's signed checkpoint (verbatim), plus what Rekor adds when it is known:
the log ID and, for Rekor v1 entries, the integrated time and signed entry timestamp (SET).

It has three serializations, and :meth:`ProofBundle.parse` reads each of them:

- ``c2sp.org/tlog-proof@v1`` text (:meth:`~ProofBundle.to_tlog_proof`, file extension
  ``.tlog-proof``): the header, ``extra <b64 canonical body>``, ``index N``, the proof hashes (b64,
  leaf to root), a blank line, the checkpoint. The body travels as the spec's "extra data" (what
  is needed to reconstruct the record hash); it is untrusted until its leaf hash is proved.
- Sigstore's ``TransparencyLogEntry`` JSON (:meth:`~ProofBundle.to_tle`) exactly as Rekor v2
  answers (docs/compatibility.md): int64 as strings, bytes as base64, the signed note in
  ``inclusionProof.checkpoint.envelope``. A whole Sigstore bundle is read too (its first
  ``verificationMaterial.tlogEntries`` item).
- The stelae proof file (:meth:`~ProofBundle.to_json`): one JSON object holding both of the above,
  ``{"mediaType": MEDIA_TYPE, "tlogProof": "<text>", "transparencyLogEntry": {…}}``; parsing
  requires the two to describe the same entry, proof and checkpoint.

Parsing checks structure and internal agreement (the stated root and size are the checkpoint's,
the index is inside the tree, kindVersion is the body's); it trusts nothing. :func:`verify` is
the trust decision: the checkpoint's signature under the caller's keys and origin, the log ID
against those keys, and the inclusion of the body's leaf hash. Pure code: no I/O.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from stelae.tiles.base64field import decode_b64, encode_b64
from stelae.tiles.checkpoint import Checkpoint, SignedCheckpoint, open_checkpoint
from stelae.tiles.decimals import parse_decimal
from stelae.tiles.errors import FormatError, VerificationError
from stelae.tiles.hashing import HASH_SIZE, leaf_hash
from stelae.tiles.note import Note, NoteVerifier
from stelae.tiles.notekeys import (
    ECDSANoteVerifier,
    Ed25519NoteVerifier,
    ecdsa_log_id,
    rekor_v2_log_id,
)
from stelae.tiles.proof import verify_inclusion

__all__ = [
    "MEDIA_TYPE",
    "TLOG_PROOF_HEADER",
    "LogIdMismatchError",
    "MalformedProofError",
    "ProofBundle",
    "log_ids",
    "verify",
]

MEDIA_TYPE = "application/vnd.stelae.proof.v1+json"
TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"
#: Entries over this size are refused by every stelae log (tlog-tiles bundles use a uint16 length).
MAX_BODY_SIZE = 65_535
#: An inclusion proof in a tree of at most 2^63-1 leaves has at most 63 hashes.
MAX_PROOF_HASHES = 63
_MAX_INDEX = 2**63 - 1


class MalformedProofError(FormatError):
    """A proof file is not one of the accepted forms, or its parts disagree with each other."""


class LogIdMismatchError(VerificationError):
    """The proof names a log ID that none of the keys that signed its checkpoint has.

    Carries ``stated`` (the proof's log ID) and ``expected`` (the IDs of the verifying keys).
    """

    def __init__(self, stated: bytes, expected: Sequence[bytes]) -> None:
        super().__init__(
            f"the proof's log ID {stated.hex()} is not the ID of the key that signed its "
            f"checkpoint ({', '.join(e.hex() for e in expected)})",
            hint="the proof was made for another log, or edited",
        )
        self.stated = stated
        self.expected = tuple(expected)


# --- the value -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProofBundle:
    """One entry, its inclusion proof and the signed checkpoint it is proved against.

    Valid once constructed (see the module docstring for what that does and does not mean).
    ``log_id`` is empty when unknown (the tlog-proof text carries none); ``integrated_time`` and
    ``signed_entry_timestamp`` are 0 and empty unless the log issued a Rekor v1 SET.
    """

    index: int
    body: bytes
    hashes: tuple[bytes, ...]
    checkpoint: bytes
    log_id: bytes = b""
    integrated_time: int = 0
    signed_entry_timestamp: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.index <= _MAX_INDEX:
            raise MalformedProofError(f"index {self.index} is out of range")
        if not self.body:
            raise MalformedProofError("the entry body is empty")
        if len(self.body) > MAX_BODY_SIZE:
            raise MalformedProofError(
                f"the entry body is {len(self.body)} bytes; entries are at most {MAX_BODY_SIZE}"
            )
        if len(self.hashes) > MAX_PROOF_HASHES:
            raise MalformedProofError(f"the inclusion proof has {len(self.hashes)} hashes")
        for i, h in enumerate(self.hashes):
            if len(h) != HASH_SIZE:
                raise MalformedProofError(f"proof hash {i} is {len(h)} bytes, not {HASH_SIZE}")
        if self.log_id and len(self.log_id) != HASH_SIZE:
            raise MalformedProofError(f"the log ID is {len(self.log_id)} bytes, not {HASH_SIZE}")
        if self.integrated_time < 0:
            raise MalformedProofError("the integrated time is negative")
        tree = self.tree  # parses the checkpoint: a malformed note is a malformed proof
        if self.index >= tree.size:
            raise MalformedProofError(
                f"entry {self.index} is not in the checkpoint's tree of size {tree.size}"
            )

    # -- derived values (unverified until :func:`verify`) ----------------------------------------

    @cached_property
    def tree(self) -> Checkpoint:
        """The checkpoint's body as stated, signature *not* verified."""
        return _stated_tree(self.checkpoint)

    @property
    def leaf_hash(self) -> bytes:
        return leaf_hash(self.body)

    @property
    def uuid(self) -> str:
        """Rekor's entry UUID: the hex leaf hash."""
        return self.leaf_hash.hex()

    @property
    def kind_version(self) -> tuple[str, str]:
        """(kind, apiVersion) of a Rekor-style JSON body; empty strings for any other leaf."""
        try:
            obj = json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return "", ""
        if not isinstance(obj, dict):
            return "", ""
        kind, version = obj.get("kind"), obj.get("apiVersion")
        return (
            kind if isinstance(kind, str) else "",
            version if isinstance(version, str) else "",
        )

    # -- serializations ---------------------------------------------------------------------------

    def to_tlog_proof(self) -> bytes:
        """The c2sp.org/tlog-proof@v1 text, the body as its extra data."""
        lines = [
            TLOG_PROOF_HEADER,
            f"extra {encode_b64(self.body)}",
            f"index {self.index}",
            *(encode_b64(h) for h in self.hashes),
            "",
        ]
        return "\n".join(lines).encode() + b"\n" + self.checkpoint

    def to_tle(self) -> dict[str, Any]:
        """Sigstore's ``TransparencyLogEntry``, field for field as Rekor v2 answers."""
        kind, version = self.kind_version
        tree = self.tree
        promise = (
            {"signedEntryTimestamp": encode_b64(self.signed_entry_timestamp)}
            if self.signed_entry_timestamp
            else None
        )
        return {
            "logIndex": str(self.index),
            "logId": {"keyId": encode_b64(self.log_id)},
            "kindVersion": {"kind": kind, "version": version},
            "integratedTime": str(self.integrated_time),
            "inclusionPromise": promise,
            "inclusionProof": {
                "logIndex": str(self.index),
                "rootHash": encode_b64(tree.root_hash),
                "treeSize": str(tree.size),
                "hashes": [encode_b64(h) for h in self.hashes],
                "checkpoint": {"envelope": self.checkpoint.decode()},
            },
            "canonicalizedBody": encode_b64(self.body),
        }

    def to_json(self) -> bytes:
        """The stelae proof file: the tlog-proof text and the TransparencyLogEntry together."""
        obj = {
            "mediaType": MEDIA_TYPE,
            "tlogProof": self.to_tlog_proof().decode(),
            "transparencyLogEntry": self.to_tle(),
        }
        return (json.dumps(obj, indent=2) + "\n").encode()

    # -- parsers ----------------------------------------------------------------------------------

    @classmethod
    def parse(cls, data: bytes) -> ProofBundle:
        """Any accepted form: tlog-proof text, the stelae proof file, a bare
        ``TransparencyLogEntry``, or a Sigstore bundle. Raises :class:`MalformedProofError`."""
        if data.startswith(b"c2sp.org/tlog-proof@"):
            return cls.from_tlog_proof(data)
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError) as err:
            raise MalformedProofError(
                "not a proof: neither c2sp.org/tlog-proof@v1 text nor JSON"
            ) from err
        if not isinstance(obj, dict):
            raise MalformedProofError("a JSON proof must be an object")
        media = obj.get("mediaType")
        if media == MEDIA_TYPE:
            return cls.from_json_obj(obj)
        if isinstance(media, str) and media.startswith("application/vnd.dev.sigstore.bundle"):
            entries = _get(obj, "verificationMaterial", dict).get("tlogEntries")
            if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
                raise MalformedProofError("the Sigstore bundle has no tlogEntries")
            return cls.from_tle(entries[0])
        if media is not None:
            raise MalformedProofError(f"unknown proof mediaType {media!r}")
        return cls.from_tle(obj)

    @classmethod
    def from_tlog_proof(cls, data: bytes) -> ProofBundle:
        """Parse c2sp.org/tlog-proof@v1 text. Stelae needs the extra line: it is the leaf."""
        head, sep, checkpoint = data.partition(b"\n\n")
        if not sep:
            raise MalformedProofError("tlog-proof has no blank line before the checkpoint")
        try:
            lines = head.decode("ascii").split("\n")
        except UnicodeDecodeError as err:
            raise MalformedProofError("tlog-proof header lines are not ASCII") from err
        if lines[0] != TLOG_PROOF_HEADER:
            raise MalformedProofError(f"tlog-proof must start with {TLOG_PROOF_HEADER!r}")
        rest = lines[1:]
        if not rest or not rest[0].startswith("extra "):
            raise MalformedProofError(
                "tlog-proof has no extra data: a stelae proof carries the entry's body there, "
                "without it the leaf cannot be checked"
            )
        body = _b64decode(rest[0].removeprefix("extra "), "tlog-proof extra data")
        if len(rest) < 2 or not rest[1].startswith("index "):
            raise MalformedProofError("tlog-proof has no 'index N' line")
        index = _decimal(rest[1].removeprefix("index "), "tlog-proof index")
        hashes = tuple(_b64decode(line, f"tlog-proof hash {i}") for i, line in enumerate(rest[2:]))
        return cls(index, body, hashes, checkpoint)

    @classmethod
    def from_tle(cls, obj: Mapping[str, Any]) -> ProofBundle:
        """Parse a ``TransparencyLogEntry`` (Rekor v2 shape; ints as strings or numbers)."""
        index = _int(obj.get("logIndex"), "logIndex")
        proof = _get(obj, "inclusionProof", dict)
        if _int(proof.get("logIndex"), "inclusionProof.logIndex") != index:
            raise MalformedProofError(
                "inclusionProof.logIndex differs from logIndex (a sharded Rekor v1 entry?): "
                "stelae logs have one shard"
            )
        envelope = _get(_get(proof, "checkpoint", dict, "inclusionProof."), "envelope", str)
        hashes = _get(proof, "hashes", list, "inclusionProof.")
        if not all(isinstance(h, str) for h in hashes):
            raise MalformedProofError("inclusionProof.hashes must be base64 strings")
        sets = _tle_promise(obj.get("inclusionPromise"))
        key_id = _tle_key_id(obj.get("logId"))
        bundle = cls(
            index=index,
            body=_b64decode(_get(obj, "canonicalizedBody", str), "canonicalizedBody"),
            hashes=tuple(
                _b64decode(h, f"inclusionProof.hashes[{i}]") for i, h in enumerate(hashes)
            ),
            checkpoint=envelope.encode(),
            log_id=key_id,
            integrated_time=_int(obj.get("integratedTime", "0"), "integratedTime"),
            signed_entry_timestamp=sets,
        )
        tree = bundle.tree
        root = _b64decode(_get(proof, "rootHash", str), "inclusionProof.rootHash")
        if root != tree.root_hash:
            raise MalformedProofError(
                f"inclusionProof.rootHash {root.hex()} is not the checkpoint's root "
                f"{tree.root_hash.hex()}"
            )
        if _int(proof.get("treeSize"), "inclusionProof.treeSize") != tree.size:
            raise MalformedProofError(
                f"inclusionProof.treeSize {proof.get('treeSize')} is not the checkpoint's "
                f"size {tree.size}"
            )
        _check_kind_version(obj.get("kindVersion"), bundle.kind_version)
        return bundle

    @classmethod
    def from_json_obj(cls, obj: Mapping[str, Any]) -> ProofBundle:
        """The stelae proof file: both forms, which must agree."""
        text = _get(obj, "tlogProof", str)
        tle = cls.from_tle(_get(obj, "transparencyLogEntry", dict))
        proof = cls.from_tlog_proof(text.encode())
        for name in ("index", "body", "hashes", "checkpoint"):
            if getattr(proof, name) != getattr(tle, name):
                raise MalformedProofError(
                    f"tlogProof and transparencyLogEntry disagree on the {name}"
                )
        return tle

    @classmethod
    def from_rekor_v1(cls, obj: Mapping[str, Any]) -> ProofBundle:
        """A Rekor v1 ``LogEntry`` answer, ``{uuid: {body, integratedTime, logID, logIndex,
        verification: {inclusionProof: {…hex…, checkpoint}, signedEntryTimestamp}}}``."""
        if len(obj) != 1:
            raise MalformedProofError("a Rekor v1 entry answer holds exactly one entry")
        ((uuid, entry),) = obj.items()
        if not isinstance(entry, dict):
            raise MalformedProofError("a Rekor v1 entry must be an object")
        verification = _get(entry, "verification", dict)
        proof = _get(verification, "inclusionProof", dict, "verification.")
        hashes = _get(proof, "hashes", list, "inclusionProof.")
        index = _int(entry.get("logIndex"), "logIndex")
        if _int(proof.get("logIndex"), "inclusionProof.logIndex") != index:
            raise MalformedProofError("inclusionProof.logIndex differs from logIndex")
        sets = verification.get("signedEntryTimestamp")
        bundle = cls(
            index=index,
            body=_b64decode(_get(entry, "body", str), "body"),
            hashes=tuple(
                _hexdecode(h, f"inclusionProof.hashes[{i}]") for i, h in enumerate(hashes)
            ),
            checkpoint=_get(proof, "checkpoint", str, "inclusionProof.").encode(),
            log_id=_hexdecode(_get(entry, "logID", str), "logID"),
            integrated_time=_int(entry.get("integratedTime", 0), "integratedTime"),
            signed_entry_timestamp=(
                _b64decode(sets, "signedEntryTimestamp") if isinstance(sets, str) else b""
            ),
        )
        uuid_hex = str(uuid).lower()[-64:]
        if uuid_hex != bundle.uuid:
            raise MalformedProofError(f"entry {uuid} holds a body whose UUID is {bundle.uuid}")
        tree = bundle.tree
        if _hexdecode(_get(proof, "rootHash", str), "rootHash") != tree.root_hash:
            raise MalformedProofError("inclusionProof.rootHash is not the checkpoint's root")
        if _int(proof.get("treeSize"), "inclusionProof.treeSize") != tree.size:
            raise MalformedProofError("inclusionProof.treeSize is not the checkpoint's size")
        return bundle


# --- verification --------------------------------------------------------------------------------


def log_ids(verifier: NoteVerifier) -> tuple[bytes, ...]:
    """The log IDs Rekor clients know a checkpoint key by.

    Ed25519 (type 0x01): Rekor v2's ``SHA-256(name || 0x0A || 0x01 || key)`` and Rekor v1's
    ``SHA-256(DER SPKI)``. ECDSA (type 0x02): ``SHA-256(DER SPKI)``. Others: none.
    """
    if isinstance(verifier, Ed25519NoteVerifier):
        spki = ed25519.Ed25519PublicKey.from_public_bytes(verifier.public_key).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return rekor_v2_log_id(verifier.name, verifier.public_key), hashlib.sha256(spki).digest()
    if isinstance(verifier, ECDSANoteVerifier):
        return (ecdsa_log_id(verifier.spki_der),)
    return ()


def verify(
    bundle: ProofBundle,
    verifiers: Sequence[NoteVerifier],
    origin: str,
    *,
    witnesses: Sequence[NoteVerifier] = (),
    require_all: bool = False,
) -> SignedCheckpoint:
    """Verify ``bundle`` offline against the log ``(origin, verifiers)``; return its checkpoint.

    1. The checkpoint's signature by one of ``verifiers`` and its origin (errors from
       :func:`~stelae.tiles.checkpoint.open_checkpoint`; ``witnesses`` cosignatures are checked
       when present, never required; with ``require_all`` every key of ``verifiers`` must
       have signed).
    2. A stated log ID is an ID of a key that signed the checkpoint (:class:`LogIdMismatchError`).
    3. The body's leaf hash is at ``index`` in the checkpoint's tree
       (:class:`~stelae.tiles.proof.RootMismatchError` / :class:`~stelae.tiles.proof.ProofError`).

    The SET of a Rekor v1 entry is not checked here (it needs the log's raw signing key, not a
    note verifier): callers holding it check it separately.
    """
    cp = open_checkpoint(
        bundle.checkpoint, verifiers, origin, witnesses=witnesses, require_all=require_all
    )
    if bundle.log_id:
        signed = {(s.name, s.key_id) for s in cp.note.verified}
        expected = [i for v in verifiers if (v.name, v.key_id) in signed for i in log_ids(v)]
        if expected and bundle.log_id not in expected:
            raise LogIdMismatchError(bundle.log_id, expected)
    tree = cp.checkpoint
    verify_inclusion(bundle.index, tree.size, bundle.leaf_hash, bundle.hashes, tree.root_hash)
    return cp


# --- field helpers -------------------------------------------------------------------------------


def _b64decode(value: object, what: str) -> bytes:
    return decode_b64(value, what, MalformedProofError)


def _hexdecode(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not re.fullmatch(r"(?:[0-9a-fA-F]{2})*", value):
        raise MalformedProofError(f"{what} must be a hex string")
    return bytes.fromhex(value)


def _decimal(value: str, what: str) -> int:
    try:
        return parse_decimal(value, what, maximum=_MAX_INDEX)
    except FormatError as err:
        raise MalformedProofError(str(err)) from err


def _int(value: object, what: str) -> int:
    """An int64 as protojson writes it (a decimal string) or as a JSON number."""
    if isinstance(value, bool):
        raise MalformedProofError(f"{what} must be an integer")
    if isinstance(value, int):
        if not 0 <= value <= _MAX_INDEX:
            raise MalformedProofError(f"{what} is out of range")
        return value
    if isinstance(value, str):
        return _decimal(value, what)
    raise MalformedProofError(f"{what} is missing or not an integer")


def _get(obj: Mapping[str, Any], key: str, kind: type, prefix: str = "") -> Any:
    value = obj.get(key)
    if not isinstance(value, kind):
        raise MalformedProofError(f"{prefix}{key} is missing or not a {kind.__name__}")
    return value


def _tle_promise(promise: object) -> bytes:
    """The signed entry timestamp of a TransparencyLogEntry's ``inclusionPromise`` (or b"")."""
    if promise is None:
        return b""
    if not isinstance(promise, dict):
        raise MalformedProofError("inclusionPromise must be an object or null")
    return _b64decode(_get(promise, "signedEntryTimestamp", str), "inclusionPromise")


def _tle_key_id(log_id: object) -> bytes:
    """The key id of a TransparencyLogEntry's ``logId`` (or b"")."""
    if log_id is None:
        return b""
    if not isinstance(log_id, dict):
        raise MalformedProofError("logId must be an object")
    return _b64decode(log_id.get("keyId", ""), "logId.keyId")


def _check_kind_version(kv: object, actual: tuple[str, str]) -> None:
    """A TransparencyLogEntry's optional ``kindVersion`` must name the body's kind."""
    if kv is None:
        return
    if not isinstance(kv, dict):
        raise MalformedProofError("kindVersion must be an object")
    stated = (kv.get("kind", ""), kv.get("version", ""))
    if stated != actual:
        raise MalformedProofError(
            f"kindVersion {stated[0]} {stated[1]} is not the body's {actual[0]} {actual[1]}"
        )


@lru_cache(maxsize=16)
def _stated_tree(checkpoint: bytes) -> Checkpoint:
    """Parse a checkpoint note's body. Memoized by its bytes: a log answers thousands of uploads
    with the same few checkpoints, and parsing one costs more than the rest of the answer."""
    try:
        return Checkpoint.parse(Note.parse(checkpoint).text)
    except FormatError as err:
        raise MalformedProofError(f"the checkpoint is malformed: {err}") from err
