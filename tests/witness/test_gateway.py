"""The serverless witness's event adapter (stelae.witness.gateway) on events no API Gateway
request should produce but a direct invocation can: each is a 4xx naming the problem, never an
exception (which the Lambda runtime would turn into a 5xx)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stelae.tiles.notekeys import Ed25519CosignatureSigner
from stelae.witness.gateway import handle_event
from stelae.witness.loglist import LogList
from stelae.witness.protocol import Witness
from stelae.witness.state import WitnessState
from tests.support.witness import MemoryTree, log_list
from tests.support.witness_lambda import witness_event


def _witness(tmp_path: Path) -> Witness:
    logs = LogList.parse(log_list((MemoryTree().signer.vkey, 10**6)))
    return Witness(Ed25519CosignatureSigner("w.example", bytes(32)), logs, WitnessState(tmp_path))


@pytest.mark.parametrize(
    ("body", "encoded", "message"),
    [
        ("old 0\n\n\ud800", False, "not UTF-8"),  # a lone surrogate: JSON allows the escape
        ("b2xkIDA=\n", True, "marked base64 but is not"),
    ],
)
def test_a_body_that_is_not_bytes_is_a_400(
    tmp_path: Path, body: str, encoded: bool, message: str
) -> None:
    event: dict[str, Any] = witness_event("POST", "/add-checkpoint")
    event["body"], event["isBase64Encoded"] = body, encoded
    result = handle_event(_witness(tmp_path), event)
    assert result["statusCode"] == 400, result
    assert message in result["body"]
    assert not list((tmp_path / "logs").iterdir())  # nothing recorded
