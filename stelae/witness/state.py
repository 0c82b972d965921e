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

That is :class:`WitnessState`. :class:`WitnessStore` is the seam other backends fill: on S3
(:mod:`stelae.witness.s3state`, the serverless witness) there is no lock to hold, so the record
is read with its version and replaced only if it still has it; a replacement that lost that race
raises :class:`StateConflictError` and the witness checks the request again against the newer
record (:mod:`stelae.witness.protocol`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from stelae.errors import StelaeError
from stelae.tiles.checkpoint import Checkpoint
from stelae.tiles.note import Note

__all__ = [
    "CorruptStateError",
    "LogRecord",
    "StateConflictError",
    "WitnessState",
    "WitnessStore",
    "is_origin_hash",
    "origin_hash",
]


class CorruptStateError(StelaeError):
    """A stored record is not a checkpoint note: the witness must stop, not guess."""


class StateConflictError(StelaeError):
    """Another request replaced the log's record since it was read; nothing was written."""


def origin_hash(origin: str) -> str:
    """Lowercase hex SHA-256 of the origin: the record's file name and the monitoring path."""
    return hashlib.sha256(origin.encode()).hexdigest()


class LogRecord:
    """One log's record as read for a check-and-replace; valid only inside
    :meth:`WitnessStore.locked`. ``where`` names it in errors (a path, an object key)."""

    def __init__(self, where: str, note: bytes | None) -> None:
        self.note = note
        self.checkpoint: Checkpoint | None = None
        if note is not None:
            try:
                self.checkpoint = Checkpoint.parse(Note.parse(note).text)
            except ValueError as err:
                raise CorruptStateError(f"{where} does not hold a checkpoint note: {err}") from err

    def replace(self, note: bytes, checkpoint: Checkpoint) -> None:
        """Durably make ``note`` (whose body is ``checkpoint``) the log's latest cosigned one,
        provided the record is still the one read; else :class:`StateConflictError`."""
        self._write(note)
        self.note = note
        self.checkpoint = checkpoint

    def _write(self, note: bytes) -> None:
        raise NotImplementedError


class WitnessStore(Protocol):
    """Where a witness keeps the latest cosigned checkpoint of each log.

    :meth:`locked` yields the log's record; :meth:`LogRecord.replace` inside it must either make
    the new note durable and the log's record, or — if any other replacement of that log's
    record happened since it was read — write nothing and raise :class:`StateConflictError`.
    Backends with a lock never raise it; backends with compare-and-swap (S3) do. Safe for
    concurrent use by several threads and processes.
    """

    def locked(self, origin: str) -> AbstractContextManager[LogRecord]: ...

    def latest(self, origin_hex: str) -> bytes | None:
        """The cosigned note of the log whose origin hashes to ``origin_hex``, or None (also
        for anything that is not 64 lowercase hex digits)."""
        ...


def is_origin_hash(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


class _FileRecord(LogRecord):
    def __init__(self, path: Path, note: bytes | None) -> None:
        super().__init__(str(path), note)
        self._path = path

    def _write(self, note: bytes) -> None:
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
            yield _FileRecord(path, self._read(path))
        finally:
            os.close(lock_fd)  # closing the descriptor releases the flock

    def latest(self, origin_hex: str) -> bytes | None:
        """The cosigned note for the log whose origin hashes to ``origin_hex``, if any."""
        if not is_origin_hash(origin_hex):
            return None
        return self._read(self.root / origin_hex)

    @staticmethod
    def _read(path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
