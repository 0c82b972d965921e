"""Every object key of a stelae log and the class of object each holds, spelled in one place.

A log is a tree of plain objects under one prefix (https://c2sp.org/tlog-tiles)::

    checkpoint                  CHECKPOINT          mutable, replaced only by compare-and-swap
    checkpoints/<size>          CHECKPOINT_HISTORY  every published checkpoint, immutable
    tile/<L>/<N>[.p/<W>]        TILE                immutable
    tile/entries/<N>[.p/<W>]    BUNDLE              immutable
    batch/<first index>         BATCH               the claim and receipt of one batch, immutable
    index/run/<a>-<b>/<shard>   INDEX_RUN           lookup-index run shards, immutable
    index/manifest/<size>       INDEX_MANIFEST      the signed list of runs at a size, immutable
    index/leaf/<hex>            ENTRY_LEAF_INDEX    per-entry objects of logs from before the
    index/...                   INDEX               batch-level index; read, never written now
    .state/...                  STATE               the sequencer's private state, never served

docs/layout.md describes every class; docs/index.md the index objects. Tile and bundle paths are
built and parsed by :class:`stelae.tiles.layout.TileID` (the tile arithmetic lives there); every
other key is built by a function here, and read back by its strict, ASCII-only parser (as
Tessera's ``api/layout/paths.go``). Nothing else in stelae spells a key.

Each class is declared once, in :class:`ObjectClass`, with the Content-Type and Cache-Control the
object is served with and whether it may ever be replaced; :func:`classify` derives a key's class
from the prefixes below. Pure: strings in, values out.
"""

from __future__ import annotations

import re
from enum import Enum

from stelae.tiles.decimals import parse_decimal
from stelae.tiles.errors import FormatError

CHECKPOINT = "checkpoint"
"""The signed tree head (https://c2sp.org/tlog-checkpoint), the only public object replaced."""

HISTORY_DIR = "checkpoints"
"""``checkpoints/<size>``: every checkpoint the log published, kept forever (stelae's own)."""

TILE_DIR = "tile"
"""Hash tiles and entry bundles (https://c2sp.org/tlog-tiles); see :class:`~.layout.TileID`."""

BATCH_DIR = "batch"
INDEX_DIR = "index"
RUN_DIR = f"{INDEX_DIR}/run"
MANIFEST_DIR = f"{INDEX_DIR}/manifest"
LEGACY_LEAF_DIR = f"{INDEX_DIR}/leaf"
"""``index/leaf/<hex leaf hash>``: the per-entry objects of logs older than the batch-level index
(the explorer still reads them); other older per-key objects sit elsewhere under ``index/``."""

STATE_DIR = ".state"
"""The sequencer's private objects: never public (:attr:`ObjectClass.public` is false)."""

INTENT = f"{STATE_DIR}/intent"
"""The claim record of a stelae from before batch records (read only, to finish its batch)."""

UNSYNCED_MARKERS = f"{STATE_DIR}/.unsynced"
"""The local store's markers of writes a group commit has not synced. A hidden name, so never a
key: :func:`validate_key` refuses it, and no store can read or write it as an object."""


# --- keys and their parsers -----------------------------------------------------------------------


def history_path(size: int) -> str:
    """``checkpoints/<size>``: the checkpoint the log published at tree ``size``."""
    return f"{HISTORY_DIR}/{size}"


def parse_history_path(key: str) -> int:
    """The tree size of a ``checkpoints/<size>`` key; FormatError for anything else."""
    return _parse_numbered(key, HISTORY_DIR, "checkpoint history size")


def history_size(name: str) -> int:
    """The tree size that a file name in the ``checkpoints`` directory stands for."""
    return parse_decimal(name, "checkpoint history size")


def batch_path(first_index: int) -> str:
    """``batch/<first index>``: the batch record of the batch starting at that index."""
    return f"{BATCH_DIR}/{first_index}"


def parse_batch_path(key: str) -> int:
    """The first index of a ``batch/<first index>`` key; FormatError for anything else."""
    return _parse_numbered(key, BATCH_DIR, "batch first index")


def manifest_path(size: int) -> str:
    """``index/manifest/<size>``: the signed list of runs answering lookups at tree ``size``."""
    return f"{MANIFEST_DIR}/{size}"


def parse_manifest_path(key: str) -> int:
    """The tree size of an ``index/manifest/<size>`` key; FormatError for anything else."""
    return _parse_numbered(key, MANIFEST_DIR, "manifest size")


def run_path(a: int, b: int) -> str:
    """``index/run/<a>-<b>``: the prefix of the run indexing entries ``[a, b)`` (not an object;
    errors about a whole run name it)."""
    return f"{RUN_DIR}/{a}-{b}"


def run_shard_path(a: int, b: int, s: int) -> str:
    """``index/run/<a>-<b>/<s>``: shard ``s`` of the run indexing entries ``[a, b)``."""
    return f"{run_path(a, b)}/{s}"


def parse_run_shard_path(key: str) -> tuple[int, int, int]:
    """``(a, b, s)`` of an ``index/run/<a>-<b>/<s>`` key; FormatError for anything else.

    Only the canonical spelling parses (ASCII digits, no leading zeros), and ``a < b``.
    """
    head, sep, rest = key.rpartition("/")
    run_dir, sep2, span = head.rpartition("/")
    if not (sep and sep2) or run_dir != RUN_DIR:
        raise FormatError(f"{key!r} is not an {RUN_DIR}/<a>-<b>/<shard> key")
    first, dash, end = span.partition("-")
    if not dash:
        raise FormatError(f"{key!r}: run {span!r} is not <a>-<b>")
    a = parse_decimal(first, "run start")
    b = parse_decimal(end, "run end")
    if a >= b:
        raise FormatError(f"{key!r}: run {span!r} is empty or reversed")
    return a, b, parse_decimal(rest, "run shard")


def _parse_numbered(key: str, directory: str, what: str) -> int:
    head, sep, name = key.rpartition("/")
    if not sep or head != directory:
        raise FormatError(f"{key!r} is not a {directory}/<number> key")
    return parse_decimal(name, what)


# --- object classes -------------------------------------------------------------------------------

# tlog-tiles: tiles and bundles never change once written, so caches may keep them for a year.
_IMMUTABLE_CACHE = "public, max-age=31536000, immutable"


class ObjectClass(Enum):
    """What kind of object a key holds: how it is served and whether it may be replaced.

    Attributes of each member: ``content_type`` and ``cache_control`` (the HTTP headers it is
    served with), ``immutable`` (once written it must never hold other bytes) and ``public``
    (whether the static file server and the CDN may serve it at all).
    """

    # The first tuple element is only a distinct label: members whose values are equal would
    # otherwise silently become aliases of each other (TILE and BUNDLE share every header).
    TILE = ("tile", "application/octet-stream", _IMMUTABLE_CACHE, True, True)
    BUNDLE = ("bundle", "application/octet-stream", _IMMUTABLE_CACHE, True, True)
    # tlog-tiles: the checkpoint SHOULD not be cached for more than a few seconds. no-cache lets
    # a CDN keep it but revalidate every time, which is what Tessera does.
    CHECKPOINT = ("checkpoint", "text/plain; charset=utf-8", "no-cache", False, True)
    CHECKPOINT_HISTORY = (
        "checkpoint-history",
        "text/plain; charset=utf-8",
        _IMMUTABLE_CACHE,
        True,
        True,
    )
    # The per-key lookup objects of logs from before the batch-level index: small JSON documents
    # that were rewritten as entries arrived. Never written now; the class stays so that such
    # logs are still served (the explorer searches them). A few seconds of staleness only
    # delayed a search hit; it could not hide an entry from a proof.
    INDEX = ("index", "application/json", "public, max-age=5", False, True)
    # A leaf hash is assigned its log index once and forever (duplicates get the first one), so
    # its index object was created once and may be cached like a tile. Never written now.
    ENTRY_LEAF_INDEX = ("entry-leaf-index", "application/json", _IMMUTABLE_CACHE, True, True)
    # The batch record (stelae.tiles.batch): the claim of a batch and its writers' receipt. A
    # pure function of the batch once created, so cached like a tile; readers ignore one beyond
    # the checkpoint they trust.
    BATCH = ("batch", "application/octet-stream", _IMMUTABLE_CACHE, True, True)
    # Lookup-index runs and manifests (docs/index.md): immutable, named by what they cover.
    INDEX_RUN = ("index-run", "application/octet-stream", _IMMUTABLE_CACHE, True, True)
    INDEX_MANIFEST = ("index-manifest", "text/plain; charset=utf-8", _IMMUTABLE_CACHE, True, True)
    # The sequencer's own bookkeeping. It is never public: the static server refuses it, and the
    # AWS deployment must keep `.state/` out of the CDN origin.
    STATE = ("state", "application/json", "no-store", False, False)

    def __init__(
        self, label: str, content_type: str, cache_control: str, immutable: bool, public: bool
    ) -> None:
        self.label = label
        self.content_type = content_type
        self.cache_control = cache_control
        self.immutable = immutable
        self.public = public


# The class of every key under a top-level directory, where one class covers the directory.
_BY_DIR = {
    BATCH_DIR: ObjectClass.BATCH,
    HISTORY_DIR: ObjectClass.CHECKPOINT_HISTORY,
    INDEX_DIR: ObjectClass.INDEX,
    STATE_DIR: ObjectClass.STATE,
}
# Under index/, the batch-level index's directories and the older per-entry one.
_BY_INDEX_DIR = {
    f"{RUN_DIR}/": ObjectClass.INDEX_RUN,
    f"{MANIFEST_DIR}/": ObjectClass.INDEX_MANIFEST,
    f"{LEGACY_LEAF_DIR}/": ObjectClass.ENTRY_LEAF_INDEX,
}


def classify(key: str) -> ObjectClass | None:
    """The class of the object at ``key``, or None if the layout has no such key.

    Raises FormatError if ``key`` is not a valid key at all (:func:`validate_key`). Classes go by
    the key's directory, as the CDN's path patterns do, so a key with a class need not parse
    (a backend's own checks and the readers' parsers refuse bad names).
    """
    validate_key(key)
    if key == CHECKPOINT:
        return ObjectClass.CHECKPOINT
    head, _, rest = key.partition("/")
    if not rest:
        return None
    if head == TILE_DIR:
        return ObjectClass.BUNDLE if rest.startswith("entries/") else ObjectClass.TILE
    if head == INDEX_DIR:
        for prefix, cls in _BY_INDEX_DIR.items():
            if key.startswith(prefix):
                return cls
    return _BY_DIR.get(head)


def object_class_for_key(key: str) -> ObjectClass | None:
    """The class of the object at ``key`` in the log layout, or None if the layout has no such key.

    Never raises: the static file server calls it with request paths, and anything that is not a
    valid key (``..``, absolute, hidden segments such as the local backend's temporary and lock
    files) is simply not part of the layout. A STATE key is returned as STATE; the caller must
    check :attr:`ObjectClass.public` before serving.
    """
    try:
        return classify(key)
    except FormatError:
        return None


def is_immutable(key: str) -> bool:
    """Whether the object at ``key`` can never change once written (a reader may cache it)."""
    cls = object_class_for_key(key)
    return cls is not None and cls.immutable


# --- the grammar of a key -------------------------------------------------------------------------

# One segment that is none of the rejected kinds: non-empty, not hidden (so not "." or ".."
# either), no slash, backslash or control character.
_SEGMENT = r"[^./\\\x00-\x1f\x7f][^/\\\x00-\x1f\x7f]*"
_PLAIN_KEY = re.compile(rf"(?:{re.escape(STATE_DIR)}/)?{_SEGMENT}(?:/{_SEGMENT})*")


def validate_key(key: str) -> None:
    """Raise FormatError unless ``key`` is a relative slash path a backend may safely hold.

    Rejected: empty keys, absolute paths, empty segments (``a//b``, trailing ``/``), ``.`` and
    ``..``, backslashes, control characters, and hidden segments (starting with ``.``) other than
    a leading ``.state``. Hidden names are reserved for the local backend's temporary, lock and
    marker files, which must never collide with, or be mistaken for, an object.
    """
    if _PLAIN_KEY.fullmatch(key):
        return  # every key the log writes: one regex, not a loop per character (hot path)
    if not key:
        raise FormatError("object key is empty")
    if "\\" in key:
        raise FormatError(f"object key {key!r} contains a backslash")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        raise FormatError(f"object key {key!r} contains a control character")
    if key.startswith("/"):
        raise FormatError(f"object key {key!r} is absolute")
    for i, segment in enumerate(key.split("/")):
        if not segment:
            raise FormatError(f"object key {key!r} has an empty path segment")
        if segment in (".", ".."):
            raise FormatError(f"object key {key!r} has a {segment!r} segment")
        if segment.startswith(".") and not (i == 0 and segment == STATE_DIR):
            raise FormatError(f"object key {key!r} has a hidden segment {segment!r}")
