"""What the native parser keeps of a bid request, as msgspec types derived from the model.

The Rust view (``rust/bidcore-core/src/openrtb/request.rs``) reads a subset of OpenRTB 2.6 and
skips the rest without looking at it, so a malformed value in a field it does not read cannot
fail a request. :data:`VIEW_FIELDS` lists that subset object by object; from it and the model's
own annotations, :func:`view_type` builds a Struct per object holding only those fields, typed
as the model types them. Decoding with these types therefore accepts and rejects exactly what
the native parser does, and in the same order (the first bad value in document order).

``regs.ext``, ``user.ext`` and ``source.ext`` are read leniently (``lenient.rs``): an object is
decoded strictly into the 2.5 signals it may carry, anything else is ignored. ``native.request``
is kept whole, whatever JSON it holds (validation checks it, ``validate.rs``). The Native request
document it carries is read the same way, from :class:`~.native.NativeRequest` (``native.rs``),
with Native 1.0's ``{"native": {...}}`` wrapper read as a field holding the document.

The parser names an error's path only as far as it reads: inside a value it skips (an unknown
field, an ``ext`` kept whole, a 2.5 ``ext`` that is not an object) it names the skipped value.
:func:`reader_path` cuts a path the same way, and :func:`reads_integer` tells where the parser
reads an integer (where it judges a number before anything else).

>>> view_type(Geo).__struct_fields__[:3]
('lat', 'lon', 'type')
>>> reader_path(["imp", 0, "ext", "prebid", "bidder"]), reader_path(["site", "x", 0])
('imp[0].ext', 'site.x')
>>> reader_path(["assets", 0, "img", "w"], root=NativeRequest)
'assets[0].img.w'
>>> reads_integer("imp[0].bidfloor"), reads_integer("imp[0].banner.w")
(False, True)
"""

from __future__ import annotations

import functools
import operator
import re
import types
import typing
from collections.abc import Sequence
from typing import Any, Final

import msgspec

from .audience import EID, UID, BrandVersion, Data, Device, Geo, Segment, User, UserAgent
from .imp import Audio, Banner, Deal, Format, Imp, Native, Pmp, Video
from .inventory import App, Content, Dooh, Publisher, Site
from .legacy_ext import RegsExt, SourceExt, UserExt
from .native import (
    AssetRequest,
    DataRequest,
    EventTrackerRequest,
    ImageRequest,
    NativeRequest,
    TitleRequest,
    VideoRequest,
)
from .request import BidRequest, Regs, Source, SupplyChain, SupplyChainNode

__all__ = [
    "LEGACY_EXT",
    "NATIVE_WRAPPER",
    "VIEW_FIELDS",
    "child_type",
    "path_segments",
    "reader_path",
    "reads_integer",
    "root_type",
    "view_type",
]

# Field by field, what each Rust view struct holds (serde renames applied: `ref`, `type`).
VIEW_FIELDS: Final[dict[type[msgspec.Struct], tuple[str, ...]]] = {
    BidRequest: (
        "id", "imp", "site", "app", "dooh", "device", "user", "regs", "source", "at", "tmax",
        "cur", "wseat", "bseat", "bcat", "cattax", "badv", "bapp", "allimps", "test", "ext",
    ),
    Imp: (
        "id", "banner", "video", "audio", "native", "pmp", "bidfloor", "bidfloorcur", "tagid",
        "displaymanager", "secure", "instl", "rwdd", "clickbrowser", "exp", "ext",
    ),
    Banner: (
        "w", "h", "format", "pos", "btype", "battr", "api", "mimes", "topframe", "expdir", "vcm",
    ),
    Format: ("w", "h", "wratio", "hratio", "wmin"),
    Video: (
        "mimes", "minduration", "maxduration", "startdelay", "protocols", "protocol", "w", "h",
        "placement", "plcmt", "linearity", "skip", "skipmin", "skipafter", "sequence", "battr",
        "maxextended", "minbitrate", "maxbitrate", "boxingallowed", "playbackmethod",
        "playbackend", "delivery", "pos", "api", "maxseq", "poddur", "podid", "podseq",
        "rqddurs", "slotinpod", "mincpmpersec",
    ),
    Audio: (
        "mimes", "minduration", "maxduration", "startdelay", "protocols", "sequence", "battr",
        "maxextended", "minbitrate", "maxbitrate", "delivery", "api", "feed", "stitched", "nvol",
        "maxseq", "poddur", "podid", "podseq", "rqddurs", "slotinpod", "mincpmpersec",
    ),
    Native: ("request", "ver", "api", "battr"),
    Pmp: ("private_auction", "deals"),
    Deal: ("id", "bidfloor", "bidfloorcur", "at", "wseat", "wadomain"),
    Site: (
        "id", "name", "domain", "cat", "sectioncat", "pagecat", "cattax", "page", "ref",
        "search", "mobile", "keywords", "publisher", "content",
    ),
    App: (
        "id", "name", "bundle", "domain", "storeurl", "cat", "sectioncat", "pagecat", "cattax",
        "ver", "paid", "keywords", "publisher", "content",
    ),
    Dooh: (
        "id", "name", "venuetype", "venuetypetax", "domain", "keywords", "publisher", "content",
    ),
    Publisher: ("id", "name", "domain", "cat", "cattax"),
    Content: (
        "id", "title", "series", "genre", "cat", "cattax", "language", "langb", "keywords",
        "livestream", "len", "contentrating",
    ),
    Device: (
        "ua", "sua", "ip", "ipv6", "geo", "devicetype", "make", "model", "os", "osv", "hwv", "w",
        "h", "ppi", "pxratio", "language", "langb", "carrier", "mccmnc", "connectiontype", "ifa",
        "lmt", "dnt", "js", "geofetch",
    ),
    UserAgent: (
        "browsers", "platform", "mobile", "architecture", "bitness", "model", "source",
    ),
    BrandVersion: ("brand", "version"),
    Geo: (
        "lat", "lon", "type", "accuracy", "lastfix", "ipservice", "country", "region", "metro",
        "city", "zip", "utcoffset",
    ),
    User: (
        "id", "buyeruid", "yob", "gender", "keywords", "geo", "data", "eids", "consent", "ext",
    ),
    Data: ("id", "name", "segment"),
    Segment: ("id", "name", "value"),
    EID: ("source", "uids"),
    UID: ("id", "atype"),
    Regs: ("coppa", "gdpr", "us_privacy", "gpp", "gpp_sid", "ext"),
    Source: ("fd", "tid", "pchain", "schain", "ext"),
    SupplyChain: ("complete", "ver", "nodes"),
    SupplyChainNode: ("asi", "sid", "rid", "name", "domain", "hp"),
    RegsExt: ("gdpr", "us_privacy"),
    UserExt: ("consent", "eids"),
    SourceExt: ("schain",),
    # The Native request document (`native.rs`), read from `imp.native.request` to check it.
    NativeRequest: (
        "native", "ver", "context", "contextsubtype", "plcmttype", "plcmtcnt", "seq", "assets",
        "aurlsupport", "durlsupport", "eventtrackers", "privacy",
    ),
    AssetRequest: ("id", "required", "title", "img", "video", "data"),
    TitleRequest: ("len",),
    ImageRequest: ("type", "w", "wmin", "h", "hmin", "mimes"),
    VideoRequest: ("mimes", "minduration", "maxduration", "protocols"),
    DataRequest: ("type", "len"),
    EventTrackerRequest: ("event", "methods"),
}  # fmt: skip

NATIVE_WRAPPER: Final = "native"
"""The field of a Native request document that holds the document Native 1.0 and 1.1 wrapped in
``{"native": {...}}``: not a field of the model, a document of the same type in the view."""

# The objects whose `ext` is read leniently, and what is read from it.
LEGACY_EXT: Final[dict[type[msgspec.Struct], type[msgspec.Struct]]] = {
    Regs: RegsExt,
    User: UserExt,
    Source: SourceExt,
}

# Any JSON value that is not an object: a lenient `ext` holding one is ignored. (msgspec takes
# at most one type per JSON kind in a union, so "object" is the legacy Struct and these the rest.)
_NOT_AN_OBJECT: Final = list[Any] | str | int | float | bool


@functools.cache
def view_type(model: type[msgspec.Struct]) -> type[msgspec.Struct]:
    """The Struct holding what the native parser keeps of ``model``, typed as ``model`` is.

    Unknown fields are skipped and absent ones left out when encoding, as in the model.
    """
    hints = typing.get_type_hints(model, include_extras=True)
    fields: list[tuple[str, Any, None]] = []
    for name in VIEW_FIELDS[model]:
        if model is NativeRequest and name == NATIVE_WRAPPER:
            # The view itself: set below, once the Struct exists.
            fields.append((name, Any, None))
            continue
        annotation = hints[name]
        if name == "ext" and model in LEGACY_EXT:
            annotation = view_type(LEGACY_EXT[model]) | _NOT_AN_OBJECT | None
        elif model is Native and name == "request":
            # Kept whole, whatever it is: a string or an object is the only valid Native request,
            # but the parser takes any JSON here and validation says which is wrong, in its order.
            annotation = Any
        fields.append((name, _with_view_types(annotation), None))
    view = msgspec.defstruct(
        f"{model.__name__}View",
        fields,
        module=__name__,
        kw_only=True,
        omit_defaults=True,
        forbid_unknown_fields=False,
    )
    if model is NativeRequest:
        # A recursive field: msgspec reads a Struct's annotations when it is first used, so the
        # view can name itself here, before anything has used it.
        view.__annotations__[NATIVE_WRAPPER] = view | None
    return view


def _with_view_types(annotation: Any) -> Any:
    """``annotation`` with every model Struct in it replaced by its view type."""
    if isinstance(annotation, type) and annotation in VIEW_FIELDS:
        return view_type(annotation)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is list:
        return list[_with_view_types(args[0])]  # type: ignore[misc]
    if origin is typing.Union or origin is types.UnionType:
        return functools.reduce(operator.or_, (_with_view_types(arg) for arg in args))
    # Scalars, enums, Annotated integers, dict[str, Any] and Any are kept as they are.
    return annotation


# A path as msgspec and the core write it: `.key`, `[index]`, and msgspec's `[...]` for the keys
# of a free-form object.
_PATH_SEGMENT: Final = re.compile(r"\.?([^.\[\]]+)|\[(\d+|\.\.\.)\]")


def _members(node: msgspec.inspect.Type) -> tuple[msgspec.inspect.Type, ...]:
    if isinstance(node, msgspec.inspect.UnionType):
        return node.types
    return (node,)


def child_type(node: msgspec.inspect.Type, segment: str | int) -> msgspec.inspect.Type | None:
    """The type the parser reads the child ``segment`` of a ``node`` value as, or ``None`` if it
    does not read into it (the value is skipped or kept whole, or has no such child)."""
    members = _members(node)
    if isinstance(segment, str):
        struct = next((m for m in members if isinstance(m, msgspec.inspect.StructType)), None)
        if struct is None:
            return None
        return next((f.type for f in struct.fields if f.encode_name == segment), None)
    array = next((m for m in members if isinstance(m, msgspec.inspect.ListType)), None)
    # A list of anything is how a lenient `ext` holds an array: skipped, not read.
    if array is None or isinstance(array.item_type, msgspec.inspect.AnyType):
        return None
    return array.item_type


@functools.cache
def root_type(root: type[msgspec.Struct] = BidRequest) -> msgspec.inspect.Type:
    """The type the parser reads a ``root`` document as (its view, as msgspec describes it)."""
    return msgspec.inspect.type_info(view_type(root))


def reader_path(segments: Sequence[str | int], *, root: type[msgspec.Struct] = BidRequest) -> str:
    """The path the native parser reports for a problem at ``segments`` (keys and indices from the
    root of a ``root`` document): every key and index it reads through, then the first key it
    skips, and no further."""
    node: msgspec.inspect.Type | None = root_type(root)
    path = ""
    for segment in segments:
        if node is None:
            break
        child = child_type(node, segment)
        if child is None and not isinstance(segment, str):
            break
        if child is None and not any(
            isinstance(m, msgspec.inspect.StructType) for m in _members(node)
        ):
            break
        path += f"[{segment}]" if isinstance(segment, int) else f".{segment}" if path else segment
        node = child
    return path


def path_segments(path: str) -> list[str | int]:
    """``["imp", 0, "ext"]`` from ``imp[0].ext``; a msgspec path stops before its first ``[...]``
    (a key of a free-form object, which the parser does not read into anyway)."""
    segments: list[str | int] = []
    for match in _PATH_SEGMENT.finditer(path):
        key, index = match.groups()
        if index == "...":
            break
        segments.append(key if key is not None else int(index))
    return segments


def reads_integer(path: str, *, root: type[msgspec.Struct] = BidRequest) -> bool:
    """Whether the parser reads the value at ``path`` (msgspec's path of it, in a ``root``
    document) as an integer.

    There the parser judges a number by itself: `1.5` or `1e400` is a floating point number where
    an integer belongs (rule ``type``). Everywhere else it first checks that a value of the wrong
    type is JSON at all, so a number too large for a float is malformed (rule ``json``), as it is
    where a float is read or the value skipped.
    """
    node: msgspec.inspect.Type | None = root_type(root)
    if "[...]" in path:
        return False
    for segment in path_segments(path):
        if node is None:
            return False
        node = child_type(node, segment)
    if node is None:
        return False
    members = _members(node)
    takes_float = (msgspec.inspect.FloatType, msgspec.inspect.AnyType, msgspec.inspect.DictType)
    if any(isinstance(m, takes_float) for m in members):
        return False
    # Codes are integer enums (every code list is a TolerantIntEnum).
    integers = (msgspec.inspect.IntType, msgspec.inspect.EnumType)
    return any(isinstance(m, integers) for m in members)
