"""The write API over real HTTP: every kind and algorithm accepted, answered in Rekor's exact
shape with a proof that verifies with the read client; duplicates; overload and deadlines.

The server is a real LogServer on 127.0.0.1 (port 0).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from stelae.api.service import ServiceConfig
from stelae.client import signing
from stelae.kinds import minisign, sshsig
from tests.support import certificates
from tests.support.api import LiveLog, Reply, check_v1, check_v2, served, snapshot

V1, V2 = "/api/v1/log/entries", "/api/v2/log/entries"

try:
    import pysequoia
except ImportError:  # pgp support is optional (the kinds tests say so too)
    pysequoia = None  # type: ignore[assignment]


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveLog]:
    with served(tmp_path_factory.mktemp("kinds") / "data", batch_max_age_ms=10) as live:
        yield live


# -- the cases: (path, request, kind, version) ----------------------------------------------------

Case = tuple[str, dict[str, Any], str, str]
ALGORITHMS = {
    "ecdsa-p256": ("ecdsa-p256", False),
    "ecdsa-p384": ("ecdsa-p384", False),
    "ed25519": ("ed25519", False),
    "rsa-pkcs1v15": ("rsa", False),
    "rsa-pss": ("rsa", True),
}
_keys: dict[str, signing.PrivateKey] = {}


def key_for(kind: str) -> signing.PrivateKey:
    if kind not in _keys:
        _keys[kind] = signing.generate_key(kind, rsa_bits=2048)  # type: ignore[arg-type]
    return _keys[kind]


def verifier(key: signing.PrivateKey, form: str) -> signing.PrivateKey | x509.Certificate:
    return (
        certificates.self_signed_certificate(key, "signer@example.org") if form == "cert" else key
    )


def hashedrekord_v1(alg: str, form: str) -> Case:
    kind, pss = ALGORITHMS[alg]
    key = key_for(kind)
    artifact = f"hashedrekord v1 {alg} {form} {os.urandom(8).hex()}".encode()
    sig = signing.sign_artifact(key, artifact, pss=pss)
    return (
        V1,
        signing.build_v1_hashedrekord(sig, verifier(key, form), artifact=artifact),
        ("hashedrekord"),
        "0.0.1",
    )


def hashedrekord_v2(alg: str, form: str) -> Case:
    kind, pss = ALGORITHMS[alg]
    key = key_for(kind)
    artifact = f"hashedrekord v2 {alg} {form} {os.urandom(8).hex()}".encode()
    _, digest = signing.digest(key, artifact)
    sig = signing.sign_digest(key, digest, pss=pss)
    request = signing.build_v2_hashedrekord(
        sig, verifier(key, form), digest, key_details=signing.key_details_for(key, pss=pss)
    )
    return V2, request, "hashedrekord", "0.0.2"


def dsse(version: str, alg: str, form: str) -> Case:
    kind, pss = ALGORITHMS[alg]
    key = key_for(kind)
    payload = json.dumps({"_type": "https://in-toto.io/Statement/v1", "n": os.urandom(8).hex()})
    envelope = signing.dsse_envelope(
        payload.encode(), "application/vnd.in-toto+json", [key], pss=pss
    )
    # v2 names the scheme; build_dsse's default for RSA is PKCS#1 v1.5, so PSS says so.
    details = [signing.key_details_for(key, pss=True)] if pss and version == "0.0.2" else None
    request = signing.build_dsse(
        envelope,
        [verifier(key, form)],
        version=version,  # type: ignore[arg-type]
        key_details=details,
    )
    return (V1 if version == "0.0.1" else V2), request, "dsse", version


def rekord(fmt: str) -> Case:
    artifact = f"rekord {fmt} {os.urandom(8).hex()}".encode()
    if fmt.startswith("x509"):
        key = key_for("ecdsa-p256")
        sig = signing.sign_message(key, artifact)
        form = "cert" if fmt.endswith("cert") else "key"
        return V1, signing.build_rekord(artifact, sig, verifier(key, form)), "rekord", "0.0.1"
    if fmt == "ssh":
        key = key_for("ed25519")
        public = key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        sig = sshsig.sign(key, artifact)
        return (
            V1,
            signing.build_rekord(artifact, sig, public, signature_format="ssh"),
            ("rekord"),
            "0.0.1",
        )
    if fmt == "minisign":
        key = key_for("ed25519")
        assert isinstance(key, ed25519.Ed25519PrivateKey)
        key_id = os.urandom(8)
        public = b"untrusted comment: minisign public key\n" + minisign.public_key_text(
            key_id, key.public_key()
        )
        sig = minisign.sign(key, key_id, artifact)
        request = signing.build_rekord(artifact, sig, public, signature_format="minisign")
        return V1, request, "rekord", "0.0.1"
    assert fmt == "pgp"
    if pysequoia is None:
        pytest.skip("pysequoia not installed")
    tsk = pysequoia.Tsk.generate("Release Signer <releases@example.org>")
    sig = pysequoia.sign(tsk.signer(), artifact, mode=pysequoia.SignatureMode.DETACHED)
    public = str(tsk.extract_certificate()).encode()
    return (
        V1,
        signing.build_rekord(artifact, sig, public, signature_format="pgp"),
        ("rekord"),
        "0.0.1",
    )


CASES: dict[str, Callable[[], Case]] = {}
for _alg in ALGORITHMS:
    for _form in ("key", "cert"):
        CASES[f"hashedrekord-v1-{_alg}-{_form}"] = partial(hashedrekord_v1, _alg, _form)
        CASES[f"hashedrekord-v2-{_alg}-{_form}"] = partial(hashedrekord_v2, _alg, _form)
for _version in ("0.0.1", "0.0.2"):
    for _alg in ("ecdsa-p256", "ed25519", "rsa-pss"):
        for _form in ("key", "cert"):
            CASES[f"dsse-{_version}-{_alg}-{_form}"] = partial(dsse, _version, _alg, _form)
for _fmt in ("x509-key", "x509-cert", "ssh", "minisign", "pgp"):
    CASES[f"rekord-{_fmt}"] = partial(rekord, _fmt)


@pytest.mark.parametrize("case", sorted(CASES))
def test_accepted_in_rekor_shape_with_a_verifying_proof(log: LiveLog, case: str) -> None:
    path, request, kind, version = CASES[case]()
    reply = log.post(path, request)
    if path == V2:
        index, body = check_v2(log, reply, kind, version)
    else:
        index, body = check_v1(log, reply, kind)
    # The same entry, read back through Rekor v1's GET endpoints, carries the same body.
    for get in (f"/api/v1/log/entries?logIndex={index}", f"/api/v1/log/entries/{body_uuid(body)}"):
        got = log.request("GET", get)
        assert got.status == 200, got.body
        ((uuid, e),) = got.json.items()
        assert uuid == body_uuid(body) and base64.b64decode(e["body"]) == body
        assert e["logIndex"] == index


def body_uuid(body: bytes) -> str:
    return hashlib.sha256(b"\x00" + body).hexdigest()


# -- duplicates -----------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_duplicates_answer_the_existing_entry_or_409_when_strict(log: LiveLog, api: str) -> None:
    path, request, kind, version = (
        hashedrekord_v1("ecdsa-p256", "key") if api == "v1" else hashedrekord_v2("ed25519", "key")
    )
    first = log.post(path, request)

    def check(reply: Reply) -> tuple[int, bytes]:
        return check_v2(log, reply, kind, version) if api == "v2" else check_v1(log, reply, kind)

    index, body = check(first)
    assert first.header("x-stelae-duplicate") is None
    size = log.size()

    again = log.post(path, request)
    assert check(again) == (index, body)
    assert again.header("x-stelae-duplicate") == "true"

    before = snapshot(log.log_dir)
    strict = log.post(path, request, {"X-Stelae-Strict": "true"})
    assert strict.status == 409, strict.body
    assert "an equivalent entry already exists" in strict.json["message"]
    if api == "v2":  # Rekor v2 names the index; v1 the UUID
        assert strict.json["message"].endswith(f"with index {index}")
        assert strict.header("x-log-index") == str(index)
    else:
        assert strict.header("location") == f"/api/v1/log/entries/{body_uuid(body)}"
        assert body_uuid(body) in strict.json["message"]
    assert log.size() == size
    assert snapshot(log.log_dir) == before


# -- overload and deadlines ---------------------------------------------------------------------


def test_full_queue_answers_503_with_retry_after_and_a_deadline_answers_202(
    tmp_path: Path,
) -> None:
    """max_pending=1 and a batch that would wait 60 s: the first upload is queued and, past its
    0.3 s deadline, answered 202 with a Location; a second one while it waits is refused at once
    with 503 + Retry-After. Once the batch closes, the Location serves the entry."""
    with served(
        tmp_path / "data",
        ServiceConfig(wait_seconds=0.3),
        max_pending=1,
        batch_max_age_ms=60_000,
    ) as live:
        path, first, *_ = hashedrekord_v2("ecdsa-p256", "key")
        _, second, *_ = hashedrekord_v2("ecdsa-p256", "cert")
        start = time.monotonic()
        accepted = live.post(path, first)
        assert accepted.status == 202, accepted.body
        assert time.monotonic() - start >= 0.3  # it waited out its deadline
        location = accepted.header("location")
        assert location == f"/api/v1/log/entries/{accepted.json['uuid']}"
        assert accepted.header("retry-after")
        # The first entry still waits for its batch: the queue is full.
        busy = live.post(path, second)
        assert busy.status == 503, busy.body
        assert int(busy.header("retry-after") or "0") >= 1
        assert "busy" in busy.json["message"]
        # Refused at once, not made to wait for the batch: that has not closed yet.
        assert live.size() == 0
        # The 202 was not a lie: the entry lands when the batch closes; the 503 one never does.
        # Stopping the batcher closes the batch now (it integrates what is queued, then returns).
        assert live.server is not None
        live.server.batcher.stop()
        got = live.request("GET", location)
        assert got.status == 200, got.body
        assert live.size() == 1
