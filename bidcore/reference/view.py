"""Reading the normalized request view (``inspect_request_py``'s dict) and the case rules the
spec applies to its strings."""

from __future__ import annotations

from typing import Any, Final

__all__ = ["View", "ascii_lower", "ascii_upper", "lookup", "strings"]

View = dict[str, Any]

_UPPER: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER: Final = "abcdefghijklmnopqrstuvwxyz"
# Only ASCII letters change case, as the native core's byte-wise `to_ascii_*` does: Python's
# own str.lower/upper would also fold "İ" or "ß", which the engine leaves alone.
_TO_LOWER: Final = str.maketrans(_UPPER, _LOWER)
_TO_UPPER: Final = str.maketrans(_LOWER, _UPPER)


def ascii_lower(text: str) -> str:
    return text.translate(_TO_LOWER)


def ascii_upper(text: str) -> str:
    return text.translate(_TO_UPPER)


def lookup(obj: Any, *path: str) -> Any:
    """The value at ``path`` under ``obj``, or ``None`` where any step is missing."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def strings(obj: Any, *path: str) -> list[str]:
    """The list of strings at ``path`` (empty when absent): block-lists and categories."""
    found = lookup(obj, *path)
    return list(found) if isinstance(found, list) else []
