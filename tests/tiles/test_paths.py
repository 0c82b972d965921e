"""stelae.tiles.paths: every key builds and parses back, non-canonical spellings are refused, and
each key lands in the class docs/layout.md gives it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stelae.tiles import paths
from stelae.tiles.errors import FormatError
from stelae.tiles.layout import TileID
from stelae.tiles.paths import ObjectClass, classify, object_class_for_key

SIZES = st.integers(min_value=0, max_value=(1 << 64) - 1)

NUMBERED: list[tuple[Callable[[int], str], Callable[[str], int], str]] = [
    (paths.history_path, paths.parse_history_path, "checkpoints/"),
    (paths.batch_path, paths.parse_batch_path, "batch/"),
    (paths.manifest_path, paths.parse_manifest_path, "index/manifest/"),
]


@pytest.mark.parametrize(("build", "parse", "prefix"), NUMBERED)
@given(n=SIZES)
def test_numbered_keys_round_trip(
    build: Callable[[int], str], parse: Callable[[str], int], prefix: str, n: int
) -> None:
    key = build(n)
    assert key == f"{prefix}{n}"
    assert parse(key) == n


@given(
    a=st.integers(min_value=0, max_value=1 << 63),
    span=st.integers(min_value=1, max_value=1 << 20),
    s=st.integers(0, 255),
)
def test_run_shard_keys_round_trip(a: int, span: int, s: int) -> None:
    key = paths.run_shard_path(a, a + span, s)
    assert key == f"index/run/{a}-{a + span}/{s}"
    assert key.startswith(paths.run_path(a, a + span) + "/")
    assert paths.parse_run_shard_path(key) == (a, a + span, s)


@pytest.mark.parametrize(
    "key",
    [
        "checkpoints/007",  # leading zero: one value, one spelling
        "checkpoints/-1",
        "checkpoints/+1",
        "checkpoints/\u0661",  # ARABIC-INDIC DIGIT ONE: int() would take it
        "checkpoints/\uff11",  # FULLWIDTH DIGIT ONE
        "checkpoints/1 ",
        "checkpoints/",
        "checkpoints/1/2",
        "checkpoint/1",
        "batch/1",  # another directory
        "checkpoints/18446744073709551616",  # 2**64
    ],
)
def test_history_parser_refuses_every_other_spelling(key: str) -> None:
    with pytest.raises(FormatError):
        paths.parse_history_path(key)


@pytest.mark.parametrize(
    "key",
    [
        "index/run/0-256",  # the run, not a shard
        "index/run/0-256/",
        "index/run/0256/0",
        "index/run/00-256/0",
        "index/run/256-256/0",  # empty
        "index/run/512-256/0",  # reversed
        "index/run/0-256/01",
        "index/run/0-\u0662\u0665\u0666/0",
        "index/manifest/0-256/0",
        "index/run/x/0-256/0",
    ],
)
def test_run_shard_parser_refuses_every_other_spelling(key: str) -> None:
    with pytest.raises(FormatError):
        paths.parse_run_shard_path(key)


def test_history_size_reads_a_directory_entry_strictly() -> None:
    assert paths.history_size("42") == 42
    for name in ("042", ".42.tmp", "42.new", "\u0664\u0662"):
        with pytest.raises(FormatError):
            paths.history_size(name)


# Every class docs/layout.md lists, with a key of it built by the module that spells it.
CLASSES = [
    (paths.CHECKPOINT, ObjectClass.CHECKPOINT),
    (paths.history_path(12), ObjectClass.CHECKPOINT_HISTORY),
    (TileID(0, 1234067, 7).path(), ObjectClass.TILE),
    (TileID(2, 0).path(), ObjectClass.TILE),
    (TileID.bundle(3, 9).path(), ObjectClass.BUNDLE),
    (paths.batch_path(4096), ObjectClass.BATCH),
    (paths.run_shard_path(0, 256, 3), ObjectClass.INDEX_RUN),
    (paths.manifest_path(256), ObjectClass.INDEX_MANIFEST),
    (f"{paths.LEGACY_LEAF_DIR}/{'ab' * 32}", ObjectClass.ENTRY_LEAF_INDEX),
    ("index/sha256/" + "cd" * 32, ObjectClass.INDEX),
    ("index/key/" + "ef" * 32 + ".0", ObjectClass.INDEX),
    (paths.INTENT, ObjectClass.STATE),
]


@pytest.mark.parametrize(("key", "cls"), CLASSES)
def test_every_key_has_the_class_the_layout_gives_it(key: str, cls: ObjectClass) -> None:
    assert classify(key) is cls
    assert object_class_for_key(key) is cls
    assert paths.is_immutable(key) is cls.immutable


def test_the_classes_cover_every_member() -> None:
    assert {cls for _, cls in CLASSES} == set(ObjectClass)


@pytest.mark.parametrize(
    "key", ["", "/checkpoint", "tile//0", "tile/../x", ".state/.unsynced/00", "tile/0/.000.tmp"]
)
def test_keys_outside_the_grammar_have_no_class(key: str) -> None:
    with pytest.raises(FormatError):
        classify(key)
    assert object_class_for_key(key) is None
    assert not paths.is_immutable(key)


def test_the_local_marker_directory_is_never_a_key() -> None:
    with pytest.raises(FormatError):
        paths.validate_key(paths.UNSYNCED_MARKERS)
    assert object_class_for_key(f"{paths.UNSYNCED_MARKERS}/0123456789abcdef") is None


@pytest.mark.parametrize("key", ["readme", "elsewhere/x", "checkpointx"])
def test_valid_keys_outside_the_layout_have_no_class(key: str) -> None:
    assert classify(key) is None
