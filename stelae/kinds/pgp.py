"""OpenPGP detached signatures over a whole file, for ``rekord`` (via pysequoia).

OpenPGP is where a library earns its keep: packet parsing, v4/v6 keys, subkeys, binding signatures
and a dozen algorithms. pysequoia wraps Sequoia-PGP (Rust), is maintained, ships wheels and works
offline. It is imported lazily so that logs that never see ``pgp`` entries do not need it.

The key index uses the OpenPGP fingerprint of the primary key (40 hex digits for v4 keys, 64 for
v6): it is stable when user IDs or subkeys are added, unlike a hash of the certificate bytes.
Identities are the emails of the certificate's user IDs, lowercased.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from stelae.kinds.errors import InvalidEntryError, SignatureError

_EMAIL = re.compile(r"<([^<>@\s]+@[^<>\s]+)>|^([^<>@\s]+@[^<>\s]+)$")


@dataclass(frozen=True)
class OpenPGPKey:
    cert: Any  # pysequoia.Cert
    fingerprint: str
    identities: tuple[str, ...]

    def armored(self) -> bytes:
        return str(self.cert).encode("ascii")


def _sequoia(field: str) -> Any:
    try:
        import pysequoia  # noqa: PLC0415  (optional: only pgp entries need it)
    except ImportError as err:
        raise InvalidEntryError(
            field, "OpenPGP entries need the pysequoia package, which is not installed"
        ) from err
    return pysequoia


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def load_public_key(data: bytes, field: str) -> OpenPGPKey:
    """An armored or binary OpenPGP certificate (public key); secret keys are refused."""
    ps = _sequoia(field)
    try:
        # Parsed as a Tsk (which also reads public-only data) so secret material can be detected
        # without pysequoia's deprecated Cert.has_secret_keys.
        tsk = ps.Tsk.from_bytes(data)
        cert = tsk.extract_certificate()
    except Exception as err:  # pysequoia raises RuntimeError/ValueError for bad input
        raise InvalidEntryError(field, f"is not an OpenPGP public key: {_first_line(err)}") from err
    if bytes(cert) != bytes(tsk):
        raise InvalidEntryError(field, "is an OpenPGP *secret* key; post only the public key")
    emails: list[str] = []
    for uid in cert.user_ids:
        m = _EMAIL.search(str(uid))
        if m:
            emails.append((m.group(1) or m.group(2)).lower())
    return OpenPGPKey(cert, str(cert.fingerprint).lower(), tuple(dict.fromkeys(emails)))


def verify(key: OpenPGPKey, signature: bytes, message: bytes, field: str) -> None:
    """Verify a detached (armored or binary) signature over ``message`` with ``key``."""
    ps = _sequoia(field)
    try:
        sig = ps.Sig.from_bytes(signature)
    except Exception as err:
        raise InvalidEntryError(field, f"is not an OpenPGP signature: {_first_line(err)}") from err
    try:
        result = ps.verify(bytes=message, store=lambda _ids: [key.cert], signature=sig)
    except Exception as err:
        raise SignatureError(
            field, f"OpenPGP signature does not verify over the artifact: {_first_line(err)}"
        ) from err
    if not result.valid_sigs:
        raise SignatureError(field, "OpenPGP signature does not verify over the artifact")
