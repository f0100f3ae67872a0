"""
The evaluator of the condition language (:mod:`mappings.expressions`): the nodes a condition
is parsed into, each evaluating itself against a resolver of path values and rendering itself
in canonical form, with the comparison rules between message values, texts and numbers.
Nothing here is parsed at evaluation: regular expressions and comparisons are chosen once,
when the parser builds the node.

test-case-name: tests.mappings.test_expressions
"""
from __future__ import annotations

import operator
import re
from collections.abc import Callable
from decimal import Decimal

from mappings.conditiontokens import COMPARISONS

Resolver = Callable[[str], list[str]]

HL7_NULL = '""'
"""The text of a field holding the HL7 null: two double quotes."""

_MISSING = ("",)
_NUMBER_VALUE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


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


def quote(text: str) -> str:
    """``text`` as a string literal of the language, quotes and backslashes escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class PathOperand:
    """A path operand: the message's values at it."""

    __slots__ = ("path",)
    kind = "message"

    def __init__(self, path):
        self.path = path

    def values(self, resolve):
        return _texts(resolve, self.path)

    def render(self):
        return self.path


class Literal:
    """A text or number written in the condition."""

    __slots__ = ("constant", "kind", "spelling")

    def __init__(self, value, kind, spelling):
        self.constant, self.kind, self.spelling = (value,), kind, spelling

    def values(self, resolve):
        return self.constant

    def render(self):
        return self.spelling


class Length:
    """``length(PATH)``: the number of characters of each value."""

    __slots__ = ("path",)
    kind = "number"

    def __init__(self, path):
        self.path = path

    def values(self, resolve):
        return [len(value) for value in _texts(resolve, self.path)]

    def render(self):
        return f"length({self.path})"


# Conditions -------------------------------------------------------------------------------

class Or:
    """``a or b or ...``: true when one part is."""

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


class And(Or):
    """``a and b and ...``: true when every part is."""

    __slots__ = ()

    def evaluate(self, resolve):
        for part in self.parts:
            if not part.evaluate(resolve):
                return False
        return True

    def render(self):
        return " and ".join(_grouped(part, (Or,)) for part in self.parts)


class Not:
    """``not a``."""

    __slots__ = ("part",)

    def __init__(self, part):
        self.part = part

    def evaluate(self, resolve):
        return not self.part.evaluate(resolve)

    def render(self):
        return "not " + _grouped(self.part, (Or, And))


def _grouped(node, kinds: tuple) -> str:
    """The node's text, in parentheses if it is of a kind that binds less tightly."""
    return f"({node.render()})" if type(node) in kinds else node.render()


class Compare:
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


class In:
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


class Predicate:
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
        extra = "" if self.argument is None else ", " + quote(self.argument)
        return f"{self.name}({self.path}{extra})"


def matcher(op: str, left_kind: str, right_kind: str):
    """The function comparing one left value with one right value, chosen once at load."""
    compare = COMPARISONS[op]
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

