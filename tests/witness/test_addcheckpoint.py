"""The tlog-witness wire formats (https://c2sp.org/tlog-witness@v1.0.0), the logs/v0 log list
and the per-log rate limit, without a server."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stelae.tiles.addcheckpoint import (
    AddCheckpointRequest,
    MalformedWitnessMessageError,
    format_size_body,
    parse_signature_lines,
    parse_size_body,
)
from stelae.tiles.errors import FormatError
from stelae.tiles.mldsa import MLDSA44CosignatureSigner
from stelae.tiles.notekeys import Ed25519CosignatureSigner, Ed25519NoteSigner
from stelae.witness.loglist import LogList, MalformedLogListError
from stelae.witness.protocol import Witness
from stelae.witness.ratelimit import RateLimiter
from stelae.witness.state import WitnessState
from tests.support.witness import MemoryTree, log_list

SPEC_EXAMPLE = b"""old 20852014
PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=
jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=
5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=
/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=

example.com/behind-the-sofa
20852163
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

\xe2\x80\x94 example.com/behind-the-sofa \
Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=
"""


def test_the_spec_example_request_parses_and_round_trips() -> None:
    req = AddCheckpointRequest.parse(SPEC_EXAMPLE)
    assert req.old_size == 20852014
    assert len(req.proof) == 4
    assert req.proof[0] == base64.b64decode("PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=")
    assert req.checkpoint.startswith(b"example.com/behind-the-sofa\n20852163\n")
    assert req.to_bytes() == SPEC_EXAMPLE
    assert AddCheckpointRequest.parse(req.to_bytes()) == req
    empty = AddCheckpointRequest(0, (), b"note\n")
    assert empty.to_bytes() == b"old 0\n\nnote\n"
    assert AddCheckpointRequest.parse(empty.to_bytes()) == empty


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"old 1\n", "no blank line"),
        (b"new 1\n\nx", "not 'old <size>'"),
        (b"old 01\n\nx", "not a canonical"),
        (b"old -1\n\nx", "not a canonical"),
        (b"old 99999999999999999999\n\nx", "old size"),
        (b"old 1\nAAAA\n\nx", "not a hash"),
        (b"old 1\n!!!!\n\nx", "not base64"),
        (b"old 1\n" + b"B" * 43 + b"=\n\nx", "not a hash"),  # non-canonical padding bits
        (b"old 1\n" + (base64.b64encode(bytes(32)) + b"\n") * 64 + b"\nx", "more than 63"),
        (b"old \xff\n\nx", "not ASCII"),
    ],
)
def test_malformed_requests_are_refused(body: bytes, message: str) -> None:
    with pytest.raises(MalformedWitnessMessageError, match=message):
        AddCheckpointRequest.parse(body)


def test_size_bodies() -> None:
    assert format_size_body(12) == b"12\n"
    assert parse_size_body(b"12\n") == 12
    for bad in (b"12", b"012\n", b"x\n", b"\n"):
        with pytest.raises(MalformedWitnessMessageError):
            parse_size_body(bad)


def test_signature_lines_parse_as_a_note() -> None:
    cosigner = Ed25519CosignatureSigner("w.example", bytes(32), lambda: 5)
    text = "o\n1\n" + base64.b64encode(bytes(32)).decode() + "\n"
    line = cosigner.sign(text)
    assert parse_signature_lines(text, line.to_line().encode()) == (line,)
    with pytest.raises(MalformedWitnessMessageError):
        parse_signature_lines(text, b"")
    with pytest.raises(ValueError, match="not a signature line"):
        parse_signature_lines(text, b"garbage\n")


A = Ed25519NoteSigner("a.example/log", bytes([1]) * 32)
B = Ed25519NoteSigner("b.example/log", bytes([2]) * 32)


def test_log_lists_in_both_published_layouts() -> None:
    old_layout = f"""#
# comment
logs/v0

vkey {A.vkey}
qpd 86400
contact a (at) example

# another
vkey {B.vkey}
origin b.example/other-origin
bastion none
qpd 24
contact b
""".encode()
    logs = LogList.parse(old_layout)
    assert sorted(logs.logs) == ["a.example/log", "b.example/other-origin"]
    assert logs.logs["b.example/other-origin"].qpd == 24
    assert logs.logs["a.example/log"].contact == "a (at) example"
    new_layout = f"logs/v0\nrevision 2\n\norigin {A.name}\nvkey {A.vkey}\nbastion none\nqpd 1\n"
    assert LogList.parse(new_layout.encode()).logs[A.name].qpd == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("vkey x\n", "expected 'logs/v0' first"),
        ("# only comments\n", "no 'logs/v0' line"),
        (f"logs/v0\nvkey {A.vkey}\n", "no 'qpd' line"),
        (f"logs/v0\nvkey {A.vkey}\nqpd many\n", "qpd 'many'"),
        (f"logs/v0\nvkey {A.vkey}\nqpd 1\nqpd 2\n", "a second 'qpd'"),
        ("logs/v0\nqpd 1\n", "'qpd' before any 'vkey'"),
        (f"logs/v0\nvkey {A.vkey}\nqpd 1\nvkey {A.vkey}\nqpd 1\n", "listed twice"),
        ("logs/v0\nvkey nope\nqpd 1\n", "bad vkey"),
        (f"logs/v0\nvkey {A.vkey}\nqpd 1\nfrobnicate 1\n", "unknown keyword"),
        (
            f"logs/v0\nvkey {Ed25519CosignatureSigner('w', bytes(32)).vkey}\nqpd 1\n",
            "cannot sign checkpoints",
        ),
    ],
)
def test_bad_log_lists_name_the_problem(data: str, message: str) -> None:
    with pytest.raises(MalformedLogListError, match=message):
        LogList.parse(data.encode())


def test_rate_limit_refills_at_qpd_per_day() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert limiter.allow("log", 24)  # a bucket of one
    assert not limiter.allow("log", 24)
    now[0] += 3600  # one request an hour
    assert limiter.allow("log", 24)
    assert not limiter.allow("log", 24)
    burst = [limiter.allow("busy", 86400) for _ in range(61)]  # a minute's worth
    assert burst.count(True) == 60
    assert limiter.allow("other", 24)  # budgets are per log


def test_an_ml_dsa_witness_refuses_origins_it_cannot_sign(tmp_path: Path) -> None:
    long_origin = "o" * 256
    logs = LogList.parse(f"logs/v0\nvkey {A.vkey}\norigin {long_origin}\nqpd 1\n".encode())
    signer = MLDSA44CosignatureSigner("w.example/pq", bytes(32))
    with pytest.raises(FormatError, match="over 255 bytes"):
        Witness(signer, logs, WitnessState(tmp_path))
    Witness(Ed25519CosignatureSigner("w.example", bytes(32)), logs, WitnessState(tmp_path))


def test_mangled_requests_get_a_4xx_never_an_exception(tmp_path: Path) -> None:
    """Truncations, bit flips and byte insertions of a valid request (in process, against the
    real protocol handler): every answer is a status the spec names, nothing raises."""
    tree = MemoryTree().grow(9)
    logs = LogList.parse(log_list((tree.signer.vkey, 10**9)))
    witness = Witness(
        Ed25519CosignatureSigner("w.example", bytes(32)), logs, WitnessState(tmp_path)
    )
    assert witness.add_checkpoint(tree.request(0, 4)).status == 200
    valid = tree.request(4, 9)

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.integers(0, len(valid) - 1), st.integers(0, 255), st.sampled_from("tfi"))
    def mangle(at: int, byte: int, how: str) -> None:
        if how == "t":
            body = valid[:at]
        elif how == "f":
            body = valid[:at] + bytes([valid[at] ^ (byte or 1)]) + valid[at + 1 :]
        else:
            body = valid[:at] + bytes([byte]) + valid[at:]
        answer = witness.add_checkpoint(body)
        assert answer.status in (200, 400, 403, 404, 409, 422), answer

    mangle()
    # Whatever got through, the witness holds one of the log's two real trees.
    with witness.state.locked(tree.signer.name) as record:
        assert record.checkpoint in (tree.checkpoint(4), tree.checkpoint(9))
