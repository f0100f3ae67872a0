"""Tests for mappings.expressions: the condition language of ``when:`` and filters."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from mappings import conditionnodes
from mappings.expressions import Expression, ExpressionError, compile_expression

NULL = '""'


def holds(text: str, **values) -> bool:
    """Compile ``text`` and evaluate it where each keyword argument gives a path's values
    (``PV1_2="I"`` for PV1-2); paths with dots or brackets go in a dict as ``values=``."""
    table = values.pop("values", {})
    table.update({key.replace("_", "-", 1): value for key, value in values.items()})
    return compile_expression(text).evaluate(lambda path: _listed(table.get(path, [])))


def _listed(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


# Comparison operators ---------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ('PV1-2 == "I"', True), ('PV1-2 == "O"', False),
    ('PV1-2 != "O"', True), ('PV1-2 != "I"', False),
    ('PV1-2 < "J"', True), ('PV1-2 < "I"', False),
    ('PV1-2 <= "I"', True), ('PV1-2 <= "H"', False),
    ('PV1-2 > "H"', True), ('PV1-2 > "I"', False),
    ('PV1-2 >= "I"', True), ('PV1-2 >= "J"', False),
])
def test_text_comparisons(text, expected):
    """If a path is compared with a string, then each operator compares the texts."""
    assert holds(text, PV1_2="I") is expected


@pytest.mark.parametrize("text, expected", [
    ("OBX-5 == 12", True), ("OBX-5 == 12.0", True), ("OBX-5 != 12", False),
    ("OBX-5 < 100", True), ("OBX-5 <= 12", True), ("OBX-5 > 9", True),
    ("OBX-5 >= 12.5", False), ("OBX-5 > -3", True),
])
def test_number_comparisons(text, expected):
    """If a path is compared with a number literal, then the value is compared as a number
    (12 > 9 although "12" < "9" as text)."""
    assert holds(text, OBX_5="12") is expected


def test_literal_on_the_left():
    """If the literal is written first, then the comparison reads the same way round."""
    assert holds('"ADT" == MSH-9.1', values={"MSH-9.1": "ADT"})
    assert not holds('"ADT" != MSH-9.1', values={"MSH-9.1": "ADT"})
    assert holds("5 < OBX-5", OBX_5="12")
    assert not holds("5 > OBX-5", OBX_5="12")


def test_in_and_not_in():
    """If a value is in the list, then "in" holds and "not in" does not, and the reverse."""
    assert holds('PV1-2 in ["I", "O"]', PV1_2="O")
    assert not holds('PV1-2 in ["I", "O"]', PV1_2="E")
    assert holds('PV1-2 not in ["I", "O"]', PV1_2="E")
    assert not holds('PV1-2 not in ["I", "O"]', PV1_2="I")
    assert not holds("PV1-2 in []", PV1_2="I")


def test_in_with_numbers():
    """If the list holds numbers, then values match them numerically, strings as text."""
    assert holds('OBX-5 in [1, 2, "x"]', OBX_5="02.0")
    assert holds('OBX-5 in [1, 2, "x"]', OBX_5="x")
    assert not holds('OBX-5 in ["1"]', OBX_5="01")
    assert holds("length(PID-5.1) in [3, 4]", values={"PID-5.1": "ABCD"})


def test_and_or_not():
    """If conditions are joined by and, or, not, then they combine as booleans."""
    for a in (True, False):
        for b in (True, False):
            values = {"PID-8": "M" if a else "F", "PV1-2": "I" if b else "O"}
            assert holds('PID-8 == "M" and PV1-2 == "I"', values=values) is (a and b)
            assert holds('PID-8 == "M" or PV1-2 == "I"', values=values) is (a or b)
            assert holds('not PID-8 == "M"', values=values) is (not a)


def test_evaluate_returns_a_bool():
    """If a condition is evaluated, then the answer is True or False, not a value."""
    assert holds('exists(PID-3) or PID-3 == "x"', PID_3="1") is True
    assert holds('startswith(PID-3, "9")', PID_3="1") is False


# Precedence -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, canonical", [
    ('not A01-1 == "x" or A02-1 == "y" and A03-1 == "z"',
     'not A01-1 == "x" or A02-1 == "y" and A03-1 == "z"'),
    ('(A01-1 == "x" or A02-1 == "y") and A03-1 == "z"',
     '(A01-1 == "x" or A02-1 == "y") and A03-1 == "z"'),
    ('not (A01-1 == "x" and A02-1 == "y")', 'not (A01-1 == "x" and A02-1 == "y")'),
    ('((A01-1 == "x"))', 'A01-1 == "x"'),
    ('(A01-1 == "x" or A02-1 == "y") or A03-1 == "z"',
     'A01-1 == "x" or A02-1 == "y" or A03-1 == "z"'),
    ('A01-1=="x"and(A02-1=="y")', 'A01-1 == "x" and A02-1 == "y"'),
])
def test_render_shows_the_grouping(text, canonical):
    """If a condition is compiled, then its canonical text keeps exactly the parentheses that
    its grouping needs."""
    assert compile_expression(text).render() == canonical


def test_and_binds_tighter_than_or():
    """If "or" and "and" are mixed without parentheses, then "and" groups first:
    x or y and z is x or (y and z)."""
    text = 'A01-1 == "x" or A02-1 == "y" and A03-1 == "z"'
    assert holds(text, A01_1="x", A02_1="n", A03_1="n")
    assert not holds(text, A01_1="n", A02_1="y", A03_1="n")


def test_not_takes_the_next_condition_only():
    """If "not" precedes a comparison joined by "and", then it negates that comparison only."""
    text = 'not A01-1 == "x" and A02-1 == "y"'
    assert holds(text, A01_1="n", A02_1="y")
    assert not holds(text, A01_1="n", A02_1="n")
    assert holds('not not A01-1 == "x"', A01_1="x")


def test_parentheses_override():
    """If parentheses group an "or", then it is evaluated before the "and"."""
    text = '(A01-1 == "x" or A02-1 == "y") and A03-1 == "z"'
    assert not holds(text, A01_1="x", A02_1="n", A03_1="n")
    assert holds(text, A01_1="x", A02_1="n", A03_1="z")


# Functions --------------------------------------------------------------------------------

def test_exists():
    """If a path or segment has a value, even the HL7 null, then exists() holds."""
    assert holds("exists(PID-3)", PID_3="1")
    assert holds("exists(PID-3)", PID_3=NULL)
    assert not holds("exists(PID-3)")
    assert not holds("exists(PID-3)", PID_3=["", ""])
    assert holds("exists(ZBE)", values={"ZBE": "ZBE|1"})
    assert not holds("exists(ZBE)")
    assert holds("exists(OBX[2])", values={"OBX[2]": "OBX|2"})


def test_empty():
    """If a path is absent, empty or the HL7 null, then empty() holds; if one value has
    content, then it does not."""
    assert holds("empty(PID-8)")
    assert holds("empty(PID-8)", PID_8="")
    assert holds("empty(PID-8)", PID_8=NULL)
    assert holds("empty(PID-8)", PID_8=[NULL, ""])
    assert not holds("empty(PID-8)", PID_8=["", "M"])


def test_matches_searches_anywhere_unless_anchored():
    """If matches() is given a pattern, then it holds when the pattern is found in a value,
    and ^...$ anchor it to the whole value."""
    assert holds('matches(PID-3.4, "INS")', values={"PID-3.4": "ASIP-INS-NIR"})
    assert not holds('matches(PID-3.4, "^INS$")', values={"PID-3.4": "ASIP-INS-NIR"})
    assert holds('matches(OBX-3.1, "^[0-9]+-[0-9]$")', values={"OBX-3.1": "2345-7"})
    assert holds('matches(PID-8, "^$")')
    assert holds('matches(PID-3[*].1, "\\\\d{3}")', values={"PID-3[*].1": ["A", "123"]})


def test_matches_regex_is_compiled_once_at_load(monkeypatch):
    """If a matches() condition is evaluated, then no regular expression is compiled then."""
    expression = compile_expression('matches(PID-8, "^[MF]$")')

    def refuse(*args):
        raise AssertionError("re.compile called at evaluation")
    monkeypatch.setattr(conditionnodes.re, "compile", refuse)
    assert expression.evaluate(lambda path: ["F"])


def test_startswith():
    """If a value starts with the prefix, then startswith() holds."""
    assert holds('startswith(PID-3.5, "PI")', values={"PID-3.5": "PIX"})
    assert not holds('startswith(PID-3.5, "PI")', values={"PID-3.5": "XPI"})
    assert holds('startswith(PID-3.5, "")')


def test_length():
    """If length() is compared with a number, then each value's character count is."""
    assert holds("length(PID-5.1) > 3", values={"PID-5.1": "DUPONT"})
    assert holds("length(PID-5.1) == 0")
    assert holds("length(PID-5.1) == 0", values={"PID-5.1": NULL})
    assert holds("length(PID-5.1) == length(PID-5.2)", values={"PID-5.1": "AB", "PID-5.2": "CD"})


# Several values, missing paths, null --------------------------------------------------------

def test_equal_holds_if_any_value_equals():
    """If a path has several values, then == holds when any one of them equals."""
    assert holds('PID-3[*].5 == "NH"', values={"PID-3[*].5": ["PI", "NH"]})
    assert not holds('PID-3[*].5 == "INS"', values={"PID-3[*].5": ["PI", "NH"]})


def test_not_equal_holds_if_no_value_equals():
    """If a path has several values, then != holds only when none of them equals."""
    assert not holds('PID-3[*].5 != "NH"', values={"PID-3[*].5": ["PI", "NH"]})
    assert holds('PID-3[*].5 != "INS"', values={"PID-3[*].5": ["PI", "NH"]})
    assert not holds('PID-3[*].5 not in ["NH"]', values={"PID-3[*].5": ["PI", "NH"]})


def test_ordering_and_functions_hold_for_any_value():
    """If a path has several values, then <, in, matches and startswith hold when one does."""
    values = {"OBX[*]-5": ["3", "15"], "OBX[*]-3.1": ["GLU", "K"]}
    assert holds("OBX[*]-5 > 10", values=values)
    assert holds("OBX[*]-5 < 10", values=values)
    assert not holds("OBX[*]-5 > 20", values=values)
    assert holds('OBX[*]-3.1 in ["K", "NA"]', values=values)
    assert holds('startswith(OBX[*]-3.1, "G")', values=values)


def test_two_paths_compare_every_pair():
    """If both sides are paths, then == holds when some pair is equal, != when none is."""
    values = {"PID-3[*].1": ["1", "2"], "MRG-1[*].1": ["3", "2"]}
    assert holds("PID-3[*].1 == MRG-1[*].1", values=values)
    assert not holds("PID-3[*].1 != MRG-1[*].1", values=values)
    assert holds("PID-3[*].1 < MRG-1[*].1", values=values)


@pytest.mark.parametrize("text, expected", [
    ('PV1-2 == ""', True), ('PV1-2 != "I"', True), ('PV1-2 == "I"', False),
    ('PV1-2 in ["I", "O"]', False), ('PV1-2 not in ["I", "O"]', True),
    ('PV1-2 < "A"', True), ("PV1-2 == 0", False), ("PV1-2 != 0", True),
    ("exists(PV1-2)", False), ("empty(PV1-2)", True),
])
def test_missing_path_reads_as_one_empty_value(text, expected):
    """If a path is absent, then it compares as the empty text "" (and never as a number)."""
    assert holds(text) is expected


@pytest.mark.parametrize("text, expected", [
    ('PID-8 == ""', True), ('PID-8 == "\\"\\""', False), ('PID-8 != "M"', True),
    ("exists(PID-8)", True), ("empty(PID-8)", True), ("length(PID-8) == 0", True),
    ('PID-8 in [""]', True), ('matches(PID-8, "\\"")', False),
])
def test_null_is_present_but_empty(text, expected):
    """If a field holds the HL7 null "", then it exists but reads as the empty text."""
    assert holds(text, PID_8=NULL) is expected


# Numbers and text -------------------------------------------------------------------------

@pytest.mark.parametrize("text, value, expected", [
    ('PID-3.1 == "007"', "7", False),
    ("PID-3.1 == 7", "007", True),
    ('MSH-12 == "2.5"', "2.50", False),
    ("MSH-12 == 2.5", "2.50", True),
    ('OBX-5 > "9"', "10", False),
    ("OBX-5 > 9", "10", True),
    ("OBX-5 == 5", "+5", True),
    ("OBX-5 == -0.5", "-.5", True),
    ("OBX-5 > 10", "<5", False),
    ("OBX-5 < 10", "<5", False),
    ("OBX-5 != 10", "<5", True),
    ("OBX-5 == 1", "1e0", False),
    ("OBX-5 == 1", " 1", False),
    ("OBX-5 == 12345678901234567890", "12345678901234567891", False),
])
def test_string_literals_are_text_and_number_literals_numbers(text, value, expected):
    """If the literal is a string, then the value is compared as text; if it is a number, then
    the value is compared numerically, and a value that is no number never matches it."""
    assert holds(text, values={text.split()[0]: value}) is expected


def test_two_paths_compare_as_numbers_only_if_both_are():
    """If both values of two paths are numbers, then they compare numerically, else as text."""
    assert holds("OBX-5 > OBX-7", OBX_5="10", OBX_7="9")
    assert not holds("OBX-5 > OBX-7", OBX_5="10", OBX_7="9x")
    assert holds("OBX-5 == OBX-7", OBX_5="1.0", OBX_7="1")


def test_dates_order_as_text():
    """If HL7 dates of the same precision are compared with a string, then text order is
    date order."""
    assert holds('PID-7 < "19500101"', PID_7="19491231")
    assert not holds('PID-7 < "19500101"', PID_7="19500102")


# Strings, paths, API ----------------------------------------------------------------------

def test_string_escapes():
    """If a string holds \\" or \\\\, then they stand for a quote and a backslash, and render
    writes them back."""
    expression = compile_expression('NTE-3 == "say \\"hi\\" \\\\ bye"')
    assert expression.evaluate(lambda path: ['say "hi" \\ bye'])
    assert expression.render() == 'NTE-3 == "say \\"hi\\" \\\\ bye"'


@pytest.mark.parametrize("path", [
    "MSH-9", "MSH-9.1", "PID-3[*].1", "PID-3[2].4.1", "OBX[*]-5", "OBX[2]-5[3].1.2", "ZBE-1",
    "Z01-10", "PV1-44", "PID-3[10]",
])
def test_path_shapes_are_passed_through(path):
    """If a condition names a path of any accepted shape, then the resolver is asked for
    exactly that text, and it is listed in paths."""
    asked = []
    expression = compile_expression(f'{path} == "v"')
    assert expression.evaluate(lambda text: asked.append(text) or ["v"])
    assert asked == [path]
    assert expression.paths == frozenset({path})


def test_paths_lists_every_path_once():
    """If a condition reads paths in comparisons, functions and lists, then paths holds each
    text once, segments of exists() included."""
    expression = compile_expression(
        'MSH-9.1 == "ADT" and (exists(ZBE) or PV1-2 in ["I"]) and length(PID-5.1) > 0 '
        'and not matches(MSH-9.1, "x") and PV1-2 != PV1-3.1')
    assert expression.paths == {"MSH-9.1", "ZBE", "PV1-2", "PID-5.1", "PV1-3.1"}


def test_expression_keeps_its_text():
    """If an expression is compiled, then it keeps the original text and shows it in repr."""
    expression = compile_expression('  MSH-9.1  ==  "ADT" ')
    assert isinstance(expression, Expression)
    assert expression.text == '  MSH-9.1  ==  "ADT" '
    assert str(expression) == 'MSH-9.1 == "ADT"'
    assert repr(expression) == "<Expression '  MSH-9.1  ==  \"ADT\" '>"


def test_whitespace_and_newlines_are_free():
    """If a condition spans several lines (a folded YAML scalar), then it compiles."""
    assert holds('MSH-9.1 == "ADT"\n  and\tPV1-2 in [\n"I",\n"O"]',
                 values={"MSH-9.1": "ADT", "PV1-2": "I"})


def test_python_is_not_evaluated():
    """If the text is Python, then it is refused, never run."""
    with pytest.raises(ExpressionError, match="unknown function"):
        compile_expression('__import__("os")')


# Errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, message, column", [
    ('MSH-9.1 == ', 'expected a value after "=="', 12),
    ('MSH-9.1 == "ADT" and PV1-2 ==', 'expected a value after "=="', 30),
    ('MSH-9.1 == and', 'expected a value after "==", found "and"', 12),
    ('MSH-9.1 = "ADT"', 'unknown operator "="; did you mean "=="?', 9),
    ('MSH-9.1 <> "ADT"', 'unknown operator "<>"; did you mean "!="?', 9),
    ('MSH-9.1 => 3', 'unknown operator "=>"; did you mean ">="?', 9),
    ('MSH-9.1 == "A" && PV1-2 == "I"', 'unknown operator "&&"; did you mean "and"?', 16),
    ('MSH-9.1 == "A" || PV1-2 == "I"', 'unknown operator "||"; did you mean "or"?', 16),
    ('!exists(PV1-2)', 'unknown operator "!"; did you mean "not"?', 1),
    ('MSH-9.1 == "ADT', 'unterminated string: no closing "', 12),
    ('MSH-9.1 == "A\\F\\B"', 'unknown escape "\\F" in a string', 14),
    ('MSH-9.1 == "A" "B"', 'unexpected "B" after a complete condition', 16),
    ('MSH-9.1 == "A" PV1-2 == "I"', 'unexpected "PV1-2" after a complete condition', 16),
    ('(MSH-9.1 == "A"', 'expected a closing ")"', 16),
    ('MSH-9.1 == "A")', 'unexpected ")" after a complete condition', 15),
    ('foo(PID-3)', 'unknown function "foo" (known: empty, exists, length, matches, startswith)',
     1),
    ('EXISTS(PID-3)', '"EXISTS": keywords and function names are lower case', 1),
    ('MSH-9.1 == "A" AND PV1-2 == "I"', '"AND": keywords and function names are lower case',
     16),
    ('MSH-9.1 == ADT', 'a segment alone (ADT) can only be tested with exists(ADT)', 12),
    ('MSH-9.1 == adt', 'unexpected word "adt" (text goes in double quotes)', 12),
    ('PID-3', 'expected a comparison operator or "in" after PID-3 (to test presence, write '
     'exists(PID-3))', 6),
    ('PID-3 not ["A"]', 'expected "in" after "not"', 11),
    ('PID-3 in "A"', 'expected a list after "in"', 10),
    ('PID-3 in ["A" "B"]', 'expected a "," or a closing "]" in the list', 15),
    ('PID-3 in ["A", PID-4]', 'expected a string or a number in the list', 16),
    ('PID-3 in ["A",', 'expected a string or a number in the list', 15),
    ('length(PID-3) == "3"', 'cannot compare text with a number', 15),
    ('"a" < 1', 'cannot compare text with a number', 5),
    ('length(PID-3) in [3, "3"]', 'cannot compare text with a number', 22),
    ('length(PID-3)', 'expected a comparison operator or "in" after length(PID-3)', 14),
    ('exists(PID-3) == "x"', 'unexpected "==" after a complete condition', 15),
    ('PID-3 == exists(PID-3)', 'exists() is a condition, not a value', 10),
    ('exists("PID-3")', 'expected a path as the first argument of exists()', 8),
    ('empty(ZBE)', 'empty() needs a field path, not the segment ZBE alone', 7),
    ('matches(PID-3)', 'expected "," and a string after the path in matches()', 14),
    ('matches(PID-3, 3)', 'expected a string as the second argument of matches()', 16),
    ('matches(PID-3, "(")', 'bad regular expression "(": missing ), unterminated subpattern',
     16),
    ('startswith(PID-3, "x"', 'expected a closing ")" after the arguments of startswith()',
     22),
    ('exists PID-3', 'expected "(" after exists', 8),
    ('pid-3 == "x"', 'bad path: segment names are upper case ("PID")', 1),
    ('PI-3 == "x"', 'bad path: "PI" is not a segment name', 1),
    ('PIDX-3 == "x"', 'bad path: "PIDX" is not a segment name', 1),
    ('PID- == "x"', 'bad path: expected a field number after "-"', 5),
    ('PID-0 == "x"', 'bad path: numbers in a path start at 1, without a leading 0', 5),
    ('PID-03 == "x"', 'bad path: numbers in a path start at 1, without a leading 0', 5),
    ('PID-3. == "x"', 'bad path: expected a component number after "."', 7),
    ('PID-3.1. == "x"', 'bad path: expected a sub-component number after "."', 9),
    ('PID-3[x] == "x"', 'bad path: expected a repetition number or "*" after "["', 7),
    ('PID-3[2 == "x"', 'bad path: expected "]"', 8),
    ('OBX[*x-5 == "x"', 'bad path: expected an occurrence number or "*" after "["', 5),
    ('OBX[0]-5 == "x"', 'bad path: numbers in a path start at 1', 5),
    ('PID-5-1 == "x"', 'bad path "PID-5-": unexpected "-" (components follow ".", as in '
     'PID-5.1)', 6),
    ('PID-5.1.1.1 == "x"', 'bad path "PID-5.1.1.": unexpected "." (a path ends at the '
     'sub-component)', 10),
    ('PID-3.1[2] == "x"', 'bad path "PID-3.1[": unexpected "[" (a repetition follows the field '
     'number, as in PID-3[2].1)', 8),
    ('PID-3 == 1.', 'bad number "1."', 11),
    ('PID-3 == 12abc', 'bad number "12a"', 12),
    ('PID-3 == @', 'unexpected character "@"', 10),
    ('PID-3 == "x" \x00', 'unexpected character "U+0000"', 14),
    ('', 'expected a condition', 1),
    ('   ', 'expected a condition', 4),
    ('()', 'expected a condition, found ")"', 2),
    ('not', 'expected a condition', 4),
    ('(' * 51 + 'PID-3 == "x"' + ')' * 51, 'conditions nested more than 50 deep', 51),
    ('not ' * 51 + 'PID-3 == "x"', 'conditions nested more than 50 deep', 201),
])
def test_errors_name_the_mistake_and_its_column(text, message, column):
    """If a condition is wrong, then ExpressionError says what and where (column from 1)."""
    with pytest.raises(ExpressionError) as caught:
        compile_expression(text)
    assert caught.value.message.startswith(message)
    assert caught.value.column == column


def test_error_text_echoes_the_expression_with_a_caret():
    """If an error is shown, then it reads: message, column, the expression, a caret under the
    mistake."""
    with pytest.raises(ExpressionError) as caught:
        compile_expression('MSH-9.1 == "ADT" and PV1-2 ==')
    assert str(caught.value) == ('expected a value after "==" at column 30\n'
                                 '  MSH-9.1 == "ADT" and PV1-2 ==\n'
                                 '                               ^')


def test_error_echo_keeps_columns_with_tabs_and_newlines():
    """If the expression holds tabs or newlines, then the echo is on one line and the caret
    still stands under the mistake."""
    with pytest.raises(ExpressionError) as caught:
        compile_expression('MSH-9.1 == "A"\n\tand = 1')
    lines = str(caught.value).splitlines()
    assert lines[1][2 + caught.value.column - 1] == "="
    assert lines[2].index("^") == 2 + caught.value.column - 1


def test_error_is_a_value_error_with_its_parts():
    """If an ExpressionError is built by hand, then it has message and column and no echo."""
    error = ExpressionError("bad thing", 3)
    assert isinstance(error, ValueError)
    assert (error.message, error.column, error.text) == ("bad thing", 3, None)
    assert str(error) == "bad thing at column 3"


# Properties -------------------------------------------------------------------------------

def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


PATHS = ["MSH-9.1", "PV1-2", "PID-3[*].1", "OBX[*]-5", "PID-3[2].4.1", "ZBE-1"]
VALUES = ["", NULL, "I", "O", "10", "9.5", "-1", "abc", "ADT", '"q"']
paths = st.sampled_from(PATHS)
# No "^" in generated text: comparing a whole field with a text holding a component separator
# is refused at compile time on purpose (_check_composite, tested on its own).
strings = st.one_of(st.sampled_from(VALUES),
                    st.text(st.characters(blacklist_characters="^"), max_size=4)).map(_quoted)
numbers = st.builds(lambda whole, part: f"{whole}" + (f".{part}" if part is not None else ""),
                    st.integers(-20, 20), st.none() | st.integers(0, 99))
lengths = paths.map(lambda path: f"length({path})")
operators = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
text_side = paths | strings
number_side = paths | numbers | lengths
comparisons = st.one_of(
    st.tuples(text_side, operators, text_side).map(" ".join),
    st.tuples(number_side, operators, number_side).map(" ".join),
    st.tuples(paths, st.sampled_from(["in", "not in"]),
              st.lists(strings | numbers, max_size=3).map(lambda items: f"[{', '.join(items)}]"))
    .map(" ".join))
predicates = st.one_of(
    (paths | st.sampled_from(["ZBE", "OBX[2]"])).map(lambda path: f"exists({path})"),
    paths.map(lambda path: f"empty({path})"),
    st.tuples(paths, st.sampled_from(["^A", "D$", "[0-9]+", "x|y", '\\"'])).map(
        lambda pair: f"matches({pair[0]}, {_quoted(pair[1])})"),
    st.tuples(paths, strings).map(lambda pair: f"startswith({pair[0]}, {pair[1]})"))
conditions = st.recursive(
    comparisons | predicates,
    lambda inner: st.one_of(
        inner.map(lambda c: f"not {c}"), inner.map(lambda c: f"({c})"),
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(" ".join)),
    max_leaves=8)
messages = st.dictionaries(st.sampled_from(PATHS + ["ZBE", "OBX[2]"]),
                           st.lists(st.sampled_from(VALUES), max_size=3))


@settings(max_examples=400, deadline=None)
@given(conditions, messages)
def test_render_compiles_to_the_same_condition(text, message):
    """If a valid condition is compiled and rendered, then the rendering compiles to the same
    rendering and gives the same answer on any message."""
    expression = compile_expression(text)
    again = compile_expression(expression.render())
    assert again.render() == expression.render()
    assert again.paths == expression.paths

    def resolve(path):
        assert path in expression.paths
        return message.get(path, [])
    assert again.evaluate(resolve) is expression.evaluate(resolve)
    assert isinstance(expression.evaluate(resolve), bool)


PIECES = ['PID-3', 'OBX[*]-5', 'ZBE', ' ', '==', '!=', '<', '>=', '=', '!', 'in', 'not', 'and',
          'or', '(', ')', '[', ']', ',', '"', '\\', '"x"', '1', '-', '.', '*', 'exists(',
          'matches(', 'length(', 'startswith(', 'empty(', 'foo(']


@settings(max_examples=600, deadline=None)
@given(st.one_of(st.text(max_size=30), st.lists(st.sampled_from(PIECES), max_size=14)
                 .map("".join)))
def test_garbage_raises_only_expression_error(text):
    """If any text at all is compiled, then it either compiles (and evaluates to a bool) or
    raises ExpressionError with a column inside the text or just past it."""
    try:
        expression = compile_expression(text)
    except ExpressionError as error:
        assert 1 <= error.column <= len(text) + 1
        assert str(error).startswith(error.message)
    else:
        assert expression.evaluate(lambda path: ["1", NULL]) in (True, False)


@pytest.mark.parametrize("text, shown", [
    ('MSH-9 != "ORU^R01"', 'write not (MSH-9.1 == "ORU" and MSH-9.2 == "R01")'),
    ('"ADT^A08" == MSH-9', 'write (MSH-9.1 == "ADT" and MSH-9.2 == "A08")'),
    ('MSH-9 in ["ADT^A01", "ADT^A04"]', "compare each component (MSH-9.1, MSH-9.2)"),
])
def test_composite_literal_against_whole_field_refused(text, shown):
    """If a field path without a component is compared with text holding '^', then the
    condition is refused (it could never hold) with the form to write instead."""
    with pytest.raises(ExpressionError) as caught:
        compile_expression(text)
    assert shown in str(caught.value)


def test_component_path_with_caret_literal_allowed():
    """If the path names a component, then a '^' in the text is an ordinary character."""
    assert compile_expression('PID-5.1 == "A^B"').evaluate(lambda path: ["A^B"])
