"""`stelae serve --witness-policy` against three real `stelae witness` processes, 2-of-3: every
published checkpoint carries the quorum; with two witnesses gone, fail-closed publishes nothing
(writers get 202, never a 201 without the quorum), fail-open publishes and says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from stelae.client import signing
from stelae.sequencer.logdir import init_log
from stelae.tiles.note import Note
from stelae.tiles.policy import Policy
from stelae.witness.identity import create_key
from tests.support.api import ORIGIN, start_serve
from tests.support.witness import WitnessProcess, log_list, start_witness


def _v1(n: int) -> dict[str, object]:
    key = signing.generate_key("ecdsa-p256")
    artifact = b"witnessed artifact %d" % n
    sig = signing.sign_artifact(key, artifact)
    return signing.build_v1_hashedrekord(sig, signing.public_key_pem(key), artifact=artifact)


def _setup(tmp_path: Path) -> tuple[Path, list[WitnessProcess], Path]:
    data = tmp_path / "data"
    local, _ = init_log(data, ORIGIN)
    (tmp_path / "logs.txt").write_bytes(log_list((local.config.vkey, 86400)))
    witnesses = []
    for i in range(3):
        create_key(tmp_path / f"w{i}", f"witness.test/w{i}", "ed25519")
        witnesses.append(start_witness(tmp_path / f"w{i}", tmp_path / "logs.txt"))
    lines = [f"log {local.config.vkey}"]
    lines += [f"witness W{i} {w.vkey} {w.url}" for i, w in enumerate(witnesses)]
    lines += ["group Q 2 W0 W1 W2", "quorum Q", ""]
    policy = tmp_path / "policy.txt"
    policy.write_text("\n".join(lines))
    Policy.parse(policy.read_bytes())  # the file the log is given is a valid policy
    return data, witnesses, policy


def _cosigned(note: bytes) -> int:
    """How many signature lines besides the log's own the checkpoint carries (the log signs
    twice: its C2SP line and the Rekor v1 key-hint line, both under its origin)."""
    return sum(1 for sig in Note.parse(note).signatures if sig.name != ORIGIN)


def _cosignature_times(note: bytes) -> list[int]:
    """The timestamps of the witnesses' cosignatures (https://c2sp.org/tlog-cosignature)."""
    sigs = Note.parse(note).signatures
    return sorted(int.from_bytes(sig.signature[:8], "big") for sig in sigs if sig.name != ORIGIN)


@pytest.mark.slow
@pytest.mark.parametrize("fail_open", [False, True], ids=["fail-closed", "fail-open"])
def test_checkpoints_carry_the_quorum_and_losing_it(tmp_path: Path, fail_open: bool) -> None:
    data, witnesses, policy = _setup(tmp_path)
    extra = ["--witness-fail-open"] if fail_open else []
    serve = start_serve(
        data,
        "127.0.0.1:0",
        "--witness-policy",
        str(policy),
        "--witness-timeout",
        "2",
        "--wait",
        "4",
        *extra,
    )
    try:
        log = serve.log
        first = log.post("/api/v1/log/entries", _v1(0))
        assert first.status == 201, first.body
        note = (data / "log" / "checkpoint").read_bytes()
        assert _cosigned(note) >= 2, "published with the quorum's cosignatures"
        for w in witnesses[1:]:
            w.stop()
        second = log.post("/api/v1/log/entries", _v1(1))
        if fail_open:
            assert second.status == 201, second.body
            assert log.size() == 2
        else:
            assert second.status in (202, 503), second.body  # never a 201 without the quorum
            assert log.size() == 1, "nothing new was published"
            assert (data / "log" / "checkpoint").read_bytes() == note
    finally:
        serve.terminate()
        for w in witnesses:
            w.stop()


def test_refresh_republishes_the_same_tree_freshly_cosigned(tmp_path: Path) -> None:
    from stelae.sequencer.witnessing import WitnessCollector
    from stelae.tiles.checkpoint import Checkpoint

    data, witnesses, policy = _setup(tmp_path)
    try:
        local, _ = init_log(data, ORIGIN)
        collector = WitnessCollector(Policy.parse(policy.read_bytes()), timeout=10)
        seq = local.sequencer(collector)
        seq.published()
        key = signing.generate_key("ecdsa-p256")
        body = signing.build_v1_hashedrekord(
            signing.sign_artifact(key, b"x"), signing.public_key_pem(key), artifact=b"x"
        )
        from stelae.kinds import from_v1_proposed
        from stelae.sequencer.pending import PendingEntry

        e = from_v1_proposed(body)
        first = seq.integrate([PendingEntry(e.body, e.artifact_digests, e.key_fingerprints)])
        again = seq.refresh()
        # Cosigned again, not copied: every cosignature is at least as new as the first round's
        # (within the same second the witnesses' timestamps, and so the bytes, may be equal).
        before, after = _cosignature_times(first.checkpoint), _cosignature_times(again.checkpoint)
        assert before and min(after) >= min(before)
        a = Checkpoint.parse(Note.parse(first.checkpoint).text)
        b = Checkpoint.parse(Note.parse(again.checkpoint).text)
        assert (a.size, a.root_hash) == (b.size, b.root_hash) == (1, first.root)
        assert _cosigned(again.checkpoint) >= 2
        assert (data / "log" / "checkpoint").read_bytes() == again.checkpoint
        seq.close()
    finally:
        for w in witnesses:
            w.stop()
