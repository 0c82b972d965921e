"""Numbers in untrusted text are ASCII decimal only.

Python's ``int()``, ``str.isdigit()`` and the regex ``\\d`` all accept every Unicode decimal digit
(Arabic-Indic ``٠``, fullwidth ``１``, Devanagari ``१``…), so ``int("٠٠١") == 1``. A path, a size or
a header that a client or a store hands us must use the ASCII digits 0-9 only, or one object would
have several names and a canonical format would stop being canonical.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from stelae.tiles.audit import AuditState
from stelae.tiles.checkpoint import Checkpoint
from stelae.tiles.decimals import parse_decimal
from stelae.tiles.errors import FormatError
from stelae.tiles.layout import TileID, decode_index
from tests.support.cli import run_stelae

# Decimal digits outside ASCII that int() and \d accept: Arabic-Indic, fullwidth, Devanagari.
FOREIGN = ["٠٠١", "００１", "००१", "1٢", "１"]


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/٠٠١",
        "tile/0/００１",
        "tile/٠/001",
        "tile/0/x٠٠١/000",
        "tile/0/001.p/٧",
        "tile/entries/००१",
        "tile/entries/001.p/１",
    ],
)
def test_tile_paths_with_non_ascii_digits_are_refused(path: str) -> None:
    with pytest.raises(FormatError):
        TileID.parse(path)


def test_decode_index_refuses_non_ascii_groups() -> None:
    with pytest.raises(FormatError):
        decode_index(["x٠٠١", "000"])


@pytest.mark.parametrize("size", ["٣", "１２", "1٠"])
def test_checkpoint_size_with_non_ascii_digits_is_refused(size: str) -> None:
    root = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    with pytest.raises(FormatError):
        Checkpoint.parse(f"example.org/log\n{size}\n{root}\n")


def test_audit_state_level_with_non_ascii_digits_is_refused() -> None:
    tile = base64.b64encode(bytes(32)).decode()
    assert AuditState.from_json({"size": 1, "tiles": {"0": tile}}).size == 1
    with pytest.raises(FormatError):
        AuditState.from_json({"size": 1, "tiles": {"٠": tile}})


@pytest.mark.parametrize(
    ("text", "want"),
    [("0", 0), ("7", 7), ("255", 255), ("18446744073709551615", 2**64 - 1)],
)
def test_parse_decimal_accepts_canonical_ascii(text: str, want: int) -> None:
    assert parse_decimal(text, "n") == want


@pytest.mark.parametrize(
    "text",
    [
        *FOREIGN,
        "",
        "01",
        "00",
        "+1",
        "-1",
        " 1",
        "1 ",
        "1\n",
        "1_000",
        "0x10",
        "18446744073709551616",
    ],
)
def test_parse_decimal_refuses(text: str) -> None:
    with pytest.raises(FormatError) as info:
        parse_decimal(text, "tree size")
    assert "tree size" in str(info.value)


def test_parse_decimal_width_allows_leading_zeros_but_only_ascii() -> None:
    assert parse_decimal("007", "group", width=3) == 7
    for bad in ["07", "0007", "٠٠٧", "x07"]:
        with pytest.raises(FormatError):
            parse_decimal(bad, "group", width=3)


def test_parse_decimal_maximum() -> None:
    assert parse_decimal("63", "level", maximum=63) == 63
    with pytest.raises(FormatError, match="level"):
        parse_decimal("64", "level", maximum=63)


def test_parse_decimal_refuses_huge_input_quickly() -> None:
    # int() on a 100,000-digit string is slow (and over 4,300 digits refused with a ValueError
    # that is not a FormatError); the length is checked before any conversion.
    with pytest.raises(FormatError):
        parse_decimal("9" * 100_000, "n")


def test_serve_refuses_a_port_in_non_ascii_digits(tmp_path: Path) -> None:
    # Run as the user would; the check must happen before the log directory is created.
    data = tmp_path / "data"
    proc = run_stelae("serve", "--data", str(data), "--listen", "127.0.0.1:８０")
    assert proc.returncode == 2, proc.stderr
    assert "is not HOST:PORT" in proc.stderr
    assert not data.exists()


# --- numbers that int() cannot even convert -------------------------------------------------
# int() refuses strings over 4,300 digits with a plain ValueError; every parser must turn that
# into its own FormatError (a 400), never let it escape (a 500 from the witness server).

HUGE = "9" * 5000


def test_add_checkpoint_request_with_a_huge_old_size_is_a_format_error() -> None:
    from stelae.tiles.addcheckpoint import AddCheckpointRequest, parse_size_body

    with pytest.raises(FormatError, match="old size"):
        AddCheckpointRequest.parse(f"old {HUGE}\n\nlog.example\n1\nAA==\n".encode())
    with pytest.raises(FormatError, match="old size"):
        AddCheckpointRequest.parse(b"old 01\n\nlog.example\n1\nAA==\n")
    with pytest.raises(FormatError):
        parse_size_body(f"{HUGE}\n".encode())
    assert parse_size_body(b"42\n") == 42


def test_log_list_with_a_huge_qpd_is_a_format_error() -> None:
    from stelae.tiles.notekeys import Ed25519NoteSigner
    from stelae.witness.loglist import LogList

    vkey = Ed25519NoteSigner.generate("log.example").vkey
    assert LogList.parse(f"logs/v0\nvkey {vkey}\nqpd 24\n".encode())
    with pytest.raises(FormatError, match="qpd"):
        LogList.parse(f"logs/v0\nvkey {vkey}\nqpd {HUGE}\n".encode())


def test_policy_with_a_huge_group_threshold_is_a_format_error() -> None:
    from stelae.tiles.notekeys import Ed25519CosignatureSigner, Ed25519NoteSigner, verifier_to_vkey
    from stelae.tiles.policy import Policy

    log_vkey = Ed25519NoteSigner.generate("log.example").vkey
    witness = Ed25519CosignatureSigner("w1.example", bytes(32), lambda: 0)
    w_vkey = verifier_to_vkey(witness.verifier)
    good = f"log {log_vkey}\nwitness w1 {w_vkey}\ngroup g 1 w1\nquorum g\n"
    assert Policy.parse(good.encode())
    with pytest.raises(FormatError, match="threshold"):
        Policy.parse(good.replace("group g 1 w1", f"group g {HUGE} w1").encode())
