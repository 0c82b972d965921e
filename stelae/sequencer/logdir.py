"""A log on the local disk: its configuration, signing key and object store, in one data directory.

Layout of ``DATA`` (default ``./stelae-data``)::

    DATA/config.json   LogConfig: origin, verifier key, which indexes to build, batching
    DATA/signing.key   the Ed25519 note signing key (PRIVATE+KEY+...), mode 0600, never served
    DATA/signing-mldsa.key  the optional ML-DSA-44 log key (PRIVATE+KEY+..., type 0x06), likewise
    DATA/log/          the tlog-tiles prefix: checkpoint, tile/..., index/..., checkpoints/...
                       (plus .state/, which the static server refuses to serve)

Only ``DATA/log`` is ever served; the key lives outside it.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from stelae.errors import StelaeError
from stelae.sequencer.engine import ALL_INDEXES, Cosigner, Sequencer, SequencerConfig
from stelae.sequencer.local import LocalStore
from stelae.tiles.errors import FormatError
from stelae.tiles.mldsa import MLDSA44CosignatureSigner, MLDSA44CosignatureVerifier
from stelae.tiles.notekeys import Ed25519NoteSigner, parse_vkey
from stelae.tiles.paths import (
    BATCH_DIR,
    CHECKPOINT,
    HISTORY_DIR,
    INDEX_DIR,
    INTENT,
    STATE_DIR,
    TILE_DIR,
    UNSYNCED_MARKERS,
)

CONFIG_FILE = "config.json"
KEY_FILE = "signing.key"
MLDSA_KEY_FILE = "signing-mldsa.key"
LOG_DIR = "log"
LOCAL_PARALLEL_WRITES = 1
"""Object writes in flight per stage for a local log: serial. Measured at batch 1024–4096 with the
leaf index: ~130 µs CPU per entry serial, ~230–420 µs through a pool of 16 threads."""


@dataclass(frozen=True)
class LogConfig:
    """Everything that defines a local log. Stored as ``DATA/config.json``."""

    origin: str
    """Checkpoint origin and note key name, e.g. ``log.example.com/stelae``."""
    vkey: str
    """The verifier key readers need (``origin+hex8+base64``)."""
    mldsa_vkey: str | None = None
    """The optional ML-DSA-44 log key (type 0x06): when set, every checkpoint carries a second
    log signature under it, beside the Ed25519 ones (docs/compatibility.md)."""
    indexes: tuple[str, ...] = tuple(sorted(k.value for k in ALL_INDEXES))
    """Read from configuration files of earlier versions, and ignored: every key kind is always
    indexed now (docs/index.md)."""
    batch_max_size: int = 1024
    """A batch closes when it holds this many entries..."""
    batch_max_age_ms: int = 50
    """...or when its oldest entry has waited this long."""
    max_pending: int = 20000
    """Submissions waiting for a batch beyond this are refused with 503 and Retry-After: the
    hard cap. Usually the limit below is lower."""
    queue_target_ms: int = 500
    """Refuse (503, Retry-After) a submission when more are already waiting than the sequencer
    integrates in this long at its recent rate (entries/s, averaged over batches), but always
    let 256 wait. An accepted entry then waits about this long plus one batch, so a 201 comes
    well within a second under any load; what the sequencer cannot take is refused at once
    instead of queued for ever longer. 0 turns this off (only ``max_pending`` applies)."""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        verifier = parse_vkey(self.vkey)
        if verifier.name != self.origin:
            raise FormatError(f"vkey is for {verifier.name!r}, origin is {self.origin!r}")
        if self.mldsa_vkey is not None:
            mldsa = parse_vkey(self.mldsa_vkey)
            if not isinstance(mldsa, MLDSA44CosignatureVerifier) or mldsa.name != self.origin:
                raise FormatError(f"mldsa_vkey is not an ML-DSA-44 key named {self.origin!r}")
        for name in self.indexes:
            if name not in {k.value for k in ALL_INDEXES}:
                raise FormatError(f"unknown lookup index {name!r} (digest, key, identity)")
        if not 1 <= self.batch_max_size <= 65536:
            raise FormatError("batch_max_size must be 1..65536")
        if not 0 <= self.batch_max_age_ms <= 60_000:
            raise FormatError("batch_max_age_ms must be 0..60000")
        if self.max_pending < 1:
            raise FormatError("max_pending must be at least 1")
        if not 0 <= self.queue_target_ms <= 60_000:
            raise FormatError("queue_target_ms must be 0..60000")

    @classmethod
    def from_json(cls, text: str) -> LogConfig:
        try:
            obj = json.loads(text)
        except ValueError as err:
            raise FormatError(f"{CONFIG_FILE} is not JSON: {err}") from err
        if not isinstance(obj, dict):
            raise FormatError(f"{CONFIG_FILE} is not a JSON object")
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        unknown = set(obj) - known
        if unknown:
            raise FormatError(f"{CONFIG_FILE} has unknown fields: {', '.join(sorted(unknown))}")
        try:
            if "indexes" in obj:
                obj["indexes"] = tuple(obj["indexes"])
            return cls(**obj)
        except TypeError as err:
            raise FormatError(f"{CONFIG_FILE}: {err}") from err

    def to_json(self) -> str:
        obj = asdict(self)
        obj.pop("extra")
        if obj["mldsa_vkey"] is None:
            del obj["mldsa_vkey"]  # a log without one keeps the configuration it always had
        obj["indexes"] = list(self.indexes)
        return json.dumps(obj, indent=2) + "\n"

    def sequencer_config(self) -> SequencerConfig:
        return SequencerConfig(
            origin=self.origin,
            # Local writes are a few tens of microseconds of system calls with the group-commit
            # store: handing each to a thread pool costs more (GIL, futures) than it overlaps.
            parallel_writes=LOCAL_PARALLEL_WRITES,
        )


@dataclass(frozen=True)
class LocalLog:
    """An opened data directory."""

    data: Path
    config: LogConfig
    signer: Ed25519NoteSigner
    store: LocalStore
    mldsa_signer: MLDSA44CosignatureSigner | None = None

    @property
    def log_dir(self) -> Path:
        return self.data / LOG_DIR

    def sequencer(
        self, cosigner: Cosigner | None = None, *, gc_grace: float | None = None
    ) -> Sequencer:
        """The log's sequencer; with ``cosigner``, checkpoints are published only once the
        witnesses it asks have cosigned them (docs/witness.md); with ``gc_grace``, partial tiles
        and bundles are deleted that long after their full tile (docs/durability.md)."""
        extra = () if self.mldsa_signer is None else (self.mldsa_signer,)
        config = replace(
            self.config.sequencer_config(),
            cosigner=cosigner,
            extra_log_signers=extra,
            gc_grace=gc_grace,
        )
        return Sequencer(self.store, self.signer, config)


def init_log(
    data: Path, origin: str, *, mldsa: bool = False, **settings: Any
) -> tuple[LocalLog, bool]:
    """Create a log in ``data`` (or open the one there). Returns ``(log, created)``.

    With ``mldsa`` the log also gets an ML-DSA-44 key (an existing log without one gets it
    added: its later checkpoints carry both signatures). Refuses to reuse a directory whose
    existing log has another origin.
    """
    if (data / CONFIG_FILE).exists():
        log = open_log(data)
        if log.config.origin != origin:
            raise StelaeError(
                f"{data} already holds the log {log.config.origin!r}, not {origin!r}",
                hint="choose another --data directory",
            )
        if mldsa and log.mldsa_signer is None:
            _add_mldsa_key(data, log.config)
            log = open_log(data)
        return log, False
    if (data / LOG_DIR / CHECKPOINT).exists():
        raise StelaeError(
            f"{data / CONFIG_FILE} is missing, but {data / LOG_DIR} holds a published log; "
            "a new key would make a different log over its tiles",
            hint="restore config.json and signing.key from a backup, or choose another --data",
        )
    signer = Ed25519NoteSigner.generate(origin)
    mldsa_signer = MLDSA44CosignatureSigner.generate(origin) if mldsa else None
    mldsa_vkey = None if mldsa_signer is None else mldsa_signer.vkey
    config = LogConfig(origin=origin, vkey=signer.vkey, mldsa_vkey=mldsa_vkey, **settings)
    data.mkdir(parents=True, exist_ok=True)
    (data / LOG_DIR).mkdir(exist_ok=True)
    _write_secret(data / KEY_FILE, signer.skey)
    if mldsa_signer is not None:
        _write_secret(data / MLDSA_KEY_FILE, mldsa_signer.skey)
    _write_config(data, config)  # the config appears last: its presence means "complete"
    return open_log(data), True


def _write_secret(path: Path, text: str) -> None:
    """Create ``path`` (mode 0600, never over an existing file) holding ``text``, durably."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
        f.flush()
        os.fsync(f.fileno())


def _write_config(data: Path, config: LogConfig) -> None:
    tmp = data / (CONFIG_FILE + ".tmp")
    tmp.write_text(config.to_json())
    os.replace(tmp, data / CONFIG_FILE)


def _add_mldsa_key(data: Path, config: LogConfig) -> None:
    """Give an existing log an ML-DSA-44 key. A key file left by an attempt that stopped before
    the configuration named it was never used to sign, so it is taken rather than refused."""
    path = data / MLDSA_KEY_FILE
    if path.exists():
        signer = _load_mldsa_key(path, config.origin)
    else:
        signer = MLDSA44CosignatureSigner.generate(config.origin)
        _write_secret(path, signer.skey)
    _write_config(data, replace(config, mldsa_vkey=signer.vkey))


def _load_mldsa_key(path: Path, origin: str) -> MLDSA44CosignatureSigner:
    try:
        signer = MLDSA44CosignatureSigner.from_skey(path.read_text().strip())
    except FileNotFoundError as err:
        raise StelaeError(
            f"the ML-DSA-44 key {path} of the log {origin!r} is missing",
            hint="restore it from a backup; readers that pin its vkey reject checkpoints "
            "without its signature",
        ) from err
    except FormatError as err:
        raise StelaeError(f"{path}: {err}") from err
    if signer.name != origin:
        raise StelaeError(f"{path} is a key for {signer.name!r}, not the origin {origin!r}")
    return signer


def open_log(data: Path) -> LocalLog:
    """Open an existing data directory, checking the key matches the configuration and that
    the log's own paths are what the store expects (see :func:`check_layout`)."""
    try:
        config = LogConfig.from_json((data / CONFIG_FILE).read_text())
    except FileNotFoundError as err:
        if (data / LOG_DIR / CHECKPOINT).exists():
            # `stelae init` here would create a new key and a different log over these tiles.
            raise StelaeError(
                f"{data / CONFIG_FILE} is missing, but {data / LOG_DIR} holds a published log",
                hint="restore config.json (and signing.key) from a backup of this data directory",
            ) from err
        raise StelaeError(
            f"{data} holds no stelae log ({err.filename} is missing)",
            hint="create one with `stelae init --data DIR --origin ORIGIN`",
        ) from err
    try:
        skey = (data / KEY_FILE).read_text().strip()
    except FileNotFoundError as err:
        raise StelaeError(
            f"the signing key {data / KEY_FILE} of the log {config.origin!r} is missing",
            hint="restore it from a backup; `stelae init` would create a new key, which is a "
            "different log that no reader of this one accepts",
        ) from err
    signer = Ed25519NoteSigner.from_skey(skey)
    if signer.vkey != config.vkey:
        raise StelaeError(f"{KEY_FILE} does not match the vkey in {CONFIG_FILE}")
    mldsa_signer = None
    if config.mldsa_vkey is not None:
        mldsa_signer = _load_mldsa_key(data / MLDSA_KEY_FILE, config.origin)
        if mldsa_signer.vkey != config.mldsa_vkey:
            raise StelaeError(f"{MLDSA_KEY_FILE} does not match the mldsa_vkey in {CONFIG_FILE}")
    check_layout(data / LOG_DIR)
    store = LocalStore(data / LOG_DIR, group_commit=True)
    return LocalLog(data, config, signer, store, mldsa_signer)


#: Paths inside the log directory that must be of one kind when present: a directory or a file
#: in the wrong place (a hand-made ``.state/intent`` directory, a ``.state`` file) would let the
#: server start and then fail every write, so it is refused at start, naming the path.
_LAYOUT_KINDS: tuple[tuple[str, bool], ...] = (
    ("", True),
    (STATE_DIR, True),
    (INTENT, False),
    (UNSYNCED_MARKERS, True),
    (CHECKPOINT, False),
    (TILE_DIR, True),
    (INDEX_DIR, True),
    (BATCH_DIR, True),
    (HISTORY_DIR, True),
)


def check_layout(log_dir: Path) -> None:
    """Refuse a log directory whose fixed paths have the wrong kind (directory vs file)."""
    for rel, is_dir in _LAYOUT_KINDS:
        path = log_dir / rel if rel else log_dir
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            continue  # created when first needed
        except NotADirectoryError:
            continue  # a parent is a file: reported for that parent, which comes first
        except OSError as err:
            raise StelaeError(f"couldn't inspect {path}: {err}") from err
        if is_dir and not stat.S_ISDIR(mode):
            raise StelaeError(
                f"{path} is not a directory; the log keeps a directory there",
                hint="move it out of the way (or restore the directory), then start again",
            )
        if not is_dir and not stat.S_ISREG(mode):
            raise StelaeError(
                f"{path} is not a regular file; the log keeps a file there",
                hint="move it out of the way (or restore the file), then start again",
            )
