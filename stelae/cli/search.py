"""``stelae search``: find entries by artifact digest, signer key or identity, with a proof that
the answer is complete.

The lookup goes through the log's verifiable index (docs/index.md, :mod:`stelae.tiles.search`):
the index manifest signed for the verified checkpoint, and one shard per run, each hit proved a
member and each run without one proved not to hold the key. So the answer is every entry below the
verified tree size that the log indexed under the key, and a failed proof is exit 1 with the
evidence. Each hit is then fetched with its inclusion proved and its body re-parsed
(:func:`stelae.kinds.from_body`) to check it really commits to what was searched for. A hit that
does not is reported on stderr, never printed as a result, and makes the exit status 1: a log that
indexes entries under the wrong keys is broken or lying (or, with 2^64 work, someone forced a
16-byte index-key collision). An index that leaves an entry out is what `stelae monitor` catches.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from stelae.cli.output import emit, json_option
from stelae.cli.reading import Reader, reader_options
from stelae.tiles.errors import FormatError, VerificationError
from stelae.tiles.indexkeys import KeyKind, normalize
from stelae.tiles.search import LookupAnswer, lookup_or_latest

if TYPE_CHECKING:
    from stelae.kinds import Entry
    from stelae.tiles.checkpoint import Checkpoint, SignedCheckpoint


# stelae.kinds is imported on first use: it loads JSON schemas and OpenPGP support, which would
# double the start-up time of every command that never parses an entry.


def parse_entry(body: bytes) -> Entry:
    """:func:`stelae.kinds.from_body`: the entry a canonical body holds, with its lookup keys."""
    from stelae.kinds import from_body  # noqa: PLC0415 - deliberately lazy, see above

    return from_body(body)


def fingerprint_key_file(data: bytes) -> str:
    """:func:`stelae.kinds.fingerprint_public_key`: the key index fingerprint of a key file."""
    from stelae.kinds import fingerprint_public_key  # noqa: PLC0415 - deliberately lazy

    return fingerprint_public_key(data)


@dataclass(frozen=True)
class Query:
    """What to look for: ``kind`` is ``digest``, ``key`` or ``identity``; ``value`` normalized as
    :class:`stelae.kinds.Entry` records it (``sha256:<hex>``, hex fingerprint, email/URI)."""

    kind: str
    value: str

    @property
    def key_kind(self) -> KeyKind:
        return KeyKind(self.kind)

    def label(self) -> str:
        return f"{self.kind} {self.value}"

    def matches(self, entry: Entry) -> bool:
        if self.kind == "digest":
            return self.value in entry.artifact_digests
        if self.kind == "key":
            return self.value in entry.key_fingerprints
        if _is_email(self.value):
            return self.value.lower() in {i.lower() for i in entry.identities if _is_email(i)}
        return self.value in entry.identities


def _is_email(identity: str) -> bool:
    return "@" in identity and "://" not in identity


def digest_query(value: str, option: str = "--sha") -> Query:
    """``[alg:]hex`` (SHA-256 without a prefix), validated and lowercased."""
    text = value.strip().lower()
    if ":" not in text:
        text = f"sha256:{text}"
    try:
        normalize(KeyKind.DIGEST, text)
    except FormatError as err:
        raise click.BadParameter(str(err), param_hint=f"'{option}'") from err
    return Query("digest", text)


def artifact_query(path: Path) -> Query:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return Query("digest", f"sha256:{h.hexdigest()}")


def key_query(path: Path, option: str = "--public-key") -> Query:
    """The key index fingerprint of a public key or certificate file (PEM, SSH, minisign, PGP)."""
    try:
        return Query("key", fingerprint_key_file(path.read_bytes()))
    except FormatError as err:
        raise click.BadParameter(f"{path}: {err}", param_hint=f"'{option}'") from err


def identity_query(value: str, option: str) -> Query:
    text = value.strip()
    if not text:
        raise click.BadParameter("an identity cannot be empty", param_hint=f"'{option}'")
    return Query("identity", text.lower() if _is_email(text) else text)


@dataclass(frozen=True)
class Mismatch:
    index: int
    uuid: str
    reason: str


def check_hit(query: Query, body: bytes) -> str | None:
    """None if ``body`` commits to ``query``, else why not."""
    try:
        entry = parse_entry(body)
    except FormatError as err:  # InvalidEntryError: not a known kind's canonical body
        return f"its body is not a known entry kind ({err})"
    if query.matches(entry):
        return None
    return f"its {entry.kind} body does not mention {query.label()}"


def query_from_options(
    sha: str | None,
    artifact: Path | None,
    public_key: Path | None,
    email: str | None,
    uri: str | None,
) -> Query:
    """The query the one given option asks; a usage error unless exactly one is given."""
    given = [v for v in (sha, artifact, public_key, email, uri) if v is not None]
    if len(given) != 1:
        raise click.UsageError(
            "give exactly one of --sha, --artifact, --public-key, --email, --uri"
        )
    if sha is not None:
        return digest_query(sha)
    if artifact is not None:
        return artifact_query(artifact)
    if public_key is not None:
        return key_query(public_key)
    if email is not None:
        return identity_query(email, "--email")
    assert uri is not None
    return identity_query(uri, "--uri")


@dataclass(frozen=True)
class Found:
    """The verified answer to a query at tree size ``size``: the hits whose entries really
    match it, and those that do not (with why)."""

    size: int
    answer: LookupAnswer
    hits: tuple[dict[str, Any], ...]
    mismatches: tuple[Mismatch, ...]


def find(reader: Reader, query: Query) -> Found:
    """Look ``query`` up in the log's index at the verified checkpoint, fetch every hit with
    its inclusion proved, and check each one's body against the query."""
    reader.require_index_key()
    cp = reader.current()
    newer: list[SignedCheckpoint] = []

    def latest() -> Checkpoint:
        # The log collected an index object of ``cp`` (docs/index.md, "Garbage collection"):
        # the checkpoint it serves now, verified and proved consistent with the last one seen.
        newer.append(reader.current())
        return newer[-1].checkpoint

    answer = lookup_or_latest(
        reader.client.fetcher.fetch,
        reader.client.verifiers,
        reader.origin,
        cp.checkpoint,
        query.key_kind,
        query.value,
        latest,
    )  # every proof verified, or it raises with the evidence
    if newer and answer.tree_size == newer[-1].checkpoint.size:
        cp = newer[-1]
    hits: list[dict[str, Any]] = []
    mismatches: list[Mismatch] = []
    for index in answer.indices:
        entry = reader.client.entry(index, cp)  # inclusion proved, or it raises
        reason = check_hit(query, entry.data)
        if reason is None:
            hits.append({"index": index, "uuid": entry.leaf_hash.hex()})
        else:
            mismatches.append(Mismatch(index, entry.leaf_hash.hex(), reason))
    return Found(cp.checkpoint.size, answer, tuple(hits), tuple(mismatches))


FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command()
@click.option("--sha", metavar="[ALG:]HEX", help="An artifact digest (SHA-256 if no prefix).")
@click.option("--artifact", type=FILE, help="An artifact file (searched by its SHA-256).")
@click.option("--public-key", type=FILE, help="A public key or certificate file.")
@click.option("--email", help="A certificate email identity.")
@click.option("--uri", help="A certificate URI identity.")
@reader_options
@json_option
def search(  # noqa: PLR0917 - click passes options as arguments
    reader: Reader,
    sha: str | None,
    artifact: Path | None,
    public_key: Path | None,
    email: str | None,
    uri: str | None,
    as_json: bool,
) -> None:
    """Find entries by artifact digest, signer key or identity; verify every hit.

    Prints one "UUID INDEX" line per entry (or --json). Nothing found is not an error (exit 0,
    as rekor-cli); a hit whose entry does not really match is reported and makes the exit 1.

    \b
    Example:
      stelae search --log-url https://log.example.test --vkey @vkey.txt --artifact ./app.tar.gz
      stelae search --log-url ./stelae-data --vkey @vkey.txt --email alice@example.com --json
    """
    query = query_from_options(sha, artifact, public_key, email, uri)
    found = find(reader, query)
    size, answer, hits, mismatches = found.size, found.answer, found.hits, found.mismatches
    click.echo(
        f"complete for tree size {size}: the index's proofs cover all {len(answer.proofs)} "
        f"run(s) ({answer.objects_read} objects read)",
        err=True,
    )
    if not hits and not mismatches:
        click.echo(f"no entries found for {query.label()}", err=True)
    if hits or as_json:  # an empty text result prints nothing, not an empty line
        emit(
            as_json,
            {
                "query": {"kind": query.kind, "value": query.value},
                "tree_size": size,
                "complete": True,
                "objects_read": answer.objects_read,
                "entries": hits,
                "mismatched": [m.__dict__ for m in mismatches],
            },
            "\n".join(f"{h['uuid']} {h['index']}" for h in hits),
        )
    for m in mismatches:
        click.echo(
            f"MISMATCH: entry {m.index} ({m.uuid}) is indexed under {query.label()}, "
            f"but {m.reason}",
            err=True,
        )
    if mismatches:
        raise VerificationError(
            f"{len(mismatches)} of the log's index hits for {query.label()} do not match; "
            "they were not printed as results"
        )
