"""Who the ad would reach: the device, its structured user agent, location, and the user.

>>> Device(devicetype=4, geo=Geo(country="FRA")).geo.country
'FRA'
"""

from __future__ import annotations

from .base import Ext, Int32, NonNegInt32, OpenRtbObject
from .enums import (
    AgentType,
    ConnectionType,
    DeviceType,
    IpLocationService,
    LocationType,
    MatchMethod,
    UserAgentSource,
)

__all__ = [
    "EID",
    "UID",
    "BrandVersion",
    "Data",
    "Device",
    "Geo",
    "Segment",
    "User",
    "UserAgent",
]


class Geo(OpenRtbObject):
    """A location: of the device (where it is now) or of the user (home)."""

    lat: float | None = None
    lon: float | None = None
    type: LocationType | None = None
    accuracy: NonNegInt32 | None = None
    lastfix: NonNegInt32 | None = None
    ipservice: IpLocationService | None = None
    country: str | None = None
    region: str | None = None
    regionfips104: str | None = None
    metro: str | None = None
    city: str | None = None
    zip: str | None = None
    utcoffset: Int32 | None = None
    ext: Ext = None


class BrandVersion(OpenRtbObject):
    """A browser or platform brand and its version components (``["14", "0"]``)."""

    brand: str | None = None
    version: list[str] | None = None
    ext: Ext = None


class UserAgent(OpenRtbObject):
    """Structured user agent (``device.sua``, 2.6): the client-hints view of the browser."""

    browsers: list[BrandVersion] | None = None
    platform: BrandVersion | None = None
    mobile: Int32 | None = None
    architecture: str | None = None
    bitness: str | None = None
    model: str | None = None
    source: UserAgentSource | None = None
    ext: Ext = None


class Device(OpenRtbObject):
    """The device the ad would be shown on."""

    geo: Geo | None = None
    dnt: Int32 | None = None
    lmt: Int32 | None = None
    ua: str | None = None
    sua: UserAgent | None = None
    ip: str | None = None
    ipv6: str | None = None
    devicetype: DeviceType | None = None
    make: str | None = None
    model: str | None = None
    os: str | None = None
    osv: str | None = None
    hwv: str | None = None
    h: NonNegInt32 | None = None
    w: NonNegInt32 | None = None
    ppi: NonNegInt32 | None = None
    pxratio: float | None = None
    js: Int32 | None = None
    geofetch: Int32 | None = None
    flashver: str | None = None
    language: str | None = None
    langb: str | None = None
    carrier: str | None = None
    mccmnc: str | None = None
    connectiontype: ConnectionType | None = None
    ifa: str | None = None
    # Hashed device ids, deprecated in 2.6 but still sent.
    didsha1: str | None = None
    didmd5: str | None = None
    dpidsha1: str | None = None
    dpidmd5: str | None = None
    macsha1: str | None = None
    macmd5: str | None = None
    ext: Ext = None


class Segment(OpenRtbObject):
    """One audience segment a data provider puts the user (or the content) in."""

    id: str | None = None
    name: str | None = None
    value: str | None = None
    ext: Ext = None


class Data(OpenRtbObject):
    """A data provider and its segments, for the user or the content."""

    id: str | None = None
    name: str | None = None
    segment: list[Segment] | None = None
    ext: Ext = None


class UID(OpenRtbObject):
    """One id an identity provider has for the user."""

    id: str | None = None
    atype: AgentType | None = None
    ext: Ext = None


class EID(OpenRtbObject):
    """An extended identifier (``user.eids[]``): one identity provider's ids for the user."""

    inserter: str | None = None
    source: str | None = None
    matcher: str | None = None
    mm: MatchMethod | None = None
    uids: list[UID] | None = None
    ext: Ext = None


class User(OpenRtbObject):
    """The user: ids, declared data, consent and extended ids.

    2.5 exchanges put ``consent`` and ``eids`` under ``ext``; see
    :func:`~bidcore.openrtb.view.normalized_view` for how they are lifted.
    """

    id: str | None = None
    buyeruid: str | None = None
    yob: Int32 | None = None
    gender: str | None = None
    keywords: str | None = None
    kwarray: list[str] | None = None
    customdata: str | None = None
    geo: Geo | None = None
    data: list[Data] | None = None
    consent: str | None = None
    eids: list[EID] | None = None
    ext: Ext = None
