"""The ``stelae`` command: one click group; each command is a thin call into the library.

Errors: every :class:`~stelae.errors.StelaeError` that escapes a command becomes one line on
stderr and exit status 1, here and nowhere else; click's usage errors exit 2.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from stelae.cli import commands
from stelae.errors import StelaeError


class StelaeGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StelaeError as err:
            click.echo(f"error: {err}", err=True)
            if err.hint:
                click.echo(f"hint: {err.hint}", err=True)
            sys.exit(1)
        except (OSError, ValueError) as err:
            # Users cause these (missing files, malformed input we failed to wrap): one sentence.
            click.echo(f"error: {err}", err=True)
            sys.exit(1)


@click.group(cls=StelaeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="stelae")
def main() -> None:
    """stelae: a static-file, serverless transparency log.

    \b
    Run a log:      stelae init --origin log.example.test && stelae serve
    Read a log:     stelae loginfo --log-url http://127.0.0.1:8080 --vkey @vkey.txt
    """


for _command in commands.ALL:
    main.add_command(_command)
