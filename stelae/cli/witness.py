"""``stelae witness``: run a C2SP tlog-witness (https://c2sp.org/tlog-witness@v1.0.0)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import click

from stelae.tiles.errors import FormatError

_DATA_HELP = "The witness's data directory (its key and the latest cosigned checkpoint per log)."


@click.group(invoke_without_command=True)
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), help=_DATA_HELP)
@click.option(
    "--listen",
    default="127.0.0.1:8081",
    show_default=True,
    help="Address to serve on; port 0 picks a free one (the URL is printed on stderr).",
)
@click.option(
    "--log-list",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The logs to witness, in the witness network's logs/v0 format "
    "(vkey, origin, qpd: allowed add-checkpoint requests per day).",
)
@click.pass_context
def witness(ctx: click.Context, data: Path | None, listen: str, log_list: Path | None) -> None:
    """Cosign checkpoints of the listed logs, never two views of one log.

    Serves POST /add-checkpoint and GET /<sha256(origin) hex>/checkpoint (the latest
    cosigned checkpoint of a log). SIGTERM or Ctrl-C stops it.

    \b
    Example:
      stelae witness init --data ./witness-data --name witness.example/w1 > witness.vkey
      stelae witness --data ./witness-data --listen 127.0.0.1:8081 --log-list logs.txt
    """
    if ctx.invoked_subcommand is not None:
        return
    if data is None or log_list is None:
        raise click.UsageError("serving needs --data and --log-list (or use 'witness init')")
    # Imported here so that `stelae --help` does not load the server.
    from stelae.cli.serve import _listen  # noqa: PLC0415
    from stelae.witness.identity import load_key, vkey_of  # noqa: PLC0415
    from stelae.witness.loglist import LogList  # noqa: PLC0415
    from stelae.witness.protocol import Witness  # noqa: PLC0415
    from stelae.witness.server import WitnessServer  # noqa: PLC0415
    from stelae.witness.state import WitnessState  # noqa: PLC0415

    host, port = _listen(listen)
    try:
        logs = LogList.parse(log_list.read_bytes())
    except FormatError as err:
        raise click.BadParameter(str(err), param_hint="'--log-list'") from err
    signer = load_key(data)
    server = WitnessServer(Witness(signer, logs, WitnessState(data)), host, port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        server.start()
        click.echo(f"witness vkey: {vkey_of(signer)}", err=True)
        click.echo(f"witnessing {len(logs.logs)} logs; serving on {server.url}", err=True)
        stop.wait()
    finally:
        server.close()
    click.echo("stopped", err=True)


@witness.command()
@click.option(
    "--data", type=click.Path(file_okay=False, path_type=Path), required=True, help=_DATA_HELP
)
@click.option(
    "--name",
    default="localhost/stelae-witness",
    show_default=True,
    help="The witness's key name (a scheme-less URL naming it).",
)
@click.option(
    "--key-type",
    type=click.Choice(["ed25519", "ml-dsa-44"]),
    default="ed25519",
    show_default=True,
    help="Cosignature type: Ed25519 (0x04, tlog-cosignature v1.0.1) or ML-DSA-44 "
    "(0x06, tlog-cosignature v1.1.0-rc.1).",
)
def init(data: Path, name: str, key_type: str) -> None:
    """Create the witness's key and print its vkey (the only line on stdout).

    \b
    Example:
      stelae witness init --data ./witness-data --name witness.example/w1
    """
    from stelae.witness.identity import create_key, vkey_of  # noqa: PLC0415

    signer = create_key(data, name, "ed25519" if key_type == "ed25519" else "ml-dsa-44")
    click.echo(vkey_of(signer))
