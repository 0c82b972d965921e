"""Every command of the ``stelae`` group, in help order. Add new command modules here."""

from __future__ import annotations

import click

from stelae.cli import monitor, read, search, serve

ALL: list[click.Command] = [
    serve.init,
    serve.serve,
    read.get,
    search.search,
    read.loginfo,
    read.logproof,
    monitor.monitor,
]
