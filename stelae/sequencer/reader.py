"""Reading a log straight from its object store, with the tiles client."""

from __future__ import annotations

from stelae.sequencer.store import ObjectStore
from stelae.tiles.fetch import check_relative_path
from stelae.tiles.paths import STATE_DIR


class StoreFetcher:
    """A :class:`~stelae.tiles.fetch.Fetcher` over an object store.

    The store's ``ObjectNotFound`` already is a ``NotFoundError``, which is the fetcher contract.
    Private ``.state/`` objects are refused: a reader sees only what the CDN would serve.
    """

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def fetch(self, path: str) -> bytes:
        check_relative_path(path)
        if path.startswith(f"{STATE_DIR}/"):
            raise PermissionError(f"{path} is private sequencer state")
        return self.store.get(path)
