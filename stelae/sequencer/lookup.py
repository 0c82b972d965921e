"""Static lookup indexes: objects at computable paths, so a lookup is one GET and needs no server.

=====================  =========================================  ==================================
index                  path                                       object writes per entry
=====================  =========================================  ==================================
leaf hash (UUID)       ``index/leaf/<hex leaf hash>``             1 create (always built: dedup
                                                                  and the write API's wait use it)
artifact digest        ``index/sha256/<hex>`` (also sha384/512)   1 read-modify-write per distinct
                                                                  digest in a batch
signer key             ``index/key/<hex SHA-256(SPKI DER)>``      1 read-modify-write per distinct
                                                                  key in a batch
certificate identity   ``index/identity/<hex SHA-256(identity)>`` 1 read-modify-write per distinct
                                                                  identity in a batch
=====================  =========================================  ==================================

The leaf object holds ``{"index": N, "integratedTime": T, "signedEntryTimestamp": b64}`` (see
:mod:`stelae.sequencer.timestamp`) and never changes. The others hold ``{"indices": [...]}``
sorted ascending (paginated: see :data:`PAGE_SIZE`), and grow by compare-and-swap with a set
union, so concurrent or repeated updates
(a retried batch, a second sequencer finishing the same intent) never lose an index. Identities are
hashed into the path so that emails and URIs need no escaping. An index is a hint: clients verify
every hit against the log, and indices beyond the checkpoint they trust are ignored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from stelae.tiles.errors import FormatError

_MAX_INDICES = 1_000_000


class IndexKind(StrEnum):
    """The configurable lookup indexes (the leaf-hash index is always built)."""

    DIGEST = "digest"
    KEY = "key"
    IDENTITY = "identity"


ALL_INDEXES = frozenset(IndexKind)


def leaf_path(leaf_hash: bytes) -> str:
    return f"index/leaf/{leaf_hash.hex()}"


def digest_path(digest: str) -> str:
    """``digest`` is ``<alg>:<hex>``; a bare 64-hex-digit string is taken as SHA-256."""
    alg, sep, value = digest.lower().partition(":")
    if not sep:
        alg, value = "sha256", alg
    if alg not in ("sha256", "sha384", "sha512") or not value or not _is_hex(value):
        raise FormatError(f"{digest!r} is not a digest like sha256:<hex>")
    want = {"sha256": 64, "sha384": 96, "sha512": 128}[alg]
    if len(value) != want:
        raise FormatError(f"a {alg} digest has {want} hex digits, not {len(value)}")
    return f"index/{alg}/{value}"


def key_path(fingerprint: str) -> str:
    # SHA-256 of an SPKI (64 hex digits), or an OpenPGP v4/v6 fingerprint (40/64 hex digits).
    if not 40 <= len(fingerprint) <= 128 or not _is_hex(fingerprint):
        raise FormatError(f"{fingerprint!r} is not a key fingerprint (40..128 hex digits)")
    return f"index/key/{fingerprint.lower()}"


def identity_path(identity: str) -> str:
    ident = identity.strip()
    if "@" in ident and "://" not in ident:
        ident = ident.lower()  # emails compare case-insensitively; URIs do not
    return f"index/identity/{hashlib.sha256(ident.encode()).hexdigest()}"


def _is_hex(s: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in s)


@dataclass(frozen=True)
class LeafRecord:
    """What ``index/leaf/<hash>`` holds: where the entry is, when, and its Rekor v1 SET."""

    index: int
    integrated_time: int = 0
    signed_entry_timestamp: bytes = b""

    def to_bytes(self) -> bytes:
        obj: dict[str, Any] = {"index": self.index, "integratedTime": self.integrated_time}
        if self.signed_entry_timestamp:
            obj["signedEntryTimestamp"] = base64.b64encode(self.signed_entry_timestamp).decode()
        return json.dumps(obj, separators=(",", ":")).encode()

    @classmethod
    def parse(cls, data: bytes) -> LeafRecord:
        obj = _load(data)
        index = obj.get("index")
        itime = obj.get("integratedTime", 0)
        set_b64 = obj.get("signedEntryTimestamp", "")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise FormatError("leaf index object has no non-negative 'index'")
        if not isinstance(itime, int) or isinstance(itime, bool) or itime < 0:
            raise FormatError("leaf index object has a bad 'integratedTime'")
        if not isinstance(set_b64, str):
            raise FormatError("leaf index object has a bad 'signedEntryTimestamp'")
        try:
            sig = base64.b64decode(set_b64, validate=True)
        except (binascii.Error, ValueError) as err:
            raise FormatError("leaf index 'signedEntryTimestamp' is not base64") from err
        return cls(index, itime, sig)


def decode_leaf_index(data: bytes) -> int:
    return LeafRecord.parse(data).index


PAGE_SIZE = 1000
"""Indices per page. A list is a mutable head of at most this many of the newest indices, plus
immutable full pages ``<path>.0``, ``<path>.1``… of the older ones, so a batch rewrites at most
one page-sized object per key however popular the key is (not the key's whole history)."""


@dataclass(frozen=True)
class IndexHead:
    """The mutable head of a lookup list: the newest indices and how many full pages precede."""

    indices: tuple[int, ...]
    pages: int = 0
    frozen_max: int = -1  # the largest index in the full pages (-1: none)

    def to_bytes(self) -> bytes:
        obj: dict[str, Any] = {"indices": list(self.indices)}
        if self.pages:
            obj["pages"] = self.pages
            obj["frozenMax"] = self.frozen_max
        return json.dumps(obj, separators=(",", ":")).encode()

    @classmethod
    def parse(cls, data: bytes) -> IndexHead:
        obj = _load(data)
        pages, frozen_max = obj.get("pages", 0), obj.get("frozenMax", -1)
        if not isinstance(pages, int) or isinstance(pages, bool) or not 0 <= pages <= 10**9:
            raise FormatError("lookup index object has a bad 'pages'")
        if not isinstance(frozen_max, int) or isinstance(frozen_max, bool) or frozen_max < -1:
            raise FormatError("lookup index object has a bad 'frozenMax'")
        return cls(tuple(decode_indices(data)), pages, frozen_max)

    def covers(self, indices: Iterable[int]) -> bool:
        """Whether every one of ``indices`` is already listed (in the head or a full page)."""
        have = set(self.indices)
        return all(i in have or i <= self.frozen_max for i in indices)

    def merge(self, indices: Iterable[int]) -> tuple[IndexHead, list[tuple[int, bytes]]]:
        """The new head after adding ``indices``, and the full pages ``(number, bytes)`` to
        create first. Indices only ever grow at the end (batches are sequential), so page k
        always holds the same indices and re-creating it is idempotent."""
        merged = sorted(set(self.indices) | {i for i in indices if i > self.frozen_max})
        pages, frozen_max, new_pages = self.pages, self.frozen_max, []
        while len(merged) > PAGE_SIZE:
            page, merged = merged[:PAGE_SIZE], merged[PAGE_SIZE:]
            new_pages.append((pages, encode_indices(page)))
            pages, frozen_max = pages + 1, page[-1]
        return IndexHead(tuple(merged), pages, frozen_max), new_pages


def page_path(path: str, page: int) -> str:
    return f"{path}.{page}"


def read_indices(fetch: Callable[[str], bytes], path: str) -> list[int]:
    """Every index listed at ``path``, oldest first: the head, then its full pages.

    ``fetch`` raises the fetcher's NotFoundError when the key was never indexed.
    """
    head = IndexHead.parse(fetch(path))
    out: list[int] = []
    for k in range(head.pages):
        out.extend(decode_indices(fetch(page_path(path, k))))
    out.extend(head.indices)
    return out


def encode_indices(indices: Iterable[int]) -> bytes:
    return json.dumps({"indices": sorted(set(indices))}, separators=(",", ":")).encode()


def decode_indices(data: bytes) -> list[int]:
    """The ``indices`` list of one head or page object (not following pages)."""
    obj = _load(data)
    indices = obj.get("indices")
    if not isinstance(indices, list) or len(indices) > _MAX_INDICES:
        raise FormatError("lookup index object has no 'indices' list")
    out: list[int] = []
    for i in indices:
        if not isinstance(i, int) or isinstance(i, bool) or i < 0:
            raise FormatError(f"lookup index holds {i!r}, not a log index")
        out.append(i)
    return out


def _load(data: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise FormatError(f"lookup index object is not JSON: {err}") from err
    if not isinstance(obj, dict):
        raise FormatError("lookup index object is not a JSON object")
    return obj
