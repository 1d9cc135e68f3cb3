"""OpenRTB 2.6 / AdCOM 1.0 code lists and the Native Ads 1.2 ones.

Every list is a :class:`~bidcore.openrtb.base.TolerantIntEnum`: a code the list does not name
(a newer spec, an exchange's 500+ range) decodes to an ``UNKNOWN_<code>`` pseudo-member instead
of failing the request.

>>> DeviceType(4), DeviceType(77).name
(<DeviceType.PHONE: 4>, 'UNKNOWN_77')
"""

from __future__ import annotations

from .base import TolerantIntEnum

__all__ = [
    "AdPosition",
    "AgentType",
    "ApiFramework",
    "AuctionType",
    "BannerAdType",
    "CategoryTaxonomy",
    "CompanionType",
    "ConnectionType",
    "ContentContext",
    "CreativeAttribute",
    "DeliveryMethod",
    "DeviceType",
    "EventTrackingMethod",
    "EventType",
    "ExpandableDirection",
    "FeedType",
    "IpLocationService",
    "LinearityMode",
    "LocationType",
    "LossReason",
    "MarkupType",
    "MatchMethod",
    "MediaRating",
    "NativeContextSubtype",
    "NativeContextType",
    "NativeDataAssetType",
    "NativeImageAssetType",
    "NativePlacementType",
    "NoBidReason",
    "PlaybackCessationMode",
    "PlaybackMethod",
    "PodSequence",
    "ProductionQuality",
    "Protocol",
    "SlotPositionInPod",
    "StartDelay",
    "UserAgentSource",
    "VideoPlacement",
    "VideoPlcmt",
    "VolumeNormalizationMode",
]


# --- Bid request and response ------------------------------------------------------------------


class AuctionType(TolerantIntEnum):
    """``at``: how the auction clears. 500+ are exchange-specific."""

    FIRST_PRICE = 1
    SECOND_PRICE_PLUS = 2
    # Deals only: the deal's bidfloor is the agreed price.
    FIXED_PRICE = 3


class NoBidReason(TolerantIntEnum):
    """``BidResponse.nbr``: why a bidder did not bid."""

    UNKNOWN_ERROR = 0
    TECHNICAL_ERROR = 1
    INVALID_REQUEST = 2
    KNOWN_WEB_SPIDER = 3
    SUSPECTED_NON_HUMAN_TRAFFIC = 4
    CLOUD_DATA_CENTER_OR_PROXY_IP = 5
    UNSUPPORTED_DEVICE = 6
    BLOCKED_PUBLISHER_OR_SITE = 7
    UNMATCHED_USER = 8
    DAILY_USER_CAP_MET = 9
    DAILY_DOMAIN_CAP_MET = 10
    ADS_TXT_AUTHORIZATION_UNAVAILABLE = 11
    ADS_TXT_AUTHORIZATION_VIOLATION = 12
    ADS_CERT_AUTHENTICATION_UNAVAILABLE = 13
    ADS_CERT_AUTHENTICATION_VIOLATION = 14
    INSUFFICIENT_AUCTION_TIME = 15
    INCOMPLETE_SUPPLY_CHAIN = 16
    BLOCKED_SUPPLY_CHAIN_NODE = 17


class LossReason(TolerantIntEnum):
    """The ``${AUCTION_LOSS}`` macro: why a bid lost (0 means it won)."""

    BID_WON = 0
    INTERNAL_ERROR = 1
    IMPRESSION_OPPORTUNITY_EXPIRED = 2
    INVALID_BID_RESPONSE = 3
    INVALID_DEAL_ID = 4
    INVALID_AUCTION_ID = 5
    INVALID_ADVERTISER_DOMAIN = 6
    MISSING_MARKUP = 7
    MISSING_CREATIVE_ID = 8
    MISSING_BID_PRICE = 9
    MISSING_MINIMUM_CREATIVE_APPROVAL_DATA = 10
    BELOW_AUCTION_FLOOR = 100
    BELOW_DEAL_FLOOR = 101
    LOST_TO_HIGHER_BID = 102
    LOST_TO_DEAL_BID = 103
    BUYER_SEAT_BLOCKED = 104
    CREATIVE_FILTERED_GENERAL = 200
    CREATIVE_FILTERED_PENDING_PROCESSING = 201
    CREATIVE_FILTERED_DISAPPROVED = 202
    CREATIVE_FILTERED_SIZE_NOT_ALLOWED = 203
    CREATIVE_FILTERED_INCORRECT_FORMAT = 204
    CREATIVE_FILTERED_ADVERTISER_EXCLUSIONS = 205
    CREATIVE_FILTERED_APP_STORE_ID_EXCLUSIONS = 206
    CREATIVE_FILTERED_NOT_SECURE = 207
    CREATIVE_FILTERED_LANGUAGE_EXCLUSIONS = 208
    CREATIVE_FILTERED_CATEGORY_EXCLUSIONS = 209
    CREATIVE_FILTERED_CREATIVE_ATTRIBUTE_EXCLUSIONS = 210
    CREATIVE_FILTERED_AD_TYPE_EXCLUSIONS = 211
    CREATIVE_FILTERED_ANIMATION_TOO_LONG = 212
    CREATIVE_FILTERED_NOT_ALLOWED_IN_DEAL = 213
    CREATIVE_FILTERED_INVALID_SKADNETWORK = 214
    CREATIVE_FILTERED_APP_BUNDLE_EXCLUSIONS = 215


class MarkupType(TolerantIntEnum):
    """``Bid.mtype``: what kind of markup the bid carries."""

    BANNER = 1
    VIDEO = 2
    AUDIO = 3
    NATIVE = 4


class CategoryTaxonomy(TolerantIntEnum):
    """``cattax``: which taxonomy the ``cat`` codes come from. 500+ are vendor-specific."""

    IAB_CONTENT_1_0 = 1
    IAB_CONTENT_2_0 = 2
    IAB_PRODUCT_1_0 = 3
    IAB_AUDIENCE_1_1 = 4
    IAB_CONTENT_2_1 = 5
    IAB_CONTENT_2_2 = 6
    IAB_CONTENT_3_0 = 7


# --- Impressions and creatives -----------------------------------------------------------------


class BannerAdType(TolerantIntEnum):
    """``banner.btype``: banner kinds a seller blocks."""

    XHTML_TEXT = 1
    XHTML_BANNER = 2
    JAVASCRIPT = 3
    IFRAME = 4


class CreativeAttribute(TolerantIntEnum):
    """``battr`` / ``Bid.attr``: what a creative does."""

    AUDIO_AUTO_PLAY = 1
    AUDIO_USER_INITIATED = 2
    EXPANDABLE_AUTOMATIC = 3
    EXPANDABLE_USER_CLICK = 4
    EXPANDABLE_USER_ROLLOVER = 5
    IN_BANNER_VIDEO_AUTO_PLAY = 6
    IN_BANNER_VIDEO_USER_INITIATED = 7
    POP = 8
    PROVOCATIVE_OR_SUGGESTIVE = 9
    SHAKY_FLASHING_FLICKERING = 10
    SURVEYS = 11
    TEXT_ONLY = 12
    USER_INTERACTIVE = 13
    WINDOWS_DIALOG_OR_ALERT = 14
    HAS_AUDIO_ON_OFF_BUTTON = 15
    AD_PROVIDES_SKIP_BUTTON = 16
    ADOBE_FLASH = 17


class AdPosition(TolerantIntEnum):
    """``pos``: where the placement sits on the screen."""

    UNKNOWN = 0
    ABOVE_THE_FOLD = 1
    # "May or may not be initially visible" in 2.5; "locked (fixed position)" in AdCOM.
    LOCKED = 2
    BELOW_THE_FOLD = 3
    HEADER = 4
    FOOTER = 5
    SIDEBAR = 6
    FULL_SCREEN = 7


class ExpandableDirection(TolerantIntEnum):
    """``banner.expdir``."""

    LEFT = 1
    RIGHT = 2
    UP = 3
    DOWN = 4
    FULL_SCREEN = 5
    RESIZE_MINIMIZE = 6


class ApiFramework(TolerantIntEnum):
    """``api`` / ``Bid.apis``: the ad APIs a placement supports."""

    VPAID_1_0 = 1
    VPAID_2_0 = 2
    MRAID_1_0 = 3
    ORMMA = 4
    MRAID_2_0 = 5
    MRAID_3_0 = 6
    OMID_1_0 = 7
    SIMID_1_0 = 8
    SIMID_1_1 = 9


class Protocol(TolerantIntEnum):
    """``protocols``: VAST/DAAST versions a video or audio placement accepts."""

    VAST_1_0 = 1
    VAST_2_0 = 2
    VAST_3_0 = 3
    VAST_1_0_WRAPPER = 4
    VAST_2_0_WRAPPER = 5
    VAST_3_0_WRAPPER = 6
    VAST_4_0 = 7
    VAST_4_0_WRAPPER = 8
    DAAST_1_0 = 9
    DAAST_1_0_WRAPPER = 10
    VAST_4_1 = 11
    VAST_4_1_WRAPPER = 12
    VAST_4_2 = 13
    VAST_4_2_WRAPPER = 14


class VideoPlacement(TolerantIntEnum):
    """``video.placement`` (2.5, deprecated by ``plcmt`` in 2.6)."""

    IN_STREAM = 1
    IN_BANNER = 2
    IN_ARTICLE = 3
    IN_FEED = 4
    INTERSTITIAL_SLIDER_FLOATING = 5


class VideoPlcmt(TolerantIntEnum):
    """``video.plcmt`` (2.6): the placement subtypes that replaced 2.5's ``placement``."""

    INSTREAM = 1
    ACCOMPANYING_CONTENT = 2
    INTERSTITIAL = 3
    NO_CONTENT_STANDALONE = 4


class LinearityMode(TolerantIntEnum):
    """``video.linearity``."""

    LINEAR = 1
    NON_LINEAR = 2


class PlaybackMethod(TolerantIntEnum):
    """``video.playbackmethod``."""

    PAGE_LOAD_SOUND_ON = 1
    PAGE_LOAD_SOUND_OFF = 2
    CLICK_SOUND_ON = 3
    MOUSE_OVER_SOUND_ON = 4
    ENTERING_VIEWPORT_SOUND_ON = 5
    ENTERING_VIEWPORT_SOUND_OFF = 6
    CONTINUOUS = 7


class PlaybackCessationMode(TolerantIntEnum):
    """``video.playbackend``."""

    ON_COMPLETION_OR_USER = 1
    ON_LEAVING_VIEWPORT_OR_USER = 2
    ON_LEAVING_VIEWPORT_CONTINUES_FLOATING = 3


class StartDelay(TolerantIntEnum):
    """``startdelay``. A positive value is a mid-roll's offset in seconds (an UNKNOWN_ member)."""

    GENERIC_POST_ROLL = -2
    GENERIC_MID_ROLL = -1
    PRE_ROLL = 0


class DeliveryMethod(TolerantIntEnum):
    """``delivery``."""

    STREAMING = 1
    PROGRESSIVE = 2
    DOWNLOAD = 3


class CompanionType(TolerantIntEnum):
    """``companiontype``."""

    STATIC = 1
    HTML = 2
    IFRAME = 3


class PodSequence(TolerantIntEnum):
    """``podseq``: the pod's position in the content stream."""

    LAST_POD = -1
    ANY = 0
    FIRST_POD = 1


class SlotPositionInPod(TolerantIntEnum):
    """``slotinpod``: the ad's position within its pod."""

    LAST = -1
    ANY = 0
    FIRST = 1
    FIRST_OR_LAST = 2


class FeedType(TolerantIntEnum):
    """``audio.feed``."""

    MUSIC_SERVICE = 1
    FM_AM_BROADCAST = 2
    PODCAST = 3


class VolumeNormalizationMode(TolerantIntEnum):
    """``audio.nvol``."""

    NONE = 0
    AVERAGE = 1
    PEAK = 2
    LOUDNESS = 3
    CUSTOM = 4


# --- Context: content, device, user --------------------------------------------------------------


class ProductionQuality(TolerantIntEnum):
    """``content.prodq``."""

    UNKNOWN = 0
    PROFESSIONALLY_PRODUCED = 1
    PROSUMER = 2
    USER_GENERATED = 3


class ContentContext(TolerantIntEnum):
    """``content.context``."""

    VIDEO = 1
    GAME = 2
    MUSIC = 3
    APPLICATION = 4
    TEXT = 5
    OTHER = 6
    UNKNOWN = 7


class MediaRating(TolerantIntEnum):
    """``qagmediarating``."""

    ALL_AUDIENCES = 1
    EVERYONE_OVER_12 = 2
    MATURE = 3


class DeviceType(TolerantIntEnum):
    """``device.devicetype``."""

    MOBILE_TABLET = 1
    PERSONAL_COMPUTER = 2
    CONNECTED_TV = 3
    PHONE = 4
    TABLET = 5
    CONNECTED_DEVICE = 6
    SET_TOP_BOX = 7
    OOH_DEVICE = 8


class ConnectionType(TolerantIntEnum):
    """``device.connectiontype``."""

    UNKNOWN = 0
    ETHERNET = 1
    WIFI = 2
    CELLULAR_UNKNOWN_GENERATION = 3
    CELLULAR_2G = 4
    CELLULAR_3G = 5
    CELLULAR_4G = 6
    CELLULAR_5G = 7


class UserAgentSource(TolerantIntEnum):
    """``sua.source``: where the structured user agent came from."""

    UNKNOWN = 0
    CLIENT_HINTS_LOW_ENTROPY = 1
    CLIENT_HINTS_HIGH_ENTROPY = 2
    PARSED_FROM_USER_AGENT = 3


class LocationType(TolerantIntEnum):
    """``geo.type``."""

    GPS = 1
    IP_ADDRESS = 2
    USER_PROVIDED = 3


class IpLocationService(TolerantIntEnum):
    """``geo.ipservice``."""

    IP2LOCATION = 1
    NEUSTAR = 2
    MAXMIND = 3
    NETACUITY = 4


class AgentType(TolerantIntEnum):
    """``uid.atype``: what kind of agent an extended id identifies."""

    BROWSER_OR_DEVICE = 1
    IN_APP_DEVICE = 2
    PERSON = 3


class MatchMethod(TolerantIntEnum):
    """``eid.mm``: how the extended id was matched to the user."""

    UNKNOWN = 0
    NO_MATCH = 1
    COOKIE_SYNC = 2
    AUTHENTICATED = 3
    OBSERVED = 4
    INFERENCE = 5


# --- Native Ads 1.2 ------------------------------------------------------------------------------


class NativeContextType(TolerantIntEnum):
    """Native ``context``: the content the ad appears in."""

    CONTENT = 1
    SOCIAL = 2
    PRODUCT = 3


class NativeContextSubtype(TolerantIntEnum):
    """Native ``contextsubtype``: a finer grain of :class:`NativeContextType`."""

    GENERAL = 10
    ARTICLE = 11
    VIDEO = 12
    AUDIO = 13
    IMAGE = 14
    USER_GENERATED = 15
    SOCIAL_GENERAL = 20
    EMAIL = 21
    CHAT_AND_IM = 22
    PRODUCT_SELLING = 30
    APP_STORE = 31
    PRODUCT_REVIEWS = 32


class NativePlacementType(TolerantIntEnum):
    """Native ``plcmttype``."""

    IN_FEED = 1
    ATOMIC_UNIT = 2
    OUTSIDE_CORE_CONTENT = 3
    RECOMMENDATION_WIDGET = 4


class NativeDataAssetType(TolerantIntEnum):
    """Native data asset ``type``."""

    SPONSORED = 1
    DESC = 2
    RATING = 3
    LIKES = 4
    DOWNLOADS = 5
    PRICE = 6
    SALE_PRICE = 7
    PHONE = 8
    ADDRESS = 9
    DESC2 = 10
    DISPLAY_URL = 11
    CTA_TEXT = 12


class NativeImageAssetType(TolerantIntEnum):
    """Native image asset ``type``."""

    ICON = 1
    # Deprecated in Native 1.2 (logos are icons), still sent by older exchanges.
    LOGO = 2
    MAIN = 3


class EventType(TolerantIntEnum):
    """Native ``eventtrackers[].event``."""

    IMPRESSION = 1
    VIEWABLE_MRC50 = 2
    VIEWABLE_MRC100 = 3
    VIEWABLE_VIDEO50 = 4


class EventTrackingMethod(TolerantIntEnum):
    """Native ``eventtrackers[].methods`` / ``method``."""

    IMAGE = 1
    JAVASCRIPT = 2
