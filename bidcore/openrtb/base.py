"""What every OpenRTB object is built from: the object base, 32-bit integers, code lists, ``ext``.

>>> import msgspec
>>> msgspec.convert(7, Int32)
7
>>> msgspec.convert(-1, NonNegInt32)
Traceback (most recent call last):
...
msgspec.ValidationError: Expected `int` >= 0
>>> class Colour(TolerantIntEnum):
...     RED = 1
>>> Colour(1), Colour(9)
(<Colour.RED: 1>, <Colour.UNKNOWN_9: 9>)
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Self, TypeAlias

import msgspec

__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "Ext",
    "Int32",
    "NonNegInt32",
    "OpenRtbObject",
    "TolerantIntEnum",
]

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

# The native core decodes every OpenRTB integer into an `i32`; typing the Python model the same
# way means both sides reject the same out-of-range numbers with the same rule ("type").
Int32: TypeAlias = Annotated[int, msgspec.Meta(ge=INT32_MIN, le=INT32_MAX)]

# Sizes, durations, bitrates and counts cannot be negative: the core reads them as `u32` capped at
# the same maximum (a negative one is a "type" error at its path), and so does the model.
NonNegInt32: TypeAlias = Annotated[int, msgspec.Meta(ge=0, le=INT32_MAX)]

# An `ext` holds any JSON value. OpenRTB says "object", but exchanges do send strings and
# numbers there, and the native parser keeps whatever arrived, so the model must accept it too.
Ext: TypeAlias = Any


class OpenRtbObject(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=False):
    """The base of every OpenRTB object: keyword-only fields, all optional.

    Unknown fields are skipped (OpenRTB requires it: every release adds fields). Absent fields
    are ``None`` and are left out when encoding, so a decoded object re-encodes to the fields it
    arrived with. The spec's defaults (``at`` = 2, ``bidfloorcur`` = "USD"…) are not filled in
    here: :func:`~bidcore.openrtb.view.normalized_view` does that, in one place.
    """


class TolerantIntEnum(enum.IntEnum):
    """An OpenRTB code list that accepts codes it does not know.

    OpenRTB lists grow with every release and exchanges add their own codes (500+ ranges), so an
    unknown code is carried as a pseudo-member named ``UNKNOWN_<code>`` instead of failing the
    whole request. Codes outside the 32-bit range are still refused, as for :data:`Int32`.
    """

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        # bool is an int subclass, but JSON true is not a code (msgspec refuses it before here;
        # this guards calls made from Python).
        if isinstance(value, bool) or not isinstance(value, int):
            return None
        if not INT32_MIN <= value <= INT32_MAX:
            # msgspec turns this into a ValidationError at the field's path, like Int32 does.
            raise ValueError(f"{value} is outside the 32-bit range of OpenRTB integers")
        member = int.__new__(cls, value)
        member._name_ = f"UNKNOWN_{value}"
        member._value_ = value
        return member

    @property
    def is_known(self) -> bool:
        """Whether this code is one the spec lists (not an ``UNKNOWN_<code>`` pseudo-member)."""
        return self._name_ in type(self).__members__
