"""Read a learner's typed answer into numbers, arrays, letters and ratings, without ever running it.

Answers arrive as text from a terminal or a text box. Nothing here calls ``eval``, ``exec``,
``ast``'s literal evaluator or ``compile``: each reader is a small tokenizer with a fixed grammar, so
``__import__('os')`` is not dangerous, only unparseable.

Grammar of a number::

    number   := decimal ( "/" decimal )?          3/4   -0.25   1e-3   .5   2.
    count    := digits in groups of three         73,856   16_777_216   (integer answers only)
    decimal  := [+-]? ( digits [. digits?] | . digits ) ( [eE] [+-]? digits )?

Grammar of an array (numpy's printed form is accepted, so commas are optional)::

    array    := number | "[" ( array ( ","? array )* )? "]"
    rows     := row ( (";" | newline) row )*      without brackets: "1 2; 3 4"  or  "1, 2, 3"

MATLAB's rows are read too: ``[1 2 3; 4 5 6]`` and ``[[1 2 3]; [4 5 6]]`` (a ";" ends a row inside the outer
brackets; rows that mix both forms are refused as ambiguous), and a vector in round brackets, ``(0.1, 0.2)``,
as written in maths.

``array([[1, 2]])`` (numpy's repr) and ``tensor([[1, 2]], requires_grad=True)`` (bpcore's and
PyTorch's) are accepted too: the wrapper and its keyword arguments (``dtype=``, ...) are dropped.
"""

from __future__ import annotations

import numbers
import re

import numpy as np

MAX_CHARS = 20_000  # longer input is refused before any parsing: nobody types that much by hand
MAX_DEPTH = 32  # brackets nested deeper than this are refused (no answer in the banks has more than 3)
MAX_ITEMS = 100_000  # numbers in one array answer, typed or handed over from a notebook
MAX_DIGITS = 6  # in a typed choice number or line number ("3", "12"): a longer run of digits is no line

_DECIMAL = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_NUMBER = re.compile(rf"\s*({_DECIMAL})\s*(?:/\s*({_DECIMAL})\s*)?")
_TOKEN = re.compile(rf"\s*(?:(?P<open>\[)|(?P<close>\])|(?P<comma>,)|(?P<num>{_DECIMAL}(?:\s*/\s*{_DECIMAL})?))")
_GROUPED = re.compile(r"[+-]?[1-9]\d{0,2}(?:([,_])\d{3})(?:\1\d{3})*")  # one separator, groups of three
_LETTER_SPLIT = re.compile(r"[\s,;>&+]+|->")
_PAREN_LETTER = re.compile(r"\(\s*(\w+)\s*\)")  # "(b)": a choice as the options are printed
RATINGS = ("again", "hard", "good", "easy")  # FSRS's four buttons, 1..4


class ParseError(ValueError):
    """The text is not in the expected form; the message says what was expected and what arrived."""


def _clean(text: str, what: str) -> str:
    if not isinstance(text, str):
        raise ParseError(f"expected {what} as text, got a {type(text).__name__}")
    if len(text) > MAX_CHARS:
        raise ParseError(f"expected {what}, got {len(text)} characters of text (the limit is {MAX_CHARS})")
    # what people paste from rendered maths: a unicode minus, thin spaces
    return text.replace("\u2212", "-").replace("\u2009", " ").replace("\u00a0", " ").strip()


def _show(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _finite(value: float, original) -> float:
    """``value`` if it is a finite number; inf and nan are refused, as typed ``inf`` is (the grammar has no word
    for them): an answer that overflowed a float is not an answer."""
    if not np.isfinite(value):
        raise ParseError(
            f"expected a finite number, got {_show(str(original))} (as a float: {value}, too large or not a number)"
        )
    return value


def _fraction(numerator: str, denominator: str | None, original: str) -> float:
    value = _finite(float(numerator), original)
    if denominator is None:
        return value
    below = _finite(float(denominator), original)
    if below == 0:
        raise ParseError(f"{_show(original)} divides by zero")
    return _finite(value / below, original)


def _real(value) -> float:
    """A Python or numpy real as a finite float (``10**400`` or a huge Fraction overflow: refused, not raised)."""
    try:
        number = float(value)
    except (OverflowError, ValueError, TypeError, ZeroDivisionError) as error:
        raise ParseError(f"expected a number a float can hold, got a {type(value).__name__} ({error})") from None
    return _finite(number, value)


def _digits(text: str, what: str, original) -> int:
    """A small whole number typed with ASCII digits (``'²'.isdigit()`` is true, yet ``int('²')`` fails)."""
    if not (text.isascii() and text.isdigit()) or len(text) > MAX_DIGITS:
        raise ParseError(f"expected {what}, got {_show(str(original))}")
    return int(text)


def parse_number(value, grouped: bool = False) -> float:
    """A float from ``0.25``, ``-3/4``, ``1e-3`` (text), or from a Python or numpy number.

    With ``grouped`` (answers that are counts), digits grouped in threes are read too: ``73,856`` and
    ``16_777_216``. Not otherwise: ``0,125`` could be a decimal comma, so it is refused, not misread.

    >>> parse_number("3/4")
    0.75
    """
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return _real(value)
    if isinstance(value, np.ndarray) and value.size == 1 and np.issubdtype(value.dtype, np.number):
        if np.iscomplexobj(value):
            raise ParseError(f"expected a real number, got a complex array ({value.reshape(-1)[0]})")
        return _real(value.reshape(-1)[0])
    text = _clean(value, "a number")
    if grouped and _GROUPED.fullmatch(text):  # 73,856 or 16_777_216: how counts are written
        text = re.sub(r"[,_]", "", text)
    match = _NUMBER.fullmatch(text)
    if not match:
        raise ParseError(f"expected a number such as 0.25, -3/4 or 1e-3, got {_show(text)}")
    return _fraction(match.group(1), match.group(2), text)


def _tokens(text: str):
    position = 0
    while position < len(text):
        if text[position:].isspace():
            return
        match = _TOKEN.match(text, position)
        if not match:
            raise ParseError(
                f"expected numbers inside [ ], such as [[1, 2], [3, 4]]; could not read "
                f"{_show(text[position:].strip(), 30)} (character {position + 1} of the answer)"
            )
        kind = match.lastgroup
        yield kind, match.group(kind)
        position = match.end()


def _nested(text: str) -> list:
    """The bracketed grammar, read with an explicit stack (no recursion, so no depth limit to hit)."""
    stack: list[list] = []
    result = None
    for kind, token in _tokens(text):
        if result is not None:
            raise ParseError(f"unexpected {token!r} after the closing bracket of the array")
        if kind == "open":
            if len(stack) >= MAX_DEPTH:
                raise ParseError(f"brackets nested more than {MAX_DEPTH} deep: no answer here has that many dimensions")
            stack.append([])
        elif kind == "close":
            if not stack:
                raise ParseError("a ']' closes a bracket that was never opened")
            done = stack.pop()
            if stack:
                stack[-1].append(done)
            else:
                result = done
        elif kind == "comma":
            if not stack:
                raise ParseError("a ',' outside any brackets: wrap the whole answer in [ ]")
        else:
            if not stack:
                raise ParseError(f"a number {token!r} outside the brackets")
            top, _, bottom = token.partition("/")
            stack[-1].append(_fraction(top, bottom or None, token))
    if stack:
        raise ParseError(f"{len(stack)} '[' never closed: the brackets are unbalanced")
    if result is None:
        raise ParseError("expected an array such as [[1, 2], [3, 4]], got nothing")
    return result


def _matlab_rows(text: str) -> str:
    """``[1 2; 3 4]`` or ``[[1 2]; [3 4]]`` -> ``[[1 2], [3 4]]``: a ";" inside the outer brackets ends a row."""
    if ";" not in text or not text.endswith("]"):
        return text
    inner = text[1:-1]
    if "[" in inner and inner.count("[") != inner.count("]"):
        return text  # unbalanced: the bracket reader names the problem
    parts = [part.strip() for part in inner.split(";")]
    parts = [part for part in parts if part]
    bracketed = [part.startswith("[") and part.endswith("]") and part.count("[") == 1 for part in parts]
    bare = ["[" not in part and "]" not in part for part in parts]
    if not all(r or b for r, b in zip(bracketed, bare, strict=True)):
        raise ParseError(f"expected ';' only between the rows of a matrix, got {_show(text)}")
    if any(bracketed) and not all(bracketed):
        raise ParseError(
            f"rows written two ways in {_show(text)}: write every row in brackets, [[1 2]; [3 4]], or none, [1 2; 3 4]"
        )
    return "[" + ", ".join(part if all(bracketed) else f"[{part}]" for part in parts) + "]"


_ROW = r"\[[^\[\]]*\]"
_BARE_ROWS = re.compile(rf"{_ROW}(?:\s*,?\s*{_ROW})+")


def _outer_brackets(text: str) -> str:
    """``[1, 2], [3, 4]``, the rows of a matrix without its outer brackets, -> ``[[1, 2], [3, 4]]``."""
    return f"[{text}]" if _BARE_ROWS.fullmatch(text) else text


def _round_brackets(text: str) -> str:
    """``(0.1036, 0.0461)``, a vector as written in maths, -> ``[0.1036, 0.0461]`` (nested round brackets too)."""
    if not (text.startswith("(") and text.endswith(")")) or "[" in text or "]" in text:
        return text
    return text.replace("(", "[").replace(")", "]")


def _rows(text: str) -> list:
    """Bracket-free input: rows split by ';' or newlines, entries by commas or spaces."""
    rows = []
    for line in re.split(r"[;\n]", text):
        if not line.strip():
            continue
        row = []
        for item in re.split(r"[,\s]+", line.strip()):
            if item:
                row.append(parse_number(item))
        rows.append(row)
    if not rows:
        raise ParseError("expected an array such as [[1, 2], [3, 4]], got nothing")
    return rows[0] if len(rows) == 1 and ";" not in text and "\n" not in text else rows


def _shape_of(nested, where: str = "") -> tuple:
    """The rectangular shape of nested lists, or a ParseError naming the first ragged row."""
    if not isinstance(nested, list):
        return ()
    if not nested:
        return (0,)
    shapes = [_shape_of(item, f"{where}[{i}]") for i, item in enumerate(nested)]
    for i, shape in enumerate(shapes[1:], start=1):
        if shape != shapes[0]:
            raise ParseError(
                f"rows of different lengths: item {where}[0] has shape {shapes[0]} "
                f"but item {where}[{i}] has shape {shape}"
            )
    return (len(nested), *shapes[0])


_WRAPPER = re.compile(r"(?:(?:np|numpy|bp|torch)\.)?(?:array|tensor)\(")
_KEYWORDS = re.compile(r"(?:\s*,\s*\w+\s*=\s*[^,=()\[\]]*(?:\([^()]*\))?)*\s*")


def _unwrap(text: str) -> str:
    """``array([1, 2], dtype=float32)`` or ``tensor([1., 2.], requires_grad=True)`` -> ``[1, 2]``."""
    wrapper = _WRAPPER.match(text)
    if not wrapper or not text.endswith(")"):
        return text
    inner = text[wrapper.end() : -1]
    end = inner.rfind("]") + 1
    if end and _KEYWORDS.fullmatch(inner[end:]):
        return inner[:end].strip()
    return inner.strip() if "=" not in inner else text


def _count_items(data) -> None:
    """Refuse nested lists with more than MAX_ITEMS numbers or MAX_DEPTH levels, looking at no more than that."""
    pending, seen = [(data, 0)], 0
    while pending:
        item, depth = pending.pop()
        if isinstance(item, np.ndarray):
            seen += item.size
        elif isinstance(item, list | tuple):
            if depth >= MAX_DEPTH:
                raise ParseError(f"expected an array of numbers, got lists nested more than {MAX_DEPTH} deep")
            seen += not item
            if seen + len(pending) + len(item) > MAX_ITEMS:  # each item still to look at holds a number or more
                raise ParseError(f"expected an array of at most {MAX_ITEMS:,} numbers, got more")
            pending.extend((child, depth + 1) for child in item)
        else:
            seen += 1
        if seen > MAX_ITEMS:
            raise ParseError(f"expected an array of at most {MAX_ITEMS:,} numbers, got more")


def _given_array(value) -> np.ndarray:
    """An array handed over from a notebook (a tensor, an ndarray, nested lists): finite real numbers only."""
    data = value if isinstance(value, np.ndarray) else getattr(value, "data", value)  # a tensor's array
    if isinstance(data, np.ndarray):
        if data.size > MAX_ITEMS:
            raise ParseError(f"expected an array of at most {MAX_ITEMS:,} numbers, got {data.size:,}")
        if data.dtype.kind not in "biuf":
            raise ParseError(f"expected an array of real numbers, got an array of dtype {data.dtype}")
    else:
        _count_items(data)
    try:
        array = np.asarray(data, dtype=np.float64)
    except Exception as error:  # ragged lists, complex numbers, 10**400, an object whose __float__ raises
        raise ParseError(
            f"expected an array of numbers, got a {type(value).__name__} ({type(error).__name__}: {error})"
        ) from None
    if not np.all(np.isfinite(array)):
        raise ParseError("expected finite numbers, got inf or nan in the array")
    return array


def parse_array(value) -> np.ndarray:
    """A float64 array from text (``[[1, 2], [3, 4]]``, numpy's printout, ``1 2; 3 4``) or an array-like.

    Tensors (anything with a numpy ``.data``) and nested lists of numbers are taken as they are.
    """
    if not isinstance(value, str):
        return _given_array(value)
    text = _unwrap(_clean(value, "an array"))
    if not text:
        raise ParseError("expected an array such as [[1, 2], [3, 4]], got an empty answer")
    text = _outer_brackets(_round_brackets(text))
    nested = _nested(_matlab_rows(text)) if text.startswith("[") else _rows(text)
    _shape_of(nested)
    return np.array(nested, dtype=np.float64)


def parse_letters(value, count: int, what: str = "choice") -> list[int]:
    """0-based indices from letters such as ``"a, c"``, ``"a c"``, ``"ac"``, ``"(b)"`` (as the options are printed),
    ``"a, c and d"`` or ``["a", "c"]`` (a = first).

    ``count`` is how many options exist. Typed numbers count from 1, as a person would (``"1 3"`` is a, c);
    Python ints count from 0, as a program would (``2`` is c).
    """
    letters = "abcdefghijklmnopqrstuvwxyz"[:count]
    if isinstance(value, int) and not isinstance(value, bool):
        items = [value]
    elif isinstance(value, list | tuple):
        if len(value) > 4 * count:  # each letter at most once, with room for repeats to be named
            raise ParseError(f"expected {what} letters from a to {letters[-1]}, got {len(value):,} of them")
        items = list(value)
    else:
        text = _PAREN_LETTER.sub(r" \1 ", _clean(value, f"{what} letters").lower())  # "(b)" as printed
        parts = [p for p in _LETTER_SPLIT.split(text) if p]
        if len(parts) > 2 and parts[-2] == "and" and "and" not in letters:  # "a, c, d and e"
            parts = parts[:-2] + parts[-1:]
        if len(parts) == 1 and len(parts[0]) > 1 and all(ch in letters for ch in parts[0]):
            parts = list(parts[0])  # "acd"
        items = parts
    if not items:
        raise ParseError(f"expected {what} letters from a to {letters[-1]}, got nothing")
    indices = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            index = item
        elif isinstance(item, str) and item.strip().lower() in letters and len(item.strip()) == 1:
            index = letters.index(item.strip().lower())
        elif isinstance(item, str) and item.strip().isdigit():
            index = _digits(item.strip(), f"{what} letters from a to {letters[-1]}", item) - 1
        else:
            raise ParseError(f"expected {what} letters from a to {letters[-1]}, got {_show(str(item))}")
        if not 0 <= index < count:
            raise ParseError(f"expected {what} letters from a to {letters[-1]}, got {_show(str(item))}")
        indices.append(index)
    return indices


def parse_rating(value) -> int:
    """A self-rating 1..4 from ``again / hard / good / easy``, their first letters, or 1..4."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and 1 <= value <= 4:
        return int(value)
    text = _clean(value, "a rating").lower()
    for number, word in enumerate(RATINGS, start=1):
        if text in (word, word[0], str(number)):
            return number
    raise ParseError(f"expected a rating: again, hard, good or easy (or 1-4), got {_show(text)}")


def parse_line_number(value, lines: int) -> int:
    """A 1-based line number within ``lines`` lines, from text such as ``7`` or ``line 7``."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        number = int(value)
    else:
        text = _clean(value, "a line number")
        text = text.lower().removeprefix("line").strip()
        number = _digits(text, f"a line number from 1 to {lines}", value)
    if not 1 <= number <= lines:
        raise ParseError(f"expected a line number from 1 to {lines}, got {number}")
    return number
