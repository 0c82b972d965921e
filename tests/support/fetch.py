"""Fetchers that only tests and benchmarks need."""

from __future__ import annotations

from stelae.tiles.fetch import Fetcher


class CountingFetcher:
    """Counts fetches by path (for benchmarks and tests that bound how much a proof reads)."""

    def __init__(self, inner: Fetcher) -> None:
        self.inner = inner
        self.paths: list[str] = []

    def fetch(self, path: str) -> bytes:
        self.paths.append(path)
        return self.inner.fetch(path)
