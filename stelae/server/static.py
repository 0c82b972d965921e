"""Serving a log directory the way the CDN serves the bucket.

Each object class's headers come from :class:`~stelae.tiles.paths.ObjectClass` (declared once):
tiles and bundles immutable for a year, the checkpoint ``no-cache``, lookup indexes for seconds.
Private ``.state/`` objects, temporary files and any path outside the log layout are 404, and no
path can escape the directory: only regular files are served, opened one path component at a
time with ``O_NOFOLLOW``, so a symbolic link anywhere on the way (a file or a directory inside
the published tree pointing at ``.state/`` or outside the log) is 404, not followed. Whatever
the file system answers, the request gets an answer: a name it cannot hold (over 255 bytes) or a
missing path is 404, any other failure to read is a 500 naming the key.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import os
import stat
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from threading import Lock

from stelae.tiles.paths import ObjectClass, object_class_for_key

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, X-Stelae-Strict",
    "Access-Control-Expose-Headers": "Location, ETag, x-log-index, Retry-After",
}


@dataclass(frozen=True)
class StaticResponse:
    status: int
    headers: dict[str, str]
    body: bytes


class StaticFiles:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._gz: OrderedDict[str, bytes] = OrderedDict()
        self._lock = Lock()

    def get(self, url_path: str, accept_encoding: str = "") -> StaticResponse:
        key = url_path.split("?", 1)[0].lstrip("/")
        cls = object_class_for_key(key)
        if cls is None or not cls.public:
            return _not_found(key)
        try:
            data = _read_regular_file(self.root, key)
        except OSError as err:
            if err.errno in _NOT_THERE:
                return _not_found(key)
            return _error(500, f"couldn't read {key}: {err.strerror or err}")
        if data is None:
            return _not_found(key)
        headers = {
            "Content-Type": cls.content_type,
            "Cache-Control": cls.cache_control,
            "Vary": "Accept-Encoding",
            **CORS_HEADERS,
        }
        if "gzip" in accept_encoding.lower() and len(data) > 512:
            data = self._gzip(key, data, cls)
            headers["Content-Encoding"] = "gzip"
        return StaticResponse(200, headers, data)

    def _gzip(self, key: str, data: bytes, cls: ObjectClass) -> bytes:
        if not cls.immutable:
            return gzip.compress(data, compresslevel=5, mtime=0)
        with self._lock:
            hit = self._gz.get(key)
            if hit is not None:
                self._gz.move_to_end(key)
                return hit
        packed = gzip.compress(data, compresslevel=5, mtime=0)
        with self._lock:
            self._gz[key] = packed
            if len(self._gz) > 1024:
                self._gz.popitem(last=False)
        return packed


#: What opening a request's path can fail with when nothing servable is there: missing, a
#: component that is not a directory, a symbolic link refused by O_NOFOLLOW (ELOOP), a name
#: longer than the file system's limit, or a component that is a socket or device (ENXIO).
_NOT_THERE = frozenset(
    {errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.ENAMETOOLONG, errno.EISDIR, errno.ENXIO}
)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: O_NONBLOCK: opening a FIFO planted in the tree must not wait for a writer (it is then
#: refused as not a regular file).
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _read_regular_file(root: Path, key: str) -> bytes | None:
    """The bytes of the regular file at ``key`` under ``root``; None if it is anything else.

    Each component is opened relative to its parent's descriptor with O_NOFOLLOW, so no symbolic
    link is followed at any level and nothing swapped in between checks can redirect the read.
    ``key`` is a valid layout key (no empty, ``.`` or ``..`` segments).
    """
    *dirs, name = key.split("/")
    fds: list[int] = []
    try:
        fds.append(os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        for part in dirs:
            fds.append(os.open(part, _DIR_FLAGS, dir_fd=fds[-1]))
        fd = os.open(name, _FILE_FLAGS, dir_fd=fds[-1])
        fds.append(fd)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read()
    finally:
        for fd in fds:
            with contextlib.suppress(OSError):  # closing a read-only descriptor cannot lose data
                os.close(fd)


def _error(status: int, message: str) -> StaticResponse:
    body = f"{message}\n".encode()
    return StaticResponse(
        status, {"Content-Type": "text/plain; charset=utf-8", **CORS_HEADERS}, body
    )


def _not_found(key: str) -> StaticResponse:
    body = f"not found: {key}\n".encode()
    return StaticResponse(404, {"Content-Type": "text/plain; charset=utf-8", **CORS_HEADERS}, body)
