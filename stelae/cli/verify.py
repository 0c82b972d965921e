"""``stelae verify``: prove an entry is in the log, online from its tiles or offline from a proof.

Three ways to name the entry, one verdict:

- ``--artifact --signature (--public-key | --certificate)`` (or ``--envelope`` for dsse): the
  canonical body is rebuilt locally, exactly as the log builds it (every wire shape the kind
  has), and its leaf hash looked up in the log's verifiable lookup index (docs/index.md);
- ``--uuid`` / ``--log-index``: the entry is fetched;
- ``--bundle``: nothing is fetched. The proof file carries the body, the index, the inclusion
  proof and the signed checkpoint.

Every path ends the same way: the checkpoint's signature is verified with ``--vkey``, the
inclusion proof against it, the body is re-parsed (hashedrekord signatures re-verified), and
``--artifact`` / the key, when given, must be what the body commits to. Any failed check is exit 1.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from stelae import kinds
from stelae.cli.keys import EntryType, Material, SignatureFormat, load_material, signer_options
from stelae.cli.output import emit, json_option, read_value
from stelae.cli.read import EntryNotFoundError, parse_uuid
from stelae.cli.reading import (
    Reader,
    load_policy,
    open_reader,
    require_quorum,
    vkey_verifiers,
    witness_policy_option,
)
from stelae.tiles.checkpoint import SignedCheckpoint
from stelae.tiles.errors import FormatError, VerificationError
from stelae.tiles.note import NoteVerifier
from stelae.tiles.notekeys import Ed25519NoteVerifier, VkeyVerifier, parse_vkey
from stelae.tiles.proofbundle import ProofBundle
from stelae.tiles.proofbundle import verify as verify_proof
from stelae.tiles.timestamp import verify_set


class ArtifactMismatchError(VerificationError):
    """The entry does not commit to the artifact given. Carries both sides' digests."""

    def __init__(self, artifact: tuple[str, ...], entry: tuple[str, ...]) -> None:
        super().__init__(
            f"the entry does not commit to this artifact: the entry records "
            f"{', '.join(entry) or 'no digest'}, the artifact is {', '.join(artifact)}"
        )
        self.artifact = artifact
        self.entry = entry


class KeyMismatchError(VerificationError):
    """The entry was not signed with the key given. Carries both sides' fingerprints."""

    def __init__(self, key: str, entry: tuple[str, ...]) -> None:
        super().__init__(
            f"the entry was not signed with this key (fingerprint {key}); its signers are "
            f"{', '.join(entry) or 'unknown'}"
        )
        self.key = key
        self.entry = entry


# --- checks shared with upload -------------------------------------------------------------------


def vkey_verifier(vkey: str) -> VkeyVerifier:
    """``--vkey KEY|@FILE`` → a note verifier; a bad key is a usage error."""
    try:
        return parse_vkey(read_value(vkey, "--vkey"))
    except FormatError as err:
        raise click.BadParameter(str(err), param_hint="'--vkey'") from err


def check_bundle(
    bundle: ProofBundle, verifiers: Sequence[NoteVerifier], origin: str
) -> SignedCheckpoint:
    """Verify a proof offline: checkpoint signature and origin (by every key of ``verifiers``
    when there are several: the log's Ed25519 and ML-DSA-44 keys), log ID, inclusion, and the
    Rekor v1 signed entry timestamp when the proof carries one (stelae SETs are Ed25519, made
    with the checkpoint key)."""
    cp = verify_proof(bundle, verifiers, origin, require_all=len(verifiers) > 1)
    for verifier in verifiers:
        if bundle.signed_entry_timestamp and isinstance(verifier, Ed25519NoteVerifier):
            verify_set(
                verifier.public_key,
                bundle.signed_entry_timestamp,
                bundle.body,
                bundle.integrated_time,
                bundle.index,
            )
    return cp


def artifact_digests(data: bytes, entry: kinds.Entry) -> tuple[str, ...]:
    """The artifact's digests in each algorithm the entry uses; raises unless one matches."""
    algs = sorted({d.partition(":")[0] for d in entry.artifact_digests} or {"sha256"})
    mine = tuple(f"{alg}:{hashlib.new(alg, data).hexdigest()}" for alg in algs)
    if not set(mine) & set(entry.artifact_digests):
        raise ArtifactMismatchError(mine, entry.artifact_digests)
    return mine


def check_key(key_file: bytes, entry: kinds.Entry, signature_format: str | None) -> str:
    """The key's fingerprint; raises unless the entry lists it among its signers."""
    fingerprint = kinds.fingerprint_public_key(key_file, signature_format)
    if fingerprint not in entry.key_fingerprints:
        raise KeyMismatchError(fingerprint, entry.key_fingerprints)
    return fingerprint


# --- the command ---------------------------------------------------------------------------------


def _online_by_material(reader: Reader, material: Material) -> tuple[int, bytes, SignedCheckpoint]:
    """Rebuild the body in each shape the kind has; the first whose UUID the log knows wins."""
    tried: list[str] = []
    cp = reader.current()
    for api in material.apis():
        _, entry = material.entry(api)
        tried.append(entry.uuid)
        found = reader.client.locate(entry.leaf_hash, cp)
        if found is None:
            continue
        return _prove(reader, found.index, entry.leaf_hash)
    raise EntryNotFoundError(
        f"no entry for this {material.type} in the log (looked up UUID {', '.join(tried)})"
    )


def _online(
    reader: Reader, material: Material | None, uuid: str | None, log_index: int | None
) -> tuple[int, bytes, SignedCheckpoint]:
    """The entry named by its material, its UUID or its index, with its inclusion in the
    verified checkpoint proved: (index, body, checkpoint)."""
    if log_index is None:
        reader.require_index_key()  # found through the lookup index
    if material is not None:
        return _online_by_material(reader, material)
    if uuid is not None:
        leaf = parse_uuid(uuid)
        found = reader.client.locate(leaf, reader.current())
        if found is None:
            raise EntryNotFoundError(f"no entry with UUID {leaf.hex()} in this log")
        return _prove(reader, found.index, leaf)
    assert log_index is not None
    return _prove(reader, log_index)


def _prove(
    reader: Reader, index: int, leaf: bytes | None = None
) -> tuple[int, bytes, SignedCheckpoint]:
    cp = reader.current()
    if index >= cp.checkpoint.size:
        raise EntryNotFoundError(
            f"entry {index} is not in the log's verified checkpoint (size {cp.checkpoint.size})",
            hint="it may be queued; try again in a few seconds",
        )
    entry = reader.client.entry(index, cp)
    if leaf is not None and entry.leaf_hash != leaf:
        raise VerificationError(
            f"the leaf index maps UUID {leaf.hex()} to entry {index}, "
            f"whose leaf hash is {entry.leaf_hash.hex()}"
        )
    return index, entry.data, cp


@click.command()
@signer_options
@click.option("--uuid", help="The entry's UUID (hex leaf hash) or Rekor 80-hex entry ID.")
@click.option("--log-index", type=click.IntRange(min=0), help="The entry's index in the log.")
@click.option(
    "--bundle",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Verify offline from this proof file (stelae JSON, .tlog-proof, or a Sigstore "
    "TransparencyLogEntry); nothing is fetched.",
)
@click.option(
    "--log-url",
    envvar="STELAE_LOG_URL",
    metavar="URL|DIR",
    help="The log's tlog-tiles prefix, for online checks [env: STELAE_LOG_URL].",
)
@click.option(
    "--vkey",
    envvar="STELAE_VKEY",
    metavar="KEY|@FILE",
    multiple=True,
    help="The log's verifier key, or @FILE holding it (required); repeat it to require the "
    "log's Ed25519 and ML-DSA-44 signatures both [env: STELAE_VKEY, blank-separated].",
)
@click.option("--origin", help="The checkpoint origin, when it differs from the key's name.")
@click.option(
    "--state-dir",
    envvar="STELAE_STATE_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the last verified checkpoints are kept (online checks) [env: STELAE_STATE_DIR].",
)
@witness_policy_option
@json_option
def verify(
    *,
    artifact: Path | None,
    signature: Path | None,
    public_key: Path | None,
    certificate: Path | None,
    envelope: Path | None,
    entry_type: EntryType,
    signature_format: SignatureFormat,
    uuid: str | None,
    log_index: int | None,
    bundle: Path | None,
    log_url: str | None,
    vkey: tuple[str, ...],
    origin: str | None,
    state_dir: Path | None,
    witness_policy: Path | None,
    as_json: bool,
) -> None:
    """Prove an entry is in the log: online, or offline from a proof file with --bundle.

    Name the entry by its artifact, signature and key (the body is rebuilt locally and looked up
    by UUID), by --uuid or --log-index, or give --bundle to verify with no network at all. The
    checkpoint must verify with --vkey and the inclusion proof against it; with --artifact the
    entry must commit to the artifact's digest, with --public-key/--certificate be signed by it.

    \b
    Example:
      stelae verify --bundle app.proof.json --vkey @vkey.txt --artifact app.tar.gz
      stelae verify --artifact app.tar.gz --signature app.tar.gz.sig \\
          --public-key signer.pub --log-url http://127.0.0.1:8080 --vkey @vkey.txt
      stelae verify --uuid 3f1c…(64 hex) --log-url https://log.example.test --vkey @vkey.txt
    """
    if not vkey:
        raise click.UsageError("give the log's verifier key with --vkey (or STELAE_VKEY)")
    by_material = signature is not None or envelope is not None
    modes = [by_material, uuid is not None, log_index is not None, bundle is not None]
    if sum(modes) != 1:
        raise click.UsageError(
            "give exactly one of: --artifact/--signature/--public-key (or --envelope), --uuid, "
            "--log-index, --bundle"
        )
    key_file = public_key if public_key is not None else certificate
    if public_key is not None and certificate is not None:
        raise click.UsageError("give at most one of --public-key or --certificate")

    mode = "offline" if bundle is not None else "online"
    if bundle is not None:
        verifiers = vkey_verifiers(vkey)
        proof = ProofBundle.parse(bundle.read_bytes())
        cp = check_bundle(proof, verifiers, origin or verifiers[0].name)
        require_quorum(load_policy(witness_policy), cp)  # offline too: the note carries them
        index, body = proof.index, proof.body
    else:
        if log_url is None:
            raise click.UsageError("online checks need --log-url (or STELAE_LOG_URL)")
        reader = open_reader(log_url, vkey, origin, state_dir, witness_policy)
        material = (
            load_material(
                entry_type,
                artifact=artifact,
                signature=signature,
                public_key=public_key,
                certificate=certificate,
                envelope=envelope,
                signature_format=signature_format,
            )
            if by_material
            else None
        )
        index, body, cp = _online(reader, material, uuid, log_index)

    entry = kinds.from_body(body)  # re-verifies the signature where the body allows
    data: dict[str, Any] = {
        "verified": True,
        "mode": mode,
        "index": index,
        "uuid": entry.uuid,
        "kind": entry.kind,
        "api_version": entry.api_version,
        "origin": cp.checkpoint.origin,
        "tree_size": cp.checkpoint.size,
        "root_hash": cp.checkpoint.root_hash.hex(),
        "checkpoint": cp.to_bytes().decode(),
        "body_b64": base64.b64encode(body).decode(),
    }
    lines = [
        f"Verified ({mode}): entry {index} is in the log {cp.checkpoint.origin}",
        f"UUID: {entry.uuid}",
        f"Kind: {entry.kind} {entry.api_version}",
        f"Checkpoint: tree size {cp.checkpoint.size}, root {cp.checkpoint.root_hash.hex()}",
    ]
    if artifact is not None:
        digests = artifact_digests(artifact.read_bytes(), entry)
        data["artifact_digests"] = list(digests)
        lines.append(f"Artifact: {', '.join(digests)} (committed to by the entry)")
    if key_file is not None:
        fmt = signature_format if entry_type == "rekord" else None
        fingerprint = check_key(key_file.read_bytes(), entry, fmt)
        data["key_fingerprint"] = fingerprint
        lines.append(f"Signer: key {fingerprint}")
    emit(as_json, data, "\n".join(lines))
