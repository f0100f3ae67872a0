"""
The compiler of the ``steps:`` language (:mod:`mappings.steps`): the pieces every step kind
shares (paths and their for-each scoping, conditions, text, the check of a step's keys) and
the collection of every problem found, so that a channel's mistakes are all reported at once.
What each kind builds is in :mod:`mappings.editkinds` and :mod:`mappings.controlkinds`.

test-case-name: tests.mappings.test_steps
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Sequence

from mappings.expressions import ExpressionError, compile_expression
from mappings.groups import check_group_name
from mappings.paths import PathError, parse_path
from mappings.program import Program
from mappings.scopes import Access
from mappings.stepkinds import Step
from mappings.stepkinds import make as make_step
from mappings.stepproblems import Resolver, StepProblem, StepsError, _did_you_mean, _line
from mappings.tables import CodeTable

__all__ = ["BAD", "NO_SCOPE", "StepCompiler", "StepKind"]

BAD = object()
"""A part of a step that was refused (its problem already reported): the step is not built."""

NO_SCOPE: tuple = (frozenset(), frozenset())
"""The scope outside any for-each: (segments bound, (segment, field) repetitions bound)."""


class StepKind(NamedTuple):
    """One operation of the language: its required and optional keys (``optional`` None: any
    key is taken, as the format's or the python function's parameters) and its builder."""

    required: tuple[str, ...]
    optional: tuple[str, ...] | None
    build: Callable[..., Step | list[Step] | None]


class StepCompiler:
    """Builds step objects, collecting every problem instead of stopping at the first.

    ``kinds`` is the language's table of operations (:data:`mappings.steps.KINDS`): the
    compiler checks each step's keys against it and calls the kind's ``build``.
    """

    def __init__(self, file: str, tables: Mapping[str, CodeTable],
                 kinds: Mapping[str, StepKind], include: Resolver | None = None):
        self.file = file
        self.kinds = kinds
        self.tables = tables
        self.include = include
        self.including: list[str] = [file]  # the files being compiled, outermost first
        self.problems: list[StepProblem] = []
        self.tables_used: set[str] = set()
        self.paths_used: set[str] = set()
        self.routes: set[str] = set()

    def problem(self, line: int, field: str, message: str, module: str | None = None) -> None:
        """Record a mistake at ``line`` of the file being compiled."""
        self.problems.append(StepProblem(self.file, line, field, message, module))

    # -- shared pieces ---------------------------------------------------------------------

    def path(self, text: Any, line: int, field: str, scope: tuple) -> Access | None:
        """Parse a path and decide whether it names the current occurrence of a for-each."""
        if not isinstance(text, str):
            self.problem(line, field, f"expected a path such as PID-5.1, not {text!r}")
            return None
        try:
            path = parse_path(text.strip())
        except PathError as error:
            self.problem(line, field, str(error))
            return None
        self.paths_used.add(str(path))
        names = [name for name, _ in path.groups] + ([path.segment] if path.names_group else [])
        for name in names:
            why = check_group_name(name)
            if why is not None:
                self.problem(line, field, f"{why}, in path {str(path)!r}")
                return None
        segments, fields = scope
        if path.occurrence is not None or path.segment not in segments or path.groups \
                or path.absolute:
            return Access(path)
        key = (path.segment, path.field)
        if path.field is not None and path.repetition is None and key in fields:
            return Access(path, bound=True, rep_key=key)
        return Access(path, bound=True)

    def condition(self, step: Step, text: Any, line: int, field: str, scope: tuple):
        """A ``when:`` or filter condition, its paths scoped as the step's."""
        if not isinstance(text, str):
            self.problem(line, field, f"expected a condition in quotes, not {text!r}")
            return None
        try:
            expression = compile_expression(text)
        except ExpressionError as error:
            self.problem(line, field, str(error).splitlines()[0])
            return None
        for path_text in expression.paths:
            access = self.path(path_text, line, field, scope)
            if access is None:
                return None
            step.when_paths[path_text] = access
        return expression

    def text(self, value: Any, line: int, field: str) -> str | None:
        """``value`` if it is text, else None after reporting it."""
        if isinstance(value, str):
            return value
        self.problem(line, field, f"expected text, not {value!r} (write it in quotes)")
        return None

    # -- steps -----------------------------------------------------------------------------

    def steps(self, steps: Any, field: str, scope: tuple) -> list[Step]:
        """The steps of a YAML list, an include's steps spliced in place."""
        if not isinstance(steps, Sequence) or isinstance(steps, (str, bytes)):
            self.problem(_line(steps), field, "expected a list of steps")
            return []
        built = []
        for index, item in enumerate(steps):
            step = self.step(item, f"{field}[{index}]", _line(steps, index=index), scope)
            if isinstance(step, list):  # an include: its steps, in place
                built.extend(step)
            elif step is not None:
                built.append(step)
        return built

    def step(self, item: Any, field: str, line: int, scope: tuple) -> Step | None:
        """One step: its keys checked against its kind, built, its ``when:`` added."""
        if not isinstance(item, Mapping):
            self.problem(line, field, "a step must be a mapping with one operation, such "
                                      f"as {{set: PID-5.1, value: X}}, not {item!r}")
            return None
        kinds = [key for key in item if key in self.kinds]
        if len(kinds) > 1:
            self.problem(_line(item, kinds[1]), field,
                         f"one operation per step: {' and '.join(map(str, kinds))} "
                         "are in the same step")
            return None
        if not kinds:
            unknown = [key for key in item if key != "when"]
            hint = "".join(f"; unknown step {key!r}{_did_you_mean(key, self.kinds)}"
                           for key in unknown)
            self.problem(line, field, "no operation: expected one of "
                                      f"{', '.join(self.kinds)}{hint}")
            return None
        kind = kinds[0]
        required, optional, build = self.kinds[kind]
        ok = True
        if optional is not None:
            allowed = {kind, "when", *required, *optional}
            for key in item:
                if key not in allowed:
                    self.problem(_line(item, key), f"{field}.{key}",
                                 f"unknown option {key!r} for {kind}"
                                 f"{_did_you_mean(key, allowed - {kind})}")
                    ok = False
        for key in required:
            if key not in item:
                self.problem(_line(item, kind), f"{field}.{kind}",
                             f"{kind} needs {key!r}")
                ok = False
        kind_field = f"{field}.{kind}"
        step = build(self, item, kind_field, line, scope) if ok else None
        if step is not None and "when" in item:
            step.when = self.condition(step, item["when"], _line(item, "when"),
                                       f"{field}.when", scope)
            if step.when is None:
                return None
        return step

    def make(self, kind, line, field, **attributes):
        """A step of class ``kind``; None when one of its parts was refused (:data:`BAD`)."""
        if any(value is BAD for value in attributes.values()):
            return None
        return make_step(kind, self.file, line, field, **attributes)

    def access(self, item, key, field, scope, optional=False):
        """The path under ``key``: None when optional and absent, :data:`BAD` when refused."""
        if key not in item:
            return None if optional else BAD
        base = field.rsplit(".", 1)[0]
        where = field if key == field.rsplit(".", 1)[1] else f"{base}.{key}"
        access = self.path(item[key], _line(item, key), where, scope)
        return BAD if access is None else access

    def value_access(self, item, key, field, scope, optional=False):
        """A path that must name a value (not a segment)."""
        access = self.access(item, key, field, scope, optional)
        if isinstance(access, Access) and access.path.names_group:
            self.problem(_line(item, key), f"{field.rsplit('.', 1)[0]}.{key}",
                         f"{access.text} is a group; name a field of one of its segments, "
                         f"such as {access.text}/OBR-4")
            return BAD
        if isinstance(access, Access) and access.segment_only:
            self.problem(_line(item, key), f"{field.rsplit('.', 1)[0]}.{key}",
                         f"{access.text} is a segment; name a field such as "
                         f"{access.text}-1")
            return BAD
        return access

    def program(self, steps: list[Step]) -> Program:
        """The :class:`Program` of ``steps``; :class:`StepsError` if anything was wrong."""
        if self.problems:
            # A file included twice is compiled twice: say each of its mistakes once.
            raise StepsError(list(dict.fromkeys(self.problems)))
        return Program(steps, frozenset(self.tables_used), frozenset(self.paths_used),
                       frozenset(self.routes))
