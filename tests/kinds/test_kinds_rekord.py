"""rekord with ssh, minisign and pgp signatures, generated in Python (and, where the tools happen
to be installed, cross-checked against ssh-keygen and gpg)."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from stelae import kinds
from stelae.client import signing
from stelae.kinds import minisign, sshsig

ARTIFACT = b"release-1.2.3.tar.gz contents\n"


def ssh_public(key: signing.PrivateKey) -> bytes:
    return (
        key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        + b" someone@example"
    )


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "rsa"])
def test_rekord_ssh(kind: str) -> None:
    key = signing.generate_key(kind, rsa_bits=2048)  # type: ignore[arg-type]
    sig = sshsig.sign(key, ARTIFACT)
    request = signing.build_rekord(ARTIFACT, sig, ssh_public(key), signature_format="ssh")
    entry = kinds.from_v1_proposed(request)
    assert entry.identities == ()
    assert kinds.from_body(entry.body) == entry
    # the stored key is canonical: no comment
    assert b"someone@example" not in base64.b64decode(
        __import__("json").loads(entry.body)["spec"]["signature"]["publicKey"]["content"]
    )


def test_rekord_ssh_wrong_namespace_and_wrong_key() -> None:
    key = signing.generate_key("ed25519")
    other = signing.generate_key("ed25519")
    bad_ns = sshsig.sign(key, ARTIFACT, namespace="git")
    with pytest.raises(kinds.InvalidEntryError, match="namespace") as err:
        kinds.from_v1_proposed(
            signing.build_rekord(ARTIFACT, bad_ns, ssh_public(key), signature_format="ssh")
        )
    assert err.value.field == "spec.signature.content"
    sig = sshsig.sign(key, ARTIFACT)
    with pytest.raises(kinds.SignatureError, match="different key"):
        kinds.from_v1_proposed(
            signing.build_rekord(ARTIFACT, sig, ssh_public(other), signature_format="ssh")
        )
    with pytest.raises(kinds.SignatureError, match="does not verify"):
        kinds.from_v1_proposed(
            signing.build_rekord(b"tampered", sig, ssh_public(key), signature_format="ssh")
        )


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen not installed")
@pytest.mark.parametrize("key_type", ["ed25519", "ecdsa", "rsa"])
def test_rekord_ssh_interop_with_ssh_keygen(tmp_path: Path, key_type: str) -> None:
    keyfile = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", key_type, "-N", "", "-f", str(keyfile)], check=True)
    artifact = tmp_path / "artifact"
    artifact.write_bytes(ARTIFACT)
    subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-f", str(keyfile), "-n", "file", str(artifact)],
        check=True,
        capture_output=True,
    )
    sig = (tmp_path / "artifact.sig").read_bytes()
    public = (tmp_path / "id.pub").read_bytes()
    kinds.from_v1_proposed(signing.build_rekord(ARTIFACT, sig, public, signature_format="ssh"))
    # and ssh-keygen accepts ours
    key = serialization.load_ssh_private_key(keyfile.read_bytes(), None)
    assert isinstance(key, signing.PrivateKey)
    ours = tmp_path / "ours.sig"
    ours.write_bytes(sshsig.sign(key, ARTIFACT))
    signers = tmp_path / "allowed"
    signers.write_bytes(b"me@example " + public)
    subprocess.run(
        [
            "ssh-keygen",
            "-Y",
            "verify",
            "-f",
            str(signers),
            "-I",
            "me@example",
            "-n",
            "file",
            "-s",
            str(ours),
        ],
        input=ARTIFACT,
        check=True,
        capture_output=True,
    )


def _minisign_key() -> tuple[ed25519.Ed25519PrivateKey, bytes, bytes]:
    key = ed25519.Ed25519PrivateKey.generate()
    key_id = os.urandom(8)
    public = (
        b"untrusted comment: minisign public key\n"
        + minisign.public_key_text(key_id, key.public_key())
        + b"\n"
    )
    return key, key_id, public


@pytest.mark.parametrize("prehashed", [True, False], ids=["ED", "Ed-legacy"])
def test_rekord_minisign(prehashed: bool) -> None:
    key, key_id, public = _minisign_key()
    sig = minisign.sign(key, key_id, ARTIFACT, prehashed=prehashed)
    entry = kinds.from_v1_proposed(
        signing.build_rekord(ARTIFACT, sig, public, signature_format="minisign")
    )
    assert kinds.from_body(entry.body) == entry


def test_rekord_minisign_rejections() -> None:
    key, key_id, public = _minisign_key()
    sig = minisign.sign(key, key_id, ARTIFACT)
    with pytest.raises(kinds.SignatureError, match="does not verify"):
        kinds.from_v1_proposed(
            signing.build_rekord(b"other", sig, public, signature_format="minisign")
        )
    _, _, other_public = _minisign_key()
    with pytest.raises(kinds.SignatureError, match="not the given key"):
        kinds.from_v1_proposed(
            signing.build_rekord(ARTIFACT, sig, other_public, signature_format="minisign")
        )
    lines = sig.split(b"\n")
    lines[2] = b"trusted comment: forged"
    with pytest.raises(kinds.SignatureError, match="trusted comment"):
        kinds.from_v1_proposed(
            signing.build_rekord(ARTIFACT, b"\n".join(lines), public, signature_format="minisign")
        )


try:
    import pysequoia
except ImportError:  # pgp support is optional; the other formats are still tested
    HAVE_PYSEQUOIA = False
else:
    HAVE_PYSEQUOIA = True

needs_pysequoia = pytest.mark.skipif(not HAVE_PYSEQUOIA, reason="pysequoia not installed")


@needs_pysequoia
@pytest.mark.parametrize("suite", ["Cv25519", "P256", "RSA2k"])
@pytest.mark.parametrize("armor", [True, False], ids=["armored", "binary"])
def test_rekord_pgp(suite: str, armor: bool) -> None:
    tsk = pysequoia.Tsk.generate(
        "Release Signer <Releases@Example.org>", cipher_suite=getattr(pysequoia.CipherSuite, suite)
    )
    cert = tsk.extract_certificate()
    sig = pysequoia.sign(tsk.signer(), ARTIFACT, mode=pysequoia.SignatureMode.DETACHED, armor=armor)
    entry = kinds.from_v1_proposed(
        signing.build_rekord(ARTIFACT, sig, str(cert).encode(), signature_format="pgp")
    )
    assert entry.identities == ("releases@example.org",)
    assert entry.key_fingerprints == (cert.fingerprint.lower(),)
    assert kinds.from_body(entry.body) == entry


@needs_pysequoia
def test_rekord_pgp_rejections() -> None:
    tsk = pysequoia.Tsk.generate("A <a@example.org>")
    other = pysequoia.Tsk.generate("B <b@example.org>").extract_certificate()
    sig = pysequoia.sign(tsk.signer(), ARTIFACT, mode=pysequoia.SignatureMode.DETACHED)
    with pytest.raises(kinds.SignatureError, match="does not verify") as err:
        kinds.from_v1_proposed(
            signing.build_rekord(ARTIFACT, sig, str(other).encode(), signature_format="pgp")
        )
    assert err.value.field == "spec.signature.content"
    with pytest.raises(kinds.InvalidEntryError, match="secret"):
        kinds.from_v1_proposed(
            signing.build_rekord(ARTIFACT, sig, str(tsk).encode(), signature_format="pgp")
        )
    with pytest.raises(kinds.InvalidEntryError, match="not an OpenPGP public key") as err2:
        kinds.from_v1_proposed(
            signing.build_rekord(ARTIFACT, sig, b"garbage", signature_format="pgp")
        )
    assert err2.value.field == "spec.signature.publicKey.content"


def _live_agents(home: Path) -> list[int]:
    """PIDs of gpg-agent processes serving ``home`` that have not exited (zombies excluded:
    a killed daemon whose parent has not reaped it yet is gone for our purposes)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # not a process, or it ended while we looked
        if b"gpg-agent" in cmdline[0] and str(home).encode() in cmdline and state != "Z":
            pids.append(int(proc.name))
    return pids


@pytest.fixture
def gnupg_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A private GNUPGHOME; the gpg-agent that gpg starts in it is stopped afterwards, whatever
    the test did (gpg leaves its agent running as a daemon once the command is done)."""
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    try:
        yield env
    finally:
        subprocess.run(
            ["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True, check=False
        )


@needs_pysequoia
@pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg not installed")
def test_rekord_pgp_interop_with_gpg(tmp_path: Path, gnupg_env: dict[str, str]) -> None:
    env = gnupg_env

    def gpg(*args: str) -> bytes:
        done = subprocess.run(["gpg", "--batch", *args], env=env, check=True, capture_output=True)
        return done.stdout

    gpg(
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
        "--quick-gen-key",
        "Gpg User <gpg@example.org>",
        "ed25519",
        "sign",
        "never",
    )
    artifact = tmp_path / "a"
    artifact.write_bytes(ARTIFACT)
    gpg("--armor", "--detach-sign", str(artifact))
    public = gpg("--armor", "--export", "gpg@example.org")
    sig = (tmp_path / "a.asc").read_bytes()
    entry = kinds.from_v1_proposed(
        signing.build_rekord(ARTIFACT, sig, public, signature_format="pgp")
    )
    assert entry.identities == ("gpg@example.org",)
    # gpg started an agent for this home; stopping it (as the fixture does) leaves none behind.
    home = Path(env["GNUPGHOME"])
    assert _live_agents(home)
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True, check=True)
    assert not _live_agents(home)
