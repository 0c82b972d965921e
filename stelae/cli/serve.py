"""``stelae init`` and ``stelae serve``: run a log on this machine."""

from __future__ import annotations

import contextlib
import errno
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import click

from stelae.cli.output import emit, json_option, note
from stelae.errors import StelaeError
from stelae.sequencer.logdir import LocalLog, init_log, open_log
from stelae.tiles.decimals import parse_decimal
from stelae.tiles.errors import FormatError
from stelae.tiles.gc import DEFAULT_GRACE, parse_grace

if TYPE_CHECKING:
    from collections.abc import Callable

    from click.decorators import FC

    from stelae.sequencer.witnessing import WitnessCollector

data_option = click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("stelae-data"),
    show_default=True,
    envvar="STELAE_DATA",
    help="The log's data directory (config, signing key, and log/).",
)


def _origin_option(help_text: str) -> Callable[[FC], FC]:
    """``--origin`` for the two commands that may create a log (what a new log is named)."""
    return click.option("--origin", default="localhost/stelae", show_default=True, help=help_text)


@click.command()
@data_option
@_origin_option("Checkpoint origin (a scheme-less URL naming the log).")
@click.option(
    "--mldsa",
    is_flag=True,
    help="Also give the log an ML-DSA-44 key (type 0x06): every checkpoint then carries a "
    "post-quantum log signature beside the Ed25519 one (docs/compatibility.md). An existing "
    "log without one gets it added.",
)
@json_option
def init(data: Path, origin: str, mldsa: bool, as_json: bool) -> None:
    """Create a log and print its verifier key (idempotent for the same origin).

    Without --json, stdout is the verifier key line alone (what --vkey @FILE reads); what
    happened goes to stderr, the ML-DSA-44 verifier key too. --json also prints
    "mldsa_vkey" (null without one).

    \b
    Example:
      stelae init --data ./stelae-data --origin log.example.test/stelae > vkey.txt
      stelae init --data ./stelae-data --origin log.example.test/stelae --json
      stelae init --data ./stelae-data --mldsa --json | jq -r .mldsa_vkey > mldsa-vkey.txt
    """
    log, created = init_log(data, origin, mldsa=mldsa)
    if not as_json:
        # stdout is the verifier key alone, so `stelae init > vkey.txt` makes a --vkey @file.
        note(f"{'created' if created else 'existing'} log {log.config.origin} in {data}")
        if log.config.mldsa_vkey is not None:
            note(f"ML-DSA-44 verifier key: {log.config.mldsa_vkey}")
    emit(
        as_json,
        {
            "origin": log.config.origin,
            "vkey": log.config.vkey,
            "mldsa_vkey": log.config.mldsa_vkey,
            "data": str(data),
            "log_dir": str(log.log_dir),
            "created": created,
        },
        log.config.vkey,
    )


def _grace(value: str) -> float | None:
    """``--gc-grace``: seconds (0 or more), or ``off``."""
    try:
        return parse_grace(value)
    except FormatError as err:
        raise click.BadParameter(str(err)) from err


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    try:
        number = parse_decimal(port, "port", maximum=65535)
    except FormatError:
        number = -1
    if not sep or number < 0 or not host:
        raise click.BadParameter(f"{value!r} is not HOST:PORT")
    return host.strip("[]"), number


@click.command()
@data_option
@_origin_option("Origin for a log created on first run (ignored for an existing log).")
@click.option(
    "--listen",
    default="127.0.0.1:8080",
    show_default=True,
    envvar="STELAE_LISTEN",
    help="Address to serve on; port 0 picks a free one.",
)
@click.option(
    "--wait",
    "wait_seconds",
    type=click.FloatRange(0.1, 300),
    default=20.0,
    show_default=True,
    help="Seconds a write waits for integration before answering 202.",
)
@click.option(
    "--strict-duplicates",
    is_flag=True,
    help="Answer duplicates as Rekor does (409) instead of with the existing entry.",
)
@click.option(
    "--workers",
    type=click.IntRange(0, 256),
    default=1,
    show_default=True,
    envvar="STELAE_WORKERS",
    help="Front-end processes sharing the port (0: one per CPU). With 1 everything runs in one "
    "process; with more, this process keeps the sequencer and the workers run the write API "
    "and static reads beside it (for throughput on several cores).",
)
@click.option(
    "--witness-policy",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A C2SP tlog-policy file: publish each checkpoint only once its witnesses' "
    "cosignatures satisfy the quorum (https://c2sp.org/tlog-policy, docs/witness.md).",
)
@click.option(
    "--witness-fail-open",
    is_flag=True,
    help="Publish without the quorum after the witnesses' timeout (and say so in the log), "
    "instead of publishing nothing until the quorum is met.",
)
@click.option(
    "--witness-timeout",
    type=click.FloatRange(0.1, 120),
    default=10.0,
    show_default=True,
    help="Seconds to wait for witnesses' cosignatures for one checkpoint.",
)
@click.option(
    "--witness-refresh",
    type=click.FloatRange(1, 86400),
    help="Seconds between re-publications of the checkpoint, freshly cosigned, while no "
    "entries arrive (so witnesses and monitors see the log is alive). Default: never.",
)
@click.option(
    "--gc-grace",
    "gc_grace",
    metavar="SECONDS|off",
    default=str(DEFAULT_GRACE),
    show_default=True,
    envvar="STELAE_GC_GRACE",
    callback=lambda _ctx, _param, value: _grace(value),
    help="Seconds after a tile becomes full before its partial tiles and bundles are deleted "
    "(https://c2sp.org/tlog-tiles allows it; readers then use the full tile). Must exceed how "
    "long anything caches the checkpoint. 'off' keeps them for ever.",
)
def serve(
    *,
    data: Path,
    origin: str,
    listen: str,
    wait_seconds: float,
    strict_duplicates: bool,
    workers: int,
    witness_policy: Path | None,
    witness_fail_open: bool,
    witness_timeout: float,
    witness_refresh: float | None,
    gc_grace: float | None,
) -> None:
    """Run the write API, the sequencer and a static file server, in one process by default.

    Reads are the log's static files at the root (/checkpoint, /tile/...); writes are Rekor's
    POST /api/v1/log/entries and /api/v2/log/entries. SIGTERM or Ctrl-C stops accepting,
    integrates and answers everything queued, then exits.

    \b
    Example:
      stelae serve --data ./stelae-data --listen 127.0.0.1:8080
      curl -s http://127.0.0.1:8080/checkpoint
      stelae serve --data ./stelae-data --workers 0   # one front-end process per CPU
    """
    # The write path pulls in every entry kind; import it only when serving, not for --help.
    from stelae.api.service import ServiceConfig  # noqa: PLC0415
    from stelae.server.app import LogServer, ServeOptions  # noqa: PLC0415
    from stelae.server.prefork import PreforkServer, default_workers  # noqa: PLC0415

    host, port = _listen(listen)
    local, created = _serving_log(data, origin)
    cosigner = (
        None
        if witness_policy is None
        else _witness_collector(witness_policy, witness_timeout, witness_fail_open)
    )
    options = ServeOptions(
        host,
        port,
        ServiceConfig(wait_seconds=wait_seconds, strict_duplicates=strict_duplicates),
        cosigner,
        witness_refresh,
        gc_grace,
    )
    count = workers or default_workers()
    stop = threading.Event()
    fatal: list[BaseException] = []

    def halt(err: BaseException) -> None:  # the sequencer stopped for good: so do we, with 1
        fatal.append(err)
        stop.set()

    try:  # binding happens here (and, for some servers, in start() below)
        server = (
            LogServer(local, options, halt)
            if count == 1
            else PreforkServer(local, options, count, halt)
        )
    except OSError as err:
        if err.errno not in _BIND_ERRNOS:
            raise
        raise ListenError(listen, err) from err
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    # From here on server threads may be running: whatever happens in this thread, close()
    # must run, or the process keeps serving with its main thread gone and ignores SIGTERM.
    try:
        try:
            server.start()
        except OSError as err:
            if err.errno not in _BIND_ERRNOS:
                raise
            raise ListenError(listen, err) from err
        _announce(local, server.url, data, count, created=created)
        stop.wait()
        _note("stopping: integrating what is queued…")
    finally:
        server.close()
    if fatal:
        raise StelaeError(
            f"the sequencer stopped after a fatal error: {fatal[0]}",
            hint="nothing more was written; check the log with `stelae fsck` before restarting",
        )
    _note("stopped")


def _serving_log(data: Path, origin: str) -> tuple[LocalLog, bool]:
    """The log in ``data``, created for ``origin`` if there is none, and whether it was."""
    local, created = (
        init_log(data, origin) if not (data / "config.json").exists() else (open_log(data), False)
    )
    # A log from an earlier stelae gets its lookup index from its own entries first.
    from stelae.kinds import lookup_keys  # noqa: PLC0415
    from stelae.sequencer.rebuild import ensure_index  # noqa: PLC0415

    if ensure_index(local.store, local.signer, lookup_keys):
        _note("built the lookup index of this log from its entries (docs/index.md)")
    return local, created


def _witness_collector(policy_file: Path, timeout: float, fail_open: bool) -> WitnessCollector:
    """The collector of cosignatures for ``--witness-policy``; a bad file is a usage error."""
    from stelae.sequencer.witnessing import WitnessCollector  # noqa: PLC0415
    from stelae.tiles.policy import Policy  # noqa: PLC0415

    try:
        policy = Policy.parse(policy_file.read_bytes())
    except FormatError as err:
        raise click.BadParameter(f"{policy_file}: {err}", param_hint="'--witness-policy'") from err
    return WitnessCollector(policy, timeout=timeout, fail_open=fail_open)


def _announce(local: LocalLog, url: str, data: Path, count: int, *, created: bool) -> None:
    """Say on stderr what is being served, where, and with which verifier keys."""
    if created:
        _note(f"created log {local.config.origin} in {data}")
    _note(
        f"serving {local.config.origin} on {url} (data: {data}"
        + (f", {count} workers)" if count > 1 else ")")
    )
    _note(f"verifier key: {local.config.vkey}")
    if local.config.mldsa_vkey is not None:
        _note(f"ML-DSA-44 verifier key: {local.config.mldsa_vkey}")


#: What bind() says about the address itself; other OSErrors are not about --listen.
_BIND_ERRNOS = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES})


class ListenError(StelaeError):
    """``--listen`` names an address this process cannot bind (in use, or not this host's)."""

    def __init__(self, listen: str, err: OSError) -> None:
        if err.errno == errno.EADDRINUSE:
            reason = "the address is already in use (another stelae serve?)"
        elif err.errno == errno.EADDRNOTAVAIL:
            reason = "that address is not one of this machine's"
        elif err.errno == errno.EACCES:
            reason = "permission denied (ports below 1024 need privileges)"
        else:
            reason = err.strerror or str(err)
        super().__init__(
            f"couldn't listen on {listen}: {reason}",
            hint="choose another with --listen HOST:PORT (port 0 picks a free one)",
        )


def _note(message: str) -> None:
    """A diagnostic on stderr, best effort: if whoever read our stderr has gone away (a closed
    pipe), the log must still drain and stop cleanly rather than fail on the message."""
    with contextlib.suppress(OSError):
        click.echo(message, err=True)
