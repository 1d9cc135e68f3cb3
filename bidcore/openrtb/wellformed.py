"""Whether a value of the wrong type is JSON at all, as the native reader asks before saying so.

The reader (``reader.rs``) calls a value the wrong type (rule ``type``) only once it has checked
that the value is JSON; if it is not, the body is malformed (rule ``json``). msgspec says "wrong
type" as soon as it sees the first byte of a container (``[1,]`` where an integer belongs is an
array to it), so the reference pipeline asks :func:`is_malformed_value` before reporting a type
error.

The check is the reader's: the value's own text must be a JSON value (strings with valid escapes,
no lone surrogates and no raw control characters; numbers a float can hold), whatever follows it.
Where the reader reads an integer and the value is a number, it judges the number itself: a
fraction or a value out of range is the wrong type, however large (``1e400``).

>>> is_malformed_value(b'{"imp":[{"secure":[1,]}]}', ["imp", 0, "secure"])
True
>>> is_malformed_value(b'{"imp":[{"secure":[1]}]}', ["imp", 0, "secure"])
False
>>> is_malformed_value(b'{"w":1e400}', ["w"], integer=True)
False

The same scanner walks text that stops being JSON further on, as far as it is JSON
(:func:`value_start`, :func:`children`, :func:`value_end`): here the number 0, then garbage.

>>> text = b'{"ver":01}'
>>> [(key, at, value_end(text, at)) for key, at in children(text, value_start(text) or 0)]
[('ver', 7, 8)]
"""

from __future__ import annotations

import json
import math
import string
from collections.abc import Iterator, Sequence
from typing import Final

__all__ = ["children", "is_malformed_value", "value_end", "value_start"]

_WHITESPACE: Final = frozenset(b" \t\n\r")
_DIGITS: Final = frozenset(b"0123456789")
_HEX: Final = frozenset(string.hexdigits.encode())
_SIMPLE_ESCAPES: Final = frozenset(b'"\\/bfnrt')
_LITERALS: Final = {ord("t"): b"true", ord("f"): b"false", ord("n"): b"null"}
# Integers shorter than this always fit a float: the reader does not even look (`reader.rs`).
_SURELY_FINITE_DIGITS: Final = 300


class _MalformedError(Exception):
    """The text stops being JSON here."""


def is_malformed_value(
    text: bytes, segments: Sequence[str | int], *, integer: bool = False
) -> bool:
    """Whether the value at ``segments`` (keys and indices from the root of the JSON ``text``) is
    not JSON as the native reader reads it, or the text stops being JSON on the way to it.

    ``integer``: the reader reads an integer there, so a number is judged as one, not checked
    here. Returns ``False`` when the path leads nowhere (the value is not there).
    """
    scanner = _Scanner(text)
    try:
        at = scanner.find(segments)
        if at is None:
            return False
        if integer and (text[at] in _DIGITS or text[at] == ord("-")):
            return False
        scanner.skip_value(at)
    except _MalformedError:
        return True
    return False


def value_start(text: bytes) -> int | None:
    """Where the root value of ``text`` starts (``None`` if there is none)."""
    try:
        return _Scanner(text).find(())
    except _MalformedError:
        return None


def children(text: bytes, at: int) -> Iterator[tuple[str | int, int]]:
    """``(key, start)`` of each member of the object starting at ``at`` (repeated keys
    included), or ``(index, start)`` of each element of the array there, in order; stops where
    the text stops being JSON."""
    try:
        yield from _Scanner(text).children(at)
    except _MalformedError:
        return


def value_end(text: bytes, at: int) -> int | None:
    """Where the value starting at ``at`` ends, as the reader skips it; ``None`` if it is not
    JSON (whatever follows it)."""
    try:
        return _Scanner(text).skip_value(at)
    except _MalformedError:
        return None


class _Scanner:
    """The reader's ``skip``: a JSON value's end, or :class:`_MalformedError`."""

    def __init__(self, text: bytes) -> None:
        self.text = text

    def find(self, segments: Sequence[str | int]) -> int | None:
        """Where the value at ``segments`` starts (the first occurrence of a repeated key)."""
        at = self._token(0)
        for segment in segments:
            found = self.member(at, segment) if isinstance(segment, str) else self.item(at, segment)
            if found is None:
                return None
            at = found
        return at

    def member(self, at: int, key: str) -> int | None:
        if self.text[at] != ord("{"):
            return None
        return next((start for name, start in self.children(at) if name == key), None)

    def item(self, at: int, index: int) -> int | None:
        if self.text[at] != ord("["):
            return None
        return next((start for number, start in self.children(at) if number == index), None)

    def children(self, at: int) -> Iterator[tuple[str | int, int]]:
        """``(key, start)`` of each member of the object at ``at``, or ``(index, start)`` of each
        element of the array there, in order, each value skipped once the caller has it."""
        close = ord("}") if self.text[at] == ord("{") else ord("]")
        at = self._token(at + 1)
        if self.text[at] == close:
            return
        index = 0
        while True:
            if close == ord("}"):
                if self.text[at] != ord('"'):
                    raise _MalformedError
                end = self._string_end(at)
                name: str | int = json.loads(self.text[at:end])
                at = self._token(end)
                if self.text[at] != ord(":"):
                    raise _MalformedError
                at = self._token(at + 1)
            else:
                name = index
            yield name, at
            at = self._token(self.skip_value(at))
            if self.text[at] == close:
                return
            if self.text[at] != ord(","):
                raise _MalformedError
            at = self._token(at + 1)
            index += 1

    def _token(self, at: int) -> int:
        """The next non-whitespace byte from ``at``; the text may not end first."""
        while at < len(self.text) and self.text[at] in _WHITESPACE:
            at += 1
        if at >= len(self.text):
            raise _MalformedError
        return at

    def skip_value(self, at: int) -> int:
        """The end of the value starting at ``at`` (no whitespace before it)."""
        # Iterative: the closing brackets still owed, innermost last.
        closers: list[int] = []
        while True:
            at = self._scalar_or_open(at, closers)
            # After a value: close what ends here, or go on to the next element or member.
            while closers:
                at = self._token(at)
                byte = self.text[at]
                if byte == closers[-1]:
                    closers.pop()
                    at += 1
                    continue
                if byte != ord(","):
                    raise _MalformedError
                at = self._token(at + 1)
                if closers[-1] == ord("}"):
                    at = self._key(at)
                break
            if not closers:
                return at

    def _scalar_or_open(self, at: int, closers: list[int]) -> int:
        """Consumes a scalar, or opens containers until a scalar or an empty one is consumed."""
        while True:
            byte = self.text[at]
            if byte == ord("{") or byte == ord("["):
                close = ord("}") if byte == ord("{") else ord("]")
                at = self._token(at + 1)
                if self.text[at] == close:
                    return at + 1
                closers.append(close)
                if close == ord("}"):
                    at = self._key(at)
                continue
            if byte == ord('"'):
                return self._string_end(at)
            if byte == ord("-") or byte in _DIGITS:
                return self._number_end(at)
            literal = _LITERALS.get(byte)
            if literal is None or self.text[at : at + len(literal)] != literal:
                raise _MalformedError
            return at + len(literal)

    def _key(self, at: int) -> int:
        """Consumes ``"key":`` and the whitespace after it; returns where the value starts."""
        if self.text[at] != ord('"'):
            raise _MalformedError
        at = self._token(self._string_end(at))
        if self.text[at] != ord(":"):
            raise _MalformedError
        return self._token(at + 1)

    def _string_end(self, at: int) -> int:
        """The index after the closing quote of the string whose opening quote is at ``at``."""
        text = self.text
        at += 1
        while at < len(text):
            byte = text[at]
            if byte == ord('"'):
                return at + 1
            if byte < 0x20:
                raise _MalformedError
            if byte == ord("\\"):
                at = self._escape_end(at)
            else:
                at += 1
        raise _MalformedError

    def _escape_end(self, at: int) -> int:
        kind = self.text[at + 1 : at + 2]
        if kind and kind[0] in _SIMPLE_ESCAPES:
            return at + 2
        if kind != b"u":
            raise _MalformedError
        high = self._hex4(at + 2)
        if 0xDC00 <= high < 0xE000:
            raise _MalformedError  # a lone low surrogate
        if not 0xD800 <= high < 0xDC00:
            return at + 6
        if self.text[at + 6 : at + 8] != b"\\u" or not 0xDC00 <= self._hex4(at + 8) < 0xE000:
            raise _MalformedError  # a lone high surrogate
        return at + 12

    def _hex4(self, at: int) -> int:
        digits = self.text[at : at + 4]
        if len(digits) != 4 or not all(d in _HEX for d in digits):
            raise _MalformedError
        return int(digits, 16)

    def _number_end(self, at: int) -> int:
        text = self.text
        start = at
        if text[at : at + 1] == b"-":
            at += 1
        if text[at : at + 1] == b"0":
            at += 1
        elif at < len(text) and text[at] in _DIGITS:
            at = self._digits_end(at)
        else:
            raise _MalformedError
        integral = True
        if text[at : at + 1] == b".":
            integral = False
            at = self._digits_end(at + 1, at_least_one=True)
        if text[at : at + 1] in (b"e", b"E"):
            integral = False
            at += 1
            if text[at : at + 1] in (b"+", b"-"):
                at += 1
            at = self._digits_end(at, at_least_one=True)
        literal = text[start:at]
        surely_finite = integral and len(literal) < _SURELY_FINITE_DIGITS
        if not surely_finite and not math.isfinite(float(literal)):
            raise _MalformedError  # a number no float can hold
        return at

    def _digits_end(self, at: int, *, at_least_one: bool = False) -> int:
        start = at
        while at < len(self.text) and self.text[at] in _DIGITS:
            at += 1
        if at_least_one and at == start:
            raise _MalformedError
        return at
