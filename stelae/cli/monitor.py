"""``stelae monitor``: parse the options, run audit rounds (:class:`stelae.client.monitor.Monitor`)
and print what they find.

Output: one JSON object per line on stdout per alert (a watched entry, a fork, a bad tile, a
wrong root); diagnostics, fork evidence and the progress bar (on a terminal only) on stderr.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from stelae.cli.output import json_option
from stelae.cli.reading import Reader, print_fork_evidence, reader_options
from stelae.cli.search import digest_query, identity_query, key_query
from stelae.cli.splitview import check_witness_views
from stelae.client.monitor import Alert, Monitor, Progress, RoundResult, Watches, no_progress
from stelae.tiles.checkpoint import SignedCheckpoint
from stelae.tiles.counts import count
from stelae.tiles.errors import NotFoundError
from stelae.tiles.fetch import FetchError


@contextlib.contextmanager
def progress_bar(length: int) -> Iterator[Progress]:
    """A progress bar on a terminal; nothing at all in a pipe or a log file."""
    if length <= 0 or not sys.stderr.isatty():
        with no_progress(length) as bar:
            yield bar
        return
    with click.progressbar(length=length, label="auditing bundles", file=sys.stderr) as bar:
        yield bar


def print_alert(alert: dict[str, Any]) -> None:
    click.echo(json.dumps(alert, sort_keys=True))


def cli_monitor(reader: Reader, watches: Watches, *, show_progress: bool = True) -> Monitor:
    """The monitor as the command runs it: alerts on stdout, fork evidence and progress on
    stderr, and with ``--witness-policy`` the witnesses' views compared each round."""
    reader.require_index_key()  # the monitor audits the index too

    def views(cp: SignedCheckpoint, alert: Alert) -> None:
        check_witness_views(reader, cp, alert)

    return Monitor(
        reader,
        watches,
        print_alert,
        evidence=print_fork_evidence,
        check_views=views,
        progress=progress_bar if show_progress else no_progress,
    )


PEM = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command()
@click.option("--once", is_flag=True, help="Audit up to the current checkpoint, then exit.")
@click.option("--watch-key", type=PEM, multiple=True, help="Alert on entries signed by this key.")
@click.option("--watch-email", multiple=True, help="Alert on entries for this email identity.")
@click.option("--watch-uri", multiple=True, help="Alert on entries for this URI identity.")
@click.option("--watch-digest", multiple=True, help="Alert on entries for this artifact digest.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds between rounds (without --once).",
)
@reader_options
@json_option
def monitor(  # noqa: PLR0917 - click passes options as arguments
    reader: Reader,
    once: bool,
    watch_key: tuple[Path, ...],
    watch_email: tuple[str, ...],
    watch_uri: tuple[str, ...],
    watch_digest: tuple[str, ...],
    interval: float,
    as_json: bool,
) -> None:
    """Audit the whole log from its tiles and watch for keys, identities and digests.

    Every entry is re-hashed and every tile and the root recomputed and compared with what the
    log serves and signs; the audit resumes where it stopped (state in --state-dir). Alerts are
    JSON lines on stdout ({"alert": "watch" | "fork" | "bad_tile" | "bad_root" | ...}). A fork or
    a bad tile exits 1 with the evidence; Ctrl-C or SIGTERM exits 0. --json is accepted like
    everywhere else: the alerts are JSON lines with or without it.

    \b
    Example:
      stelae monitor --log-url https://log.example.test --vkey @vkey.txt \\
        --watch-email alice@example.com --interval 60
    """
    queries = [
        *(key_query(p, "--watch-key") for p in watch_key),
        *(identity_query(e, "--watch-email") for e in watch_email),
        *(identity_query(u, "--watch-uri") for u in watch_uri),
        *(digest_query(d, "--watch-digest") for d in watch_digest),
    ]
    job = cli_monitor(reader, Watches(tuple(queries)))
    del as_json  # stdout is JSON lines either way
    # A service manager stops us with SIGTERM: end exactly as Ctrl-C does (same message, and
    # the audit state already saved after each verified step).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while True:
            try:
                result = job.round()
            except (FetchError, NotFoundError) as err:
                # Unreachable, or not there yet (a CDN still propagating new tiles): a long-running
                # monitor retries; a one-shot audit fails. Verification failures always exit.
                if once:
                    raise
                click.echo(f"warning: {err}; retrying in {interval:g} s", err=True)
            else:
                _report(result)
            if once:
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        click.echo("interrupted; the audit resumes from its last saved state", err=True)


def _report(result: RoundResult) -> None:
    if result.size > result.start:
        msg = f"audited entries {result.start}..{result.size - 1}: every tile and the root match"
    else:
        msg = f"no new entries (tree size {result.size})"
    click.echo(msg, err=True)
    if result.unparsed:
        click.echo(
            f"{count(result.unparsed, 'entry', 'entries')} "
            f"{'is' if result.unparsed == 1 else 'are'} not a known entry kind; "
            "watches cannot match them",
            err=True,
        )
