"""The local-directory backend: a log as plain files under one root, served as they are.

Each object is the file ``root/<key>``; the static file server derives its headers from the key
(:func:`~stelae.tiles.paths.object_class_for_key`). How the
:class:`~stelae.sequencer.store.ObjectStore` contract is kept — temporary file then ``link``
(create-if-absent) or ``rename`` (replace), fsync of data and directory, ``flock`` for
compare-and-swap, group commit with one ``syncfs`` per batch, and the repair mode that replaces
a power loss's debris — is explained in docs/durability.md. Hidden names are reserved for the
temporary, lock and marker files (docs/layout.md). POSIX only (``fcntl``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import re
import secrets
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from stelae.sequencer.durability import OsSyncer, Syncer
from stelae.sequencer.store import (
    ImmutableConflictError,
    ObjectNotFound,
    PreconditionFailed,
    RequestCounters,
    StoreError,
    StoreFullError,
    Versioned,
    check_mutable,
    check_partial_keys,
    check_write,
)
from stelae.tiles.paths import UNSYNCED_MARKERS, ObjectClass, validate_key

log = logging.getLogger("stelae.sequencer")

MARKER_DIR = tuple(UNSYNCED_MARKERS.split("/"))
"""Where the unsynced-write markers live, relative to the root (a hidden name: never a key)."""

_MARKER_NAME = re.compile(r"[0-9a-f]{16}")
"""A marker's name. Half-made ones (``<name>.new``, left by a crash while creating one) were never
visible as markers, protect nothing and are left alone: a live store may be creating one."""

DEFERRABLE = frozenset(
    {
        ObjectClass.TILE,
        ObjectClass.BUNDLE,
        ObjectClass.ENTRY_LEAF_INDEX,
        ObjectClass.INDEX_RUN,
        ObjectClass.INDEX_MANIFEST,
        ObjectClass.CHECKPOINT_HISTORY,
    }
)
"""Immutable classes written without a data fsync in group-commit mode: every one of them is
rewritten, byte for byte, by the recovery of the batch that wrote it (docs/durability.md).
Index pages are not among them: a lookup-index head that already lists a batch is not rewritten,
so the pages it points to must never be debris."""


def content_version(data: bytes) -> str:
    """The local backend's version token for an object holding ``data``."""
    return hashlib.sha256(data).hexdigest()


class LocalStore:
    """Objects as files under ``root``; docs/durability.md explains how each guarantee is kept.

    ``group_commit`` defers the durability of the deferrable classes to :meth:`flush`.
    ``syncer`` replaces the fsync/syncfs calls (tests count them).
    """

    def __init__(
        self, root: Path, *, group_commit: bool = False, syncer: Syncer | None = None
    ) -> None:
        self.root = Path(root)
        self.group_commit = group_commit
        self._syncer: Syncer = syncer if syncer is not None else OsSyncer()
        self._counters = RequestCounters()
        # The hot path works on str paths: pathlib costs several microseconds per call.
        self._root = os.fspath(self.root)
        self._dirs: set[str] = set()  # directories known to exist (delete_partials drops some)
        # Writes that owe a sync run inside a window (_enter/_leave); flush() waits for the
        # windows open to close and keeps new ones from opening while it syncs.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._in_flight = 0
        self._flushers = 0  # flush() calls waiting for the windows to close
        self._marker: tuple[str, int] | None = None  # our marker and the fd holding its lock
        self._repaired: list[str] = []
        self._dead = self._dead_markers()
        self._repairing = bool(self._dead)
        # A dead writer's bytes may still be only in the page cache (it crashed, the kernel did
        # not): the first flush must sync even if this store then writes nothing new.
        self._owed = self._repairing

    @property
    def counters(self) -> RequestCounters:
        return self._counters

    @property
    def repairing(self) -> bool:
        """Whether this store opened over a dead writer's unsynced objects (docs/durability.md)."""
        return self._repairing

    @property
    def repaired(self) -> tuple[str, ...]:
        """The keys whose debris this store replaced, in order."""
        with self._lock:
            return tuple(self._repaired)

    def path(self, key: str) -> Path:
        """The file that holds ``key`` (validated; it need not exist)."""
        return Path(self._file(key))

    def _file(self, key: str) -> str:
        validate_key(key)
        # A valid key is relative, with no empty, "." or ".." segment: it cannot leave the root.
        return f"{self._root}/{key}"

    # -- reads ----------------------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        path = self._file(key)
        self._counters.add("GET")
        try:
            with open(path, "rb", buffering=0) as f:
                return f.readall()
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

    # -- writes ---------------------------------------------------------------------------------

    def put_immutable(self, key: str, data: bytes, cls: ObjectClass) -> None:
        check_write(key, data, cls)
        path = f"{self._root}/{key}"  # validated by check_write
        self._counters.add("PUT")
        deferred = self.group_commit and cls in DEFERRABLE
        if deferred:
            self._enter(marker=True)
        try:
            tmp = self._write_temp(path, data, sync=not deferred)
            try:
                # link() never replaces: EEXIST is the atomic "someone created it first".
                os.link(tmp, path)
            except FileExistsError:
                existing = self._read_existing(key, path)
                if existing == data:
                    if not deferred:
                        # Equal bytes may be another writer's still unsynced ones.
                        self._owe()
                    return
                if not (self._repairing and cls in DEFERRABLE):
                    raise ImmutableConflictError(key, existing, data) from None
                self._repair(key, path, tmp, existing, data)
            except OSError as err:
                raise _write_error(f"couldn't write {key!r}", err) from err
            finally:
                # After os.link the temporary is a second name to drop; after a repair's
                # os.replace it is gone.
                _unlink_quietly(tmp)
            if not deferred:  # (after a repair too)
                self._fsync_dir(os.path.dirname(path))
        finally:
            if deferred:
                self._leave()

    def put_if(self, key: str, data: bytes, cls: ObjectClass, expected_version: str | None) -> str:
        check_write(key, data, cls)
        check_mutable(key, cls)
        path = f"{self._root}/{key}"  # validated by check_write
        self._counters.add("PUT")
        with self._locked(path):
            try:
                actual: str | None = content_version(self._read_existing(key, path))
            except FileNotFoundError:
                actual = None
            if actual != expected_version:
                raise PreconditionFailed(key, expected_version, actual)
            self._replace(key, path, data, cls)
        return content_version(data)

    def delete_partials(self, keys: Sequence[str]) -> None:
        """Unlink obsolete partial tiles and bundles (the :class:`PartialDeleter` contract).

        Not fsynced: a deletion undone by a power loss only brings back an obsolete partial,
        which readers may use and the next collection deletes again. A ``<N>.p`` directory left
        empty is removed too (an empty directory still costs a block).
        """
        check_partial_keys(keys)
        folders: set[str] = set()
        for key in keys:
            path = f"{self._root}/{key}"  # validated by check_partial_keys
            self._counters.add("DELETE")
            try:
                os.unlink(path)
            except (FileNotFoundError, NotADirectoryError):
                pass  # never written at this width, or deleted already
            except OSError as err:
                raise StoreError(f"couldn't delete {key!r}: {err}") from err
            folders.add(os.path.dirname(path))
        for folder in folders:
            with contextlib.suppress(OSError):  # not empty, or gone: either way nothing to do
                os.rmdir(folder)
                self._dirs.discard(folder)

    def flush(self) -> None:
        """Make every write since the last flush durable with one syncfs (docs/durability.md).

        Waits for writes in progress on this store to finish and holds new ones back while it
        syncs. A no-op if nothing is owed. On success, deletes this store's marker and the dead
        ones it opened over, and ends repair mode.
        """
        with self._lock:
            self._flushers += 1
            try:
                while self._in_flight:
                    self._cond.wait()
            finally:
                self._flushers -= 1
            if not self._owed:
                return
            self._syncfs()
            self._owed = False
            self._drop_markers()
            self._repairing = False

    def close(self) -> None:
        """Let go of this store's marker *without* syncing, exactly as if the process died.

        Anything written since the last flush stays marked, so the next store opened on this root
        repairs it. Call :meth:`flush` first to shut down cleanly.
        """
        with self._lock:
            if self._marker is not None:
                os.close(self._marker[1])
                self._marker = None

    # -- group commit ---------------------------------------------------------------------------

    def _enter(self, *, marker: bool) -> None:
        """Open a write window that owes a sync; with ``marker``, one that may leave debris."""
        with self._lock:
            if marker and self._marker is None:
                # Under the lock: no thread writes unsynced bytes before the marker is durable.
                self._marker = self._make_marker()
            self._owed = True
            self._in_flight += 1

    def _owe(self) -> None:
        with self._lock:
            self._owed = True

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1
            if not self._in_flight and self._flushers:
                self._cond.notify_all()

    def _marker_dir(self) -> str:
        return os.path.join(self._root, *MARKER_DIR)

    def _make_marker(self) -> tuple[str, int]:
        """Create, lock and make durable a marker of this store's unsynced writes."""
        directory = self._marker_dir()
        self._make_parents(directory)
        name = secrets.token_hex(8)
        new, final = f"{directory}/{name}.new", f"{directory}/{name}"
        try:
            fd = os.open(new, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as err:
            raise StoreError(f"couldn't create the unsynced-write marker {new}: {err}") from err
        try:
            # Locked before it is visible under its final name: a visible marker whose lock is
            # free belongs to a dead store.
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._syncer.fsync(fd)
            os.rename(new, final)
        except OSError as err:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(new)
            raise StoreError(f"couldn't create the unsynced-write marker {final}: {err}") from err
        try:
            self._fsync_dir(directory)
        except StoreError:
            # Not durable, so not a marker to rely on: drop it and fail the write.
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(final)
            raise
        return final, fd

    def _dead_markers(self) -> list[str]:
        """The markers whose owner is gone: the unsynced writes of a store that died."""
        directory = self._marker_dir()
        try:
            names = os.listdir(directory)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as err:
            raise StoreError(f"couldn't list {directory}: {err}") from err
        dead = []
        for name in sorted(names):
            if not _MARKER_NAME.fullmatch(name):
                continue
            path = f"{directory}/{name}"
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue  # its owner flushed meanwhile
            except OSError as err:
                raise StoreError(f"couldn't open the marker {path}: {err}") from err
            try:
                # A shared lock is refused only while an owner holds its exclusive one; two
                # stores probing at once both get it.
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live store's marker
            finally:
                os.close(fd)
            dead.append(path)
        return dead

    def _drop_markers(self) -> None:
        """After a successful syncfs: delete our marker and the dead ones found at open."""
        doomed = list(self._dead)
        if self._marker is not None:
            doomed.append(self._marker[0])
        if not doomed:
            return
        for path in doomed:
            # Best effort: a marker left behind only puts the next store opened here in repair
            # mode, which replaces nothing that a published checkpoint covers.
            with contextlib.suppress(OSError):
                os.unlink(path)
        if self._marker is not None:
            # Unlinked while still locked, then released: a prober sees it locked or gone.
            os.close(self._marker[1])
            self._marker = None
        self._dead = []
        # Best effort too, for the same reason: only the deletion's durability is at stake.
        with contextlib.suppress(StoreError, OSError):
            self._fsync_dir(self._marker_dir())

    def _syncfs(self) -> None:
        try:
            fd = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as err:
            raise StoreError(f"couldn't open {self._root} to sync it: {err}") from err
        try:
            self._syncer.syncfs(fd)
        except OSError as err:
            name = errno.errorcode.get(err.errno or 0, str(err.errno))
            raise StoreError(
                f"couldn't sync the filesystem holding {self._root}: {name} ({err.strerror})"
            ) from err
        finally:
            os.close(fd)

    def _repair(self, key: str, path: str, tmp: str, existing: bytes, data: bytes) -> None:
        """Replace an unpublished object a power loss left incomplete (docs/durability.md).

        Only deferrable objects are repaired: only they can be debris. ``tmp`` holds the bytes,
        synced or not like any other write of this store, and the caller syncs the name.
        """
        try:
            os.replace(tmp, path)
        except OSError as err:
            raise StoreError(f"couldn't replace the incomplete {key!r}: {err}") from err
        evidence = ImmutableConflictError(key, existing, data)
        log.warning("repaired %s, left incomplete by a crash before a flush: %s", key, evidence)
        with self._lock:
            self._repaired.append(key)

    # -- mechanics ------------------------------------------------------------------------------

    def _read_existing(self, key: str, path: str) -> bytes:
        """The bytes at ``path``. FileNotFoundError passes through; other errors are StoreError."""
        try:
            with open(path, "rb", buffering=0) as f:
                return f.readall()
        except FileNotFoundError:
            raise
        except OSError as err:
            raise StoreError(f"couldn't read back existing {key!r}: {err}") from err

    def _replace(self, key: str, path: str, data: bytes, cls: ObjectClass) -> None:
        # The data is always fsynced: a head that survives must hold complete bytes. Only the
        # name may wait for the flush.
        deferred = self.group_commit and cls not in (ObjectClass.CHECKPOINT, ObjectClass.STATE)
        if deferred:
            self._enter(marker=False)
        try:
            tmp = self._write_temp(path, data, sync=True)
            try:
                os.replace(tmp, path)
            except OSError as err:
                _unlink_quietly(tmp)
                raise _write_error(f"couldn't write {key!r}", err) from err
            if not deferred:
                self._fsync_dir(os.path.dirname(path))
        finally:
            if deferred:
                self._leave()

    def _write_temp(self, path: str, data: bytes, *, sync: bool) -> str:
        """A new hidden file holding ``data`` beside ``path`` (fsynced if ``sync``).

        The caller moves it into place or removes it. Not a context manager: this is the hot path.
        """
        directory, name = path.rsplit("/", 1)
        self._make_parents(directory)
        tmp = f"{directory}/.{name}.{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if sync:
                    self._syncer.fsync(fd)
            finally:
                os.close(fd)
        except OSError as err:
            _unlink_quietly(tmp)
            raise _write_error(f"couldn't write a temporary file for {path}", err) from err
        return tmp

    @contextlib.contextmanager
    def _locked(self, path: str) -> Iterator[None]:
        """An exclusive flock on ``.<name>.lock`` beside ``path``, for threads and processes.

        flock locks belong to the open file description, so two threads of one process that each
        open the lock file exclude each other just as two processes do.
        """
        directory, name = path.rsplit("/", 1)
        self._make_parents(directory)
        fd = os.open(f"{directory}/.{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            # Closing the descriptor releases the lock.
            os.close(fd)

    def _make_parents(self, directory: str) -> None:
        """Create ``directory`` and its missing parents, each fsynced into its parent."""
        if directory in self._dirs:
            return
        missing: list[str] = []
        d = directory
        while not os.path.isdir(d):
            missing.append(d)
            parent = os.path.dirname(d)
            if parent == d:
                break
            d = parent
        for d in reversed(missing):
            try:
                os.mkdir(d)
            except FileExistsError:
                # Another writer made it first; it fsyncs it too, but doing so again is harmless.
                pass
            except OSError as err:
                raise _write_error(f"couldn't create directory {d}", err) from err
            self._fsync_dir(os.path.dirname(d))
        self._dirs.add(directory)

    def _fsync_dir(self, directory: str) -> None:
        """Make directory entries (a new or replaced name) durable."""
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            self._syncer.fsync(fd)
        except OSError as err:
            # Some filesystems cannot fsync a directory; the data itself is already synced.
            if err.errno not in (errno.EINVAL, errno.EBADF):
                raise StoreError(f"couldn't fsync directory {directory}: {err}") from err
        finally:
            os.close(fd)


#: Errors of a write that mean "no room": a full file system or an exhausted disk quota.
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def _write_error(what: str, err: OSError) -> StoreError:
    """The typed error for a failed write: :class:`StoreFullError` when the disk is full."""
    if err.errno in _NO_SPACE:
        return StoreFullError(f"{what}: the file system is full ({err})")
    return StoreError(f"{what}: {err}")


def _unlink_quietly(path: str) -> None:
    """Remove a temporary file if it is still there."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
