"""Rekor v1 signed entry timestamps: moved to :mod:`stelae.tiles.timestamp`.

Making a SET needs the log's key, which only the sequencer holds, but checking one needs only
the public key, so the format and the check live in the pure core where readers (``stelae
verify``, ``stelae fsck``) can use them without importing the sequencer. This module keeps the
old import path working.
"""

from __future__ import annotations

from stelae.tiles.timestamp import set_payload, v1_log_id, verify_set

__all__ = ["set_payload", "v1_log_id", "verify_set"]
