"""Looking at what a store holds, for assertions: the store itself has no HEAD request.

The sequencer never asks whether an object exists (it reads it, or writes it conditionally), so
:class:`~stelae.sequencer.store.ObjectStore` has no such method; tests ask with a GET.
"""

from __future__ import annotations

from stelae.sequencer.store import ObjectNotFound, ObjectStore


def holds(store: ObjectStore, key: str) -> bool:
    """Whether ``key`` holds an object in ``store`` (one GET, counted like any other)."""
    try:
        store.get(key)
    except ObjectNotFound:
        return False
    return True
