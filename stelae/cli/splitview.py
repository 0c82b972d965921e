"""``stelae monitor --witness-policy``: compare the log's checkpoint with each witness's.

The check itself is :func:`stelae.witness.views.witness_views`; this module turns its verdicts
into the monitor's outputs: a ``split_view`` alert line (with both signed notes) and the evidence
on stderr for a contradiction, a warning on stderr for a witness that could not be checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from stelae.cli.reading import Reader, print_fork_evidence
from stelae.tiles.checkpoint import SignedCheckpoint
from stelae.tiles.client import InconsistentCheckpointsError
from stelae.tiles.errors import VerificationError
from stelae.witness.views import witness_views

__all__ = ["check_witness_views"]


def check_witness_views(
    reader: Reader, cp: SignedCheckpoint, alert: Callable[[dict[str, Any]], None]
) -> None:
    """Raise :class:`~stelae.tiles.client.InconsistentCheckpointsError` (after alerting) if a
    policy witness cosigned a tree that contradicts ``cp``. No policy: nothing to do."""
    if reader.policy is None:
        return
    split = None
    for view in witness_views(reader.policy, reader.client, cp):
        if view.problem is not None:
            click.echo(f"warning: witness {view.witness}: {view.problem}", err=True)
        elif view.split and view.note is not None:
            print_fork_evidence(
                cp.to_bytes(),
                view.note,
                "the checkpoint the log serves",
                f"the checkpoint witness {view.witness} cosigned",
            )
            alert(
                {
                    "alert": "split_view",
                    "witness": view.witness,
                    "log_checkpoint": cp.to_bytes().decode(),
                    "witness_checkpoint": view.note.decode(),
                    "reason": view.reason,
                }
            )
            split = split or view
    if split is not None and split.note is not None:
        raise InconsistentCheckpointsError(
            cp.to_bytes(), split.note, VerificationError(f"split view: {split.reason}")
        )
