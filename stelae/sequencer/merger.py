"""Background merges of lookup-index runs (docs/index.md, "Merging").

Every batch adds a run; the merger combines adjacent runs the merge policy picks into one run over
their union. A run is a pure function of the range of entries it covers, so a merge is
idempotent: writing its shards again writes the same bytes, and one cut short by a crash is simply
done again. The merger never touches the checkpoint or a manifest: it only makes merged runs
*available*, and the sequencer lists one in the next manifest once every shard of it is durable
(:meth:`Merger.substitute`). Integration never waits for a merge.

Two modes: a background thread (``stelae serve``), or :meth:`Merger.run_pending` called by the
owner between batches (the AWS sequencer Lambda, tests and benchmarks that want determinism).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

from stelae.sequencer.store import ObjectStore
from stelae.tiles.indexrun import Record, RunRef, build_run, merge_records, read_run
from stelae.tiles.mergepolicy import MergePolicy
from stelae.tiles.paths import ObjectClass

log = logging.getLogger("stelae.merger")

CACHE_RECORDS = 200_000
"""Records of recent runs kept in memory so that merging small runs reads nothing back (about
300 bytes each with their cached encoding: ~60 MB); bigger runs are read back from the store,
shard by shard, verified."""


class Merger:
    def __init__(
        self,
        store: ObjectStore,
        policy: MergePolicy,
        *,
        background: bool = True,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.store = store
        self.policy = policy
        self.background = background
        self.on_error = on_error
        self._lock = threading.Condition()
        self._runs: tuple[RunRef, ...] = ()  # the newest run list the sequencer published
        self._done: dict[tuple[int, int], RunRef] = {}  # merged runs available, by range
        self._records: OrderedDict[tuple[int, int], list[Record]] = OrderedDict()
        self._cached = 0
        self._stopping = False
        self.merges = 0
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._loop, name="stelae-merger", daemon=True)
            self._thread.start()

    # -- called by the sequencer ------------------------------------------------------------

    def remember(self, ref: RunRef, records: list[Record]) -> None:
        """Keep a run's records (one the sequencer just built) for the merges that will read it."""
        with self._lock:
            self._keep(ref, records)

    def offer(self, runs: Sequence[RunRef]) -> None:
        """The run list of the newest manifest; merges are planned from it."""
        with self._lock:
            self._runs = tuple(runs)
            live = {(r.a, r.b) for r in runs}
            # Forget merged runs that can no longer replace anything: those inside a listed run.
            self._done = {
                k: v
                for k, v in self._done.items()
                if not any(r.a <= k[0] and k[1] <= r.b and (r.a, r.b) != k for r in runs)
            }
            for key in [k for k in self._records if k not in live and k not in self._done]:
                self._drop(key)
            self._lock.notify_all()

    def substitute(self, runs: Sequence[RunRef]) -> tuple[RunRef, ...]:
        """``runs`` with every contiguous stretch that a finished merge covers replaced by it."""
        with self._lock:
            done = dict(self._done)
        out = list(runs)
        changed = True
        while changed:
            changed = False
            for i in range(len(out)):
                for j in range(len(out) - 1, i, -1):
                    merged = done.get((out[i].a, out[j].b))
                    if merged is not None:
                        out[i : j + 1] = [merged]
                        changed = True
                        break
                if changed:
                    break
        return tuple(out)

    def run_pending(self) -> int:
        """Do every merge the policy wants for the current list, now; returns how many."""
        n = 0
        while self._merge_once():
            n += 1
        return n

    def close(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join()

    # -- the work ------------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._stopping and self._plan() is None:
                    self._lock.wait()
                if self._stopping:
                    return
            try:
                self._merge_once()
            except Exception as err:  # a failed merge is retried on the next offer
                log.error("index merge failed: %s", err)
                if self.on_error is not None:
                    self.on_error(err)
                with self._lock:  # wait for the next batch rather than spinning on the error
                    if not self._stopping:
                        self._lock.wait()

    def _plan(self) -> tuple[RunRef, RunRef] | None:
        runs = list(self.substitute(self._runs)) if self._runs else []
        i = self.policy.plan([(r.a, r.b) for r in runs])
        if i is None:
            return None
        return runs[i], runs[i + 1]

    def _merge_once(self) -> bool:
        with self._lock:
            plan = self._plan()
        if plan is None:
            return False
        older, newer = plan
        records = merge_records(self._read(older), self._read(newer))
        built = build_run(older.a, newer.b, records)
        for path, data in built.objects():
            self.store.put_immutable(path, data, ObjectClass.INDEX_RUN)
        # Durable before any manifest (and so any batch record) can name it.
        self.store.flush()
        with self._lock:
            self._done[(older.a, newer.b)] = built.ref
            self._keep(built.ref, records)
            self.merges += 1
        log.debug("merged index runs [%d, %d) and [%d, %d)", older.a, older.b, newer.a, newer.b)
        return True

    def _read(self, ref: RunRef) -> list[Record]:
        with self._lock:
            cached = self._records.get((ref.a, ref.b))
        if cached is not None:
            return cached
        return read_run(self.store.get, ref)

    def _keep(self, ref: RunRef, records: list[Record]) -> None:
        key = (ref.a, ref.b)
        if key in self._records or len(records) > CACHE_RECORDS:
            return
        self._records[key] = records
        self._cached += len(records)
        while self._cached > CACHE_RECORDS and self._records:
            self._drop(next(iter(self._records)))

    def _drop(self, key: tuple[int, int]) -> None:
        records = self._records.pop(key, None)
        if records is not None:
            self._cached -= len(records)
