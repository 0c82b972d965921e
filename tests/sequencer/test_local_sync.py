"""The local store's group commit: one syncfs per flush, and repair of a power loss's debris.

Syncs are counted through the store's :class:`~stelae.sequencer.durability.Syncer` seam (never by
patching ``os``). A power loss is simulated the way it looks on disk afterwards: the dead store's
marker is left behind unlocked, and objects it linked but never synced hold truncated or zeroed
bytes. Recovery must then complete the claimed batch and leave a log the read client verifies.
"""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest

from stelae.sequencer.durability import OsSyncer
from stelae.sequencer.engine import Sequencer, SequencerConfig
from stelae.sequencer.local import DEFERRABLE, MARKER_DIR, LocalStore
from stelae.sequencer.logdir import LOCAL_PARALLEL_WRITES, init_log
from stelae.sequencer.store import ImmutableConflictError, StoreError
from stelae.server.static import StaticFiles
from stelae.tiles.batch import BatchRecord
from stelae.tiles.errors import FormatError
from stelae.tiles.indexkeys import KeyKind
from stelae.tiles.layout import TileID
from stelae.tiles.paths import (
    CHECKPOINT,
    INTENT,
    ObjectClass,
    batch_path,
    history_path,
    manifest_path,
    object_class_for_key,
    validate_key,
)
from tests.sequencer.test_sequencer import ORIGIN, SIGNER, entry, find, verify_whole_log
from tests.support.faults import FaultInjectingStore
from tests.support.memory import WriteEvent

LEAF = "index/leaf/" + "ab" * 32
RUN = "index/run/0-5/0"
TILE = "tile/0/000.p/1"


class CountingSyncer(OsSyncer):
    """Really syncs, and records what: ("fsync" | "syncfs", the path the descriptor is open on)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail_syncfs: OSError | None = None

    def fsync(self, fd: int) -> None:
        self.calls.append(("fsync", _fd_path(fd)))
        super().fsync(fd)

    def syncfs(self, fd: int) -> None:
        self.calls.append(("syncfs", _fd_path(fd)))
        if self.fail_syncfs is not None:
            raise self.fail_syncfs
        super().syncfs(fd)

    def count(self, kind: str) -> int:
        return sum(1 for k, _ in self.calls if k == kind)


def _fd_path(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "?"


def repairing(store: LocalStore) -> bool:
    """``store.repairing``, read afresh (a plain attribute read would be narrowed by mypy)."""
    return store.repairing


def markers(root: Path) -> list[str]:
    directory = root.joinpath(*MARKER_DIR)
    return sorted(os.listdir(directory)) if directory.is_dir() else []


# --- deferral ---------------------------------------------------------------------------------


def test_group_commit_writes_deferrable_objects_without_fsync_and_flush_syncs_once(
    tmp_path: Path,
) -> None:
    syncer = CountingSyncer()
    store = LocalStore(tmp_path, group_commit=True, syncer=syncer)
    # The first writes create directories, and each new directory is fsynced into its parent.
    store.put_immutable(TILE, b"x" * 32, ObjectClass.TILE)
    store.put_immutable(LEAF, b"{}", ObjectClass.ENTRY_LEAF_INDEX)
    store.put_immutable(history_path(6), b"cp\n", ObjectClass.CHECKPOINT_HISTORY)
    syncer.calls.clear()
    for i in range(50):
        store.put_immutable(
            f"index/leaf/{i:064x}", b'{"index":%d}' % i, ObjectClass.ENTRY_LEAF_INDEX
        )
        store.put_immutable(f"tile/0/000.p/{i + 2}", b"y" * 32 * (i + 2), ObjectClass.TILE)
    store.put_immutable(history_path(7), b"cp\n", ObjectClass.CHECKPOINT_HISTORY)
    assert syncer.calls == [], "101 objects and not one sync"
    # Readers see every object at once; only durability waits.
    assert store.get(f"index/leaf/{3:064x}") == b'{"index":3}'

    syncer.calls.clear()
    store.flush()
    assert syncer.calls[0] == ("syncfs", str(tmp_path)), syncer.calls
    assert syncer.count("syncfs") == 1
    syncer.calls.clear()
    store.flush()  # nothing owed since
    assert syncer.calls == []


def test_checkpoint_state_and_index_writes_are_never_left_unsynced(tmp_path: Path) -> None:
    syncer = CountingSyncer()
    store = LocalStore(tmp_path, group_commit=True, syncer=syncer)
    store.put_if(".state/intent", b"i", ObjectClass.STATE, None)
    store.put_if(CHECKPOINT, b"cp\n", ObjectClass.CHECKPOINT, None)
    store.put_immutable("index/sha256/" + "cd" * 32 + ".0", b"[1]", ObjectClass.INDEX)
    syncer.calls.clear()

    version = store.get_versioned(CHECKPOINT).version
    store.put_if(CHECKPOINT, b"cp2\n", ObjectClass.CHECKPOINT, version)
    assert [k for k, _ in syncer.calls] == ["fsync", "fsync"]
    assert syncer.calls[1] == ("fsync", str(tmp_path)), "the checkpoint's name is synced at once"
    syncer.calls.clear()
    store.put_if(INTENT, b"j", ObjectClass.STATE, store.get_versioned(INTENT).version)
    assert [k for k, _ in syncer.calls] == ["fsync", "fsync"]
    syncer.calls.clear()
    # An index page: data and name at once, because a head that lists it is never rewritten.
    store.put_immutable("index/sha256/" + "cd" * 32 + ".1", b"[2]", ObjectClass.INDEX)
    assert [k for k, _ in syncer.calls] == ["fsync", "fsync"]
    syncer.calls.clear()
    # A head (mutable index): data at once, the name with the flush.
    store.put_if("index/sha256/" + "cd" * 32, b"{}", ObjectClass.INDEX, None)
    assert [k for k, _ in syncer.calls] == ["fsync"]
    assert markers(tmp_path) == [], "a data-synced write needs no marker"
    store.flush()
    assert syncer.count("syncfs") == 1


def test_without_group_commit_every_write_is_synced_and_flush_does_nothing(tmp_path: Path) -> None:
    syncer = CountingSyncer()
    store = LocalStore(tmp_path, syncer=syncer)
    store.put_immutable(TILE, b"x" * 32, ObjectClass.TILE)
    store.put_immutable(LEAF, b'{"index":0}', ObjectClass.ENTRY_LEAF_INDEX)
    syncer.calls.clear()
    store.put_immutable("index/leaf/" + "cd" * 32, b'{"index":1}', ObjectClass.ENTRY_LEAF_INDEX)
    assert syncer.calls[0][0] == "fsync" and syncer.calls[0][1].endswith(".tmp")  # the data
    assert syncer.calls[1:] == [("fsync", str(tmp_path / "index" / "leaf"))]  # then the name
    syncer.calls.clear()
    store.flush()
    assert syncer.calls == []
    assert markers(tmp_path) == []


def test_finding_equal_bytes_still_owes_a_sync(tmp_path: Path) -> None:
    """Equal bytes found in place may be another writer's, not yet on disk."""
    LocalStore(tmp_path, group_commit=True).put_immutable(LEAF, b"{}", ObjectClass.ENTRY_LEAF_INDEX)
    syncer = CountingSyncer()
    other = LocalStore(tmp_path, syncer=syncer)  # not even in group-commit mode
    other.put_immutable(LEAF, b"{}", ObjectClass.ENTRY_LEAF_INDEX)
    other.flush()
    assert syncer.count("syncfs") == 1


# --- the marker -------------------------------------------------------------------------------


def test_the_marker_is_durable_before_the_first_unsynced_write_and_gone_after_flush(
    tmp_path: Path,
) -> None:
    (tmp_path / "index" / "leaf").mkdir(parents=True)
    syncer = CountingSyncer()
    store = LocalStore(tmp_path, group_commit=True, syncer=syncer)
    assert markers(tmp_path) == []
    store.put_immutable(LEAF, b"{}", ObjectClass.ENTRY_LEAF_INDEX)
    (name,) = markers(tmp_path)
    marker_dir = str(tmp_path.joinpath(*MARKER_DIR))
    assert ("fsync", f"{marker_dir}/{name}.new") in syncer.calls  # the file, before the rename
    assert ("fsync", marker_dir) in syncer.calls  # then its name
    assert syncer.calls[-1] == ("fsync", marker_dir), "no sync after the marker's: the leaf waits"
    store.put_immutable(TILE, b"x" * 32, ObjectClass.TILE)
    assert markers(tmp_path) == [name], "one marker per flush interval, not per write"
    store.flush()
    assert markers(tmp_path) == []
    store.put_immutable("tile/0/000.p/2", b"x" * 64, ObjectClass.TILE)
    assert len(markers(tmp_path)) == 1 and markers(tmp_path) != [name]


def test_marker_names_are_not_keys_and_are_never_served(tmp_path: Path) -> None:
    store = LocalStore(tmp_path, group_commit=True)
    store.put_immutable(LEAF, b"{}", ObjectClass.ENTRY_LEAF_INDEX)
    (name,) = markers(tmp_path)
    key = "/".join([*MARKER_DIR, name])
    with pytest.raises(FormatError):
        validate_key(key)
    assert object_class_for_key(key) is None
    assert StaticFiles(tmp_path).get("/" + key).status == 404


def test_a_failed_syncfs_raises_naming_the_errno_and_keeps_everything_owed(tmp_path: Path) -> None:
    syncer = CountingSyncer()
    store = LocalStore(tmp_path, group_commit=True, syncer=syncer)
    store.put_immutable(LEAF, b"{}", ObjectClass.ENTRY_LEAF_INDEX)
    syncer.fail_syncfs = OSError(errno.EIO, os.strerror(errno.EIO))
    with pytest.raises(StoreError, match="EIO"):
        store.flush()
    assert len(markers(tmp_path)) == 1, "the writes are still unsynced: the marker stays"
    syncer.fail_syncfs = None
    store.flush()
    assert syncer.count("syncfs") == 2
    assert markers(tmp_path) == []


def test_a_live_stores_marker_is_not_mistaken_for_a_dead_one(tmp_path: Path) -> None:
    live = LocalStore(tmp_path, group_commit=True)
    live.put_immutable(LEAF, b"{}", ObjectClass.ENTRY_LEAF_INDEX)
    assert not LocalStore(tmp_path, group_commit=True).repairing
    live.close()  # the process "dies" without flushing
    reopened = LocalStore(tmp_path, group_commit=True)
    assert reopened.repairing
    reopened.flush()
    assert not repairing(reopened) and markers(tmp_path) == []
    assert not LocalStore(tmp_path, group_commit=True).repairing


def test_flush_waits_for_writes_in_progress(tmp_path: Path) -> None:
    """Many threads writing while others flush: whatever is flushed last leaves nothing owed."""
    store = LocalStore(tmp_path, group_commit=True)
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for i in range(100):
                key = f"index/leaf/{worker:032x}{i:032x}"
                store.put_immutable(key, b"{}", ObjectClass.ENTRY_LEAF_INDEX)
                if i % 25 == 0:
                    store.flush()
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    store.flush()
    assert markers(tmp_path) == []


# --- repair after a power loss ----------------------------------------------------------------


class Crash(Exception):  # noqa: N818 - a simulated power loss, not an error
    pass


def _crash_before_flush(root: Path) -> tuple[list[str], int]:
    """Publish 300 entries, then claim 40 more and die after writing them, before the flush.

    Returns the keys the claimed batch wrote and the size it would have published.
    """
    written: list[str] = []
    store = LocalStore(root, group_commit=True)
    Sequencer(
        store, SIGNER, SequencerConfig(ORIGIN, parallel_writes=1, background_merges=False)
    ).integrate([entry(i) for i in range(300)])

    def after(ev: WriteEvent) -> None:
        written.append(ev.key)
        if ev.key == history_path(340):
            raise Crash("power loss before the flush")

    faulty = FaultInjectingStore(store, after_write=after)
    with pytest.raises(Crash):
        Sequencer(
            faulty, SIGNER, SequencerConfig(ORIGIN, parallel_writes=1, background_merges=False)
        ).integrate([entry(i) for i in range(300, 340)])
    assert len(markers(root)) == 1
    store.close()  # the process is gone: its marker's lock with it
    return written, 340


def _garble(root: Path, keys: list[str]) -> list[str]:
    """What a power loss may leave of unsynced files: empty, truncated or zero-filled."""
    damaged = []
    for n, key in enumerate(keys):
        path = root / key
        data = path.read_bytes()
        if n % 3 == 0:
            path.write_bytes(b"")
        elif n % 3 == 1:
            path.write_bytes(data[: len(data) // 2])
        else:
            path.write_bytes(bytes(len(data)))
        damaged.append(key)
    return damaged


def test_recovery_repairs_what_a_power_loss_left_incomplete(tmp_path: Path) -> None:
    root = tmp_path / "log"
    written, size = _crash_before_flush(root)
    assert batch_path(300) in written and history_path(size) in written
    runs = [k for k in written if k.startswith("index/run/")]
    tiles = [k for k in written if k.startswith("tile/")]
    assert runs and tiles and manifest_path(size) in written
    damaged = _garble(root, [*runs, *tiles, manifest_path(size), history_path(size)])

    store = LocalStore(root, group_commit=True)
    assert store.repairing
    seq = Sequencer(
        store, SIGNER, SequencerConfig(ORIGIN, parallel_writes=1, background_merges=False)
    )
    result = seq.published()
    assert result.size == size
    assert sorted(store.repaired) == sorted(damaged)
    assert not repairing(store) and markers(root) == []

    entries = verify_whole_log(store)
    assert entries == [entry(i).body for i in range(size)]
    for i in (0, 299, 300, 339):
        assert find(store, KeyKind.LEAF, entry(i).leaf_hash.hex()) == [i]
    assert store.get(history_path(size)) == result.checkpoint
    # The log goes on as usual, with conflicts loud again.
    assert seq.integrate([entry(i) for i in range(340, 350)]).size == 350
    with pytest.raises(ImmutableConflictError):
        store.put_immutable(runs[0], b"x", ObjectClass.INDEX_RUN)


def test_the_claim_is_synced_before_anything_else_is_written(tmp_path: Path) -> None:
    """The batch record is the commit point: never debris, whatever a power loss does."""
    root = tmp_path / "log"
    _crash_before_flush(root)
    record = BatchRecord.parse((root / batch_path(300)).read_bytes())
    assert record.first == 300 and record.count == 40
    store = LocalStore(root, group_commit=True)
    assert store.repairing
    assert object_class_for_key(batch_path(300)) not in DEFERRABLE, "so never replaced"


def test_the_same_debris_without_a_marker_is_a_loud_conflict(tmp_path: Path) -> None:
    """Outside repair mode nothing is replaced: different bytes mean a bug or a fork."""
    root = tmp_path / "log"
    written, _ = _crash_before_flush(root)
    _garble(root, [k for k in written if k.startswith("tile/")])
    for name in markers(root):
        (root.joinpath(*MARKER_DIR) / name).unlink()
    store = LocalStore(root, group_commit=True)
    assert not store.repairing
    with pytest.raises(ImmutableConflictError):
        Sequencer(
            store, SIGNER, SequencerConfig(ORIGIN, parallel_writes=1, background_merges=False)
        ).published()


def test_repair_mode_never_replaces_what_cannot_be_debris(tmp_path: Path) -> None:
    """A batch record is synced before its name appears: a conflict there is never debris."""
    claim = batch_path(7)
    dead = LocalStore(tmp_path, group_commit=True)
    dead.put_immutable(claim, b"one", ObjectClass.BATCH)
    dead.put_immutable(TILE, b"x" * 32, ObjectClass.TILE)
    dead.close()
    store = LocalStore(tmp_path, group_commit=True)
    assert store.repairing
    with pytest.raises(ImmutableConflictError):
        store.put_immutable(claim, b"two", ObjectClass.BATCH)
    store.put_immutable(TILE, b"y" * 32, ObjectClass.TILE)
    assert store.repaired == (TILE,) and store.get(TILE) == b"y" * 32


def test_the_empty_checkpoint_is_published_only_after_a_flush(tmp_path: Path) -> None:
    syncer = CountingSyncer()
    store = LocalStore(tmp_path, group_commit=True, syncer=syncer)
    Sequencer(
        store, SIGNER, SequencerConfig(ORIGIN, parallel_writes=1, background_merges=False)
    ).published()
    kinds = [k for k, _ in syncer.calls]
    assert kinds.count("syncfs") == 1
    # The checkpoint's own data and name syncs come after the syncfs that covers its history.
    assert kinds.index("syncfs") < len(kinds) - 2
    assert markers(tmp_path) == []


# --- the engine on a local log ----------------------------------------------------------------


def test_a_local_log_writes_serially_without_a_pool(tmp_path: Path) -> None:
    local, _ = init_log(tmp_path / "data", ORIGIN + "-local")
    assert local.config.sequencer_config().parallel_writes == LOCAL_PARALLEL_WRITES == 1
    before = {t.name for t in threading.enumerate()}
    seq = local.sequencer()
    seq.integrate([entry(i) for i in range(20)])
    seq.close()
    started = {t.name for t in threading.enumerate()} - before
    assert not any(name.startswith("stelae-write") for name in started)
    assert markers(local.log_dir) == []


def test_tile_and_bundle_paths_are_deferrable_keys() -> None:
    """The classes deferred are exactly those every recovery rewrites byte for byte."""

    assert object_class_for_key(TileID.bundle(0, 5).path()) in DEFERRABLE
    assert object_class_for_key(TileID(0, 0, 5).path()) in DEFERRABLE
    assert object_class_for_key(RUN) in DEFERRABLE
    assert object_class_for_key(manifest_path(5)) in DEFERRABLE
    assert object_class_for_key(history_path(3)) in DEFERRABLE
    for key in (CHECKPOINT, batch_path(0), INTENT):
        assert object_class_for_key(key) not in DEFERRABLE
