"""Witness policies: the file format of https://c2sp.org/tlog-policy and its quorum rule.

A policy lists logs (``log VKEY [URL]``), witnesses (``witness NAME VKEY [URL]``), groups
(``group NAME all|any|K MEMBER...``) and exactly one ``quorum NAME`` (``none`` needs no
cosignature). A checkpoint is acceptable when one of the logs signed it and the witnesses that
validly cosigned it make the quorum true: a witness is true when it cosigned, a group when at
least K of its members are true.

Parsing follows the spec's letter: lines end in "\\n"; items are separated by runs of spaces and
tabs only; blank lines and lines whose first non-blank character is ``#`` are ignored; the only
control characters allowed anywhere are tab and newline; a group or the quorum may only name
witnesses and groups defined on earlier lines; each name is defined once and is a member of a
given group at most once; ``none`` is predefined and cannot be a member; two logs (or two
witnesses) may not share a public key. Names are opaque bytes: the file is decoded as UTF-8
with ``surrogateescape`` so that non-UTF-8 octets survive a round trip unchanged.

Cosignatures are type 0x04 (Ed25519, https://c2sp.org/tlog-cosignature@v1.0.1) or 0x06
(ML-DSA-44, https://c2sp.org/tlog-cosignature@v1.1.0-rc.1). Pure code: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from stelae.tiles.checkpoint import SignedCheckpoint, open_checkpoint
from stelae.tiles.decimals import parse_decimal
from stelae.tiles.errors import FormatError, VerificationError
from stelae.tiles.mldsa import MLDSA44CosignatureVerifier
from stelae.tiles.note import (
    InvalidVerifierKeyError,
    Note,
    NoteVerifier,
    UnverifiedNoteError,
    VerifiedCosignature,
    open_note,
)
from stelae.tiles.notekeys import (
    ECDSANoteVerifier,
    Ed25519CosignatureVerifier,
    Ed25519NoteVerifier,
    VkeyVerifier,
    parse_vkey,
    verifier_to_vkey,
)

__all__ = [
    "NONE",
    "MalformedPolicyError",
    "Policy",
    "PolicyGroup",
    "PolicyLog",
    "PolicyWitness",
    "QuorumNotMetError",
    "WitnessedNote",
]

NONE = "none"
"""The predefined name: ``quorum none`` requires no cosignature."""

_BLANKS = re.compile(r"[ \t]+")
# The spec allows 0x09, 0x0A, 0x20-0x7E and 0x80-0xFF; everything else is a control character.
_FORBIDDEN = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")

LOG_KEY_TYPES = (Ed25519NoteVerifier, ECDSANoteVerifier, MLDSA44CosignatureVerifier)
WITNESS_KEY_TYPES = (Ed25519CosignatureVerifier, MLDSA44CosignatureVerifier)
WitnessVerifier = Ed25519CosignatureVerifier | MLDSA44CosignatureVerifier


class MalformedPolicyError(FormatError):
    """A policy file breaks a rule of c2sp.org/tlog-policy; the message names the line."""


class QuorumNotMetError(VerificationError):
    """A checkpoint's valid cosignatures do not satisfy the policy's quorum.

    ``signed`` and ``missing`` are policy witness names (sorted); ``quorum`` is the quorum's
    name; ``reasons`` maps a missing witness to why it did not cosign, when the caller knows
    (a witness collector does; an offline verifier does not).
    """

    def __init__(
        self,
        quorum: str,
        signed: Iterable[str],
        missing: Iterable[str],
        reasons: Mapping[str, str] | None = None,
    ) -> None:
        self.quorum = quorum
        self.signed = tuple(sorted(signed))
        self.missing = tuple(sorted(missing))
        self.reasons = dict(reasons or {})
        why = "; ".join(
            f"{name}: {self.reasons[name]}" for name in self.missing if name in self.reasons
        )
        super().__init__(
            f"the checkpoint's cosignatures do not satisfy the witness quorum {quorum!r}: "
            f"signed by {', '.join(self.signed) or 'no witness'}; "
            f"missing {', '.join(self.missing) or 'none'}" + (f" ({why})" if why else ""),
            hint="the log did not collect enough witness cosignatures, or the policy file is "
            "not the one this log is witnessed under",
        )


def _problem_line(number: int, message: str) -> MalformedPolicyError:
    return MalformedPolicyError(f"policy line {number}: {message}")


@dataclass(frozen=True)
class PolicyLog:
    """``log VKEY [URL]``: a log key (type 0x01, 0x02, or 0x06 for a log that signs its
    checkpoints with ML-DSA-44 as https://c2sp.org/tlog-checkpoint recommends); its key name is
    the log's origin. A checkpoint signed by any one listed log key is the log's."""

    verifier: VkeyVerifier
    url: str | None = None

    @property
    def origin(self) -> str:
        return self.verifier.name

    def to_line(self) -> str:
        return " ".join(["log", verifier_to_vkey(self.verifier), *_opt(self.url)]) + "\n"


@dataclass(frozen=True)
class PolicyWitness:
    """``witness NAME VKEY [URL]``: a cosigner key (type 0x04 or 0x06); ``url`` is its
    tlog-witness submission prefix when given."""

    name: str
    verifier: WitnessVerifier
    url: str | None = None

    def to_line(self) -> str:
        vkey = verifier_to_vkey(self.verifier)
        return " ".join(["witness", self.name, vkey, *_opt(self.url)]) + "\n"


@dataclass(frozen=True)
class PolicyGroup:
    """``group NAME all|any|K MEMBER...``: true when ``threshold`` of its members are true."""

    name: str
    threshold: int | Literal["all", "any"]
    members: tuple[str, ...]

    @property
    def k(self) -> int:
        if self.threshold == "all":
            return len(self.members)
        if self.threshold == "any":
            return 1
        return self.threshold

    def to_line(self) -> str:
        return " ".join(["group", self.name, str(self.threshold), *self.members]) + "\n"


def _opt(url: str | None) -> list[str]:
    return [] if url is None else [url]


@dataclass(frozen=True)
class WitnessedNote:
    """The witnesses (policy names) whose cosignatures on a note verified, with timestamps."""

    signed: tuple[str, ...]
    cosignatures: tuple[VerifiedCosignature, ...]


@dataclass(frozen=True)
class Policy:
    """A parsed tlog-policy: valid once constructed (see :meth:`parse` for the rules)."""

    logs: tuple[PolicyLog, ...]
    witnesses: tuple[PolicyWitness, ...]
    groups: tuple[PolicyGroup, ...]
    quorum: str
    _by_name: dict[str, PolicyWitness | PolicyGroup] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Re-check what parse() checks, so a Policy built in code obeys the same rules.
        by_name: dict[str, PolicyWitness | PolicyGroup] = {}
        items: list[PolicyWitness | PolicyGroup] = [*self.witnesses, *self.groups]
        for item in items:
            if item.name == NONE or item.name in by_name:
                raise MalformedPolicyError(f"name {item.name!r} is defined twice")
            if isinstance(item, PolicyGroup):
                _check_group(item, by_name)
            by_name[item.name] = item
        if self.quorum != NONE and self.quorum not in by_name:
            raise MalformedPolicyError(f"quorum {self.quorum!r} names no witness or group")
        _check_distinct_keys("log", [log.verifier for log in self.logs])
        _check_distinct_keys("witness", [w.verifier for w in self.witnesses])
        object.__setattr__(self, "_by_name", by_name)

    # --- format ---------------------------------------------------------------------------------

    @classmethod
    def parse(cls, data: bytes) -> Policy:
        """Parse a policy file; raises :class:`MalformedPolicyError` naming the bad line.

        Lines may come in any order except that a name must be defined before a group or the
        quorum uses it; that order is kept in the value, so :meth:`to_bytes` (logs, then
        witnesses, then groups, then the quorum) always re-parses to an equal policy.
        """
        if (bad := _FORBIDDEN.search(data)) is not None:
            line = data.count(b"\n", 0, bad.start()) + 1
            raise _problem_line(line, f"control character 0x{data[bad.start()]:02x} not allowed")
        if data and not data.endswith(b"\n"):
            raise MalformedPolicyError("the policy file's last line does not end with a newline")
        text = data.decode("utf-8", "surrogateescape")
        lines = _PolicyLines()
        for number, raw in enumerate(text.split("\n")[:-1], start=1):
            items = _BLANKS.split(raw.strip(" \t"))
            if items == [""] or items[0].startswith("#"):
                continue
            lines.add(number, items[0], items[1:])
        if lines.quorum is None:
            raise MalformedPolicyError("the policy has no quorum line (use 'quorum none')")
        try:
            return cls(tuple(lines.logs), tuple(lines.witnesses), tuple(lines.groups), lines.quorum)
        except MalformedPolicyError as err:
            raise MalformedPolicyError(f"policy: {err.message}") from err

    def to_bytes(self) -> bytes:
        """Serialize; ``Policy.parse(p.to_bytes()) == p``."""
        lines = [
            *(log.to_line() for log in self.logs),
            *(w.to_line() for w in self.witnesses),
            *(g.to_line() for g in self.groups),
            f"quorum {self.quorum}\n",
        ]
        return "".join(lines).encode("utf-8", "surrogateescape")

    # --- quorum ---------------------------------------------------------------------------------

    def satisfied(self, cosigned: Iterable[str]) -> bool:
        """Whether the witnesses named in ``cosigned`` (policy names) satisfy the quorum."""
        names = frozenset(cosigned)
        if self.quorum == NONE:
            return True
        # Groups only name earlier definitions, so one pass in definition order settles them.
        true: set[str] = {w.name for w in self.witnesses if w.name in names}
        for group in self.groups:
            if sum(member in true for member in group.members) >= group.k:
                true.add(group.name)
        return self.quorum in true

    def witnesses_for_quorum(self) -> tuple[PolicyWitness, ...]:
        """Every witness that can contribute to the quorum (members, directly or via groups)."""
        if self.quorum == NONE:
            return ()
        wanted: set[str] = set()
        stack = [self.quorum]
        while stack:
            item = self._by_name[stack.pop()]
            if isinstance(item, PolicyWitness):
                wanted.add(item.name)
            else:
                stack.extend(item.members)
        return tuple(w for w in self.witnesses if w.name in wanted)

    # --- verification ---------------------------------------------------------------------------

    def witnessed(self, note: bytes) -> WitnessedNote:
        """The policy witnesses whose cosignatures on ``note`` verify (log signatures are not
        checked here). A cosignature line from a policy witness's key that fails to verify
        rejects the whole note (:class:`~stelae.tiles.note.InvalidSignatureError`), as the
        signed-note rules require; lines from unknown keys are ignored."""
        verifiers: list[NoteVerifier] = [w.verifier for w in self.witnesses]
        names = {(w.verifier.name, w.verifier.key_id): w.name for w in self.witnesses}
        if not verifiers:
            Note.parse(note)  # still reject a malformed note
            return WitnessedNote((), ())
        try:
            opened = open_note(note, verifiers)
        except UnverifiedNoteError:
            return WitnessedNote((), ())
        signed = tuple(
            dict.fromkeys(
                names[(c.signature.name, c.signature.key_id)] for c in opened.cosignatures
            )
        )
        return WitnessedNote(signed, opened.cosignatures)

    def check_quorum(self, note: bytes) -> WitnessedNote:
        """:meth:`witnessed`, then raise :class:`QuorumNotMetError` unless the quorum holds."""
        witnessed = self.witnessed(note)
        if not self.satisfied(witnessed.signed):
            missing = [w.name for w in self.witnesses if w.name not in witnessed.signed]
            raise QuorumNotMetError(self.quorum, witnessed.signed, missing)
        return witnessed

    def open_checkpoint(
        self, note: bytes, origin: str, log_verifiers: Sequence[NoteVerifier] = ()
    ) -> SignedCheckpoint:
        """Verify a checkpoint from log ``origin`` completely: signed by one of the policy's
        logs for that origin (or of ``log_verifiers``, for a policy that lists no logs) and
        cosigned by a quorum (steps 2 and 3 of verifying a https://c2sp.org/tlog-proof)."""
        logs = [*log_verifiers, *(log.verifier for log in self.logs if log.origin == origin)]
        if not logs:
            raise VerificationError(
                f"the witness policy lists no log for origin {origin!r}",
                hint="add a 'log <vkey>' line for it, or pass the log's key",
            )
        witnesses = [w.verifier for w in self.witnesses]
        checkpoint = open_checkpoint(note, logs, origin, witnesses=witnesses)
        self.check_quorum(note)
        return checkpoint


@dataclass
class _PolicyLines:
    """What the lines read so far define, in file order: one method per keyword, each checking
    its line against the definitions above it (the spec's define-before-use rule)."""

    logs: list[PolicyLog] = field(default_factory=list)
    witnesses: list[PolicyWitness] = field(default_factory=list)
    groups: list[PolicyGroup] = field(default_factory=list)
    defined: dict[str, PolicyWitness | PolicyGroup] = field(default_factory=dict)
    quorum: str | None = None

    def add(self, number: int, keyword: str, args: list[str]) -> None:
        if keyword == "log":
            self._log(number, args)
        elif keyword == "witness":
            self._witness(number, args)
        elif keyword == "group":
            self._group(number, args)
        elif keyword == "quorum":
            self._quorum(number, args)
        else:
            raise _problem_line(number, f"unknown keyword {keyword!r}")

    def _log(self, number: int, args: list[str]) -> None:
        if not 1 <= len(args) <= 2:
            raise _problem_line(number, "expected 'log <vkey> [<url>]'")
        self.logs.append(PolicyLog(_vkey(number, args[0], "log"), _url(args)))

    def _witness(self, number: int, args: list[str]) -> None:
        if not 2 <= len(args) <= 3:
            raise _problem_line(number, "expected 'witness <name> <vkey> [<url>]'")
        name = _new_name(number, args[0], self.defined)
        verifier = _vkey(number, args[1], "witness")
        assert isinstance(verifier, WITNESS_KEY_TYPES)
        witness = PolicyWitness(name, verifier, args[2] if len(args) == 3 else None)
        self.witnesses.append(witness)
        self.defined[name] = witness

    def _group(self, number: int, args: list[str]) -> None:
        if len(args) < 3:
            raise _problem_line(number, "expected 'group <name> all|any|<k> <name>...'")
        name = _new_name(number, args[0], self.defined)
        group = PolicyGroup(name, _threshold(number, args[1]), tuple(args[2:]))
        try:
            _check_group(group, self.defined)
        except MalformedPolicyError as err:
            raise _problem_line(number, err.message) from err
        self.groups.append(group)
        self.defined[name] = group

    def _quorum(self, number: int, args: list[str]) -> None:
        if len(args) != 1:
            raise _problem_line(number, "expected 'quorum <name>'")
        if self.quorum is not None:
            raise _problem_line(number, "a policy has exactly one quorum line")
        if args[0] != NONE and args[0] not in self.defined:
            raise _problem_line(
                number, f"quorum {args[0]!r} is not a witness or group defined above"
            )
        self.quorum = args[0]


def _vkey(number: int, text: str, role: Literal["log", "witness"]) -> VkeyVerifier:
    try:
        verifier = parse_vkey(text)
    except InvalidVerifierKeyError as err:
        raise _problem_line(number, f"bad {role} vkey: {err.message}") from err
    allowed = LOG_KEY_TYPES if role == "log" else WITNESS_KEY_TYPES
    if not isinstance(verifier, allowed):
        want = "0x01, 0x02 or 0x06" if role == "log" else "0x04 or 0x06 (a cosignature key)"
        raise _problem_line(
            number, f"{role} key {verifier.name} has type 0x{verifier.key_type:02x}, not {want}"
        )
    return verifier


def _url(args: list[str]) -> str | None:
    return args[1] if len(args) == 2 else None


def _new_name(number: int, name: str, defined: Mapping[str, object]) -> str:
    if name == NONE:
        raise _problem_line(number, "'none' is predefined and cannot be redefined")
    if name in defined:
        raise _problem_line(number, f"name {name!r} is already defined")
    return name


def _threshold(number: int, text: str) -> int | Literal["all", "any"]:
    if text in ("all", "any"):
        return "all" if text == "all" else "any"
    try:
        # The spec's number may carry leading zeros; the value is what counts.
        return parse_decimal(text.lstrip("0") or "0", "group threshold")
    except FormatError:
        raise _problem_line(
            number, f"group threshold {text[:30]!r} is not all, any or a number"
        ) from None


def _check_group(group: PolicyGroup, defined: Mapping[str, object]) -> None:
    if not group.members:
        raise MalformedPolicyError(f"group {group.name!r} has no members")
    for member in group.members:
        if member == NONE:
            raise MalformedPolicyError(f"group {group.name!r}: 'none' cannot be a member")
        if member not in defined:
            raise MalformedPolicyError(
                f"group {group.name!r}: member {member!r} is not defined on an earlier line"
            )
    if len(set(group.members)) != len(group.members):
        raise MalformedPolicyError(f"group {group.name!r} lists a member twice")
    if isinstance(group.threshold, int) and not 1 <= group.threshold <= len(group.members):
        raise MalformedPolicyError(
            f"group {group.name!r}: threshold {group.threshold} is not between 1 and "
            f"{len(group.members)}"
        )


def _check_distinct_keys(role: str, verifiers: Sequence[VkeyVerifier]) -> None:
    # Duplicates are keys wrapping the same public key, whatever their names (tlog-policy
    # "Public key representation").
    seen: dict[bytes, str] = {}
    for v in verifiers:
        if v.public_key in seen:
            raise MalformedPolicyError(
                f"{role} keys {seen[v.public_key]} and {v.name} are the same public key"
            )
        seen[v.public_key] = v.name
