"""Size limits on a request body, checked before it is parsed (``limits.rs`` and ``path.rs``).

The core's serde pipelines look at the bytes first so that an adversarial body (deep nesting in
an unknown field, a megabyte string) costs one linear pass, not a parse. This is the same pass in
Python; the rules, their order and the reported paths match ``check_body`` in ``limits.rs``.
(The core's own reader enforces the same limits while it parses, and names a path only as far as
it reads: the reference pipeline passes ``name_path`` to report paths as that reader does.)

>>> check_body(b'{"imp":[{"ext":{"a":{"b":1}}}]}', Limits(max_depth=3))
Traceback (most recent call last):
...
bidcore.errors.InvalidRequestError: imp[0].ext: nesting is deeper than the limit of 3 [depth]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from .rejection import rejection

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_IMPS",
    "Limits",
    "check_body",
    "path_at_offset",
    "render_path",
    "segments_at_offset",
]


DEFAULT_MAX_IMPS: Final = 64
"""The native core's default ``Limits.max_imps``."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What a request may contain; the defaults are the native core's ``Limits::DEFAULT``."""

    max_body_bytes: int = 256 * 1024
    """Largest accepted body, in bytes."""
    max_depth: int = 32
    """Deepest nesting of objects and arrays; the request object itself is depth 1."""
    max_imps: int = DEFAULT_MAX_IMPS
    """Most impressions in one request."""
    max_string_bytes: int = 64 * 1024
    """Longest string (keys included), in bytes as written in the body (escapes count)."""


DEFAULT_LIMITS: Final = Limits()

# The bytes that matter to depth: a string start and the brackets outside strings.
_STRUCTURE: Final = re.compile(rb'["{}\[\]]')
# A string's contents after its opening quote, up to and including the closing quote. An escape
# is a backslash and whichever byte follows it. Possessive, so a string that never closes fails
# fast instead of backtracking.
_STRING_TAIL: Final = re.compile(rb'(?:[^"\\]|\\.)*+"', re.DOTALL)


def check_body(
    body: bytes,
    limits: Limits = DEFAULT_LIMITS,
    *,
    name_path: Callable[[bytes, int], str] | None = None,
) -> None:
    """Checks body size, nesting depth and string lengths, raising the first limit exceeded.

    Malformed JSON is left to the parser: where a string never closes, judging stops.
    ``name_path(body, offset)`` names where a limit broke (default: :func:`path_at_offset`).
    """
    name_path = name_path or path_at_offset
    if len(body) > limits.max_body_bytes:
        raise rejection(
            "body_size",
            "",
            f"body is {len(body)} bytes, more than the limit of {limits.max_body_bytes}",
        )
    depth = 0
    position = 0
    while (found := _STRUCTURE.search(body, position)) is not None:
        at = found.start()
        byte = body[at]
        if byte == ord('"'):
            tail = _STRING_TAIL.match(body, at + 1)
            if tail is None:
                return
            length = tail.end() - 1 - (at + 1)
            if length > limits.max_string_bytes:
                raise rejection(
                    "string_length",
                    name_path(body, at),
                    f"string of {length} bytes is longer than the limit of "
                    f"{limits.max_string_bytes}",
                )
            position = tail.end()
        elif byte in b"{[":
            depth += 1
            if depth > limits.max_depth:
                raise rejection(
                    "depth",
                    name_path(body, at),
                    f"nesting is deeper than the limit of {limits.max_depth}",
                )
            position = at + 1
        else:
            depth = max(depth - 1, 0)
            position = at + 1


def path_at_offset(body: bytes, offset: int) -> str:
    """The path of the value (or key string) that starts at byte ``offset``; ``""`` for the root.

    Walks the JSON from the start with a stack of the containers it is inside, tolerating
    malformed input: whatever it has seen up to ``offset`` is what it reports. Only ever used
    after something went wrong, so it favours being an exact port over speed.
    """
    return render_path(segments_at_offset(body, offset))


def segments_at_offset(body: bytes, offset: int) -> list[str | int]:
    """:func:`path_at_offset` as its keys (``str``) and array indices (``int``), outermost first."""
    # Each frame: [key or None, awaiting_key] for an object, an int index for an array.
    stack: list[list[object] | int] = []
    i = 0
    end_at = min(offset, len(body))
    while i < end_at:
        byte = body[i]
        if byte == ord('"'):
            start = i + 1
            end = _string_end(body, start)
            if end >= offset:
                break
            top = stack[-1] if stack else None
            if isinstance(top, list) and top[1]:
                top[0] = body[start:end].decode("utf-8", "replace")
                top[1] = False
            i = end + 1
            continue
        if byte == ord("{"):
            stack.append([None, True])
        elif byte == ord("["):
            stack.append(0)
        elif byte in b"}]":
            if stack:
                stack.pop()
        elif byte == ord(",") and stack:
            top = stack[-1]
            if isinstance(top, int):
                stack[-1] = top + 1
            else:
                top[1] = True
        i += 1
    return _segments(stack)


def _string_end(body: bytes, start: int) -> int:
    """Index of the quote closing the string whose contents start at ``start``, or the body's
    length if it never closes."""
    i = start
    while i < len(body):
        if body[i] == ord('"'):
            return i
        i += 2 if body[i] == ord("\\") else 1
    return len(body)


def _segments(stack: list[list[object] | int]) -> list[str | int]:
    segments: list[str | int] = []
    for frame in stack:
        if isinstance(frame, int):
            segments.append(frame)
        elif frame[0] is not None and not frame[1]:
            # An object waiting for its next key is where a key string starts: no key to name.
            segments.append(str(frame[0]))
    return segments


def render_path(segments: Sequence[str | int]) -> str:
    """``imp[0].banner`` from ``["imp", 0, "banner"]``; ``""`` for the root."""
    path = ""
    for segment in segments:
        if isinstance(segment, int):
            path += f"[{segment}]"
        else:
            path = f"{path}.{segment}" if path else segment
    return path
