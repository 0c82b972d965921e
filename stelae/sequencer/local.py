"""The local-directory backend: a log as plain files under one root, served as they are.

Each object is the file ``root/<key>``. The static file server derives its headers from the key
(:func:`~stelae.sequencer.store.object_class_for_key`), so nothing besides the bytes is stored.

How each guarantee of the :class:`~stelae.sequencer.store.ObjectStore` contract is kept:

- Atomic and durable: bytes go to a hidden temporary file in the target's directory, which is
  fsynced, then moved into place (``os.replace`` or ``os.link``), then the directory is fsynced so
  the new name itself survives a power loss. Readers see the old file or the new one, never a
  torn one. Newly created directories are fsynced into their parents the same way.
- Create-if-absent (:meth:`LocalStore.put_immutable`): ``os.link`` of the complete temporary file
  fails with EEXIST if the name exists, atomically, so of two racing writers exactly one creates
  the object and the other compares bytes.
- Compare-and-swap (:meth:`LocalStore.put_if`): an exclusive ``flock`` on a hidden lock file
  beside the object (``.<name>.lock``) serialises read-compare-replace across threads and
  processes. :meth:`LocalStore.put` takes the same lock, so it cannot slip between a CAS's
  compare and its replace.
- Group commit (``LocalStore(root, group_commit=True)``, what the sequencer uses): an object's
  *data* is still fsynced before its name is linked or renamed into place, so a name that
  survives a crash always holds complete bytes; but the directory fsync that makes the *name*
  durable is deferred to :meth:`LocalStore.flush`, once per directory instead of once per object.
  The checkpoint and the sequencer's state are never deferred. The sequencer flushes before it
  publishes a checkpoint, so everything a published checkpoint covers is durable, and a crash
  before that only loses names that the recovery of the claimed batch writes again.
- Versions are the SHA-256 of the content (hex). Two states with identical bytes share a version;
  for the objects written by CAS (the checkpoint, state) equal bytes are an equal state.

Hidden names are reserved for these temporary and lock files: keys may not contain them.
POSIX only (``fcntl``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

from stelae.sequencer.store import (
    ImmutableConflictError,
    ObjectClass,
    ObjectNotFound,
    PreconditionFailed,
    RequestCounters,
    StoreError,
    Versioned,
    check_mutable,
    check_write,
    validate_key,
)


def content_version(data: bytes) -> str:
    """The local backend's version token for an object holding ``data``."""
    return hashlib.sha256(data).hexdigest()


class LocalStore:
    """Objects as files under ``root``; see the module docstring for how each guarantee is kept."""

    def __init__(self, root: Path, *, group_commit: bool = False) -> None:
        self.root = Path(root)
        self.group_commit = group_commit
        self._unsynced_dirs: set[Path] = set()
        self._unsynced_lock = threading.Lock()
        self._counters = RequestCounters()

    @property
    def counters(self) -> RequestCounters:
        return self._counters

    def path(self, key: str) -> Path:
        """The file that holds ``key`` (validated; it need not exist)."""
        validate_key(key)
        return self.root.joinpath(*key.split("/"))

    # -- reads ----------------------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        path = self.path(key)
        self._counters.add("GET")
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        except IsADirectoryError:
            # A prefix of other keys ("tile/0") is a directory, not an object.
            raise ObjectNotFound(key) from None
        except OSError as err:
            raise StoreError(f"couldn't read {key!r}: {err}") from err

    def get_versioned(self, key: str) -> Versioned:
        data = self.get(key)
        return Versioned(data, content_version(data))

    def exists(self, key: str) -> bool:
        path = self.path(key)
        self._counters.add("HEAD")
        return path.is_file()

    # -- writes ---------------------------------------------------------------------------------

    def put_immutable(self, key: str, data: bytes, cls: ObjectClass) -> None:
        check_write(key, data, cls)
        path = self.path(key)
        self._counters.add("PUT")
        with self._temp_file(path, data) as tmp:
            try:
                # link() never replaces: EEXIST is the atomic "someone created it first".
                os.link(tmp, path)
            except FileExistsError:
                existing = self._read_existing(key, path)
                if existing != data:
                    raise ImmutableConflictError(key, existing, data) from None
                return
            except OSError as err:
                raise StoreError(f"couldn't write {key!r}: {err}") from err
            self._sync_name(path, cls)

    def flush(self) -> None:
        """Make every name written since the last flush durable (group commit; see above)."""
        with self._unsynced_lock:
            dirs, self._unsynced_dirs = sorted(self._unsynced_dirs), set()
        for directory in dirs:
            _fsync_dir(directory)

    def _sync_name(self, path: Path, cls: ObjectClass) -> None:
        if self.group_commit and cls not in (ObjectClass.CHECKPOINT, ObjectClass.STATE):
            with self._unsynced_lock:
                self._unsynced_dirs.add(path.parent)
        else:
            _fsync_dir(path.parent)

    def put_if(self, key: str, data: bytes, cls: ObjectClass, expected_version: str | None) -> str:
        check_write(key, data, cls)
        check_mutable(key, cls)
        path = self.path(key)
        self._counters.add("PUT")
        with self._locked(path):
            try:
                actual: str | None = content_version(path.read_bytes())
            except FileNotFoundError:
                actual = None
            if actual != expected_version:
                raise PreconditionFailed(key, expected_version, actual)
            self._replace(key, path, data, cls)
        return content_version(data)

    def put(self, key: str, data: bytes, cls: ObjectClass) -> None:
        check_write(key, data, cls)
        check_mutable(key, cls)
        path = self.path(key)
        self._counters.add("PUT")
        with self._locked(path):
            self._replace(key, path, data, cls)

    # -- mechanics ------------------------------------------------------------------------------

    def _read_existing(self, key: str, path: Path) -> bytes:
        try:
            return path.read_bytes()
        except OSError as err:
            raise StoreError(f"couldn't read back existing {key!r}: {err}") from err

    def _replace(self, key: str, path: Path, data: bytes, cls: ObjectClass) -> None:
        with self._temp_file(path, data) as tmp:
            try:
                os.replace(tmp, path)
            except OSError as err:
                raise StoreError(f"couldn't write {key!r}: {err}") from err
        self._sync_name(path, cls)

    @contextlib.contextmanager
    def _temp_file(self, path: Path, data: bytes) -> Iterator[Path]:
        """A fsynced hidden file holding ``data`` beside ``path``, removed afterwards if left."""
        self._make_parents(path.parent)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as err:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise StoreError(f"couldn't write a temporary file for {path}: {err}") from err
        try:
            yield tmp
        finally:
            # After os.replace the name is gone; after os.link it is a second name to drop.
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    @contextlib.contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        """An exclusive flock on ``.<name>.lock`` beside ``path``, for threads and processes.

        flock locks belong to the open file description, so two threads of one process that each
        open the lock file exclude each other just as two processes do.
        """
        self._make_parents(path.parent)
        lock_path = path.with_name(f".{path.name}.lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            # Closing the descriptor releases the lock.
            os.close(fd)

    def _make_parents(self, directory: Path) -> None:
        """Create ``directory`` and its missing parents, each fsynced into its parent."""
        if directory.is_dir():
            return
        missing: list[Path] = []
        d = directory
        while not d.is_dir():
            missing.append(d)
            if d.parent == d:
                break
            d = d.parent
        for d in reversed(missing):
            try:
                d.mkdir()
            except FileExistsError:
                # Another writer made it first; it fsyncs it too, but doing so again is harmless.
                pass
            except OSError as err:
                raise StoreError(f"couldn't create directory {d}: {err}") from err
            _fsync_dir(d.parent)


def _fsync_dir(directory: Path) -> None:
    """Make directory entries (a new or replaced name) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as err:
        # Some filesystems cannot fsync a directory; the data itself is already synced.
        if err.errno not in (errno.EINVAL, errno.EBADF):
            raise StoreError(f"couldn't fsync directory {directory}: {err}") from err
    finally:
        os.close(fd)
