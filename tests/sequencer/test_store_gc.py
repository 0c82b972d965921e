"""The one deletion a store makes: obsolete partial tiles and bundles, and replaced index runs
(PartialDeleter), on every backend — a local directory, S3 (moto in server mode on
loopback, real boto3) and memory."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from stelae.sequencer.local import LocalStore
from stelae.sequencer.s3 import S3Store
from stelae.sequencer.store import NotPartialKeyError, ObjectNotFound, PartialDeleter
from stelae.tiles.errors import FormatError
from stelae.tiles.paths import ObjectClass, classify
from tests.support.memory import MemoryStore

PARTIALS = [
    "tile/0/000.p/1",
    "tile/0/000.p/2",
    "tile/entries/000.p/1",
    "tile/1/x001/002.p/9",
    "index/run/0-1/0",  # index run shards (docs/index.md, "Garbage collection")
    "index/run/0-2/3",
]
KEPT = {
    "tile/0/000": ObjectClass.TILE,
    "tile/entries/000": ObjectClass.BUNDLE,
    "checkpoint": ObjectClass.CHECKPOINT,
    "checkpoints/1": ObjectClass.CHECKPOINT_HISTORY,
    "index/manifest/2": ObjectClass.INDEX_MANIFEST,
    "index/run/0-3/0": ObjectClass.INDEX_RUN,
    "batch/0": ObjectClass.BATCH,
}


@pytest.fixture(params=["local", "s3", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "local":
        return LocalStore(tmp_path / "log")
    if request.param == "s3":
        moto = request.getfixturevalue("moto_server")
        bucket = f"stelae-{uuid.uuid4().hex[:16]}"
        moto.client("s3").create_bucket(Bucket=bucket)
        return S3Store(bucket, prefix="logs/a", client=moto.client("s3"))
    return MemoryStore()


def _fill(store: Any) -> None:
    for key in PARTIALS:
        cls = classify(key)
        assert cls is not None
        store.put_immutable(key, b"x" * 32, cls)
    for key, cls in KEPT.items():
        if cls is ObjectClass.CHECKPOINT:
            store.put_if(key, b"cp", cls, None)
        else:
            store.put_immutable(key, b"y" * 32, cls)


def test_every_backend_is_a_partial_deleter(store: Any) -> None:
    assert isinstance(store, PartialDeleter)


def test_deletes_partials_and_nothing_else(store: Any) -> None:
    _fill(store)
    before = store.counters["DELETE"]
    store.delete_partials(PARTIALS)
    for key in PARTIALS:
        with pytest.raises(ObjectNotFound):
            store.get(key)
    for key in KEPT:
        assert store.get(key)
    assert store.counters["DELETE"] > before


def test_deleting_what_is_not_there_is_fine(store: Any) -> None:
    _fill(store)
    store.delete_partials(PARTIALS)
    store.delete_partials(PARTIALS)  # a repeat (a crash mid-collection, then again)
    store.delete_partials(["tile/0/x123/456.p/255"])  # never written
    with pytest.raises(ObjectNotFound):
        store.get(PARTIALS[0])


@pytest.mark.parametrize(
    "key",
    [
        "tile/0/000",  # a full tile
        "tile/entries/000",  # a full bundle
        "checkpoint",
        "checkpoints/1",
        "index/manifest/2",  # manifests are kept
        "batch/0",
        "index/run/0-1",  # a run's prefix, not an object
        "index/run/01-2/0",  # not canonical
        "index/run/0-1/00",
        "index/run/2-1/0",  # reversed
        "index/run/0-1/0/1",
        "index/manifest/01",
        "index/manifest/-1",
        "index/leaf/" + "ab" * 32,  # an index object of older logs
        "index/other",
        ".state/intent",
        "tile/0/000.p/0",  # no such width
        "tile/0/000.p/256",
        "tile/0/000.p/07",  # not canonical
        "tile/0/x000/001.p/1",  # not canonical either
        "tile/0/../0/000.p/1",
        "/tile/0/000.p/1",
        "",
    ],
)
def test_refuses_every_other_key_before_any_request(store: Any, key: str) -> None:
    _fill(store)
    before = store.counters.as_dict()
    # A refused key anywhere in the list: nothing at all is deleted.
    with pytest.raises(NotPartialKeyError) as caught:
        store.delete_partials([PARTIALS[0], key])
    assert caught.value.key == key
    assert isinstance(caught.value, FormatError)  # a bad argument, like any invalid key
    assert store.counters.as_dict() == before
    assert store.get(PARTIALS[0])


def test_local_removes_the_emptied_folder_and_can_write_there_again(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "log")
    store.put_immutable("tile/0/000.p/1", b"a" * 32, ObjectClass.TILE)
    store.put_immutable("tile/0/000.p/2", b"b" * 64, ObjectClass.TILE)
    store.delete_partials(["tile/0/000.p/1"])
    assert (tmp_path / "log/tile/0/000.p").is_dir()  # still holds width 2
    store.delete_partials(["tile/0/000.p/2"])
    assert not (tmp_path / "log/tile/0/000.p").exists()
    # A replay after a rollback writes the partial again: the store must recreate the folder.
    store.put_immutable("tile/0/000.p/2", b"b" * 64, ObjectClass.TILE)
    assert store.get("tile/0/000.p/2") == b"b" * 64


def test_s3_deletes_a_thousand_keys_a_request(moto_server: Any) -> None:
    bucket = f"stelae-{uuid.uuid4().hex[:16]}"
    moto_server.client("s3").create_bucket(Bucket=bucket)
    store = S3Store(bucket, client=moto_server.client("s3"))
    keys = [f"tile/{level}/{i:03d}.p/{w}" for level in range(5) for i in range(2) for w in (1, 2)]
    keys += [f"tile/entries/{i:03d}.p/{w}" for i in range(10) for w in range(1, 100)]
    for key in keys[:3]:
        store.put_immutable(key, b"z" * 32, ObjectClass.TILE)
    store.delete_partials(keys)  # 1,010 keys
    assert store.counters["DELETE"] == 2
    listed = moto_server.client("s3").list_objects_v2(Bucket=bucket)
    assert listed.get("KeyCount") == 0
