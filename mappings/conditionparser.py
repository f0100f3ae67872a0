"""
The parser of the condition language (:mod:`mappings.expressions`): recursive descent over
the tokens of :mod:`mappings.conditiontokens`, building the nodes of
:mod:`mappings.conditionnodes` and refusing, with the column, what would never hold
(a composite compared whole, a regular expression that does not compile, an operand missing).

test-case-name: tests.mappings.test_expressions
"""
from __future__ import annotations

import re

from mappings.conditionnodes import (
    And, Compare, In, Length, Literal, Not, Or, PathOperand, Predicate, matcher, quote,
)
from mappings.conditiontokens import FUNCTIONS, KEYWORDS, ExpressionError, Token

__all__ = ["Parser"]

_MAX_DEPTH = 50


class Parser:
    """Recursive descent over the tokens; ``paths`` collects every path text met."""

    def __init__(self, tokens: list[Token]):
        self.tokens, self.position, self.depth = tokens, 0, 0
        self.paths: set[str] = set()

    def parse(self):
        node = self.condition()
        token = self.peek()
        if token.kind != "end":
            raise ExpressionError(f"unexpected {token.describe()} after a complete condition "
                                  '(missing "and" or "or"?)', token.column)
        return node

    def peek(self) -> Token:
        return self.tokens[self.position]

    def take(self) -> Token:
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

    def fail(self, message: str, token: Token | None = None):
        """Raise at ``token`` (the next one by default); "expected ..." says what was found."""
        token = token or self.peek()
        if message.startswith("expected") and token.kind != "end":
            message += f", found {token.describe()}"
        raise ExpressionError(message, token.column)

    def condition(self):
        return self.joined("or", Or, self.conjunct)

    def conjunct(self):
        return self.joined("and", And, self.term)

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
            return Not(self.nested(self.term, token))
        if token.is_("punct", "("):
            self.take()
            node = self.nested(self.condition, token)
            self.expect("punct", ")", 'a closing ")"')
            return node
        if token.kind == "word" and token.text in FUNCTIONS and token.text != "length":
            return self.predicate()
        return self.comparison()

    def nested(self, parse, opening: Token):
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
        return Predicate(name, path, argument)

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
            match = matcher(token.text, left.kind, right.kind)
            if match is None:
                self.fail("cannot compare text with a number", token)
            _check_composite(left, right, token.text, right_token)
            _check_composite(right, left, token.text, right_token)
            return Compare(left, token.text, right, match)
        negate = token.is_("word", "not")
        if negate:
            token = self.take()
            if not token.is_("word", "in"):
                self.fail('expected "in" after "not"', token)
        if token.is_("word", "in"):
            return In(left, self.items(left), negate)
        hint = f" (to test presence, write exists({left.path}))" if left.kind == "message" else ""
        self.fail(f'expected a comparison operator or "in" after {left.render()}{hint}', token)

    def operand(self, what: str):
        token = self.take()
        if token.kind == "path":
            self.paths.add(token.text)
            return PathOperand(token.text)
        if token.kind in ("string", "number"):
            return _literal(token)
        if token.is_("word", "length"):
            self.expect("punct", "(", '"(" after length')
            path = self.path_argument("length")
            self.expect("punct", ")", 'a closing ")" after the argument of length()')
            return Length(path)
        self.fail(_operand_problem(token, self.peek(), what), token)

    def items(self, left) -> list[Literal]:
        self.expect("punct", "[", 'a list after "in", like ["A", "B"]')
        items = []
        while not self.accept("punct", "]"):
            if items:
                self.expect("punct", ",", 'a "," or a closing "]" in the list')
            token = self.take()
            if token.kind not in ("string", "number"):
                self.fail("expected a string or a number in the list", token)
            item = _literal(token)
            if matcher("==", left.kind, item.kind) is None:
                self.fail("cannot compare text with a number", token)
            _check_composite(left, item, "in", token)
            items.append(item)
        return items


def _literal(token: Token) -> Literal:
    if token.kind == "string":
        return Literal(token.value, "text", quote(token.value))
    return Literal(token.value, "number", token.text)


def _operand_problem(token: Token, following: Token, what: str) -> str:
    """What to say when ``token`` stands where a value was expected."""
    if token.kind == "segment":
        return (f"a segment alone ({token.text}) can only be tested with exists({token.text}); "
                f'for the text, write "{token.text}"')
    if token.kind == "word" and token.text in FUNCTIONS:
        return f"{token.text}() is a condition, not a value"
    if token.kind == "word" and following.is_("punct", "("):
        return f'unknown function "{token.text}" (known: {", ".join(FUNCTIONS)})'
    if token.kind == "word" and token.text not in KEYWORDS:
        return f'unexpected word "{token.text}" (text goes in double quotes)'
    return f"expected {what}"


def _check_composite(path, literal, op: str, token: Token) -> None:
    """Refuse ``MSH-9 == "ORU^R01"``: a path without a component reads component 1 only,
    so a text with a component separator could never be equal; say how to write it."""
    if not isinstance(path, PathOperand) or not isinstance(literal, Literal) \
            or literal.kind != "text" or "^" not in literal.constant[0]:
        return
    tail = path.path.rsplit("/", 1)[-1]
    if "-" not in tail or "." in tail.split("-", 1)[1]:
        return
    parts = literal.constant[0].split("^")
    each = " and ".join(f"{path.path}.{number} == {quote(part)}"
                        for number, part in enumerate(parts, 1) if part)
    right = f"({each})" if op == "==" else f"not ({each})" if op == "!=" else None
    hint = f"; write {right}" if right else \
        f"; compare each component ({path.path}.1, {path.path}.2)"
    raise ExpressionError(f"{path.path} reads its first component only, so it is never "
                          f"{quote(literal.constant[0])}{hint}", token.column)


def _check_regex(token: Token) -> None:
    """Compile the pattern now so that a bad one is refused at load, with its position."""
    try:
        re.compile(token.value)
    except (re.error, OverflowError, RecursionError) as error:
        reason = getattr(error, "msg", str(error))
        raise ExpressionError(f"bad regular expression {token.text}: {reason}",
                              token.column) from None

