"""
Fuzzing the mappings' readers with hypothesis, each fuzzer with its invariant:

* message view: whatever text :meth:`HL7Message.parse` accepts is written back byte for byte,
  and every value read from it is written back into an equal message;
* paths: any text is a :class:`Path` whose text parses back to it, or a :class:`PathError`;
* conditions: any text is an expression or an :class:`ExpressionError`;
* escaping: a value escaped with any usable delimiters comes back.

``AIGUILLAGE_FUZZ_EXAMPLES`` raises the example counts (``bench/fuzz_wire.py``).
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mappings.escaping import Delimiters, DelimiterError, escape, unescape
from mappings.expressions import ExpressionError, compile_expression
from mappings.message import HL7Message, MessageError
from mappings.paths import PathError, parse_path

FUZZ = settings(max_examples=int(os.environ.get("AIGUILLAGE_FUZZ_EXAMPLES", "300")),
                deadline=None, suppress_health_check=[HealthCheck.too_slow])

hl7_text = st.lists(st.sampled_from(
    ["MSH", "|", "^~\\&", "^~\\&#", "^~\\R", "^", "~", "\\", "&", "#", "\r", "\n", "\r\n",
     "PID", "OBX", "A", "1", " ", "\u00e9", '""', "\\F\\", "\\X0D\\", "\\H\\"]),
    max_size=40).map("".join)


@FUZZ
@given(st.one_of(hl7_text, hl7_text.map(lambda text: "MSH|^~\\&|" + text)),
       st.text(alphabet=st.sampled_from("|^~\\&#RSTa1 \u00e9"), max_size=6))
@example("MSH|^~\\R|A|B\rPID|R", "~")
def test_parse_then_write_back_byte_for_byte(text, value):
    """If parse accepts a text, then it is written back byte for byte; and a value written
    into any field of it reads back the same."""
    try:
        message = HL7Message.parse(text)
    except MessageError:
        return
    assert message.to_text() == text
    for segment in message.segments():
        if segment.name == "MSH":
            continue
        for number in range(1, segment.field_count() + 2):
            segment.set(number, value)
            assert segment.get(number) == value
    assert HL7Message.parse(message.to_text()).to_text() == message.to_text()


path_text = st.lists(st.sampled_from(
    ["PID", "OBX", "MSH", "ZB1", "pid", "-", ".", "[", "]", "*", "0", "1", "5", "12",
     "9" * 12, "\u00b2", " ", "x"]), max_size=12).map("".join)


@FUZZ
@given(path_text)
@example("PID-" + "9" * 5000)
def test_any_path_text_is_a_path_or_a_path_error(text):
    """If any text is parsed as a path, then it is a Path that prints back to that text, or
    a PathError with a column; never another exception."""
    try:
        path = parse_path(text)
    except PathError as error:
        assert error.column is None or 1 <= error.column <= len(text) + 1
        return
    assert str(path) == text and parse_path(str(path)) == path


condition_text = st.lists(st.sampled_from(
    ["PID-8", " ", "=", "!=", "<", ">=", '"M"', '"a\\"b"', "\\", "and", "or", "not", "(", ")",
     "in", "[", "]", ",", "1", "1.5", "-", "9" * 5000, "exists", "len(", "\u00b2", "MSH-9.2"]),
    max_size=12).map("".join)


@FUZZ
@given(condition_text)
def test_any_condition_text_compiles_or_is_an_expression_error(text):
    """If any text is compiled as a condition, then it compiles or ExpressionError says why."""
    try:
        compile_expression(text)
    except ExpressionError:
        pass


punctuation = st.sampled_from(list("|^~\\&#!$%*+,/:;<=>?@[]_`{}'\"().-"))


@FUZZ
@given(st.lists(punctuation, min_size=5, max_size=6, unique=True), st.text(max_size=20))
def test_escaped_values_come_back_with_any_delimiters(chars, value):
    """If a value is escaped with any usable delimiters, then unescaping gives it back (a
    value holding a formatting sequence excepted: it is kept, by design)."""
    try:
        delimiters = Delimiters.from_msh(chars[0], "".join(chars[1:]))
    except DelimiterError:
        return
    escaped = escape(value, delimiters)
    assert delimiters.field not in escaped
    if delimiters.escape not in value:
        assert unescape(escaped, delimiters) == value
