"""``stelae gc``: a one-off collection of every obsolete partial tile and bundle of a log.

The sequencer collects as it goes (docs/durability.md, "Garbage collection"); this command is for
what it never saw: a log grown before garbage collection existed or with it off, or partials a
sequencer left behind. The work is :func:`stelae.sequencer.collector.collect_all`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from stelae.cli.output import emit, json_option
from stelae.cli.serve import data_option
from stelae.tiles.errors import FormatError
from stelae.tiles.gc import DEFAULT_GRACE

if TYPE_CHECKING:
    from stelae.sequencer.local import LocalStore
    from stelae.sequencer.s3 import S3Store


@click.command("gc")
@data_option
@click.option(
    "--s3",
    "s3_url",
    metavar="s3://BUCKET[/PREFIX]",
    help="Collect a log in S3 instead of a data directory (needs --vkey).",
)
@click.option(
    "--vkey",
    help="The log's verifier key (or @FILE), for --s3: the checkpoint is verified before "
    "anything is deleted.",
)
@click.option(
    "--grace",
    type=click.FloatRange(0, 86400),
    default=DEFAULT_GRACE,
    show_default=True,
    help="Seconds to wait after reading the checkpoint before deleting, so that readers holding "
    "an older checkpoint find the partials it names meanwhile; 0 for a log nobody reads.",
)
@json_option
def gc_command(
    data: Path, s3_url: str | None, vkey: str | None, grace: float, as_json: bool
) -> None:
    """Delete the partial tiles and bundles of every tile that is full in the published tree.

    https://c2sp.org/tlog-tiles lets a log delete a partial tile once the full tile exists;
    readers then use the full one. The checkpoint is read and verified first, then the command
    waits --grace seconds, then deletes every partial width (1..255) of every full tile and
    bundle at that size, whether it exists or not. Nothing else is ever deleted. Safe to run
    beside `stelae serve` and to run again. Prints how many keys were deleted.

    \b
    Example:
      stelae gc --data ./stelae-data
      stelae gc --s3 s3://my-log-bucket --vkey @vkey.txt --json
    """
    from stelae.cli.reading import vkey_verifiers  # noqa: PLC0415
    from stelae.sequencer.collector import collect_all  # noqa: PLC0415
    from stelae.tiles.checkpoint import open_checkpoint  # noqa: PLC0415
    from stelae.tiles.paths import CHECKPOINT  # noqa: PLC0415

    store: LocalStore | S3Store
    if s3_url is not None:
        if not vkey:
            raise click.UsageError("--s3 needs --vkey (the log's verifier key)")
        store = _s3_store(s3_url)
        verifiers = vkey_verifiers(vkey)
    else:
        from stelae.sequencer.logdir import open_log  # noqa: PLC0415

        log = open_log(data)
        store, verifiers = log.store, [log.signer.verifier]
    origin = verifiers[0].name
    size = open_checkpoint(store.get(CHECKPOINT), verifiers, origin).checkpoint.size
    if grace:
        click.echo(f"tree size {size}: waiting {grace:g} s (the grace period)…", err=True)
        time.sleep(grace)

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty():
            click.echo(f"\rdeleted {done}/{total} keys", err=True, nl=done == total)

    deleted = collect_all(store, size, progress=progress)
    emit(
        as_json,
        {"tree_size": size, "deleted_keys": deleted},
        f"tree size {size}: deleted {deleted} partial tile and bundle keys (those that held "
        "nothing included)",
    )


def _s3_store(url: str) -> S3Store:
    from stelae.sequencer.s3 import S3Store  # noqa: PLC0415 - boto3 only when asked

    try:
        return S3Store.from_url(url)
    except FormatError as err:
        raise click.BadParameter(str(err), param_hint="--s3") from err
