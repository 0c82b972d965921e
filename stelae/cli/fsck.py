"""``stelae fsck``: check a whole log against its signed checkpoint and name every damaged object.

The checks are :func:`stelae.tiles.fsck.fsck`; this module only wires the reader options to it
and prints. Unlike ``stelae monitor`` it keeps no state and does not stop at the first problem.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from stelae.cli.output import json_option
from stelae.cli.reading import Reader, reader_options, require_quorum
from stelae.errors import StelaeError
from stelae.tiles.counts import count
from stelae.tiles.fsck import ListNames, Problem, Report, fsck
from stelae.tiles.notekeys import Ed25519NoteVerifier
from stelae.tiles.paths import CHECKPOINT


def _lister(root: Path | None) -> ListNames | None:
    """Names of the objects in a folder of a local log; None (cannot list) for a URL."""
    if root is None:
        return None

    def list_names(folder: str) -> Sequence[str] | None:
        try:
            return sorted(p.name for p in (root / folder).iterdir() if p.is_file())
        except FileNotFoundError:
            return []  # the folder does not exist: nothing of that class to check
        except OSError:
            return None  # unreadable: fall back to what an HTTP reader would find

    return list_names


@click.command("fsck")
@reader_options
@json_option
def fsck_command(reader: Reader, as_json: bool) -> None:
    """Check the whole log and report every damaged or missing object.

    Checks the checkpoint's signature, recomputes every entry bundle and hash tile from the
    entries up to the signed root, and checks the checkpoint history objects, the batch records
    (leaf hashes, base roots, signed entry timestamps) and the lookup index. A local directory
    is listed; over HTTP the history object of the current size and the chain of batch records
    from batch/0 are what can be found. Prints one line per problem on stdout (path, problem,
    expected and found), or with --json one object {"ok", "tree_size", "problems", "checked"},
    and a summary on stderr. Exits 0 if the log is whole, 1 if anything is damaged.

    \b
    Example:
      stelae fsck --log-url ./stelae-data --vkey @vkey.txt
      stelae fsck --log-url https://log.example.test --vkey @vkey.txt --json
    """
    reader.require_index_key()  # fsck checks the index manifests too
    client = reader.client
    set_key = next(
        (v.public_key for v in client.verifiers if isinstance(v, Ed25519NoteVerifier)), None
    )
    from stelae.kinds import lookup_keys  # noqa: PLC0415 - loads the entry kinds

    report = fsck(
        client.fetcher.fetch,
        client.verifiers,
        client.origin,
        lookup_keys,
        list_names=_lister(reader.local_dir),
        set_key=set_key,
        require_all=client.require_all,
    )
    _check_quorum(reader, report)
    if as_json:
        click.echo(json.dumps(report.to_json(), sort_keys=True))
    else:
        for p in report.problems:
            click.echo(p.line())
    click.echo(_summary(report), err=True)
    if not report.ok:
        sys.exit(1)


def _check_quorum(reader: Reader, report: Report) -> None:
    """With --witness-policy, a checkpoint its quorum did not cosign is a problem too."""
    if reader.policy is None or any(p.path == CHECKPOINT for p in report.problems):
        return
    try:
        require_quorum(reader.policy, reader.client.checkpoint())
    except StelaeError as err:
        report.problems.append(Problem(CHECKPOINT, f"witness policy not met: {err}"))


def _summary(report: Report) -> str:
    c = report.checked
    seen = (
        f"{count(c['entries'], 'entry', 'entries')}, {count(c['bundles'], 'bundle')}, "
        f"{count(c['tiles'], 'tile')}, {count(c['history'], 'history object')}, "
        f"{count(c['batch records'], 'batch record')}, {count(c['index runs'], 'index run')}"
    )
    if report.ok:
        return f"tree size {report.tree_size}: checked {seen}; no problems"
    n = len(report.problems)
    return f"tree size {report.tree_size}: checked {seen}; {count(n, 'problem')} found"
