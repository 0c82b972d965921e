"""``stelae serve --workers N``: N front-end processes sharing one socket, one sequencer.

Python runs one thread of bytecode at a time per process, and an upload costs about a
millisecond of it (HTTP parsing, schema checks, signature verification, the proof in the
answer), so one process tops out below the write API's target. The supervisor therefore binds
the listening socket, starts N workers (:mod:`stelae.server.worker`) that all accept from it, and
keeps the only :class:`~stelae.sequencer.engine.Sequencer` and its batcher to itself. Workers
send entries over a relay channel (:mod:`stelae.server.relay`) and answer from the receipts.

Stopping (:meth:`PreforkServer.close`): workers are told to stop first; they stop accepting and
answer what is in flight while the supervisor keeps sequencing; once they have all exited the
batcher drains and the sequencer closes. A worker that dies is started again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stelae.errors import StelaeError
from stelae.sequencer.logdir import LocalLog
from stelae.server.app import ServeOptions, open_batcher
from stelae.server.relay import Channel, Relay
from stelae.server.worker import WorkerSettings

log = logging.getLogger("stelae.server")

READY_TIMEOUT = 120.0  # seconds for a worker to import everything and start serving
STOP_TIMEOUT = 600.0  # seconds for a worker to answer what it has in flight


class WorkerStartError(StelaeError):
    """A worker process exited or hung before it started serving."""


@dataclass
class _Worker:
    slot: int
    proc: subprocess.Popen[bytes]
    relay: Relay
    ready: threading.Event


class PreforkServer:
    """Same surface as :class:`~stelae.server.app.LogServer`: ``start``, ``url``, ``close``."""

    def __init__(
        self,
        local: LocalLog,
        options: ServeOptions,
        workers: int,
        on_fatal: Callable[[BaseException], None] | None = None,
    ) -> None:
        if workers < 1:
            raise StelaeError(f"--workers must be at least 1, not {workers}")
        self.local = local
        self.options = options
        self.workers = workers
        self.batcher = open_batcher(
            local, on_fatal, options.cosigner, options.refresh_every, gc_grace=options.gc_grace
        )
        self.sequencer = self.batcher.sequencer
        self.listener = socket.create_server(
            (options.host, options.port),
            family=socket.AF_INET6 if ":" in options.host else socket.AF_INET,
            backlog=1024,
        )
        self._lock = threading.RLock()  # _watch spawns (which registers) while holding it
        self._stopping = False
        self._running: dict[int, _Worker] = {}
        self._watchers: list[threading.Thread] = []
        self.restarts = 0

    @property
    def url(self) -> str:
        host, port = self.listener.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> None:
        """Start the batcher and every worker; return once all of them are serving."""
        self.batcher.start()
        for slot in range(self.workers):
            self._spawn(slot)
        deadline = time.monotonic() + READY_TIMEOUT
        for slot in range(self.workers):
            with self._lock:
                worker = self._running[slot]
            while not worker.ready.wait(0.2):
                if worker.proc.poll() is not None:
                    raise WorkerStartError(
                        f"worker {slot} exited with status {worker.proc.returncode} "
                        "before serving; its error is above"
                    )
                if time.monotonic() > deadline:
                    raise WorkerStartError(f"worker {slot} did not start in {READY_TIMEOUT} s")

    def close(self) -> None:
        """Stop the workers (each answers what it has in flight), then drain the batcher."""
        with self._lock:
            self._stopping = True
            workers = list(self._running.values())
        for w in workers:
            with contextlib.suppress(ProcessLookupError):
                w.proc.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                log.error("worker %d did not stop in %s s; killing it", w.proc.pid, STOP_TIMEOUT)
                w.proc.kill()
                w.proc.wait()
            w.relay.join()
        for t in self._watchers:
            t.join()
        self.batcher.stop()
        self.listener.close()
        self.sequencer.close()

    # -- workers ---------------------------------------------------------------------------------

    def _spawn(self, slot: int) -> _Worker:
        ours, theirs = socket.socketpair()
        settings = WorkerSettings(
            str(self.local.data),
            self.listener.fileno(),
            theirs.fileno(),
            self.options.service.wait_seconds,
            self.options.service.strict_duplicates,
        )
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "stelae.server.worker", settings.to_json()],
                pass_fds=(self.listener.fileno(), theirs.fileno()),
                stdin=subprocess.DEVNULL,
                env=_worker_env(),
                # Ctrl-C in a terminal reaches the whole process group; the supervisor decides
                # the order of shutdown, so workers get their own group.
                start_new_session=True,
            )
        finally:
            theirs.close()
        ready = threading.Event()
        relay = Relay(Channel(ours), self.batcher, lambda _pid: ready.set())
        relay.start()
        worker = _Worker(slot, proc, relay, ready)
        with self._lock:
            self._running[slot] = worker
        watcher = threading.Thread(
            target=self._watch, args=(worker,), name=f"stelae-worker-{slot}", daemon=True
        )
        self._watchers.append(watcher)
        watcher.start()
        return worker

    def _watch(self, worker: _Worker) -> None:
        status = worker.proc.wait()
        worker.relay.join()
        with self._lock:
            # Decided and spawned under the lock: close() either sees the stop here first, or
            # takes its list of workers after the replacement is in it (and stops it too).
            if self._stopping:
                return
            log.error(
                "worker %d (slot %d) exited with status %d; starting another",
                worker.proc.pid,
                worker.slot,
                status,
            )
            self.restarts += 1
            replacement = self._spawn(worker.slot)
        if replacement.ready.wait(READY_TIMEOUT):
            log.warning("worker slot %d is served by pid %d", worker.slot, replacement.proc.pid)


def _worker_env() -> dict[str, str]:
    """The supervisor's environment, with this copy of stelae importable whatever the cwd."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{path}" if path else root}


def default_workers() -> int:
    """One front-end process per CPU the process may run on (at least one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
