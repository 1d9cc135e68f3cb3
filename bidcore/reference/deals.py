"""Which deal, if any, a campaign bids through on an imp (``docs/engine.md``, step 1)."""

from __future__ import annotations

from typing import Any

from bidcore.config import Campaign

from .view import View, lookup, strings

__all__ = ["choose_deal"]


def _open_deals(imp: View, seat: str) -> list[dict[str, Any]]:
    """The imp's deals the bidder's seat may bid on, in the imp's order."""
    deals = lookup(imp, "pmp", "deals") or []
    return [d for d in deals if not strings(d, "wseat") or seat in strings(d, "wseat")]


def choose_deal(
    campaign: Campaign, imp: View, seat: str
) -> tuple[dict[str, Any] | None, str | None]:
    """``(deal, None)`` for the deal the campaign bids through (``None`` for the open auction),
    or ``(None, reason)`` when it may not bid on the imp.

    When an imp is a private auction and the campaign is ``deals_only`` without a matching
    deal, both rules exclude it; ``private_auction`` is reported, the first rule in the spec's
    order, as the imp itself closes the open auction before the campaign's preference matters.
    """
    if campaign.deals:
        for deal in _open_deals(imp, seat):
            if deal.get("id") in campaign.deals:
                return deal, None
    if lookup(imp, "pmp", "private_auction") == 1:
        return None, "private_auction"
    if campaign.deals_only:
        return None, "deal"
    return None, None
