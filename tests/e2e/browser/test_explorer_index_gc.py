"""The explorer's search (stelae/explorer/search.js, index.js) in a real headless Chromium against
a log whose replaced lookup-index runs were garbage-collected (docs/index.md, "Garbage
collection"): a page left open on an old checkpoint meets a 404 for a run its manifest lists,
turns once to the latest checkpoint (verified with the trusted key, proved consistent from
tiles), and answers from it for the entries of the old one. A shard that does not verify there,
or a run gone there too, is still a failed search with a sentence. The entry view finds an
entry's batch record (its integrated time) through the same retry."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

import stelae.explorer
from stelae.sequencer.local import LocalStore
from stelae.server.explorer import FILES
from stelae.tiles.manifest import Manifest
from tests.e2e.browser.chromium import Chromium, chromium_path
from tests.e2e.browser.test_explorer import _CorsHandler
from tests.sequencer.test_collector import Clock
from tests.sequencer.test_index_gc import ORIGIN, SIGNER, _digest, _grow, _sequencer

pytestmark = pytest.mark.skipif(
    chromium_path() is None and not os.environ.get("CI"),
    reason="chromium is not installed (tests/e2e/browser/install.sh)",
)

HELD = 5  # the checkpoint the page holds
LATEST = 12


@pytest.fixture
def collected(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A log of LATEST single-entry batches collected with no grace period (only the runs the
    newest manifest lists, and the merge after it, remain), with the explorer's files beside it
    as on the CDN (``index.html``, ``explorer/<file>``), and the URL of a static server over it."""
    root = tmp_path / "log"
    clock = Clock()
    seq = _sequencer(LocalStore(root), clock, grace=0.0)
    seq.published()
    _grow(seq, clock, LATEST)
    seq.close()
    package = Path(stelae.explorer.__file__).parent
    (root / "explorer").mkdir()
    for name in FILES:
        shutil.copy(
            package / name, root / ("index.html" if name == "index.html" else f"explorer/{name}")
        )
    handler = functools.partial(_CorsHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _search(browser: Chromium, query: str) -> str:
    """Run a search in the open page (a hash change: the page keeps the checkpoint it holds)."""
    browser.evaluate(f"location.hash = {('#/search?q=' + quote(query, safe=''))!r}")
    return browser.wait_flag("searchVerified")


def test_a_page_holding_an_old_checkpoint_searches_at_the_latest(
    collected: tuple[Path, str], tmp_path: Path
) -> None:
    root, url = collected
    held = Manifest.open((root / f"index/manifest/{HELD}").read_bytes(), [SIGNER.verifier], ORIGIN)
    assert any(not (root / f"index/run/{r.a}-{r.b}").exists() for r in held.runs)
    latest = (root / "checkpoint").read_bytes()
    (root / "checkpoint").write_bytes((root / f"checkpoints/{HELD}").read_bytes())
    browser = Chromium(tmp_path / "profile")
    try:
        browser.load(f"{url}?vkey={quote(SIGNER.vkey, safe='')}#/search")
        assert browser.wait_flag("checkpointVerified") == "true"
        assert browser.wait_flag("treeSize") == str(HELD)
        browser.wait_flag("routed")
        (root / "checkpoint").write_bytes(latest)  # the log grew while the page stayed open

        # Entry 2 is found through the latest checkpoint's index and proved in the held one.
        assert _search(browser, f"sha256:{_digest(2)}") == "true"
        assert browser.wait_flag("searchHits") == "1"
        assert browser.wait_flag("searchComplete") == "true"
        assert browser.wait_flag("searchIndexSize") == str(LATEST)
        text = browser.text()
        assert f"lookup ran at the log's latest checkpoint (size {LATEST})" in text
        assert f"proved included in the checkpoint at size {HELD}" in text
        # Entry 8 is only in the latest tree: not an answer for the held checkpoint.
        assert _search(browser, f"sha256:{_digest(8)}") == "true"
        assert browser.wait_flag("searchHits") == "0"

        # A shard of the latest index that does not verify is not retried into success.
        shards = sorted((root / "index/run").glob("*/*"))
        saved = {p: p.read_bytes() for p in shards}
        for p, data in saved.items():
            p.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
        assert _search(browser, f"sha256:{_digest(3)}") == "false"
        assert "The verifiable lookup index failed verification" in browser.text()

        # A run gone at the latest checkpoint too: a failure, said as such.
        for p in shards:
            p.unlink()
        assert _search(browser, f"sha256:{_digest(4)}") == "false"
        text = browser.text()
        assert "The verifiable lookup index could not be read" in text
        assert f"at the latest checkpoint (size {LATEST}) too" in text
        assert browser.errors == []
    finally:
        browser.close()


def _entry(browser: Chromium, index: int) -> str:
    """Open an entry in the open page; the flag is cleared first, as the hash change is async."""
    browser.evaluate(
        f"delete document.body.dataset.inclusionVerified; location.hash = '#/entry/{index}'"
    )
    return browser.wait_flag("inclusionVerified")


def test_an_entry_of_an_old_checkpoint_shows_its_time_through_the_latest(
    collected: tuple[Path, str], tmp_path: Path
) -> None:
    """The entry view finds the batch record through the same retry (index.js, atOrLatest): the
    integrated time is shown once its SET verifies; a run gone at the latest too is said so."""
    root, url = collected
    held = Manifest.open((root / f"index/manifest/{HELD}").read_bytes(), [SIGNER.verifier], ORIGIN)
    run = next(r for r in held.runs if r.a <= 2 < r.b)
    assert not (root / f"index/run/{run.a}-{run.b}").exists()
    latest = (root / "checkpoint").read_bytes()
    (root / "checkpoint").write_bytes((root / f"checkpoints/{HELD}").read_bytes())
    browser = Chromium(tmp_path / "profile")
    try:
        browser.load(f"{url}?vkey={quote(SIGNER.vkey, safe='')}#/search")
        assert browser.wait_flag("treeSize") == str(HELD)
        browser.wait_flag("routed")
        (root / "checkpoint").write_bytes(latest)

        assert _entry(browser, 2) == "true"
        text = browser.text()
        assert f"lead to the checkpoint's root at size {HELD}" in text
        assert "(signed entry timestamp verified)" in text
        assert "not published" not in text

        for p in sorted((root / "index/run").glob("*/*")):
            p.unlink()
        assert _entry(browser, 3) == "true"  # inclusion is proved from tiles, not the index
        text = browser.text()
        assert "unavailable: the log is missing an object it is read from" in text
        assert f"at the latest checkpoint (size {LATEST}) too" in text
        assert "not published" not in text
        assert browser.errors == []
    finally:
        browser.close()
