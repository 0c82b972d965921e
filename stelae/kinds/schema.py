"""JSON Schema (Draft 2020-12) validation that reports the offending field as a JSON path.

Each kind declares its schemas as plain dicts beside its code; every object schema says
``additionalProperties: false``. jsonschema's own messages quote whole sub-objects, so the first
(best) error is rewritten into a short sentence about one field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# types-jsonschema may or may not be installed; the ignore is harmless either way.
from jsonschema import Draft202012Validator  # type: ignore[import-untyped,unused-ignore]
from jsonschema.exceptions import (  # type: ignore[import-untyped,unused-ignore]
    ValidationError,
    best_match,
)

from stelae.kinds.errors import InvalidEntryError

#: Strict standard base64 with padding (what Rekor v1's strfmt.Base64 and protojson emit).
B64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
#: protojson also accepts URL-safe base64 and missing padding on input.
B64_PROTO = r"^[A-Za-z0-9+/_-]*={0,2}$"

#: Readable names of the patterns the kinds use.
_PATTERNS = {
    B64: "is not valid base64",
    B64_PROTO: "is not valid base64",
    r"^[A-Za-z0-9+/]*={0,2}$": "is not valid base64",
    r"^[A-Za-z0-9+/_-]*={0,2}$": "is not valid base64",
    "^[0-9a-f]+$": "must be lowercase hex",
    "^[0-9a-fA-F]+$": "must be hex",
    "^[0-9a-f]{64}$": "must be a SHA-256 digest in lowercase hex (64 digits)",
}

_TYPE_NAMES = {
    "string": "a string",
    "object": "a JSON object",
    "array": "a JSON array",
    "integer": "an integer",
    "boolean": "true or false",
    "number": "a number",
}


def b64_string(max_length: int, *, proto: bool = False) -> dict[str, Any]:
    """Schema of a non-empty base64 string of at most ``max_length`` characters."""
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": max_length,
        "pattern": B64_PROTO if proto else B64,
    }


def join_path(parts: Iterable[str | int]) -> str:
    """``["spec", "signatures", 0, "sig"]`` -> ``"spec.signatures[0].sig"``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else part
    return out


class Schema:
    """A compiled schema whose :meth:`validate` raises :class:`InvalidEntryError`."""

    def __init__(self, schema: Mapping[str, Any], *, root: str = "") -> None:
        Draft202012Validator.check_schema(schema)
        self._validator = Draft202012Validator(schema)
        self._root = root

    def validate(self, instance: object) -> None:
        error = best_match(self._validator.iter_errors(instance))
        if error is not None:
            field, problem = describe(error)
            raise InvalidEntryError(join_path([*_split(self._root), *_split(field)]), problem)


def _split(path: str) -> list[str | int]:
    return [path] if path else []


def describe(error: ValidationError) -> tuple[str, str]:
    """A (field path, readable problem) pair for one jsonschema error."""
    path: list[str | int] = list(error.absolute_path)
    validator = error.validator
    value: Any = error.validator_value
    instance: Any = error.instance
    if validator == "required":
        missing = [name for name in value if isinstance(instance, dict) and name not in instance]
        return join_path([*path, missing[0] if missing else "?"]), "required field is missing"
    if validator == "additionalProperties" and isinstance(instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(k for k in instance if k not in allowed)
        return join_path([*path, extra[0] if extra else "?"]), "unknown field"
    if validator == "type":
        names = [value] if isinstance(value, str) else list(value)
        wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        return join_path(path), f"must be {wanted}, not {_json_type(instance)}"
    if validator in ("enum", "const"):
        options = value if validator == "enum" else [value]
        shown = ", ".join(repr(o) for o in options)
        return join_path(path), f"must be one of {shown}, not {_short(instance)}"
    if validator == "maxLength":
        return join_path(path), f"too long: {len(instance)} characters, at most {value}"
    if validator == "minLength":
        return join_path(path), "must not be empty" if value == 1 else f"shorter than {value}"
    if validator == "maxItems":
        return join_path(path), f"too many items: {len(instance)}, at most {value}"
    if validator == "minItems":
        return join_path(path), f"needs at least {value} item(s)"
    if validator == "pattern":
        return join_path(path), _PATTERNS.get(value, f"does not match {value}")
    if validator in ("oneOf", "anyOf"):
        return join_path(path), "must contain exactly one of the allowed alternatives"
    if validator == "not":
        return join_path(path), "contains fields that cannot be used together"
    return join_path(path), error.message[:200]


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
