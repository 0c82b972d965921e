"""Every command of the ``stelae`` group, in help order. Add new command modules here."""

from __future__ import annotations

import click

from stelae.cli import (
    fsck,
    gc,
    index,
    keys,
    monitor,
    read,
    search,
    serve,
    upload,
    verify,
    witness,
)

ALL: list[click.Command] = [
    serve.init,
    serve.serve,
    keys.keygen,
    keys.sign,
    upload.upload,
    read.get,
    verify.verify,
    search.search,
    read.loginfo,
    read.logproof,
    monitor.monitor,
    fsck.fsck_command,
    gc.gc_command,
    index.index,
    witness.witness,
]
