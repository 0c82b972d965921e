"""The import rules of docs/architecture.md ("Packages and what each may import"), enforced.

Every ``import`` in the package is read with :mod:`ast` (imports inside functions included, since
a lazy import is still a dependency), so a module that reaches "upwards" fails here with the file,
the line and the rule it breaks.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "stelae"

# Which stelae packages each package may import (itself always allowed). cli may import anything.
ALLOWED: dict[str, set[str]] = {
    "tiles": set(),
    "kinds": {"tiles"},
    "sequencer": {"tiles"},
    "api": {"tiles", "kinds", "sequencer"},
    "server": {"tiles", "sequencer", "api"},
    "lambda": {"api", "sequencer", "witness"},  # the write, sequencer and witness functions
    "witness": {"tiles", "server"},
    "client": {"tiles", "kinds"},  # a log's users: signed requests built for the kinds to verify
    "explorer": set(),  # the browser page's static files; no Python beyond the package marker
}
# The pure core uses the standard library and one cryptography library, nothing else.
TILES_THIRD_PARTY = {"cryptography"}


def imports(path: Path, root: Path = PACKAGE.parent) -> list[tuple[int, str]]:
    """(line, dotted module) for every import in ``path``, relative imports resolved against its
    place under ``root``."""
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                out.append((node.lineno, f"{base}.{node.module}" if node.module else base))
            elif node.module:
                out.append((node.lineno, node.module))
    return out


def broken_rules(sub: str, rel: str, found_imports: list[tuple[int, str]]) -> list[str]:
    """The imports of module ``rel`` (in package ``stelae.<sub>``) that break a rule."""
    found: list[str] = []
    for line, module in found_imports:
        top, _, rest = module.partition(".")
        if top == "stelae":
            target = rest.split(".", 1)[0]
            if target and target != sub and target not in ALLOWED[sub]:
                found.append(f"{rel}:{line}: stelae.{sub} may not import {module}")
        elif sub == "tiles" and top not in sys.stdlib_module_names | TILES_THIRD_PARTY:
            found.append(f"{rel}:{line}: the pure core may not import {module}")
    return found


def violations(sub: str) -> list[str]:
    found: list[str] = []
    for path in sorted((PACKAGE / sub).rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).as_posix()
        found.extend(broken_rules(sub, rel, imports(path)))
    return found


@pytest.mark.parametrize("sub", sorted(ALLOWED))
def test_package_imports_only_what_the_architecture_allows(sub: str) -> None:
    found = violations(sub)
    assert not found, "\n".join(found)


def test_every_package_has_a_rule() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert packages - {"cli"} == set(ALLOWED)


def test_the_rules_catch_an_upward_import_lazy_or_relative(tmp_path: Path) -> None:
    module = tmp_path / "stelae" / "tiles" / "bad.py"
    module.parent.mkdir(parents=True)
    module.write_text(
        "import json\n"
        "from . import hashing\n"
        "from ..sequencer import store\n"
        "def f() -> None:\n"
        "    import boto3\n"
        "    from stelae.api.http import Request\n"
    )
    found = imports(module, root=tmp_path)
    assert found == [
        (1, "json"),
        (2, "stelae.tiles"),
        (3, "stelae.sequencer"),
        (5, "boto3"),
        (6, "stelae.api.http"),
    ]
    assert broken_rules("tiles", "stelae/tiles/bad.py", found) == [
        "stelae/tiles/bad.py:3: stelae.tiles may not import stelae.sequencer",
        "stelae/tiles/bad.py:5: the pure core may not import boto3",
        "stelae/tiles/bad.py:6: stelae.tiles may not import stelae.api.http",
    ]
