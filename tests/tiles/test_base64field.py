"""tiles/base64field: the one canonical base64 spelling the proof file, lookup proof and index
manifest read and write."""

from __future__ import annotations

import pytest

from stelae.tiles.base64field import decode_b64, encode_b64
from stelae.tiles.errors import FormatError
from stelae.tiles.indexproof import MalformedLookupProofError
from stelae.tiles.proofbundle import MalformedProofError


@pytest.mark.parametrize("data", [b"", b"\x00", b"ab", b"abc", bytes(range(256))])
def test_round_trip(data: bytes) -> None:
    assert decode_b64(encode_b64(data), "value") == data


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (None, "value is not a base64 string"),
        (b"AAAA", "value is not a base64 string"),
        ("AA", "value is not base64: "),  # padding missing
        ("AA-_", "value is not base64: "),  # URL-safe alphabet
        ("A A=", "value is not base64: "),
        ("é===", "value is not base64: "),  # not ASCII
        ("AB==", "value is not canonical base64"),  # stray bits in the last character
    ],
)
def test_refuses_every_other_spelling(value: object, problem: str) -> None:
    with pytest.raises(FormatError) as caught:
        decode_b64(value, "value")
    assert str(caught.value).startswith(problem)


@pytest.mark.parametrize("error", [MalformedProofError, MalformedLookupProofError])
def test_raises_the_callers_error(error: type[FormatError]) -> None:
    with pytest.raises(error, match=r"^hash 3 is not canonical base64$"):
        decode_b64("AB==", "hash 3", error)
