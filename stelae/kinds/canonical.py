"""RFC 8785 (JCS) canonical bodies: the bytes that become Merkle leaves.

The leaf is exactly the canonical JSON body of the entry, as Rekor does it (its entry types
canonicalize with RFC 8785 before hashing: https://github.com/sigstore/rekor), so the Rekor
"UUID" is the hex of SHA-256(0x00 || body). A body over 65,535 bytes cannot be stored in an
entry bundle (uint16 length prefix) and is refused, never truncated.

rfc8785 is pure Python and costs ~30 µs per body. For :func:`plain_json` values — every body the
kinds build, since their strings are base64, hex and names — RFC 8785 provably produces what the C
``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` does, so those take
that path (~10 µs); anything else (numbers beyond small integers, non-ASCII text, other types)
goes to rfc8785 as before. tests/kinds/test_kinds_fastpath.py compares the two on generated values.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

import rfc8785

from stelae.kinds.errors import InvalidEntryError

#: Largest canonical body a log accepts: entry bundles prefix each entry with a uint16 length.
MAX_BODY_SIZE = 65_535

#: Largest JSON request the write API should hand to :func:`load_json` (a Lambda payload is 6 MB;
#: the biggest legitimate request is a ``rekord`` carrying its artifact).
MAX_REQUEST_SIZE = 24 * 1024 * 1024


#: RFC 8785 writes integers only in this range (IEEE 754 doubles hold them exactly).
_INT_MIN, _INT_MAX = -(2**53) + 1, 2**53 - 1


def plain_json(obj: object) -> bool:
    """Whether ``obj`` is in the subset where RFC 8785 and sorted, compact ``json.dumps`` agree.

    That is: ``dict`` (exactly; str keys), ``list``, ``None``, ``True``, ``False``, ``int``
    (exactly) within ±(2**53 - 1), and ``str`` of printable ASCII, nested to any depth. Why they
    agree there (RFC 8785 §3.2): keys are sorted by UTF-16 code units, which for ASCII is code
    point order, Python's; such strings need escaping only for ``"`` and ``\\``, which both write
    as ``\\"`` and ``\\\\``; integers in range are their decimal digits in both; no floats. Outside
    it they differ or may (``1.0``, astral-plane keys, lone surrogates, ``2**53``), or json.dumps
    would accept what RFC 8785 refuses (tuples, non-str keys).
    """
    # Dicts first and their string values inline: bodies are dicts of strings, and this runs on
    # every body the log writes.
    if type(obj) is dict:
        for key, value in obj.items():
            if type(key) is not str or not (key.isascii() and key.isprintable()):
                return False
            if type(value) is str:
                if not (value.isascii() and value.isprintable()):
                    return False
            elif not plain_json(value):
                return False
        return True
    if type(obj) is list:
        # A loop, not all(): one frame per level, as rfc8785 takes, so as deep a value fits.
        for item in obj:  # noqa: SIM110
            if not plain_json(item):
                return False
        return True
    # The leaves, in one expression and most frequent first.
    return (
        (type(obj) is str and obj.isascii() and obj.isprintable())
        or (type(obj) is int and _INT_MIN <= obj <= _INT_MAX)
        or obj is None
        or obj is True
        or obj is False
    )


def jcs(obj: object) -> bytes:
    """The RFC 8785 bytes of ``obj``; raises what ``rfc8785.dumps`` raises for what it refuses."""
    try:
        if plain_json(obj):
            return json.dumps(
                obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False
            ).encode("ascii")
    except RecursionError:
        pass  # nested deeper than the shortcut reaches: rfc8785 decides, as it always did
    out: bytes = rfc8785.dumps(obj)  # type: ignore[arg-type]
    return out


def canonicalize(obj: dict[str, Any]) -> bytes:
    """The RFC 8785 bytes of ``obj``; refuses a result over :data:`MAX_BODY_SIZE`."""
    try:
        body = jcs(obj)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as err:
        raise InvalidEntryError("", f"cannot canonicalize entry: {err}") from err
    check_body_size(body)
    return body


def check_body_size(body: bytes) -> None:
    """Refuse a canonical body that does not fit an entry bundle record."""
    if len(body) > MAX_BODY_SIZE:
        raise InvalidEntryError(
            "",
            f"canonical entry body is {len(body)} bytes; the log stores at most {MAX_BODY_SIZE}",
            hint="entries are never truncated; use a smaller key, certificate or signature",
        )


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)  # in C; the common case, no duplicates, needs nothing more
    if len(out) == len(pairs):
        return out
    out = {}
    for key, value in pairs:
        if key in out:
            raise InvalidEntryError(key, "duplicate JSON object key")
        out[key] = value
    return out


def _no_constant(name: str) -> object:
    raise InvalidEntryError("", f"{name} is not JSON")


def _number_text(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:12]}…{text[-6:]} ({len(text)} characters)"


#: Digits of 2**53 - 1: an integer written with more cannot be in range, and is refused before
#: int() sees it (CPython refuses over 4,300 digits with a ValueError, and is quadratic below).
_INT_DIGITS = len(str(_INT_MAX))


def _bounded_int(text: str) -> int:
    """An integer an entry can hold: RFC 8785 §3.2.2.3 writes numbers as IEEE 754 doubles, so
    only ±(2**53 - 1) survives canonicalization exactly (I-JSON, RFC 7493 §2.2)."""
    digits = len(text) - (text[0] == "-")
    value = int(text) if digits <= _INT_DIGITS else None
    if value is None or not _INT_MIN <= value <= _INT_MAX:
        raise InvalidEntryError(
            "",
            f"JSON number {_number_text(text)} is not a safe integer: outside ±(2**53 - 1), "
            "which an entry can hold",
        )
    return value


def _finite_float(text: str) -> float:
    value = float(text)  # never raises on JSON's number grammar; overflows to ±inf instead
    if not math.isfinite(value):
        raise InvalidEntryError(
            "",
            f"JSON number {_number_text(text)} is not representable: it overflows a double "
            "(RFC 8785 §3.2.2.3)",
        )
    return value


#: Built once: json.loads with hooks builds a decoder per call (~2 µs). Sharing one between
#: threads is safe (json.loads shares its default one): the C scanner's only state between calls
#: is a key-interning memo, which another thread clearing mid-parse cannot corrupt. Numbers are
#: checked as they are parsed, so an out-of-range one is a 400 naming it wherever it appears.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_no_duplicates,
    parse_constant=_no_constant,
    parse_int=_bounded_int,
    parse_float=_finite_float,
)


#: Deepest nesting of arrays and objects a request may have. Every request shape the log knows
#: nests under ten levels; the bound keeps the code that walks a parsed request recursively
#: (name mapping, schema checks, canonicalization) far from Python's recursion limit, where a
#: RecursionError would otherwise escape as a 500.
MAX_DEPTH = 64


def _check_depth(obj: object, text: str) -> None:
    # A value cannot nest deeper than it has brackets; counting them (in C) skips the walk for
    # every ordinary request. Brackets inside strings only make the count larger.
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return
    stack: list[tuple[object, int]] = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Iterable[object] = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > MAX_DEPTH:
            raise InvalidEntryError("", f"JSON nested too deeply: over {MAX_DEPTH} levels")
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


def load_json(raw: bytes | str, *, limit: int = MAX_REQUEST_SIZE) -> object:
    """Parse a JSON request strictly: bounded size, UTF-8, no duplicate keys, no NaN/Infinity,
    numbers an entry can hold, at most :data:`MAX_DEPTH` levels of nesting.

    The size is checked before anything is parsed, so a huge request costs nothing.
    """
    if len(raw) > limit:
        raise InvalidEntryError("", f"request is {len(raw)} bytes; at most {limit} are accepted")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise InvalidEntryError("", f"request is not UTF-8: {err}") from err
    try:
        if raw.startswith("\ufeff"):  # what json.loads checks before it decodes
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", raw, 0)
        obj: object = _DECODER.decode(raw)
    except json.JSONDecodeError as err:
        raise InvalidEntryError("", f"not valid JSON: {err}") from err
    except RecursionError as err:
        raise InvalidEntryError("", "JSON nested too deeply") from err
    _check_depth(obj, raw)
    return obj


def parse_canonical(body: bytes) -> dict[str, Any]:
    """Parse a stored body and insist it is already canonical (what the log would have written).

    A body that parses but is not byte-identical to its own RFC 8785 form is refused: it could not
    have been produced by a conforming log, and its leaf hash would not be reproducible.
    """
    check_body_size(body)
    obj = load_json(body, limit=MAX_BODY_SIZE)
    if not isinstance(obj, dict):
        raise InvalidEntryError("", "entry body must be a JSON object")
    try:
        canonical = jcs(obj)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError, RecursionError) as err:
        # A number outside I-JSON's range or a lone surrogate: no conforming log wrote it.
        raise InvalidEntryError("", f"entry body cannot be RFC 8785 canonical: {err}") from err
    if canonical != body:
        raise InvalidEntryError("", "entry body is not RFC 8785 canonical JSON")
    return obj
