"""AwsConfig.from_env: the write function's waiting settings (stelae/sequencer/aws.py)."""

from __future__ import annotations

import pytest

from stelae.sequencer.aws import AwsConfig
from stelae.tiles.errors import FormatError
from stelae.tiles.notekeys import Ed25519NoteSigner

BASE = {
    "STELAE_BUCKET": "b",
    "STELAE_QUEUE_URL": "http://127.0.0.1:9/q",
    "STELAE_VKEY": Ed25519NoteSigner.generate("config.example").vkey,
}


def test_wait_zero_is_an_asynchronous_log() -> None:
    """write_wait_seconds = 0 (the module accepts it): every new entry answered 202 at once."""
    cfg = AwsConfig.from_env({**BASE, "STELAE_WAIT_SECONDS": "0"})
    assert cfg.wait_seconds == 0.0


def test_the_first_look_is_what_the_module_sets() -> None:
    cfg = AwsConfig.from_env({**BASE, "STELAE_POLL_AFTER_SECONDS": "1.5"})
    assert (cfg.poll_after_seconds, cfg.wait_seconds) == (1.5, 20.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STELAE_WAIT_SECONDS", "-1"),
        ("STELAE_POLL_AFTER_SECONDS", "-0.1"),
        ("STELAE_WAIT_SECONDS", "soon"),
    ],
)
def test_a_bad_wait_setting_is_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(FormatError, match=name):
        AwsConfig.from_env({**BASE, name: value})


def test_the_drain_loop_batches_default_to_the_module_defaults() -> None:
    cfg = AwsConfig.from_env(BASE)
    assert (cfg.batch_size, cfg.batch_window_seconds) == (256, 1.0)
    cfg = AwsConfig.from_env(
        {**BASE, "STELAE_BATCH_SIZE": "10000", "STELAE_BATCH_WINDOW_SECONDS": "0.25"}
    )
    assert (cfg.batch_size, cfg.batch_window_seconds) == (10000, 0.25)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STELAE_BATCH_SIZE", "0"),
        ("STELAE_BATCH_SIZE", "10001"),
        ("STELAE_BATCH_SIZE", "1.5"),
        ("STELAE_BATCH_SIZE", "-3"),
        ("STELAE_BATCH_SIZE", "\u00b2"),  # a digit to str.isdigit, not to int()
        ("STELAE_BATCH_SIZE", ""),
        ("STELAE_BATCH_WINDOW_SECONDS", "0"),
        ("STELAE_BATCH_WINDOW_SECONDS", "-1"),
        ("STELAE_BATCH_WINDOW_SECONDS", "300.5"),
        ("STELAE_BATCH_WINDOW_SECONDS", "nan"),
        ("STELAE_BATCH_WINDOW_SECONDS", "inf"),
        ("STELAE_BATCH_WINDOW_SECONDS", "soon"),
    ],
)
def test_a_bad_batch_setting_is_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(FormatError, match=name):
        AwsConfig.from_env({**BASE, name: value})
