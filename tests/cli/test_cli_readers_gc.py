"""The reading commands over HTTP after the partial tiles and bundles they saw were collected:
``loginfo`` and ``monitor`` resume from a checkpoint whose partials are gone, ``logproof`` proves
growth from it, ``get`` and ``fsck`` still pass (https://c2sp.org/tlog-tiles: the full tile
stands in for a deleted partial)."""

from __future__ import annotations

from stelae.sequencer.collector import collect_all
from stelae.sequencer.local import LocalStore
from tests.cli.test_cli_read import Log, Served, Stelae

# The fixtures of test_cli_read, shared (the explicit re-export form keeps pytest finding them).
from tests.cli.test_cli_read import log as log  # noqa: PLC0414
from tests.cli.test_cli_read import served as served  # noqa: PLC0414
from tests.cli.test_cli_read import stelae as stelae  # noqa: PLC0414


def test_readers_resume_from_a_checkpoint_whose_partials_are_gone(
    log: Log, served: Served, stelae: Stelae
) -> None:
    log.add_json(3, batch=1)
    first: list[tuple[str, ...]] = [("loginfo",), ("monitor", "--once")]
    for command in first:
        proc = stelae(*command)
        assert proc.returncode == 0, proc.stderr
    assert "tile/entries/000.p/3" in served.bundles_requested()

    log.add_json(300, batch=250)  # sizes 253 and 303: tile 0 is full
    assert collect_all(LocalStore(log.root), log.size) == 2 * 255
    assert not (log.root / "tile/0/000.p").exists()
    served.requests.clear()

    commands: list[tuple[str, ...]] = [
        ("loginfo",),  # consistency with the remembered size 3
        ("monitor", "--once"),  # resumes its audit at size 3
        ("logproof", "--first-size", "3"),
        ("get", "--log-index", "2"),
        ("fsck",),
    ]
    for command in commands:
        proc = stelae(*command)
        assert proc.returncode == 0, (command, proc.stdout, proc.stderr)
    # Each read tiles at the newest size, where tile 0 is full: no collected partial was asked for.
    assert not [p for p in served.requests if p.startswith(("tile/0/000.p", "tile/entries/000.p"))]
