"""Index manifests: the signed list of runs that answer lookups for one tree size (docs/index.md,
"Manifests").

The text of the signed note (https://c2sp.org/signed-note) is::

    stelae-index/v1
    <origin>
    <tree size>
    <base64 root hash>
    <a> <b> <bits> <base64 run root>      one line per run, partitioning [0, size)

:class:`Manifest` is the value, :meth:`Manifest.parse` checks the text and the partition, and
:meth:`Manifest.open` is the one way to get a trusted manifest from bytes. Pure code: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stelae.tiles.base64field import decode_b64, encode_b64
from stelae.tiles.checkpoint import Checkpoint
from stelae.tiles.decimals import parse_decimal
from stelae.tiles.errors import FormatError, VerificationError
from stelae.tiles.hashing import HASH_SIZE
from stelae.tiles.indexrecord import MAX_BITS, MAX_INDEX, RunRef
from stelae.tiles.note import NoteSigner, NoteVerifier, open_note, sign_note

__all__ = [
    "MANIFEST_HEADER",
    "MalformedManifestError",
    "Manifest",
    "ManifestMismatchError",
]

MANIFEST_HEADER = "stelae-index/v1"


class MalformedManifestError(FormatError):
    """A note text is not an index manifest, or its runs do not partition ``[0, size)``."""


class ManifestMismatchError(VerificationError):
    """A validly signed manifest is not the one asked for: another log's, or another tree's.

    ``field`` names what differs (``origin``, ``size`` or ``root``); ``expected`` and ``actual``
    are the two values.
    """

    def __init__(self, field: str, expected: object, actual: object) -> None:
        super().__init__(
            f"index manifest {field} {actual!r} is not the expected {expected!r}",
            hint="the manifest belongs to another log or another checkpoint",
        )
        self.field = field
        self.expected = expected
        self.actual = actual


def _hash(text: str, what: str) -> bytes:
    raw = decode_b64(text, what, MalformedManifestError)
    if len(raw) != HASH_SIZE:
        raise MalformedManifestError(f"{what} is not the canonical base64 of 32 bytes")
    return raw


def _number(text: str, what: str, maximum: int = MAX_INDEX) -> int:
    try:
        return parse_decimal(text, what, maximum=maximum)
    except FormatError as err:
        raise MalformedManifestError(str(err)) from err


@dataclass(frozen=True)
class Manifest:
    """Which runs answer lookups at tree ``size`` with root ``root``, for log ``origin``.

    Valid once constructed: the runs partition ``[0, size)`` in ascending order.
    """

    origin: str
    size: int
    root: bytes
    runs: tuple[RunRef, ...]

    def __post_init__(self) -> None:
        # The origin is a checkpoint origin: reuse its checks (one line, no control characters).
        try:
            Checkpoint(self.origin, self.size, self.root)
        except FormatError as err:
            raise MalformedManifestError(f"manifest: {err}") from err
        end = 0
        for run in self.runs:
            if run.a > end:
                raise MalformedManifestError(
                    f"entries [{end}, {run.a}) are in no run (a gap before run {run.name})"
                )
            if run.a < end:
                raise MalformedManifestError(
                    f"run {run.name} overlaps the previous run, which ends at {end}"
                )
            end = run.b
        if end != self.size:
            raise MalformedManifestError(f"the runs end at {end}, not at the tree size {self.size}")

    def to_text(self) -> str:
        """The note text; ``Manifest.parse(m.to_text()) == m``."""
        lines = [MANIFEST_HEADER, self.origin, str(self.size), encode_b64(self.root)]
        lines += [f"{r.a} {r.b} {r.bits} {encode_b64(r.root)}" for r in self.runs]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Manifest:
        """Parse a manifest text strictly (canonical decimals and base64, single spaces, the
        partition). Raises :class:`MalformedManifestError`."""
        if not text.endswith("\n"):
            raise MalformedManifestError("a manifest text ends with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 4 or lines[0] != MANIFEST_HEADER:
            raise MalformedManifestError(f"a manifest starts with {MANIFEST_HEADER!r} and 3 lines")
        origin, size_line, root_line, *run_lines = lines[1:]
        size = _number(size_line, "tree size")
        root = _hash(root_line, "root hash")
        runs = []
        for n, line in enumerate(run_lines):
            parts = line.split(" ")
            if len(parts) != 4:
                raise MalformedManifestError(f"run line {n + 1} is not '<a> <b> <bits> <root>'")
            a = _number(parts[0], f"run line {n + 1} start")
            b = _number(parts[1], f"run line {n + 1} end")
            bits = _number(parts[2], f"run line {n + 1} bits", MAX_BITS)
            run_root = _hash(parts[3], f"run line {n + 1} root")
            try:
                runs.append(RunRef(a, b, bits, run_root))
            except FormatError as err:
                raise MalformedManifestError(f"run line {n + 1}: {err}") from err
        return cls(origin, size, root, tuple(runs))

    def sign(self, signer: NoteSigner) -> bytes:
        """The signed note bytes (the log's key; its name is the origin, docs/index.md)."""
        return sign_note(self.to_text(), [signer]).to_bytes()

    @classmethod
    def open(cls, data: bytes, verifiers: Sequence[NoteVerifier], origin: str) -> Manifest:
        """Verify a signed manifest of log ``origin``: a signature from one of ``verifiers``
        must verify (:mod:`stelae.tiles.note` errors otherwise), the text must be a manifest
        (:class:`MalformedManifestError`) of that origin (:class:`ManifestMismatchError`)."""
        verified = open_note(data, verifiers)
        manifest = cls.parse(verified.text)
        if manifest.origin != origin:
            raise ManifestMismatchError("origin", origin, manifest.origin)
        return manifest

    def check_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Raise :class:`ManifestMismatchError` unless this manifest is for ``checkpoint``:
        the same origin, size and root."""
        for field, expected, actual in (
            ("origin", checkpoint.origin, self.origin),
            ("size", checkpoint.size, self.size),
            ("root", checkpoint.root_hash.hex(), self.root.hex()),
        ):
            if expected != actual:
                raise ManifestMismatchError(field, expected, actual)

    def run_for(self, index: int) -> RunRef:
        """The run covering log ``index`` (``ValueError`` if it is not below ``size``)."""
        lo, hi = 0, len(self.runs)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.runs[mid].b <= index:
                lo = mid + 1
            else:
                hi = mid
        if lo == len(self.runs) or index < 0:
            raise ValueError(f"index {index} is not below the manifest's size {self.size}")
        return self.runs[lo]
