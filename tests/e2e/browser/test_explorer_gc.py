"""The explorer's tile reader (stelae/explorer/tiles.js) in a real headless Chromium against a
``stelae serve`` log whose partial tiles were garbage-collected: holding an old checkpoint, it
meets a 404 for the partial tile and bundle, reads the full ones instead
(https://c2sp.org/tlog-tiles) and still verifies inclusion and consistency."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from stelae.sequencer.logdir import init_log
from stelae.sequencer.pending import PendingEntry
from stelae.tiles.checkpoint import open_checkpoint
from stelae.tiles.notekeys import parse_vkey
from tests.e2e.browser.chromium import Chromium, chromium_path
from tests.support.api import ORIGIN, ServeProcess, start_serve

pytestmark = pytest.mark.skipif(
    chromium_path() is None and not os.environ.get("CI"),
    reason="chromium is not installed (tests/e2e/browser/install.sh)",
)

# Holding checkpoint 3, read tile 0 and bundle 0 (gone at width 3), prove entry 2 in it and
# checkpoint 3's consistency with the current one, all with the page's own modules.
READ_OLD_CHECKPOINT = """
(async ([size, newSize, root, newRoot]) => {
  const V = await import(new URL("/explorer/verify.js", location.href));
  const T = await import(new URL("/explorer/tiles.js", location.href));
  const http = new T.LogFetcher(location.origin + "/");
  const missing = [];
  const fetcher = {
    get: async (path, options) => {
      try {
        return await http.get(path, options);
      } catch (err) {
        if (err instanceof T.NotFound) missing.push(path);
        throw err;
      }
    },
  };
  const reader = new T.TileReader(fetcher, BigInt(size));
  const entries = await reader.bundle(0n, BigInt(size));
  const leaf = await V.leafHash(entries[size - 1]);
  const proof = await reader.inclusionProof(BigInt(size - 1), BigInt(size));
  await V.verifyInclusion(BigInt(size - 1), BigInt(size), leaf, proof, V.fromHex(root));
  const latest = new T.TileReader(fetcher, BigInt(newSize));
  const cons = await latest.consistencyProof(BigInt(size), BigInt(newSize));
  const [a, b] = [BigInt(size), BigInt(newSize)];
  await V.verifyConsistency(a, b, cons, V.fromHex(root), V.fromHex(newRoot));
  return { entry: new TextDecoder().decode(entries[size - 1]), missing };
})
"""


@pytest.fixture
def collected(tmp_path: Path) -> Iterator[ServeProcess]:
    """A log grown in batches ending at 1, 2, 3, 250 and 300, collected by ``stelae serve
    --gc-grace 0`` (a clean stop deletes what is due), then served again."""
    data = tmp_path / "stelae-data"
    local, _ = init_log(data, ORIGIN)
    seq = local.sequencer()
    seq.published()
    start = 0
    for size in (1, 2, 3, 250, 300):
        seq.integrate([PendingEntry(f'{{"n":{i}}}'.encode()) for i in range(start, size)])
        start = size
    seq.close()
    local.store.flush()
    status, err = start_serve(data, "127.0.0.1:0", "--gc-grace", "0").terminate()
    assert status == 0, err
    assert not (data / "log/tile/0/000.p").exists()
    served = start_serve(data, "127.0.0.1:0", "--gc-grace", "off")
    try:
        yield served
    finally:
        status, err = served.terminate()
        assert status == 0, err


def test_the_page_reads_an_old_checkpoint_through_the_full_tile(
    collected: ServeProcess, tmp_path: Path
) -> None:
    log_dir = collected.log.log_dir
    verifier = parse_vkey(collected.log.vkey)
    old = open_checkpoint((log_dir / "checkpoints/3").read_bytes(), [verifier], ORIGIN).checkpoint
    new = open_checkpoint((log_dir / "checkpoint").read_bytes(), [verifier], ORIGIN).checkpoint
    browser = Chromium(tmp_path / "profile")
    try:
        browser.load(f"{collected.log.url}/explorer/verify.js")  # same origin as the modules
        args = [old.size, new.size, old.root_hash.hex(), new.root_hash.hex()]
        got = browser.evaluate(f"({READ_OLD_CHECKPOINT})({json.dumps(args)})")
    finally:
        browser.close()
    assert got["entry"] == '{"n":2}'
    # The partial tile and bundle of size 3 are gone: each was a 404, then the full one.
    assert "tile/0/000.p/3" in got["missing"] and "tile/entries/000.p/3" in got["missing"]
    assert all(".p/" in path for path in got["missing"])
