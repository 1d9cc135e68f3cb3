"""Native Ads 1.2: the request document carried in ``imp.native.request`` and the response
document a bid's ``adm`` carries.

Names are suffixed ``Request``/``Response`` because the two documents have different objects of
the same name (a title asset asks for a ``len`` and answers with a ``text``).

>>> NativeRequest(assets=[AssetRequest(id=1, title=TitleRequest(len=90))]).assets[0].title.len
90
"""

from __future__ import annotations

from typing import Any

from .base import Ext, Int32, NonNegInt32, OpenRtbObject
from .enums import (
    EventTrackingMethod,
    EventType,
    NativeContextSubtype,
    NativeContextType,
    NativeDataAssetType,
    NativeImageAssetType,
    NativePlacementType,
    Protocol,
)

__all__ = [
    "AssetRequest",
    "AssetResponse",
    "DataRequest",
    "DataResponse",
    "EventTrackerRequest",
    "EventTrackerResponse",
    "ImageRequest",
    "ImageResponse",
    "LinkResponse",
    "NativeRequest",
    "NativeResponse",
    "TitleRequest",
    "TitleResponse",
    "VideoRequest",
    "VideoResponse",
]


# --- Request -----------------------------------------------------------------------------------


class TitleRequest(OpenRtbObject):
    """Asks for a title of at most ``len`` characters."""

    len: NonNegInt32 | None = None
    ext: Ext = None


class ImageRequest(OpenRtbObject):
    """Asks for an image: icon or main, exact size or minimum size."""

    type: NativeImageAssetType | None = None
    w: NonNegInt32 | None = None
    wmin: NonNegInt32 | None = None
    h: NonNegInt32 | None = None
    hmin: NonNegInt32 | None = None
    mimes: list[str] | None = None
    ext: Ext = None


class VideoRequest(OpenRtbObject):
    """Asks for a video (answered with a VAST tag)."""

    mimes: list[str] | None = None
    minduration: NonNegInt32 | None = None
    maxduration: NonNegInt32 | None = None
    protocols: list[Protocol] | None = None
    ext: Ext = None


class DataRequest(OpenRtbObject):
    """Asks for a piece of text or data: sponsor name, description, rating, price…"""

    type: NativeDataAssetType | None = None
    len: NonNegInt32 | None = None
    ext: Ext = None


class AssetRequest(OpenRtbObject):
    """One asset the placement shows; exactly one of title, img, video, data is set."""

    id: Int32 | None = None
    required: Int32 | None = None
    title: TitleRequest | None = None
    img: ImageRequest | None = None
    video: VideoRequest | None = None
    data: DataRequest | None = None
    ext: Ext = None


class EventTrackerRequest(OpenRtbObject):
    """An event the placement can report, and the tracking methods it supports for it."""

    event: EventType | None = None
    methods: list[EventTrackingMethod] | None = None
    ext: Ext = None


class NativeRequest(OpenRtbObject):
    """The Native Ads request document."""

    ver: str | None = None
    # Native 1.0's layout and ad unit, deprecated in 1.1 for context/plcmttype, still sent.
    layout: Int32 | None = None
    adunit: Int32 | None = None
    context: NativeContextType | None = None
    contextsubtype: NativeContextSubtype | None = None
    plcmttype: NativePlacementType | None = None
    plcmtcnt: NonNegInt32 | None = None
    seq: NonNegInt32 | None = None
    assets: list[AssetRequest] | None = None
    aurlsupport: Int32 | None = None
    durlsupport: Int32 | None = None
    eventtrackers: list[EventTrackerRequest] | None = None
    privacy: Int32 | None = None
    ext: Ext = None


# --- Response ----------------------------------------------------------------------------------


class LinkResponse(OpenRtbObject):
    """Where a click goes, and who is told about it."""

    url: str | None = None
    clicktrackers: list[str] | None = None
    fallback: str | None = None
    ext: Ext = None


class TitleResponse(OpenRtbObject):
    """The title text."""

    text: str | None = None
    len: Int32 | None = None
    ext: Ext = None


class ImageResponse(OpenRtbObject):
    """The image to show."""

    type: NativeImageAssetType | None = None
    url: str | None = None
    w: Int32 | None = None
    h: Int32 | None = None
    ext: Ext = None


class VideoResponse(OpenRtbObject):
    """The video to show, as a VAST document."""

    vasttag: str | None = None
    ext: Ext = None


class DataResponse(OpenRtbObject):
    """A piece of text or data (``value`` is always a string, even for a price or rating)."""

    type: NativeDataAssetType | None = None
    len: Int32 | None = None
    # Native 1.1's optional label, dropped in 1.2.
    label: str | None = None
    value: str | None = None
    ext: Ext = None


class AssetResponse(OpenRtbObject):
    """One asset of the ad, answering the request asset with the same ``id``."""

    id: Int32 | None = None
    required: Int32 | None = None
    title: TitleResponse | None = None
    img: ImageResponse | None = None
    video: VideoResponse | None = None
    data: DataResponse | None = None
    link: LinkResponse | None = None
    ext: Ext = None


class EventTrackerResponse(OpenRtbObject):
    """A tracker to fire (``url``) or run (``method`` 2: a JavaScript URL) on an event."""

    event: EventType | None = None
    method: EventTrackingMethod | None = None
    url: str | None = None
    customdata: dict[str, Any] | None = None
    ext: Ext = None


class NativeResponse(OpenRtbObject):
    """The Native Ads response document (what a native bid's ``adm`` holds)."""

    ver: str | None = None
    assets: list[AssetResponse] | None = None
    assetsurl: str | None = None
    dcourl: str | None = None
    link: LinkResponse | None = None
    imptrackers: list[str] | None = None
    jstracker: str | None = None
    eventtrackers: list[EventTrackerResponse] | None = None
    privacy: str | None = None
    ext: Ext = None
