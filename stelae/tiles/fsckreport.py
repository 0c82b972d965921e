"""What ``stelae fsck`` reports: each damaged or missing object with its evidence
(:class:`Problem`), and the whole :class:`Report`; the checks are in :mod:`stelae.tiles.fsck`."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Problem:
    """One damaged or missing object: its path, what is wrong, and the evidence."""

    path: str
    problem: str
    expected: str = ""
    found: str = ""

    def to_json(self) -> dict[str, str]:
        return asdict(self)

    def line(self) -> str:
        evidence = f" (expected {self.expected}, found {self.found})" if self.expected else ""
        return f"{self.path}: {self.problem}{evidence}"


@dataclass
class Report:
    """What :func:`fsck` found. ``checked`` counts the objects examined by kind."""

    tree_size: int = 0
    problems: list[Problem] = field(default_factory=list)
    checked: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "tree_size": self.tree_size,
            "problems": [p.to_json() for p in self.problems],
            "checked": dict(sorted(self.checked.items())),
        }
