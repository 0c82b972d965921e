"""Virtual time for the AWS cost model: the real write handlers wait on a simulated clock.

On one shared moto process, a sequencer that waits for nobody integrates several times slower
than alone, and every writer polling meanwhile pays for the emulator's slowness in GETs and
seconds. Here the writers' ``sleep`` and ``clock`` (the seams :class:`~stelae.sequencer.sqs.
SqsSubmitter` takes) are a discrete-event clock instead: a sleeping writer is parked, and the
clock moves to the next wake-up only when every writer is parked or done. So what a writer reads
at virtual time *t* is exactly what was published by *t* — the sequencer's publication is placed
at the virtual time it would happen (the batch's close plus the sequencer's integration time
measured alone) — however long the emulator really takes, and every GET is still issued by the
real handler against the emulator and counted. Writers woken at different virtual times run one
after another in real time, so the real time each spends working (not sleeping) is measured
without the others' contention.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any


class VirtualTime:
    """A discrete-event clock shared by the threads it spawns.

    Invariant: ``running`` counts spawned threads that are neither parked in :meth:`sleep` nor
    finished; the clock advances only when it is 0, in :meth:`run_until`, which is called by
    one driver thread (not a spawned one).
    """

    def __init__(self) -> None:
        self._now = 0.0
        # Only the driver waits on the condition; each sleeper waits on its own event, so a
        # wake-up signals one thread, not every parked one (a shared notify_all woke all the
        # parked writers of a wave at each step: hundreds in a wave of 500 or 1,000).
        self._cond = threading.Condition()
        self._running = 0
        self._sleepers: dict[threading.Event, float] = {}
        self._blocked = threading.local()

    def now(self) -> float:
        """Virtual seconds; constant while the calling thread runs."""
        return self._now

    def sleep(self, seconds: float) -> None:
        """Park the calling (spawned) thread until the clock reaches now + ``seconds``."""
        t0 = time.perf_counter()
        token = threading.Event()
        with self._cond:
            self._sleepers[token] = self._now + max(0.0, seconds)
            self._running -= 1
            self._cond.notify_all()
        token.wait()  # set by run_until, after it counted this thread as running again
        self._blocked.seconds = self.blocked_seconds() + time.perf_counter() - t0

    def blocked_seconds(self) -> float:
        """Real seconds the calling thread has spent parked."""
        return float(getattr(self._blocked, "seconds", 0.0))

    def spawn(self, target: Callable[..., Any], *args: Any, at: float) -> threading.Thread:
        """Start ``target(*args)`` in a thread that first sleeps until virtual time ``at``."""

        def body() -> None:
            try:
                self.sleep(at - self._now)
                target(*args)
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()

        with self._cond:
            self._running += 1
        thread = threading.Thread(target=body, daemon=True)
        thread.start()
        return thread

    def run_until(self, until: float = math.inf, timeout: float = 600) -> None:
        """Wake sleepers in virtual-time order up to ``until``, then set the clock to it (with
        ``until`` infinite: until no thread is running or parked)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if not self._cond.wait_for(
                    lambda: self._running == 0, max(0.0, deadline - time.monotonic())
                ):
                    raise RuntimeError(f"{self._running} thread(s) did not park in {timeout} s")
                nxt = min(self._sleepers.values(), default=math.inf)
                if nxt > until or nxt == math.inf:
                    if until != math.inf:
                        self._now = max(self._now, until)
                    return
                self._now = max(self._now, nxt)
                woken = [k for k, w in self._sleepers.items() if w <= self._now]
                for k in woken:
                    del self._sleepers[k]
                self._running += len(woken)
                for k in woken:
                    k.set()
