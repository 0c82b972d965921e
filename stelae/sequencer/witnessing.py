"""The log's side of witnessing: collect cosignatures on a checkpoint before publishing it.

:class:`WitnessCollector` sends the signed checkpoint to every witness of a
https://c2sp.org/tlog-policy that has a URL, all at once, with the tlog-witness ``add-checkpoint``
call (https://c2sp.org/tlog-witness@v1.0.0): ``old`` is the size that witness last cosigned for
this log as far as the collector knows (0 at first), and the proof is the RFC 6962 consistency
proof from there. Answers:

- 200: the signature lines are appended to the checkpoint text and verified with that witness's
  key alone; a line that does not verify is not counted (and not kept);
- 409 ``text/x.tlog.size``: the witness holds another size (a restart of the log, another
  sequencer, a lost answer); the collector learns it and retries once with a proof from there;
- 400, 403, 404, 422, 429, 5xx, a connection error or the deadline: that witness does not count.

The note comes back with the collected cosignature lines appended only if the policy's quorum
holds; otherwise :class:`~stelae.tiles.policy.QuorumNotMetError` names who cosigned and who did
not and why. With ``fail_open=True`` the note is returned with whatever arrived and a warning is
logged instead. Everything that arrives before the deadline is kept, beyond the quorum too.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Protocol

from stelae.errors import StelaeError
from stelae.tiles.addcheckpoint import (
    SIZE_CONTENT_TYPE,
    AddCheckpointRequest,
    parse_signature_lines,
    parse_size_body,
)
from stelae.tiles.checkpoint import Checkpoint
from stelae.tiles.errors import FormatError, VerificationError
from stelae.tiles.note import Note, NoteSignature, open_note
from stelae.tiles.policy import Policy, PolicyWitness, QuorumNotMetError

__all__ = [
    "HTTPTransport",
    "QuorumNotMetError",
    "WitnessCollector",
    "WitnessOutcome",
    "WitnessReply",
    "WitnessTransport",
]

log = logging.getLogger("stelae.witnessing")


@dataclass(frozen=True)
class WitnessReply:
    status: int
    content_type: str
    body: bytes


class WitnessTransport(Protocol):
    """POSTs ``body`` to ``url`` and returns the answer, whatever its status. Raises
    ``OSError`` (timeouts included) or ``http.client.HTTPException`` when there is no answer
    within ``timeout`` seconds. Must be safe to call from several threads at once."""

    def post(self, url: str, body: bytes, timeout: float) -> WitnessReply: ...


class HTTPTransport:
    """:class:`WitnessTransport` over ``http.client`` with keep-alive connections (reused per
    host, as tlog-witness recommends), one request per connection at a time."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()

    def post(self, url: str, body: bytes, timeout: float) -> WitnessReply:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OSError(f"{url!r} is not an http(s) URL")
        key = (parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        with self._lock:
            idle = self._idle.setdefault(key, [])
            conn = idle.pop() if idle else None
        for attempt in (0, 1):
            reused = conn is not None
            if conn is None:
                cls = (
                    http.client.HTTPSConnection if key[0] == "https" else http.client.HTTPConnection
                )
                conn = cls(key[1], key[2], timeout=timeout)
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            try:
                conn.request("POST", path, body, {"Content-Type": "text/plain"})
                res = conn.getresponse()
                data = res.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
                conn = None
                if reused and attempt == 0:
                    continue  # the witness closed an idle keep-alive connection: try a new one
                raise
            except BaseException:
                conn.close()
                raise
            if res.will_close:
                conn.close()
            else:
                with self._lock:
                    self._idle.setdefault(key, []).append(conn)
            return WitnessReply(res.status, res.getheader("Content-Type", ""), data)
        raise OSError("unreachable")  # the loop returns or raises

    def close(self) -> None:
        with self._lock:
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for conn in conns:
            conn.close()


@dataclass(frozen=True)
class _Round:
    """One :meth:`WitnessCollector.cosign` call, as every witness's request sees it."""

    note: bytes
    text: str
    size: int
    consistency_proof: Callable[[int, int], list[bytes]]
    deadline: float


@dataclass(frozen=True)
class WitnessOutcome:
    """What one witness did with one checkpoint: ``cosigned`` or not, and why not."""

    name: str
    cosigned: bool
    reason: str
    signatures: tuple[NoteSignature, ...] = ()


class WitnessCollector:
    """Collects witness cosignatures for one log under ``policy``.

    ``transport`` defaults to :class:`HTTPTransport`. ``timeout`` (seconds) bounds a whole
    :meth:`cosign` call. ``fail_open`` returns an under-witnessed note (with a warning logged)
    instead of raising. The size each witness last cosigned is remembered between calls, so
    call :meth:`cosign` for one log only, with its checkpoints in order.
    """

    def __init__(
        self,
        policy: Policy,
        transport: WitnessTransport | None = None,
        *,
        timeout: float = 10.0,
        fail_open: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self.transport: WitnessTransport = transport or HTTPTransport()
        self.timeout = timeout
        self.fail_open = fail_open
        self._clock = clock
        self._sizes: dict[str, int] = {}
        self._lock = threading.Lock()
        workers = max(1, 2 * len(policy.witnesses))  # room for stragglers of a previous call
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="stelae-witnessing")
        #: The outcome per witness of the last :meth:`cosign` call, in policy order.
        self.last_outcomes: tuple[WitnessOutcome, ...] = ()

    def known_size(self, witness: str) -> int:
        """The size ``witness`` (a policy name) last cosigned, as far as this collector knows."""
        with self._lock:
            return self._sizes.get(witness, 0)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def cosign(
        self,
        note: bytes,
        size: int,
        consistency_proof: Callable[[int, int], list[bytes]],
    ) -> bytes:
        """``note`` (the log-signed checkpoint of ``size``) with the witnesses' cosignature
        lines appended, if they satisfy the quorum. ``consistency_proof(old, new)`` returns the
        RFC 6962 proof from size ``old`` to ``new`` (``0 < old < new``); it is called from
        worker threads. Raises :class:`QuorumNotMetError` (fail-closed), ``FormatError`` if
        ``note`` is not a checkpoint of ``size``."""
        parsed = Note.parse(note)
        checkpoint = Checkpoint.parse(parsed.text)
        if checkpoint.size != size:
            raise FormatError(f"the checkpoint has size {checkpoint.size}, not {size}")
        deadline = self._clock() + self.timeout
        round_ = _Round(note, parsed.text, size, consistency_proof, deadline)
        futures: dict[str, Future[WitnessOutcome]] = {}
        outcomes: dict[str, WitnessOutcome] = {}
        for witness in self.policy.witnesses:
            if witness.url is None:
                outcomes[witness.name] = WitnessOutcome(witness.name, False, "no URL in the policy")
                continue
            futures[witness.name] = self._pool.submit(self._ask, witness, round_)
        wait(futures.values(), timeout=max(0.0, deadline - self._clock()))
        for name, future in futures.items():
            if future.done() and not future.cancelled() and future.exception() is None:
                outcomes[name] = future.result()
            elif future.done() and future.exception() is not None:
                outcomes[name] = WitnessOutcome(name, False, f"failed: {future.exception()}")
            else:
                outcomes[name] = WitnessOutcome(name, False, f"no answer within {self.timeout:g} s")
        self.last_outcomes = tuple(outcomes[w.name] for w in self.policy.witnesses)
        return self._finish(parsed, self.last_outcomes)

    def _finish(self, parsed: Note, outcomes: tuple[WitnessOutcome, ...]) -> bytes:
        new = [sig for o in outcomes if o.cosigned for sig in o.signatures]
        replaced = {(s.name, s.key_id) for s in new}
        kept = [s for s in parsed.signatures if (s.name, s.key_id) not in replaced]
        result = Note(parsed.text, tuple(dict.fromkeys([*kept, *new]))).to_bytes()
        signed = [o.name for o in outcomes if o.cosigned]
        if self.policy.satisfied(signed):
            return result
        error = QuorumNotMetError(
            self.policy.quorum,
            signed,
            [o.name for o in outcomes if not o.cosigned],
            {o.name: o.reason for o in outcomes if not o.cosigned},
        )
        if not self.fail_open:
            raise error
        log.warning("publishing without the witness quorum (fail-open): %s", error)
        return result

    def _ask(self, witness: PolicyWitness, round_: _Round) -> WitnessOutcome:
        """One witness, at most two requests (a 409 teaches the size once). Never raises."""
        name = witness.name
        assert witness.url is not None
        url = witness.url.rstrip("/") + "/add-checkpoint"
        size = round_.size
        old = self.known_size(name)
        for attempt in (0, 1):
            if old > size:
                return WitnessOutcome(name, False, f"it cosigned size {old}, beyond {size}")
            reply = self._send(name, url, round_, old)
            if isinstance(reply, WitnessOutcome):
                return reply
            if reply.status == 200:
                with self._lock:
                    self._sizes[name] = size  # it moved, even if its answer is unusable
                return self._verified(witness, round_.text, reply.body)
            if reply.status == 409 and reply.content_type.startswith(SIZE_CONTENT_TYPE):
                try:
                    learned = parse_size_body(reply.body)
                except FormatError as err:
                    return WitnessOutcome(name, False, f"409 with a bad size body: {err}")
                if learned != old and attempt == 0:
                    with self._lock:
                        self._sizes[name] = learned
                    old = learned
                    continue
                return WitnessOutcome(
                    name, False, f"409: it holds another tree at size {learned} (a split view?)"
                )
            detail = reply.body[:200].decode("utf-8", "replace").strip()
            return WitnessOutcome(name, False, f"{reply.status}: {detail}".rstrip(": "))
        raise AssertionError("unreachable")  # the loop always returns

    def _send(self, name: str, url: str, round_: _Round, old: int) -> WitnessReply | WitnessOutcome:
        """Post the add-checkpoint request from size ``old``: the witness's reply, or the
        outcome when there is none to act on (no proof, past the deadline, unreachable)."""
        try:
            proof = round_.consistency_proof(old, round_.size) if 0 < old < round_.size else []
            body = AddCheckpointRequest(old, tuple(proof), round_.note).to_bytes()
        except (StelaeError, ValueError) as err:
            return WitnessOutcome(name, False, f"no consistency proof from {old}: {err}")
        remaining = round_.deadline - self._clock()
        if remaining <= 0:
            return WitnessOutcome(name, False, f"no answer within {self.timeout:g} s")
        try:
            return self.transport.post(url, body, remaining)
        except TimeoutError:
            return WitnessOutcome(name, False, f"no answer within {self.timeout:g} s")
        except (OSError, http.client.HTTPException) as err:
            return WitnessOutcome(name, False, f"unreachable: {err or type(err).__name__}")

    @staticmethod
    def _verified(witness: PolicyWitness, text: str, body: bytes) -> WitnessOutcome:
        """The witness's cosignature lines that verify with its key (others are dropped)."""
        key = (witness.verifier.name, witness.verifier.key_id)
        try:
            lines = parse_signature_lines(text, body)
            mine = tuple(s for s in lines if (s.name, s.key_id) == key)
            if not mine:
                return WitnessOutcome(witness.name, False, "200 without a line from its key")
            opened = open_note(Note(text, mine).to_bytes(), [witness.verifier])
        except (FormatError, VerificationError) as err:
            return WitnessOutcome(witness.name, False, f"bad cosignature: {err}")
        return WitnessOutcome(witness.name, True, "cosigned", opened.verified)
