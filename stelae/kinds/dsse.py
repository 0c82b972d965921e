"""``dsse``: a DSSE envelope (an attestation) signed by one or more keys or certificates.

- v0.0.1 is Rekor v1's shape: the request carries the envelope as a JSON *string* and the
  verifiers as base64 PEM; the stored body keeps ``envelopeHash`` (SHA-256 of that string),
  ``payloadHash`` and, per signature sorted by its base64 text, the verifier that checked it.
  The payload itself is not stored.
- v0.0.2 is the (now deprecated) Rekor v2 shape (https://github.com/sigstore/rekor-tiles):
  ``dsseRequestV002`` with a protojson envelope and ``Verifier`` messages; the body keeps
  ``payloadHash`` and the signatures sorted by raw bytes, each with its verifier.

Every envelope signature must verify over the DSSE pre-authentication encoding with some verifier,
and every verifier must verify at least one signature (an unused key would be indexed as a signer).
At most 10 signatures and 10 verifiers.
"""

from __future__ import annotations

import hashlib
from typing import Any

from stelae.kinds import keys, protojson
from stelae.kinds.canonical import canonicalize, load_json
from stelae.kinds.errors import InvalidEntryError, SignatureError
from stelae.kinds.fields import b64decode, b64decode_proto, b64encode
from stelae.kinds.model import Entry, dedupe
from stelae.kinds.schema import Schema, b64_string, closed_object, entry_body, sha256_hash

KIND = "dsse"
MAX_SIGNATURES = 10
MAX_VERIFIERS = 10
#: Bound on the envelope before it is parsed (the payload is hashed, never stored).
MAX_ENVELOPE_CHARS = 16 * 1024 * 1024

_SIG_MAX = 8_192


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: ``DSSEv1 SP len(type) SP type SP len(body) SP body``."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def _envelope_schema() -> dict[str, Any]:
    """A DSSE envelope; payload and sigs may use either base64 alphabet (DSSE spec)."""
    return closed_object(
        {
            "payload": {
                "type": "string",
                "maxLength": MAX_ENVELOPE_CHARS,
                "pattern": r"^[A-Za-z0-9+/_-]*={0,2}$",
            },
            "payloadType": {"type": "string", "minLength": 1, "maxLength": 1024},
            "signatures": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_SIGNATURES,
                "items": closed_object(
                    {
                        "sig": b64_string(_SIG_MAX, proto=True),
                        "keyid": {"type": "string", "maxLength": 1024},
                    },
                    required=["sig"],
                ),
            },
        }
    )


def _signatures_schema(signature: dict[str, Any], verifier: dict[str, Any]) -> dict[str, Any]:
    """The stored body's signatures: each names the verifier that checked it."""
    return {
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_SIGNATURES,
        "items": closed_object(signature | {"verifier": verifier}),
    }


V1_SPEC_SCHEMA: dict[str, Any] = closed_object(
    {
        "proposedContent": closed_object(
            {
                "envelope": {"type": "string", "minLength": 1, "maxLength": MAX_ENVELOPE_CHARS},
                "verifiers": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_VERIFIERS,
                    "items": b64_string(65_536),
                },
            }
        ),
        # Output fields of Rekor v1's dsse schema (the log computes them). sigstore-python's v1
        # client sends them as null beside proposedContent, as Rekor's Go client model does; a
        # value the log would ignore is refused rather than silently dropped.
        "envelopeHash": {"type": "null"},
        "payloadHash": {"type": "null"},
        "signatures": {"type": "null"},
    },
    required=["proposedContent"],
)

V1_BODY_SCHEMA: dict[str, Any] = entry_body(
    KIND,
    "0.0.1",
    closed_object(
        {
            "envelopeHash": sha256_hash(),
            "payloadHash": sha256_hash(),
            "signatures": _signatures_schema(
                {"signature": b64_string(_SIG_MAX, proto=True)}, b64_string(65_536)
            ),
        }
    ),
)

V2_REQUEST_SCHEMA: dict[str, Any] = closed_object(
    {
        "envelope": _envelope_schema(),
        "verifiers": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_VERIFIERS,
            "items": protojson.VERIFIER_SCHEMA,
        },
    }
)

V2_BODY_SCHEMA: dict[str, Any] = entry_body(
    KIND,
    "0.0.2",
    closed_object(
        {
            "dsseV002": closed_object(
                {
                    "payloadHash": closed_object(
                        {"algorithm": {"const": "SHA2_256"}, "digest": b64_string(64)}
                    ),
                    "signatures": _signatures_schema(
                        {"content": b64_string(_SIG_MAX)}, protojson.VERIFIER_SCHEMA
                    ),
                }
            )
        }
    ),
)

_v1_spec = Schema(V1_SPEC_SCHEMA, root="spec")
_v1_envelope = Schema(_envelope_schema(), root="spec.proposedContent.envelope")
_v1_body = Schema(V1_BODY_SCHEMA)
_v2_request = Schema(V2_REQUEST_SCHEMA, root="dsseRequestV002")
_v2_body = Schema(V2_BODY_SCHEMA)


def _match(
    message: bytes,
    signatures: list[tuple[str, bytes]],
    verifiers: list[tuple[str, keys.Verifier, list[keys.Scheme]]],
) -> list[int]:
    """For each (field, raw signature), the index of the first verifier that verifies it.

    Raises SignatureError naming a signature no verifier accepts, or a verifier that verifies
    nothing.
    """
    seen: dict[bytes, str] = {}
    for field, raw in signatures:
        if raw in seen:
            raise InvalidEntryError(field, f"duplicate signature (same as {seen[raw]})")
        seen[raw] = field
    chosen: list[int] = []
    for field, raw in signatures:
        for i, (_, verifier, schemes) in enumerate(verifiers):
            if keys.verifies_message(verifier, schemes, raw, message):
                chosen.append(i)
                break
        else:
            raise SignatureError(
                field, "does not verify over the DSSE PAE with any of the given verifiers"
            )
    for i, (field, _, _) in enumerate(verifiers):
        if i not in chosen:
            raise SignatureError(field, "verifies none of the envelope's signatures")
    return chosen


def _decode_envelope(envelope: dict[str, Any], where: str) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The payload and the (field, raw signature) pairs of a schema-checked DSSE envelope found
    at ``where``; either base64 alphabet is accepted, as the DSSE spec allows."""
    payload = b64decode_proto(envelope["payload"], f"{where}.payload")
    signatures = []
    for i, s in enumerate(envelope["signatures"]):
        field = f"{where}.signatures[{i}].sig"
        signatures.append((field, b64decode_proto(s["sig"], field)))
    return payload, signatures


def _entry(version: str, body: bytes, digests: list[str], verifiers: list[keys.Verifier]) -> Entry:
    return Entry(
        kind=KIND,
        api_version=version,
        body=body,
        artifact_digests=dedupe(digests),
        key_fingerprints=dedupe([v.fingerprint for v in verifiers]),
        identities=dedupe([i for v in verifiers for i in v.identities]),
    )


def from_v1_spec(spec: object) -> Entry:
    """Rekor v1 proposed ``dsse`` v0.0.1 ``spec`` -> Entry (every signature verified)."""
    _v1_spec.validate(spec)
    assert isinstance(spec, dict)
    content = spec["proposedContent"]
    env_field = "spec.proposedContent.envelope"
    envelope_text: str = content["envelope"]
    try:
        envelope = load_json(envelope_text)
    except InvalidEntryError as err:
        raise InvalidEntryError(env_field, f"is not a DSSE envelope: {err.problem}") from err
    _v1_envelope.validate(envelope)
    assert isinstance(envelope, dict)
    payload, signatures = _decode_envelope(envelope, env_field)
    verifiers = []
    for i, text in enumerate(content["verifiers"]):
        field = f"spec.proposedContent.verifiers[{i}]"
        verifier = keys.load_pem(b64decode(text, field), field)
        verifiers.append((field, verifier, keys.message_schemes(verifier)))
    chosen = _match(pae(envelope["payloadType"], payload), signatures, verifiers)
    # Rekor v1 stores each signature as the envelope's text and sorts by it.
    stored = sorted((sig["sig"], i) for sig, i in zip(envelope["signatures"], chosen, strict=True))
    payload_hash = hashlib.sha256(payload).hexdigest()
    envelope_hash = hashlib.sha256(envelope_text.encode("utf-8")).hexdigest()
    body = canonicalize(
        {
            "apiVersion": "0.0.1",
            "kind": KIND,
            "spec": {
                "envelopeHash": {"algorithm": "sha256", "value": envelope_hash},
                "payloadHash": {"algorithm": "sha256", "value": payload_hash},
                "signatures": [
                    {"signature": sig, "verifier": b64encode(verifiers[i][1].canonical_pem())}
                    for sig, i in stored
                ],
            },
        }
    )
    used = [verifiers[i][1] for _, i in stored]  # stored order, as from_body sees it
    return _entry("0.0.1", body, [f"sha256:{payload_hash}", f"sha256:{envelope_hash}"], used)


def from_v1_body(obj: dict[str, Any], body: bytes) -> Entry:
    """A stored v0.0.1 body -> Entry (the payload is not stored, so nothing to re-verify)."""
    _v1_body.validate(obj)
    spec = obj["spec"]
    verifiers = []
    for i, sig in enumerate(spec["signatures"]):
        field = f"spec.signatures[{i}].verifier"
        verifiers.append(keys.load_pem(b64decode(sig["verifier"], field), field))
    digests = [f"sha256:{spec['payloadHash']['value']}", f"sha256:{spec['envelopeHash']['value']}"]
    return _entry("0.0.1", body, digests, verifiers)


def from_v2_request(request: object) -> Entry:
    """``DSSERequestV002`` (names already camelCased) -> Entry (every signature verified)."""
    _v2_request.validate(request)
    assert isinstance(request, dict)
    root = "dsseRequestV002"
    envelope = request["envelope"]
    payload, signatures = _decode_envelope(envelope, f"{root}.envelope")
    verifiers = []
    canonical = []
    for i, v in enumerate(request["verifiers"]):
        field = f"{root}.verifiers[{i}]"
        verifier, scheme, form = protojson.parse_verifier(v, field)
        verifiers.append((field, verifier, [scheme]))
        canonical.append(form)
    chosen = _match(pae(envelope["payloadType"], payload), signatures, verifiers)
    stored = sorted(
        ((raw, i) for (_, raw), i in zip(signatures, chosen, strict=True)), key=lambda p: p[0]
    )
    payload_hash = hashlib.sha256(payload).digest()
    body = canonicalize(
        {
            "apiVersion": "0.0.2",
            "kind": KIND,
            "spec": {
                "dsseV002": {
                    "payloadHash": protojson.hash_output("sha256", payload_hash),
                    "signatures": [
                        {"content": b64encode(raw), "verifier": canonical[i]} for raw, i in stored
                    ],
                }
            },
        }
    )
    used = [verifiers[i][1] for _, i in stored]
    return _entry("0.0.2", body, [f"sha256:{payload_hash.hex()}"], used)


def from_v2_body(obj: dict[str, Any], body: bytes) -> Entry:
    """A stored v0.0.2 body -> Entry (the payload is not stored, so nothing to re-verify)."""
    _v2_body.validate(obj)
    spec = obj["spec"]["dsseV002"]
    digest = b64decode(spec["payloadHash"]["digest"], "spec.dsseV002.payloadHash.digest")
    if len(digest) != 32:
        raise InvalidEntryError("spec.dsseV002.payloadHash.digest", "is not a SHA-256 digest")
    verifiers = []
    for i, sig in enumerate(spec["signatures"]):
        verifier, _, _ = protojson.parse_verifier(
            sig["verifier"], f"spec.dsseV002.signatures[{i}].verifier"
        )
        verifiers.append(verifier)
    return _entry("0.0.2", body, [f"sha256:{digest.hex()}"], verifiers)
