"""Every reference in the repository points at something a fresh clone has.

Scans every tracked text file (``git ls-files``) for:

- relative Markdown links (``[text](path#anchor)``) in ``.md`` files: the target must exist and,
  for a ``.md`` target, the anchor must be one of its headings;
- mentions of design pages, ``docs/<name>.md``, anywhere (docstrings cite them by path);
- backticked repository paths (`` `stelae/tiles/layout.py` ``, `` `tests/vectors/` ``) whose first
  segment is a top-level folder of the repository;
- references that can never resolve in a clone: the design notes the project started from
  (spelled out in ``_OUTSIDE`` below), paths under ``/work/``, and issue numbers.

Every offence is printed as ``file:line: reason`` so the whole list can be fixed in one pass.
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
THIS = Path(__file__).resolve().relative_to(ROOT).as_posix()

# Files that lived outside the repository while it was being built; a clone has none of them.
_OUTSIDE = re.compile(
    r"\b(?:" + "|".join(re.escape(n) for n in ("specs", "vectors", "DESIGN", "STYLE")) + r")\.md\b"
)
_WORK = re.compile(r"/work/(?:shared|briefs)\b")
_ISSUE = re.compile(r"\bissue\s+#?\d+", re.IGNORECASE)
_DOCS_MENTION = re.compile(r"(?<![\w/.-])docs/[\w.-]+\.md\b")
_MD_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
_BACKTICKED = re.compile(r"`([A-Za-z0-9_][\w.-]*/[\w./-]*)`")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


@cache
def tracked_files() -> tuple[str, ...]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return tuple(p for p in out.split("\0") if p)


@cache
def tracked_dirs() -> frozenset[str]:
    dirs: set[str] = set()
    for path in tracked_files():
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    return frozenset(dirs)


@cache
def top_level_dirs() -> frozenset[str]:
    return frozenset(d for d in tracked_dirs() if "/" not in d)


def text_of(path: str) -> str | None:
    """The file's text, or None for a binary file (or one deleted in the working tree)."""
    try:
        data = (ROOT / path).read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def exists(path: str) -> bool:
    """Whether a clone has ``path``: a tracked file or folder (an untracked file does not count),
    or a path ``.gitignore`` reserves for generated output (screenshots, build artifacts)."""
    path = path.rstrip("/")
    # A folder pattern ("screenshots/") matches only a folder that exists, unless asked about as a
    # folder: the screenshots folder is created by the browser tests, which may run later or not.
    return path in tracked_files() or path in tracked_dirs() or ignored(path) or ignored(path + "/")


@cache
def ignored(path: str) -> bool:
    probe = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, check=False)
    return probe.returncode == 0


def in_other_repository(line: str, start: int) -> bool:
    """Whether the reference at ``start`` sits in parentheses after a URL, as in "(https://github.com/
    o/r, `docs/x.md` there)": a path in someone else's repository, not in this one."""
    opening = line.rfind("(", 0, start)
    return opening != -1 and ")" not in line[opening:start] and "://" in line[opening:start]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*|_(?=\W)|(?<=\W)_", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@cache
def anchors(path: str) -> frozenset[str]:
    text = text_of(path) or ""
    seen: dict[str, int] = {}
    out: set[str] = set()
    in_fence = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        m = _HEADING.match(line)
        if in_fence or not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return frozenset(out)


def check_link(source: str, target: str) -> str | None:
    """Why a Markdown link from ``source`` to ``target`` is broken, or None."""
    if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("//"):
        return None  # a URL (https:, mailto:): not a repository file
    path, _, anchor = target.partition("#")
    if not path:
        resolved = source
    else:
        resolved = (Path(source).parent / path).as_posix()
        parts: list[str] = []
        for seg in resolved.split("/"):
            if seg == "..":
                if not parts:
                    return f"link {target!r} leaves the repository"
                parts.pop()
            elif seg not in ("", "."):
                parts.append(seg)
        resolved = "/".join(parts)
        if not exists(resolved):
            return f"link {target!r}: {resolved} does not exist"
    if anchor and resolved.endswith(".md") and anchor not in anchors(resolved):
        return f"link {target!r}: {resolved} has no heading #{anchor}"
    return None


def offences(path: str, text: str) -> list[str]:
    """Every problem in ``text`` (the file ``path``), each prefixed with its file and line."""
    found: list[str] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        found.extend(f"{path}:{lineno}: {problem}" for problem in line_problems(path, line))
    return found


def line_problems(path: str, line: str) -> list[str]:
    """What is wrong with one line of ``path``: citations of what a clone does not have,
    mentions of files that do not exist, broken Markdown links."""
    problems = [
        f"cites {m.group(0)}, which is not in the repository" for m in _OUTSIDE.finditer(line)
    ]
    problems += [f"cites {m.group(0)}, a path outside the repository" for m in _WORK.finditer(line)]
    problems += [
        f"cites {m.group(0)!r}; cite docs/ or a public URL instead" for m in _ISSUE.finditer(line)
    ]
    problems += [
        f"mentions {m.group(0)}, which does not exist"
        for m in _DOCS_MENTION.finditer(line)
        if not exists(m.group(0)) and not in_other_repository(line, m.start())
    ]
    if path.endswith(".md"):
        links = (check_link(path, m.group(1)) for m in _MD_LINK.finditer(line))
        problems += [problem for problem in links if problem]
    problems += [f"`{ref}` does not exist in the repository" for ref in missing_backticked(line)]
    return problems


def missing_backticked(line: str) -> list[str]:
    """The `backticked` repository paths in ``line`` that do not exist (paths in another
    repository's context excepted)."""
    missing: list[str] = []
    for m in _BACKTICKED.finditer(line):
        ref = m.group(1)
        if ref.split("/", 1)[0] not in top_level_dirs() or in_other_repository(line, m.start()):
            continue
        if not exists(ref):
            missing.append(ref)
    return missing


def all_offences() -> list[str]:
    found: list[str] = []
    for path in tracked_files():
        if path == THIS:
            continue  # this file spells out the patterns it looks for
        text = text_of(path)
        if text is not None:
            found.extend(offences(path, text))
    return found


def test_every_reference_resolves_in_a_clone() -> None:
    found = all_offences()
    for line in found:
        print(line)
    assert not found, f"{len(found)} references point nowhere:\n" + "\n".join(found)


# --- the checker itself ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("see " + "DESIGN" + ".md for why", "DESIGN" + ".md"),
        ("(" + "specs" + ".md §7)", "specs" + ".md"),
        ("Issue " + "4, item 3.", "Issue " + "4"),
        ("| `proofs` (issue " + "2) |", "issue " + "2"),
        ("read /work/" + "shared/x", "/work/shared"),
        ("docs/no-such-page.md explains", "docs/no-such-page.md"),
        ("`stelae/tiles/no_such_module.py`", "stelae/tiles/no_such_module.py"),
    ],
)
def test_a_bad_reference_is_reported_with_its_line(line: str, expected: str) -> None:
    found = offences("stelae/example.py", f"ok\n{line}\n")
    assert found, line
    assert all(f.startswith("stelae/example.py:2: ") for f in found)
    assert any(expected in f for f in found)


@pytest.mark.parametrize(
    "line",
    [
        "https://c2sp.org/tlog-tiles and RFC 6962 §2.1",
        "docs/architecture.md and `stelae/tiles/layout.py`",
        "`tests/vectors/` holds them",
        "`index/leaf/<hex>` and `tile/0/000.p/1` are object keys, not files",
        "https://github.com/sigstore/rekor/issues/1234",
        "the format (https://github.com/o/r, `docs/other-repo.md` there)",
        "`tests/e2e/browser/screenshots/` (generated, ignored by git)",
    ],
)
def test_good_references_pass(line: str) -> None:
    assert offences("stelae/example.py", line) == []


def test_markdown_links_and_anchors_are_checked() -> None:
    assert check_link("docs/README.md", "architecture.md") is None
    assert check_link("docs/README.md", "../README.md#run-the-tests") is None
    assert check_link("README.md", "https://example.org/x.md") is None
    assert "does not exist" in (check_link("docs/README.md", "nowhere.md") or "")
    assert "has no heading" in (check_link("docs/README.md", "../README.md#no-such-part") or "")
