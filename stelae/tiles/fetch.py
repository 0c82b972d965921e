"""Fetchers: how the read client gets bytes for a path under a log's prefix.

A fetcher is any object with ``fetch(path) -> bytes``. The contract:

- ``path`` is relative to the log prefix (``checkpoint``, ``tile/0/000.p/7``…), never absolute.
- Return the complete object's bytes, already decompressed.
- Raise :class:`~stelae.tiles.errors.NotFoundError` when the object does not exist (HTTP 404,
  missing file, S3 NoSuchKey) and :class:`FetchError` for anything else that went wrong, after any
  retries. The client relies on that distinction to fall back from a partial tile to a full one.

Fetching is the only I/O in :mod:`stelae.tiles`; everything else takes and returns values.
"""

from __future__ import annotations

import gzip
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from stelae.errors import StelaeError
from stelae.tiles.errors import FormatError, NotFoundError
from stelae.tiles.paths import is_immutable

USER_AGENT = "stelae-client/0.1"


class FetchError(StelaeError):
    """A path could not be fetched for a reason other than "not found"."""


class Fetcher(Protocol):
    def fetch(self, path: str) -> bytes:
        """Return the object at ``path`` (see the module contract)."""
        ...


def check_relative_path(path: str) -> str:
    """Reject paths that could escape the log prefix."""
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or "\x00" in path
        or any(seg in ("", ".", "..") for seg in path.split("/"))
    ):
        raise FormatError(f"{path!r} is not a relative path inside a log")
    return path


class DirectoryFetcher:
    """Reads a tlog-tiles prefix laid out in a local directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FetchError(f"log directory {self.root} does not exist")

    def fetch(self, path: str) -> bytes:
        target = self.root / check_relative_path(path)
        try:
            return target.read_bytes()
        except FileNotFoundError as err:
            raise NotFoundError(f"{path} not found in {self.root}") from err
        except IsADirectoryError as err:
            raise NotFoundError(f"{path} is a directory in {self.root}") from err
        except OSError as err:
            raise FetchError(f"couldn't read {target}: {err.strerror}") from err


class HTTPFetcher:
    """Fetches from an ``http(s)://`` prefix with timeouts, retries with backoff, and gzip."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        attempts: int = 4,
        backoff: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parsed = urllib.parse.urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise FormatError(f"{base_url!r} is not an http(s) URL")
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self._sleep = sleep

    def fetch(self, path: str) -> bytes:
        url = self.base_url + check_relative_path(path)
        last: Exception | None = None
        for attempt in range(self.attempts):
            if attempt:
                # Exponential backoff with full jitter, so many clients don't retry in lockstep.
                self._sleep(random.uniform(0, self.backoff * (2 ** (attempt - 1))))  # noqa: S311
            req = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
                url, headers={"Accept-Encoding": "gzip, identity", "User-Agent": USER_AGENT}
            )
            try:
                # The scheme was checked to be http(s) in __init__.
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                    body: bytes = resp.read()
                    if resp.headers.get("Content-Encoding", "").lower() == "gzip":
                        body = gzip.decompress(body)
                    return body
            except urllib.error.HTTPError as err:
                if err.code == 404:
                    raise NotFoundError(f"{url} not found (HTTP 404)") from err
                last = err
                if err.code not in (408, 425, 429) and err.code < 500:
                    break  # a client error will not get better by retrying
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as err:
                last = err
            except gzip.BadGzipFile as err:
                raise FetchError(f"{url}: body is not valid gzip") from err
        reason = getattr(last, "reason", None) or last
        raise FetchError(f"couldn't fetch {url}: {reason}") from last


class CachingFetcher:
    """Caches immutable objects (tiles, bundles, history) in memory, LRU-bounded.

    The checkpoint is never cached: it is the one mutable object a client must re-read.

    Safe for concurrent use: the write service shares one across its request threads. A lock
    guards the dict (without it, another thread could evict a key between this thread's ``get``
    and ``move_to_end``, and the ``KeyError`` became a 500). The inner fetch runs outside the
    lock, so a slow read does not stall hits; two threads missing the same path may both fetch
    it, which is harmless because the object is immutable.
    """

    def __init__(self, inner: Fetcher, *, max_items: int = 4096) -> None:
        self.inner = inner
        self.max_items = max_items
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def fetch(self, path: str) -> bytes:
        if not is_immutable(path):
            return self.inner.fetch(path)
        with self._lock:
            hit = self._cache.get(path)
            if hit is not None:
                self._cache.move_to_end(path)
                return hit
        data = self.inner.fetch(path)
        with self._lock:
            self._cache[path] = data
            self._cache.move_to_end(path)  # another thread may have stored it meanwhile
            while len(self._cache) > self.max_items:
                self._cache.popitem(last=False)
        return data


def fetcher_for(location: str) -> Fetcher:
    """A caching fetcher for an ``http(s)://`` URL or a local directory path."""
    if location.startswith(("http://", "https://")):
        return CachingFetcher(HTTPFetcher(location))
    if "://" in location:
        raise FormatError(f"{location!r}: a log location is an http(s):// URL or a local directory")
    return CachingFetcher(DirectoryFetcher(location))
