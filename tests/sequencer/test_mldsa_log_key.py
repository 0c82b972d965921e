"""The optional ML-DSA-44 log key: the sequencer signs every checkpoint with it beside Ed25519,
the local data directory keeps it (``signing-mldsa.key``), and the AWS sequencer loads it from
its own SSM SecureString.

An ML-DSA-44 signature is randomized and timestamped, so unlike Ed25519 a repeated attempt makes
other bytes: the crash tests check that recovery publishes the note already stored rather than
rewriting an immutable object (the in-memory store records any such attempt as a violation).
"""

from __future__ import annotations

import json
import stat
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from stelae.errors import StelaeError
from stelae.sequencer.aws import AwsConfig
from stelae.sequencer.engine import Sequencer, SequencerConfig
from stelae.sequencer.logdir import CONFIG_FILE, MLDSA_KEY_FILE, init_log, open_log
from stelae.sequencer.pending import PendingEntry
from stelae.sequencer.reader import StoreFetcher
from stelae.sequencer.s3 import S3Store
from stelae.sequencer.store import ObjectStore
from stelae.tiles.checkpoint import SignedCheckpoint, open_checkpoint
from stelae.tiles.client import LogClient
from stelae.tiles.errors import FormatError
from stelae.tiles.mldsa import MLDSA44CosignatureSigner
from stelae.tiles.note import Note, sign_note
from stelae.tiles.notekeys import Ed25519CosignatureSigner, Ed25519NoteSigner
from tests.conftest import MotoEndpoint
from tests.support.memory import MemoryStore, WriteEvent

ORIGIN = "pq.example.test/log"
ED = Ed25519NoteSigner.generate(ORIGIN)
PQ = MLDSA44CosignatureSigner.generate(ORIGIN)
CHECKPOINT = "checkpoint"  # the published layout (docs/layout.md), spelled as readers see it


def history_path(size: int) -> str:
    return f"checkpoints/{size}"


class Crash(Exception):  # noqa: N818 - a simulated process death, not an error
    pass


def entries(start: int, end: int) -> list[PendingEntry]:
    return [PendingEntry(f'{{"pq":{i}}}'.encode()) for i in range(start, end)]


def sequencer(store: ObjectStore) -> Sequencer:
    config = SequencerConfig(
        ORIGIN, parallel_writes=1, background_merges=False, extra_log_signers=(PQ,)
    )
    return Sequencer(store, ED, config)


def both_keys(note: bytes) -> SignedCheckpoint:
    """``note`` verified with each log key alone and with both required."""
    for verifiers in ([ED.verifier], [PQ.verifier]):
        open_checkpoint(note, verifiers, ORIGIN)
    return open_checkpoint(note, [ED.verifier, PQ.verifier], ORIGIN, require_all=True)


def test_every_checkpoint_history_object_and_receipt_carries_both_signatures() -> None:
    store = MemoryStore()
    seq = sequencer(store)
    seq.published()
    sizes = []
    for a, b in ((0, 3), (3, 300), (300, 301)):
        result = seq.integrate(entries(a, b))
        cp = both_keys(result.checkpoint)
        sizes.append(cp.checkpoint.size)
        assert all(
            both_keys(r.checkpoint).checkpoint == cp.checkpoint for r in result.receipts.values()
        )
        lines = [s.key_id for s in Note.parse(result.checkpoint).signatures]
        assert lines[0] == ED.key_id and lines[-1] == PQ.key_id  # Ed25519 first, as before
    assert sizes == [3, 300, 301]
    assert store.get(CHECKPOINT) == store.get(history_path(301))
    for size in (0, *sizes):
        assert both_keys(store.get(history_path(size))).checkpoint.size == size
    # A reader that pins both keys reads the whole log.
    client = LogClient(StoreFetcher(store), [ED.verifier, PQ.verifier], ORIGIN, require_all=True)
    cp = client.checkpoint()
    assert client.entry(300, cp).data == b'{"pq":300}'
    assert not store.violations
    seq.close()


def test_a_crash_after_the_history_object_publishes_that_note_on_recovery() -> None:
    """The history object of size 5 is written, then the process dies before the checkpoint
    is swapped. A new sequencer finishes the claimed batch: it must publish the stored note
    (a fresh ML-DSA signature would be other bytes for the same immutable key)."""
    armed = [True]

    def die(ev: WriteEvent) -> None:
        if armed[0] and ev.key == history_path(5):
            armed[0] = False
            raise Crash(ev.key)

    store = MemoryStore(after_write=die)
    first = sequencer(store)
    first.published()
    with pytest.raises(Crash):
        first.integrate(entries(0, 5))
    stored = store.get(history_path(5))
    second = sequencer(store)
    result = second.integrate(entries(0, 5))  # the queue redelivers the unacknowledged batch
    assert result.size == 5 and result.checkpoint == stored == store.get(CHECKPOINT)
    assert {e.leaf_hash for e in entries(0, 5)} == set(result.receipts)
    both_keys(stored)
    assert not store.violations, store.violations
    first.close()
    second.close()


def test_an_empty_log_restarted_after_its_first_history_object_keeps_that_note() -> None:
    armed = [True]

    def die(ev: WriteEvent) -> None:
        if armed[0] and ev.key == history_path(0):
            armed[0] = False
            raise Crash(ev.key)

    store = MemoryStore(after_write=die)
    with pytest.raises(Crash):
        sequencer(store).published()
    result = sequencer(store).published()
    assert result.checkpoint == store.get(history_path(0)) == store.get(CHECKPOINT)
    both_keys(result.checkpoint)
    assert not store.violations, store.violations


class OneWitness:
    """A :class:`~stelae.sequencer.engine.Cosigner` that cosigns at once with one Ed25519
    witness key (type 0x04); what the network part of a real collector adds is tested in
    tests/e2e/test_witnessing.py."""

    def __init__(self) -> None:
        self.signer = Ed25519CosignatureSigner("w.example/one", bytes([3]) * 32)
        self.sizes: list[int] = []

    def cosign(
        self, note: bytes, size: int, consistency_proof: Callable[[int, int], list[bytes]]
    ) -> bytes:
        self.sizes.append(size)
        parsed = Note.parse(note)
        return sign_note(parsed.text, [self.signer], parsed).to_bytes()


def test_witnesses_cosign_after_both_log_lines_and_a_refresh_re_signs_with_both() -> None:
    store = MemoryStore()
    witness = OneWitness()
    config = SequencerConfig(
        ORIGIN,
        parallel_writes=1,
        background_merges=False,
        cosigner=witness,
        extra_log_signers=(PQ,),
    )
    seq = Sequencer(store, ED, config)
    try:
        note = seq.integrate(entries(0, 4)).checkpoint
        keys = [s.key_id for s in Note.parse(note).signatures]
        assert keys[0] == ED.key_id and keys[-2:] == [PQ.key_id, witness.signer.key_id]
        cp = open_checkpoint(note, [PQ.verifier], ORIGIN, witnesses=[witness.signer.verifier])
        assert cp.note.cosignature_time(witness.signer.name) is not None
        assert store.get(history_path(4)) == note
        refreshed = seq.refresh().checkpoint
    finally:
        seq.close()
    assert refreshed != note and both_keys(refreshed).checkpoint == cp.checkpoint
    assert witness.sizes == [4, 4]
    assert store.get(history_path(4)) == note  # the history object is never rewritten
    assert not store.violations


def test_a_log_key_named_after_another_origin_is_refused() -> None:
    other = MLDSA44CosignatureSigner.generate("other.example/log")
    with pytest.raises(StelaeError, match="not named after the origin"):
        Sequencer(MemoryStore(), ED, SequencerConfig(ORIGIN, extra_log_signers=(other,)))


# --- the local data directory ----------------------------------------------------------------


def test_init_with_mldsa_keeps_the_key_private_and_the_vkey_in_the_config(tmp_path: Path) -> None:
    data = tmp_path / "data"
    log, created = init_log(data, ORIGIN, mldsa=True)
    assert created and log.mldsa_signer is not None
    key_file = data / MLDSA_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert MLDSA44CosignatureSigner.from_skey(key_file.read_text().strip()).vkey == (
        log.config.mldsa_vkey
    )
    assert json.loads((data / CONFIG_FILE).read_text())["mldsa_vkey"] == log.mldsa_signer.vkey
    assert not any(p.name.endswith(".key") for p in (data / "log").rglob("*"))  # never served
    seq = log.sequencer()
    try:
        note = seq.integrate(entries(0, 2)).checkpoint
    finally:
        seq.close()
    assert open_checkpoint(note, [log.mldsa_signer.verifier], ORIGIN).checkpoint.size == 2


def test_a_log_without_the_key_keeps_its_config_and_can_be_given_one(tmp_path: Path) -> None:
    data = tmp_path / "data"
    log, _ = init_log(data, ORIGIN)
    assert log.mldsa_signer is None
    assert "mldsa_vkey" not in json.loads((data / CONFIG_FILE).read_text())
    seq = log.sequencer()
    before = seq.integrate(entries(0, 1)).checkpoint
    seq.close()
    assert len(Note.parse(before).signatures) == 2  # Ed25519 and its Rekor v1 line only
    again, created = init_log(data, ORIGIN, mldsa=True)
    assert not created and again.mldsa_signer is not None
    assert again.config.vkey == log.config.vkey  # the same log, one more key
    seq = open_log(data).sequencer()
    after = seq.integrate(entries(1, 2)).checkpoint
    seq.close()
    assert open_checkpoint(after, [again.mldsa_signer.verifier], ORIGIN).checkpoint.size == 2


def test_a_key_file_that_does_not_match_the_config_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    init_log(data, ORIGIN, mldsa=True)
    (data / MLDSA_KEY_FILE).write_text(MLDSA44CosignatureSigner.generate(ORIGIN).skey + "\n")
    with pytest.raises(StelaeError, match="does not match the mldsa_vkey"):
        open_log(data)
    (data / MLDSA_KEY_FILE).unlink()
    with pytest.raises(StelaeError, match="is missing"):
        open_log(data)


# --- AWS: the key from its own SSM SecureString (moto server mode) ----------------------------


def aws_env(moto: MotoEndpoint, name: str, **extra: str) -> dict[str, str]:
    return {
        "STELAE_BUCKET": name,
        "STELAE_QUEUE_URL": f"{moto.url}/123456789012/{name}",
        "STELAE_VKEY": ED.vkey,
        "STELAE_SIGNING_KEY_PARAM": f"/{name}/signing-key",
        **extra,
    }


def test_the_aws_sequencer_loads_both_keys_from_ssm_and_signs_with_both(
    moto_server: MotoEndpoint,
) -> None:
    name = f"pq{uuid.uuid4().hex[:10]}"
    ssm, s3 = moto_server.client("ssm"), moto_server.client("s3")
    s3.create_bucket(Bucket=name)  # type: ignore[attr-defined]
    for param, value in ((f"/{name}/signing-key", ED.skey), (f"/{name}/mldsa-key", PQ.skey)):
        ssm.put_parameter(Name=param, Value=value, Type="SecureString")  # type: ignore[attr-defined]
    cfg = AwsConfig.from_env(
        aws_env(
            moto_server,
            name,
            STELAE_MLDSA_VKEY=PQ.vkey,
            STELAE_MLDSA_SIGNING_KEY_PARAM=f"/{name}/mldsa-key",
        )
    )
    mldsa_signer = cfg.mldsa_signer(ssm)
    assert mldsa_signer is not None and mldsa_signer.vkey == PQ.vkey
    store = S3Store(name, endpoint_url=moto_server.url, region_name=moto_server.region)
    seq = cfg.sequencer(cfg.signer(ssm), store, None, mldsa_signer)
    try:
        result = seq.integrate(entries(0, 2))
    finally:
        seq.close()
    assert both_keys(result.checkpoint).checkpoint.size == 2
    assert store.get(CHECKPOINT) == result.checkpoint


def test_the_aws_ml_dsa_key_must_be_a_matching_secure_string(moto_server: MotoEndpoint) -> None:
    name = f"pq{uuid.uuid4().hex[:10]}"
    ssm = moto_server.client("ssm")
    other = MLDSA44CosignatureSigner.generate(ORIGIN)
    ssm.put_parameter(Name=f"/{name}/other", Value=other.skey, Type="SecureString")  # type: ignore[attr-defined]
    ssm.put_parameter(Name=f"/{name}/plain", Value=PQ.skey, Type="String")  # type: ignore[attr-defined]
    pq_env = {"STELAE_MLDSA_VKEY": PQ.vkey}
    wrong = AwsConfig.from_env(
        aws_env(moto_server, name, **pq_env, STELAE_MLDSA_SIGNING_KEY_PARAM=f"/{name}/other")
    )
    with pytest.raises(StelaeError, match="does not match STELAE_MLDSA_VKEY"):
        wrong.mldsa_signer(ssm)
    plain = AwsConfig.from_env(
        aws_env(moto_server, name, **pq_env, STELAE_MLDSA_SIGNING_KEY_PARAM=f"/{name}/plain")
    )
    with pytest.raises(StelaeError, match="not a SecureString"):
        plain.mldsa_signer(ssm)
    with pytest.raises(FormatError, match="both"):
        AwsConfig.from_env(aws_env(moto_server, name, **pq_env))
    with pytest.raises(FormatError, match="STELAE_MLDSA_VKEY"):
        AwsConfig.from_env(
            aws_env(
                moto_server,
                name,
                STELAE_MLDSA_VKEY=f"{ORIGIN}+XYZ",
                STELAE_MLDSA_SIGNING_KEY_PARAM=f"/{name}/other",
            )
        )
    assert AwsConfig.from_env(aws_env(moto_server, name)).mldsa_signer(ssm) is None


def test_the_aws_ml_dsa_vkey_may_be_its_short_name_and_key_id(moto_server: MotoEndpoint) -> None:
    """What the Terraform module sets: ``origin+keyid``, not the 1.8 KB key, which would take
    almost half of Lambda's 4 KB environment."""
    name = f"pq{uuid.uuid4().hex[:10]}"
    ssm = moto_server.client("ssm")
    ssm.put_parameter(Name=f"/{name}/pq", Value=PQ.skey, Type="SecureString")  # type: ignore[attr-defined]
    short = f"{ORIGIN}+{PQ.key_id:08x}"
    param = {"STELAE_MLDSA_SIGNING_KEY_PARAM": f"/{name}/pq"}
    cfg = AwsConfig.from_env(aws_env(moto_server, name, STELAE_MLDSA_VKEY=short, **param))
    loaded = cfg.mldsa_signer(ssm)
    assert loaded is not None and loaded.vkey == PQ.vkey
    other = f"{ORIGIN}+{(PQ.key_id + 1) % 2**32:08x}"
    wrong = AwsConfig.from_env(aws_env(moto_server, name, STELAE_MLDSA_VKEY=other, **param))
    with pytest.raises(StelaeError, match="does not match STELAE_MLDSA_VKEY"):
        wrong.mldsa_signer(ssm)
