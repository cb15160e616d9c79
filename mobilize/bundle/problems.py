"""Problems found in a bundle, each naming where it is: file, line or feature, field."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    file: str
    where: str  # "line 12", "feature 3", "feature code=MG-001"
    field: str | None
    message: str
    warning: bool = False

    def __str__(self) -> str:
        place = f"{self.file}: {self.where}" if self.where else self.file
        if self.field:
            place += f": {self.field}"
        kind = "warning" if self.warning else "error"
        return f"{place}: {kind}: {self.message}"


@dataclass
class Problems:
    """Collects every problem so the user sees all of them in one run."""

    items: list[Problem] = field(default_factory=list)

    def error(self, file: str, where: str, field: str | None, message: str) -> None:
        self.items.append(Problem(file, where, field, message))

    def warn(self, file: str, where: str, field: str | None, message: str) -> None:
        self.items.append(Problem(file, where, field, message, warning=True))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.items if not p.warning]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.items if p.warning]


class BundleInvalid(Exception):
    """The bundle cannot be imported; `problems` says every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        errors = [p for p in problems if not p.warning]
        super().__init__(f"{len(errors)} problem(s) in the bundle")
