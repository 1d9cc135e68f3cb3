"""The OpenRTB 2.6 bid request: the top-level object, its source (supply chain) and regulations.

The impression and context objects live in :mod:`.imp`, :mod:`.inventory` and :mod:`.audience`.

>>> from bidcore.openrtb.imp import Banner, Imp
>>> BidRequest(id="r1", imp=[Imp(id="1", banner=Banner())]).imp[0].id
'1'
"""

from __future__ import annotations

from .audience import Device, User
from .base import Ext, Int32, NonNegInt32, OpenRtbObject
from .enums import AuctionType, CategoryTaxonomy
from .imp import Imp
from .inventory import App, Dooh, Site

__all__ = ["BidRequest", "Regs", "Source", "SupplyChain", "SupplyChainNode"]


class SupplyChainNode(OpenRtbObject):
    """One seller or intermediary on the path from the publisher to the bidder."""

    asi: str | None = None
    sid: str | None = None
    rid: str | None = None
    name: str | None = None
    domain: str | None = None
    hp: Int32 | None = None
    ext: Ext = None


class SupplyChain(OpenRtbObject):
    """The sellers the request passed through (``schain``), as sellers.json names them."""

    complete: Int32 | None = None
    nodes: list[SupplyChainNode] | None = None
    ver: str | None = None
    ext: Ext = None


class Source(OpenRtbObject):
    """Where the request comes from: who makes the final decision, the transaction id, schain.

    2.5 exchanges put ``schain`` under ``ext``; see
    :func:`~bidcore.openrtb.view.normalized_view`.
    """

    fd: Int32 | None = None
    tid: str | None = None
    pchain: str | None = None
    schain: SupplyChain | None = None
    ext: Ext = None


class Regs(OpenRtbObject):
    """Regulations that apply: COPPA, GDPR, CCPA (``us_privacy``) and GPP.

    2.5 exchanges put ``gdpr`` and ``us_privacy`` under ``ext``; see
    :func:`~bidcore.openrtb.view.normalized_view`.
    """

    coppa: Int32 | None = None
    gdpr: Int32 | None = None
    us_privacy: str | None = None
    gpp: str | None = None
    gpp_sid: list[Int32] | None = None
    ext: Ext = None


class BidRequest(OpenRtbObject):
    """The top-level bid request.

    At most one of ``site``, ``app`` and ``dooh`` may be present: the model does not insist, it
    only describes what arrived; validation refuses a second one (rule ``channel``).
    """

    id: str | None = None
    imp: list[Imp] | None = None
    site: Site | None = None
    app: App | None = None
    dooh: Dooh | None = None
    device: Device | None = None
    user: User | None = None
    test: Int32 | None = None
    at: AuctionType | None = None
    tmax: NonNegInt32 | None = None
    wseat: list[str] | None = None
    bseat: list[str] | None = None
    allimps: Int32 | None = None
    cur: list[str] | None = None
    wlang: list[str] | None = None
    wlangb: list[str] | None = None
    acat: list[str] | None = None
    bcat: list[str] | None = None
    cattax: CategoryTaxonomy | None = None
    badv: list[str] | None = None
    bapp: list[str] | None = None
    source: Source | None = None
    regs: Regs | None = None
    ext: Ext = None
