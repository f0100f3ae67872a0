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

import operator
import re
from collections.abc import Callable
from decimal import Decimal

from mappings.conditiontokens import (  # noqa: F401 (FUNCTIONS is part of this API)
    COMPARISONS as _COMPARISONS, FUNCTIONS, KEYWORDS as _KEYWORDS, ExpressionError,
    Token as _Token, tokenize as _tokenize,
)

Resolver = Callable[[str], list[str]]

HL7_NULL = '""'
"""The text of a field holding the HL7 null: two double quotes."""

_MAX_DEPTH = 50
_MISSING = ("",)
_NUMBER_VALUE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


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
        parser = _Parser(_tokenize(text))
        root = parser.parse()
    except ExpressionError as error:
        raise ExpressionError(error.message, error.column, text) from None
    return Expression(text, root, frozenset(parser.paths))


# Values -----------------------------------------------------------------------------------

def _number(text):
    """The value as a Decimal if it is a decimal number, else None."""
    if _NUMBER_VALUE.fullmatch(text) is None:
        return None
    return Decimal(text)


def _texts(resolve: Resolver, path: str):
    """The values at ``path`` as compared: one "" when absent, the null read as ""."""
    values = resolve(path)
    if not values:
        return _MISSING
    if HL7_NULL in values:
        return ["" if value == HL7_NULL else value for value in values]
    return values


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Path:
    __slots__ = ("path",)
    kind = "message"

    def __init__(self, path):
        self.path = path

    def values(self, resolve):
        return _texts(resolve, self.path)

    def render(self):
        return self.path


class _Literal:
    __slots__ = ("constant", "kind", "spelling")

    def __init__(self, value, kind, spelling):
        self.constant, self.kind, self.spelling = (value,), kind, spelling

    def values(self, resolve):
        return self.constant

    def render(self):
        return self.spelling


class _Length:
    __slots__ = ("path",)
    kind = "number"

    def __init__(self, path):
        self.path = path

    def values(self, resolve):
        return [len(value) for value in _texts(resolve, self.path)]

    def render(self):
        return f"length({self.path})"


# Conditions -------------------------------------------------------------------------------

class _Or:
    __slots__ = ("parts",)

    def __init__(self, parts):
        self.parts = parts

    def evaluate(self, resolve):
        for part in self.parts:
            if part.evaluate(resolve):
                return True
        return False

    def render(self):
        return " or ".join(part.render() for part in self.parts)


class _And(_Or):
    __slots__ = ()

    def evaluate(self, resolve):
        for part in self.parts:
            if not part.evaluate(resolve):
                return False
        return True

    def render(self):
        return " and ".join(_grouped(part, (_Or,)) for part in self.parts)


class _Not:
    __slots__ = ("part",)

    def __init__(self, part):
        self.part = part

    def evaluate(self, resolve):
        return not self.part.evaluate(resolve)

    def render(self):
        return "not " + _grouped(self.part, (_Or, _And))


def _grouped(node, kinds: tuple) -> str:
    """The node's text, in parentheses if it is of a kind that binds less tightly."""
    return f"({node.render()})" if type(node) in kinds else node.render()


class _Compare:
    """``left OP right``; ``!=`` is ``==`` negated, so it holds when no pair is equal."""

    __slots__ = ("left", "op", "right", "match", "negate")

    def __init__(self, left, op, right, match):
        self.left, self.op, self.right, self.match = left, op, right, match
        self.negate = op == "!="

    def evaluate(self, resolve):
        match = self.match
        rights = self.right.values(resolve)
        for left in self.left.values(resolve):
            for right in rights:
                if match(left, right):
                    return not self.negate
        return self.negate

    def render(self):
        return f"{self.left.render()} {self.op} {self.right.render()}"


class _In:
    """``value in [...]``; text items match as text, number items as numbers."""

    __slots__ = ("left", "items", "texts", "numbers", "negate")

    def __init__(self, left, items, negate):
        self.left, self.items, self.negate = left, items, negate
        self.texts = frozenset(i.constant[0] for i in items if i.kind == "text")
        self.numbers = frozenset(i.constant[0] for i in items if i.kind == "number")

    def evaluate(self, resolve):
        texts, numbers = self.texts, self.numbers
        parse = self.left.kind == "message" and numbers
        for value in self.left.values(resolve):
            if value in texts or (not parse and value in numbers):
                return not self.negate
            if parse and (number := _number(value)) is not None and number in numbers:
                return not self.negate
        return self.negate

    def render(self):
        items = ", ".join(item.render() for item in self.items)
        return f"{self.left.render()} {'not in' if self.negate else 'in'} [{items}]"


class _Predicate:
    """exists, empty, matches, startswith: one path and at most one string argument."""

    __slots__ = ("name", "path", "argument", "test")

    def __init__(self, name, path, argument=None):
        self.name, self.path, self.argument = name, path, argument
        if name == "matches":
            self.test = re.compile(argument).search
        elif name == "startswith":
            self.test = operator.methodcaller("startswith", argument)

    def evaluate(self, resolve):
        if self.name == "exists":
            return any(resolve(self.path))
        values = _texts(resolve, self.path)
        if self.name == "empty":
            return not any(values)
        test = self.test
        for value in values:
            if test(value):
                return True
        return False

    def render(self):
        extra = "" if self.argument is None else ", " + _quote(self.argument)
        return f"{self.name}({self.path}{extra})"


def _matcher(op: str, left_kind: str, right_kind: str):
    """The function comparing one left value with one right value, chosen once at load."""
    compare = _COMPARISONS[op]
    kinds = {left_kind, right_kind}
    if kinds == {"text", "number"}:
        return None
    if kinds == {"message"}:
        def either(left, right):
            a, b = _number(left), _number(right)
            if a is None or b is None:
                return compare(left, right)
            return compare(a, b)
        return either
    if kinds <= {"text", "message"} or kinds == {"number"}:
        return compare
    if left_kind == "message":
        return lambda left, right: (n := _number(left)) is not None and compare(n, right)
    return lambda left, right: (n := _number(right)) is not None and compare(left, n)


# Parser -----------------------------------------------------------------------------------

class _Parser:
    """Recursive descent over the tokens; ``paths`` collects every path text met."""

    def __init__(self, tokens: list[_Token]):
        self.tokens, self.position, self.depth = tokens, 0, 0
        self.paths: set[str] = set()

    def parse(self):
        node = self.condition()
        token = self.peek()
        if token.kind != "end":
            raise ExpressionError(f"unexpected {token.describe()} after a complete condition "
                                  '(missing "and" or "or"?)', token.column)
        return node

    def peek(self) -> _Token:
        return self.tokens[self.position]

    def take(self) -> _Token:
        token = self.tokens[self.position]
        if token.kind != "end":
            self.position += 1
        return token

    def accept(self, kind: str, text: str) -> bool:
        if self.peek().is_(kind, text):
            self.position += 1
            return True
        return False

    def expect(self, kind: str, text: str, what: str) -> None:
        if not self.accept(kind, text):
            self.fail(f"expected {what}")

    def fail(self, message: str, token: _Token | None = None):
        """Raise at ``token`` (the next one by default); "expected ..." says what was found."""
        token = token or self.peek()
        if message.startswith("expected") and token.kind != "end":
            message += f", found {token.describe()}"
        raise ExpressionError(message, token.column)

    def condition(self):
        return self.joined("or", _Or, self.conjunct)

    def conjunct(self):
        return self.joined("and", _And, self.term)

    def joined(self, keyword: str, node_type, parse_part):
        """``part (keyword part)*`` as one flat node, parts grouped in parentheses merged."""
        parts = [parse_part()]
        while self.accept("word", keyword):
            parts.append(parse_part())
        if len(parts) == 1:
            return parts[0]
        flat = []
        for part in parts:
            flat.extend(part.parts if type(part) is node_type else (part,))
        return node_type(flat)

    def term(self):
        token = self.peek()
        if token.is_("word", "not"):
            self.take()
            return _Not(self.nested(self.term, token))
        if token.is_("punct", "("):
            self.take()
            node = self.nested(self.condition, token)
            self.expect("punct", ")", 'a closing ")"')
            return node
        if token.kind == "word" and token.text in FUNCTIONS and token.text != "length":
            return self.predicate()
        return self.comparison()

    def nested(self, parse, opening: _Token):
        """``parse()`` one level deeper; the limit keeps Python's recursion far away."""
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            self.fail(f"conditions nested more than {_MAX_DEPTH} deep", opening)
        node = parse()
        self.depth -= 1
        return node

    def predicate(self):
        name = self.take().text
        self.expect("punct", "(", f'"(" after {name}')
        path = self.path_argument(name)
        argument = None
        if name in ("matches", "startswith"):
            self.expect("punct", ",", f'"," and a string after the path in {name}()')
            token = self.take()
            if token.kind != "string":
                self.fail(f"expected a string as the second argument of {name}()", token)
            argument = token.value
            if name == "matches":
                _check_regex(token)
        self.expect("punct", ")", f'a closing ")" after the arguments of {name}()')
        return _Predicate(name, path, argument)

    def path_argument(self, name: str) -> str:
        token = self.take()
        if token.kind == "segment" and name != "exists":
            self.fail(f"{name}() needs a field path, not the segment {token.text} alone "
                      f"(only exists() takes a segment)", token)
        if token.kind not in ("path", "segment"):
            self.fail(f"expected a path as the first argument of {name}()", token)
        self.paths.add(token.text)
        return token.text

    def comparison(self):
        left = self.operand("a condition")
        token = self.take()
        if token.kind == "operator":
            right_token = self.peek()
            right = self.operand(f'a value after "{token.text}"')
            match = _matcher(token.text, left.kind, right.kind)
            if match is None:
                self.fail("cannot compare text with a number", token)
            _check_composite(left, right, token.text, right_token)
            _check_composite(right, left, token.text, right_token)
            return _Compare(left, token.text, right, match)
        negate = token.is_("word", "not")
        if negate:
            token = self.take()
            if not token.is_("word", "in"):
                self.fail('expected "in" after "not"', token)
        if token.is_("word", "in"):
            return _In(left, self.items(left), negate)
        hint = f" (to test presence, write exists({left.path}))" if left.kind == "message" else ""
        self.fail(f'expected a comparison operator or "in" after {left.render()}{hint}', token)

    def operand(self, what: str):
        token = self.take()
        if token.kind == "path":
            self.paths.add(token.text)
            return _Path(token.text)
        if token.kind in ("string", "number"):
            return _literal(token)
        if token.is_("word", "length"):
            self.expect("punct", "(", '"(" after length')
            path = self.path_argument("length")
            self.expect("punct", ")", 'a closing ")" after the argument of length()')
            return _Length(path)
        self.fail(_operand_problem(token, self.peek(), what), token)

    def items(self, left) -> list[_Literal]:
        self.expect("punct", "[", 'a list after "in", like ["A", "B"]')
        items = []
        while not self.accept("punct", "]"):
            if items:
                self.expect("punct", ",", 'a "," or a closing "]" in the list')
            token = self.take()
            if token.kind not in ("string", "number"):
                self.fail("expected a string or a number in the list", token)
            item = _literal(token)
            if _matcher("==", left.kind, item.kind) is None:
                self.fail("cannot compare text with a number", token)
            _check_composite(left, item, "in", token)
            items.append(item)
        return items


def _literal(token: _Token) -> _Literal:
    if token.kind == "string":
        return _Literal(token.value, "text", _quote(token.value))
    return _Literal(token.value, "number", token.text)


def _operand_problem(token: _Token, following: _Token, what: str) -> str:
    """What to say when ``token`` stands where a value was expected."""
    if token.kind == "segment":
        return (f"a segment alone ({token.text}) can only be tested with exists({token.text}); "
                f'for the text, write "{token.text}"')
    if token.kind == "word" and token.text in FUNCTIONS:
        return f"{token.text}() is a condition, not a value"
    if token.kind == "word" and following.is_("punct", "("):
        return f'unknown function "{token.text}" (known: {", ".join(FUNCTIONS)})'
    if token.kind == "word" and token.text not in _KEYWORDS:
        return f'unexpected word "{token.text}" (text goes in double quotes)'
    return f"expected {what}"


def _check_composite(path, literal, op: str, token: _Token) -> None:
    """Refuse ``MSH-9 == "ORU^R01"``: a path without a component reads component 1 only,
    so a text with a component separator could never be equal; say how to write it."""
    if not isinstance(path, _Path) or not isinstance(literal, _Literal) \
            or literal.kind != "text" or "^" not in literal.constant[0]:
        return
    tail = path.path.rsplit("/", 1)[-1]
    if "-" not in tail or "." in tail.split("-", 1)[1]:
        return
    parts = literal.constant[0].split("^")
    each = " and ".join(f"{path.path}.{number} == {_quote(part)}"
                        for number, part in enumerate(parts, 1) if part)
    right = f"({each})" if op == "==" else f"not ({each})" if op == "!=" else None
    hint = f"; write {right}" if right else \
        f"; compare each component ({path.path}.1, {path.path}.2)"
    raise ExpressionError(f"{path.path} reads its first component only, so it is never "
                          f"{_quote(literal.constant[0])}{hint}", token.column)


def _check_regex(token: _Token) -> None:
    """Compile the pattern now so that a bad one is refused at load, with its position."""
    try:
        re.compile(token.value)
    except (re.error, OverflowError, RecursionError) as error:
        reason = getattr(error, "msg", str(error))
        raise ExpressionError(f"bad regular expression {token.text}: {reason}",
                              token.column) from None
