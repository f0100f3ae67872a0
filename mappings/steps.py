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

from typing import Mapping, Sequence

from mappings.controlkinds import (
    build_fail, build_for_each, build_include, build_python, build_route, build_stop,
)
from mappings.editkinds import (
    build_add_segment, build_copy, build_delete, build_format, build_move, build_set,
    build_translate,
)
from mappings.program import Program, StepTrace
from mappings.stepcompiler import NO_SCOPE, StepCompiler, StepKind
from mappings.stepkinds import FilterStep, make
from mappings.stepoutcomes import RunOutcome, StepFailure
from mappings.stepproblems import (  # noqa: F401 (IncludedSteps is part of this API)
    IncludedSteps, Resolver, StepProblem, StepsError, _line,
)
from mappings.tables import CodeTable

__all__ = ["Program", "RunOutcome", "StepFailure", "StepTrace", "StepProblem", "StepsError",
           "KINDS",
           "compile_filters", "compile_steps"]

# The operations, in the order errors list them: (required keys, optional keys, builder);
# optional None: any key is taken (the format's or the function's parameters).
KINDS: dict[str, StepKind] = {
    "set": StepKind((), ("value", "value-from"), build_set),
    "copy": StepKind(("to",), (), build_copy),
    "move": StepKind(("to",), (), build_move),
    "delete": StepKind((), (), build_delete),
    "add-segment": StepKind((), ("after", "fields"), build_add_segment),
    "translate": StepKind(("table",), ("to", "display-to", "system-to", "on-unknown",
                                       "default"), build_translate),
    "format": StepKind(("with",), None, build_format),
    "for-each": StepKind(("steps",), (), build_for_each),
    "route": StepKind((), (), build_route),
    "stop": StepKind((), (), build_stop),
    "fail": StepKind((), (), build_fail),
    "python": StepKind((), None, build_python),
    "include": StepKind((), (), build_include),
}


def compile_steps(steps: Sequence[Mapping], *, file: str = "",
                  tables: Mapping[str, CodeTable] = {}, field: str = "steps",
                  include: Resolver | None = None) -> Program:
    """Check and build ``steps`` once; raise :class:`StepsError` listing every problem.

    ``include`` resolves the ``include:`` steps (see the module's docstring); without it an
    ``include:`` step is refused.
    """
    compiler = StepCompiler(file, tables, KINDS, include)
    return compiler.program(compiler.steps(steps, field, NO_SCOPE))


def compile_filters(expressions: Sequence[str], *, file: str = "",
                    field: str = "filters") -> Program:
    """A program that stops (FILTERED) the message unless every expression is true."""
    compiler = StepCompiler(file, {}, KINDS)
    built = []
    if not isinstance(expressions, Sequence) or isinstance(expressions, (str, bytes)):
        compiler.problem(_line(expressions), field, "expected a list of conditions")
        expressions = []
    for index, text in enumerate(expressions):
        where = f"{field}[{index}]"
        step = make(FilterStep, file, _line(expressions, index=index), where)
        step.expression = compiler.condition(step, text, step.line, where, NO_SCOPE)
        if step.expression is not None:
            step.reason = f"filtered by {where}: {text.strip()}"
            built.append(step)
    return compiler.program(built)
