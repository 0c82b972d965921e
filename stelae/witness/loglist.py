"""The logs a witness accepts, in the witness network's ``logs/v0`` list format.

The format (https://github.com/transparency-dev/witness-network/blob/main/docs/log-list-format.md,
as served at https://witness-network.org) is line based: ``#`` comments and blank lines are
ignored; the first other line is ``logs/v0``; each log starts with ``vkey VKEY`` and may be
followed by ``origin ORIGIN|none`` (``none`` or absent: the vkey's key name is the origin),
``bastion URL|none``, ``qpd N`` (add-checkpoint requests per day) and ``contact TEXT``. Later
drafts put ``origin`` first and add a ``revision N`` header line; both are accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from stelae.tiles.decimals import parse_decimal
from stelae.tiles.errors import FormatError
from stelae.tiles.mldsa import MLDSA44CosignatureVerifier
from stelae.tiles.note import InvalidVerifierKeyError
from stelae.tiles.notekeys import (
    ECDSANoteVerifier,
    Ed25519NoteVerifier,
    parse_vkey,
)

__all__ = ["LogList", "LogListEntry", "MalformedLogListError"]

HEADER = "logs/v0"


class MalformedLogListError(FormatError):
    """A log list does not follow the ``logs/v0`` format; the message names the line."""


@dataclass(frozen=True)
class LogListEntry:
    """One witnessed log: its ``origin``, its key, and ``qpd`` add-checkpoints a day. The key
    may be a log's ML-DSA-44 key (type 0x06), which https://c2sp.org/tlog-checkpoint recommends
    logs sign with; the witness then checks that line and ignores the others."""

    origin: str
    verifier: Ed25519NoteVerifier | ECDSANoteVerifier | MLDSA44CosignatureVerifier
    qpd: int
    contact: str | None = None
    bastion: str | None = None


@dataclass(frozen=True)
class LogList:
    """The parsed list, by origin."""

    logs: Mapping[str, LogListEntry]

    @classmethod
    def parse(cls, data: bytes) -> LogList:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise MalformedLogListError(f"the log list is not UTF-8: {err}") from err
        lines = _LogListLines()
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if line and not line.startswith("#"):
                lines.add(number, line)
        if not lines.seen_header:
            raise MalformedLogListError(f"the log list has no {HEADER!r} line")
        if lines.pending_origin is not None:
            raise MalformedLogListError(
                f"origin {lines.pending_origin!r} is not followed by a vkey"
            )
        logs: dict[str, LogListEntry] = {}
        for fields in lines.entries:
            entry = _entry(fields)
            if entry.origin in logs:
                raise MalformedLogListError(
                    f"line {fields['line']}: origin {entry.origin!r} is listed twice"
                )
            logs[entry.origin] = entry
        return cls(logs)

    def get(self, origin: str) -> LogListEntry | None:
        return self.logs.get(origin)


@dataclass
class _LogListLines:
    """The lines read so far: whether the header came, and each log's fields (with the line
    of its ``vkey``, for messages) in file order; ``_entry`` checks them afterwards."""

    seen_header: bool = False
    entries: list[dict[str, str]] = field(default_factory=list)
    pending_origin: str | None = None  # the newer draft's 'origin' comes before 'vkey'

    def add(self, number: int, line: str) -> None:
        """Take one line that is neither blank nor a comment."""
        if not self.seen_header:
            if line != HEADER:
                raise MalformedLogListError(f"line {number}: expected {HEADER!r} first")
            self.seen_header = True
            return
        keyword, _, value = line.partition(" ")
        value = value.strip()
        if keyword == "revision" and not self.entries:
            return
        if not value:
            raise MalformedLogListError(f"line {number}: {keyword!r} has no value")
        if keyword == "vkey":
            self._vkey(number, value)
        elif keyword == "origin" and (not self.entries or "qpd" in self.entries[-1]):
            self.pending_origin = value
        elif keyword in ("origin", "bastion", "qpd", "contact"):
            self._field(number, keyword, value)
        else:
            raise MalformedLogListError(f"line {number}: unknown keyword {keyword!r}")

    def _vkey(self, number: int, value: str) -> None:
        self.entries.append({"vkey": value, "line": str(number)})
        if self.pending_origin is not None:
            self.entries[-1]["origin"] = self.pending_origin
            self.pending_origin = None

    def _field(self, number: int, keyword: str, value: str) -> None:
        if not self.entries:
            raise MalformedLogListError(f"line {number}: {keyword!r} before any 'vkey'")
        if keyword in self.entries[-1]:
            raise MalformedLogListError(f"line {number}: a second {keyword!r} for one log")
        self.entries[-1][keyword] = value


def _entry(fields: dict[str, str]) -> LogListEntry:
    where = f"line {fields['line']}"
    try:
        verifier = parse_vkey(fields["vkey"])
    except InvalidVerifierKeyError as err:
        raise MalformedLogListError(f"{where}: bad vkey: {err.message}") from err
    if not isinstance(
        verifier, Ed25519NoteVerifier | ECDSANoteVerifier | MLDSA44CosignatureVerifier
    ):
        raise MalformedLogListError(
            f"{where}: key type 0x{verifier.key_type:02x} cannot sign checkpoints"
        )
    if "qpd" not in fields:
        raise MalformedLogListError(f"{where}: the log has no 'qpd' line")
    try:
        qpd = parse_decimal(fields["qpd"], "qpd")
    except FormatError as err:
        raise MalformedLogListError(f"{where}: {err}") from err
    origin = fields.get("origin", "none")
    bastion = fields.get("bastion", "none")
    return LogListEntry(
        origin=verifier.name if origin == "none" else origin,
        verifier=verifier,
        qpd=qpd,
        contact=fields.get("contact"),
        bastion=None if bastion == "none" else bastion,
    )
