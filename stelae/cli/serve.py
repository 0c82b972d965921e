"""``stelae init`` and ``stelae serve``: run a log on this machine."""

from __future__ import annotations

from pathlib import Path

import click

from stelae.cli.output import emit, json_option
from stelae.sequencer.logdir import init_log

DATA_HELP = "The log's data directory (config, signing key, and log/)."


@click.command()
@click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("stelae-data"),
    show_default=True,
    envvar="STELAE_DATA",
    help=DATA_HELP,
)
@click.option(
    "--origin",
    default="localhost/stelae",
    show_default=True,
    help="Checkpoint origin (a scheme-less URL naming the log).",
)
@json_option
def init(data: Path, origin: str, as_json: bool) -> None:
    """Create a log and print its verifier key (idempotent for the same origin).

    \b
    Example:
      stelae init --data ./stelae-data --origin log.example.test/stelae --json
    """
    log, created = init_log(data, origin)
    emit(
        as_json,
        {
            "origin": log.config.origin,
            "vkey": log.config.vkey,
            "data": str(data),
            "log_dir": str(log.log_dir),
            "created": created,
        },
        f"{'created' if created else 'existing'} log {log.config.origin} in {data}\n"
        f"verifier key: {log.config.vkey}",
    )


@click.command()
def serve() -> None:
    """Run the write API, the sequencer and a static file server in one process."""
    raise click.ClickException("not built yet")
