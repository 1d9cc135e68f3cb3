"""The OpenRTB 2.6 bid response: seat bids and their bids, or a no-bid reason.

>>> BidResponse(id="r1", nbr=NoBidReason.UNMATCHED_USER).nbr
<NoBidReason.UNMATCHED_USER: 8>
"""

from __future__ import annotations

from typing import Any

from .base import Ext, Int32, OpenRtbObject
from .enums import (
    ApiFramework,
    CategoryTaxonomy,
    CreativeAttribute,
    MarkupType,
    MediaRating,
    NoBidReason,
    Protocol,
    SlotPositionInPod,
)

__all__ = ["Bid", "BidResponse", "SeatBid"]


class Bid(OpenRtbObject):
    """An offer to buy one impression (``impid``) at ``price``, with the creative to show."""

    id: str | None = None
    impid: str | None = None
    price: float | None = None
    nurl: str | None = None
    burl: str | None = None
    lurl: str | None = None
    # A string (HTML, VAST, or a JSON-encoded Native response), as OpenRTB says. Google's OpenRTB
    # library and some bidders send a Native response as an object instead; both are accepted.
    adm: str | dict[str, Any] | None = None
    adid: str | None = None
    adomain: list[str] | None = None
    bundle: str | None = None
    iurl: str | None = None
    cid: str | None = None
    crid: str | None = None
    tactic: str | None = None
    cattax: CategoryTaxonomy | None = None
    cat: list[str] | None = None
    attr: list[CreativeAttribute] | None = None
    apis: list[ApiFramework] | None = None
    # Deprecated in 2.6 in favour of `apis`, still sent.
    api: ApiFramework | None = None
    protocol: Protocol | None = None
    qagmediarating: MediaRating | None = None
    language: str | None = None
    langb: str | None = None
    dealid: str | None = None
    w: Int32 | None = None
    h: Int32 | None = None
    wratio: Int32 | None = None
    hratio: Int32 | None = None
    exp: Int32 | None = None
    dur: Int32 | None = None
    mtype: MarkupType | None = None
    slotinpod: SlotPositionInPod | None = None
    ext: Ext = None


class SeatBid(OpenRtbObject):
    """The bids of one buyer seat."""

    bid: list[Bid] | None = None
    seat: str | None = None
    group: Int32 | None = None
    ext: Ext = None


class BidResponse(OpenRtbObject):
    """The answer to one bid request: bids, or an empty answer with a no-bid reason."""

    id: str | None = None
    seatbid: list[SeatBid] | None = None
    bidid: str | None = None
    cur: str | None = None
    customdata: str | None = None
    nbr: NoBidReason | None = None
    ext: Ext = None
