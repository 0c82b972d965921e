"""The browser explorer: a static page that verifies everything it shows (docs/explorer.md).

The page is plain files shipped inside the package (``stelae/explorer/``); this module only
serves them, at ``/`` and ``/explorer/<file>``, beside the log's own static objects. Nothing here
knows about the log: the page reads the same public objects (checkpoint, tiles, bundles, lookup
indexes) any other client reads, and does every check itself. The AWS deployment uploads the
same files (:func:`explorer_objects`) to the bucket at the same keys.

Only the files listed in :data:`FILES` are ever served, so no request path reaches the
filesystem.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

#: The page's files and their Content-Type. The page is served at ``/`` (and ``/index.html``);
#: the others at ``/explorer/<name>``, which is how ``index.html`` refers to them.
FILES: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "verify.js": "text/javascript; charset=utf-8",
    "tiles.js": "text/javascript; charset=utf-8",
    "entry.js": "text/javascript; charset=utf-8",
    "search.js": "text/javascript; charset=utf-8",
    "index.js": "text/javascript; charset=utf-8",
    "dom.js": "text/javascript; charset=utf-8",
    "policy.js": "text/javascript; charset=utf-8",
    "timestamp.js": "text/javascript; charset=utf-8",
}

# The page is rewritten by upgrades, so a browser revalidates it; a stale copy would only be an
# older verifier, never a wrong answer, but there is no reason to keep one.
_CACHE_CONTROL = "no-cache"

# The same policy index.html carries in a <meta> tag (for hosts that cannot set headers), plus
# frame-ancestors, which only works as a header. connect-src stays open: the page may be pointed
# at a log on another origin with ?log=URL, and every byte it reads is verified anyway.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src *; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class ExplorerFile:
    key: str  # the object key / URL path without the leading slash
    body: bytes
    content_type: str

    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": self.content_type,
            "Cache-Control": _CACHE_CONTROL,
            "Content-Security-Policy": _CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        }


def _key_for(name: str) -> str:
    return "index.html" if name == "index.html" else f"explorer/{name}"


@cache
def explorer_objects() -> dict[str, ExplorerFile]:
    """Every file of the page by object key (``index.html``, ``explorer/app.js``, ...)."""
    root = resources.files("stelae") / "explorer"
    return {
        _key_for(name): ExplorerFile(_key_for(name), (root / name).read_bytes(), ctype)
        for name, ctype in FILES.items()
    }


def explorer_file(url_path: str) -> ExplorerFile | None:
    """The page file a GET of ``url_path`` asks for, or None when it is not one of them."""
    path = url_path.split("?", 1)[0].split("#", 1)[0]
    if path in ("/", "/index.html"):
        return explorer_objects()["index.html"]
    if path.startswith("/explorer/"):
        return explorer_objects().get(path[1:])
    return None
