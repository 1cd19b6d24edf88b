"""Words for people instead of Python's reprs: what a card, a console page and ``shopguard
models show`` print.

- A threshold above 1 is above every score a model gives (scores run from 0 to 1): that
  decision is never taken on the model's score alone (``training/thresholds.py``'s
  ``UNREACHABLE``); rules (lexicon, a blocked merchant) still take it.
- Text that carries a raw ``dict`` (or a list of strings, or a numpy scalar) as Python
  prints it reads as ``key: value`` lists; floats printed with all 17 digits are cut to 4
  significant figures.
"""

from __future__ import annotations

import ast
import re
from typing import Any

NEVER_BLOCKS = "the model alone never blocks"
NEVER_REVIEWS = "the model alone never sends to review"
ABOVE_ONE_RULE = ("A threshold above 1 is above every score the model gives (scores run from 0 to 1): the model "
                  "alone never takes that decision; rules (lexicon rules, a blocked merchant) still can.")
SIGNIFICANT = 4
LONGEST_LITERAL = 4000  # characters of a bracketed piece of text worth reading as a Python literal

# A float written with five decimals or more (not a part of a version, a time or a name).
_LONG_FLOAT = re.compile(r"(?<![\w.:])-?\d+\.\d{5,}(?:[eE][-+]?\d+)?(?![\w.])")
# ``np.float64(0.5)``, ``numpy.int64(3)``: the value inside.
_NUMPY_SCALAR = re.compile(r"\b(?:np|numpy)\.(?:float|int|uint|bool_?)\d*\(([^()]*)\)")
_OPENING = {"{": "}", "[": "]"}
# Where a Python literal worth reading may start: a bracket before a quote, a digit, a sign or another bracket.
_LITERAL_START = re.compile(r"[{\[](?=\s*['\"\d{\[(-])")
SCAN_BUDGET = 100_000


def above_any_score(threshold: float) -> bool:
    """Whether a threshold is above every score (the decision is never taken by the model alone)."""
    return threshold > 1.0


def short_float(value: float) -> str:
    """``value`` to ``SIGNIFICANT`` significant figures (whole numbers from 1,000 up)."""
    if abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.{SIGNIFICANT}g}"


def threshold_words(block: float, review: float, at_least: str = "≥") -> str:
    """``block ≥ 0.3792, review ≥ 0.1060``; a threshold above 1 said in words
    (``block: the model alone never blocks (threshold 1.0100 > 1)``)."""
    def one(name: str, value: float, never: str) -> str:
        if above_any_score(value):
            return f"{name}: {never} (threshold {value:.4f} > 1)"
        return f"{name} {at_least} {value:.4f}"

    return f"{one('block', block, NEVER_BLOCKS)}, {one('review', review, NEVER_REVIEWS)}"


def plain_value(value: Any) -> str:
    """A Python value as a person reads it: dicts as ``key: value; ...``, lists and sets of
    values joined by ``, ``, floats to 4 significant figures, strings without quotes."""
    if isinstance(value, dict):
        return "; ".join(f"{plain_value(k)}: {_nested(v)}" for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return ", ".join(_nested(v) for v in items)
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return short_float(value)
    return str(value)


def _nested(value: Any) -> str:
    text = plain_value(value)
    return f"({text})" if isinstance(value, dict | list | tuple | set | frozenset) else text


def _literal(piece: str) -> Any:
    """The Python literal ``piece`` holds, or None (not a literal, or too deep or big)."""
    if len(piece) > LONGEST_LITERAL:
        return None
    try:
        return ast.literal_eval(piece)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _closing(text: str, start: int) -> int:
    """The index of the bracket closing the one at ``start`` (quotes respected) within
    ``LONGEST_LITERAL`` characters, or -1."""
    depth, quote, index = 0, "", start
    while index < min(len(text), start + LONGEST_LITERAL):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "{[(":
            depth += 1
        elif char in "}])":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return -1


def _is_repr(value: Any) -> bool:
    """A literal worth rewriting: a dict, a set, or a list or tuple holding a string or a
    container (a list of numbers such as an interval ``[0.61, 0.67]`` reads fine as it is)."""
    if isinstance(value, dict | set | frozenset):
        return True
    return isinstance(value, list | tuple) and any(isinstance(v, str | dict | list | tuple) for v in value)


def readable_text(text: str) -> str:
    """``text`` with Python's reprs rewritten for people: a dict (``{'a': 0.36350201310457186}``)
    as ``a: 0.3635; ...``, a list of strings as ``x, y``, numpy scalars as their value, and
    every long float to 4 significant figures. Anything that does not parse as a literal is
    left as it is; at most ``SCAN_BUDGET`` characters are scanned for literals (a text full
    of brackets costs no more than that)."""
    text = _NUMPY_SCALAR.sub(lambda match: match.group(1), text)
    parts, done, budget = [], 0, SCAN_BUDGET
    for match in _LITERAL_START.finditer(text):
        start = match.start()
        if start < done or budget <= 0:
            continue
        end = _closing(text, start)
        budget -= (end - start) if end > 0 else LONGEST_LITERAL
        value = _literal(text[start:end + 1]) if end > start and text[end] == _OPENING[text[start]] else None
        if value is not None and _is_repr(value):
            parts += [text[done:start], plain_value(value)]
            done = end + 1
    parts.append(text[done:])
    return _LONG_FLOAT.sub(lambda match: short_float(float(match.group(0))), "".join(parts))
