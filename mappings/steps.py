"""
The ``steps:`` language: what a channel or a mapping file does to each message.

A ``steps:`` list is compiled ONCE, when the channel is loaded: every path, condition, code
table and format is checked and prebuilt, and *every* mistake is reported at once with its
file and line (:class:`StepsError`). Running the resulting :class:`Program` on a message is
then a loop over prebuilt objects that changes the message in place.

API::

    program = compile_steps(steps, file="channels/lab.yaml", tables={"lab-loinc": table})
    outcome = program.run(message)      # RunOutcome(stopped, reason, routes)
    program.run(message, trace=print)   # a StepTrace after each top-level step (tools)
    filters = compile_filters(['MSH-9.1 == "ORU"'], file="channels/lab.yaml")

A step that cannot process a message raises :class:`StepFailure`, whose text names the file,
line, step, concrete path and value::

    channels/lab.yaml:14: steps[3].translate: OBX[2]-3.1 = 'XYZ': code not in table lab-loinc

Steps are numbered from 0 in these messages (``steps[0]`` is the first), as are nested ones
(``steps[2].steps[0].translate``) and filters (``filters[1]``).

Steps
-----
Each step is a mapping with exactly ONE operation key plus that operation's options, and an
optional ``when:`` condition (see :mod:`mappings.expressions`): the step runs only when the
condition is true. Paths are those of :mod:`mappings.paths` (``PID-5.1``, ``PID-3[2].4.1``,
``PID-3[*].1``, ``OBX[*]-5``, ``ZBE``); values read and written are unescaped text, so write
``value: "A|B"``, never ``A\\F\\B``. A path that stops early names component 1 (``PID-5`` is
``PID-5.1.1``), except in ``copy``/``move``/``delete``, which work on whole nodes. Values in
the YAML must be text: quote numbers and words YAML would read otherwise (``"1"``, ``"NO"``).

``set: PATH`` + ``value: "text"`` or ``value-from: PATH``
    Write the value at the path, creating fields, repetitions and components as needed. With
    ``value-from``, the first value present at the other path is written; when it has none,
    the target is emptied. ``value: '""'`` writes the HL7 null. A ``[*]`` target writes every
    existing occurrence. Writing into a segment the message lacks fails the message
    (:class:`StepFailure` naming the path): add the segment first or guard with ``when``.

``copy: PATH`` + ``to: PATH``
    Copy the whole node (field with its repetitions, a repetition, a component...) as
    encoded text, structure and escapes included: ``copy: PID-3[2]`` + ``to: PID-2``. An absent
    source empties the target. A source with ``[*]`` copies each node it names to the
    matching occurrence of the target's single ``[*]`` (``copy: OBX[*]-3.1`` +
    ``to: OBX[*]-4``: each OBX's own).

``move: PATH`` + ``to: PATH``
    ``copy``, then ``delete`` the source.

``delete: PATH``
    Empty a field (``PID-5``), remove one repetition (``PID-3[2]``: later ones move up),
    empty a component or subcomponent; a segment path removes segments (``OBX[2]``,
    ``OBX[*]``), a group path a group (``ORDER_OBSERVATION[2]``). A segment or group without
    an index is refused at load (``delete: NTE`` would remove the first NTE only: write
    ``NTE[1]`` or ``NTE[*]``), except the current segment of a ``for-each`` over it.
    Deleting what is absent does nothing.

``add-segment: NAME`` + ``after: SEGMENT`` (optional) + ``fields: {1: "x", 5: "y"}`` (optional)
    Insert a new segment after the segment named (``PV1``, ``OBX[2]``; ``OBX[*]`` is after
    the last OBX), at the end of the message without ``after``. ``fields`` maps field
    numbers to values, escaped as they are written. When the ``after`` segment is absent the
    message fails. MSH cannot be added.

``translate: PATH`` + ``table: NAME``, optional ``to: PATH``, ``display-to: PATH``, ``system-to: PATH``, ``on-unknown: error|keep|default|empty``, ``default: "code"``
    Look the value up in a code table (:mod:`mappings.tables`) and write the target code in
    place, or at ``to``; ``display-to`` and ``system-to`` receive the display text and the code
    system. An absent value and the HL7 null are left alone. A code the table lacks (a table
    with its own ``default:`` has none) is handled by ``on-unknown``: ``error`` (the
    default) fails the message naming the step, path, value and table; ``keep`` leaves the
    value (and copies it to ``to``); ``default`` writes the step's ``default:`` code (required
    then); ``empty`` writes empty values. A ``[*]`` path translates every value, in place only
    (use ``for-each`` to send each one elsewhere).

``format: PATH`` + ``with: NAME`` + the format's parameters, optional ``to: PATH``
    Apply a transform of :mod:`mappings.formats` (``dtm-to-iso``, ``dtm-pattern`` with
    ``pattern: "%d/%m/%Y"``, ``title``, ``upper``, ``pad`` with ``length: 10``...) in place or
    into ``to``. Names and parameters are checked at load; a value the transform cannot read
    fails the message with the value named. A ``[*]`` path formats every value in place.

``for-each: SEGMENT[*]`` or ``PATH[*]`` + ``steps: [...]``
    Run the nested steps once per segment (``OBX[*]``) or per repetition of a field
    (``PID-3[*]``, ``OBX[*]-5[*]``: each repetition of each OBX), in message order; the
    occurrences are those present when the loop starts. Inside, a path on the loop's segment
    name WITHOUT an occurrence index names the current segment: in ``for-each: OBX[*]``,
    ``OBX-3.1`` is this OBX's, and ``delete: OBX`` removes it; with an explicit index
    (``OBX[1]-3``, ``OBX[*]-5``) a path names segments of the whole message as usual. In a
    loop over a field's repetitions, a path on that segment and field without a repetition
    index names the current repetition (``PID-3.1`` in ``for-each: PID-3[*]``); other fields
    of that segment are the current segment's. Paths on other segments, and in the ``when:``
    conditions of nested steps, follow the same rule. Loops nest.

``for-each: GROUP[*]`` + ``steps: [...]``
    Run the nested steps once per instance of a segment group (``ORDER_OBSERVATION[*]``,
    ``PATIENT_RESULT/ORDER_OBSERVATION[*]``; :mod:`mappings.groups`). Inside, a path whose
    first name belongs to the group (a segment or group its structure puts there, or a
    segment placed in it) is read inside the current instance: ``OBR-4`` is this order's,
    ``for-each: OBX[*]`` visits this order's OBX; other paths (``MSH-10``, ``PID-3``) read
    the whole message, as does a path written with a leading ``/`` (``/OBX[1]-3``).

``route: [dest, ...]`` (or ``route: dest``)
    Deliver this message only to these destinations. When several ``route`` steps run,
    their destinations add up; when none runs, the message goes to every destination. The
    engine checks the names (:attr:`Program.routes_named`).

``stop: "reason"``
    Stop here: later steps do not run and the message is FILTERED with this reason. Usually
    with ``when:``.
``fail: "reason"``
    Fail the message: later steps do not run and it is stored in ERROR with this reason (as a
    :class:`StepFailure` naming the step), for an operator to fix and replay. ``stop`` is for
    messages the channel does not want; ``fail`` for messages it wants but cannot take as
    they are (a document without its content). Usually with ``when:``.

``include: FILE``
    The steps of a mapping file, compiled here, in place of this step, as if they were written
    in the list (inside a ``for-each`` they follow its scoping). The file is read by whoever
    loads the configuration (:mod:`engine.config.includes` for the engine), never by this module:
    ``compile_steps(..., include=resolver)`` is given a ``resolver(text, from_file)`` that
    returns the file's :class:`IncludedSteps` (its name for messages and its ``steps:`` list),
    None when the loader has already reported why it has none, or raises ``LookupError`` with
    the reason the include fails (reported at the include's own line). Mistakes inside the
    file are reported with the file's own name and lines; a file that includes itself, directly
    or not, is an error at the include that closes the cycle. ``include`` takes no ``when:``.

``python: package.module:function`` + any options
    The escape hatch: the function is imported at load and called as
    ``function(message, **options)`` with the :class:`~mappings.message.HL7Message` (the
    whole message, also inside ``for-each``). It changes the message in place and returns
    None, or a :class:`RunOutcome` to stop (``stopped=True``) or route. An exception it
    raises fails the message.

Example::

    steps:
      - set: MSH-5
        value: DPI
      - translate: PID-8
        table: sex-hl7-to-fhir
        on-unknown: keep
      - format: PID-7
        with: dtm-pattern
        pattern: "%d/%m/%Y"
      - delete: ZBE[*]
        when: MSH-9.2 == "A08"
      - for-each: OBX[*]
        steps:
          - translate: OBX-3.1
            table: lab-loinc
            display-to: OBX-3.2
      - stop: test patient
        when: PID-5.1 == "TEST"

Load-time errors (all reported, each with file:line): a step that is not a mapping, no or
two operation keys, an unknown key (with a did-you-mean), a missing option, a bad path (with
its column), a bad condition, an unknown table, an unknown format or bad parameter, a python
callable that cannot be imported. A filter (:func:`compile_filters`) is a condition; the
message passes when every filter is true, else it is FILTERED with the reason
``filtered by filters[i]: <expression>``.

test-case-name: tests.mappings.test_steps
"""
from __future__ import annotations

import importlib
from dataclasses import replace
from typing import Any, Mapping, Sequence

from mappings import stepkinds as k
from mappings.expressions import ExpressionError, compile_expression
from mappings.formats import TEXT_FORMATS, FormatError, build_format
from mappings.groups import check_group_name
from mappings.paths import EVERY, MAX_NUMBER_DIGITS, PathError, parse_path
from mappings.stepkinds import Program, RunOutcome, StepFailure, StepTrace
from mappings.stepproblems import (  # noqa: F401 (IncludedSteps is part of this API)
    IncludedSteps, Resolver, StepProblem, StepsError, _did_you_mean, _line,
)
from mappings.tables import CodeTable

__all__ = ["Program", "RunOutcome", "StepFailure", "StepTrace", "StepProblem", "StepsError",
           "KINDS",
           "compile_filters", "compile_steps"]

# The operation keys and their options: (required, optional); None: any option is taken.
KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...] | None]] = {
    "set": ((), ("value", "value-from")),
    "copy": (("to",), ()),
    "move": (("to",), ()),
    "delete": ((), ()),
    "add-segment": ((), ("after", "fields")),
    "translate": (("table",), ("to", "display-to", "system-to", "on-unknown", "default")),
    "format": (("with",), None),
    "for-each": (("steps",), ()),
    "route": ((), ()),
    "stop": ((), ()),
    "fail": ((), ()),
    "python": ((), None),
    "include": ((), ()),
}
ON_UNKNOWN = ("error", "keep", "default", "empty")


class _Compiler:
    """Builds step objects, collecting every problem instead of stopping at the first."""

    def __init__(self, file: str, tables: Mapping[str, CodeTable],
                 include: Resolver | None = None):
        self.file = file
        self.tables = tables
        self.include = include
        self.including: list[str] = [file]  # the files being compiled, outermost first
        self.problems: list[StepProblem] = []
        self.tables_used: set[str] = set()
        self.paths_used: set[str] = set()
        self.routes: set[str] = set()

    def problem(self, line: int, field: str, message: str, module: str | None = None) -> None:
        self.problems.append(StepProblem(self.file, line, field, message, module))

    # -- shared pieces ---------------------------------------------------------------------

    def path(self, text: Any, line: int, field: str, scope: tuple) -> k.Access | None:
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
            return k.Access(path)
        key = (path.segment, path.field)
        if path.field is not None and path.repetition is None and key in fields:
            return k.Access(path, bound=True, rep_key=key)
        return k.Access(path, bound=True)

    def condition(self, step: k.Step, text: Any, line: int, field: str, scope: tuple):
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
        if isinstance(value, str):
            return value
        self.problem(line, field, f"expected text, not {value!r} (write it in quotes)")
        return None

    # -- steps -----------------------------------------------------------------------------

    def steps(self, steps: Any, field: str, scope: tuple) -> list[k.Step]:
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

    def step(self, item: Any, field: str, line: int, scope: tuple) -> k.Step | None:
        if not isinstance(item, Mapping):
            self.problem(line, field, "a step must be a mapping with one operation, such "
                                      f"as {{set: PID-5.1, value: X}}, not {item!r}")
            return None
        kinds = [key for key in item if key in KINDS]
        if len(kinds) > 1:
            self.problem(_line(item, kinds[1]), field,
                         f"one operation per step: {' and '.join(map(str, kinds))} "
                         "are in the same step")
            return None
        if not kinds:
            unknown = [key for key in item if key != "when"]
            hint = "".join(f"; unknown step {key!r}{_did_you_mean(key, KINDS)}"
                           for key in unknown)
            self.problem(line, field, "no operation: expected one of "
                                      f"{', '.join(KINDS)}{hint}")
            return None
        kind = kinds[0]
        required, optional = KINDS[kind]
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
        step = getattr(self, "_" + kind.replace("-", "_"))(item, kind_field, line, scope) \
            if ok else None
        if step is not None and "when" in item:
            step.when = self.condition(step, item["when"], _line(item, "when"),
                                       f"{field}.when", scope)
            if step.when is None:
                return None
        return step

    def _make(self, kind, line, field, **attributes):
        if any(value is _BAD for value in attributes.values()):
            return None
        return k.make(kind, self.file, line, field, **attributes)

    def _access(self, item, key, field, scope, optional=False):
        if key not in item:
            return None if optional else _BAD
        base = field.rsplit(".", 1)[0]
        where = field if key == field.rsplit(".", 1)[1] else f"{base}.{key}"
        access = self.path(item[key], _line(item, key), where, scope)
        return _BAD if access is None else access

    def _value_access(self, item, key, field, scope, optional=False):
        """A path that must name a value (not a segment)."""
        access = self._access(item, key, field, scope, optional)
        if isinstance(access, k.Access) and access.path.names_group:
            self.problem(_line(item, key), f"{field.rsplit('.', 1)[0]}.{key}",
                         f"{access.text} is a group; name a field of one of its segments, "
                         f"such as {access.text}/OBR-4")
            return _BAD
        if isinstance(access, k.Access) and access.segment_only:
            self.problem(_line(item, key), f"{field.rsplit('.', 1)[0]}.{key}",
                         f"{access.text} is a segment; name a field such as "
                         f"{access.text}-1")
            return _BAD
        return access

    def _set(self, item, field, line, scope):
        target = self._value_access(item, "set", field, scope)
        has_value, has_source = "value" in item, "value-from" in item
        if has_value == has_source:
            self.problem(_line(item, "set"), field, "set needs 'value' or 'value-from' "
                                                    "(one of them)")
            return None
        value = source = None
        if has_value:
            value = self.text(item["value"], _line(item, "value"),
                              field.rsplit(".", 1)[0] + ".value")
            if value is None:
                return None
        else:
            source = self._value_access(item, "value-from", field, scope)
        return self._make(k.SetStep, line, field, target=target, value=value, source=source)

    def _copy(self, item, field, line, scope, move=False):
        kind = "move" if move else "copy"
        source = self._value_access(item, kind, field, scope)
        target = self._value_access(item, "to", field, scope)
        if isinstance(source, k.Access) and isinstance(target, k.Access) and any(
                index is EVERY for access in (source, target) for _, index in access.path.groups):
            self.problem(_line(item, kind), field,
                         f"{kind} takes no [*] on a group: loop over the group with for-each "
                         "and copy inside it")
            return None
        if isinstance(source, k.Access) and isinstance(target, k.Access):
            stars = (target.path.occurrence is EVERY) + (target.path.repetition is EVERY)
            many = source.path.occurrence is EVERY or source.path.repetition is EVERY
            if many and stars != 1:
                self.problem(_line(item, "to"), field.rsplit(".", 1)[0] + ".to",
                             "a source with [*] needs a target with exactly one [*], "
                             "such as OBX[*]-4")
                return None
            if not many and stars:
                self.problem(_line(item, "to"), field.rsplit(".", 1)[0] + ".to",
                             "a single source cannot be copied to a [*] target")
                return None
        return self._make(k.CopyStep, line, field, source=source, target=target, move=move)

    def _move(self, item, field, line, scope):
        return self._copy(item, field, line, scope, move=True)

    def _delete(self, item, field, line, scope):
        target = self._access(item, "delete", field, scope)
        if isinstance(target, k.Access) and target.path.segment == "MSH" \
                and target.segment_only:
            self.problem(_line(item, "delete"), field, "MSH cannot be deleted")
            return None
        if isinstance(target, k.Access) and target.segment_only and not target.bound \
                and target.path.occurrence is None:
            # "delete: NTE" reads as "the NTE segments" but names the first one only.
            path, what = target.path, "group" if target.path.names_group else "segment"
            one, every = (str(replace(path, occurrence=index)) for index in (1, EVERY))
            self.problem(_line(item, "delete"), field,
                         f"{target.text} names the first {path.segment} {what} only: write "
                         f"{one} for the first one or {every} for every one")
            return None
        return self._make(k.DeleteStep, line, field, target=target)

    def _add_segment(self, item, field, line, scope):
        name = item["add-segment"]
        bad = False
        if not (isinstance(name, str) and len(name) == 3 and name.isascii()
                and name.isalnum() and name.isupper() and name[0].isalpha()) or name == "MSH":
            self.problem(_line(item, "add-segment"), field,
                         f"expected a segment name such as ZBE (not MSH), not {name!r}")
            bad = True
        after = self._access(item, "after", field, scope, optional=True)
        if isinstance(after, k.Access) and not after.segment_only:
            self.problem(_line(item, "after"), field.rsplit(".", 1)[0] + ".after",
                         f"after needs a segment such as PV1 or OBX[2], not {after.text}")
            after = _BAD
        fields = []
        spec = item.get("fields", {})
        where = field.rsplit(".", 1)[0] + ".fields"
        if not isinstance(spec, Mapping):
            self.problem(_line(item, "fields"), where, "expected {field number: value}")
            bad = True
        else:
            for number, value in spec.items():
                line_ = _line(spec, number) or _line(item, "fields")
                if isinstance(number, str) and number.isascii() and number.isdigit():
                    number = int(number) if len(number) <= MAX_NUMBER_DIGITS else number
                if type(number) is not int or not 0 < number < 10 ** MAX_NUMBER_DIGITS:
                    self.problem(line_, where, f"expected a field number (1, 2...), "
                                               f"not {number!r}")
                    bad = True
                    continue
                text = self.text(value, line_, f"{where}.{number}")
                if text is None:
                    bad = True
                    continue
                fields.append((number, text))
        if bad:
            return None
        return self._make(k.AddSegmentStep, line, field, name=name, after=after,
                          fields=tuple(sorted(fields)))

    def _translate(self, item, field, line, scope):
        base = field.rsplit(".", 1)[0]
        source = self._value_access(item, "translate", field, scope)
        target = self._value_access(item, "to", field, scope, optional=True)
        display = self._value_access(item, "display-to", field, scope, optional=True)
        system = self._value_access(item, "system-to", field, scope, optional=True)
        name = item["table"]
        table = self.tables.get(name) if isinstance(name, str) else None
        if table is None:
            known = ", ".join(sorted(self.tables)) or "none"
            self.problem(_line(item, "table"), base + ".table",
                         f"unknown table {name!r}{_did_you_mean(name, self.tables)}; "
                         f"the tables are: {known}")
        else:
            self.tables_used.add(name)
        policy = item.get("on-unknown", "error")
        default = None
        if policy not in ON_UNKNOWN:
            self.problem(_line(item, "on-unknown"), base + ".on-unknown",
                         f"expected one of {', '.join(ON_UNKNOWN)}, not {policy!r}"
                         f"{_did_you_mean(policy, ON_UNKNOWN)}")
            table = None
        elif (policy == "default") != ("default" in item):
            self.problem(_line(item, "on-unknown" if policy == "default" else "default"),
                         base + ".default",
                         "'on-unknown: default' and 'default: CODE' go together")
            table = None
        elif policy == "default":
            default = self.text(item["default"], _line(item, "default"), base + ".default")
            if default is None:
                table = None
        if isinstance(source, k.Access) and source.many \
                and any(key in item for key in ("to", "display-to", "system-to")):
            self.problem(_line(item, "translate"), field,
                         "a [*] path is translated in place only; use for-each to write "
                         "each code elsewhere")
            return None
        if table is None:
            return None
        return self._make(k.TranslateStep, line, field, source=source, table=table,
                          target=target, display=display, system=system,
                          on_unknown=policy, default=default)

    def _format(self, item, field, line, scope):
        base = field.rsplit(".", 1)[0]
        source = self._value_access(item, "format", field, scope)
        target = self._value_access(item, "to", field, scope, optional=True)
        name = item["with"]
        params = {key: value for key, value in item.items()
                  if key not in ("format", "with", "when", "to")}
        try:
            transform = build_format(name, params)
        except FormatError as error:
            self.problem(_line(item, "with"), base + ".with", error.message)
            return None
        except TypeError as error:
            self.problem(_line(item, "with"), base + ".with", f"format {name!r}: {error}")
            return None
        if isinstance(source, k.Access) and target is not None and target is not _BAD \
                and source.many:
            self.problem(_line(item, "to"), base + ".to",
                         "a [*] path is formatted in place only")
            return None
        return self._make(k.FormatStep, line, field, source=source, transform=transform,
                          target=target, name=name, text_only=name in TEXT_FORMATS)

    def _for_each(self, item, field, line, scope):
        over = self._access(item, "for-each", field, scope)
        if over is _BAD:
            return None
        path = over.path
        if path.is_segment:
            good = path.occurrence is EVERY
        else:
            good = path.repetition is EVERY and path.component is None
        if not good:
            self.problem(_line(item, "for-each"), field,
                         f"for-each takes SEGMENT[*] (OBX[*]), GROUP[*] "
                         f"(ORDER_OBSERVATION[*]) or a field's repetitions (PID-3[*], "
                         f"OBX-5[*]), not {over.text}")
            return None
        if path.groups and not path.is_segment:
            self.problem(_line(item, "for-each"), field,
                         f"for-each over a field's repetitions takes no group ({over.text}): "
                         "loop over the group, then over the field inside it")
            return None
        if path.names_group:
            base = field.rsplit(".", 1)[0]
            steps = self.steps(item["steps"], base + ".steps", scope)
            return self._make(k.ForEachStep, line, field, over=over, steps=tuple(steps))
        segments, fields = scope
        inner = (segments | {path.segment},
                 fields | ({(path.segment, path.field)} if path.field else set()))
        if path.is_segment:
            # A fresh loop over this segment: its fields are no longer repetition-bound.
            inner = (inner[0], frozenset(f for f in inner[1] if f[0] != path.segment))
        base = field.rsplit(".", 1)[0]
        steps = self.steps(item["steps"], base + ".steps", inner)
        return self._make(k.ForEachStep, line, field, over=over, steps=tuple(steps))

    def _route(self, item, field, line, scope):
        names = item["route"]
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, Sequence) or not names or not all(
                isinstance(name, str) and name.strip() for name in names):
            self.problem(_line(item, "route"), field,
                         "expected a destination name or a list of them")
            return None
        self.routes.update(names)
        return self._make(k.RouteStep, line, field, routes=frozenset(names))

    def _stop(self, item, field, line, scope):
        return self._ending(item, "stop", k.StopStep, "test patient", field, line)

    def _fail(self, item, field, line, scope):
        return self._ending(item, "fail", k.FailStep, "no document in OBX-5", field, line)

    def _ending(self, item, kind, step_class, example, field, line):
        """``stop`` and ``fail``: a step that ends the run, with the reason it gives."""
        reason = item[kind]
        if not isinstance(reason, str) or not reason.strip():
            self.problem(_line(item, kind), field,
                         f"expected the reason, such as {kind}: {example}")
            return None
        return self._make(step_class, line, field, reason=reason.strip())

    def _python(self, item, field, line, scope):
        spec = item["python"]
        where = _line(item, "python")
        if not isinstance(spec, str) or spec.count(":") != 1:
            self.problem(where, field, f"expected package.module:function, not {spec!r}")
            return None
        module_name, _, name = spec.strip().partition(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as error:  # ImportError, or the module failing as it loads
            missing = error.name if isinstance(error, ModuleNotFoundError) else None
            self.problem(where, field, f"cannot import {module_name!r}: "
                                       f"{type(error).__name__}: {error}", missing)
            return None
        function = getattr(module, name, None)
        if function is None:
            self.problem(where, field, f"{module_name} has no {name!r}"
                                       f"{_did_you_mean(name, dir(module))}")
            return None
        if not callable(function):
            self.problem(where, field, f"{spec} is not callable")
            return None
        options = {key: value for key, value in item.items() if key not in ("python", "when")}
        return self._make(k.PythonStep, line, field, function=function, options=options,
                          name=spec.strip())

    def _include(self, item, field, line, scope):
        """The steps of the included file, compiled in this scope, as a list."""
        text = item["include"]
        where = _line(item, "include")
        if "when" in item:
            self.problem(_line(item, "when"), field.rsplit(".", 1)[0] + ".when",
                         "include takes no when: put the condition on the included steps")
            return None
        if not isinstance(text, str) or not text.strip():
            self.problem(where, field, "expected the path of a mapping file, such as "
                                       "include: ../mappings/pam-fr-to-practice.yaml")
            return None
        if self.include is None:
            self.problem(where, field, "include needs the configuration loader to read "
                                       "the mapping file; none was given")
            return None
        try:
            found = self.include(text.strip(), self.file)
        except LookupError as error:
            self.problem(where, field, str(error.args[0] if error.args else error))
            return None
        if found is None:
            return None  # the loader has said why
        if found.file in self.including:
            chain = self.including[self.including.index(found.file):] + [found.file]
            self.problem(where, field, "include cycle: " + " includes ".join(chain))
            return None
        outer = self.file
        self.file = found.file
        self.including.append(found.file)
        try:
            return self.steps(found.steps, found.field, scope)
        finally:
            self.including.pop()
            self.file = outer

    def program(self, steps: list[k.Step]) -> Program:
        if self.problems:
            # A file included twice is compiled twice: say each of its mistakes once.
            raise StepsError(list(dict.fromkeys(self.problems)))
        return Program(steps, frozenset(self.tables_used), frozenset(self.paths_used),
                       frozenset(self.routes))


_BAD = object()
_NO_SCOPE: tuple = (frozenset(), frozenset())


def compile_steps(steps: Sequence[Mapping], *, file: str = "",
                  tables: Mapping[str, CodeTable] = {}, field: str = "steps",
                  include: Resolver | None = None) -> Program:
    """Check and build ``steps`` once; raise :class:`StepsError` listing every problem.

    ``include`` resolves the ``include:`` steps (see the module's docstring); without it an
    ``include:`` step is refused.
    """
    compiler = _Compiler(file, tables, include)
    return compiler.program(compiler.steps(steps, field, _NO_SCOPE))


def compile_filters(expressions: Sequence[str], *, file: str = "",
                    field: str = "filters") -> Program:
    """A program that stops (FILTERED) the message unless every expression is true."""
    compiler = _Compiler(file, {})
    built = []
    if not isinstance(expressions, Sequence) or isinstance(expressions, (str, bytes)):
        compiler.problem(_line(expressions), field, "expected a list of conditions")
        expressions = []
    for index, text in enumerate(expressions):
        where = f"{field}[{index}]"
        step = k.make(k.FilterStep, file, _line(expressions, index=index), where)
        step.expression = compiler.condition(step, text, step.line, where, _NO_SCOPE)
        if step.expression is not None:
            step.reason = f"filtered by {where}: {text.strip()}"
            built.append(step)
    return compiler.program(built)
