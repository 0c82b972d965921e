"""Serving a log directory the way the CDN serves the bucket.

Each object class's headers come from :class:`~stelae.sequencer.store.ObjectClass` (declared once):
tiles and bundles immutable for a year, the checkpoint ``no-cache``, lookup indexes for seconds.
Private ``.state/`` objects, temporary files and any path outside the log layout are 404, and no
path can escape the directory.
"""

from __future__ import annotations

import gzip
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from threading import Lock

from stelae.sequencer.store import ObjectClass, object_class_for_key

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
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            return _not_found(key)
        data = path.read_bytes()
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


def _not_found(key: str) -> StaticResponse:
    body = f"not found: {key}\n".encode()
    return StaticResponse(404, {"Content-Type": "text/plain; charset=utf-8", **CORS_HEADERS}, body)
