"""Handing entries from front-end worker processes to the one sequencer process, and receipts back.

``stelae serve --workers N`` runs the write API in N processes (one GIL each) and the sequencer in
the supervisor. Each worker holds one end of a ``socketpair`` to the supervisor:

- worker → supervisor: ``("ready", pid)`` once serving, then ``("submit", id, body, digests,
  keys, identities)`` per entry;
- supervisor → worker: lists of results, each ``("ok", id, index, duplicate, integrated_time,
  signed_entry_timestamp, checkpoint, tree_size)`` or ``("refused", id, reason, message,
  retry_after)``.

Frames are a 4-byte big-endian length and a pickle. Pickle is acceptable here, and only here,
because both ends are this program: the pair is created by the supervisor and inherited by the
children it starts, never bound to a name another user could reach.

The durability contract is the in-process one: an ``ok`` is sent only once the batcher's future
resolves, i.e. after the checkpoint covering the entry is published. If the supervisor dies, every
waiting request fails (never a false acknowledgement); if a worker dies, what it submitted is still
integrated, but nobody was told it was, so nothing acknowledged is lost either way.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import pickle
import queue
import socket
import struct
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from stelae.errors import StelaeError
from stelae.sequencer.awaiter import await_receipt
from stelae.sequencer.batcher import (
    Batcher,
    LogHaltedError,
    NotYetIntegratedError,
    QueueFullError,
    ShuttingDownError,
)
from stelae.sequencer.pending import PendingEntry
from stelae.sequencer.receipt import LogCorruptedError, Receipt
from stelae.sequencer.store import StoreFullError

log = logging.getLogger("stelae.server")

_LENGTH = struct.Struct(">I")
MAX_FRAME = 64 << 20  # a batch of receipts for thousands of entries is well under this


class ChannelClosedError(StelaeError):
    """The process at the other end of the channel has gone."""


class SequencingFailedError(StelaeError):
    """The supervisor's sequencer failed to integrate the batch holding this entry."""


class Channel:
    """Length-prefixed pickled frames over a stream socket; sends are thread-safe."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._send_lock = threading.Lock()
        self._file = sock.makefile("rb")

    def send(self, message: object) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            with self._send_lock:
                self.sock.sendall(_LENGTH.pack(len(data)) + data)
        except OSError as err:
            raise ChannelClosedError(f"couldn't send to the other process: {err}") from err

    def receive(self) -> Any:
        """The next message; raises ChannelClosedError at EOF or on a broken frame."""
        try:
            header = self._file.read(_LENGTH.size)
            if len(header) < _LENGTH.size:
                raise ChannelClosedError("the other process closed the channel")
            (size,) = _LENGTH.unpack(header)
            if size > MAX_FRAME:
                raise ChannelClosedError(f"frame of {size} bytes is over the {MAX_FRAME} limit")
            data = self._file.read(size)
        except OSError as err:
            raise ChannelClosedError(f"couldn't read from the other process: {err}") from err
        if len(data) < size:
            raise ChannelClosedError("the other process closed the channel mid-frame")
        return pickle.loads(data)  # noqa: S301 - our own child/parent, see the module doc

    def close(self) -> None:
        # Best effort: the socket may already be shut down by the peer.
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self._file.close()
        self.sock.close()


# -- worker side ------------------------------------------------------------------------------


class RemoteSubmitter:
    """A :class:`~stelae.api.submit.Submitter` whose batcher lives in the supervisor process."""

    def __init__(self, channel: Channel, on_closed: Callable[[], None] | None = None) -> None:
        self.channel = channel
        self._ids = itertools.count()
        self._waiting: dict[int, Future[Receipt]] = {}
        self._lock = threading.Lock()
        self._closed: ChannelClosedError | None = None
        # Called once when the supervisor's end closes; set before the reader starts, so a
        # supervisor that dies at once is still noticed.
        self.on_closed = on_closed
        self._reader = threading.Thread(target=self._read, name="stelae-relay", daemon=True)
        self._reader.start()

    def ready(self, pid: int) -> None:
        self.channel.send(("ready", pid))

    def submit(self, entry: PendingEntry, timeout: float) -> Receipt:
        future: Future[Receipt] = Future()
        with self._lock:
            if self._closed is not None:
                raise ShuttingDownError(f"the sequencer is unavailable: {self._closed}")
            rid = next(self._ids)
            self._waiting[rid] = future
        try:
            self.channel.send(("submit", rid, entry))
        except ChannelClosedError as err:
            with self._lock:
                self._waiting.pop(rid, None)
            raise ShuttingDownError(f"the sequencer is unavailable: {err}") from err
        try:
            return await_receipt(future, entry, timeout)
        except NotYetIntegratedError:
            # Queued durably enough to be integrated later; its receipt is dropped on arrival.
            with self._lock:
                self._waiting.pop(rid, None)
            raise

    def _read(self) -> None:
        try:
            while True:
                for result in self.channel.receive():
                    self._resolve(result)
        except ChannelClosedError as err:
            with self._lock:
                self._closed = err
                waiting, self._waiting = self._waiting, {}
            for future in waiting.values():
                future.set_exception(ShuttingDownError(f"the sequencer is unavailable: {err}"))
            if self.on_closed is not None:
                self.on_closed()

    def _resolve(self, result: tuple[Any, ...]) -> None:
        with self._lock:
            future = self._waiting.pop(result[1], None)
        if future is None:
            return  # its request already answered 202
        if result[0] == "ok":
            future.set_result(result[2])
            return
        _, _, reason, message, retry_after = result
        future.set_exception(_refusal(reason, message, retry_after))


def _refusal(reason: str, message: str, retry_after: int) -> StelaeError:
    if reason == "full":
        # "<waiting> <the supervisor's own wording>", so the count crosses over too.
        pending, _, text = message.partition(" ")
        if not (pending.isascii() and pending.isdigit() and text):
            pending, text = "0", message
        err = QueueFullError(int(pending), retry_after)
        err.message = text
        err.args = (text,)
        return err
    if reason == "stopping":
        return ShuttingDownError(message)
    # Faults the API answers 503 rather than 500 keep their type across the process boundary.
    if reason == "store-full":
        return StoreFullError(message)
    if reason == "halted":
        return LogHaltedError(message)
    return SequencingFailedError(message)


# -- supervisor side --------------------------------------------------------------------------


class Relay:
    """Feeds one worker's submissions into the batcher and sends its receipts back, coalesced:
    results are queued by the batcher's callbacks and a sender thread ships whatever has
    accumulated as one frame, so a batch of thousands costs a handful of writes."""

    def __init__(self, channel: Channel, batcher: Batcher, on_ready: Callable[[int], None]) -> None:
        self.channel = channel
        self.batcher = batcher
        self.on_ready = on_ready
        self._outbox: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._reader = threading.Thread(target=self._read, name="stelae-relay-in", daemon=True)
        self._sender = threading.Thread(target=self._send, name="stelae-relay-out", daemon=True)

    def start(self) -> None:
        self._sender.start()
        self._reader.start()

    def join(self) -> None:
        """Wait until the worker has closed its end and every result has been sent or dropped."""
        self._reader.join()
        self._sender.join()

    def _read(self) -> None:
        try:
            while True:
                message = self.channel.receive()
                if message[0] == "ready":
                    self.on_ready(int(message[1]))
                elif message[0] == "submit":
                    self._submit(message)
                else:
                    log.error("unexpected message from a worker: %r", message[0])
        except ChannelClosedError:
            pass  # the worker exited; entries it submitted are still integrated
        finally:
            self._outbox.put(None)

    def _submit(self, message: tuple[Any, ...]) -> None:
        _, rid, entry = message
        if not isinstance(entry, PendingEntry):
            raise ChannelClosedError(f"a worker sent {type(entry).__name__}, not an entry")
        try:
            future = self.batcher.submit(entry)
        except QueueFullError as err:
            self._outbox.put(("refused", rid, "full", f"{err.pending} {err}", err.retry_after))
            return
        except ShuttingDownError as err:
            self._outbox.put(("refused", rid, "stopping", str(err), 1))
            return
        future.add_done_callback(lambda f: self._outbox.put(_result(rid, f)))

    def _send(self) -> None:
        closing = False
        while not closing:
            first = self._outbox.get()
            results = []
            item: tuple[Any, ...] | None = first
            while True:
                if item is None:
                    closing = True
                else:
                    results.append(item)
                try:
                    item = self._outbox.get_nowait()
                except queue.Empty:
                    break
            if results:
                try:
                    self.channel.send(results)
                except ChannelClosedError:
                    log.warning("a worker went away with %d answers undelivered", len(results))


def _result(rid: int, future: Future[Receipt]) -> tuple[Any, ...]:
    err = future.exception()
    if isinstance(err, StoreFullError):
        return ("refused", rid, "store-full", str(err), 1)
    if isinstance(err, LogCorruptedError | LogHaltedError):
        return ("refused", rid, "halted", str(err), 1)
    if err is not None:
        return ("refused", rid, "failed", f"sequencing failed: {err}", 1)
    # The receipts of one batch share its batch record, which pickle sends once per frame.
    return ("ok", rid, future.result())
