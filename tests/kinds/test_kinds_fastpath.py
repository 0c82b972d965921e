"""The write path's shortcuts against the slow paths they stand in for.

- Every Schema the kinds define: the compiled check (fastjsonschema) never passes what jsonschema
  refuses, on generated near-valid instances; on real requests and bodies the two agree exactly;
  where they differ otherwise it is one of the documented gaps (a final newline, an integral
  float), and the entry's error is still jsonschema's or the decoders'.
- canonical.jcs against rfc8785 on generated values, inside and outside the json.dumps subset.
- load_json against a naive reference (the obvious duplicate-key hook and json.loads).
- The verifier caches: shared results for the same bytes, errors that name the field asked about.
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
from collections.abc import Iterator
from typing import Any

import pytest
import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stelae import kinds
from stelae.client import signing
from stelae.kinds import canonical, dsse, hashedrekord, keys, rekord
from stelae.kinds.schema import Schema, compilable
from tests.support import certificates
from tests.support.vectors import load_vectors

# --- schemas ------------------------------------------------------------------------------------


def _find_schemas() -> dict[str, Schema]:
    """Every Schema the kinds modules hold, directly or in a dict (hashedrekord's v2 bodies)."""
    found: dict[str, Schema] = {}
    for module in (kinds, hashedrekord, dsse, rekord):
        for name, value in vars(module).items():
            if isinstance(value, Schema):
                found[f"{module.__name__}.{name}"] = value
            elif isinstance(value, dict):
                for key, sub in value.items():
                    if isinstance(sub, Schema):
                        found[f"{module.__name__}.{name}[{key}]"] = sub
    return found


SCHEMAS = _find_schemas()

_JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    _JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
TRICKY_STRINGS = [
    "",
    "=",
    "==",
    "A",
    "AA",
    "AAA",
    "AAAA",
    "AAAA\n",
    "AAA=\n",
    "QUJD",
    "QUJD=",
    "QUJD==",
    "QUJD===",
    "qu-_",
    "qu-_\n",
    "00ff",
    "00FF",
    "0" * 64,
    "0" * 64 + "\n",
    "sha256",
    "SHA2_256",
    "PKIX_ECDSA_P256_SHA_256",
    "\n",
    "é",
    "\ud800",
    " AAAA",
    "AAAA ",
]


def _types(schema: dict[str, Any]) -> list[str]:
    types = schema.get("type", [])
    return [types] if isinstance(types, str) else list(types)


def _boundary_strings(schema: dict[str, Any]) -> list[str]:
    out = []
    for bound in (schema.get("minLength"), schema.get("maxLength")):
        if bound is not None and bound <= 70_000:
            out += ["A" * n for n in (bound - 1, bound, bound + 1) if n >= 0]
            out += ["A" * bound + "\n"]
    return out


def _perturbed(schema: dict[str, Any], valid: object) -> st.SearchStrategy[Any]:
    """Something a little (or very) wrong in place of ``valid``, an instance of ``schema``."""
    options: list[st.SearchStrategy[Any]] = [
        JSON_VALUES,
        st.sampled_from([*TRICKY_STRINGS, *_boundary_strings(schema), 5.0, 1.5, True, 10**30]),
    ]
    if isinstance(valid, dict):
        if valid:
            options.append(st.sampled_from(sorted(valid)).map(lambda k: _without(valid, k)))
        options.append(st.just({**valid, "unexpected": 1}))
    if isinstance(valid, list):
        options.append(st.just([]))
        options.append(st.just(valid * 12))
    if isinstance(valid, str):
        options.append(st.sampled_from([valid + "\n", valid + "=", "=" + valid, valid.upper()]))
    for name in ("enum", "const"):
        if name in schema:
            values = schema[name] if name == "enum" else [schema[name]]
            options.append(
                st.sampled_from([f"{v}\n" for v in values] + [v.upper() for v in values])
            )
    return st.one_of(options)


def _without(obj: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != key}


@st.composite
def near(draw: st.DrawFn, schema: dict[str, Any]) -> object:
    """An instance of ``schema`` (valid, or with up to two wrong nodes anywhere): a valid one
    is built node by node, and a node may be swapped for a perturbed one."""
    left = [draw(st.sampled_from([0, 1, 1, 2]))]

    def node(sub: object) -> object:
        value = valid(sub)
        if left[0] and isinstance(sub, dict) and draw(st.integers(0, 5)) == 0:
            left[0] -= 1
            return draw(_perturbed(sub, value))
        return value

    def valid(sub: object) -> object:
        if not isinstance(sub, dict) or not sub:
            return draw(JSON_VALUES)
        if "enum" in sub:
            return draw(st.sampled_from(sub["enum"]))
        if "const" in sub:
            return sub["const"]
        kind = draw(st.sampled_from(_types(sub) or ["object"]))
        if kind == "object":
            required = set(sub.get("required", ()))
            return {
                key: node(prop)
                for key, prop in sub.get("properties", {}).items()
                if key in required or draw(st.booleans())
            }
        if kind == "array":
            low, high = sub.get("minItems", 0), min(sub.get("maxItems", 3), 3)
            return [node(sub.get("items", {})) for _ in range(draw(st.integers(low, high)))]
        if kind == "integer":
            return draw(st.integers(0, 20))
        return _valid_string(draw, sub)

    return node(schema)


def _valid_string(draw: st.DrawFn, sub: dict[str, Any]) -> str:
    """A string for the string schema ``sub``: its length bounds, and its pattern if any."""
    low, high = sub.get("minLength", 0), sub.get("maxLength", 64)
    if "pattern" in sub:
        # Mostly whole matches; sometimes re.search ones, where Python's "$" lets hypothesis
        # add a final newline (the documented gap).
        fullmatch = draw(st.sampled_from([True, True, True, False]))
        pattern = st.from_regex(sub["pattern"], fullmatch=fullmatch)
        text: str = draw(pattern.filter(lambda t: low <= len(t) <= high))
        return text
    return draw(st.text(min_size=low, max_size=min(high, 16)))


@functools.cache
def _strategy(name: str) -> st.SearchStrategy[Any]:
    return near(SCHEMAS[name].schema)


def _documented_gap(value: object) -> bool:
    """What jsonschema passes and the compiled check refuses: a string with a final newline
    (Python's "$"; fastjsonschema anchors with "\\Z") or an integral float for "integer"."""
    if isinstance(value, str):
        return value.endswith("\n")
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, dict):
        return any(_documented_gap(v) for v in value.values())
    if isinstance(value, list):
        return any(_documented_gap(v) for v in value)
    return False


def test_schemas_found() -> None:
    # The write path's schemas must all be there, and all compile (else they are slow again).
    for name in (
        "stelae.kinds._V2_REQUEST",
        "stelae.kinds._PROPOSED",
        "stelae.kinds.hashedrekord._v2_request",
        "stelae.kinds.hashedrekord._v1_spec",
        "stelae.kinds.dsse._v2_request",
        "stelae.kinds.dsse._v1_spec",
        "stelae.kinds.rekord._v1_spec",
    ):
        assert name in SCHEMAS
    assert len(SCHEMAS) >= 14
    for name, schema in SCHEMAS.items():
        assert compilable(schema.schema), name


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(data=st.data())
def test_compiled_check_never_passes_what_jsonschema_refuses(
    name: str, data: st.DataObject
) -> None:
    schema = SCHEMAS[name]
    instance = data.draw(_strategy(name))
    compiled, reference = schema.passes_compiled(instance), schema.passes_jsonschema(instance)
    if compiled:
        assert reference, f"compiled check passed what jsonschema refuses: {instance!r}"
    elif reference:
        assert _documented_gap(instance), f"undocumented difference: {instance!r}"


def _nodes(value: object) -> Iterator[object]:
    yield value
    if isinstance(value, dict):
        for sub in value.values():
            yield from _nodes(sub)
    elif isinstance(value, list):
        for sub in value:
            yield from _nodes(sub)


def _requests() -> list[dict[str, Any]]:
    """Valid requests of every kind and shape (v1 proposed entries, v2 requests) and, for
    dsse, the envelope on its own."""
    docs: list[dict[str, Any]] = []
    artifact = b"fast path artifact\n"
    for kind in ("ecdsa-p256", "ed25519", "rsa"):
        key = signing.generate_key(kind, rsa_bits=2048)
        cert = certificates.self_signed_certificate(key, "a@example.com")
        alg, digest = signing.digest(key, artifact)
        sig = signing.sign_digest(key, digest)
        envelope = signing.dsse_envelope(b'{"x":1}', "application/vnd.in-toto+json", [key])
        for verifier in (key, cert):
            v2_details = None if kind != "ed25519" else ["PKIX_ED25519"]
            docs += [
                signing.build_v2_hashedrekord(sig, verifier, digest),
                signing.build_v1_hashedrekord(sig, verifier, digest_bytes=digest, algorithm=alg),
                signing.build_dsse(envelope, [verifier], version="0.0.1"),
                signing.build_dsse(envelope, [verifier], version="0.0.2", key_details=v2_details),
                envelope,
            ]
        if kind != "ed25519":
            signature = signing.sign_artifact(key, artifact)
            docs.append(signing.build_rekord(artifact, signature, cert))
    return docs


@functools.cache
def _entries() -> tuple[kinds.Entry, ...]:
    """The entries the write path builds from :func:`_requests`."""
    out = []
    for doc in _requests():
        if "payload" in doc:
            continue
        parsed = kinds.load_json(json.dumps(doc))
        out.append((kinds.from_v1_proposed if "kind" in doc else kinds.from_v2_request)(parsed))
    return tuple(out)


def _real_documents() -> list[object]:
    """Valid requests, their bodies, and the Rekor vector bodies."""
    bodies = [json.loads(entry.body) for entry in _entries()]
    vectors = load_vectors("kinds/rekor_bodies.json")
    for vector in vectors.values():
        if isinstance(vector, dict) and "body_b64" in vector:
            bodies.append(json.loads(base64.b64decode(vector["body_b64"])))
    return [*_requests(), *bodies]


def test_compiled_check_agrees_on_real_documents() -> None:
    """Each sub-object of each real document that jsonschema passes, the compiled check passes
    too (so the write path really takes the shortcut); every schema sees some valid document."""
    nodes = [n for doc in _real_documents() for n in _nodes(doc) if isinstance(n, dict)]
    for name, schema in SCHEMAS.items():
        passed = 0
        for node in nodes:
            if schema.passes_jsonschema(node):
                assert schema.passes_compiled(node), (name, node)
                passed += 1
            else:
                assert not schema.passes_compiled(node), (name, node)
        assert passed, f"no real document exercises {name}"


def test_documented_gap_keeps_the_old_error() -> None:
    """A digest with a final newline passes jsonschema's pattern but not the compiled one; the
    request is then refused exactly as before, by the base64 decoder."""
    key = signing.generate_key("ecdsa-p256")
    _, digest = signing.digest(key, b"x")
    request = signing.build_v2_hashedrekord(signing.sign_digest(key, digest), key, digest)
    inner = request["hashedRekordRequestV002"]
    inner["digest"] += "\n"
    schema = SCHEMAS["stelae.kinds.hashedrekord._v2_request"]
    assert schema.passes_jsonschema(inner)
    assert not schema.passes_compiled(inner)
    with pytest.raises(kinds.InvalidEntryError) as caught:
        kinds.from_v2_request(request)
    assert caught.value.field == "hashedRekordRequestV002.digest"
    assert caught.value.problem.startswith("is not valid base64: ")


# --- canonical JSON -----------------------------------------------------------------------------


def _same_as_rfc8785(value: object) -> None:
    try:
        want: bytes | type[Exception] = rfc8785.dumps(value)  # type: ignore[arg-type]
    except Exception as err:
        want = type(err)
    try:
        got: bytes | type[Exception] = canonical.jcs(value)
    except Exception as err:
        got = type(err)
    assert got == want, value


_ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=8)
_PRINTABLE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=10)
ANY_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.sampled_from([2**53 - 1, 2**53, -(2**53) + 1, -(2**53)])
    | st.floats()
    | _ANY_TEXT
    | _PRINTABLE,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner)
        | st.dictionaries(_ANY_TEXT, inner, max_size=4)
        | st.dictionaries(_PRINTABLE, inner, max_size=4)
        | st.dictionaries(st.integers(0, 3), inner, max_size=2)
    ),
    max_leaves=12,
)
PLAIN_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | _PRINTABLE,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_PRINTABLE, inner, max_size=5),
    max_leaves=16,
)


@settings(max_examples=400, deadline=None)
@given(ANY_VALUES)
def test_jcs_matches_rfc8785_on_any_value(value: object) -> None:
    _same_as_rfc8785(value)


@settings(max_examples=400, deadline=None)
@given(PLAIN_VALUES)
def test_jcs_fast_path_matches_rfc8785(value: object) -> None:
    assert canonical.plain_json(value)
    _same_as_rfc8785(value)


@pytest.mark.parametrize(
    "value",
    [
        1.0,
        0.5,
        2**53,
        -(2**53),
        "é",
        "\x7f",
        "\x00",
        "\u2028",
        "\ud800",
        {"\U0001f600": 1, "\uffff": 2},  # UTF-16 order differs from code point order
        {"é": 1, "e": 2},
        {"a": "é"},
        {"a": "\ud800"},
        {"a": "\x00", "b": "\t"},
        {"a": ["é"]},
        {"a": {"b": "\U0001f600"}},
        {1: "a"},
        {None: "a"},
        ("a",),
        [1, 2.0],
        {"a": {"b": [1.5]}},
        b"bytes",
    ],
    ids=repr,
)
def test_jcs_falls_back_where_json_dumps_differs(value: object) -> None:
    assert not canonical.plain_json(value)
    _same_as_rfc8785(value)


@pytest.mark.parametrize("depth", [100, 400, 700, 5000])
def test_jcs_matches_rfc8785_when_deeply_nested(depth: int) -> None:
    value: list[Any] = []
    inner = value
    for _ in range(depth):
        inner.append([])
        inner = inner[0]
    _same_as_rfc8785({"a": value, "b": "x"})


def test_write_path_bodies_take_the_fast_path() -> None:
    assert len(_entries()) >= 20
    for entry in _entries():
        body = json.loads(entry.body)
        assert canonical.plain_json(body), entry.body
        assert canonical.jcs(body) == rfc8785.dumps(body) == entry.body


# --- load_json ----------------------------------------------------------------------------------


def _reference_load(raw: str) -> object:
    """The obvious strict parse: json.loads with a dict-building duplicate check."""

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise kinds.InvalidEntryError(key, "duplicate JSON object key")
            out[key] = value
        return out

    def constant(name: str) -> object:
        raise kinds.InvalidEntryError("", f"{name} is not JSON")

    try:
        return json.loads(raw, object_pairs_hook=pairs_hook, parse_constant=constant)
    except json.JSONDecodeError as err:
        raise kinds.InvalidEntryError("", f"not valid JSON: {err}") from err


def _outcome(load: Any, raw: str | bytes) -> object:
    try:
        return ("ok", load(raw))
    except kinds.InvalidEntryError as err:
        return ("error", err.field, err.problem)


_KEYS = st.sampled_from(["a", "b", "c", "hashedRekordRequestV002"])


@st.composite
def json_texts(draw: st.DrawFn) -> str:
    """JSON-ish text: objects that may repeat keys at any depth, constants, BOMs, junk."""

    def value(depth: int) -> str:
        kind = draw(st.integers(0, 5 if depth < 3 else 2))
        if kind == 0:
            return draw(st.sampled_from(["1", '"x"', "null", "NaN", "-Infinity", "1.5", "[]"]))
        if kind <= 2:
            return json.dumps(draw(st.text(max_size=4)))
        pairs = [
            f"{json.dumps(draw(_KEYS))}: {value(depth + 1)}" for _ in range(draw(st.integers(0, 4)))
        ]
        return "{" + ", ".join(pairs) + "}"

    text = value(0)
    prefix = draw(st.sampled_from(["", "", "", "\ufeff", " ", " \ufeff"]))
    suffix = draw(st.sampled_from(["", "", "", " ", "x", "}"]))
    return prefix + text + suffix


@settings(max_examples=500, deadline=None)
@given(json_texts())
def test_load_json_matches_reference(raw: str) -> None:
    assert _outcome(kinds.load_json, raw) == _outcome(_reference_load, raw)
    encoded = raw.encode("utf-8")
    assert _outcome(kinds.load_json, encoded) == _outcome(_reference_load, raw)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"a":1,"a":2}', "a"),
        ('{"a":{"b":1,"b":2}}', "b"),
        ('{"x":1,"y":2,"x":3,"y":4}', "x"),
        ('{"a":1,"a":{"b":1,"b":1}}', "b"),  # the inner object is built first
    ],
)
def test_load_json_names_the_first_duplicate(raw: str, field: str) -> None:
    with pytest.raises(kinds.InvalidEntryError) as caught:
        kinds.load_json(raw)
    assert (caught.value.field, caught.value.problem) == (field, "duplicate JSON object key")


def test_load_json_refuses_a_bom_as_json_loads_does() -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads("\ufeff{}")
    with pytest.raises(kinds.InvalidEntryError) as caught:
        kinds.load_json(b"\xef\xbb\xbf{}")
    assert str(caught.value) == f"not valid JSON: {expected.value}"


# --- verifier caches ----------------------------------------------------------------------------


def test_same_key_bytes_share_one_verifier() -> None:
    key = signing.generate_key("ecdsa-p256")
    der = keys.load_pem(signing.public_key_pem(key), "k").spki_der
    first = keys.load_der_public_key(der, "a")
    again = keys.load_der_public_key(bytes(der), "b")
    assert again is first
    assert first.fingerprint == kinds.fingerprint_public_key(signing.public_key_pem(key))
    assert keys.load_pem(signing.public_key_pem(key), "c") is keys.load_pem(
        signing.public_key_pem(key), "d"
    )


def _error(load: Any, data: bytes, field: str) -> tuple[str, str]:
    with pytest.raises(kinds.InvalidEntryError) as caught:
        load(data, field)
    return caught.value.field, caught.value.problem


def _certificate_without_san() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "no identity")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def test_cached_loaders_name_each_callers_field() -> None:
    """Only successes are cached: a refusal, including of bytes that parse (a secp256k1 key, a
    certificate with no identity), names whichever field it was asked about."""
    k1 = (
        ec.generate_private_key(ec.SECP256K1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    k1_pem = (
        ec.generate_private_key(ec.SECP256K1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    no_san = _certificate_without_san()
    for field in ("first.field", "second.field"):
        assert _error(keys.load_der_public_key, k1, field) == (
            field,
            "unsupported elliptic curve secp256k1",
        )
        assert _error(keys.load_pem, k1_pem, field) == (
            field,
            "unsupported elliptic curve secp256k1",
        )
        assert _error(keys.load_der_certificate, no_san, field) == (
            field,
            "certificate has no subjectAltName email or URI identity to index",
        )
        assert _error(keys.load_der_public_key, b"junk", field)[0] == field
        assert _error(keys.load_der_certificate, b"junk", field)[0] == field
        assert _error(keys.load_pem, b"junk", field) == (
            field,
            "must be a PEM 'PUBLIC KEY' or 'CERTIFICATE' (base64 of the PEM text)",
        )
