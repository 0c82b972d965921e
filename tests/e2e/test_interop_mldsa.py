"""Go's ``golang.org/x/mod/sumdb/note`` (through tests/e2e/interop/tlogcheck) on a stelae log
whose checkpoints also carry the log's ML-DSA-44 signature (type 0x06, which Go's note package
does not know). https://c2sp.org/signed-note says verifiers ignore signatures from unknown keys:
Go verifies the current checkpoint and the history objects with the Ed25519 vkey alone, as it
did before the extra line existed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stelae.sequencer.logdir import init_log
from stelae.sequencer.pending import PendingEntry
from stelae.tiles.checkpoint import open_checkpoint
from stelae.tiles.note import Note, NoteSignature
from stelae.tiles.notekeys import parse_vkey
from tests.e2e.test_interop import StaticServer, _stelae_serve, go_verify, tlogcheck

__all__ = ["tlogcheck"]  # the session fixture, shared with test_interop

ORIGIN = "pq.interop.example/stelae"


@dataclass(frozen=True)
class PQLog:
    data: Path
    url: str  # `stelae serve` on 127.0.0.1
    vkey: str
    mldsa_vkey: str


@pytest.fixture(scope="module")
def pq_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PQLog]:
    """A 300-entry log (a full tile and a partial one) with both log keys, served."""
    data = tmp_path_factory.mktemp("pq-log") / "data"
    log, _ = init_log(data, ORIGIN, mldsa=True)
    assert log.config.mldsa_vkey is not None
    seq = log.sequencer()
    try:
        seq.published()
        for a, b in ((0, 1), (1, 256), (256, 300)):
            seq.integrate([PendingEntry(f'{{"pq":{i}}}'.encode()) for i in range(a, b)])
    finally:
        seq.close()
    with _stelae_serve(data) as url:
        yield PQLog(data, url, log.config.vkey, log.config.mldsa_vkey)


def test_go_accepts_checkpoints_that_carry_an_ml_dsa_line(tlogcheck: Path, pq_log: PQLog) -> None:
    olds = "checkpoints/0,checkpoints/1,checkpoints/256"
    result = go_verify(tlogcheck, pq_log.url, pq_log.vkey, "-old", olds).json()
    assert (result["origin"], result["signed_by"], result["size"]) == (ORIGIN, ORIGIN, 300)
    assert result["entries_checked"] == 300
    # What Go accepted carries the ML-DSA line, and that line verifies with the ML-DSA key.
    mldsa = parse_vkey(pq_log.mldsa_vkey)
    for name in ("checkpoint", "checkpoints/0", "checkpoints/1", "checkpoints/256"):
        note = (pq_log.data / "log" / name).read_bytes()
        assert Note.parse(note).signatures[-1].key_id == mldsa.key_id, name
        open_checkpoint(note, [mldsa], ORIGIN)


def test_go_still_refuses_a_note_whose_ed25519_line_is_broken(
    tlogcheck: Path, pq_log: PQLog
) -> None:
    """The ML-DSA line does not stand in for the Ed25519 one in Go: with that line damaged the
    checkpoint is refused, though a valid (to Go, unknown) signature remains."""
    note = Note.parse((pq_log.data / "log" / "checkpoint").read_bytes())
    ed = parse_vkey(pq_log.vkey)
    sigs = tuple(
        NoteSignature(s.name, s.key_id, bytes(64)) if s.key_id == ed.key_id else s
        for s in note.signatures
    )
    server = StaticServer(pq_log.data / "log", {"checkpoint": Note(note.text, sigs).to_bytes()})
    with server.running():
        refused = go_verify(tlogcheck, server.url, pq_log.vkey, "-entries=false")
    assert refused.returncode == 1, refused.stdout
    assert f"invalid signature for key {ORIGIN}+{ed.key_id:08x}" in refused.stderr
