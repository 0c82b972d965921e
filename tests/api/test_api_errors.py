"""Bad requests over real HTTP: each gets the 4xx it deserves with a JSON message naming the
problem (and the field, where there is one), never a 500, and leaves the log untouched.

One row per request; after each, the log directory is compared file by file
(paths and bytes) with a snapshot taken before it.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from stelae.client import signing
from stelae.kinds.fields import b64encode
from tests.support.api import LiveLog, served, snapshot

V1, V2 = "/api/v1/log/entries", "/api/v2/log/entries"
JSON = {"Content-Type": "application/json"}

_KEY = signing.generate_key("ecdsa-p256")
_OTHER = signing.generate_key("ecdsa-p256")
_ED = signing.generate_key("ed25519")
ARTIFACT = b"the artifact the bad requests talk about\n"
_DIGEST = signing.digest(_KEY, ARTIFACT)[1]
GOOD_V2 = signing.build_v2_hashedrekord(signing.sign_digest(_KEY, _DIGEST), _KEY, _DIGEST)
GOOD_V1 = signing.build_v1_hashedrekord(
    signing.sign_artifact(_KEY, ARTIFACT), _KEY, artifact=ARTIFACT
)
_ENVELOPE = signing.dsse_envelope(b'{"a":1}', "application/json", [_KEY])
GOOD_DSSE_V2 = signing.build_dsse(_ENVELOPE, [_KEY], version="0.0.2")
GOOD_DSSE_V1 = signing.build_dsse(_ENVELOPE, [_KEY], version="0.0.1")
GOOD_REKORD = signing.build_rekord(ARTIFACT, signing.sign_message(_KEY, ARTIFACT), _KEY)
B64 = b64encode


def edit(base: dict[str, Any], path: str, value: Any) -> bytes:
    """``base`` with the value at dotted ``path`` replaced (``...`` deletes it), as JSON."""
    obj = copy.deepcopy(base)
    *parents, last = path.split(".")
    node: Any = obj
    for name in parents:
        node = node[int(name)] if isinstance(node, list) else node[name]
    if value is ...:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return json.dumps(obj).encode()


def edit_obj(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(edit(base, path, value))
    return result


HR = "hashedRekordRequestV002"
SIG = f"{HR}.signature"


@dataclass(frozen=True)
class Bad:
    id: str
    body: bytes | None
    status: int
    message: str  # a regex the message must match (re.search, case-insensitive)
    field: str | None = None  # the field the answer must name, when there is one
    path: str = V2
    method: str = "POST"
    headers: dict[str, str] | None = None  # default: Content-Type: application/json


def _other_sig_v2() -> bytes:
    wrong = signing.sign_digest(_OTHER, _DIGEST)
    return edit(GOOD_V2, f"{SIG}.content", B64(wrong))


ROWS: list[Bad] = [
    # -- the body is not a JSON object ---------------------------------------------------------
    Bad("malformed-json", b'{"hashedRekordRequestV002": ', 400, "not valid JSON"),
    Bad("trailing-garbage", json.dumps(GOOD_V2).encode() + b"}", 400, "not valid JSON"),
    Bad("json-array", b"[]", 400, "object"),
    Bad("json-string", b'"hello"', 400, "object"),
    Bad("json-null", b"null", 400, "object"),
    Bad("empty-body", b"", 400, "empty"),
    Bad("whitespace-body", b" \n\t ", 400, "empty"),
    Bad("not-utf8", b'{"a": "\xff"}', 400, "UTF-8"),
    Bad("duplicate-keys", b'{"%s": {}, "%s": {}}' % (HR.encode(), HR.encode()), 400, "duplicate"),
    Bad("nan", b'{"hashedRekordRequestV002": NaN}', 400, "NaN"),
    Bad("deep-nesting", b"[" * 100_000 + b"]" * 100_000, 400, "deep"),
    # -- transport -------------------------------------------------------------------------------
    Bad("no-content-type", json.dumps(GOOD_V2).encode(), 415, "Content-Type", headers={}),
    Bad(
        "text-plain",
        json.dumps(GOOD_V2).encode(),
        415,
        "application/json.*text/plain",
        headers={"Content-Type": "text/plain"},
    ),
    Bad(
        "form-encoded",  # what curl --data sends without -H
        json.dumps(GOOD_V2).encode(),
        415,
        "application/x-www-form-urlencoded",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ),
    Bad("oversize", b'{"x": "' + b"a" * (4 * 1024 * 1024) + b'"}', 413, "limit is 4194304"),
    # -- the v2 request's shape ------------------------------------------------------------------
    Bad("v2-empty-object", b"{}", 400, "exactly one of"),
    Bad("v2-unknown-top-field", edit(GOOD_V2, "extra", 1), 400, "extra", "extra"),
    Bad(
        "v2-both-requests",
        edit(GOOD_V2, "dsseRequestV002", GOOD_DSSE_V2["dsseRequestV002"]),
        400,
        "exactly one of",
    ),
    Bad("v2-request-null", edit(GOOD_V2, HR, None), 400, "object", HR),
    Bad("v2-request-string", edit(GOOD_V2, HR, "x"), 400, "object", HR),
    Bad("v2-unknown-field", edit(GOOD_V2, f"{HR}.color", "red"), 400, "color", f"{HR}.color"),
    Bad("v2-digest-missing", edit(GOOD_V2, f"{HR}.digest", ...), 400, "digest", f"{HR}.digest"),
    Bad("v2-digest-number", edit(GOOD_V2, f"{HR}.digest", 5), 400, "string", f"{HR}.digest"),
    Bad("v2-digest-bad-base64", edit(GOOD_V2, f"{HR}.digest", "!!"), 400, "base64", f"{HR}.digest"),
    Bad(
        "v2-digest-short",
        edit(GOOD_V2, f"{HR}.digest", B64(_DIGEST[:16])),
        400,
        "16 bytes|length",
        f"{HR}.digest",
    ),
    Bad(
        "v2-digest-sha384-length-for-p256",
        edit(GOOD_V2, f"{HR}.digest", B64(b"\x01" * 48)),
        400,
        "48|length",
        f"{HR}.digest",
    ),
    Bad("v2-signature-string", edit(GOOD_V2, SIG, "x"), 400, "object", SIG),
    Bad("v2-signature-extra", edit(GOOD_V2, f"{SIG}.extra", 1), 400, "extra", f"{SIG}.extra"),
    Bad(
        "v2-signature-bad-base64",
        edit(GOOD_V2, f"{SIG}.content", "%%%"),
        400,
        "base64",
        f"{SIG}.content",
    ),
    Bad("v2-signature-empty", edit(GOOD_V2, f"{SIG}.content", ""), 400, "empty", f"{SIG}.content"),
    Bad("v2-signature-wrong-key", _other_sig_v2(), 400, "does not verify", f"{SIG}.content"),
    Bad(
        "v2-signature-other-digest",
        edit(GOOD_V2, f"{HR}.digest", B64(bytes(32))),
        400,
        "does not verify",
        f"{SIG}.content",
    ),
    Bad(
        "v2-verifier-missing",
        edit(GOOD_V2, f"{SIG}.verifier", ...),
        400,
        "verifier",
        f"{SIG}.verifier",
    ),
    Bad(
        "v2-keydetails-unknown",
        edit(GOOD_V2, f"{SIG}.verifier.keyDetails", "PKIX_DSA_SHA1"),
        400,
        "unsupported keyDetails 'PKIX_DSA_SHA1'",
        f"{SIG}.verifier.keyDetails",
    ),
    Bad(
        "v2-keydetails-unknown-number",
        edit(GOOD_V2, f"{SIG}.verifier.keyDetails", 999),
        400,
        "unsupported keyDetails number 999",
        f"{SIG}.verifier.keyDetails",
    ),
    Bad(
        "v2-keydetails-wrong-curve",
        edit(GOOD_V2, f"{SIG}.verifier.keyDetails", "PKIX_ECDSA_P384_SHA_384"),
        400,
        "keyDetails PKIX_ECDSA_P384_SHA_384 does not match the ECDSA secp256r1 key",
        f"{SIG}.verifier.keyDetails",
    ),
    Bad(
        "v2-pure-ed25519",
        json.dumps(
            signing.build_v2_hashedrekord(
                signing.sign_digest(_ED, signing.digest(_ED, ARTIFACT)[1]),
                _ED,
                signing.digest(_ED, ARTIFACT)[1],
                key_details="PKIX_ED25519",
            )
        ).encode(),
        400,
        "PKIX_ED25519 has no prehash",
        f"{SIG}.verifier.keyDetails",
    ),
    Bad(
        "v2-public-key-garbage",
        edit(GOOD_V2, f"{SIG}.verifier.publicKey.rawBytes", B64(b"not DER")),
        400,
        "not a DER SubjectPublicKeyInfo",
        f"{SIG}.verifier.publicKey.rawBytes",
    ),
    Bad(
        "v2-key-and-certificate",
        edit(
            GOOD_V2,
            f"{SIG}.verifier.x509Certificate",
            {"rawBytes": B64(b"x")},
        ),
        400,
        "publicKey|x509Certificate",
        f"{SIG}.verifier",
    ),
    Bad(
        "v2-certificate-garbage",
        edit(
            edit_obj(GOOD_V2, f"{SIG}.verifier.publicKey", ...),
            f"{SIG}.verifier.x509Certificate",
            {"rawBytes": B64(b"not a certificate")},
        ),
        400,
        "certificate",
        f"{SIG}.verifier.x509Certificate.rawBytes",
    ),
    Bad(
        "v2-dsse-bad-payload",
        edit(GOOD_DSSE_V2, "dsseRequestV002.envelope.payload", "???"),
        400,
        "base64",
        "dsseRequestV002.envelope.payload",
    ),
    Bad(
        "v2-dsse-signature-mismatch",
        edit(GOOD_DSSE_V2, "dsseRequestV002.envelope.payloadType", "text/plain"),
        400,
        "does not verify",
        "dsseRequestV002.envelope.signatures[0].sig",
    ),
    Bad(
        "v2-dsse-no-signatures",
        edit(GOOD_DSSE_V2, "dsseRequestV002.envelope.signatures", []),
        400,
        "signature",
        "dsseRequestV002.envelope.signatures",
    ),
    # -- v1 proposed entries -----------------------------------------------------------------------
    Bad(
        "v1-unknown-kind",
        edit(GOOD_V1, "kind", "intoto"),
        400,
        "unsupported kind 'intoto'",
        "kind",
        V1,
    ),
    Bad(
        "v1-unknown-version",
        edit(GOOD_V1, "apiVersion", "9.9.9"),
        400,
        "unsupported hashedrekord version '9.9.9'",
        "apiVersion",
        V1,
    ),
    Bad(
        "v1-v2-version",
        edit(GOOD_V1, "apiVersion", "0.0.2"),
        400,
        "/api/v2/log/entries",
        "apiVersion",
        V1,
    ),
    Bad("v1-kind-number", edit(GOOD_V1, "kind", 7), 400, "string", "kind", V1),
    Bad("v1-spec-missing", edit(GOOD_V1, "spec", ...), 400, "spec", "spec", V1),
    Bad("v1-spec-list", edit(GOOD_V1, "spec", []), 400, "object", "spec", V1),
    Bad("v1-extra-field", edit(GOOD_V1, "extra", True), 400, "extra", "extra", V1),
    Bad(
        "v1-hash-not-hex",
        edit(GOOD_V1, "spec.data.hash.value", "zz" * 32),
        400,
        "hex",
        "spec.data.hash.value",
        V1,
    ),
    Bad(
        "v1-hash-wrong-length",
        edit(GOOD_V1, "spec.data.hash.value", "ab" * 20),
        400,
        "digest is 20 bytes, but the algorithm's digests are 32 bytes",
        "spec.data.hash.value",
        V1,
    ),
    Bad(
        "v1-hash-md5",
        edit(GOOD_V1, "spec.data.hash.algorithm", "md5"),
        400,
        "md5",
        "spec.data.hash.algorithm",
        V1,
    ),
    Bad(
        "v1-signature-mismatch",
        edit(GOOD_V1, "spec.data.hash.value", "00" * 32),
        400,
        "does not verify",
        "spec.signature.content",
        V1,
    ),
    Bad(
        "v1-public-key-not-base64",
        edit(GOOD_V1, "spec.signature.publicKey.content", "@@"),
        400,
        "base64",
        "spec.signature.publicKey.content",
        V1,
    ),
    Bad(
        "v1-public-key-not-pem",
        edit(GOOD_V1, "spec.signature.publicKey.content", B64(b"hello")),
        400,
        "PEM",
        "spec.signature.publicKey.content",
        V1,
    ),
    Bad(
        "v1-private-key-as-public",
        edit(GOOD_V1, "spec.signature.publicKey.content", B64(signing.private_key_pem(_KEY))),
        400,
        "private|PEM",
        "spec.signature.publicKey.content",
        V1,
    ),
    Bad(
        "v1-rekord-unknown-format",
        edit(GOOD_REKORD, "spec.signature.format", "gpg2"),
        400,
        "gpg2",
        "spec.signature.format",
        V1,
    ),
    Bad(
        "v1-rekord-x509-mismatch",
        edit(GOOD_REKORD, "spec.data.content", B64(b"another artifact")),
        400,
        "does not verify",
        "spec.signature.content",
        V1,
    ),
    Bad(
        "v1-dsse-envelope-not-json",
        edit(GOOD_DSSE_V1, "spec.proposedContent.envelope", "{not json"),
        400,
        "envelope",
        "spec.proposedContent.envelope",
        V1,
    ),
    Bad(
        "v1-dsse-no-verifiers",
        edit(GOOD_DSSE_V1, "spec.proposedContent.verifiers", []),
        400,
        "verifier",
        "spec.proposedContent.verifiers",
        V1,
    ),
    # -- routes and methods ----------------------------------------------------------------------
    Bad(
        "get-on-post-route-v2", None, 405, "GET is not allowed on /api/v2/log/entries", method="GET"
    ),
    Bad("put-on-post-route-v1", b"{}", 405, "PUT is not allowed", path=V1, method="PUT"),
    Bad("delete-entries", None, 405, "DELETE is not allowed", method="DELETE"),
    Bad(
        "unknown-api-version",
        b"{}",
        404,
        "no such endpoint: POST /api/v3/log/entries",
        path="/api/v3/log/entries",
    ),
    Bad("unknown-route", None, 404, "no such endpoint", path="/api/v1/index/retrieve"),
    Bad("post-to-checkpoint", b"{}", 404, "no such endpoint", path="/checkpoint"),
    Bad(
        "index-not-numeric",
        None,
        400,
        "logIndex must be a non-negative integer",
        path=f"{V1}?logIndex=abc",
        method="GET",
    ),
    Bad(
        "index-negative",
        None,
        400,
        "logIndex must be a non-negative integer",
        path=f"{V1}?logIndex=-1",
        method="GET",
    ),
    Bad(
        "index-huge",
        None,
        400,
        "logIndex must be a non-negative integer",
        path=f"{V1}?logIndex={10**30}",
        method="GET",
    ),
    Bad("index-missing", None, 400, "logIndex is required", path=V1, method="GET"),
    Bad(
        "index-beyond-the-log", None, 404, "no entry 1000", path=f"{V1}?logIndex=1000", method="GET"
    ),
    Bad("bad-uuid", None, 400, "64 hex digits", path=f"{V1}/not-a-uuid", method="GET"),
    Bad("bad-uuid-63-digits", None, 400, "64 hex digits", path=f"{V1}/{'a' * 63}", method="GET"),
    Bad(
        "unknown-uuid",
        None,
        404,
        f"no entry with UUID {'ab' * 32}",
        path=f"{V1}/{'ab' * 32}",
        method="GET",
    ),
    Bad(
        "proof-first-size-zero",
        None,
        400,
        "firstSize",
        path="/api/v1/log/proof?firstSize=0",
        method="GET",
    ),
    Bad(
        "proof-last-size-beyond",
        None,
        400,
        "lastSize",
        path="/api/v1/log/proof?firstSize=1&lastSize=99",
        method="GET",
    ),
    Bad(
        "proof-size-not-numeric",
        None,
        400,
        "firstSize must be",
        path="/api/v1/log/proof?firstSize=x",
        method="GET",
    ),
]


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveLog]:
    with served(tmp_path_factory.mktemp("errors") / "data", batch_max_age_ms=5) as live:
        # One good entry first, so the log has tiles, bundles and indexes a bad request could
        # disturb, and so reads of entry 0 work.
        assert live.post(V2, GOOD_V2).status == 201
        yield live


def test_enough_rows() -> None:
    assert len(ROWS) >= 50
    assert len({r.id for r in ROWS}) == len(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_request(log: LiveLog, row: Bad) -> None:
    before = snapshot(log.log_dir)
    checkpoint = log.checkpoint_bytes()
    headers = JSON if row.headers is None else row.headers
    reply = log.request(row.method, row.path, row.body, headers)
    assert reply.status == row.status, reply.body[:500]
    assert reply.header("content-type") == "application/json"
    answer = reply.json
    assert answer["code"] == row.status
    assert re.search(row.message, answer["message"], re.IGNORECASE), answer["message"]
    if row.field is not None:
        assert answer.get("field") == row.field, answer
    assert reply.header("access-control-allow-origin") == "*"
    # Nothing was queued, written or rewritten.
    assert log.checkpoint_bytes() == checkpoint
    assert snapshot(log.log_dir) == before


def test_the_log_still_takes_good_entries_afterwards(log: LiveLog) -> None:
    key = signing.generate_key("ecdsa-p256")
    digest = signing.digest(key, b"after the storm")[1]
    request = signing.build_v2_hashedrekord(signing.sign_digest(key, digest), key, digest)
    assert log.post(V2, request).status == 201


def test_no_content_length_is_411_and_closes_the_connection(log: LiveLog) -> None:
    import http.client

    conn = http.client.HTTPConnection(log.host, log.port, timeout=10)
    try:
        conn.putrequest("POST", V2)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        conn.send(b"2\r\n{}\r\n0\r\n\r\n")
        resp = conn.getresponse()
        assert resp.status == 411
        assert json.loads(resp.read())["message"] == "Content-Length is required"
        assert resp.getheader("Connection") == "close"
    finally:
        conn.close()
