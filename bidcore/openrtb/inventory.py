"""Where the ad would run: a site, an app or a digital out-of-home screen, and its content.

>>> Site(domain="example.com", ref="https://search.example/").ref
'https://search.example/'
"""

from __future__ import annotations

from .audience import Data
from .base import Ext, Int32, NonNegInt32, OpenRtbObject
from .enums import CategoryTaxonomy, ContentContext, MediaRating, ProductionQuality

__all__ = [
    "App",
    "Channel",
    "Content",
    "Dooh",
    "Network",
    "Producer",
    "Publisher",
    "Site",
]


class Publisher(OpenRtbObject):
    """Who sells the inventory."""

    id: str | None = None
    name: str | None = None
    cattax: CategoryTaxonomy | None = None
    cat: list[str] | None = None
    domain: str | None = None
    ext: Ext = None


class Producer(OpenRtbObject):
    """Who made the content (may differ from the publisher, for syndicated content)."""

    id: str | None = None
    name: str | None = None
    cattax: CategoryTaxonomy | None = None
    cat: list[str] | None = None
    domain: str | None = None
    ext: Ext = None


class Network(OpenRtbObject):
    """The network the content is on (a TV network, a streaming service), 2.6."""

    id: str | None = None
    name: str | None = None
    domain: str | None = None
    ext: Ext = None


class Channel(OpenRtbObject):
    """The channel the content is on (a network's channel or station), 2.6."""

    id: str | None = None
    name: str | None = None
    domain: str | None = None
    ext: Ext = None


class Content(OpenRtbObject):
    """The content the ad appears in or next to."""

    id: str | None = None
    episode: Int32 | None = None
    title: str | None = None
    series: str | None = None
    season: str | None = None
    artist: str | None = None
    genre: str | None = None
    album: str | None = None
    isrc: str | None = None
    producer: Producer | None = None
    url: str | None = None
    cattax: CategoryTaxonomy | None = None
    cat: list[str] | None = None
    prodq: ProductionQuality | None = None
    # Deprecated in favour of `prodq` (same codes), still sent.
    videoquality: ProductionQuality | None = None
    context: ContentContext | None = None
    contentrating: str | None = None
    userrating: str | None = None
    qagmediarating: MediaRating | None = None
    keywords: str | None = None
    kwarray: list[str] | None = None
    livestream: Int32 | None = None
    sourcerelationship: Int32 | None = None
    len: NonNegInt32 | None = None
    language: str | None = None
    langb: str | None = None
    embeddable: Int32 | None = None
    data: list[Data] | None = None
    network: Network | None = None
    channel: Channel | None = None
    ext: Ext = None


class Site(OpenRtbObject):
    """A website."""

    id: str | None = None
    name: str | None = None
    domain: str | None = None
    cattax: CategoryTaxonomy | None = None
    cat: list[str] | None = None
    sectioncat: list[str] | None = None
    pagecat: list[str] | None = None
    page: str | None = None
    ref: str | None = None
    search: str | None = None
    mobile: Int32 | None = None
    privacypolicy: Int32 | None = None
    publisher: Publisher | None = None
    content: Content | None = None
    keywords: str | None = None
    kwarray: list[str] | None = None
    inventorypartnerdomain: str | None = None
    ext: Ext = None


class App(OpenRtbObject):
    """A mobile or connected-TV application."""

    id: str | None = None
    name: str | None = None
    bundle: str | None = None
    domain: str | None = None
    storeurl: str | None = None
    cattax: CategoryTaxonomy | None = None
    cat: list[str] | None = None
    sectioncat: list[str] | None = None
    pagecat: list[str] | None = None
    ver: str | None = None
    privacypolicy: Int32 | None = None
    paid: Int32 | None = None
    publisher: Publisher | None = None
    content: Content | None = None
    keywords: str | None = None
    kwarray: list[str] | None = None
    inventorypartnerdomain: str | None = None
    ext: Ext = None


class Dooh(OpenRtbObject):
    """Digital out-of-home inventory: a screen in a venue (2.6)."""

    id: str | None = None
    name: str | None = None
    venuetype: list[str] | None = None
    venuetypetax: Int32 | None = None
    publisher: Publisher | None = None
    domain: str | None = None
    keywords: str | None = None
    content: Content | None = None
    ext: Ext = None
