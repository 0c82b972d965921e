"""What a reader remembers about each log: the last verified checkpoint, and the monitor's progress.

Layout of the state directory (``--state-dir``, env ``STELAE_STATE_DIR``, default
``$XDG_STATE_HOME/stelae`` or ``~/.local/state/stelae``)::

    STATE/logs/<origin, %-escaped>+<key ID, 8 hex>/
        checkpoint     the last verified signed checkpoint, byte for byte as the log served it
        monitor.json   the monitor's audit progress: {"version": 1, "checkpoint": <signed note
                       the audit was last checked against>, "audit": AuditState.to_json()}
        .lock          flock'ed around every read-compare-write, so concurrent commands never
                       lose an update or move the checkpoint backwards

A log is identified by its origin *and* its verifier key ID, so a key rotation starts a new
history instead of being mistaken for a fork. Nothing here is trusted: the stored checkpoint is
re-verified against the log's key every time it is read, and files are written atomically (a
temporary file, fsync, rename), so a crash leaves the old state or the new one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from stelae.errors import StelaeError

CHECKPOINT_FILE = "checkpoint"
MONITOR_FILE = "monitor.json"
_LOCK_FILE = ".lock"


class StateError(StelaeError):
    """The state directory cannot be read or written."""


def default_state_dir() -> Path:
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "stelae"


def log_dir_name(origin: str, key_id: int) -> str:
    """A file name for one log: readable, and unique per (origin, key ID)."""
    name = quote(origin, safe="")
    if len(name) > 100 or name.startswith("."):
        name = f"{name[:80].lstrip('.')}~{hashlib.sha256(origin.encode()).hexdigest()[:16]}"
    return f"{name}+{key_id:08x}"


class LogState:
    """The state of one log; see the module docstring for the files."""

    def __init__(self, root: Path, origin: str, key_id: int) -> None:
        self.dir = Path(root) / "logs" / log_dir_name(origin, key_id)

    @property
    def checkpoint_path(self) -> Path:
        return self.dir / CHECKPOINT_FILE

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the log's lock (across processes) for a read-compare-write."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.dir / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as err:
            raise StateError(
                f"couldn't use the state directory {self.dir}: {err.strerror}",
                hint="choose another one with --state-dir or STELAE_STATE_DIR",
            ) from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def last_checkpoint(self) -> bytes | None:
        """The stored signed checkpoint (unverified bytes), or None before the first one."""
        return self._read(self.checkpoint_path)

    def store_checkpoint(self, note: bytes) -> None:
        """Replace the stored checkpoint. Call under :meth:`locked`, after proving consistency."""
        self._write(self.checkpoint_path, note)

    def load_monitor(self) -> dict[str, Any] | None:
        data = self._read(self.dir / MONITOR_FILE)
        if data is None:
            return None
        try:
            obj = json.loads(data)
        except ValueError as err:
            raise StateError(f"{self.dir / MONITOR_FILE} is not JSON: {err}") from err
        if not isinstance(obj, dict) or obj.get("version") != 1:
            raise StateError(f"{self.dir / MONITOR_FILE} is not a stelae monitor state")
        return obj

    def store_monitor(self, obj: dict[str, Any]) -> None:
        self._write(self.dir / MONITOR_FILE, json.dumps({"version": 1, **obj}).encode())

    @staticmethod
    def _read(path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise StateError(f"couldn't read {path}: {err.strerror}") from err

    def _write(self, path: Path, data: bytes) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            dir_fd = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(dir_fd)  # the rename itself must survive a power loss
            finally:
                os.close(dir_fd)
        except OSError as err:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise StateError(f"couldn't write {path}: {err.strerror}") from err
