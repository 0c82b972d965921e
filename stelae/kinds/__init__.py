"""Entry kinds: schemas, signature checks and canonical bodies, shared by the write API and CLI.

Three ways in, one :class:`Entry` out:

- :func:`from_v1_proposed` — Rekor v1 ``POST /api/v1/log/entries`` (``kind``, ``apiVersion``,
  ``spec``);
- :func:`from_v2_request` — Rekor v2 ``CreateEntryRequest`` (protojson);
- :func:`from_body` — a canonical body read back from the log (search hits, monitors).

Each validates against its kind's JSON Schema, verifies the signatures it can, and builds the
canonical (RFC 8785) body that becomes the Merkle leaf. Every failure is an
:class:`InvalidEntryError` (or its :class:`SignatureError` subclass) naming the field.
"""

from __future__ import annotations

from stelae.kinds import dsse, hashedrekord, protojson, rekord
from stelae.kinds.canonical import MAX_BODY_SIZE, MAX_REQUEST_SIZE, load_json, parse_canonical
from stelae.kinds.errors import InvalidEntryError, SignatureError
from stelae.kinds.model import KINDS, Entry
from stelae.kinds.schema import Schema, closed_object

__all__ = [
    "KINDS",
    "MAX_BODY_SIZE",
    "MAX_REQUEST_SIZE",
    "Entry",
    "InvalidEntryError",
    "SignatureError",
    "fingerprint_public_key",
    "from_body",
    "from_v1_proposed",
    "from_v2_request",
    "load_json",
    "lookup_keys",
]

_PROPOSED = Schema(
    closed_object(
        {"kind": {"type": "string"}, "apiVersion": {"type": "string"}, "spec": {"type": "object"}}
    )
)

_V2_REQUEST = Schema(
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {"hashedRekordRequestV002": {}, "dsseRequestV002": {}},
    }
)


def _check_kind(kind: str, version: str, field: str) -> None:
    if kind not in KINDS:
        raise InvalidEntryError(
            "kind", f"unsupported kind {kind!r}; this log accepts {', '.join(KINDS)}"
        )
    if version not in KINDS[kind]:
        raise InvalidEntryError(
            field,
            f"unsupported {kind} version {version!r}; this log accepts {', '.join(KINDS[kind])}",
        )


def from_v1_proposed(obj: object) -> Entry:
    """A Rekor v1 proposed entry -> Entry. v1 accepts every kind at version 0.0.1."""
    _PROPOSED.validate(obj)
    assert isinstance(obj, dict)
    kind, version, spec = obj["kind"], obj["apiVersion"], obj["spec"]
    _check_kind(kind, version, "apiVersion")
    if version != "0.0.1":
        raise InvalidEntryError(
            "apiVersion", f"{kind} {version} is a Rekor v2 shape: post it to /api/v2/log/entries"
        )
    if kind == "hashedrekord":
        return hashedrekord.from_v1_spec(spec)
    if kind == "dsse":
        return dsse.from_v1_spec(spec)
    return rekord.from_v1_spec(spec)


def from_v2_request(obj: object) -> Entry:
    """A Rekor v2 ``CreateEntryRequest`` (camelCase or snake_case names) -> Entry."""
    obj = protojson.camel_names(obj)
    _V2_REQUEST.validate(obj)
    assert isinstance(obj, dict)
    if len(obj) != 1:
        raise InvalidEntryError(
            "", "needs exactly one of hashedRekordRequestV002 or dsseRequestV002"
        )
    if "hashedRekordRequestV002" in obj:
        return hashedrekord.from_v2_request(obj["hashedRekordRequestV002"])
    return dsse.from_v2_request(obj["dsseRequestV002"])


def from_body(body: bytes) -> Entry:
    """A canonical body from the log -> Entry, re-deriving digests, fingerprints and identities.

    Refuses bodies that are not RFC 8785 canonical or not a known kind's stored shape. Signatures
    are re-verified where the body holds everything needed (hashedrekord); dsse and rekord bodies
    keep hashes, not payloads, so their signatures were checked at submission only.
    """
    obj = parse_canonical(body)
    kind, version = obj.get("kind"), obj.get("apiVersion")
    if not isinstance(kind, str):
        raise InvalidEntryError("kind", "required string field is missing")
    if not isinstance(version, str):
        raise InvalidEntryError("apiVersion", "required string field is missing")
    _check_kind(kind, version, "apiVersion")
    if kind == "hashedrekord":
        if version == "0.0.1":
            return hashedrekord.from_v1_body(obj, body)
        return hashedrekord.from_v2_body(obj, body)
    if kind == "dsse":
        if version == "0.0.1":
            return dsse.from_v1_body(obj, body)
        return dsse.from_v2_body(obj, body)
    return rekord.from_v1_body(obj, body)


def lookup_keys(body: bytes) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The keys the lookup index files a canonical body under besides its leaf hash —
    ``(artifact digests, key fingerprints, identities)``, exactly as the write path derives them —
    or none for a body that is no known kind (docs/index.md, "Keys")."""
    try:
        entry = from_body(body)
    except InvalidEntryError:
        return (), (), ()
    return entry.artifact_digests, entry.key_fingerprints, entry.identities


def fingerprint_public_key(data: bytes, signature_format: str | None = None) -> str:
    """The key-index fingerprint of a public key or certificate file (PEM, OpenSSH, minisign or
    OpenPGP; guessed from the text unless ``signature_format`` is given): what
    :attr:`Entry.key_fingerprints` holds for entries signed with it."""
    return rekord.key_fingerprint(data, signature_format)[0]
