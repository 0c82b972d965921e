"""The witness's memory: for each log, the latest checkpoint it cosigned, durable on disk.

One file per log, ``<data>/logs/<sha256(origin) hex>``, holding the cosigned checkpoint note
(the log's signature and the witness's cosignature). tlog-witness requires that checking the old
size against this record and replacing it happen atomically
(https://c2sp.org/tlog-witness@v1.0.0, add-checkpoint, the rollback race), so every
check-and-replace runs under an exclusive ``flock`` on the log's lock file — which excludes other
threads (each opens its own file description) and other processes on the same data directory
alike — and the replacement is written to a temporary file, fsynced, renamed over the record and
the directory fsynced. A reader without the lock (the monitoring read) sees the old record or the
new one, never a torn one. A crash before the rename leaves the old record: the witness then
never answered 200 for the new one, since it answers only after :meth:`LogRecord.replace`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from stelae.tiles.checkpoint import Checkpoint
from stelae.tiles.errors import StelaeError
from stelae.tiles.note import Note

__all__ = ["CorruptStateError", "LogRecord", "WitnessState", "origin_hash"]


class CorruptStateError(StelaeError):
    """A stored record is not a checkpoint note: the witness must stop, not guess."""


def origin_hash(origin: str) -> str:
    """Lowercase hex SHA-256 of the origin: the record's file name and the monitoring path."""
    return hashlib.sha256(origin.encode()).hexdigest()


class LogRecord:
    """One log's record, held under its lock; valid only inside :meth:`WitnessState.locked`."""

    def __init__(self, path: Path, note: bytes | None) -> None:
        self._path = path
        self.note = note
        self.checkpoint: Checkpoint | None = None
        if note is not None:
            try:
                self.checkpoint = Checkpoint.parse(Note.parse(note).text)
            except ValueError as err:
                raise CorruptStateError(f"{path} does not hold a checkpoint note: {err}") from err

    def replace(self, note: bytes, checkpoint: Checkpoint) -> None:
        """Durably make ``note`` (whose body is ``checkpoint``) the log's latest cosigned one."""
        tmp = self._path.with_name(self._path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, note)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self._path)
        dir_fd = os.open(self._path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self.note = note
        self.checkpoint = checkpoint


class WitnessState:
    """The per-log records under ``root`` (created if missing)."""

    def __init__(self, root: Path) -> None:
        self.root = root / "logs"
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, origin: str) -> Path:
        return self.root / origin_hash(origin)

    @contextlib.contextmanager
    def locked(self, origin: str) -> Iterator[LogRecord]:
        """Hold the log's exclusive lock; yields its record to compare and replace."""
        path = self._path(origin)
        lock_fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            yield LogRecord(path, self._read(path))
        finally:
            os.close(lock_fd)  # closing the descriptor releases the flock

    def latest(self, origin_hex: str) -> bytes | None:
        """The cosigned note for the log whose origin hashes to ``origin_hex``, if any."""
        if len(origin_hex) != 64 or any(c not in "0123456789abcdef" for c in origin_hex):
            return None
        return self._read(self.root / origin_hex)

    @staticmethod
    def _read(path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
