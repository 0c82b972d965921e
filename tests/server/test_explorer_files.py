"""Serving the browser explorer (stelae/server/explorer.py): which paths are the page, its
headers, that every file the page loads ships in the package, its size budget, and that
``stelae serve --workers 2`` serves it from the worker processes. What the page does is tested in
a real browser by tests/e2e/browser/test_explorer.py."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

from stelae.server.explorer import FILES, explorer_file, explorer_objects
from tests.support.api import start_serve

PAGE_BUDGET = 300_000  # bytes of HTML + JS + CSS, uncompressed


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/", "index.html"),
        ("/index.html", "index.html"),
        ("/?vkey=a+b+c", "index.html"),
        ("/#/entry/3", "index.html"),
        ("/explorer/app.js", "explorer/app.js"),
        ("/explorer/style.css", "explorer/style.css"),
    ],
)
def test_page_paths(path: str, key: str) -> None:
    page = explorer_file(path)
    assert page is not None and page.key == key


@pytest.mark.parametrize(
    "path",
    [
        "/checkpoint",
        "/explorer/",
        "/explorer/../config.json",
        "/explorer/nope.js",
        "/app.js",
        "/x/",
    ],
)
def test_other_paths_are_not_the_page(path: str) -> None:
    assert explorer_file(path) is None


def test_headers_say_what_each_file_is_and_forbid_inline_code() -> None:
    page = explorer_objects()
    assert page["index.html"].headers()["Content-Type"] == "text/html; charset=utf-8"
    assert page["explorer/app.js"].headers()["Content-Type"] == "text/javascript; charset=utf-8"
    csp = page["index.html"].headers()["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_every_file_the_page_loads_ships_and_nothing_else_is_served() -> None:
    root = resources.files("stelae") / "explorer"
    shipped = {p.name for p in Path(str(root)).iterdir() if p.suffix in (".js", ".html", ".css")}
    assert shipped == set(FILES)
    html = explorer_objects()["index.html"].body.decode()
    loaded = set(re.findall(r'(?:src|href)="explorer/([^"]+)"', html))
    for name in FILES:
        if name.endswith(".js"):
            body = explorer_objects()[f"explorer/{name}"].body.decode()
            loaded |= set(re.findall(r'from "\./([^"]+)"', body))
    assert loaded <= set(FILES), loaded - set(FILES)
    assert {"app.js", "style.css"} <= loaded


def test_the_page_is_under_its_size_budget() -> None:
    total = sum(len(f.body) for f in explorer_objects().values())
    assert total < PAGE_BUDGET, total


def test_workers_serve_the_page(tmp_path: Path) -> None:
    serve = start_serve(tmp_path / "data", "127.0.0.1:0", "--workers", "2")
    try:
        assert "2 workers" in "".join(serve.stderr_lines)
        for _ in range(4):  # new connections, answered by whichever worker accepts
            reply = serve.log.request("GET", "/", None, {})
            assert reply.status == 200
            assert b'<script type="module" src="explorer/app.js">' in reply.body
            assert serve.log.request("GET", "/explorer/verify.js", None, {}).status == 200
        head = serve.log.request("HEAD", "/explorer/app.js", None, {})
        assert head.status == 200 and head.body == b""
    finally:
        status, _ = serve.terminate()
    assert status == 0
