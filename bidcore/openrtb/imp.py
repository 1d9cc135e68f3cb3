"""The impression (``imp[]``) and what it offers: banner, video, audio, native, private deals.

>>> Imp(id="1", banner=Banner(w=300, h=250), bidfloor=0.5).banner.w
300
"""

from __future__ import annotations

from typing import Any

from .base import Ext, Int32, NonNegInt32, OpenRtbObject
from .enums import (
    AdPosition,
    ApiFramework,
    AuctionType,
    BannerAdType,
    CompanionType,
    CreativeAttribute,
    DeliveryMethod,
    ExpandableDirection,
    FeedType,
    LinearityMode,
    PlaybackCessationMode,
    PlaybackMethod,
    PodSequence,
    Protocol,
    SlotPositionInPod,
    StartDelay,
    VideoPlacement,
    VideoPlcmt,
    VolumeNormalizationMode,
)

__all__ = [
    "Audio",
    "Banner",
    "Deal",
    "DurFloors",
    "Format",
    "Imp",
    "Metric",
    "Native",
    "Pmp",
    "Qty",
    "RefSettings",
    "Refresh",
    "Video",
]


class Metric(OpenRtbObject):
    """A measured property of the impression (viewability, click-through…), from a vendor."""

    type: str | None = None
    value: float | None = None
    vendor: str | None = None
    ext: Ext = None


class Format(OpenRtbObject):
    """An allowed banner size: absolute (``w``/``h``) or flexible (ratio and minimum width)."""

    w: NonNegInt32 | None = None
    h: NonNegInt32 | None = None
    wratio: NonNegInt32 | None = None
    hratio: NonNegInt32 | None = None
    wmin: NonNegInt32 | None = None
    ext: Ext = None


class Banner(OpenRtbObject):
    """A display placement, or a video/audio companion (``companionad[]``)."""

    format: list[Format] | None = None
    w: NonNegInt32 | None = None
    h: NonNegInt32 | None = None
    # Removed in 2.6 in favour of `format`, still sent by 2.5 exchanges.
    wmax: Int32 | None = None
    hmax: Int32 | None = None
    wmin: Int32 | None = None
    hmin: Int32 | None = None
    btype: list[BannerAdType] | None = None
    battr: list[CreativeAttribute] | None = None
    pos: AdPosition | None = None
    mimes: list[str] | None = None
    topframe: Int32 | None = None
    expdir: list[ExpandableDirection] | None = None
    api: list[ApiFramework] | None = None
    id: str | None = None
    vcm: Int32 | None = None
    ext: Ext = None


class DurFloors(OpenRtbObject):
    """A floor for creatives whose duration falls in ``[mindur, maxdur]`` seconds (2.6)."""

    mindur: Int32 | None = None
    maxdur: Int32 | None = None
    bidfloor: float | None = None
    ext: Ext = None


class Video(OpenRtbObject):
    """A video placement (VAST), including ad-pod bidding (2.6)."""

    mimes: list[str] | None = None
    minduration: NonNegInt32 | None = None
    maxduration: NonNegInt32 | None = None
    startdelay: StartDelay | None = None
    maxseq: NonNegInt32 | None = None
    poddur: NonNegInt32 | None = None
    protocols: list[Protocol] | None = None
    # OpenRTB 2.2's single protocol, still sent by some exchanges.
    protocol: Protocol | None = None
    w: NonNegInt32 | None = None
    h: NonNegInt32 | None = None
    podid: str | None = None
    podseq: PodSequence | None = None
    rqddurs: list[NonNegInt32] | None = None
    # 2.5's placement; 2.6 replaced it by `plcmt` with different codes.
    placement: VideoPlacement | None = None
    plcmt: VideoPlcmt | None = None
    linearity: LinearityMode | None = None
    skip: Int32 | None = None
    skipmin: NonNegInt32 | None = None
    skipafter: NonNegInt32 | None = None
    sequence: NonNegInt32 | None = None
    slotinpod: SlotPositionInPod | None = None
    mincpmpersec: float | None = None
    battr: list[CreativeAttribute] | None = None
    maxextended: Int32 | None = None
    minbitrate: NonNegInt32 | None = None
    maxbitrate: NonNegInt32 | None = None
    boxingallowed: Int32 | None = None
    playbackmethod: list[PlaybackMethod] | None = None
    playbackend: PlaybackCessationMode | None = None
    delivery: list[DeliveryMethod] | None = None
    pos: AdPosition | None = None
    companionad: list[Banner] | None = None
    api: list[ApiFramework] | None = None
    companiontype: list[CompanionType] | None = None
    poddedupe: list[Int32] | None = None
    durfloors: list[DurFloors] | None = None
    ext: Ext = None


class Audio(OpenRtbObject):
    """An audio placement (DAAST/VAST), including ad-pod bidding (2.6)."""

    mimes: list[str] | None = None
    minduration: NonNegInt32 | None = None
    maxduration: NonNegInt32 | None = None
    poddur: NonNegInt32 | None = None
    protocols: list[Protocol] | None = None
    startdelay: StartDelay | None = None
    rqddurs: list[NonNegInt32] | None = None
    podid: str | None = None
    podseq: PodSequence | None = None
    sequence: NonNegInt32 | None = None
    slotinpod: SlotPositionInPod | None = None
    mincpmpersec: float | None = None
    battr: list[CreativeAttribute] | None = None
    maxextended: Int32 | None = None
    minbitrate: NonNegInt32 | None = None
    maxbitrate: NonNegInt32 | None = None
    delivery: list[DeliveryMethod] | None = None
    companionad: list[Banner] | None = None
    api: list[ApiFramework] | None = None
    companiontype: list[CompanionType] | None = None
    maxseq: NonNegInt32 | None = None
    feed: FeedType | None = None
    stitched: Int32 | None = None
    nvol: VolumeNormalizationMode | None = None
    durfloors: list[DurFloors] | None = None
    ext: Ext = None


class Native(OpenRtbObject):
    """A native placement; the assets it wants are in the Native Ads ``request`` document."""

    # OpenRTB says a JSON-encoded string. Google's OpenRTB library and several exchanges send the
    # Native request as an object instead; both are accepted (decode a string one with
    # `decode_native_request`, convert an object one with `msgspec.convert`).
    request: str | dict[str, Any] | None = None
    ver: str | None = None
    api: list[ApiFramework] | None = None
    battr: list[CreativeAttribute] | None = None
    ext: Ext = None


class Deal(OpenRtbObject):
    """A private-marketplace deal: its own floor, currency, auction type and allowed buyers."""

    id: str | None = None
    bidfloor: float | None = None
    bidfloorcur: str | None = None
    at: AuctionType | None = None
    wseat: list[str] | None = None
    wadomain: list[str] | None = None
    guar: Int32 | None = None
    mincpmpersec: float | None = None
    durfloors: list[DurFloors] | None = None
    ext: Ext = None


class Pmp(OpenRtbObject):
    """The private marketplace an impression is offered in."""

    private_auction: Int32 | None = None
    deals: list[Deal] | None = None
    ext: Ext = None


class Qty(OpenRtbObject):
    """How many impressions one ad play counts for (DOOH, 2.6)."""

    multiplier: float | None = None
    sourcetype: Int32 | None = None
    vendor: str | None = None
    ext: Ext = None


class RefSettings(OpenRtbObject):
    """One kind of refresh a placement performs (2.6)."""

    reftype: Int32 | None = None
    minint: Int32 | None = None
    ext: Ext = None


class Refresh(OpenRtbObject):
    """How a placement refreshes, and how many times it has (2.6)."""

    refsettings: list[RefSettings] | None = None
    count: Int32 | None = None
    ext: Ext = None


class Imp(OpenRtbObject):
    """One impression offered in the request."""

    id: str | None = None
    metric: list[Metric] | None = None
    banner: Banner | None = None
    video: Video | None = None
    audio: Audio | None = None
    native: Native | None = None
    pmp: Pmp | None = None
    displaymanager: str | None = None
    displaymanagerver: str | None = None
    instl: Int32 | None = None
    tagid: str | None = None
    bidfloor: float | None = None
    bidfloorcur: str | None = None
    clickbrowser: Int32 | None = None
    secure: Int32 | None = None
    iframebuster: list[str] | None = None
    rwdd: Int32 | None = None
    ssai: Int32 | None = None
    exp: NonNegInt32 | None = None
    qty: Qty | None = None
    dt: float | None = None
    refresh: Refresh | None = None
    ext: Ext = None
