"""
The condition language of ``when:`` and filters, parsed once at load into a tree of small
nodes; user text is never handed to ``eval``.

Example::

    MSH-9.1 == "ADT" and PV1-2 in ["I", "O"]
    exists(ZBE) and not empty(PID-3[*].1)
    OBX[*]-3.1 == "2345-7" and OBX[*]-5 > 11.1
    matches(PID-3[*].4.1, "^INS") or startswith(PID-3.5, "PI")

API: :func:`compile_expression` turns the text into an :class:`Expression`, or raises
:class:`ExpressionError` with the column of the mistake. ``Expression.paths`` is the set of path
texts the condition reads, so the loader can check and compile them once with the real path
parser; ``Expression.evaluate(resolve)`` answers True or False, calling ``resolve(path_text)``
with the path exactly as written. This module knows paths only by their shape, so it depends
on nothing else in ``mappings/``. The resolver's side of the contract: it returns the unescaped
values present at the path, ``[]`` when there are none, the HL7 null as its text ``'""'``, and
for a segment alone one non-empty text per segment present.

Values
------
- ``"text"``: a string in double quotes; ``\\"`` is a quote, ``\\\\`` a backslash, and no other
  escape exists. Values are compared unescaped, so write ``"a|b"``, not ``"a\\F\\b"``.
- ``12``, ``-3``, ``7.25``: a number (digits, an optional ``-``, an optional decimal part).
- A path: a segment name (an upper-case letter then two upper-case letters or digits: ``PID``,
  ``OBX``, ``ZBE``), an optional occurrence ``[n]`` or ``[*]`` (every one), ``-``, a field
  number with an optional repetition ``[n]`` or ``[*]``, then an optional ``.component`` and
  ``.subcomponent``: ``MSH-9.1``, ``PID-3[*].1``, ``PID-3[2].4.1``, ``OBX[*]-5``, ``ZBE-1``.
  Path numbers start at 1, with no leading 0. Segment groups may come first, each followed by
  ``/`` (``ORDER_OBSERVATION[2]/OBX-5``; a leading ``/`` too: ``/OBX[1]-3``). A segment or a
  group alone (``ZBE``, ``OBX[2]``, ``ORDER_OBSERVATION[2]``) is only allowed in ``exists()``.
- ``length(PATH)``: the number of characters of each value at the path, a number.
- ``[ "I", "O", 3 ]``: a list of strings and numbers, only after ``in`` and ``not in``.

Conditions
----------
- ``A == B``, ``A != B``, ``A < B``, ``A <= B``, ``A > B``, ``A >= B``.
- ``A in [...]``, ``A not in [...]``.
- ``exists(PATH)``: the path holds a value, the HL7 null included.
- ``empty(PATH)``: the path holds no value: absent, empty, or the HL7 null.
- ``matches(PATH, "regex")``: a value matches the regular expression anywhere (Python ``re``
  syntax; anchor it with ``^`` and ``$``). The expression is compiled at load.
- ``startswith(PATH, "prefix")``: a value starts with the prefix.
- ``not C``, ``C and D``, ``C or D``, ``( C )``. ``not`` applies to the condition that follows
  it, ``and`` binds tighter than ``or``: ``not A == "x" or B == "y" and C == "z"`` reads
  ``(not (A == "x")) or ((B == "y") and (C == "z"))``. (A value is not true or false, so ``not``
  taking a value, as in ``(not A) == "x"``, could only be an error.)
- Keywords and function names are lower case; whitespace, newlines included, is free.
  Parentheses and ``not`` nest at most 50 deep.

Several values, missing paths, the HL7 null
-------------------------------------------
A path may give several values (``PID-3[*].1``, ``OBX[*]-5``). A condition holds if it holds for
ANY value: ``PID-3[*].5 == "NH"`` is true if one identifier is of type NH. ``!=`` and ``not in``
are the negations of ``==`` and ``in``: ``PID-3[*].5 != "NH"`` is true if NO value is NH.
Comparing two paths compares every pair of values. ``matches`` and ``startswith`` likewise hold
if one value does.

An absent path (no segment, field, repetition or component there) reads as one empty value
``""``: ``PV1-2 == ""`` is true when PV1 or PV1-2 is missing, and ``PV1-2 != "I"`` is true too.
The HL7 null, a field holding two double quotes, is "present but null": the resolver gives its
text ``""`` (two characters), which compares as the empty value, so ``empty()`` is true, yet
``exists()`` is true as well; ``exists(X) and empty(X)`` tells a null from an absent field.
A segment alone in ``exists()`` is true when the resolver gives it a non-empty text.

Numbers and text
----------------
A path without a component reads its first component, so comparing it with a text that holds
``^`` (``MSH-9 == "ORU^R01"``) could never hold: it is refused at load, with the form
``(MSH-9.1 == "ORU" and MSH-9.2 == "R01")`` to write instead.

A string literal always compares as text, even ``"007"``: identifiers and codes keep their
zeros and ``MSH-12 == "2.5"`` is a text comparison. Text order is code-point order, which
orders HL7 dates and times of the same precision: ``PID-7 < "19500101"``.
A number literal (or ``length()``) compares numerically with values that are decimal numbers
(``+``/``-`` sign, digits, an optional decimal part: ``10``, ``10.0``, ``-.5``); a value that
is not a number never equals nor orders against a number: ``OBX-5 > 10`` is false for ``"<5"``
and ``OBX-5 != 10`` true. Two paths compare numerically when both values are numbers, as text
otherwise. A string literal against a number (``"a" == 1``, ``length(X) in ["3"]``) is refused
at load.

Grammar
-------
::

    condition  := conjunct ("or" conjunct)*
    conjunct   := term ("and" term)*
    term       := "not" term | "(" condition ")" | predicate | comparison
    predicate  := "exists" "(" (PATH | SEGMENT) ")" | "empty" "(" PATH ")"
                | ("matches" | "startswith") "(" PATH "," STRING ")"
    comparison := operand ("==" | "!=" | "<" | "<=" | ">" | ">=") operand
                | operand ["not"] "in" "[" [literal ("," literal)*] "]"
    operand    := PATH | literal | "length" "(" PATH ")"
    literal    := STRING | NUMBER

Errors name the mistake and its column (from 1), and ``str()`` echoes the expression with a
caret under it: ``expected a value after "==" at column 12``.

test-case-name: tests.mappings.test_expressions
"""
from __future__ import annotations

from mappings.conditionnodes import Resolver
from mappings.conditionparser import Parser
from mappings.conditiontokens import (  # noqa: F401 (FUNCTIONS is part of this API)
    FUNCTIONS, ExpressionError, tokenize,
)

__all__ = ["Expression", "ExpressionError", "FUNCTIONS", "compile_expression"]


class Expression:
    """A compiled condition: evaluate it as often as needed, it is never parsed again."""

    __slots__ = ("text", "paths", "_root")

    def __init__(self, text: str, root, paths: frozenset[str]):
        self.text = text
        #: Every path text the condition passes to the resolver (segments of exists() too).
        self.paths = paths
        self._root = root

    def evaluate(self, resolve: Resolver) -> bool:
        """True if the condition holds, reading values through ``resolve(path_text)``."""
        return self._root.evaluate(resolve)

    def render(self) -> str:
        """The condition in canonical form (one space around operators, quotes re-escaped)."""
        return self._root.render()

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"<Expression {self.text!r}>"


def compile_expression(text: str) -> Expression:
    """Parse ``text`` once into an :class:`Expression`; raise :class:`ExpressionError`."""
    try:
        parser = Parser(tokenize(text))
        root = parser.parse()
    except ExpressionError as error:
        raise ExpressionError(error.message, error.column, text) from None
    return Expression(text, root, frozenset(parser.paths))
