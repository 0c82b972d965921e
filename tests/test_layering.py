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

# Which stelae packages each package may import (itself always allowed). cli may import anything
# but the sequencer's formats (CLI_SEQUENCER).
ALLOWED: dict[str, set[str]] = {
    "tiles": set(),
    "kinds": {"tiles"},
    "sequencer": {"tiles"},
    "api": {"tiles", "kinds", "sequencer"},
    "server": {"tiles", "sequencer", "api"},
    "lambda": {"api", "sequencer", "witness"},  # the write, sequencer and witness functions
    # The witness answers HTTP through the server and reads API Gateway events as the write API
    # does: from stelae.api, only the transport-neutral request (WITNESS_API).
    "witness": {"tiles", "server", "api"},
    "client": {"tiles", "kinds"},  # a log's users: signed requests built for the kinds to verify
    "explorer": set(),  # the browser page's static files; no Python beyond the package marker
}
# The pure core uses the standard library and one cryptography library, nothing else.
TILES_THIRD_PARTY = {"cryptography"}
# Modules at the package root that every package may import: the base error type only.
ROOT_MODULES = {"errors"}
# What the CLI, a reader, may take from the sequencer: the commands that run or repair the write
# side (serve, init, index rebuild) and the stores a reader opens an S3 log through. Never a
# format: a format a reader needs lives in the pure core (keys in stelae/tiles/paths.py).
CLI_SEQUENCER = {"logdir", "rebuild", "witnessing", "store", "s3", "reader"}
# What the witness may take from the write API: the request type and its API Gateway form.
WITNESS_API = {"http"}
# The one module that spells object keys (docs/layout.md); tile paths are TileID's, in layout.py.
KEY_MODULES = {"stelae/tiles/paths.py", "stelae/tiles/layout.py"}
# String literals that can only be a log's object key (or the start of one).
KEY_PREFIXES = ("checkpoints/", "batch/", "index/", ".state", "tile/")
# A witness keeps its own state in its own bucket, under its own prefix: not a log's key.
OTHER_LAYOUTS = {"stelae/witness/aws.py"}


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
            if not target or target == sub or target in ROOT_MODULES:
                continue
            inner = rest.split(".")[1:2]
            if sub == "cli":
                if target == "sequencer" and not set(inner) <= CLI_SEQUENCER:
                    found.append(f"{rel}:{line}: stelae.cli may not import the format {module}")
            elif sub == "witness" and target == "api" and set(inner) != WITNESS_API:
                found.append(f"{rel}:{line}: stelae.witness may take only stelae.api.http")
            elif target not in ALLOWED[sub]:
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


def test_root_errors_import_nothing_of_stelae() -> None:
    found = [m for _, m in imports(PACKAGE / "errors.py") if m.partition(".")[0] == "stelae"]
    assert found == []


def test_the_cli_reads_no_format_from_the_sequencer() -> None:
    assert broken_rules(
        "cli",
        "stelae/cli/bad.py",
        [(1, "stelae.sequencer.logdir"), (2, "stelae.sequencer.intent"), (3, "stelae.sequencer")],
    ) == ["stelae/cli/bad.py:2: stelae.cli may not import the format stelae.sequencer.intent"]


def test_the_witness_takes_only_the_request_type_from_the_api() -> None:
    assert broken_rules(
        "witness",
        "stelae/witness/bad.py",
        [(1, "stelae.api.http"), (2, "stelae.api.service"), (3, "stelae.api")],
    ) == [
        "stelae/witness/bad.py:2: stelae.witness may take only stelae.api.http",
        "stelae/witness/bad.py:3: stelae.witness may take only stelae.api.http",
    ]


def spelled_keys(path: Path) -> list[tuple[int, str]]:
    """(line, literal) for every string literal in ``path`` that starts like an object key.

    Docstrings are prose and are skipped; an f-string's literal parts are checked, so
    ``f"checkpoints/{size}"`` is found. A bare ``"checkpoint"`` is not: it is also a JSON field.
    """
    tree = ast.parse(path.read_text(), str(path))
    prose = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in prose
        and node.value.startswith(KEY_PREFIXES)
    ]


def test_only_the_layout_module_spells_keys() -> None:
    found: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).as_posix()
        if rel not in KEY_MODULES | OTHER_LAYOUTS:
            found.extend(f"{rel}:{line}: {value!r}" for line, value in spelled_keys(path))
    assert not found, "keys are spelled in stelae/tiles/paths.py only:\n" + "\n".join(found)


def test_the_key_check_finds_literals_and_f_strings(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text(
        '"""A docstring may say checkpoints/<size>."""\n'
        'HISTORY = "checkpoints/"\n'
        "def f(n: int) -> str:\n"
        '    return f"batch/{n}"\n'
        'FIELD = "checkpoint"\n'
    )
    assert spelled_keys(module) == [(2, "checkpoints/"), (4, "batch/")]
