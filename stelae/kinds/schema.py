"""JSON Schema (Draft 2020-12) validation that reports the offending field as a JSON path.

Each kind declares its schemas as plain dicts beside its code; every object schema says
``additionalProperties: false``. jsonschema's own messages quote whole sub-objects, so the first
(best) error is rewritten into a short sentence about one field.

jsonschema is the authority, but walking a request with it costs ~70 µs, more than the rest of a
write put together. So each schema is also compiled with fastjsonschema (Python code generated
from the same schema: ~5 µs), and an instance the compiled check passes is done. Anything else —
a compiled refusal or an error inside it — goes to jsonschema, which decides and words the error.
That is only sound if the compiled check never passes what jsonschema refuses, which holds for
JSON values (what :func:`stelae.kinds.load_json` returns) and the keywords in
:data:`COMPILED_KEYWORDS`; a schema using any other keyword is checked by jsonschema alone.
tests/kinds/test_kinds_fastpath.py checks the two against each other on generated instances.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import fastjsonschema

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
    "null": "null",
}


def b64_string(max_length: int, *, proto: bool = False) -> dict[str, Any]:
    """Schema of a non-empty base64 string of at most ``max_length`` characters."""
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": max_length,
        "pattern": B64_PROTO if proto else B64,
    }


def closed_object(
    properties: dict[str, Any], required: Iterable[str] | None = None
) -> dict[str, Any]:
    """Schema of a JSON object holding only ``properties`` (every object here is closed, see the
    module docstring). ``required`` names those that must be present: all of them, in order,
    when omitted."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(properties if required is None else required),
        "properties": properties,
    }


def sha256_hash() -> dict[str, Any]:
    """Rekor v1's hash object, ``{"algorithm": "sha256", "value": <64 lowercase hex digits>}``."""
    return closed_object(
        {
            "algorithm": {"const": "sha256"},
            "value": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        }
    )


def entry_body(kind: str, api_version: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Schema of a stored Rekor entry body, ``{"apiVersion", "kind", "spec"}``: the envelope every
    kind and version shares (https://github.com/sigstore/rekor, ``pkg/types``)."""
    return closed_object(
        {"apiVersion": {"const": api_version}, "kind": {"const": kind}, "spec": spec}
    )


def join_path(parts: Iterable[str | int]) -> str:
    """``["spec", "signatures", 0, "sig"]`` -> ``"spec.signatures[0].sig"``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else part
    return out


#: Keywords that fastjsonschema (its Draft 2019-09 generator, which it uses for a schema without
#: ``$schema``) reads as Draft 2020-12 does, or more strictly, on JSON values: ``pattern`` becomes
#: ``\Z``-anchored where Python's ``$`` also matches before a final newline, ``integer`` excludes
#: integral floats such as ``5.0``. (It would take a tuple for an ``array``, where jsonschema
#: wants a list; JSON has no tuples.) ``items`` must be one schema, ``additionalProperties`` a
#: boolean or a schema.
COMPILED_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "additionalProperties",
        "required",
        "enum",
        "const",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "items",
    }
)


def compilable(schema: object) -> bool:
    """Whether ``schema`` uses only :data:`COMPILED_KEYWORDS`, in the forms they are safe in."""
    if not isinstance(schema, Mapping):
        return False
    for keyword, value in schema.items():
        if keyword not in COMPILED_KEYWORDS:
            return False
        subschemas: list[object] = []
        if keyword == "properties":
            subschemas = list(value.values())
        elif keyword == "items" or (
            keyword == "additionalProperties" and not isinstance(value, bool)
        ):
            subschemas = [value]
        if not all(compilable(sub) for sub in subschemas):
            return False
    return True


class Schema:
    """A schema whose :meth:`validate` raises :class:`InvalidEntryError`.

    Thread-safe: the compiled check is built on first use; two threads that race to build it each
    get an equivalent one.
    """

    def __init__(self, schema: Mapping[str, Any], *, root: str = "") -> None:
        #: The JSON Schema both validators use: a private copy, so they cannot drift apart if a
        #: caller later changes the dict it passed (the kinds' schema constants are public).
        self.schema: dict[str, Any] = copy.deepcopy(dict(schema))
        Draft202012Validator.check_schema(self.schema)
        self._validator = Draft202012Validator(self.schema)
        self._root = root
        self._compilable = compilable(self.schema)
        self._compiled: Callable[[object], object] | None = None

    def validate(self, instance: object) -> None:
        """Refuse ``instance`` (a JSON value) unless it is valid, naming the (best) offending
        field. Valid means valid to jsonschema; see the module docstring for the compiled check.
        """
        if self.passes_compiled(instance):
            return
        error = best_match(self._validator.iter_errors(instance))
        if error is not None:
            field, problem = describe(error)
            raise InvalidEntryError(join_path([*_split(self._root), *_split(field)]), problem)

    def passes_compiled(self, instance: object) -> bool:
        """Whether the compiled check passes ``instance``; False when this schema has none.

        True implies jsonschema would pass it too; False decides nothing. Public so tests can
        hold the two validators against each other.
        """
        if not self._compilable:
            return False
        check = self._compiled
        if check is None:
            check = self._compiled = fastjsonschema.compile(
                self.schema, use_default=False, use_formats=False
            )
        try:
            check(instance)
        except Exception:  # a refusal and a crash alike defer to jsonschema, the authority
            return False
        return True

    def passes_jsonschema(self, instance: object) -> bool:
        """Whether jsonschema, the authority, passes ``instance``."""
        return bool(self._validator.is_valid(instance))


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
    problem = _PROBLEMS.get(validator) if isinstance(validator, str) else None
    if problem is not None:
        return join_path(path), problem(value, instance)
    return join_path(path), error.message[:200]


def _type_problem(value: Any, instance: Any) -> str:
    names = [value] if isinstance(value, str) else list(value)
    wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
    return f"must be {wanted}, not {_json_type(instance)}"


def _one_of_problem(options: Any, instance: Any) -> str:
    shown = ", ".join(repr(o) for o in options)
    return f"must be one of {shown}, not {_short(instance)}"


#: The readable problem for each jsonschema validator whose message needs only the schema's
#: value for it and the offending instance (``required`` and ``additionalProperties`` name a
#: field too, so :func:`describe` handles them itself).
_PROBLEMS: dict[str, Callable[[Any, Any], str]] = {
    "type": _type_problem,
    "enum": _one_of_problem,
    "const": lambda value, instance: _one_of_problem([value], instance),
    "maxLength": lambda value, instance: f"too long: {len(instance)} characters, at most {value}",
    "minLength": lambda value, _: "must not be empty" if value == 1 else f"shorter than {value}",
    "maxItems": lambda value, instance: f"too many items: {len(instance)}, at most {value}",
    "minItems": lambda value, _: f"needs at least {value} item(s)",
    "pattern": lambda value, _: _PATTERNS.get(value, f"does not match {value}"),
    "oneOf": lambda _v, _i: "must contain exactly one of the allowed alternatives",
    "anyOf": lambda _v, _i: "must contain exactly one of the allowed alternatives",
    "not": lambda _v, _i: "contains fields that cannot be used together",
}


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
