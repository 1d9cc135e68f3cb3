"""The normalized view of a bid request as plain JSON data: the Python reference of what the
native core's ``inspect_request`` prints (``normalize.rs`` and ``view_json.rs``).

Three steps, as in the core:

1. keep only what the native parser reads (:mod:`.view_schema`);
2. move OpenRTB 2.5's ``ext`` signals to their 2.6 fields, where the 2.6 field is absent;
3. fill in the defaults the bidder depends on and upper-case currency codes.

Absent fields are left out at every level, except inside the values kept whole (``ext`` of the
request and of each imp, and ``imp[].native.request``), which are returned as they arrived,
nulls included. ``regs.ext``, ``user.ext`` and ``source.ext`` are read, never shown.

>>> from bidcore.openrtb import decode_request
>>> request = decode_request(
...     b'{"id":"r","imp":[{"id":"1","banner":{},"bidfloorcur":"eur"}],"regs":{"ext":{"gdpr":1}}}'
... )
>>> view = normalized_view(request)
>>> view["imp"], view["regs"], view["at"]
([{'id': '1', 'banner': {}, 'bidfloorcur': 'EUR', 'bidfloor': 0.0}], {'gdpr': 1}, 2)
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from .audience import User
from .rejection import rejection_from_msgspec
from .request import BidRequest, Regs, Source
from .view_schema import LEGACY_EXT, VIEW_FIELDS, view_type

__all__ = ["DEFAULT_AUCTION_TYPE", "DEFAULT_CURRENCY", "normalized_view"]

DEFAULT_AUCTION_TYPE: Final = 2
"""The auction type when the request does not say (OpenRTB: second price plus)."""
DEFAULT_CURRENCY: Final = "USD"
"""The floor currency when an imp or deal does not say (OpenRTB's default)."""

# The objects whose 2.5 `ext` carries signals, and those signals (named as their 2.6 fields).
_LEGACY_HOLDERS: Final[dict[str, type[msgspec.Struct]]] = {
    "regs": Regs,
    "user": User,
    "source": Source,
}
_LEGACY_SIGNALS: Final = {
    name: VIEW_FIELDS[LEGACY_EXT[model]] for name, model in _LEGACY_HOLDERS.items()
}

# Only ASCII letters change case: the core upper-cases bytes, and "ß".upper() is "SS".
_ASCII_UPPER: Final = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def normalized_view(request: BidRequest) -> dict[str, Any]:
    """The normalized view of ``request``, as ``json.loads`` of the core's view JSON gives it.

    The request is not validated here (see :func:`~bidcore.openrtb.validate.validate_request`),
    but its lenient ``ext`` objects are read: a ``regs.ext.gdpr`` that is not a 32-bit integer
    raises :class:`~bidcore.errors.InvalidRequestError` with rule ``type`` and path
    ``regs.ext.gdpr``, as the native parser does.
    """
    view = _project(request)
    _lift_legacy_signals(view)
    _apply_defaults(view)
    return view


def _project(request: BidRequest) -> dict[str, Any]:
    """The fields the native parser keeps, absent ones left out, codes as plain integers."""
    try:
        kept = msgspec.convert(msgspec.to_builtins(request), view_type(BidRequest))
    except msgspec.ValidationError as err:
        raise rejection_from_msgspec(err) from err
    projected: dict[str, Any] = msgspec.to_builtins(kept)
    return projected


def _lift_legacy_signals(view: dict[str, Any]) -> None:
    """Moves 2.5's ``ext`` signals into their 2.6 fields; a 2.6 field present wins."""
    for name, signals in _LEGACY_SIGNALS.items():
        holder = view.get(name)
        if holder is None:
            continue
        legacy = holder.pop("ext", None)
        # An ext that was not an object carried nothing the bidder reads.
        if not isinstance(legacy, dict):
            continue
        for signal in signals:
            if signal not in holder and signal in legacy:
                holder[signal] = legacy[signal]


def _apply_defaults(view: dict[str, Any]) -> None:
    view.setdefault("at", DEFAULT_AUCTION_TYPE)
    if "cur" in view:
        view["cur"] = [_upper(code) for code in view["cur"]]
    for imp in view.get("imp", ()):
        _apply_price_defaults(imp)
        pmp = imp.get("pmp")
        if pmp is not None:
            pmp.setdefault("private_auction", 0)
            for deal in pmp.get("deals", ()):
                _apply_price_defaults(deal)


def _apply_price_defaults(priced: dict[str, Any]) -> None:
    """An imp's or a deal's floor defaults to 0 in the default currency."""
    priced.setdefault("bidfloor", 0.0)
    priced["bidfloorcur"] = _upper(priced.get("bidfloorcur", DEFAULT_CURRENCY))


def _upper(code: str) -> str:
    return code.translate(_ASCII_UPPER)
