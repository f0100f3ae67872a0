"""
The run-time half of the ``steps:`` language: the prebuilt step objects. :mod:`mappings.steps`
checks a channel's YAML and builds these objects once, at load; :mod:`mappings.program` runs
them, each message costing one loop over them. The language itself is documented in
:mod:`mappings.steps`.

test-case-name: tests.mappings.test_steps
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

from mappings.expressions import Expression
from mappings.formats import FormatError
from mappings.escaping import escape, text_runs, unescape
from mappings.message import NULL, HL7Message, MessageError
from mappings.scopes import Access, Scope
from mappings.paths import (
    EVERY, Path, PathError, delete, expand, get_encoded, get_one, groups_at, locate,
    segments_at, set_encoded, set_value,
)
from mappings.stepoutcomes import Failed, RunOutcome, StepFailure, Stopped

# --- paths ----------------------------------------------------------------------------------

def _resolver(accesses: dict, message: HL7Message, scope: Scope | None):
    return lambda text: accesses[text].values(message, scope)


def _guarded(action: Callable, access: Access, scope, value: str | None = None):
    """Run ``action``; turn path errors into :class:`Failed` naming the concrete path."""
    try:
        return action()
    except PathError as error:
        raise Failed(error.reason, access.shown(scope), value) from None
    except MessageError as error:
        raise Failed(str(error), access.shown(scope), value) from None


# --- steps ----------------------------------------------------------------------------------

class Step:
    """One prebuilt step; ``execute`` does the work, ``run`` applies ``when`` and names errors."""

    __slots__ = ("file", "line", "field", "when", "when_paths")

    def __init__(self, file: str, line: int, field: str):
        self.file = file
        self.line = line
        self.field = field
        self.when: Expression | None = None
        self.when_paths: dict[str, Access] = {}

    def run(self, message: HL7Message, scope: Scope | None, state: list) -> bool:
        """Apply the step; False when its ``when:`` was false and it did nothing."""
        try:
            if self.when is not None and not self.when.evaluate(
                    _resolver(self.when_paths, message, scope)):
                return False
            self.execute(message, scope, state)
            return True
        except Failed as failure:
            raise StepFailure(self.file, self.line, self.field, failure.message,
                              path=failure.path, value=failure.value) from None
        except (MessageError, PathError) as error:  # this message's shape defeated the step
            raise StepFailure(self.file, self.line, self.field, str(error)) from None

    def execute(self, message: HL7Message, scope: Scope | None, state: list) -> None:
        raise NotImplementedError


class SetStep(Step):
    __slots__ = ("target", "value", "source")

    def execute(self, message, scope, state):
        if self.source is not None:
            target, path = self.source.resolve(message, scope)
            value = get_one(target, path) or ""
        else:
            value = self.value
        target, path = self.target.resolve(message, scope)
        _guarded(lambda: set_value(target, path, value), self.target, scope, value)


class CopyStep(Step):
    """``copy`` and ``move`` (``move`` is True): whole nodes, as encoded text."""

    __slots__ = ("source", "target", "move")

    def execute(self, message, scope, state):
        source, spath = self.source.resolve(message, scope)
        texts = get_encoded(source, spath)
        target, tpath = self.target.resolve(message, scope)
        if spath.occurrence is EVERY or spath.repetition is EVERY:
            for number, text in enumerate(texts, 1):
                concrete = _nth_path(tpath, number)
                _guarded(lambda: set_encoded(target, concrete, text), self.target, scope)
        else:
            text = texts[0] if texts else ""
            _guarded(lambda: set_encoded(target, tpath, text), self.target, scope)
        if self.move:
            _guarded(lambda: delete(source, spath), self.source, scope)


def _nth_path(path: Path, number: int) -> Path:
    """``path`` with its ``[*]`` replaced by ``number``."""
    if path.occurrence is EVERY:
        return replace(path, occurrence=number)
    return replace(path, repetition=number)


class DeleteStep(Step):
    __slots__ = ("target",)

    def execute(self, message, scope, state):
        target, path = self.target.resolve(message, scope)
        _guarded(lambda: delete(target, path), self.target, scope)


class AddSegmentStep(Step):
    __slots__ = ("name", "after", "fields")

    def execute(self, message, scope, state):
        after = None
        if self.after is not None:
            target, path = self.after.resolve(message, scope)
            found = segments_at(target, path)
            if not found:
                raise Failed(f"no {path.segment} segment to add {self.name} after",
                              self.after.shown(scope))
            after = found[-1]
        segment = message.add_segment(after, self.name)
        if after is not None and scope is not None:
            # The group loops running hold their instances: the new segment joins the
            # innermost one that holds the segment it follows.
            for group in reversed(scope.groups):
                if group.attach(after, segment):
                    break
        for number, value in self.fields:
            segment.set(number, value)


class TranslateStep(Step):
    __slots__ = ("source", "table", "target", "display", "system", "on_unknown", "default")

    def execute(self, message, scope, state):
        source, path = self.source.resolve(message, scope)
        if path.groups:
            for concrete in expand(source, path):
                group, within = locate(source, concrete)
                if group is not None:
                    self._one(message, scope, group, within, concrete)
        elif self.source.many:
            for concrete in expand(source, path):
                self._one(message, scope, source, concrete)
        else:
            self._one(message, scope, source, path)

    def _one(self, message, scope, source, path, shown=None):
        # The hot path: one segment lookup, one split of the field's first repetition, one
        # dictionary lookup, one join. Other shapes go through Segment.get/set.
        segment = source.segment(path.segment, path.occurrence or 1)
        if segment is None:
            return
        number = path.field
        rep, comp, sub = path.repetition or 1, path.component or 1, path.subcomponent or 1
        quick = rep == 1 and sub == 1 and (number > 2 or segment.name != "MSH")
        if quick:
            d = segment.delimiters
            text = segment.field(number)
            cut = text.find(d.repetition)
            head, tail = (text, "") if cut < 0 else (text[:cut], text[cut:])
            comps = head.split(d.component)
            if comp > len(comps):
                return
            encoded = comps[comp - 1]
            cut = encoded.find(d.subcomponent)
            subtail = ""
            if cut >= 0:
                encoded, subtail = encoded[:cut], encoded[cut:]
            value = unescape(encoded, d) if d.escape in encoded else encoded
        else:
            value = segment.get(number, rep, comp, sub)
        if not value or value == NULL:
            return
        found = self.table.translate(value)
        if found is None:
            policy = self.on_unknown
            if policy == "error":
                raise Failed(f"code not in table {self.table.name}",
                              self.source.shown(scope, shown or path), value)
            if policy == "keep":
                if self.target is not None:
                    self._write(message, scope, self.target, value)
                return
            code = self.default if policy == "default" else ""
            display = system = ""
        else:
            code, display, system = found.code, found.display, found.system
        if self.target is None:
            if code == value:
                pass
            elif quick and code:
                comps[comp - 1] = escape(code, d) + subtail
                segment.set_field(number, d.component.join(comps) + tail)
            else:
                segment.set(number, code, rep, comp, sub)
        else:
            self._write(message, scope, self.target, code)
        if self.display is not None:
            self._write(message, scope, self.display, display)
        if self.system is not None:
            self._write(message, scope, self.system, system)

    @staticmethod
    def _write(message, scope, access: Access, value: str) -> None:
        target, path = access.resolve(message, scope)
        _guarded(lambda: set_value(target, path, value), access, scope, value)


class FormatStep(Step):
    """``format``; a format of letters (``text_only``) changes the text between the value's
    formatting escape sequences and keeps the sequences (:func:`escaping.text_runs`)."""

    __slots__ = ("source", "transform", "target", "name", "text_only")

    def execute(self, message, scope, state):
        source, path = self.source.resolve(message, scope)
        if self.source.many:
            for concrete in expand(source, path):
                self._one(message, scope, source, concrete, None)
        else:
            self._one(message, scope, source, path, self.target)

    def _one(self, message, scope, source, path, target_access):
        value = get_one(source, path)
        if value is None:
            return
        try:
            if self.text_only and message.delimiters.escape in value:
                transform = self.transform
                result = "".join(piece if sequence else transform(piece)
                                 for piece, sequence in text_runs(value, message.delimiters))
            else:
                result = self.transform(value)
        except FormatError as error:
            raise Failed(error.message, self.source.shown(scope, path), value) from None
        if target_access is None:
            if result != value:
                _guarded(lambda: set_value(source, path, result), self.source, scope, result)
        else:
            target, tpath = target_access.resolve(message, scope)
            _guarded(lambda: set_value(target, tpath, result), target_access, scope, result)


class ForEachStep(Step):
    __slots__ = ("over", "steps")

    def execute(self, message, scope, state):
        target, path = self.over.resolve(message, scope)
        name = path.segment
        segs = {} if scope is None else scope.segs
        occs = {} if scope is None else scope.occs
        reps = {} if scope is None else scope.reps
        steps = self.steps
        # One scope for the loop, its bindings updated at each turn (nested steps only read
        # it while they run).
        if path.names_group:
            self._groups(message, scope, target, path, state)
            return
        inner = Scope(message, dict(segs), dict(occs), reps,
                      *(() if scope is None else (scope.group, scope.label, scope.groups)))
        bound, numbers = inner.segs, inner.occs
        if path.is_segment:
            # The occurrences are those present when the loop starts.
            for number, segment in enumerate(segments_at(target, path), 1):
                bound[name] = segment
                numbers[name] = number
                for step in steps:
                    step.run(message, inner, state)
            return
        key = (name, path.field)
        inner.reps = repetitions = dict(reps)
        for concrete in expand(target, path):
            bound[name] = target.segment(name, concrete.occurrence or 1)
            numbers[name] = occs[name] if target is scope else (concrete.occurrence or 1)
            repetitions[key] = concrete.repetition
            for step in steps:
                step.run(message, inner, state)

    def _groups(self, message, scope, target, path, state):
        """The loop over a group's instances: the steps read inside each one."""
        outer = "" if scope is None or target is message else scope.label + "/"
        enclosing = () if scope is None else scope.groups
        segs = {} if scope is None else scope.segs
        occs = {} if scope is None else scope.occs
        reps = {} if scope is None else scope.reps
        for group, label in groups_at(target, path):
            inner = Scope(message, segs, occs, reps, group, outer + label, enclosing + (group,))
            for step in self.steps:
                step.run(message, inner, state)


class RouteStep(Step):
    __slots__ = ("routes",)

    def execute(self, message, scope, state):
        state.append(self.routes)


class StopStep(Step):
    __slots__ = ("reason",)

    def execute(self, message, scope, state):
        raise Stopped(self.reason)


class FailStep(Step):
    """``fail``: the message cannot go on as it is; ERROR, for an operator to look at."""

    __slots__ = ("reason",)

    def execute(self, message, scope, state):
        raise Failed(self.reason)


class FilterStep(Step):
    """A channel filter: the message passes when the expression is true."""

    __slots__ = ("reason", "expression")

    def execute(self, message, scope, state):
        if not self.expression.evaluate(_resolver(self.when_paths, message, scope)):
            raise Stopped(self.reason)


class PythonStep(Step):
    __slots__ = ("function", "options", "name")

    def execute(self, message, scope, state):
        try:
            result = self.function(message, **self.options)
        except (StepFailure, Stopped, Failed):
            raise
        except Exception as error:  # the callable's own failure, named with its step
            raise Failed(f"{self.name} raised {type(error).__name__}: {error}") from None
        if result is None:
            return
        if not isinstance(result, RunOutcome):
            raise Failed(f"{self.name} returned {type(result).__name__}, "
                          "not None or a RunOutcome")
        if result.routes is not None:
            state.append(frozenset(result.routes))
        if result.stopped:
            raise Stopped(result.reason or f"stopped by {self.name}")



def make(kind: type, file: str, line: int, field: str, **attributes: Any) -> Step:
    """A step of class ``kind`` named by its place in the YAML, with these attributes."""
    step = kind(file, line, field)
    for name, value in attributes.items():
        setattr(step, name, value)
    return step
