"""``stelae upload``: post a signed statement to a log's write API and verify what comes back.

The request is built from files and checked locally first (the signature verified, the canonical
body built, exactly as the log will), so a bad upload fails before any network traffic and the
answer can be matched byte for byte against the body we expect.

Answers (docs/compatibility.md, "Rekor wire compatibility"):

- ``201``: the entry, new or (``X-Stelae-Duplicate: true``) already logged, with its proof;
- ``409`` (a strict server's duplicate) and ``202`` (queued): the entry is fetched from
  ``/api/v1/log/entries/<uuid>``, polled with backoff until ``--timeout``;
- ``503``: retried after ``Retry-After`` until ``--timeout``;
- any other 4xx/5xx: the server's message, exit 1. Network failures: one sentence, exit 1.

The returned checkpoint is verified with the log's ``--vkey`` and the inclusion proof against
it before success is printed: a log's answer about itself proves nothing until checked with a
key the user already trusts (fetching the key from the same server would be circular).
``--no-verify`` skips that, loudly.
"""

from __future__ import annotations

import email.message
import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click

from stelae.cli.keys import Api, EntryType, SignatureFormat, load_material, signer_options
from stelae.cli.output import emit, json_option
from stelae.cli.reading import url_suggestion
from stelae.cli.verify import check_bundle, vkey_verifier
from stelae.errors import StelaeError
from stelae.tiles.counts import count
from stelae.tiles.decimals import parse_decimal
from stelae.tiles.errors import FormatError, VerificationError
from stelae.tiles.notekeys import Ed25519NoteVerifier, VkeyVerifier, rekor_v2_log_id
from stelae.tiles.proofbundle import ProofBundle

_USER_AGENT = "stelae-cli"
_MAX_ANSWER = 16 * 1024 * 1024


class UploadError(StelaeError):
    """The upload did not produce a logged entry (network, server refusal, timeout)."""


class ServerRefusedError(UploadError):
    """The server answered with an error status. Carries ``status`` and the server's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"the server refused the entry (HTTP {status}): {message}")
        self.status = status
        self.server_message = message


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: email.message.Message
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as err:
            raise UploadError(
                f"the server answered HTTP {self.status} with a body that is not JSON"
            ) from err

    def message(self) -> str:
        """The ``message`` of a Rekor-style error body, else the body's first line."""
        try:
            obj = json.loads(self.body)
            if isinstance(obj, dict) and isinstance(obj.get("message"), str):
                return str(obj["message"])
        except (ValueError, UnicodeDecodeError):
            pass
        text = self.body.decode("utf-8", "replace").strip().splitlines()
        return text[0][:300] if text else "(no message)"


class _Http:
    """The few requests upload makes; error statuses are answers, not exceptions."""

    def __init__(self, server: str, deadline: float) -> None:
        self.server = server.rstrip("/")
        self.deadline = deadline

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def request(self, method: str, path: str, body: bytes | None = None) -> _Answer:
        url = self.server + path
        headers = {"Accept": "application/json", "User-Agent": _USER_AGENT}
        if body is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=body, headers=headers, method=method)  # noqa: S310
        timeout = max(self.remaining(), 1.0)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
                return _Answer(resp.status, resp.headers, resp.read(_MAX_ANSWER))
        except urllib.error.HTTPError as err:
            with err:
                return _Answer(err.code, err.headers, err.read(_MAX_ANSWER))
        except urllib.error.URLError as err:
            raise UploadError(f"couldn't reach the server at {self.server}: {err.reason}") from err
        except TimeoutError as err:
            raise UploadError(f"the server at {self.server} did not answer in time") from err
        except OSError as err:
            raise UploadError(f"couldn't talk to the server at {self.server}: {err}") from err


def _retry_after(answer: _Answer, default: float) -> float:
    value = answer.headers.get("Retry-After", "")
    # RFC 9110 §10.2.3 delta-seconds is 1*DIGIT (leading zeros allowed); an HTTP date or anything
    # else falls back to the default. The caller caps the wait by the time left.
    try:
        return float(parse_decimal(value.lstrip("0") or "0", "Retry-After"))
    except FormatError:
        return default


def _fetch_logged(http: _Http, uuid: str, why: str) -> ProofBundle:
    """Poll ``GET /api/v1/log/entries/<uuid>`` with backoff until it answers or time runs out."""
    delay = 0.25
    while True:
        answer = http.request("GET", f"/api/v1/log/entries/{uuid}")
        if answer.status == 200:
            return ProofBundle.from_rekor_v1(answer.json())
        if answer.status not in (404, 503):
            raise ServerRefusedError(answer.status, answer.message())
        if http.remaining() <= 0:
            raise UploadError(
                f"the entry was {why} (UUID {uuid}) but was not in the log within the timeout",
                hint=f"check later with: stelae verify --uuid {uuid}",
            )
        time.sleep(min(delay, max(http.remaining(), 0.0)))
        delay = min(delay * 2, 4.0)


def _submit(
    http: _Http, api: Api, request: dict[str, Any], uuid: str
) -> tuple[ProofBundle, bool, bool]:
    """POST the entry: (its proof, whether it was already logged, whether the proof came from
    the v1 read API rather than the POST's answer)."""
    payload = json.dumps(request).encode()
    while True:
        answer = http.request("POST", f"/api/{api}/log/entries", payload)
        if answer.status == 201:
            obj = answer.json()
            if not isinstance(obj, dict):
                raise UploadError("the server's 201 answer is not a JSON object")
            bundle = ProofBundle.from_tle(obj) if api == "v2" else ProofBundle.from_rekor_v1(obj)
            duplicate = answer.headers.get("X-Stelae-Duplicate", "").lower() == "true"
            return bundle, duplicate, False
        if answer.status == 409:
            return _fetch_logged(http, uuid, "already logged"), True, True
        if answer.status == 202:
            click.echo(f"queued (UUID {uuid}); waiting for it to be integrated…", err=True)
            return _fetch_logged(http, uuid, "queued"), False, True
        if answer.status == 503 and http.remaining() > 0:
            wait = min(_retry_after(answer, 1.0), max(http.remaining(), 0.0))
            click.echo(f"the server is busy; retrying in {wait:.0f} s", err=True)
            time.sleep(wait)
            continue
        raise ServerRefusedError(answer.status, answer.message())


def _as_v2(bundle: ProofBundle, verifier: VkeyVerifier | None) -> ProofBundle:
    """A proof read through the v1 API, reshaped as Rekor v2 answers (v2 log ID, no SET)."""
    log_id = bundle.log_id
    if isinstance(verifier, Ed25519NoteVerifier):
        log_id = rekor_v2_log_id(verifier.name, verifier.public_key)
    return replace(bundle, log_id=log_id, integrated_time=0, signed_entry_timestamp=b"")


def write_bundle(path: Path, bundle: ProofBundle) -> None:
    """``*.tlog-proof`` gets the C2SP text; anything else the stelae JSON proof file."""
    data = bundle.to_tlog_proof() if path.suffix == ".tlog-proof" else bundle.to_json()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


@click.command()
@signer_options
@click.option(
    "--api",
    type=click.Choice(["v1", "v2"]),
    help="Which write API to use [default: v2 for hashedrekord, v1 for dsse and rekord].",
)
@click.option(
    "--bundle",
    "bundle_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the offline proof here: the stelae JSON proof file (TransparencyLogEntry + "
    "C2SP tlog-proof), or just the tlog-proof text if the name ends in .tlog-proof.",
)
@click.option(
    "--server",
    envvar="STELAE_SERVER",
    required=True,
    metavar="URL",
    help="The log's write API, e.g. http://127.0.0.1:8080 [env: STELAE_SERVER].",
)
@click.option(
    "--vkey",
    envvar="STELAE_VKEY",
    metavar="KEY|@FILE",
    help="The log's verifier key, to verify the answer (required unless --no-verify) "
    "[env: STELAE_VKEY].",
)
@click.option("--origin", help="The checkpoint origin, when it differs from the key's name.")
@click.option("--no-verify", is_flag=True, help="Do not verify the returned proof (not advised).")
@click.option(
    "--timeout",
    type=click.FloatRange(1, 3600),
    default=60.0,
    show_default=True,
    help="Seconds to wait for the entry to be logged.",
)
@json_option
def upload(
    *,
    artifact: Path | None,
    signature: Path | None,
    public_key: Path | None,
    certificate: Path | None,
    envelope: Path | None,
    entry_type: EntryType,
    signature_format: SignatureFormat,
    api: Api | None,
    bundle_out: Path | None,
    server: str,
    vkey: str | None,
    origin: str | None,
    no_verify: bool,
    timeout: float,
    as_json: bool,
) -> None:
    """Post a signed artifact to the log; verify and print the returned inclusion proof.

    The request is checked locally first (the signature must verify). The log's answer is
    verified with --vkey: its signed checkpoint, and the inclusion of exactly the entry sent.

    \b
    Example:
      stelae upload --artifact app.tar.gz --signature app.tar.gz.sig \\
          --public-key signer.pub --server http://127.0.0.1:8080 --vkey @vkey.txt \\
          --bundle app.proof.json
      stelae upload --type dsse --envelope att.dsse.json --public-key signer.pub \\
          --server http://127.0.0.1:8080 --vkey @vkey.txt
    """
    if vkey is None and not no_verify:
        raise click.UsageError(
            "give the log's --vkey (or STELAE_VKEY) to verify the answer, or --no-verify"
        )
    if not server.startswith(("http://", "https://")):
        raise click.BadParameter(
            f"{server} is not an http:// or https:// URL{url_suggestion(server)}",
            param_hint="'--server'",
        )
    verifier = vkey_verifier(vkey) if vkey is not None else None
    material = load_material(
        entry_type,
        artifact=artifact,
        signature=signature,
        public_key=public_key,
        certificate=certificate,
        envelope=envelope,
        signature_format=signature_format,
    )
    chosen: Api = api or material.apis()[0]
    if chosen not in material.apis():
        raise click.UsageError(f"--type {entry_type} has no {chosen} shape; use --api v1")
    request, entry = material.entry(chosen)

    http = _Http(server, time.monotonic() + timeout)
    bundle, duplicate, fetched = _submit(http, chosen, request, entry.uuid)
    if chosen == "v2" and fetched:
        bundle = _as_v2(bundle, verifier)
    if bundle.body != entry.body:
        raise VerificationError(
            f"the server answered with entry {bundle.index} (UUID {bundle.uuid}), "
            f"not the entry sent (UUID {entry.uuid})"
        )

    data: dict[str, Any] = {
        "index": bundle.index,
        "uuid": bundle.uuid,
        "duplicate": duplicate,
        "kind": entry.kind,
        "api_version": entry.api_version,
        "verified": verifier is not None,
    }
    lines = [
        f"{'Already in the log' if duplicate else 'Logged'}: entry {bundle.index}",
        f"UUID: {bundle.uuid}",
        f"Kind: {entry.kind} {entry.api_version}",
    ]
    if verifier is not None:
        try:
            cp = check_bundle(bundle, [verifier], origin or verifier.name)
        except FormatError as err:
            raise VerificationError(f"the server's answer does not verify: {err}") from err
        tree = cp.checkpoint
        lines.append(
            f"Inclusion proof verified: {count(len(bundle.hashes), 'hash', 'hashes')} to the root "
            f"{tree.root_hash.hex()} of tree size {tree.size}, checkpoint signed by "
            f"{verifier.name}"
        )
    else:
        tree = bundle.tree
        click.echo("warning: --no-verify: the log's answer was NOT verified", err=True)
        lines.append(f"Inclusion proof NOT verified (tree size {tree.size})")
    data.update(
        tree_size=tree.size,
        root_hash=tree.root_hash.hex(),
        checkpoint=bundle.checkpoint.decode(),
        transparency_log_entry=bundle.to_tle(),
    )
    if bundle_out is not None:
        write_bundle(bundle_out, bundle)
        data["bundle"] = str(bundle_out)
        lines.append(f"Proof written to {bundle_out}")
    emit(as_json, data, "\n".join(lines))
