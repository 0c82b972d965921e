"""Every command of the ``stelae`` group, in help order. Add new command modules here."""

from __future__ import annotations

import click

from stelae.cli import serve

ALL: list[click.Command] = [
    serve.init,
    serve.serve,
]
