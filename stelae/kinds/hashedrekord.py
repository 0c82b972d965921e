"""``hashedrekord``: a signature over an artifact's digest, with the signer's key or certificate.

- v0.0.1 is Rekor v1's shape (https://github.com/sigstore/rekor): hex digest, base64 signature,
  base64 of a PEM key or certificate. The stored body keeps the PEM re-encoded canonically (as Rekor
  v1 does with ``CanonicalValue``).
- v0.0.2 is Rekor v2's (``HashedRekordRequestV002`` -> ``HashedRekordLogEntryV002``): base64 digest,
  DER key or certificate, and ``keyDetails`` naming the scheme; the digest length must match it.

Both verify the signature over the digest as a prehash. Ed25519 keys sign as Ed25519ph (SHA-512);
pure ``PKIX_ED25519`` is refused in v0.0.2 because it cannot sign a prehash.
"""

from __future__ import annotations

from typing import Any

from stelae.kinds import keys, protojson
from stelae.kinds.canonical import canonicalize
from stelae.kinds.errors import InvalidEntryError
from stelae.kinds.fields import b64decode, b64decode_proto, b64encode, hexdecode
from stelae.kinds.model import Entry
from stelae.kinds.schema import Schema, b64_string, closed_object, entry_body

KIND = "hashedrekord"
#: Field name of the v0.0.2 spec; early rekor-tiles builds wrote ``hashedRekordV0_0_2``
#: (the rekor-tiles example in tests/vectors/checkpoints.json), which :func:`from_v2_body` still
#: reads so such logs can be audited.
V2_SPEC_KEY = "hashedRekordV002"
V2_SPEC_KEY_OLD = "hashedRekordV0_0_2"

_SIG_MAX = 8_192
_KEY_MAX = 65_536


def _v1_spec_schema(*, body: bool) -> dict[str, Any]:
    hex_pattern = "^[0-9a-f]+$" if body else "^[0-9a-fA-F]+$"
    hash_value = {"type": "string", "maxLength": 128, "pattern": hex_pattern}
    return closed_object(
        {
            "signature": closed_object(
                {
                    "content": b64_string(_SIG_MAX),
                    "publicKey": closed_object({"content": b64_string(_KEY_MAX)}),
                }
            ),
            "data": closed_object(
                {
                    "hash": closed_object(
                        {"algorithm": {"enum": sorted(keys.HASH_SIZES)}, "value": hash_value}
                    )
                }
            ),
        }
    )


V1_SPEC_SCHEMA = _v1_spec_schema(body=False)
V1_BODY_SCHEMA = entry_body(KIND, "0.0.1", _v1_spec_schema(body=True))

_V2_SIGNATURE = closed_object(
    {"content": b64_string(_SIG_MAX, proto=True), "verifier": protojson.VERIFIER_SCHEMA}
)

V2_REQUEST_SCHEMA: dict[str, Any] = closed_object(
    {"digest": b64_string(96, proto=True), "signature": _V2_SIGNATURE}
)


def _v2_body_schema(spec_key: str) -> dict[str, Any]:
    log_entry = closed_object(
        {
            "data": closed_object(
                {
                    "algorithm": {"enum": sorted(protojson.V2_HASH_ALGORITHMS)},
                    "digest": b64_string(96),
                }
            ),
            "signature": _V2_SIGNATURE,
        }
    )
    return entry_body(KIND, "0.0.2", closed_object({spec_key: log_entry}))


_v1_spec = Schema(V1_SPEC_SCHEMA, root="spec")
_v1_body = Schema(V1_BODY_SCHEMA)
_v2_request = Schema(V2_REQUEST_SCHEMA, root="hashedRekordRequestV002")
_v2_body = {key: Schema(_v2_body_schema(key)) for key in (V2_SPEC_KEY, V2_SPEC_KEY_OLD)}


def _entry(version: str, body: bytes, alg: str, digest: bytes, verifier: keys.Verifier) -> Entry:
    return Entry(
        kind=KIND,
        api_version=version,
        body=body,
        artifact_digests=(f"{alg}:{digest.hex()}",),
        key_fingerprints=(verifier.fingerprint,),
        identities=verifier.identities,
    )


def _check_v1(spec: dict[str, Any]) -> tuple[str, bytes, bytes, keys.Verifier]:
    """Decode and verify a schema-valid v0.0.1 spec: (algorithm, digest, signature, verifier)."""
    alg = spec["data"]["hash"]["algorithm"]
    digest = hexdecode(
        spec["data"]["hash"]["value"], "spec.data.hash.value", length=keys.HASH_SIZES[alg]
    )
    signature = b64decode(spec["signature"]["content"], "spec.signature.content")
    key_field = "spec.signature.publicKey.content"
    verifier = keys.load_pem(
        b64decode(spec["signature"]["publicKey"]["content"], key_field), key_field
    )
    schemes = keys.schemes_for(verifier, alg, prehash=True)
    if schemes[0].family == "ed25519ph" and alg != "sha512":
        raise InvalidEntryError(
            "spec.data.hash.algorithm",
            "Ed25519 keys sign hashedrekord digests as Ed25519ph: use sha512",
        )
    keys.verify_digest(verifier, schemes, signature, digest, "spec.signature.content")
    return alg, digest, signature, verifier


def from_v1_spec(spec: object) -> Entry:
    """Rekor v1 proposed ``hashedrekord`` v0.0.1 ``spec`` -> Entry (signature verified)."""
    _v1_spec.validate(spec)
    assert isinstance(spec, dict)
    alg, digest, signature, verifier = _check_v1(spec)
    body = canonicalize(
        {
            "apiVersion": "0.0.1",
            "kind": KIND,
            "spec": {
                "data": {"hash": {"algorithm": alg, "value": digest.hex()}},
                "signature": {
                    "content": b64encode(signature),
                    "publicKey": {"content": b64encode(verifier.canonical_pem())},
                },
            },
        }
    )
    return _entry("0.0.1", body, alg, digest, verifier)


def from_v1_body(obj: dict[str, Any], body: bytes) -> Entry:
    """A stored v0.0.1 body (already known to be canonical JSON) -> Entry, signature re-verified."""
    _v1_body.validate(obj)
    alg, digest, _, verifier = _check_v1(obj["spec"])
    return _entry("0.0.1", body, alg, digest, verifier)


def _check_v2(
    digest: bytes, digest_field: str, signature: dict[str, Any], field: str
) -> tuple[str, bytes, keys.Verifier, dict[str, Any]]:
    """Check a v0.0.2 signature over ``digest``: (hash name, signature, verifier, canonical sig)."""
    verifier, scheme, canonical = protojson.parse_verifier(
        signature["verifier"], f"{field}.signature.verifier"
    )
    if scheme.family == "ed25519":
        raise InvalidEntryError(
            f"{field}.signature.verifier.keyDetails",
            "PKIX_ED25519 has no prehash; hashedrekord v0.0.2 needs PKIX_ED25519_PH",
        )
    want = keys.HASH_SIZES[scheme.hash_name]
    if len(digest) != want:
        raise InvalidEntryError(
            digest_field,
            f"digest is {len(digest)} bytes, but {scheme.key_details} needs a {want}-byte "
            f"{scheme.hash_name} digest",
        )
    content_field = f"{field}.signature.content"
    raw_sig = b64decode_proto(signature["content"], content_field)
    keys.verify_digest(verifier, [scheme], raw_sig, digest, content_field)
    sig_obj = {"content": b64encode(raw_sig), "verifier": canonical}
    return scheme.hash_name, raw_sig, verifier, sig_obj


def from_v2_request(request: object) -> Entry:
    """``HashedRekordRequestV002`` (names already camelCased) -> Entry (signature verified)."""
    _v2_request.validate(request)
    assert isinstance(request, dict)
    field = "hashedRekordRequestV002"
    digest = b64decode_proto(request["digest"], f"{field}.digest")
    alg, _, verifier, sig_obj = _check_v2(digest, f"{field}.digest", request["signature"], field)
    body = canonicalize(
        {
            "apiVersion": "0.0.2",
            "kind": KIND,
            "spec": {
                V2_SPEC_KEY: {
                    "data": protojson.hash_output(alg, digest),
                    "signature": sig_obj,
                }
            },
        }
    )
    return _entry("0.0.2", body, alg, digest, verifier)


def from_v2_body(obj: dict[str, Any], body: bytes) -> Entry:
    """A stored v0.0.2 body -> Entry, signature re-verified. Reads the pre-release spec key too."""
    spec = obj.get("spec")
    key = V2_SPEC_KEY_OLD if isinstance(spec, dict) and V2_SPEC_KEY_OLD in spec else V2_SPEC_KEY
    _v2_body[key].validate(obj)
    entry = obj["spec"][key]
    field = f"spec.{key}"
    alg = protojson.V2_HASH_ALGORITHMS[entry["data"]["algorithm"]]
    digest = b64decode(entry["data"]["digest"], f"{field}.data.digest")
    hash_name, _, verifier, _ = _check_v2(digest, f"{field}.data.digest", entry["signature"], field)
    if hash_name != alg:
        raise InvalidEntryError(
            f"{field}.data.algorithm",
            f"is {entry['data']['algorithm']}, "
            f"but keyDetails needs {keys.V2_HASH_NAMES[hash_name]}",
        )
    return _entry("0.0.2", body, alg, digest, verifier)
