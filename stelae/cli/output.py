"""Shared CLI options and output: ``--json``, log location and keys, the write server."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")(f)


def emit(as_json: bool, data: dict[str, Any], text: str) -> None:
    """Data on stdout: JSON with --json, else the human text."""
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        click.echo(text)


def note(message: str) -> None:
    """A diagnostic for the person at the terminal: stderr, so stdout stays data a pipe can use."""
    click.echo(message, err=True)


def read_value(value: str, option: str) -> str:
    """``@FILE`` reads the value from a file (stripped); anything else is the value itself.
    ``option`` (e.g. ``--vkey``) is named in the error when the file cannot be read."""
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            return path.read_text().strip()
        except FileNotFoundError as err:
            raise click.BadParameter(
                f"{path} does not exist ({option} @FILE reads the value from FILE)",
                param_hint=f"'{option}'",
            ) from err
        except OSError as err:
            raise click.BadParameter(
                f"couldn't read {path}: {err.strerror}", param_hint=f"'{option}'"
            ) from err
    return value.strip()
