"""The witness's cosigning key on disk: ``<data>/witness.key``, created once, mode 0600.

The file is JSON ``{"name", "type", "seed"}``: the key name, ``ed25519`` (cosignature type 0x04,
https://c2sp.org/tlog-cosignature@v1.0.1) or ``ml-dsa-44`` (type 0x06,
https://c2sp.org/tlog-cosignature@v1.1.0-rc.1), and the 32-byte seed in base64. Neither type has
a standard private-key string, so this one is ours; the public side is the standard vkey.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from stelae.tiles.errors import FormatError
from stelae.tiles.mldsa import MLDSA44CosignatureSigner
from stelae.tiles.notekeys import Ed25519CosignatureSigner, verifier_to_vkey

__all__ = [
    "KEY_FILE",
    "KeyType",
    "WitnessSigner",
    "create_key",
    "load_key",
    "parse_key",
    "vkey_of",
]

KEY_FILE = "witness.key"
KeyType = Literal["ed25519", "ml-dsa-44"]
WitnessSigner = Ed25519CosignatureSigner | MLDSA44CosignatureSigner


def vkey_of(signer: WitnessSigner) -> str:
    return verifier_to_vkey(signer.verifier)


def create_key(data_dir: Path, name: str, key_type: KeyType) -> WitnessSigner:
    """Create the key file; refuses to overwrite one (a witness that loses or replaces its key
    must be retired, since clients pin it)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    signer: WitnessSigner = (
        Ed25519CosignatureSigner.generate(name)
        if key_type == "ed25519"
        else MLDSA44CosignatureSigner.generate(name)
    )
    record = {"name": name, "type": key_type, "seed": base64.b64encode(signer.seed).decode()}
    path = data_dir / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as err:
        raise FormatError(f"{path} already exists; a witness keeps its key for life") from err
    with os.fdopen(fd, "w") as f:
        json.dump(record, f)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    return signer


def load_key(data_dir: Path, clock: Callable[[], int] | None = None) -> WitnessSigner:
    """Load the key; ``clock`` (POSIX seconds) is injectable for tests."""
    path = data_dir / KEY_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError as err:
        raise FormatError(f"{path} does not exist; run 'stelae witness init' first") from err
    return parse_key(data, str(path), clock)


def parse_key(data: bytes, where: str, clock: Callable[[], int] | None = None) -> WitnessSigner:
    """The signer a key file's bytes hold (the serverless witness reads them from Parameter
    Store); ``where`` names their source in errors."""
    try:
        record = json.loads(data)
        name, key_type = record["name"], record["type"]
        seed = base64.b64decode(record["seed"], validate=True)
    except (ValueError, KeyError, TypeError) as err:
        raise FormatError(f"{where} is not a witness key file: {err}") from err
    kwargs = {} if clock is None else {"clock": clock}
    if key_type == "ed25519":
        return Ed25519CosignatureSigner(name, seed, **kwargs)
    if key_type == "ml-dsa-44":
        return MLDSA44CosignatureSigner(name, seed, **kwargs)
    raise FormatError(f"{where}: unknown key type {key_type!r}")
