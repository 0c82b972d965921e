"""Making a local store's bytes durable: ``fsync(2)`` per object, ``syncfs(2)`` per batch.

docs/durability.md explains when each is used and why. :class:`Syncer` is the seam
:class:`~stelae.sequencer.local.LocalStore` goes through for every sync, so tests can count syncs
or make them fail without patching ``os``.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable
from typing import Protocol, cast

__all__ = ["OsSyncer", "Syncer"]


class Syncer(Protocol):
    """How a :class:`LocalStore` makes bytes durable; a seam for tests to count or fail syncs."""

    def fsync(self, fd: int) -> None:
        """fsync(2) one open file or directory. Raises OSError."""
        ...

    def syncfs(self, fd: int) -> None:
        """Write back every dirty page and metadata change of the filesystem holding ``fd``.

        Raises OSError, including for a write-back error of that filesystem since the last call.
        """
        ...


def _load_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return cast("Callable[[int], int]", fn)


_SYNCFS = _load_syncfs()


class OsSyncer:
    """The real thing: ``os.fsync`` and Linux ``syncfs(2)`` (``sync(2)`` where it is missing)."""

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def syncfs(self, fd: int) -> None:
        if _SYNCFS is None:
            # sync(2) has no error to report; it covers every filesystem, this one included.
            os.sync()
            return
        # ctypes releases the GIL for the call, so other threads run during the write-back.
        if _SYNCFS(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
