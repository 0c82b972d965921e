"""Index manifests (docs/index.md, "Manifests"): text round trips, the partition of [0, size),
strict parsing, and signed notes tied to one log and one checkpoint."""

from __future__ import annotations

import base64
import hashlib

import pytest

from stelae.tiles.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from stelae.tiles.errors import FormatError, VerificationError
from stelae.tiles.hashing import EMPTY_ROOT
from stelae.tiles.indexrecord import RunRef
from stelae.tiles.manifest import MalformedManifestError, Manifest, ManifestMismatchError
from stelae.tiles.note import InvalidSignatureError, UnverifiedNoteError
from stelae.tiles.notekeys import Ed25519NoteSigner

ORIGIN = "example.com/log"
ROOT = hashlib.sha256(b"root").digest()


def h(n: int) -> bytes:
    return hashlib.sha256(b"%d" % n).digest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def signer(name: str = ORIGIN, seed: int = 1) -> Ed25519NoteSigner:
    return Ed25519NoteSigner(name, bytes([seed]) * 32)


RUNS = (RunRef(0, 10240, 1, h(1)), RunRef(10240, 11264, 0, h(2)), RunRef(11264, 11300, 0, h(3)))


def test_text_round_trip() -> None:
    m = Manifest(ORIGIN, 11300, ROOT, RUNS)
    text = m.to_text()
    assert text == (
        f"stelae-index/v1\n{ORIGIN}\n11300\n{b64(ROOT)}\n"
        f"0 10240 1 {b64(h(1))}\n10240 11264 0 {b64(h(2))}\n11264 11300 0 {b64(h(3))}\n"
    )
    assert Manifest.parse(text) == m
    empty = Manifest(ORIGIN, 0, EMPTY_ROOT, ())
    assert Manifest.parse(empty.to_text()) == empty


@pytest.mark.parametrize(
    ("runs", "size", "problem"),
    [
        (
            (RunRef(0, 10, 0, h(1)), RunRef(11, 20, 0, h(2))),
            20,
            r"entries \[10, 11\) are in no run",
        ),
        ((RunRef(1, 10, 0, h(1)),), 10, r"entries \[0, 1\)"),
        ((RunRef(0, 10, 0, h(1)), RunRef(9, 20, 0, h(2))), 20, "overlaps"),
        (
            (RunRef(0, 10, 0, h(1)), RunRef(10, 20, 0, h(2))),
            21,
            "end at 20, not at the tree size 21",
        ),
        ((RunRef(0, 10, 0, h(1)), RunRef(10, 20, 0, h(2))), 19, "end at 20"),
        ((), 5, "end at 0"),
        ((RunRef(10, 20, 0, h(2)), RunRef(0, 10, 0, h(1))), 20, r"\[0, 10\)"),
    ],
)
def test_partition(runs: tuple[RunRef, ...], size: int, problem: str) -> None:
    with pytest.raises(MalformedManifestError, match=problem):
        Manifest(ORIGIN, size, ROOT, runs)
    # The parser reaches the same check.
    text = f"stelae-index/v1\n{ORIGIN}\n{size}\n{b64(ROOT)}\n" + "".join(
        f"{r.a} {r.b} {r.bits} {b64(r.root)}\n" for r in runs
    )
    with pytest.raises(MalformedManifestError, match=problem):
        Manifest.parse(text)


GOOD = Manifest(ORIGIN, 11300, ROOT, RUNS).to_text()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (GOOD[:-1], "ends with a newline"),
        (GOOD.replace("stelae-index/v1", "stelae-index/v2"), "starts with"),
        (f"{ORIGIN}\n11300\n{b64(ROOT)}\n", "starts with"),  # a checkpoint is not a manifest
        (GOOD.replace("\n11300\n", "\n011300\n"), "canonical"),
        (GOOD.replace("\n11300\n", "\n１1300\n"), "canonical"),  # a fullwidth digit one
        (GOOD.replace(b64(ROOT), b64(ROOT)[:-4]), "32 bytes"),
        (GOOD.replace("0 10240 1 ", "0 10240 1  "), "not '<a> <b> <bits> <root>'"),
        (GOOD.replace("0 10240 1 ", "0 10240 25 "), "larger than 24"),
        (GOOD.replace("10240 11264 0", "10240 10240 0"), "non-empty range"),
        (GOOD + "\n", "not '<a>"),
        (GOOD.replace(ORIGIN, ""), "empty origin"),
    ],
)
def test_parse_rejects(text: str, problem: str) -> None:
    with pytest.raises(MalformedManifestError, match=problem):
        Manifest.parse(text)


def test_sign_and_open() -> None:
    m = Manifest(ORIGIN, 11300, ROOT, RUNS)
    key = signer()
    data = m.sign(key)
    assert Manifest.open(data, [key.verifier], ORIGIN) == m
    with pytest.raises(ManifestMismatchError) as info:
        Manifest.open(data, [key.verifier], "other.example/log")
    assert (info.value.field, info.value.actual) == ("origin", ORIGIN)
    with pytest.raises(UnverifiedNoteError):
        Manifest.open(data, [signer(seed=2).verifier], ORIGIN)
    forged = data.replace(b"11300\n", b"11299\n", 1)
    with pytest.raises(InvalidSignatureError):
        Manifest.open(forged, [key.verifier], ORIGIN)


def test_a_manifest_and_a_checkpoint_cannot_stand_for_each_other() -> None:
    key = signer()
    checkpoint = Checkpoint(ORIGIN, 11300, ROOT)
    manifest = Manifest(ORIGIN, 11300, ROOT, RUNS)
    with pytest.raises(FormatError):
        open_checkpoint(manifest.sign(key), [key.verifier], ORIGIN)
    with pytest.raises(MalformedManifestError):
        Manifest.open(sign_checkpoint(checkpoint, key), [key.verifier], ORIGIN)


def test_check_checkpoint() -> None:
    manifest = Manifest(ORIGIN, 11300, ROOT, RUNS)
    manifest.check_checkpoint(Checkpoint(ORIGIN, 11300, ROOT))
    for field, checkpoint in (
        ("size", Checkpoint(ORIGIN, 11301, ROOT)),
        ("root", Checkpoint(ORIGIN, 11300, h(9))),
        ("origin", Checkpoint("x", 11300, ROOT)),
    ):
        with pytest.raises(ManifestMismatchError) as info:
            manifest.check_checkpoint(checkpoint)
        assert info.value.field == field
        assert isinstance(info.value, VerificationError)


def test_run_for() -> None:
    manifest = Manifest(ORIGIN, 11300, ROOT, RUNS)
    assert manifest.run_for(0) == RUNS[0]
    assert manifest.run_for(10239) == RUNS[0]
    assert manifest.run_for(10240) == RUNS[1]
    assert manifest.run_for(11299) == RUNS[2]
    with pytest.raises(ValueError, match="not below"):
        manifest.run_for(11300)
