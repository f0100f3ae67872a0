"""
What compiling a ``steps:`` list reports (:class:`StepProblem`, :class:`StepsError`) and what an
``include:`` resolver returns (:class:`IncludedSteps`), for :mod:`mappings.steps`, with the
helpers that find a YAML item's line and suggest a close name.

test-case-name: tests.mappings.test_steps
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["IncludedSteps", "Resolver", "StepProblem", "StepsError"]


@dataclass(frozen=True)
class StepProblem:
    """One mistake found at load; ``line`` counts from 1, 0 when unknown. ``module`` names the
    module a ``python:`` step could not find, for the loader to say where it looks."""

    file: str
    line: int
    field: str
    message: str
    module: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else (self.file or "<steps>")
        return f"{where}: {self.field}: {self.message}"


@dataclass(frozen=True)
class IncludedSteps:
    """A mapping file as an ``include:`` resolver returns it (already read and parsed).

    ``file`` is the name its problems and failures are reported with; ``steps`` its ``steps:``
    list (a YAML list with positions, so that each step has its line); ``field`` the field
    path of that list in the file.
    """

    file: str
    steps: Any
    field: str = "steps"


Resolver = Callable[[str, str], "IncludedSteps | None"]


class StepsError(Exception):
    """Every mistake in a ``steps:`` list (or filters); the whole list is refused."""

    def __init__(self, problems: list[StepProblem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


def _line(container: Any, key: Any = None, index: int | None = None) -> int:
    """The line where ``container[key]`` / item ``index`` is written, 0 for plain objects."""
    try:
        if index is not None:
            return container.item_position(index).line
        if key is not None:
            return container.key_position(key).line
        return container.position.line
    except (AttributeError, IndexError, TypeError):
        return 0


def _did_you_mean(word: Any, known) -> str:
    close = difflib.get_close_matches(str(word), list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
