"""``stelae index``: maintain a log's lookup index (docs/index.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from stelae.cli.output import emit, json_option
from stelae.cli.serve import data_option


@click.group()
def index() -> None:
    """Maintain the log's verifiable lookup index (docs/index.md).

    \b
    Example:
      stelae index rebuild --data ./stelae-data
    """


@index.command()
@data_option
@click.option(
    "--s3",
    "s3_url",
    metavar="s3://BUCKET[/PREFIX]",
    help="Rebuild a log in S3 instead of a data directory (the signing key comes from --data's "
    "signing.key or --key-file).",
)
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The log's signing key (PRIVATE+KEY+...), for --s3.",
)
@json_option
def rebuild(data: Path, s3_url: str | None, key_file: Path | None, as_json: bool) -> None:
    """Build the lookup index of the published tree from the log's own entries.

    For a log written before the batch-level index: the sequencer refuses to extend a log whose
    checkpoint has no index manifest. Idempotent; stop `stelae serve` first.

    \b
    Example:
      stelae index rebuild --data ./stelae-data
      stelae index rebuild --s3 s3://my-log-bucket --key-file signing.key
    """
    from stelae.sequencer.rebuild import rebuild_index  # noqa: PLC0415
    from stelae.sequencer.store import ObjectStore  # noqa: PLC0415
    from stelae.tiles.errors import FormatError  # noqa: PLC0415
    from stelae.tiles.notekeys import Ed25519NoteSigner  # noqa: PLC0415

    if s3_url is not None:
        from stelae.sequencer.s3 import S3Store  # noqa: PLC0415 - boto3 only when asked

        if key_file is None:
            raise click.UsageError("--s3 needs --key-file (the log's signing key)")
        try:
            store: ObjectStore = S3Store.from_url(s3_url)
        except FormatError as err:
            raise click.BadParameter(str(err), param_hint="--s3") from err
        signer = Ed25519NoteSigner.from_skey(key_file.read_text().strip())
    else:
        from stelae.sequencer.logdir import open_log  # noqa: PLC0415

        log = open_log(data)
        store, signer = log.store, log.signer

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty():
            click.echo(f"\rindexed {done}/{total} entries", err=True, nl=done == total)

    from stelae.kinds import lookup_keys  # noqa: PLC0415 - loads schemas; only when rebuilding

    manifest = rebuild_index(store, signer, lookup_keys, progress=progress)
    runs = [{"a": r.a, "b": r.b, "bits": r.bits, "root": r.root.hex()} for r in manifest.runs]
    emit(
        as_json,
        {"tree_size": manifest.size, "runs": runs},
        f"indexed {manifest.size} entries in {len(runs)} run(s)",
    )
