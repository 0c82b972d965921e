"""``stelae keygen`` and ``stelae sign``, and the signer's material as files: what ``upload``
posts and ``verify`` rebuilds from an artifact, its signature and the signer's key.

Signature files: ``sign`` writes the raw signature bytes (DER for ECDSA, 64 bytes for Ed25519ph,
the modulus length for RSA), as ``openssl dgst -sign`` and rekor-cli do; ``--base64`` writes base64
text instead (cosign's ``--output-signature`` form). Readers accept both: a file that is nothing
but standard base64 (whitespace allowed) is decoded, anything else is taken as raw bytes. A raw
signature that happens to be valid base64 text is astronomically unlikely (every byte would have
to be one of 65 ASCII characters).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import click

from stelae import kinds
from stelae.cli.output import emit, json_option, note
from stelae.client import signing

EntryType = Literal["hashedrekord", "dsse", "rekord"]
ENTRY_TYPES: tuple[EntryType, ...] = ("hashedrekord", "dsse", "rekord")
SignatureFormat = Literal["x509", "ssh", "minisign", "pgp"]
SIGNATURE_FORMATS: tuple[SignatureFormat, ...] = ("x509", "ssh", "minisign", "pgp")
Api = Literal["v1", "v2"]

_BASE64_TEXT = re.compile(rb"[A-Za-z0-9+/=\s]+")
_DEFAULT_PAYLOAD_TYPE = "application/vnd.in-toto+json"


class KeyFileError(click.BadParameter):
    """A key or signature file stelae cannot use (a usage error: exit 2)."""


# --- reading the signer's files -----------------------------------------------------------------


def read_signature(path: Path) -> bytes:
    """A signature file: raw bytes, or base64 text of them (see the module docstring)."""
    data = path.read_bytes()
    if not data.strip():
        raise KeyFileError(f"{path} is empty", param_hint="'--signature'")
    if _BASE64_TEXT.fullmatch(data):
        try:
            return base64.b64decode(b"".join(data.split()), validate=True)
        except (binascii.Error, ValueError):
            pass  # not base64 after all: raw bytes that happen to be ASCII
    return data


@dataclass(frozen=True)
class Material:
    """What a signer hands the log, read from files; :meth:`entry` turns it into a request.

    ``verifier`` is the public key or certificate file's bytes (PEM for x509; the tool's own key
    format for ssh, minisign and pgp ``rekord`` entries). ``envelope`` is the DSSE envelope's JSON
    text, kept verbatim: a Rekor v1 ``dsse`` body stores the hash of that very string.
    """

    type: EntryType
    verifier: bytes
    artifact: bytes | None = None
    signature: bytes | None = None
    envelope: str | None = None
    signature_format: SignatureFormat = "x509"

    def apis(self) -> tuple[Api, ...]:
        """The wire shapes this kind has, preferred first (Rekor v2 dropped dsse and rekord)."""
        if self.type == "hashedrekord":
            return ("v2", "v1")
        if self.type == "dsse":
            return ("v1", "v2")
        return ("v1",)

    def request(self, api: Api) -> dict[str, Any]:
        """The request body for ``POST /api/<api>/log/entries``."""
        if self.type == "dsse":
            assert self.envelope is not None
            envelope = kinds.load_json(self.envelope)
            if not isinstance(envelope, dict):
                raise kinds.InvalidEntryError("envelope", "a DSSE envelope is a JSON object")
            if api == "v2":
                return signing.build_dsse(envelope, [self.verifier], version="0.0.2")
            request = signing.build_dsse(envelope, [self.verifier])
            request["spec"]["proposedContent"]["envelope"] = self.envelope
            return request
        assert self.artifact is not None and self.signature is not None
        if self.type == "rekord":
            return signing.build_rekord(
                self.artifact, self.signature, self.verifier, signature_format=self.signature_format
            )
        if api == "v1":
            return signing.build_v1_hashedrekord(
                self.signature, self.verifier, artifact=self.artifact
            )
        key = kinds.keys.load_pem(self.verifier, "verifier").key
        _, digest = signing.digest(key, self.artifact)
        return signing.build_v2_hashedrekord(self.signature, self.verifier, digest)

    def entry(self, api: Api) -> tuple[dict[str, Any], kinds.Entry]:
        """The request and the entry the log will make of it: validated, signature verified."""
        request = self.request(api)
        if api == "v2":
            return request, kinds.from_v2_request(request)
        return request, kinds.from_v1_proposed(request)


def load_material(
    entry_type: EntryType,
    *,
    artifact: Path | None,
    signature: Path | None,
    public_key: Path | None,
    certificate: Path | None,
    envelope: Path | None,
    signature_format: SignatureFormat,
) -> Material:
    """Check which files ``entry_type`` needs (usage errors, exit 2) and read them."""
    if (public_key is None) == (certificate is None):
        raise click.UsageError("give exactly one of --public-key or --certificate")
    if certificate is not None and signature_format != "x509":
        raise click.UsageError("--certificate is for x509 signatures; use --public-key")
    if entry_type != "rekord" and signature_format != "x509":
        raise click.UsageError("--format is for --type rekord")
    _check_signed_files(entry_type, artifact, signature, envelope)
    key_path = public_key if public_key is not None else certificate
    assert key_path is not None
    verifier = key_path.read_bytes()
    if _PRIVATE_KEY.search(verifier):
        option = "--public-key" if public_key is not None else "--certificate"
        raise KeyFileError(
            f"{key_path} holds a private key; {option} takes the signer's public key "
            "(stelae keygen writes it beside the private one, as .pub)",
            param_hint=f"'{option}'",
        )
    raw_signature = None
    if signature is not None:
        # ssh, minisign and pgp signature files are passed to the log exactly as their tool
        # wrote them (armored text included); only x509 signatures are raw-or-base64.
        raw_signature = (
            read_signature(signature) if signature_format == "x509" else signature.read_bytes()
        )
        _check_not_the_artifact(signature, raw_signature, artifact)
    return Material(
        type=entry_type,
        verifier=verifier,
        artifact=artifact.read_bytes() if artifact is not None else None,
        signature=raw_signature,
        envelope=envelope.read_text().strip() if envelope is not None else None,
        signature_format=signature_format,
    )


def _check_signed_files(
    entry_type: EntryType, artifact: Path | None, signature: Path | None, envelope: Path | None
) -> None:
    """A DSSE entry is one envelope; every other type is an artifact and its signature."""
    if entry_type == "dsse":
        if envelope is None:
            raise click.UsageError("--type dsse needs --envelope (a DSSE JSON envelope)")
        if signature is not None:
            raise click.UsageError("--type dsse takes its signatures from --envelope")
        return
    if envelope is not None:
        raise click.UsageError("--envelope is for --type dsse")
    if artifact is None or signature is None:
        raise click.UsageError(f"--type {entry_type} needs --artifact and --signature")


# PEM and armored private keys of every format a signer might hold: PKCS#8, SEC1, PKCS#1,
# OpenSSH, OpenPGP, and minisign's secret key file.
_PRIVATE_KEY = re.compile(
    rb"-----BEGIN [A-Z ]*PRIVATE KEY( BLOCK)?-----|minisign [a-z ]*secret key"
)

#: No signature stelae takes is this long (RSA-16384 is 2 KiB; armored OpenPGP a few KiB); a
#: file this size given as --signature is the artifact, or something else by mistake.
_SIGNATURE_MAX_BYTES = 65_536


def _check_not_the_artifact(path: Path, signature: bytes, artifact: Path | None) -> None:
    """Name the usual mix-up (the artifact given as --signature) before the log's schema or
    signature check reports it as a field of a request the user never wrote."""
    same = artifact is not None and (
        path.resolve() == artifact.resolve() or signature == artifact.read_bytes()
    )
    if same:
        raise KeyFileError(
            f"{path} is the artifact itself; --signature takes its signature file "
            f"(stelae sign --artifact {artifact} writes {artifact}.sig)",
            param_hint="'--signature'",
        )
    if len(signature) > _SIGNATURE_MAX_BYTES:
        raise KeyFileError(
            f"{path} is {len(signature):,} bytes, too long for a signature: is it the artifact? "
            "--signature takes the signature file (stelae sign writes ARTIFACT.sig)",
            param_hint="'--signature'",
        )


def signer_options(f: Any) -> Any:
    """The options naming the signer's files, shared by ``upload`` and ``verify``."""
    existing = click.Path(exists=True, dir_okay=False, path_type=Path)
    options = [
        click.option(
            "--artifact", type=existing, help="The signed file (the DSSE payload for dsse)."
        ),
        click.option("--signature", type=existing, help="Its signature: raw bytes or base64."),
        click.option(
            "--public-key",
            type=existing,
            help="The signer's public key (PEM, or the "
            "ssh/minisign/pgp key for those rekord formats).",
        ),
        click.option("--certificate", type=existing, help="The signer's X.509 certificate (PEM)."),
        click.option("--envelope", type=existing, help="A DSSE envelope (JSON), for --type dsse."),
        click.option(
            "--type",
            "entry_type",
            type=click.Choice(ENTRY_TYPES),
            default="hashedrekord",
            show_default=True,
            help="The entry kind.",
        ),
        click.option(
            "--format",
            "signature_format",
            type=click.Choice(SIGNATURE_FORMATS),
            default="x509",
            show_default=True,
            help="The signature format of a rekord entry.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


# --- keygen ---------------------------------------------------------------------------------------


def _create(path: Path, data: bytes, mode: int) -> None:
    """Write a new file with ``mode``; never replace an existing one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


@click.command()
@click.option(
    "--type",
    "key_type",
    type=click.Choice(signing.KEY_TYPES),
    default="ecdsa-p256",
    show_default=True,
    help="The key algorithm.",
)
@click.option(
    "--out",
    "prefix",
    required=True,
    metavar="PREFIX",
    help="Write PREFIX.key (private, PKCS#8 PEM, mode 0600) and PREFIX.pub (public, PEM).",
)
@json_option
def keygen(key_type: signing.KeyType, prefix: str, as_json: bool) -> None:
    """Make a signer's key pair (unencrypted PEM); never overwrites existing files.

    Prints the public key's fingerprint on stdout; which files it wrote goes to stderr.

    \b
    Example:
      stelae keygen --out release-signer
      stelae keygen --type ed25519 --out ci/signer --json
    """
    key_path, pub_path = Path(prefix + ".key"), Path(prefix + ".pub")
    for path in (key_path, pub_path):
        if path.exists():
            raise click.UsageError(f"{path} already exists; not overwriting it")
    key = signing.generate_key(key_type)
    public = signing.public_key_pem(key)
    _create(key_path, signing.private_key_pem(key), 0o600)
    _create(pub_path, public, 0o644)
    fingerprint = kinds.fingerprint_public_key(public)
    if not as_json:
        note(f"private key: {key_path} (keep it secret)")
        note(f"public key:  {pub_path}")
    emit(
        as_json,
        {
            "type": key_type,
            "private_key": str(key_path),
            "public_key": str(pub_path),
            "fingerprint": fingerprint,
        },
        fingerprint,  # the data: SHA-256 of the SubjectPublicKeyInfo, as `search` takes it
    )


# --- sign -----------------------------------------------------------------------------------------


def _load_private_key(path: Path) -> signing.PrivateKey:
    try:
        return signing.load_private_key_pem(path.read_bytes())
    except TypeError as err:  # cryptography: encrypted key and no password
        raise KeyFileError(
            f"{path} is encrypted; stelae sign reads unencrypted keys (as keygen writes)",
            param_hint="'--key'",
        ) from err
    except (ValueError, kinds.InvalidEntryError) as err:
        raise KeyFileError(
            f"{path} is not a usable private key: {err}", param_hint="'--key'"
        ) from err


@click.command()
@click.option(
    "--key",
    "key_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The private key (PEM), e.g. from stelae keygen.",
)
@click.option(
    "--artifact",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The file to sign (the payload, for --type dsse).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the signature [default: ARTIFACT.sig; ARTIFACT.dsse.json for dsse].",
)
@click.option(
    "--type",
    "entry_type",
    type=click.Choice(ENTRY_TYPES),
    default="hashedrekord",
    show_default=True,
    help="What the signature is for: hashedrekord signs the artifact's digest (Ed25519 keys "
    "as Ed25519ph); rekord (x509) signs the whole artifact; dsse writes a signed envelope.",
)
@click.option(
    "--payload-type",
    default=_DEFAULT_PAYLOAD_TYPE,
    show_default=True,
    help="The DSSE payloadType, for --type dsse.",
)
@click.option("--base64", "as_base64", is_flag=True, help="Write base64 text instead of raw bytes.")
@json_option
def sign(
    *,
    key_file: Path,
    artifact: Path,
    out: Path | None,
    entry_type: EntryType,
    payload_type: str,
    as_base64: bool,
    as_json: bool,
) -> None:
    """Sign an artifact the way `stelae upload` expects.

    Prints the signature in base64 (for dsse, the envelope JSON) on stdout; which file it
    wrote goes to stderr.

    The signature file holds the raw signature bytes (DER ECDSA, Ed25519ph, RSA PKCS#1 v1.5)
    unless --base64 is given; upload reads either.

    \b
    Example:
      stelae sign --key release-signer.key --artifact app.tar.gz
      stelae upload --artifact app.tar.gz --signature app.tar.gz.sig \\
          --public-key release-signer.pub --server http://127.0.0.1:8080 --vkey @vkey.txt
    """
    key = _load_private_key(key_file)
    data = artifact.read_bytes()
    result: dict[str, Any] = {"type": entry_type}
    if entry_type == "dsse":
        target = out or Path(f"{artifact}.dsse.json")
        envelope = signing.dsse_envelope(data, payload_type, [key])
        target.write_text(json.dumps(envelope, indent=2) + "\n")
        result["envelope"] = str(target)
        text = json.dumps(envelope, separators=(",", ":"))
        message = f"wrote the DSSE envelope to {target}"
    else:
        target = out or Path(f"{artifact}.sig")
        if entry_type == "hashedrekord":
            alg, digest = signing.digest(key, data)
            raw = signing.sign_digest(key, digest)
            result["digest"] = f"{alg}:{digest.hex()}"
        else:
            raw = signing.sign_message(key, data)
        encoded = base64.b64encode(raw)
        target.write_bytes(encoded + b"\n" if as_base64 else raw)
        result.update(signature=str(target), signature_b64=encoded.decode(), base64=as_base64)
        text = encoded.decode()  # the data: the signature in base64, as cosign sign-blob prints
        message = f"wrote the signature to {target} ({'base64' if as_base64 else 'raw bytes'})"
    if not as_json:
        note(message)
    emit(as_json, result, text)
