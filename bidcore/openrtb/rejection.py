"""How the OpenRTB layer says no: one :class:`~bidcore.errors.InvalidRequestError` shape for every
rule, worded as the native core words it (``path: detail [rule]``).

>>> raise rejection("floor", "imp[0].bidfloor", "must be >= 0")
Traceback (most recent call last):
...
bidcore.errors.InvalidRequestError: imp[0].bidfloor: must be >= 0 [floor]
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

from bidcore.errors import InvalidRequestError

__all__ = ["ROOT_PATH", "rejection", "rejection_from_msgspec"]

ROOT_PATH: Final = "$"
"""The path of the whole document in an error (the native core's empty path, as displayed)."""

# msgspec ends a ValidationError message with the JSON path: "... - at `$.imp[0].bidfloor`".
_PATH_SUFFIX: Final = re.compile(r" - at `\$(?P<path>[^`]*)`$")


def rejection(rule: str, path: str, detail: str) -> InvalidRequestError:
    """The error for a broken ``rule`` at ``path`` (``""`` or ``$`` for the whole document)."""
    path = path or ROOT_PATH
    return InvalidRequestError(f"{path}: {detail} [{rule}]", path=path, rule=rule)


def rejection_from_msgspec(err: msgspec.DecodeError, *, prefix: str = "") -> InvalidRequestError:
    """The error for a msgspec decoding error: rule ``json`` for malformed JSON, ``type`` for a
    value of the wrong type or out of range, at msgspec's path without its ``$.``.

    ``prefix`` is the path of the value decoded, when it is not the whole document.
    """
    message = str(err)
    match = _PATH_SUFFIX.search(message)
    detail = message[: match.start()] if match else message
    relative = match.group("path") if match else ""
    path = prefix + relative if prefix else relative.removeprefix(".")
    return rejection(_rule_of(err, detail), path, detail)


def _rule_of(err: msgspec.DecodeError, detail: str) -> str:
    if not isinstance(err, msgspec.ValidationError):
        return "json"
    # A number too large for a float is a syntax error to serde_json (and so to the native
    # core), not a wrong type: keep the same rule on both sides.
    if detail == "Number out of range":
        return "json"
    return "type"
