"""CachingFetcher shared by many threads, as the write service shares one across requests."""

from __future__ import annotations

import threading
import time

from stelae.tiles.errors import NotFoundError
from stelae.tiles.fetch import CachingFetcher
from tests.support.fetch import CountingFetcher


class DictFetcher:
    """A fetcher over a dict: fast, so the threads spend their time inside the cache."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def fetch(self, path: str) -> bytes:
        try:
            return self.objects[path]
        except KeyError as err:
            raise NotFoundError(f"{path} not found") from err


class YieldingPath(str):
    """A path whose hashing lets other threads run, as a preemption at the worst moment would.

    Every lookup of it in the cache's dict releases the GIL, so a thread between its ``get`` and
    its ``move_to_end`` regularly lets another thread evict the very key it just found. Without
    this the interleaving still happens under load, but only a few times in a million calls.
    """

    __slots__ = ()

    def __hash__(self) -> int:
        time.sleep(0)
        return str.__hash__(self)


def test_many_threads_hammering_a_small_cache_get_the_right_bytes() -> None:
    paths = [YieldingPath(f"tile/0/{i:03d}") for i in range(8)]
    objects = {str(p): str(p).encode() * 4 for p in paths}
    cache = CachingFetcher(DictFetcher(objects), max_items=2)
    errors: list[BaseException] = []
    wrong: list[str] = []
    start = threading.Barrier(16)

    def hammer(seed: int) -> None:
        start.wait()
        try:
            for i in range(300):
                path = paths[(seed + i * (seed % 3 + 1)) % len(paths)]
                if cache.fetch(path) != objects[path]:
                    wrong.append(path)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert wrong == []


def test_least_recently_used_is_evicted_first() -> None:
    objects = {p: p.encode() for p in ("tile/0/000", "tile/0/001", "tile/0/002")}
    counting = CountingFetcher(DictFetcher(objects))
    cache = CachingFetcher(counting, max_items=2)
    for path in ("tile/0/000", "tile/0/001", "tile/0/000", "tile/0/002", "tile/0/000"):
        cache.fetch(path)
    # 000 was used again before 002 arrived, so 001 went and 000 stayed.
    assert counting.paths == ["tile/0/000", "tile/0/001", "tile/0/002"]
    cache.fetch("tile/0/001")
    assert counting.paths[-1] == "tile/0/001"


def test_the_checkpoint_is_never_cached() -> None:
    objects = {"checkpoint": b"one"}
    cache = CachingFetcher(DictFetcher(objects))
    assert cache.fetch("checkpoint") == b"one"
    objects["checkpoint"] = b"two"
    assert cache.fetch("checkpoint") == b"two"
