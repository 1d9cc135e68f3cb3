"""The request-level gates of ``docs/engine.md``, checked before any campaign is looked at:
the seat, the bid currency and whether the request allows personal use of the user's data."""

from __future__ import annotations

from bidcore.config import Fx
from bidcore.features.reference import personal_data_allowed as is_personal

from .view import View, strings

__all__ = ["bid_currency", "is_personal", "seat_blocked"]


def seat_blocked(view: View, seat: str) -> bool:
    """Whether the exchange shuts the bidder's seat out (``wseat`` without it, or ``bseat``
    with it). An empty ``wseat`` allows every seat, as an empty deal ``wseat`` does."""
    allowed = strings(view, "wseat")
    return (bool(allowed) and seat not in allowed) or seat in strings(view, "bseat")


def bid_currency(view: View, bidder_currency: str, fx: Fx) -> str | None:
    """The currency to bid in: the bidder's when allowed, else the first the request allows
    that the FX table can convert to; ``None`` when there is none."""
    allowed = strings(view, "cur")
    if not allowed or bidder_currency in allowed:
        return bidder_currency
    if fx.rate_nanos(bidder_currency) is None:
        return None
    return next((code for code in allowed if fx.rate_nanos(code) is not None), None)
