"""Refusing hostile JSON before it is parsed: nesting deeper than any
tidechat document needs (Python's parser recurses, and a frame nested
100,000 levels deep raises ``RecursionError`` rather than a clean error),
and echoing client text back into error messages.

The depth check runs at C speed: strings are blanked out (they may hold
brackets), everything but brackets is dropped, and then one innermost level
of ``[]`` pairs is removed per pass, at most ``limit`` passes. Ordinary
frames (a handful of brackets) take the fast path and cost one count.
"""

from __future__ import annotations

import re

#: A JSON string literal, escapes included ("unrolled": linear, and fast in re).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_SAME_BRACKETS = str.maketrans("{}", "[]")


def too_deep(text: str, limit: int) -> bool:
    """Whether ``text`` nests arrays and objects more than ``limit`` deep.

    Unbalanced brackets count as deep: the parser refuses that text anyway.
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    shape = _NOT_BRACKET.sub("", _STRING.sub('""', text)).translate(_SAME_BRACKETS)
    for _ in range(limit):
        if not shape:
            return False
        shorter = shape.replace("[]", "")
        if len(shorter) == len(shape):
            return True  # no innermost pair left: unbalanced
        shape = shorter
    return bool(shape)


def clip(value: object, limit: int = 40) -> str:
    """A client-supplied value, short enough to name in an error message."""
    text = str(value)
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "…"
