"""Rekor v2 wire details shared by the v0.0.2 kinds: protojson field names and ``Verifier``.

protojson accepts a field's lowerCamelCase JSON name or its proto snake_case name (but not both in
one object) and rejects unknown fields; enums may be given by name or number; ``bytes`` are base64
in either alphabet. Output always uses lowerCamelCase, enum names and padded standard base64, as
``protojson.Marshal`` does, so the canonical body matches Rekor v2's byte for byte.
"""

from __future__ import annotations

from typing import Any

from stelae.kinds import keys
from stelae.kinds.errors import InvalidEntryError
from stelae.kinds.fields import b64decode_proto, b64encode
from stelae.kinds.schema import b64_string, closed_object, join_path

#: snake_case -> lowerCamelCase for every multi-word field of the v2 request messages.
_CAMEL = {
    "hashed_rekord_request_v002": "hashedRekordRequestV002",
    "dsse_request_v002": "dsseRequestV002",
    "raw_bytes": "rawBytes",
    "public_key": "publicKey",
    "x509_certificate": "x509Certificate",
    "key_details": "keyDetails",
    "payload_type": "payloadType",
}


def camel_names(obj: object, path: tuple[str | int, ...] = ()) -> object:
    """A copy of ``obj`` with proto snake_case field names replaced by their JSON names."""
    if isinstance(obj, list):
        return [camel_names(item, (*path, i)) for i, item in enumerate(obj)]
    if not isinstance(obj, dict):
        return obj
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = _CAMEL.get(str(key), str(key))
        if name in out:
            raise InvalidEntryError(
                join_path([*path, name]), f"given twice (as {name!r} and as {key!r})"
            )
        # Only containers recurse (and pay for their path): most values are strings.
        out[name] = camel_names(value, (*path, name)) if isinstance(value, dict | list) else value
    return out


def raw_bytes_schema(max_length: int) -> dict[str, Any]:
    return closed_object({"rawBytes": b64_string(max_length, proto=True)})


#: Schema of ``dev.sigstore.rekor.v2.Verifier``.
VERIFIER_SCHEMA: dict[str, Any] = closed_object(
    {
        "publicKey": raw_bytes_schema(16_384),
        "x509Certificate": raw_bytes_schema(65_536),
        "keyDetails": {"type": ["string", "integer"]},
    },
    required=["keyDetails"],
)


def key_details_name(value: object, field: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        name = keys.KEY_DETAILS_NUMBERS.get(value)
        if name is None:
            raise InvalidEntryError(field, f"unsupported keyDetails number {value}")
        return name
    if isinstance(value, str) and value in keys.KEY_DETAILS:
        return value
    raise InvalidEntryError(
        field,
        f"unsupported keyDetails {value!r}; use one of {', '.join(sorted(keys.KEY_DETAILS))}",
    )


def parse_verifier(
    obj: dict[str, Any], field: str
) -> tuple[keys.Verifier, keys.Scheme, dict[str, Any]]:
    """A schema-valid Verifier message -> (verifier, its scheme, its canonical JSON form)."""
    has_key, has_cert = "publicKey" in obj, "x509Certificate" in obj
    if has_key == has_cert:
        raise InvalidEntryError(field, "needs exactly one of publicKey or x509Certificate")
    scheme = keys.KEY_DETAILS[key_details_name(obj["keyDetails"], f"{field}.keyDetails")]
    if has_key:
        where = f"{field}.publicKey.rawBytes"
        raw = b64decode_proto(obj["publicKey"]["rawBytes"], where)
        verifier = keys.load_der_public_key(raw, where)
        canonical: dict[str, Any] = {"publicKey": {"rawBytes": b64encode(raw)}}
    else:
        where = f"{field}.x509Certificate.rawBytes"
        raw = b64decode_proto(obj["x509Certificate"]["rawBytes"], where)
        verifier = keys.load_der_certificate(raw, where)
        canonical = {"x509Certificate": {"rawBytes": b64encode(raw)}}
    keys.check_scheme(verifier, scheme, f"{field}.keyDetails")
    canonical["keyDetails"] = scheme.key_details
    return verifier, scheme, canonical


def hash_output(hash_name: str, digest: bytes) -> dict[str, str]:
    """``HashOutput`` as protojson writes it."""
    return {"algorithm": keys.V2_HASH_NAMES[hash_name], "digest": b64encode(digest)}


V2_HASH_ALGORITHMS = {v: k for k, v in keys.V2_HASH_NAMES.items()}
