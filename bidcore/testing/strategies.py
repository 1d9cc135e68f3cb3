"""Hypothesis strategies for OpenRTB 2.6 bid requests, as :mod:`bidcore.openrtb` Structs.

Every request :func:`bid_requests` draws is valid (it passes
:func:`~bidcore.openrtb.validate_request`: one of site, app and DOOH; MIME types for video and
audio; sizes, durations and counts not negative; a valid Native 1.2 document in every native
imp), yet as awkward as real traffic gets: strings with quotes, backslashes, control characters
and emoji; any ``ext`` a JSON document can hold; codes no spec lists; privacy signals at their
2.6 places, their 2.5 ``ext`` places, or both; the Native request as a string or as an object,
bare or in Native 1.0's ``{"native": {...}}`` wrapper.

>>> from hypothesis import given, settings
>>> from bidcore.openrtb import validate_request
>>> @settings(max_examples=5)
... @given(bid_requests())
... def test_is_valid(request):
...     validate_request(request)
>>> test_is_valid()
"""

from __future__ import annotations

import functools
import string
from typing import Any, Final, TypeVar

import msgspec
from hypothesis import strategies as st

from bidcore.openrtb import (
    EID,
    INT32_MAX,
    INT32_MIN,
    UID,
    AdPosition,
    AgentType,
    ApiFramework,
    App,
    AssetRequest,
    AuctionType,
    Audio,
    Banner,
    BannerAdType,
    BidRequest,
    BrandVersion,
    CategoryTaxonomy,
    ConnectionType,
    Content,
    CreativeAttribute,
    Data,
    DataRequest,
    Deal,
    DeliveryMethod,
    Device,
    DeviceType,
    Dooh,
    EventTrackerRequest,
    EventTrackingMethod,
    EventType,
    ExpandableDirection,
    Format,
    Geo,
    ImageRequest,
    Imp,
    IpLocationService,
    LinearityMode,
    LocationType,
    Native,
    NativeContextType,
    NativeDataAssetType,
    NativeImageAssetType,
    NativePlacementType,
    NativeRequest,
    PlaybackMethod,
    Pmp,
    PodSequence,
    Protocol,
    Publisher,
    Regs,
    RegsExt,
    Segment,
    Site,
    SlotPositionInPod,
    Source,
    SourceExt,
    StartDelay,
    SupplyChain,
    SupplyChainNode,
    TitleRequest,
    TolerantIntEnum,
    User,
    UserAgent,
    UserAgentSource,
    UserExt,
    Video,
    VideoPlacement,
    VideoPlcmt,
    VideoRequest,
    encode_native_request,
)

__all__ = [
    "apps",
    "audios",
    "banners",
    "bid_requests",
    "codes",
    "currencies",
    "deals",
    "devices",
    "doohs",
    "eids",
    "ext_values",
    "floors",
    "geos",
    "imps",
    "int32s",
    "json_values",
    "native_requests",
    "natives",
    "non_negative_int32s",
    "regs",
    "sites",
    "sources",
    "supply_chains",
    "texts",
    "users",
    "videos",
]

S = TypeVar("S", bound=msgspec.Struct)
E = TypeVar("E", bound=TolerantIntEnum)

# Strings real exchanges send that break naive JSON handling.
_AWKWARD_TEXTS: Final = (
    "",
    '"',
    "\\",
    '\\"',
    "a\"b\\c'd",
    "</script><script>alert(1)</script>",
    "\x00\x01\x1f\x7f",
    "\t\n\r\x0b\x0c",
    "\u2028\u2029",
    "\ufeff",
    "Zürich \u2013 Ünïcödé ß",
    "東京都",
    "مرحبا",
    "👩‍👩‍👧‍👦🇫🇷",
    "\U0010ffff",
    '{"not": "json"',
    "%7B%22a%22%3A1%7D",
)
# The signal names 2.5 kept under ext: drawn junk keys avoid them so the signals stay valid.
_LEGACY_SIGNAL_NAMES: Final = frozenset({"gdpr", "us_privacy", "consent", "eids", "schain"})
# JSON integers within 64 bits: the native core's JSON values (serde_json) turn larger ones into
# floats, a known difference that generated requests should not trip over on every run.
_INT64_MIN: Final = -(2**63)
_UINT64_MAX: Final = 2**64 - 1


@functools.cache
def texts(*, min_size: int = 0, max_size: int = 12) -> st.SearchStrategy[str]:
    """Any Unicode text (surrogates excluded: JSON cannot carry them alone), often awkward."""
    awkward = st.sampled_from(_AWKWARD_TEXTS).filter(lambda s: min_size <= len(s) <= max_size)
    return st.one_of(st.text(min_size=min_size, max_size=max_size), awkward)


@functools.cache
def int32s() -> st.SearchStrategy[int]:
    """OpenRTB integers: mostly small, sometimes anywhere in the 32-bit range."""
    return st.one_of(st.integers(0, 10), st.integers(INT32_MIN, INT32_MAX))


@functools.cache
def non_negative_int32s() -> st.SearchStrategy[int]:
    """Sizes, durations, bitrates and counts: 32-bit integers that cannot be negative."""
    return st.one_of(st.integers(0, 10), st.integers(0, INT32_MAX))


def codes(enum: type[E]) -> st.SearchStrategy[E]:
    """A code of ``enum``: a listed one, or any 32-bit code the list does not name."""
    return _codes(enum)


@functools.cache
def _codes(enum: type[TolerantIntEnum]) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(list(enum)), st.integers(INT32_MIN, INT32_MAX).map(enum))


@functools.cache
def _finite_floats() -> st.SearchStrategy[float]:
    return st.floats(allow_nan=False, allow_infinity=False)


@functools.cache
def floors() -> st.SearchStrategy[float]:
    """Bid floors: finite, not negative, at most a billion, with the usual suspects."""
    usual = st.sampled_from([0.0, 0.01, 1e-7, 0.5, 1.0, 12345.678901, 999999999.999, 1e9])
    return st.one_of(usual, st.floats(min_value=0.0, max_value=1e9))


@functools.cache
def currencies() -> st.SearchStrategy[str]:
    """Three ASCII letters, either case (the core upper-cases them)."""
    return st.text(alphabet=string.ascii_letters, min_size=3, max_size=3)


@functools.cache
def json_values(*, max_leaves: int = 6) -> st.SearchStrategy[Any]:
    """Any JSON value: null, booleans, numbers, strings, and arrays and objects of them."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(_INT64_MIN, _UINT64_MAX),
        _finite_floats(),
        texts(),
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.dictionaries(texts(max_size=8), children, max_size=3),
        ),
        max_leaves=max_leaves,
    )


@functools.cache
def ext_values() -> st.SearchStrategy[Any]:
    """An ``ext``: absent, or any JSON value (mostly objects, as OpenRTB intends)."""
    objects = st.dictionaries(texts(max_size=8), json_values(), max_size=2)
    return st.one_of(st.none(), objects, json_values())


def _optional(
    cls: type[S],
    required: dict[str, st.SearchStrategy[Any]] | None = None,
    /,
    **optional: st.SearchStrategy[Any],
) -> st.SearchStrategy[S]:
    """``cls`` with the ``required`` fields set, any subset of the ``optional`` ones, and the
    rest absent."""
    return st.fixed_dictionaries(required or {}, optional=optional).map(lambda kw: cls(**kw))


def _short_lists(elements: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    # Short: every element of every list multiplies the cost of drawing a request.
    return st.lists(elements, max_size=2)


# --- Imp and media -----------------------------------------------------------------------------


@functools.cache
def banners() -> st.SearchStrategy[Banner]:
    """A banner placement (``imp.banner``)."""
    sizes = non_negative_int32s()
    formats = _optional(Format, w=sizes, h=sizes, wratio=sizes, hratio=sizes, wmin=sizes)
    return _optional(
        Banner,
        format=_short_lists(formats),
        w=sizes,
        h=sizes,
        btype=_short_lists(codes(BannerAdType)),
        battr=_short_lists(codes(CreativeAttribute)),
        pos=codes(AdPosition),
        mimes=_short_lists(texts()),
        topframe=int32s(),
        expdir=_short_lists(codes(ExpandableDirection)),
        api=_short_lists(codes(ApiFramework)),
        id=texts(),
        vcm=int32s(),
        ext=ext_values(),
    )


@functools.cache
def videos() -> st.SearchStrategy[Video]:
    """A video placement, pod fields included (``imp.video``), with at least one MIME type."""
    return _optional(
        Video,
        {"mimes": _mime_lists()},
        minduration=non_negative_int32s(),
        maxduration=non_negative_int32s(),
        startdelay=codes(StartDelay),
        protocols=_short_lists(codes(Protocol)),
        protocol=codes(Protocol),
        w=non_negative_int32s(),
        h=non_negative_int32s(),
        placement=codes(VideoPlacement),
        plcmt=codes(VideoPlcmt),
        linearity=codes(LinearityMode),
        skip=int32s(),
        skipmin=non_negative_int32s(),
        sequence=non_negative_int32s(),
        battr=_short_lists(codes(CreativeAttribute)),
        playbackmethod=_short_lists(codes(PlaybackMethod)),
        delivery=_short_lists(codes(DeliveryMethod)),
        pos=codes(AdPosition),
        companionad=st.lists(banners(), max_size=1),
        api=_short_lists(codes(ApiFramework)),
        maxseq=non_negative_int32s(),
        poddur=non_negative_int32s(),
        podid=texts(),
        podseq=codes(PodSequence),
        rqddurs=_short_lists(non_negative_int32s()),
        slotinpod=codes(SlotPositionInPod),
        mincpmpersec=floors(),
        ext=ext_values(),
    )


@functools.cache
def audios() -> st.SearchStrategy[Audio]:
    """An audio placement (``imp.audio``), with at least one MIME type."""
    return _optional(
        Audio,
        {"mimes": _mime_lists()},
        minduration=non_negative_int32s(),
        maxduration=non_negative_int32s(),
        startdelay=codes(StartDelay),
        protocols=_short_lists(codes(Protocol)),
        api=_short_lists(codes(ApiFramework)),
        feed=int32s(),
        stitched=int32s(),
        maxbitrate=non_negative_int32s(),
        poddur=non_negative_int32s(),
        rqddurs=_short_lists(non_negative_int32s()),
        podid=texts(),
        slotinpod=codes(SlotPositionInPod),
        mincpmpersec=floors(),
    )


@functools.cache
def _mime_lists() -> st.SearchStrategy[list[str]]:
    """One or two MIME types: video and audio (and Native video assets) need at least one."""
    mimes = st.one_of(st.sampled_from(["video/mp4", "audio/mpeg", "video/webm"]), texts())
    return st.lists(mimes, min_size=1, max_size=2)


@functools.cache
def _native_assets() -> st.SearchStrategy[AssetRequest]:
    """A Native asset without its id: exactly one of title, img, video, data, with the fields
    each requires (a title's len; a video's mimes, durations and protocols; a data's type)."""
    sizes = non_negative_int32s()
    titles = _optional(TitleRequest, {"len": sizes})
    images = _optional(
        ImageRequest,
        type=codes(NativeImageAssetType),
        w=sizes,
        wmin=sizes,
        h=sizes,
        hmin=sizes,
        mimes=_short_lists(texts()),
    )
    video_needs = {
        "mimes": _mime_lists(),
        "minduration": sizes,
        "maxduration": sizes,
        "protocols": st.lists(codes(Protocol), min_size=1, max_size=2),
    }
    videos = _optional(VideoRequest, video_needs)
    data = _optional(DataRequest, {"type": codes(NativeDataAssetType)}, len=sizes)
    kinds = st.one_of(
        st.fixed_dictionaries({"title": titles}),
        st.fixed_dictionaries({"img": images}),
        st.fixed_dictionaries({"video": videos}),
        st.fixed_dictionaries({"data": data}),
    )
    rest = st.fixed_dictionaries({}, optional={"required": st.integers(0, 1), "ext": ext_values()})
    return st.builds(lambda kind, others: AssetRequest(**kind, **others), kinds, rest)


@st.composite
def _asset_lists(draw: st.DrawFn) -> list[AssetRequest]:
    # Unique ids are drawn on their own, as for imps.
    ids = draw(st.lists(int32s(), min_size=1, max_size=3, unique=True))
    return [msgspec.structs.replace(draw(_native_assets()), id=asset_id) for asset_id in ids]


@functools.cache
def native_requests() -> st.SearchStrategy[NativeRequest]:
    """A valid Native Ads 1.2 request document: assets with unique ids, each of one kind with
    what that kind requires; event trackers with an event and methods."""
    trackers = _optional(
        EventTrackerRequest,
        {
            "event": codes(EventType),
            "methods": st.lists(codes(EventTrackingMethod), min_size=1, max_size=2),
        },
    )
    return _optional(
        NativeRequest,
        {"assets": _asset_lists()},
        ver=st.sampled_from(["1.0", "1.1", "1.2"]),
        context=codes(NativeContextType),
        plcmttype=codes(NativePlacementType),
        plcmtcnt=non_negative_int32s(),
        seq=non_negative_int32s(),
        eventtrackers=_short_lists(trackers),
        privacy=st.integers(0, 1),
        ext=ext_values(),
    )


def _wrapped(document: NativeRequest) -> dict[str, Any]:
    """Native 1.0's form: the document inside ``{"native": ...}``."""
    return {"native": msgspec.to_builtins(document)}


@functools.cache
def natives() -> st.SearchStrategy[Native]:
    """``imp.native``, its request a JSON string (as OpenRTB says) or an object (as some send),
    the document bare or wrapped as Native 1.0 did."""
    as_string = native_requests().map(lambda doc: encode_native_request(doc).decode())
    as_object = native_requests().map(msgspec.to_builtins)
    wrapped = native_requests().map(_wrapped)
    wrapped_in_a_string = wrapped.map(lambda doc: msgspec.json.encode(doc).decode())
    return _optional(
        Native,
        {"request": st.one_of(as_string, as_object, wrapped, wrapped_in_a_string)},
        ver=st.sampled_from(["1.1", "1.2"]),
        api=_short_lists(codes(ApiFramework)),
        battr=_short_lists(codes(CreativeAttribute)),
        ext=ext_values(),
    )


@functools.cache
def deals() -> st.SearchStrategy[Deal]:
    """A private-marketplace deal with an id, and maybe a floor and currency of its own."""
    return _optional(
        Deal,
        {"id": texts(min_size=1)},
        bidfloor=floors(),
        bidfloorcur=currencies(),
        at=codes(AuctionType),
        wseat=_short_lists(texts()),
        wadomain=_short_lists(texts()),
        ext=ext_values(),
    )


_MEDIA: Final = {"banner": banners, "video": videos, "audio": audios, "native": natives}


@functools.cache
def _media() -> st.SearchStrategy[dict[str, Any]]:
    """At least one of banner, video, audio and native: mostly one, as in real traffic."""
    singles = [[name] for name in _MEDIA]
    combinations = [*singles, ["banner", "video"], ["banner", "native"], list(_MEDIA)]
    return st.one_of(
        *(st.fixed_dictionaries({name: _MEDIA[name]() for name in names}) for names in combinations)
    )


@functools.cache
def imps() -> st.SearchStrategy[Imp]:
    """An impression with a non-empty id and at least one media object."""
    pmps = _optional(Pmp, private_auction=st.integers(0, 1), deals=_short_lists(deals()))
    rest = st.fixed_dictionaries(
        {},
        optional={
            "pmp": pmps,
            "bidfloor": floors(),
            "bidfloorcur": currencies(),
            "tagid": texts(),
            "displaymanager": texts(),
            "secure": st.integers(0, 1),
            "instl": st.integers(0, 1),
            "rwdd": st.integers(0, 1),
            "clickbrowser": st.integers(0, 1),
            "exp": non_negative_int32s(),
            "ext": ext_values(),
        },
    )
    return st.builds(
        lambda imp_id, media, others: Imp(id=imp_id, **media, **others),
        texts(min_size=1, max_size=8),
        _media(),
        rest,
    )


# --- Inventory ---------------------------------------------------------------------------------


@functools.cache
def _publishers() -> st.SearchStrategy[Publisher]:
    return _optional(Publisher, id=texts(), name=texts(), domain=texts(), cat=_short_lists(texts()))


@functools.cache
def _contents() -> st.SearchStrategy[Content]:
    return _optional(
        Content,
        id=texts(),
        title=texts(),
        genre=texts(),
        cat=_short_lists(texts()),
        cattax=codes(CategoryTaxonomy),
        language=texts(),
        livestream=st.integers(0, 1),
        len=non_negative_int32s(),
    )


@functools.cache
def sites() -> st.SearchStrategy[Site]:
    """A website (``site``)."""
    return _optional(
        Site,
        id=texts(),
        name=texts(),
        domain=texts(),
        cat=_short_lists(texts()),
        page=texts(),
        ref=texts(),
        mobile=st.integers(0, 1),
        keywords=texts(),
        publisher=_publishers(),
        content=_contents(),
        ext=ext_values(),
    )


@functools.cache
def apps() -> st.SearchStrategy[App]:
    """An application (``app``)."""
    return _optional(
        App,
        id=texts(),
        name=texts(),
        bundle=texts(),
        storeurl=texts(),
        cat=_short_lists(texts()),
        ver=texts(),
        paid=st.integers(0, 1),
        publisher=_publishers(),
        content=_contents(),
    )


@functools.cache
def doohs() -> st.SearchStrategy[Dooh]:
    """A digital out-of-home screen (``dooh``)."""
    return _optional(
        Dooh,
        id=texts(),
        name=texts(),
        venuetype=_short_lists(texts()),
        venuetypetax=int32s(),
        publisher=_publishers(),
    )


@functools.cache
def _inventory() -> st.SearchStrategy[dict[str, Any]]:
    """Exactly one of site, app and dooh."""
    return st.one_of(
        sites().map(lambda site: {"site": site}),
        apps().map(lambda app: {"app": app}),
        doohs().map(lambda dooh: {"dooh": dooh}),
    )


# --- Audience ----------------------------------------------------------------------------------


@functools.cache
def geos() -> st.SearchStrategy[Geo]:
    """A location; latitude and longitude are any finite floats."""
    return _optional(
        Geo,
        lat=_finite_floats(),
        lon=_finite_floats(),
        type=codes(LocationType),
        accuracy=non_negative_int32s(),
        lastfix=non_negative_int32s(),
        ipservice=codes(IpLocationService),
        country=texts(),
        region=texts(),
        city=texts(),
        zip=texts(),
        utcoffset=int32s(),
    )


@functools.cache
def _user_agents() -> st.SearchStrategy[UserAgent]:
    brands = _optional(BrandVersion, brand=texts(), version=_short_lists(texts()))
    return _optional(
        UserAgent,
        browsers=_short_lists(brands),
        platform=brands,
        mobile=st.integers(0, 1),
        architecture=texts(),
        bitness=st.sampled_from(["32", "64"]),
        model=texts(),
        source=codes(UserAgentSource),
    )


@functools.cache
def devices() -> st.SearchStrategy[Device]:
    """A device with its location and structured user agent."""
    return _optional(
        Device,
        geo=geos(),
        dnt=st.integers(0, 1),
        lmt=st.integers(0, 1),
        ua=texts(max_size=40),
        sua=_user_agents(),
        ip=texts(),
        ipv6=texts(),
        devicetype=codes(DeviceType),
        make=texts(),
        model=texts(),
        os=texts(),
        osv=texts(),
        w=non_negative_int32s(),
        h=non_negative_int32s(),
        ppi=non_negative_int32s(),
        pxratio=_finite_floats(),
        js=st.integers(0, 1),
        language=texts(),
        connectiontype=codes(ConnectionType),
        ifa=texts(),
        ext=ext_values(),
    )


@functools.cache
def eids() -> st.SearchStrategy[EID]:
    """An extended id: a source and its user ids."""
    uids = _optional(UID, id=texts(), atype=codes(AgentType))
    return _optional(EID, source=texts(), uids=_short_lists(uids), ext=ext_values())


def _legacy_ext(signals: st.SearchStrategy[msgspec.Struct]) -> st.SearchStrategy[Any]:
    """A 2.5-style ``ext``: the signals plus unrelated keys, or a value that is not an object
    (which the core ignores), or nothing."""
    junk_keys = texts(max_size=8).filter(lambda key: key not in _LEGACY_SIGNAL_NAMES)
    junk = st.dictionaries(junk_keys, json_values(), max_size=2)
    objects = st.tuples(signals, junk).map(
        lambda parts: {**parts[1], **msgspec.to_builtins(parts[0])}
    )
    numbers = st.one_of(st.integers(_INT64_MIN, _UINT64_MAX), _finite_floats())
    not_objects = st.one_of(texts(), numbers, st.booleans(), st.lists(numbers, max_size=3))
    return st.one_of(st.none(), objects, not_objects)


@functools.cache
def users() -> st.SearchStrategy[User]:
    """A user with data segments, extended ids and consent, at 2.6 places, 2.5 ones, or both."""
    segments = _optional(Segment, id=texts(), name=texts(), value=texts())
    data = _optional(Data, id=texts(), name=texts(), segment=_short_lists(segments))
    legacy = _optional(UserExt, consent=texts(), eids=_short_lists(eids()))
    return _optional(
        User,
        id=texts(),
        buyeruid=texts(),
        yob=int32s(),
        gender=st.sampled_from(["M", "F", "O"]),
        keywords=texts(),
        geo=geos(),
        data=_short_lists(data),
        consent=texts(max_size=40),
        eids=_short_lists(eids()),
        ext=_legacy_ext(legacy),
    )


@functools.cache
def regs() -> st.SearchStrategy[Regs]:
    """Regulations, GDPR and CCPA signals at 2.6 places, 2.5 ones, or both; GPP."""
    legacy = _optional(RegsExt, gdpr=st.integers(0, 1), us_privacy=st.just("1YNN"))
    return _optional(
        Regs,
        coppa=st.integers(0, 1),
        gdpr=st.integers(0, 1),
        us_privacy=st.sampled_from(["1---", "1YNN", "1NYN"]),
        gpp=texts(max_size=40),
        gpp_sid=_short_lists(int32s()),
        ext=_legacy_ext(legacy),
    )


@functools.cache
def supply_chains() -> st.SearchStrategy[SupplyChain]:
    """A supply chain (``schain``) of up to two nodes."""
    nodes = _optional(
        SupplyChainNode,
        asi=texts(),
        sid=texts(),
        rid=texts(),
        name=texts(),
        domain=texts(),
        hp=st.integers(0, 1),
    )
    return _optional(
        SupplyChain,
        complete=st.integers(0, 1),
        ver=st.just("1.0"),
        nodes=_short_lists(nodes),
    )


@functools.cache
def sources() -> st.SearchStrategy[Source]:
    """A source with a supply chain at its 2.6 place, its 2.5 one, or both."""
    legacy = _optional(SourceExt, schain=supply_chains())
    return _optional(
        Source,
        fd=st.integers(0, 1),
        tid=texts(),
        pchain=texts(),
        schain=supply_chains(),
        ext=_legacy_ext(legacy),
    )


# --- The request -------------------------------------------------------------------------------


@st.composite
def _imp_lists(draw: st.DrawFn, max_imps: int) -> list[Imp]:
    # Unique ids are drawn on their own: making hypothesis keep imps unique by id would have it
    # retry whole imps (and describe the imp strategy, a 40 kB text, each time it does).
    ids = draw(st.lists(texts(min_size=1, max_size=8), min_size=1, max_size=max_imps, unique=True))
    return [msgspec.structs.replace(draw(imps()), id=imp_id) for imp_id in ids]


@functools.cache
def bid_requests(*, max_imps: int = 8) -> st.SearchStrategy[BidRequest]:
    """A valid OpenRTB 2.6 bid request: 1..``max_imps`` imps with unique ids, each offering
    some media; a site, an app or a DOOH screen; and any mix of the other objects."""
    return _bid_requests(max_imps)


@functools.cache
def _request_context() -> st.SearchStrategy[dict[str, Any]]:
    """Everything a request may carry besides its id, imps and inventory."""
    return st.fixed_dictionaries(
        {},
        optional={
            "device": devices(),
            "user": users(),
            "regs": regs(),
            "source": sources(),
            "at": codes(AuctionType),
            "tmax": non_negative_int32s(),
            "cur": _short_lists(currencies()),
            "wseat": _short_lists(texts()),
            "bcat": _short_lists(texts()),
            "badv": _short_lists(texts()),
            "test": st.integers(0, 1),
            "ext": ext_values(),
        },
    )


@st.composite
def _bid_requests(draw: st.DrawFn, max_imps: int) -> BidRequest:
    # A composite (not `builds`), so a failing example is shown as the request it is.
    return BidRequest(
        id=draw(texts(min_size=1, max_size=16)),
        imp=draw(_imp_lists(max_imps)),
        **draw(_inventory()),
        **draw(_request_context()),
    )
