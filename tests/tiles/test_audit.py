"""The monitor's saved state (:class:`stelae.tiles.audit.SavedAudit`): JSON round trip, and what a
damaged file does."""

from __future__ import annotations

import hashlib

import pytest

from stelae.tiles.audit import AuditState, SavedAudit, audit_bundle
from stelae.tiles.errors import FormatError
from stelae.tiles.tile import EntryBundle


def _audited(n: int) -> AuditState:
    bodies = [hashlib.sha256(str(i).encode()).digest() for i in range(n)]
    return audit_bundle(AuditState(), 0, EntryBundle(tuple(bodies))).state


def test_saved_audit_round_trips_through_json() -> None:
    saved = SavedAudit(_audited(5), b"origin\n5\nroot\n\n- sig\n", {(0, 5): "ab" * 32})
    again = SavedAudit.from_json(saved.to_json())
    assert again.audit.size == 5 and again.audit.root() == saved.audit.root()
    assert again.checkpoint == saved.checkpoint
    assert dict(again.index) == {(0, 5): "ab" * 32}
    assert again.to_json() == saved.to_json()


def test_a_fresh_state_has_no_checkpoint_and_no_index() -> None:
    again = SavedAudit.from_json(SavedAudit().to_json())
    assert (again.audit.size, again.checkpoint, dict(again.index)) == (0, None, {})


def test_malformed_index_runs_are_left_out_to_be_checked_again() -> None:
    obj = SavedAudit(_audited(3)).to_json()
    obj["index"] = [[0, 3, "cd" * 32], ["0", 3, "x"], [0, 3], "junk"]
    assert dict(SavedAudit.from_json(obj).index) == {(0, 3): "cd" * 32}


def test_a_damaged_audit_state_is_a_format_error() -> None:
    obj = SavedAudit(_audited(3)).to_json()
    obj["audit"]["size"] = 256  # one level-0 tile no longer describes the tree
    with pytest.raises(FormatError, match="right-edge tiles"):
        SavedAudit.from_json(obj)
