"""fsck with several pinned log keys checks what every reader with those keys checks: each key
signed the checkpoint and the history objects (https://c2sp.org/tlog-checkpoint; a note whose
ML-DSA-44 line was stripped is signed by fewer keys than the reader trusts)."""

from __future__ import annotations

from stelae.kinds import lookup_keys
from stelae.sequencer.engine import Sequencer, SequencerConfig
from stelae.sequencer.pending import PendingEntry
from stelae.sequencer.reader import StoreFetcher
from stelae.tiles.fsck import fsck
from stelae.tiles.mldsa import MLDSA44CosignatureSigner
from stelae.tiles.note import Note
from stelae.tiles.notekeys import Ed25519NoteSigner
from tests.support.memory import MemoryStore

ORIGIN = "pq.example.test/fsck"
ED = Ed25519NoteSigner(ORIGIN, bytes([11]) * 32)
PQ = MLDSA44CosignatureSigner(ORIGIN, bytes([12]) * 32)


def _log() -> MemoryStore:
    store = MemoryStore()
    config = SequencerConfig(
        ORIGIN, parallel_writes=1, background_merges=False, extra_log_signers=(PQ,)
    )
    seq = Sequencer(store, ED, config)
    try:
        seq.integrate([PendingEntry(b'{"n":%d}' % i) for i in range(3)])
    finally:
        seq.close()
    return store


def _strip_mldsa(store: MemoryStore, path: str) -> None:
    note = Note.parse(store.get(path))
    kept = tuple(s for s in note.signatures if s.key_id != PQ.key_id)
    store.damage(path, Note(note.text, kept).to_bytes())


def _problems(store: MemoryStore) -> list[str]:
    report = fsck(
        StoreFetcher(store).fetch,
        [ED.verifier, PQ.verifier],
        ORIGIN,
        lookup_keys,
        require_all=True,
    )
    return [p.path for p in report.problems]


def test_a_whole_log_signed_by_both_keys_is_ok() -> None:
    assert _problems(_log()) == []


def test_a_checkpoint_without_a_pinned_keys_line_is_a_problem() -> None:
    store = _log()
    _strip_mldsa(store, "checkpoint")
    assert _problems(store) == ["checkpoint"]


def test_a_history_object_without_a_pinned_keys_line_is_a_problem() -> None:
    store = _log()
    _strip_mldsa(store, "checkpoints/3")
    assert _problems(store) == ["checkpoints/3"]
