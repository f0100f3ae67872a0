"""
The built-in transforms of the ``format`` step: dates, names, case, length.

Receivers disagree on the shape of the same value: a practice system wants ``14/07/1985`` where
the hospital sent ``19850714``, a FHIR bridge wants ISO 8601, an old lab system takes ASCII
upper case only and 30 characters at most. Each transform here is a pure ``str -> str``
function. A channel names one with parameters (``format: {name: pad, length: 10}``); the
engine calls :func:`build_format` once at load, which checks the name and every parameter and
raises :class:`FormatError` with a clear message, so that a bad channel is refused before it
runs; the callable it returns is then applied to each value.

Rules shared by every transform:

- An empty value and the HL7 null ``""`` pass through unchanged: an absent value stays absent
  and "delete this value" must reach the receiver as sent.
- A value a transform cannot read (``20240230``) raises :class:`FormatError` naming the value;
  the engine stores the message in ERROR with the step and path.
- Dates keep their precision: ``198507`` is a month, never the first of that month at
  midnight. HL7 DTM is ``YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]``.

Name case (``title``) follows French usage: each word and each part of a hyphenated or
apostrophed word is capitalised (``jean-pierre`` -> ``Jean-Pierre``, ``o'neil`` -> ``O'Neil``),
except the particles ``de``, ``du``, ``des`` and ``d'``, which stay lower case wherever they
are (``DE LA FONTAINE`` -> ``de La Fontaine``, ``D'ORNANO`` -> ``d'Ornano``); the articles
``La``/``Le`` belong to the name and are capitalised. The particles are a parameter.

test-case-name: tests.mappings.test_formats
"""
from __future__ import annotations

import datetime
import difflib
import inspect
import unicodedata
from typing import Any, Callable, Iterable

Formatter = Callable[[str], str]

HL7_NULL = '""'
_DTM_LENGTHS = (4, 6, 8, 10, 12, 14)  # YYYY, +MM, +DD, +HH, +MM, +SS
_FRENCH_PARTICLES = ("de", "du", "des", "d'")
_APOSTROPHES = ("'", "\u2019")
# Letters that Unicode does not decompose but that have a usual ASCII spelling.
_ASCII_LETTERS = str.maketrans({"Œ": "OE", "œ": "oe", "Æ": "AE", "æ": "ae", "ß": "ss",
                                "Ø": "O", "ø": "o", "Đ": "D", "đ": "d", "Ł": "L", "ł": "l",
                                "\u2019": "'", "\u00a0": " "})


class FormatError(ValueError):
    """A bad transform or parameter (at load), or a value a transform cannot read (at run)."""

    def __init__(self, message: str, value: str | None = None):
        super().__init__(message)
        self.message = message
        self.value = value


# --- dates ---------------------------------------------------------------------------------

class DTM:
    """An HL7 date/time split into its written parts; ``precision`` is how many there are."""

    __slots__ = ("parts", "fraction", "offset")

    def __init__(self, parts: tuple[str, ...], fraction: str = "", offset: str = ""):
        self.parts = parts        # "YYYY", "MM", "DD", "HH", "MM", "SS": as many as written
        self.fraction = fraction  # digits after the point, "" if none
        self.offset = offset      # "+HHMM"/"-HHMM", "" if none

    @property
    def precision(self) -> int:
        return len(self.parts)


def parse_dtm(value: str) -> DTM:
    """Split and check an HL7 DTM; raise :class:`FormatError` naming ``value`` if invalid."""
    body, offset = value, ""
    sign = max(value.find("+"), value.find("-"))
    if sign >= 0:
        body, offset = value[:sign], value[sign:]
        if len(offset) != 5 or not (offset[1:].isascii() and offset[1:].isdigit()) \
                or int(offset[3:]) > 59 \
                or int(offset[1:3]) > 14:
            raise _bad_date(value, f"the time zone {offset!r} is not +HHMM or -HHMM")
    main, _, fraction = body.partition(".")
    if not main.isascii() or not main.isdigit() or len(main) not in _DTM_LENGTHS:
        raise _bad_date(value, "expected YYYY[MM[DD[HH[MM[SS[.SSSS]]]]]][+/-ZZZZ]")
    if "." in body and (len(main) != 14 or not 1 <= len(fraction) <= 4
                        or not fraction.isascii() or not fraction.isdigit()):
        raise _bad_date(value, "a fraction needs seconds before it and 1 to 4 digits")
    parts = tuple(main[index:index + 4 if index == 0 else index + 2]
                  for index in (0, 4, 6, 8, 10, 12)[:(len(main) - 2) // 2])
    _check_ranges(value, parts)
    return DTM(parts, fraction, offset)


def _check_ranges(value: str, parts: tuple[str, ...]) -> None:
    numbers = [int(part) for part in parts]
    if len(numbers) >= 2 and not 1 <= numbers[1] <= 12:
        raise _bad_date(value, f"there is no month {parts[1]}")
    if len(numbers) >= 3:
        try:
            datetime.date(*numbers[:3])
        except ValueError:
            raise _bad_date(value, f"there is no day {parts[2]} in {parts[0]}-{parts[1]}"
                            ) from None
    for index, (name, limit) in enumerate((("hour", 23), ("minute", 59), ("second", 59)), 3):
        if len(numbers) > index and numbers[index] > limit:
            raise _bad_date(value, f"there is no {name} {parts[index]}")


def _bad_date(value: str, why: str) -> FormatError:
    return FormatError(f"{value!r} is not an HL7 date/time: {why}", value)


def dtm_to_iso(value: str) -> str:
    """
    HL7 DTM to ISO 8601 extended format, at the same precision.

    ``20240312`` -> ``2024-03-12``; ``20240312101522.5+0100`` -> ``2024-03-12T10:15:22.5+01:00``.
    ISO 8601 has no offset on a date alone, so a date-only value loses its offset.
    """
    dtm = parse_dtm(value)
    iso = "-".join(dtm.parts[:3])
    if dtm.precision > 3:
        iso += "T" + ":".join(dtm.parts[3:])
        if dtm.fraction:
            iso += "." + dtm.fraction
        if dtm.offset:
            iso += dtm.offset[:3] + ":" + dtm.offset[3:]
    return iso


def iso_to_dtm(value: str) -> str:
    """
    ISO 8601 extended format (``2024-03-12T10:15:22.123+01:00``, ``Z``) to HL7 DTM.

    Precision is kept, except that fractions of a second beyond the four digits DTM can hold
    are cut (not rounded, so that a time never moves to the next second).
    """
    date, has_time, time = value.partition("T")
    date_parts = date.split("-")
    if not all(part.isascii() and part.isdigit() for part in date_parts) \
            or [len(part) for part in date_parts] not in ([4], [4, 2], [4, 2, 2]) \
            or (has_time and len(date_parts) != 3):
        raise FormatError(f"{value!r} is not an ISO 8601 date/time", value)
    dtm = "".join(date_parts)
    if has_time:
        dtm += _iso_time(value, time)
    try:
        parse_dtm(dtm)
    except FormatError as exc:
        raise FormatError(f"{value!r} is not a valid date/time: "
                          f"{exc.message.partition(': ')[2]}", value) from None
    return dtm


def _iso_time(value: str, time: str) -> str:
    offset = ""
    if time.endswith("Z"):
        time, offset = time[:-1], "+0000"
    else:
        sign = max(time.find("+"), time.find("-"))
        if sign >= 0:
            time, offset = time[:sign], time[sign:].replace(":", "")
            if len(offset) == 3:
                offset += "00"
    clock, point, fraction = time.partition(".")
    pieces = clock.split(":")
    if [len(piece) for piece in pieces] not in ([2], [2, 2], [2, 2, 2]) \
            or (point and (len(pieces) != 3 or not fraction)):
        raise FormatError(f"{value!r} is not an ISO 8601 date/time", value)
    return "".join(pieces) + (point + fraction[:4]) + offset


# The pattern directives, with the DTM precision each one needs (0: none, empty if absent).
_DIRECTIVES = {"Y": 1, "y": 1, "m": 2, "d": 3, "H": 4, "M": 5, "S": 6, "f": 0, "z": 0}
Section = tuple[bool, tuple[str, ...]]  # (optional, literals and "%X" directives)


def compile_date_pattern(pattern: str) -> tuple[Section, ...]:
    """
    Check a strftime-like ``pattern`` once, at load, and split it into sections.

    Directives: ``%Y`` ``%y`` ``%m`` ``%d`` ``%H`` ``%M`` ``%S``, ``%f`` (the fraction of a
    second as written, empty if none), ``%z`` (``+HHMM``, empty if none) and ``%%``. A part in
    square brackets is optional: it is left out when the value lacks anything it names (not
    precise enough, no fraction, no offset), so that ``%d/%m/%Y[ %H:%M]`` writes a birth date
    as a date and a visit time with its time, and ``%H:%M:%S[.%f]`` writes no lone point.
    Outside brackets, a directive the value is not precise enough for is an error at run time.
    """
    _check_brackets(pattern)
    return tuple((bool(index % 2), _pattern_tokens(pattern, chunk))
                 for index, chunk in enumerate(pattern.replace("]", "[").split("["))
                 if chunk)


def _check_brackets(pattern: str) -> None:
    depth = 0
    for char in pattern:
        depth += (char == "[") - (char == "]")
        if depth not in (0, 1):
            break
    if depth:
        raise FormatError(f"pattern {pattern!r}: every '[' needs its own ']' (no nesting)")


def _pattern_tokens(pattern: str, chunk: str) -> tuple[str, ...]:
    tokens: list[str] = []
    rest = chunk
    while rest:
        literal, percent, rest = rest.partition("%")
        if literal:
            tokens.append(literal)
        if percent:
            directive, rest = rest[:1], rest[1:]
            if directive == "%":
                tokens.append("%")
            elif directive in _DIRECTIVES:
                tokens.append("%" + directive)
            else:
                raise FormatError(f"pattern {pattern!r}: unknown directive %{directive}; the "
                                  f"directives are {' '.join('%' + d for d in _DIRECTIVES)} %%")
    return tuple(tokens)


def format_dtm(value: str, sections: tuple[Section, ...]) -> str:
    """Write the HL7 DTM ``value`` through a pattern from :func:`compile_date_pattern`."""
    dtm = parse_dtm(value)
    written: list[str] = []
    for optional, tokens in sections:
        needed = max((_DIRECTIVES[token[1]] for token in tokens
                      if len(token) == 2 and token[0] == "%"), default=0)
        if needed > dtm.precision:
            if optional:
                continue
            missing = next(token for token in tokens if len(token) == 2 and token[0] == "%"
                           and _DIRECTIVES[token[1]] > dtm.precision)
            raise FormatError(f"{value!r} is not precise enough for {missing} in the pattern",
                              value)
        parts = [_directive(dtm, token) for token in tokens]
        if optional and any(not part for part in parts):
            continue  # a %f or %z with nothing to write: the section would be half-written
        written.extend(parts)
    return "".join(written)


def _directive(dtm: DTM, token: str) -> str:
    if len(token) != 2 or token[0] != "%":
        return token
    code = token[1]
    if code == "f":
        return dtm.fraction
    if code == "z":
        return dtm.offset
    if code == "y":
        return dtm.parts[0][2:]
    return dtm.parts["YmdHMS".index(code)]


# --- names and text -----------------------------------------------------------------------

def title_case(value: str, particles: Iterable[str] = _FRENCH_PARTICLES) -> str:
    """Capitalise each word and word part of a name, particles kept in lower case."""
    lowered = frozenset(particle.casefold() for particle in particles)
    return " ".join("-".join(_title_part(part, lowered) for part in word.split("-"))
                    for word in value.lower().split(" "))


def _title_part(part: str, particles: frozenset[str]) -> str:
    if part in particles:
        return part
    for apostrophe in _APOSTROPHES:
        head, found, tail = part.partition(apostrophe)
        if found:
            head = head if head + "'" in particles else head[:1].upper() + head[1:]
            return head + found + _title_part(tail, particles)
    return part[:1].upper() + part[1:]


def to_ascii(value: str, replacement: str = "?") -> str:
    """
    The value in ASCII, for receivers that take nothing else: accents dropped (``é`` -> ``e``),
    ligatures spelt out (``Œ`` -> ``OE``), any other character replaced by ``replacement``.
    """
    if value.isascii():
        return value
    decomposed = unicodedata.normalize("NFKD", value.translate(_ASCII_LETTERS))
    return "".join(char if char.isascii() else replacement for char in decomposed
                   if not unicodedata.combining(char))


def trim(value: str, collapse: bool = False) -> str:
    """Blanks removed at both ends and, with ``collapse``, runs of inner blanks made one space."""
    return " ".join(value.split()) if collapse else value.strip()


def pad(value: str, length: int, side: str = "right", fill: str = " ") -> str:
    """The value filled with ``fill`` on ``side`` up to ``length`` characters (never cut)."""
    return value.ljust(length, fill) if side == "right" else value.rjust(length, fill)


def truncate(value: str, length: int) -> str:
    """The value cut to ``length`` characters, never between a letter and its accent."""
    if len(value) <= length:
        return value
    cut = length
    while cut > 0 and unicodedata.combining(value[cut]):
        cut -= 1
    return value[:cut]


# --- the registry ------------------------------------------------------------------------
# Each entry takes the step's parameters, checks them and returns the str -> str transform;
# the parameter names are read from the factory's signature.

def _without_params(method: Callable[[str], str]) -> Callable[[], Formatter]:
    return lambda: method


def _title(particles: Any = _FRENCH_PARTICLES) -> Formatter:
    if isinstance(particles, str) or not isinstance(particles, (list, tuple)) \
            or not all(isinstance(item, str) and item for item in particles):
        raise FormatError("'particles' must be a list of words, e.g. [de, du, des, \"d'\"]")
    lowered = tuple(particle.casefold() for particle in particles)
    return lambda value: title_case(value, lowered)


def _ascii(replacement: Any = "?") -> Formatter:
    if not isinstance(replacement, str) or not replacement.isascii():
        raise FormatError("'replacement' must be ASCII text (may be empty)")
    return lambda value: to_ascii(value, replacement)


def _trim(collapse: Any = False) -> Formatter:
    if not isinstance(collapse, bool):
        raise FormatError("'collapse' must be true or false")
    return lambda value: trim(value, collapse)


def _pad(length: Any, side: Any = "right", fill: Any = " ") -> Formatter:
    length = _length(length)
    if side not in ("left", "right"):
        raise FormatError(f"'side' must be left or right, not {side!r}")
    if not isinstance(fill, str) or len(fill) != 1:
        raise FormatError(f"'fill' must be one character, not {fill!r}")
    return lambda value: pad(value, length, side, fill)


def _truncate(length: Any) -> Formatter:
    length = _length(length)
    return lambda value: truncate(value, length)


def _length(length: Any) -> int:
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise FormatError(f"'length' must be a whole number of at least 1, not {length!r}")
    return length


def _dtm_pattern(pattern: Any) -> Formatter:
    if not isinstance(pattern, str) or not pattern:
        raise FormatError("'pattern' must be text such as \"%d/%m/%Y\"")
    sections = compile_date_pattern(pattern)
    return lambda value: format_dtm(value, sections)


FORMATS: dict[str, Callable[..., Formatter]] = {
    "upper": _without_params(str.upper),
    "lower": _without_params(str.lower),
    "title": _title,
    "ascii": _ascii,
    "trim": _trim,
    "pad": _pad,
    "truncate": _truncate,
    "dtm-to-iso": _without_params(dtm_to_iso),
    "iso-to-dtm": _without_params(iso_to_dtm),
    "dtm-pattern": _dtm_pattern,
}


TEXT_FORMATS = frozenset({"upper", "lower", "title", "ascii"})
"""The formats that change letters: the ``format`` step applies them to the text of a value
and keeps its formatting escape sequences (``\\H\\``, ``\\X4D\\``, ``\\.br\\``) as they are."""


def build_format(name: str, params: dict[str, Any] | None = None) -> Formatter:
    """
    The transform ``name`` with ``params`` checked, ready to apply to each value.

    Raises :class:`FormatError` for an unknown name, an unknown or missing parameter or a bad
    parameter value, the message starting with the transform's name. The returned callable
    passes empty values and the HL7 null through and raises :class:`FormatError` for a value
    it cannot read.
    """
    factory = FORMATS.get(name)
    if factory is None:
        raise FormatError(f"unknown format {name!r}{_did_you_mean(name, FORMATS)}; the formats "
                          f"are {', '.join(sorted(FORMATS))}")
    params = dict(params or {})
    signature = inspect.signature(factory).parameters
    problems = [f"unknown parameter {key!r}{_did_you_mean(key, signature)}"
                for key in params if key not in signature]
    problems += [f"missing parameter {key!r}" for key, parameter in signature.items()
                 if parameter.default is inspect.Parameter.empty and key not in params]
    if problems:
        raise FormatError(f"format {name!r}: {'; '.join(problems)}")
    try:
        transform = factory(**params)
    except FormatError as exc:
        raise FormatError(f"format {name!r}: {exc.message}") from None
    return lambda value: value if value == "" or value == HL7_NULL else transform(value)


def _did_you_mean(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
