"""
What the ``steps:`` language's operations that steer the run compile to: ``for-each`` (its
nested steps, compiled in the loop's scope), ``route``, ``stop``, ``fail``, ``python`` and
``include`` (the included file's steps, in place). Each builder reports its mistakes to the
:class:`~mappings.stepcompiler.StepCompiler` and returns the prebuilt step of
:mod:`mappings.stepkinds` (None when refused). The language is documented in
:mod:`mappings.steps`.

test-case-name: tests.mappings.test_steps
"""
from __future__ import annotations

import importlib
from typing import Mapping, Sequence

from mappings.paths import EVERY
from mappings.stepcompiler import BAD, StepCompiler
from mappings.stepkinds import FailStep, ForEachStep, PythonStep, RouteStep, Step, StopStep
from mappings.stepproblems import _did_you_mean, _line

__all__ = ["build_fail", "build_for_each", "build_include", "build_python", "build_route",
           "build_stop"]


def build_for_each(compiler: StepCompiler, item: Mapping, field: str, line: int,
                   scope: tuple) -> Step | list[Step] | None:
    """``for-each``: the loop and its nested steps, compiled in the loop's scope."""
    over = compiler.access(item, "for-each", field, scope)
    if over is BAD:
        return None
    path = over.path
    if path.is_segment:
        good = path.occurrence is EVERY
    else:
        good = path.repetition is EVERY and path.component is None
    if not good:
        compiler.problem(_line(item, "for-each"), field,
                     f"for-each takes SEGMENT[*] (OBX[*]), GROUP[*] "
                     f"(ORDER_OBSERVATION[*]) or a field's repetitions (PID-3[*], "
                     f"OBX-5[*]), not {over.text}")
        return None
    if path.groups and not path.is_segment:
        compiler.problem(_line(item, "for-each"), field,
                     f"for-each over a field's repetitions takes no group ({over.text}): "
                     "loop over the group, then over the field inside it")
        return None
    if path.names_group:
        base = field.rsplit(".", 1)[0]
        steps = compiler.steps(item["steps"], base + ".steps", scope)
        return compiler.make(ForEachStep, line, field, over=over, steps=tuple(steps))
    segments, fields = scope
    inner = (segments | {path.segment},
             fields | ({(path.segment, path.field)} if path.field else set()))
    if path.is_segment:
        # A fresh loop over this segment: its fields are no longer repetition-bound.
        inner = (inner[0], frozenset(f for f in inner[1] if f[0] != path.segment))
    base = field.rsplit(".", 1)[0]
    steps = compiler.steps(item["steps"], base + ".steps", inner)
    return compiler.make(ForEachStep, line, field, over=over, steps=tuple(steps))


def build_route(compiler: StepCompiler, item: Mapping, field: str, line: int,
                scope: tuple) -> Step | list[Step] | None:
    """``route``: the destinations named (checked against the channel's by the engine)."""
    names = item["route"]
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, Sequence) or not names or not all(
            isinstance(name, str) and name.strip() for name in names):
        compiler.problem(_line(item, "route"), field,
                     "expected a destination name or a list of them")
        return None
    compiler.routes.update(names)
    return compiler.make(RouteStep, line, field, routes=frozenset(names))


def build_stop(compiler: StepCompiler, item: Mapping, field: str, line: int,
               scope: tuple) -> Step | list[Step] | None:
    """``stop``: end the run, the message FILTERED with the reason."""
    return _ending(compiler, item, "stop", StopStep, "test patient", field, line)


def build_fail(compiler: StepCompiler, item: Mapping, field: str, line: int,
               scope: tuple) -> Step | list[Step] | None:
    """``fail``: end the run, the message in ERROR with the reason."""
    return _ending(compiler, item, "fail", FailStep, "no document in OBX-5", field, line)


def _ending(compiler: StepCompiler, item, kind, step_class, example, field, line):
    """``stop`` and ``fail``: a step that ends the run, with the reason it gives."""
    reason = item[kind]
    if not isinstance(reason, str) or not reason.strip():
        compiler.problem(_line(item, kind), field,
                     f"expected the reason, such as {kind}: {example}")
        return None
    return compiler.make(step_class, line, field, reason=reason.strip())


def build_python(compiler: StepCompiler, item: Mapping, field: str, line: int,
                 scope: tuple) -> Step | list[Step] | None:
    """``python``: the function, imported now, and its options."""
    spec = item["python"]
    where = _line(item, "python")
    if not isinstance(spec, str) or spec.count(":") != 1:
        compiler.problem(where, field, f"expected package.module:function, not {spec!r}")
        return None
    module_name, _, name = spec.strip().partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # ImportError, or the module failing as it loads
        missing = error.name if isinstance(error, ModuleNotFoundError) else None
        compiler.problem(where, field, f"cannot import {module_name!r}: "
                                   f"{type(error).__name__}: {error}", missing)
        return None
    function = getattr(module, name, None)
    if function is None:
        compiler.problem(where, field, f"{module_name} has no {name!r}"
                                   f"{_did_you_mean(name, dir(module))}")
        return None
    if not callable(function):
        compiler.problem(where, field, f"{spec} is not callable")
        return None
    options = {key: value for key, value in item.items() if key not in ("python", "when")}
    return compiler.make(PythonStep, line, field, function=function, options=options,
                      name=spec.strip())


def build_include(compiler: StepCompiler, item: Mapping, field: str, line: int,
                  scope: tuple) -> Step | list[Step] | None:
    """The steps of the included file, compiled in this scope, as a list."""
    text = item["include"]
    where = _line(item, "include")
    if "when" in item:
        compiler.problem(_line(item, "when"), field.rsplit(".", 1)[0] + ".when",
                     "include takes no when: put the condition on the included steps")
        return None
    if not isinstance(text, str) or not text.strip():
        compiler.problem(where, field, "expected the path of a mapping file, such as "
                                   "include: ../mappings/pam-fr-to-practice.yaml")
        return None
    if compiler.include is None:
        compiler.problem(where, field, "include needs the configuration loader to read "
                                   "the mapping file; none was given")
        return None
    try:
        found = compiler.include(text.strip(), compiler.file)
    except LookupError as error:
        compiler.problem(where, field, str(error.args[0] if error.args else error))
        return None
    if found is None:
        return None  # the loader has said why
    if found.file in compiler.including:
        chain = compiler.including[compiler.including.index(found.file):] + [found.file]
        compiler.problem(where, field, "include cycle: " + " includes ".join(chain))
        return None
    outer = compiler.file
    compiler.file = found.file
    compiler.including.append(found.file)
    try:
        return compiler.steps(found.steps, found.field, scope)
    finally:
        compiler.including.pop()
        compiler.file = outer
