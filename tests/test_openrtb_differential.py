"""The native OpenRTB parser against its pure-Python oracle, ``bidcore.openrtb.inspect_request_py``.

Every bid request of the fixtures (the specification's examples and ``requests.jsonl``),
prebid-server's invalid requests, generated requests, and real requests broken on purpose
(truncated, bytes flipped, fields of the wrong type, huge and non-finite numbers, deep nesting,
invalid UTF-8, oversized bodies and strings) go through both. The native view must be the
oracle's, field by field, or both must refuse the request for the same rule at the same path
(except for malformed JSON, rule ``json``, where the two parsers give up at different places).
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import bidcore
from bidcore.errors import InvalidRequestError
from bidcore.openrtb import BidRequest, encode_request, inspect_request_py
from bidcore.openrtb import Limits as OracleLimits
from bidcore.testing.strategies import bid_requests

FIXTURES = Path(__file__).parent / "fixtures" / "openrtb"
IAB = FIXTURES / "iab"

# No example database (the checkout is shared); a failure prints the example that reproduces it.
MUTATIONS = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# --- Running both parsers ----------------------------------------------------------------------

# ("view", the normalized view as a dict) or ("refused", (rule, path)).
Outcome = tuple[str, Any]


def _native(body: bytes, limits: bidcore.Limits | None = None) -> Outcome:
    """The native parser's outcome. Any exception but ``InvalidRequestError`` propagates."""
    parser = None if limits is None else bidcore.RequestParser(limits)
    try:
        view = bidcore.inspect_request(body, parser=parser)
    except InvalidRequestError as err:
        refusal = err
    else:
        assert isinstance(view, dict)
        return ("view", view)
    assert str(refusal).startswith(f"{refusal.path}: "), f"no path in the message: {refusal}"
    return ("refused", (refusal.rule, refusal.path))


def _oracle(body: bytes, limits: bidcore.Limits | None = None) -> Outcome:
    oracle_limits = OracleLimits()
    if limits is not None:
        oracle_limits = OracleLimits(
            max_body_bytes=limits.max_body_bytes,
            max_depth=limits.max_depth,
            max_imps=limits.max_imps,
            max_string_bytes=limits.max_string_bytes,
        )
    try:
        return ("view", inspect_request_py(body, limits=oracle_limits))
    except InvalidRequestError as err:
        return ("refused", (err.rule, err.path))


def _flatten(value: Any, path: str = "$") -> Iterator[str]:
    """One ``path = value`` line per leaf, so that a diff names the field."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _flatten(item, f"{path}.{key}")
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from _flatten(item, f"{path}[{index}]")
    else:
        yield f"{path} = {json.dumps(value)}"


def _view_diff(native: dict[str, Any], oracle: dict[str, Any]) -> str:
    lines = difflib.unified_diff(
        sorted(_flatten(oracle)),
        sorted(_flatten(native)),
        "oracle (inspect_request_py)",
        "native (bidcore.inspect_request)",
        lineterm="",
        n=1,
    )
    return "\n".join(lines)


def _disagreement(native: Outcome, oracle: Outcome) -> str | None:
    """Why the outcomes differ, or ``None`` if they agree."""
    if native[0] == oracle[0] == "view":
        if native[1] == oracle[1]:
            return None
        return "the views differ:\n" + _view_diff(native[1], oracle[1])
    if native[0] == oracle[0] == "refused":
        (rule, path), (oracle_rule, oracle_path) = native[1], oracle[1]
        if rule == oracle_rule and (rule == "json" or path == oracle_path):
            return None
        return f"native refuses {rule} at {path}, the oracle {oracle_rule} at {oracle_path}"
    if native[0] == "view":
        return f"native accepts, the oracle refuses: {oracle[1]}"
    return f"native refuses {native[1]}, the oracle accepts"


def _both(body: bytes, limits: bidcore.Limits | None = None) -> tuple[Outcome, Outcome]:
    return _native(body, limits), _oracle(body, limits)


def _assert_agree(body: bytes, limits: bidcore.Limits | None = None) -> Outcome:
    native, oracle = _both(body, limits)
    problem = _disagreement(native, oracle)
    assert problem is None, f"{problem}\nbody: {body[:800]!r}"
    return native


def _assert_same_verdict(body: bytes, native: Outcome, oracle: Outcome) -> None:
    """Accepted by both with the same view, or refused by both (for whatever rule)."""
    assert native[0] == oracle[0], f"{_disagreement(native, oracle)}\nbody: {body[:800]!r}"
    if native[0] == "view":
        assert native[1] == oracle[1], _view_diff(native[1], oracle[1])


# --- The fixtures ------------------------------------------------------------------------------


def _lines(name: str) -> list[bytes]:
    return (FIXTURES / name).read_bytes().splitlines()


def _sources(name: str) -> list[str]:
    """The source file of each line of a ``.jsonl`` fixture, from its ``.index.tsv``."""
    rows = (FIXTURES / name).read_text().splitlines()[1:]
    return [row.split("\t")[1] for row in rows]


def _is_bid_request(name: str) -> bool:
    return "bid-request" in name or name.startswith("bsm-openrtb__breq")


IAB_REQUESTS = sorted(p.name for p in IAB.glob("*.json") if _is_bid_request(p.name))

# The specification's examples that are not bid requests, and what they are instead.
_NATIVE = "a Native Ads document (what imp.native.request carries), not a bid request"
_NATIVE_RESPONSE = "a Native Ads response document (what a native bid's adm carries)"
_RESPONSE = "a bid response, not a bid request"
NOT_BID_REQUESTS = {
    "bsm-openrtb__bres.multi.json": _RESPONSE,
    "bsm-openrtb__bres.pmp.json": _RESPONSE,
    "bsm-openrtb__bres.single.json": _RESPONSE,
    "bsm-openrtb__bres.vast.json": _RESPONSE,
    "bsm-openrtb__native_request_request1.json": _NATIVE,
    "bsm-openrtb__native_response_response1.json": _NATIVE_RESPONSE,
    "iab-openrtb2.x-impl2.6__bid-response_7-1-no-bid-signaling-1.json": _RESPONSE,
    "iab-openrtb2.x-impl2.6__bid-response_7-1-no-bid-signaling-2.json": _RESPONSE,
    "iab-openrtb2.x-impl2.6__bid-response_7-6-pod-bidding-for-video-and-audio-1.json": _RESPONSE,
    "iab-openrtb2.x-impl2.6__bid-response_7-6-pod-bidding-for-video-and-audio-2.json": _RESPONSE,
    "iab-openrtb2.x-impl2.6__bid-response_7-6-pod-bidding-for-video-and-audio-3.json": _RESPONSE,
    "iab-openrtb2.x-impl2.6__bid-response_7-9-6-2-banner-bid-response.json": _RESPONSE,
    "iab-openrtb2.x-impl2.6__bid-response_7-9-6-4-dooh-video-bid-response_repaired.json": _RESPONSE,
    "iab-openrtb2.x-spec2.6__bid-response_ad-served-on-win-notice.json": _RESPONSE,
    "iab-openrtb2.x-spec2.6__bid-response_direct-deal-ad-served-on-win-notice.json": _RESPONSE,
    "iab-openrtb2.x-spec2.6__bid-response_native-markup-returned-inline.json": _RESPONSE,
    "iab-openrtb2.x-spec2.6__bid-response_vast-xml-document-returned-inline.json": _RESPONSE,
    "mxmcherry-openrtb__2.5_bid-response_ad-served-on-win-notice.json": _RESPONSE,
    "mxmcherry-openrtb__2.5_bid-response_direct-deal-ad-served-on-win-notice.json": _RESPONSE,
    "mxmcherry-openrtb__2.5_bid-response_native-markup-returned-inline.json": _RESPONSE,
    "mxmcherry-openrtb__2.5_bid-response_vast-xml-document-returned-inline.json": _RESPONSE,
    "mxmcherry-openrtb__2.6_bid-response_ad-served-on-win-notice.json": _RESPONSE,
    "mxmcherry-openrtb__2.6_bid-response_direct-deal-ad-served-on-win-notice.json": _RESPONSE,
    "mxmcherry-openrtb__2.6_bid-response_native-markup-returned-inline.json": _RESPONSE,
    "mxmcherry-openrtb__2.6_bid-response_vast-xml-document-returned-inline.json": _RESPONSE,
    "mxmcherry-openrtb__native1.1_request_content-context.json": _NATIVE,
    "mxmcherry-openrtb__native1.1_request_social-context.json": _NATIVE,
    "mxmcherry-openrtb__native1.1_response_clickout.json": _NATIVE_RESPONSE,
    "mxmcherry-openrtb__native1.1_response_video.json": _NATIVE_RESPONSE,
    "mxmcherry-openrtb__native1.2_request_content-context.json": _NATIVE,
    "mxmcherry-openrtb__native1.2_request_social-context.json": _NATIVE,
    "mxmcherry-openrtb__native1.2_request_third-party.json": _NATIVE,
    "mxmcherry-openrtb__native1.2_response_clickout.json": _NATIVE_RESPONSE,
    "mxmcherry-openrtb__native1.2_response_third-party.json": _NATIVE_RESPONSE,
    "mxmcherry-openrtb__native1.2_response_video.json": _NATIVE_RESPONSE,
}

# Every bid request of the fixtures that both parsers refuse: line of requests.jsonl (or file of
# iab/) -> (rule, path, why). "converter" is InteractiveAdvertisingBureau/openrtb3-converter's
# test data (its deliberately mistyped "invalidData"/"idStringFormat"/"TC" inputs and its
# "mandatory_*" inputs with a required field removed), "google" is google/openrtb's full-field
# requests, "prebid" is prebid-server's adapter/endpoint/exchange tests (adapter/test name;
# "outgoing": the request the adapter is expected to send). Many prebid tests send site and app
# together, video without MIME types, or a placeholder where the Native request belongs
# ("{json string}", "test-native-request", ""); Native requests without asset ids are prebid
# inputs (prebid-server numbers the assets itself before a bidder sees them). Regenerate the keys,
# never the reasons, when the corpus changes.
REFUSED_BY_BOTH: dict[int | str, tuple[str, str, str]] = {
    1: (
        "required",
        "imp[2].native.request.assets",
        "google REQUEST__FULL__NOROOT_OBJECT: imp[2]'s a Native 1.0 request (layout, "
        "adunit) without assets",
    ),
    2: (
        "required",
        "imp[2].native.request.assets",
        "google REQUEST__FULL__NOROOT_STRING: imp[2]'s a Native 1.0 request (layout, "
        "adunit) without assets",
    ),
    3: (
        "required",
        "imp[2].native.request.native.assets",
        "google REQUEST__FULL__ROOT___OBJECT: imp[2]'s a Native 1.0 request (layout, "
        "adunit) without assets (in a 1.0 wrapper)",
    ),
    4: (
        "required",
        "imp[2].native.request.native.assets",
        "google REQUEST__FULL__ROOT___STRING: imp[2]'s a Native 1.0 request (layout, "
        "adunit) without assets (in a 1.0 wrapper)",
    ),
    5: (
        "required",
        "imp[0].native.request.assets",
        "google REQUEST__SHORT_NOROOT_OBJECT: a Native 1.0 request (layout, adunit) without assets",
    ),
    6: (
        "required",
        "imp[0].native.request.assets",
        "google REQUEST__SHORT_NOROOT_STRING: a Native 1.0 request (layout, adunit) without assets",
    ),
    7: (
        "required",
        "imp[0].native.request.native.assets",
        "google REQUEST__SHORT_ROOT___OBJECT: a Native 1.0 request (layout, adunit) "
        "without assets (in a 1.0 wrapper)",
    ),
    8: (
        "required",
        "imp[0].native.request.native.assets",
        "google REQUEST__SHORT_ROOT___STRING: a Native 1.0 request (layout, adunit) "
        "without assets (in a 1.0 wrapper)",
    ),
    29: ("currency", "cur[0]", "converter DefaultRequestValueIsPresent_3to2: country 'US' in cur"),
    30: ("currency", "cur[0]", "converter DefaultRequestValuePresent_2to3: country 'IN' in cur"),
    32: (
        "native_asset",
        "imp[0].native.request.native.assets[0]",
        "converter MINIMUM_REQUEST_25_3TO2: asset 9 is title, img, video and data at "
        "once (in a 1.0 wrapper)",
    ),
    36: (
        "required",
        "imp[0].native.request.native.assets",
        "converter NATIVE_APP_25_string: a Native request without assets (in a 1.0 wrapper)",
    ),
    48: (
        "required",
        "imp[0].native.request.native.assets[0].video.minduration",
        "converter Request30DisplayNativefmtVideoPass: a video asset without minduration "
        "(in a 1.0 wrapper)",
    ),
    52: ("channel", "app", "converter SiteAppDooh_Min_25: site and app both"),
    53: ("type", "app.keywords", "converter TC10: number where a string belongs"),
    54: ("type", "app.cat", "converter TC11: number where an array belongs"),
    55: ("type", "app.cat[0]", "converter TC12: number element where a string belongs"),
    56: ("type", "app.cat[1]", "converter TC13: null element where a string belongs"),
    58: ("type", "app.sectioncat[1]", "converter TC15: null element where a string belongs"),
    60: ("type", "app.pagecat[1]", "converter TC17: null element where a string belongs"),
    64: ("type", "app.publisher.id", "converter TC20: number where a string belongs"),
    65: ("type", "app.publisher.name", "converter TC21: number where a string belongs"),
    66: ("type", "app.publisher.domain", "converter TC22: number where a string belongs"),
    67: ("type", "app.publisher.cat[1]", "converter TC23: null element where a string belongs"),
    70: ("type", "app.content.id", "converter TC26: number where a string belongs"),
    72: ("type", "app.content.title", "converter TC28: number where a string belongs"),
    73: ("type", "app.content.series", "converter TC29: number where a string belongs"),
    74: ("type", "app.id", "converter TC2: number where a string belongs"),
    76: ("type", "app.content.genre", "converter TC31: number where a string belongs"),
    84: ("type", "app.content.contentrating", "converter TC39: number where a string belongs"),
    85: ("type", "app.name", "converter TC3: number where a string belongs"),
    88: ("type", "app.content.keywords", "converter TC42: number where a string belongs"),
    89: ("type", "app.content.livestream", "converter TC43: string where an integer belongs"),
    91: ("type", "app.content.len", "converter TC45: string where an integer belongs"),
    92: ("type", "app.content.language", "converter TC46: number where a string belongs"),
    94: ("type", "app.content.cat[1]", "converter TC48: null element where a string belongs"),
    96: ("type", "app.bundle", "converter TC4: number where a string belongs"),
    107: ("type", "app.domain", "converter TC5: number where a string belongs"),
    111: ("type", "app.storeurl", "converter TC6: number where a string belongs"),
    112: ("type", "app.ver", "converter TC7: number where a string belongs"),
    114: ("type", "app.paid", "converter TC9: string where an integer belongs"),
    175: ("type", "source.fd", "converter idStringFormat16: string where an integer belongs"),
    176: ("type", "source.tid", "converter idStringFormat17: number where a string belongs"),
    177: ("type", "source.pchain", "converter idStringFormat18: number where a string belongs"),
    178: ("type", "wseat[0]", "converter idStringFormat1: number element where a string belongs"),
    180: ("type", "device.ua", "converter idStringFormat23: number where a string belongs"),
    181: ("type", "device.ip", "converter idStringFormat24: number where a string belongs"),
    182: ("type", "device.dnt", "converter idStringFormat25: string where an integer belongs"),
    183: ("type", "device.lmt", "converter idStringFormat26: string where an integer belongs"),
    184: ("type", "device.ipv6", "converter idStringFormat27: number where a string belongs"),
    185: ("type", "device.devicetype", "converter idStringFormat28: string for an integer code"),
    186: ("type", "device.make", "converter idStringFormat29: number where a string belongs"),
    188: ("type", "device.model", "converter idStringFormat30: number where a string belongs"),
    190: ("type", "device.osv", "converter idStringFormat32: number where a string belongs"),
    191: ("type", "device.hwv", "converter idStringFormat33: number where a string belongs"),
    192: ("type", "device.h", "converter idStringFormat34: string where an integer belongs"),
    193: ("type", "device.w", "converter idStringFormat35: string where an integer belongs"),
    194: ("type", "device.ppi", "converter idStringFormat36: string where an integer belongs"),
    195: ("type", "device.pxratio", "converter idStringFormat37: string where a number belongs"),
    196: ("type", "device.js", "converter idStringFormat38: string where an integer belongs"),
    197: ("type", "device.geofetch", "converter idStringFormat39: string where an integer belongs"),
    199: ("type", "device.language", "converter idStringFormat40: number where a string belongs"),
    200: ("type", "device.carrier", "converter idStringFormat41: number where a string belongs"),
    201: ("type", "device.mccmnc", "converter idStringFormat42: number where a string belongs"),
    202: (
        "type",
        "device.connectiontype",
        "converter idStringFormat43: string for an integer code",
    ),
    206: ("type", "device.geo.lat", "converter idStringFormat47: string where a number belongs"),
    208: ("type", "user.id", "converter idStringFormat49: number where a string belongs"),
    209: ("type", "wseat", "converter idStringFormat4: number where an array belongs"),
    210: ("type", "user.buyeruid", "converter idStringFormat50: number where a string belongs"),
    211: ("type", "user.yob", "converter idStringFormat51: string where an integer belongs"),
    212: ("type", "user.gender", "converter idStringFormat52: number where a string belongs"),
    213: ("type", "user.keywords", "converter idStringFormat53: number where a string belongs"),
    215: ("type", "user.data[0].id", "converter idStringFormat55: number for a data provider's id"),
    216: ("type", "user.data[0].name", "converter idStringFormat56: number for a provider's name"),
    218: (
        "type",
        "user.data[0].segment[0].id",
        "converter idStringFormat58: number for a segment id",
    ),
    219: (
        "type",
        "user.data[0].segment[0].name",
        "converter idStringFormat59: number for its name",
    ),
    221: (
        "type",
        "user.data[0].segment[0].value",
        "converter idStringFormat60: number for its value",
    ),
    224: ("type", "user.geo.lat", "converter idStringFormat63: string where a number belongs"),
    225: ("type", "user.geo.lon", "converter idStringFormat64: string where a number belongs"),
    226: ("type", "user.geo.type", "converter idStringFormat65: string for an integer code"),
    227: ("type", "user.geo.accuracy", "converter idStringFormat66: string for an integer"),
    228: ("type", "user.geo.lastfix", "converter idStringFormat67: string for an integer"),
    229: ("type", "user.geo.ipservice", "converter idStringFormat68: string for an integer code"),
    230: ("type", "user.geo.utcoffset", "converter idStringFormat69: string for an integer"),
    232: ("type", "site.id", "converter idStringFormat70: number where a string belongs"),
    233: ("type", "site.ref", "converter idStringFormat71: number where a string belongs"),
    234: ("type", "site.search", "converter idStringFormat72: number where a string belongs"),
    235: ("type", "site.mobile", "converter idStringFormat73: string where an integer belongs"),
    243: ("type", "site.keywords", "converter idStringFormat82: number where a string belongs"),
    255: ("type", "site.content.livestream", "converter idStringFormat95: string for an integer"),
    261: ("type", "id", "converter invalidData1: number for the request id"),
    262: ("type", "at", "converter invalidData2: string for the auction type"),
    263: ("type", "test", "converter invalidData3: string where an integer belongs"),
    264: ("type", "tmax", "converter invalidData4: string where an integer belongs"),
    265: ("type", "allimps", "converter invalidData5: string where an integer belongs"),
    268: ("no_media", "imp[0]", "converter mandatory_alladtypes_null_2to3: every media removed"),
    269: (
        "required",
        "imp[0].audio.mimes",
        "converter mandatory_imp_audiomimesnull_2to3: audio is {}",
    ),
    270: (
        "required",
        "imp[0].native.request.native.assets",
        "converter mandatory_imp_native_assetsnull_2to3: the Native request is {} (in a "
        "1.0 wrapper)",
    ),
    271: (
        "required",
        "imp[0].pmp.deals[0].id",
        "converter mandatory_imp_pmp_dealid_null_2to3: deal id removed",
    ),
    274: (
        "required",
        "imp[0].video.mimes",
        "converter mandatory_imp_videomimesnull_2to3: video is {}",
    ),
    275: ("required", "imp[0].id", "converter mandatory_impidnull_2to3: the imp id removed"),
    279: (
        "required",
        "imp[0].native.request.native.assets[0].id",
        "converter mandatory_native_assetidnull_2to3: Native assets without their ids "
        "(in a 1.0 wrapper)",
    ),
    280: (
        "required",
        "imp[0].native.request.native.assets[0].title.len",
        "converter mandatory_native_assettitlelen_2to3: a title asset without len (a "
        "response's title.text) (in a 1.0 wrapper)",
    ),
    281: (
        "native_asset",
        "imp[0].native.request.native.assets[0]",
        "converter mandatory_native_assettitlenull_2to3: asset 1 is none of title, img, "
        "video, data (in a 1.0 wrapper)",
    ),
    286: (
        "required",
        "imp[0].native.request.native.assets",
        "converter nativeStringBackupConfigTrue: a Native request without assets (in a "
        "1.0 wrapper)",
    ),
    292: ("channel", "app", "converter siteapp_present_2to3: site and app both"),
    294: ("channel", "app", "converter siteappdooh_present_2to3: site and app both"),
    318: ("no_media", "imp[1]", "prebid 33across/multi-imp-mixed-validation: imp without media"),
    324: (
        "required",
        "imp[0].video.mimes",
        "prebid 33across/video-validation-fail: video without mimes",
    ),
    389: (
        "json",
        "imp[0].native.request",
        "prebid adf/multi-native (outgoing): native.request '{json string 1}' is not JSON",
    ),
    390: (
        "json",
        "imp[0].native.request",
        "prebid adf/multi-native: native.request '{json string 1}' is not JSON",
    ),
    399: (
        "json",
        "imp[0].native.request",
        "prebid adf/single-native (outgoing): native.request '{json string}' is not JSON",
    ),
    400: (
        "json",
        "imp[0].native.request",
        "prebid adf/single-native: native.request '{json string}' is not JSON",
    ),
    407: (
        "json",
        "imp[0].native.request",
        "prebid adf/bad-request (outgoing): native.request is an empty string",
    ),
    408: (
        "json",
        "imp[0].native.request",
        "prebid adf/bad-request: native.request is an empty string",
    ),
    409: (
        "required",
        "imp[0].audio.mimes",
        "prebid adf/invalid-imp-mediatype (outgoing): audio.mimes is null",
    ),
    410: ("required", "imp[0].audio.mimes", "prebid adf/invalid-imp-mediatype: audio is {}"),
    411: ("channel", "app", "prebid adgeneration/single-banner-android: site and app both"),
    412: ("channel", "app", "prebid adgeneration/single-banner-ios: site and app both"),
    432: (
        "json",
        "imp[0].native.request",
        "prebid adkernelAdn/native-impression: native.request '<-- native request -->' is not JSON",
    ),
    438: (
        "json",
        "imp[2].native.request",
        "prebid adkernel/multiformat-impression (outgoing): imp[2]'s native.request "
        "'{native: \"request\"}' is not JSON",
    ),
    439: (
        "json",
        "imp[0].native.request",
        "prebid adkernel/multiformat-impression: native.request '{native: \"request\"}' is "
        "not JSON",
    ),
    457: (
        "json",
        "imp[0].native.request",
        "prebid admatic/native: native.request is an empty string",
    ),
    463: (
        "duplicate_imp",
        "imp[1].id",
        "prebid admixer/optional-params (outgoing): one id, 5 imps",
    ),
    464: ("duplicate_imp", "imp[1].id", "prebid admixer/optional-params: one id for 5 imps"),
    483: ("required", "imp[0].id", "prebid admixer/ext-unmarshall-error: no id, format on the imp"),
    484: ("required", "imp[0].id", "prebid admixer/wrong-zone-id-error: no id, format on the imp"),
    511: ("required", "imp[0].video.mimes", "prebid adnuntius/video-error: video without mimes"),
    514: (
        "json",
        "imp[0].native.request",
        "prebid adot/simple-native: native.request 'test-native' is not JSON",
    ),
    533: ("no_media", "imp[0]", "prebid adprime/bad_media_type: only a tagid, no media"),
    546: ("no_media", "imp[0]", "prebid adquery/no-imp-banner: a 'bidder' key, no media"),
    548: (
        "json",
        "imp[0].native.request",
        "prebid adrino/no-bid: native.request '{json string}' is not JSON",
    ),
    549: (
        "json",
        "imp[0].native.request",
        "prebid adrino/unknown-hash: native.request '{json string}' is not JSON",
    ),
    556: (
        "required",
        "imp[0].native.request",
        "prebid adtarget/native: native without its request",
    ),
    557: (
        "required",
        "imp[0].video.mimes",
        "prebid adtarget/wrong-impression-ext: video without mimes",
    ),
    582: ("duplicate_imp", "imp[1].id", "prebid adtrgtme/not-provided-ext-object: one id, 2 imps"),
    598: ("currency", "imp[0].bidfloorcur", "prebid aduptech/currency-conversion-invalid-currency"),
    604: (
        "required",
        "imp[0].native.request.assets",
        "prebid adverxo/native: the Native request is {}",
    ),
    614: (
        "required",
        "imp[0].native.request.assets",
        "prebid adverxo/multiformat: the Native request is {}",
    ),
    624: (
        "json",
        "imp[0].native.request",
        "prebid adview/bad-request (outgoing): native.request is an empty string",
    ),
    625: (
        "json",
        "imp[0].native.request",
        "prebid adview/bad-request: native.request is an empty string",
    ),
    629: (
        "json",
        "imp[0].native.request",
        "prebid adxcg/simple-native: native.request 'test-native' is not JSON",
    ),
    633: (
        "required",
        "imp[1].video.mimes",
        "prebid adyoulike/multiformat-impression (outgoing): imp[1]'s video.mimes is null",
    ),
    634: (
        "required",
        "imp[1].video.mimes",
        "prebid adyoulike/multiformat-impression: imp[1]'s video without mimes",
    ),
    667: ("no_media", "imp[0]", "prebid aja/invalid-bid-type (outgoing): no media"),
    668: ("no_media", "imp[0]", "prebid aja/invalid-bid-type: no media"),
    703: ("no_media", "imp[0]", "prebid alkimi/bad_media_type (outgoing): no media"),
    704: ("no_media", "imp[0]", "prebid alkimi/bad_media_type: no media"),
    732: (
        "type",
        "imp[0].native.request.native.ver",
        "prebid amx/simple-native: Native ver 1.1 as a number",
    ),
    735: (
        "required",
        "imp[0].video.mimes",
        "prebid amx/204-response (outgoing): video.mimes is null",
    ),
    736: ("required", "imp[0].video.mimes", "prebid amx/204-response: video without mimes"),
    761: (
        "required",
        "imp[0].video.mimes",
        "prebid apacdex/wrong-impression-ext: video without mimes",
    ),
    825: ("no_media", "imp[0]", "prebid appush/bad_media_type (outgoing): no media"),
    826: ("no_media", "imp[0]", "prebid appush/bad_media_type: no media"),
    838: (
        "json",
        "imp[0].native.request",
        "prebid aso/bad-request-no-bidder: native.request is an empty string",
    ),
    839: (
        "json",
        "imp[0].native.request",
        "prebid aso/bad-request-no-ext: native.request is an empty string",
    ),
    840: (
        "json",
        "imp[0].native.request",
        "prebid aso/bad-request: native.request is an empty string",
    ),
    876: ("no_media", "imp[0]", "prebid axis/bad_media_type: no media"),
    911: ("required", "imp[0].id", "prebid beachfront/banner-no-appid: imp without an id"),
    913: ("required", "imp[0].id", "prebid beachfront/banner-wrong-appids: imp without an id"),
    951: ("no_media", "imp[0]", "prebid beintoo/invalid-request-no-banner: no media"),
    1007: ("required", "imp[0].video.mimes", "prebid bidmatic/imp-ext-empty: video without mimes"),
    1008: (
        "required",
        "imp[0].video.mimes",
        "prebid bidmatic/wrong-impression-ext: video without mimes",
    ),
    1014: ("duplicate_imp", "imp[1].id", "prebid bidmyadz/invalid-multi-imps: id '1' twice"),
    1063: (
        "json",
        "imp[1].native.request",
        "prebid bliink/banner_native_video: imp[1]'s native.request '{test json string}' "
        "is not JSON",
    ),
    1064: (
        "json",
        "imp[0].native.request",
        "prebid bliink/native: native.request '{test json string}' is not JSON",
    ),
    1066: (
        "json",
        "imp[1].native.request",
        "prebid bliink/multiple_format_request: imp[1]'s native.request '{test json "
        "string}' is not JSON",
    ),
    1070: ("no_media", "imp[0]", "prebid blis/invalid-imp-ext-bidder: no media"),
    1071: ("no_media", "imp[0]", "prebid blis/invalid-imp-ext: an imp with only an id"),
    1093: ("no_media", "imp[1]", "prebid bmtm/multi-imp-mixed-validation: imp without media"),
    1097: ("no_media", "imp[0]", "prebid boldwin_rapid/bad_media_type: no media"),
    1136: (
        "required",
        "imp[0].video.mimes",
        "prebid cadent_aperture_mx/bad-imp-video-missing-mimes: video without mimes",
    ),
    1186: (
        "json",
        "imp[0].native.request",
        "prebid colossus/simple-native-without-ext: native.request is an empty string",
    ),
    1189: ("no_media", "imp[0]", "prebid colossus/bad_media_type: no media"),
    1216: ("currency", "imp[0].bidfloorcur", "prebid connatix/fail-currency-conversion: 'test'"),
    1232: ("no_media", "imp[0]", "prebid connectad/no_banner: no media"),
    1271: (
        "json",
        "imp[0].native.request.assets",
        "prebid conversant/simple-native (outgoing): the Native request is cut short",
    ),
    1272: (
        "json",
        "imp[0].native.request.assets",
        "prebid conversant/simple-native: the Native request is cut short",
    ),
    1280: ("required", "imp[0].video.mimes", "prebid conversant/video: video without mimes"),
    1286: ("floor", "imp[3].bidfloor", "prebid conversant/test_params (outgoing): floor -3"),
    1287: (
        "required",
        "imp[2].video.mimes",
        "prebid conversant/test_params: imp[2]'s video without mimes",
    ),
    1312: (
        "required",
        "imp[0].native.request",
        "prebid cpmstar/native: native without its request",
    ),
    1347: ("no_media", "imp[0]", "prebid deepintent/no_banner: no media"),
    1357: (
        "json",
        "imp[0].native.request",
        "prebid definemedia/sample-conative-native (outgoing): native.request is an empty string",
    ),
    1358: (
        "required",
        "imp[0].native.request",
        "prebid definemedia/sample-conative-native: native is {}",
    ),
    1365: (
        "json",
        "imp[0].native.request",
        "prebid dianomi/multi-native (outgoing): native.request '{json string 1}' is not JSON",
    ),
    1366: (
        "json",
        "imp[0].native.request",
        "prebid dianomi/multi-native: native.request '{json string 1}' is not JSON",
    ),
    1375: (
        "json",
        "imp[0].native.request",
        "prebid dianomi/single-native (outgoing): native.request '{json string}' is not JSON",
    ),
    1376: (
        "json",
        "imp[0].native.request",
        "prebid dianomi/single-native: native.request '{json string}' is not JSON",
    ),
    1383: (
        "json",
        "imp[0].native.request",
        "prebid dianomi/bad-request (outgoing): native.request is an empty string",
    ),
    1384: (
        "json",
        "imp[0].native.request",
        "prebid dianomi/bad-request: native.request is an empty string",
    ),
    1385: (
        "required",
        "imp[0].audio.mimes",
        "prebid dianomi/invalid-imp-mediatype (outgoing): audio.mimes is null",
    ),
    1386: ("required", "imp[0].audio.mimes", "prebid dianomi/invalid-imp-mediatype: audio is {}"),
    1437: (
        "required",
        "imp[0].native.request.assets",
        "prebid elementaltv/multiimp (outgoing): the Native request is {}",
    ),
    1438: (
        "required",
        "imp[2].native.request.assets",
        "prebid elementaltv/multiimp: imp[2]'s the Native request is {}",
    ),
    1440: ("duplicate_imp", "imp[1].id", "prebid elementaltv/duplicate-imp: id 'imp1' twice"),
    1491: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid endpoint/asset-img-no-hmin: Native assets without their ids",
    ),
    1492: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid endpoint/asset-img-no-wmin: Native assets without their ids",
    ),
    1495: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid endpoint/context-product-compatible-subtype: Native assets without their ids",
    ),
    1496: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid endpoint/context-social-compatible-subtype: Native assets without their ids",
    ),
    1497: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid endpoint/eventtracker-exchange-specific: Native assets without their ids",
    ),
    1498: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid endpoint/request-no-context: Native assets without their ids",
    ),
    1499: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid endpoint/request-plcmttype-empty: Native assets without their ids",
    ),
    1500: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid endpoint/video-asset-event-tracker: Native assets without their ids",
    ),
    1501: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid endpoint/with-video-asset: Native assets without their ids",
    ),
    1513: ("no_media", "imp[0]", "prebid endpoint/imp-info-invalid: media left to a stored imp"),
    1572: ("type", "source.ext.schain", "prebid eplanning/bid-with-schain-unmarshal-error: ''"),
    1577: (
        "required",
        "imp[1].video.mimes",
        "prebid eplanning/three-imps-1_banner-1_video_instream-and-1_video_outstream-only"
        "-send-video-instream: imp[1]'s video without mimes",
    ),
    1578: (
        "required",
        "imp[1].video.mimes",
        "prebid eplanning/two-imps-1_banner-and-1_video_instream-send-only-instream: "
        "imp[1]'s video without mimes",
    ),
    1579: (
        "required",
        "imp[1].video.mimes",
        "prebid eplanning/two-imps-1_banner-and-1_video_outstream-send-only-outstream: "
        "imp[1]'s video without mimes",
    ),
    1580: (
        "required",
        "imp[0].video.mimes",
        "prebid eplanning/two-imps-video-1_instream-and-1_outstream-send-only-instream: "
        "video without mimes",
    ),
    1581: (
        "required",
        "imp[0].video.mimes",
        "prebid eplanning/two-imps-video-instream: video without mimes",
    ),
    1582: (
        "required",
        "imp[0].video.mimes",
        "prebid eplanning/video-no-placement-send-vctx-2: video without mimes",
    ),
    1583: (
        "required",
        "imp[0].video.mimes",
        "prebid eplanning/video-no-size-send-640x480: video is {}",
    ),
    1584: (
        "required",
        "imp[0].video.mimes",
        "prebid eplanning/video-partial-size-send-640x480: video without mimes",
    ),
    1585: (
        "required",
        "imp[0].video.mimes",
        "prebid eplanning/video-zero-size-send-640x480: video without mimes",
    ),
    1637: (
        "required",
        "imp[1].native.request.assets",
        "prebid eskimi/unsupported-bid-media-type (outgoing): imp[1]'s the Native request is {}",
    ),
    1638: (
        "required",
        "imp[1].native.request.assets",
        "prebid eskimi/unsupported-bid-media-type: imp[1]'s the Native request is {}",
    ),
    1693: (
        "required",
        "imp[0].video.mimes",
        "prebid exchange/events-vast-account-off-request-off: video is {}",
    ),
    1694: (
        "required",
        "imp[0].video.mimes",
        "prebid exchange/events-vast-account-off-request-on: video is {}",
    ),
    1695: (
        "required",
        "imp[0].video.mimes",
        "prebid exchange/events-vast-account-on-request-off: video is {}",
    ),
    1737: (
        "required",
        "imp[0].native.request",
        "prebid exchange/imp-fpd-skipped-validation: native is {}",
    ),
    1738: (
        "required",
        "imp[0].native.request",
        "prebid exchange/imp-fpd-skipped-validation (sent to appnexus): native is {}",
    ),
    1814: ("no_media", "imp[0]", "prebid exco/invalid-imp-ext-format: no media"),
    1815: ("no_media", "imp[0]", "prebid exco/invalid-imp-ext: no media"),
    1835: (
        "json",
        "imp[0].native.request",
        "prebid flatads/native: native.request is an empty string",
    ),
    1860: (
        "json",
        "imp[0].native.request",
        "prebid frvradn/native (outgoing): native.request 'test-native-request' is not JSON",
    ),
    1861: (
        "json",
        "imp[0].native.request",
        "prebid frvradn/native: native.request 'test-native-request' is not JSON",
    ),
    1878: ("no_media", "imp[0]", "prebid frvradn/unknown_imp_media_type (outgoing): no media"),
    1879: ("no_media", "imp[0]", "prebid frvradn/unknown_imp_media_type: no media"),
    1914: ("no_media", "imp[0]", "prebid gamoshi/bad-request: 'invalidbanner', not banner"),
    1918: (
        "required",
        "imp[0].native.request",
        "prebid gamoshi/native: native without its request",
    ),
    1938: (
        "required",
        "imp[0].native.request",
        "prebid grid/multitype-native (outgoing): native without its request",
    ),
    1940: (
        "required",
        "imp[0].native.request",
        "prebid grid/native-as-string (outgoing): native without its request",
    ),
    1941: (
        "json",
        "imp[0].native.request",
        "prebid grid/native-as-string: native.request 'request string' is not JSON",
    ),
    1943: (
        "required",
        "imp[0].native.request",
        "prebid grid/simple-native (outgoing): native without its request",
    ),
    2000: (
        "required",
        "imp[0].video.mimes",
        "prebid huaweiads/adtype_roll_missing_duration: video is {}",
    ),
    2004: ("no_media", "imp[0]", "prebid huaweiads/bad_request_missing_all_type: no media"),
    2005: (
        "required",
        "imp[0].audio.mimes",
        "prebid huaweiads/bad_request_no_support_audio: audio is {}",
    ),
    2007: (
        "duplicate_imp",
        "imp[1].id",
        "prebid huaweiads/bad_response_dont_find_impid: one id, 2 imps",
    ),
    2016: (
        "json",
        "imp[0].native.request",
        "prebid huaweiads/missing_native_request: native.request is an empty string",
    ),
    2033: (
        "json",
        "imp[0].native.request",
        "prebid imds/native_response (outgoing): native.request is an empty string",
    ),
    2034: (
        "json",
        "imp[0].native.request",
        "prebid imds/native_response: native.request is an empty string",
    ),
    2051: (
        "required",
        "imp[0].audio.mimes",
        "prebid impactify/not_supported_media_type (outgoing): audio.mimes is null",
    ),
    2052: (
        "required",
        "imp[0].audio.mimes",
        "prebid impactify/not_supported_media_type: audio is {}",
    ),
    2061: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid improvedigital/native: Native assets without their ids",
    ),
    2077: (
        "no_media",
        "imp[0]",
        "prebid improvedigital/missing_and_unsupported_mtype (outgoing): no media",
    ),
    2078: (
        "no_media",
        "imp[2]",
        "prebid improvedigital/missing_and_unsupported_mtype: imp without media",
    ),
    2094: ("required", "imp[0].id", "prebid inmobi/ext-unmarshal-err: imp without an id"),
    2095: ("required", "imp[0].id", "prebid inmobi/missing-plc-error: imp without an id"),
    2126: (
        "required",
        "imp[0].video.mimes",
        "prebid insticator/video-validation-fail: video without mimes",
    ),
    2146: ("no_media", "imp[0]", "prebid invibes/request-error-banner: no media"),
    2147: ("no_media", "imp[0]", "prebid invibes/request-error-impext: no media"),
    2176: (
        "required",
        "imp[0].native.request.assets",
        "prebid ix/native-eventtrackers-compat-12: the Native request is {}",
    ),
    2191: ("no_media", "imp[0]", "prebid ix/bad-ext-bidder: no media"),
    2192: ("no_media", "imp[0]", "prebid ix/bad-ext-ix: no media"),
    2206: ("required", "imp[0].video.mimes", "prebid kargo/video: video.mimes is null"),
    2207: ("no_media", "imp[0]", "prebid kargo/status-bad-request: an imp with only an id"),
    2208: ("required", "imp[0].video.mimes", "prebid kargo/status-no-content: video.mimes is null"),
    2236: ("required", "imp[0].audio.mimes", "prebid kidoz/only-video-banner: audio is {}"),
    2259: ("duplicate_imp", "imp[1].id", "prebid kueezrtb/multi-imp: one id for 2 imps"),
    2273: (
        "json",
        "imp[0].native.request",
        "prebid limelightDigital/native (outgoing): native.request 'test-native-request' "
        "is not JSON",
    ),
    2274: (
        "json",
        "imp[0].native.request",
        "prebid limelightDigital/native: native.request 'test-native-request' is not JSON",
    ),
    2281: (
        "no_media",
        "imp[0]",
        "prebid limelightDigital/unknown_imp_media_type (outgoing): no media",
    ),
    2282: ("no_media", "imp[0]", "prebid limelightDigital/unknown_imp_media_type: no media"),
    2295: (
        "required",
        "imp[0].video.mimes",
        "prebid lockerdome/unsupported_imp_type: video without mimes",
    ),
    2300: ("duplicate_imp", "imp[1].id", "prebid logicad/multiImpSameTid (outgoing): one id"),
    2301: ("duplicate_imp", "imp[1].id", "prebid logicad/multiImpSameTid: one id for 2 imps"),
    2304: (
        "json",
        "imp[0].native.request",
        "prebid loopme/app-formats: native.request '{json string 1}' is not JSON",
    ),
    2387: ("channel", "app", "prebid mediasquare/multi-format: site and app both"),
    2389: (
        "json",
        "imp[0].native.request",
        "prebid mediasquare/simple-native: native.request 'request-test' is not JSON",
    ),
    2391: ("no_media", "imp[0]", "prebid mediasquare/no-valid-imp-ext: imp[0] is only an id"),
    2395: (
        "json",
        "imp[0].native.request",
        "prebid melozen/app-native: native.request 'placeholder request' is not JSON",
    ),
    2404: ("no_media", "imp[0]", "prebid melozen/bad-media-type-request: 'unupported' media"),
    2407: (
        "json",
        "imp[0].native.request",
        "prebid metax/app-formats (outgoing): native.request '{json string 1}' is not JSON",
    ),
    2408: (
        "json",
        "imp[0].native.request",
        "prebid metax/app-formats: native.request '{json string 1}' is not JSON",
    ),
    2423: ("required", "imp[0].id", "prebid metax/invalid-adunit-error: imp without an id"),
    2424: ("required", "imp[0].id", "prebid metax/invalid-ext-bidder: imp without an id"),
    2425: ("required", "imp[0].id", "prebid metax/invalid-ext: imp without an id"),
    2426: ("required", "imp[0].id", "prebid metax/invalid-publisher-error: imp without an id"),
    2454: ("no_media", "imp[0]", "prebid missena/error-ext-bidder: no media"),
    2468: (
        "required",
        "imp[1].native.request.native.assets[1].title.len",
        "prebid mobilefuse/multi-imps-multi-format (outgoing): imp[1]'s a title asset "
        "without len (a response's title.text) (in a 1.0 wrapper)",
    ),
    2469: (
        "required",
        "imp[1].native.request.native.assets[1].title.len",
        "prebid mobilefuse/multi-imps-multi-format: imp[1]'s a title asset without len "
        "(a response's title.text) (in a 1.0 wrapper)",
    ),
    2476: (
        "required",
        "imp[0].native.request.native.assets[1].title.len",
        "prebid mobilefuse/simple-native (outgoing): a title asset without len (a "
        "response's title.text) (in a 1.0 wrapper)",
    ),
    2477: (
        "required",
        "imp[0].native.request.native.assets[1].title.len",
        "prebid mobilefuse/simple-native: a title asset without len (a response's "
        "title.text) (in a 1.0 wrapper)",
    ),
    2484: ("no_media", "imp[0]", "prebid mobilefuse/no-imps: no media"),
    2580: (
        "json",
        "imp[0].native.request",
        "prebid nativo/bid-type-fallback-native: native.request is an empty string",
    ),
    2637: ("no_media", "imp[0]", "prebid nobid/bad-mediatype (outgoing): no media"),
    2638: ("no_media", "imp[0]", "prebid nobid/bad-mediatype: 'Xbanner', not banner"),
    2684: ("duplicate_imp", "imp[1].id", "prebid openx/optional-params (outgoing): one id"),
    2685: ("duplicate_imp", "imp[1].id", "prebid openx/optional-params: one id for 2 imps"),
    2714: (
        "type",
        "imp[0].native.request",
        "prebid orbidder/multibid-multi-format-with-mtype (outgoing): a Native request "
        "without its braces ('\"assets\":[...]')",
    ),
    2715: (
        "type",
        "imp[0].native.request",
        "prebid orbidder/multibid-multi-format-with-mtype: a Native request without its "
        "braces ('\"assets\":[...]')",
    ),
    2720: (
        "type",
        "imp[0].native.request",
        "prebid orbidder/simple-web-native (outgoing): a Native request without its "
        "braces ('\"assets\":[...]')",
    ),
    2721: (
        "type",
        "imp[0].native.request",
        "prebid orbidder/simple-web-native: a Native request without its braces "
        "('\"assets\":[...]')",
    ),
    2722: ("required", "imp[0].id", "prebid orbidder/ext-unmarshall-error: no id, format on imp"),
    2747: (
        "required",
        "imp[0].native.request.assets",
        "prebid pangle/app_native (outgoing): the Native request is {}",
    ),
    2748: (
        "required",
        "imp[0].native.request.assets",
        "prebid pangle/app_native: the Native request is {}",
    ),
    2762: (
        "required",
        "imp[0].native.request.assets",
        "prebid pixfuture/native: the Native request's assets is empty",
    ),
    2817: ("duplicate_imp", "imp[1].id", "prebid pubnative/invalid-params: one id for 2 imps"),
    2838: (
        "json",
        "imp[0].native.request",
        "prebid pwbid/native: native.request is an empty string",
    ),
    2848: (
        "native_asset",
        "imp[0].native.request.assets[5]",
        "prebid readpeak/native (outgoing): asset 6's data is under the key ' data'",
    ),
    2849: (
        "native_asset",
        "imp[0].native.request.assets[5]",
        "prebid readpeak/native: asset 6's data is under the key ' data'",
    ),
    2873: ("no_media", "imp[0]", "prebid rediads/bad_media_type (outgoing): no media"),
    2874: ("no_media", "imp[0]", "prebid rediads/bad_media_type: no media"),
    2882: (
        "json",
        "imp[0].native.request",
        "prebid relevantdigital/simple-native (outgoing): native.request "
        "'test-native-request' is not JSON",
    ),
    2883: (
        "json",
        "imp[0].native.request",
        "prebid relevantdigital/simple-native: native.request 'test-native-request' is not JSON",
    ),
    2889: (
        "required",
        "imp[1].video.mimes",
        "prebid relevantdigital/invalidBidMTypeParsesExt (outgoing): imp[1]'s video.mimes is null",
    ),
    2890: (
        "required",
        "imp[1].video.mimes",
        "prebid relevantdigital/invalidBidMTypeParsesExt: imp[1]'s video.mimes is null",
    ),
    2893: ("duplicate_imp", "imp[1].id", "prebid relevantdigital/invalidParam: id 'div-1' twice"),
    2957: ("required", "imp[0].video.mimes", "prebid richaudience/videoSizeNotFound: video is {}"),
    2958: (
        "required",
        "imp[0].video.mimes",
        "prebid richaudience/videoSizePartial: video without mimes",
    ),
    2959: (
        "required",
        "imp[0].video.mimes",
        "prebid richaudience/videoSizeZero: video without mimes",
    ),
    2968: (
        "json",
        "imp[0].native.request",
        "prebid roulax/simple-native: native.request 'test-native-request' is not JSON",
    ),
    3059: (
        "channel",
        "app",
        "prebid rubicon/25-26-transition-period (outgoing): site and app both",
    ),
    3060: ("channel", "app", "prebid rubicon/25-26-transition-period: site and app both"),
    3068: ("channel", "app", "prebid rubicon/hardcode-secure (outgoing): site and app both"),
    3069: ("channel", "app", "prebid rubicon/hardcode-secure: site and app both"),
    3071: ("channel", "app", "prebid rubicon/simple-banner (outgoing): site and app both"),
    3072: ("channel", "app", "prebid rubicon/simple-banner: site and app both"),
    3073: ("channel", "app", "prebid rubicon/simple-native (outgoing): site and app both"),
    3074: ("channel", "app", "prebid rubicon/simple-native: site and app both"),
    3075: ("channel", "app", "prebid rubicon/simple-video (outgoing): site and app both"),
    3076: ("channel", "app", "prebid rubicon/simple-video: site and app both"),
    3083: ("channel", "app", "prebid rubicon/no-site-content-data (outgoing): site and app both"),
    3084: ("channel", "app", "prebid rubicon/no-site-content-data: site and app both"),
    3085: ("channel", "app", "prebid rubicon/no-site-content (outgoing): site and app both"),
    3086: ("channel", "app", "prebid rubicon/no-site-content: site and app both"),
    3119: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid seedingAlliance/native (outgoing): Native assets without their ids",
    ),
    3120: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid seedingAlliance/native: Native assets without their ids",
    ),
    3121: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid seedingAlliance/invalid_tag_id: Native assets without their ids",
    ),
    3135: (
        "json",
        "imp[0].native.request",
        "prebid sharethrough/app-native (outgoing): native.request 'placeholder request' "
        "is not JSON",
    ),
    3136: (
        "json",
        "imp[0].native.request",
        "prebid sharethrough/app-native: native.request 'placeholder request' is not JSON",
    ),
    3148: (
        "json",
        "imp[0].native.request",
        "prebid sharethrough/multiformat-impression (outgoing): native.request "
        "'placeholder request' is not JSON",
    ),
    3149: (
        "json",
        "imp[0].native.request",
        "prebid sharethrough/multiformat-impression: native.request 'placeholder "
        "request' is not JSON",
    ),
    3178: (
        "channel",
        "app",
        "prebid silverpush/banner-bidfloor-zero (outgoing): site and app both",
    ),
    3179: ("channel", "app", "prebid silverpush/banner-bidfloor-zero: site and app both"),
    3180: ("channel", "app", "prebid silverpush/banner-device-ctv- (outgoing): site and app both"),
    3181: ("channel", "app", "prebid silverpush/banner-device-ctv-: site and app both"),
    3182: ("channel", "app", "prebid silverpush/banner-device-site (outgoing): site and app both"),
    3183: ("channel", "app", "prebid silverpush/banner-device-site: site and app both"),
    3184: ("channel", "app", "prebid silverpush/banner-eids (outgoing): site and app both"),
    3185: ("channel", "app", "prebid silverpush/banner-eids: site and app both"),
    3186: ("channel", "app", "prebid silverpush/banner-iOS-ua (outgoing): site and app both"),
    3187: ("channel", "app", "prebid silverpush/banner-iOS-ua: site and app both"),
    3188: ("channel", "app", "prebid silverpush/banner-windows-ua (outgoing): site and app both"),
    3189: ("channel", "app", "prebid silverpush/banner-windows-ua: site and app both"),
    3192: ("channel", "app", "prebid silverpush/banner-without-w-h (outgoing): site and app both"),
    3193: ("channel", "app", "prebid silverpush/banner-without-w-h: site and app both"),
    3194: ("channel", "app", "prebid silverpush/banner (outgoing): site and app both"),
    3195: ("channel", "app", "prebid silverpush/banner: site and app both"),
    3204: ("channel", "app", "prebid silverpush/bad-banner-format: site and app both"),
    3205: ("channel", "app", "prebid silverpush/bad-eids-data: site and app both"),
    3206: ("channel", "app", "prebid silverpush/bad-eids-value (outgoing): site and app both"),
    3207: ("channel", "app", "prebid silverpush/bad-eids-value: site and app both"),
    3208: ("channel", "app", "prebid silverpush/bad-imp-ext-bidder: site and app both"),
    3209: ("channel", "app", "prebid silverpush/bad-imp-ext: site and app both"),
    3211: ("channel", "app", "prebid silverpush/bad-user-ext-eids: site and app both"),
    3212: (
        "required",
        "imp[0].video.mimes",
        "prebid silverpush/bad-video-format: video without mimes",
    ),
    3213: ("channel", "app", "prebid silverpush/status-204-resp (outgoing): site and app both"),
    3214: ("channel", "app", "prebid silverpush/status-204-resp: site and app both"),
    3245: ("no_media", "imp[0]", "prebid smaato/bad-media-type-request: 'unupported' media"),
    3280: ("channel", "app", "prebid smartadserver/native-app (outgoing): site and app both"),
    3304: ("no_media", "imp[0]", "prebid smartrtb/empty-imps: an imp with only an id"),
    3326: (
        "required",
        "imp[1].video.mimes",
        "prebid smilewanted/unknown-imp-id (outgoing): imp[1]'s video.mimes is null",
    ),
    3327: (
        "required",
        "imp[1].video.mimes",
        "prebid smilewanted/unknown-imp-id: imp[1]'s video.mimes is null",
    ),
    3345: ("no_media", "imp[0]", "prebid sovrnXsp/request-no-matching-imp: no media"),
    3389: (
        "required",
        "imp[0].video.mimes",
        "prebid sovrn/missing-all-required-params: video is {}",
    ),
    3391: ("required", "imp[0].video.mimes", "prebid sovrn/no-mimes: video without mimes"),
    3411: (
        "json",
        "imp[0].native.request",
        "prebid sspBC/native: native.request '{json string}' is not JSON",
    ),
    3435: (
        "required",
        "imp[0].native.request.assets",
        "prebid stackadapt/native-adm-invalid (outgoing): a Native request without assets",
    ),
    3436: (
        "required",
        "imp[0].native.request.assets",
        "prebid stackadapt/native-adm-invalid: a Native request without assets",
    ),
    3476: (
        "type",
        "imp[0].native.request",
        "prebid taboola/multiFormatImpressionsRequest (outgoing): the Native request "
        "encoded twice (a JSON string in a string)",
    ),
    3478: (
        "type",
        "imp[0].native.request",
        "prebid taboola/multiFormatImpressionsRequest: the Native request encoded twice "
        "(a JSON string in a string)",
    ),
    3479: (
        "type",
        "imp[0].native.request",
        "prebid taboola/native (outgoing): the Native request encoded twice (a JSON "
        "string in a string)",
    ),
    3480: (
        "type",
        "imp[0].native.request",
        "prebid taboola/native: the Native request encoded twice (a JSON string in a string)",
    ),
    3557: (
        "required",
        "imp[0].native.request.assets",
        "prebid teal/multi-format-imp-mtype (outgoing): a Native request without assets",
    ),
    3558: (
        "required",
        "imp[0].native.request.assets",
        "prebid teal/multi-format-imp-mtype: a Native request without assets",
    ),
    3563: (
        "required",
        "imp[0].native.request.assets",
        "prebid teal/native-imp (outgoing): a Native request without assets",
    ),
    3564: (
        "required",
        "imp[0].native.request.assets",
        "prebid teal/native-imp: a Native request without assets",
    ),
    3577: ("channel", "app", "prebid teal/both-site-and-app (outgoing): site and app both"),
    3578: ("channel", "app", "prebid teal/both-site-and-app: site and app both"),
    3600: (
        "required",
        "imp[0].video.mimes",
        "prebid telaria/requires-seat-code: video without mimes",
    ),
    3601: ("no_media", "imp[0]", "prebid telaria/requires-video-object: no media"),
    3614: (
        "json",
        "imp[0].native.request",
        "prebid theadx/multi-native (outgoing): native.request '{json string 1}' is not JSON",
    ),
    3615: (
        "json",
        "imp[0].native.request",
        "prebid theadx/multi-native: native.request '{json string 1}' is not JSON",
    ),
    3618: (
        "json",
        "imp[0].native.request",
        "prebid theadx/single-native (outgoing): native.request '{json string}' is not JSON",
    ),
    3619: (
        "json",
        "imp[0].native.request",
        "prebid theadx/single-native: native.request '{json string}' is not JSON",
    ),
    3622: (
        "json",
        "imp[0].native.request",
        "prebid theadx/bad-request (outgoing): native.request is an empty string",
    ),
    3623: (
        "json",
        "imp[0].native.request",
        "prebid theadx/bad-request: native.request is an empty string",
    ),
    3624: (
        "json",
        "imp[0].native.request",
        "prebid theadx/empty-response (outgoing): native.request is an empty string",
    ),
    3625: (
        "json",
        "imp[0].native.request",
        "prebid theadx/empty-response: native.request is an empty string",
    ),
    3642: (
        "json",
        "imp[0].native.request",
        "prebid thetradedesk/simple-native (outgoing): native.request is an empty string",
    ),
    3643: (
        "json",
        "imp[0].native.request",
        "prebid thetradedesk/simple-native: native.request is an empty string",
    ),
    3650: (
        "json",
        "imp[0].native.request",
        "prebid thetradedesk/invalid-mtype: native.request is an empty string",
    ),
    3698: ("no_media", "imp[0]", "prebid triplelift/badlyformed: no media"),
    3699: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid triplelift_native/app-msn-no-tag-code (outgoing): Native assets without their ids",
    ),
    3700: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid triplelift_native/app-msn-no-tag-code: Native assets without their ids",
    ),
    3701: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid triplelift_native/app-msn (outgoing): Native assets without their ids",
    ),
    3702: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid triplelift_native/app-msn: Native assets without their ids",
    ),
    3703: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid triplelift_native/app (outgoing): Native assets without their ids",
    ),
    3704: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid triplelift_native/app: Native assets without their ids",
    ),
    3705: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid triplelift_native/site-msn-no-tag-code (outgoing): Native assets without their ids",
    ),
    3706: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid triplelift_native/site-msn-no-tag-code: Native assets without their ids",
    ),
    3707: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid triplelift_native/site-msn (outgoing): Native assets without their ids",
    ),
    3708: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid triplelift_native/site-msn: Native assets without their ids",
    ),
    3709: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid triplelift_native/site (outgoing): Native assets without their ids",
    ),
    3710: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid triplelift_native/site: Native assets without their ids",
    ),
    3711: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid triplelift_native/app-no-publisher: Native assets without their ids",
    ),
    3712: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid triplelift_native/app-publisher-no-domain (outgoing): Native assets "
        "without their ids",
    ),
    3713: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid triplelift_native/app-publisher-no-domain: Native assets without their ids",
    ),
    3716: ("no_media", "imp[0]", "prebid triplelift_native/badlyformed: no media"),
    3717: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid triplelift_native/badresponseext (outgoing): Native assets without their ids",
    ),
    3718: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid triplelift_native/badresponseext: Native assets without their ids",
    ),
    3719: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid triplelift_native/effective-publisher-allowed (outgoing): Native assets "
        "without their ids",
    ),
    3720: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid triplelift_native/effective-publisher-allowed: Native assets without their ids",
    ),
    3721: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid triplelift_native/effective-publisher-not-allowed: Native assets without their ids",
    ),
    3722: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid triplelift_native/no-imp-ext-data (outgoing): Native assets without their ids",
    ),
    3723: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid triplelift_native/no-imp-ext-data: Native assets without their ids",
    ),
    3724: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid triplelift_native/site-no-publisher: Native assets without their ids",
    ),
    3725: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid triplelift_native/site-publisher-no-domain (outgoing): Native assets "
        "without their ids",
    ),
    3726: (
        "required",
        "imp[0].native.request.assets[0].id",
        "prebid triplelift_native/site-publisher-no-domain: Native assets without their ids",
    ),
    3727: (
        "json",
        "imp[0].native.request",
        "prebid trustedstack/simple-native: native.request 'sample-native-request' is not JSON",
    ),
    3816: ("no_media", "imp[0]", "prebid visx/wrong_imp_type (outgoing): no media"),
    3817: ("no_media", "imp[0]", "prebid visx/wrong_imp_type: no media"),
    3875: (
        "required",
        "imp[0].native.request.assets",
        "prebid yandex/native (outgoing): the Native request is {}",
    ),
    3876: (
        "required",
        "imp[0].native.request.assets",
        "prebid yandex/native: the Native request is {}",
    ),
    3882: ("no_media", "imp[1]", "prebid yandex/multiple-imps-some-malformed: imp without media"),
    3889: ("duplicate_imp", "imp[4].id", "prebid yandex/simple-banner-sizes: 'invalid_size' twice"),
    3892: (
        "required",
        "imp[0].audio.mimes",
        "prebid yandex/unknown-mediatype: audio without mimes",
    ),
    3934: ("no_media", "imp[0]", "prebid zentotem/status_400: an imp with only an id"),
    "bsm-openrtb__breq.native.json": (
        "json",
        "imp[0].native.request",
        "the 2.3-era native example: its native.request is a placeholder",
    ),
    "iab-openrtb2.x-impl2.6__bid-request_7-6-pod-bidding-for-video-and-audio-1_repaired.json": (
        "required",
        "id",
        "implementation guide \u00a77.6: a pod-bidding fragment, no request id",
    ),
    "mxmcherry-openrtb__2.5_bid-request_native-ad.json": (
        "json",
        "imp[0].native.request.native.assets[0]",
        "the 2.5 spec's native example: '[ ... ]' stands for its assets",
    ),
}


@functools.cache
def _corpus() -> tuple[tuple[int | str, bytes], ...]:
    """Every bid request of the fixtures: (line number in requests.jsonl, or iab/ file name)."""
    lines = [(number, body) for number, body in enumerate(_lines("requests.jsonl"), start=1)]
    files = [(name, (IAB / name).read_bytes()) for name in IAB_REQUESTS]
    return (*lines, *files)


@functools.cache
def _corpus_outcomes() -> tuple[tuple[int | str, bytes, Outcome, Outcome], ...]:
    return tuple((key, body, *_both(body)) for key, body in _corpus())


@functools.cache
def _accepted_bodies() -> tuple[bytes, ...]:
    """The fixture requests the native parser accepts: the raw material of the mutations."""
    return tuple(body for _, body, native, _ in _corpus_outcomes() if native[0] == "view")


def test_every_spec_example_is_a_bid_request_or_listed_as_something_else() -> None:
    examples = {path.name for path in IAB.glob("*.json")}
    assert len(IAB_REQUESTS) >= 15
    assert examples - set(IAB_REQUESTS) == set(NOT_BID_REQUESTS)
    others = examples - set(IAB_REQUESTS)
    native_documents = {name for name in others if "native" in name and "bid-" not in name}
    assert native_documents, "the Native Ads examples are gone"
    assert all(NOT_BID_REQUESTS[name] in {_NATIVE, _NATIVE_RESPONSE} for name in native_documents)


@pytest.mark.parametrize("name", sorted(NOT_BID_REQUESTS))
def test_a_document_that_is_not_a_bid_request_is_refused_alike(name: str) -> None:
    outcome = _assert_agree((IAB / name).read_bytes())
    assert outcome[0] == "refused"


@pytest.mark.parametrize("name", IAB_REQUESTS)
def test_each_bid_request_of_the_spec_reads_the_same_natively_and_in_python(name: str) -> None:
    _assert_agree((IAB / name).read_bytes())


def test_every_request_of_the_corpus_reads_the_same_natively_and_in_python() -> None:
    problems = [
        f"{key}: {problem}"
        for key, _, native, oracle in _corpus_outcomes()
        if (problem := _disagreement(native, oracle)) is not None
    ]
    shown = "\n\n".join(problems[:5])
    assert not problems, f"{len(problems)} requests read differently, the first ones:\n{shown}"


def test_the_requests_both_refuse_are_exactly_the_listed_ones() -> None:
    refused = {
        key: native[1]
        for key, _, native, oracle in _corpus_outcomes()
        if native[0] == oracle[0] == "refused"
    }
    listed = {key: (rule, path) for key, (rule, path, _) in REFUSED_BY_BOTH.items()}
    unlisted = {key: refused[key] for key in refused.keys() - listed.keys()}
    no_longer = {key: listed[key] for key in listed.keys() - refused.keys()}
    changed = {
        key: f"{listed[key]} -> {refused[key]}"
        for key in refused.keys() & listed.keys()
        if refused[key] != listed[key]
    }
    # Refused but not listed, listed but accepted, refused for another rule or at another path:
    assert (unlisted, no_longer, changed) == ({}, {}, {})


def test_each_listed_refusal_names_its_source() -> None:
    sources = _sources("requests.index.tsv")
    prefixes = {
        "openrtb3-converter": "converter",
        "google-openrtb": "google",
        "prebid-server": "prebid",
    }
    for key, (_, _, why) in REFUSED_BY_BOTH.items():
        if isinstance(key, str):
            assert (IAB / key).is_file()
            continue
        source = sources[key - 1]
        origin = next(short for long, short in prefixes.items() if source.startswith(long))
        assert why.startswith(origin + " "), (key, source, why)
        if origin == "prebid":
            # "prebid admixer/..." for prebid-server__admixer__supplemental__...
            assert source.split("__")[1] in why, (key, source, why)


# --- prebid-server's invalid requests ----------------------------------------------------------

# invalid-requests.jsonl holds requests prebid-server answers with HTTP 400. Each line is in one of
# two tables: refused natively (OpenRTB or Native 1.2 makes them invalid), or valid OpenRTB that
# prebid refuses for its own reasons.

_NO_ASSET_IDS = "Native 1.2: assets without their required id"
_NATIVE_AT = "imp[0].native.request"
INVALID_AND_REFUSED: dict[int, tuple[str, str, str]] = {
    5: (
        "type",
        f"{_NATIVE_AT}.assets[0].img.h",
        "Native 1.2: a negative image height (read before the asset's missing id)",
    ),
    6: (
        "type",
        f"{_NATIVE_AT}.assets[0].img.hmin",
        "Native 1.2: a negative image hmin (read before the asset's missing id)",
    ),
    7: (
        "type",
        f"{_NATIVE_AT}.assets[0].img.wmin",
        "Native 1.2: a negative image wmin (read before the asset's missing id)",
    ),
    8: (
        "required",
        f"{_NATIVE_AT}.assets[0].id",
        f"{_NO_ASSET_IDS} (and a video asset's mimes empty)",
    ),
    9: (
        "required",
        f"{_NATIVE_AT}.assets[0].id",
        f"{_NO_ASSET_IDS} (and a video asset without maxduration)",
    ),
    10: (
        "required",
        f"{_NATIVE_AT}.assets[0].id",
        f"{_NO_ASSET_IDS} (and a video asset without mimes)",
    ),
    11: (
        "required",
        f"{_NATIVE_AT}.assets[0].id",
        f"{_NO_ASSET_IDS} (and a video asset's protocols empty)",
    ),
    12: ("duplicate_asset", f"{_NATIVE_AT}.assets[1].id", "Native 1.2: two assets share the id 1"),
    13: (
        "required",
        f"{_NATIVE_AT}.assets[0].id",
        f"{_NO_ASSET_IDS} (prebid's objection, subtype 21 in context 1, 1.2 allows)",
    ),
    14: (
        "required",
        f"{_NATIVE_AT}.assets[0].id",
        f"{_NO_ASSET_IDS} (prebid's objection, subtype 11 in context 3, 1.2 allows)",
    ),
    15: (
        "required",
        f"{_NATIVE_AT}.assets",
        "Native 1.2: the request document is {}, its assets are required",
    ),
    16: (
        "required",
        f"{_NATIVE_AT}.assets[0].id",
        f"{_NO_ASSET_IDS} (prebid's objection, event 5, is an open code list)",
    ),
    17: (
        "required",
        f"{_NATIVE_AT}.assets[0].id",
        f"{_NO_ASSET_IDS} (prebid's objection, method 3, is an open code list)",
    ),
    18: (
        "required",
        f"{_NATIVE_AT}.assets[0].id",
        f"{_NO_ASSET_IDS} (prebid's objection, context 376, is an open code list)",
    ),
    19: (
        "required",
        f"{_NATIVE_AT}.assets[0].id",
        f"{_NO_ASSET_IDS} (prebid's objection, plcmttype 423, is an open code list)",
    ),
    21: ("type", "imp[0].audio.maxseq", "imp[0].audio.maxseq is -1: a count cannot be negative"),
    22: ("type", "imp[0].audio.sequence", "imp[0].audio.sequence is -1"),
    24: ("type", "imp[0].banner.w", "imp[0].banner.w is -1: a size cannot be negative"),
    30: ("type", "device.geo.accuracy", "device.geo.accuracy is -1 (meters)"),
    31: ("type", "device.h", "device.h is -1"),
    32: ("type", "device.w", "device.w is -1"),
    34: ("type", "imp[0].banner.format[0].h", "imp[0].banner.format[0].h is -1"),
    35: ("type", "imp[0].banner.format[0].hratio", "imp[0].banner.format[0].hratio is -1"),
    40: ("duplicate_imp", "imp[1].id", "two imps share the id some-impression-id"),
    42: ("no_media", "imp[0]", "the imp offers an empty metric and no media object"),
    43: ("required", _NATIVE_AT, "imp[0].native is {}: native.request is required"),
    44: (
        "channel",
        "app",
        "site and app both: a request carries at most one of site, app and dooh",
    ),
    45: (
        "channel",
        "dooh",
        "site and dooh both: a request carries at most one of site, app and dooh",
    ),
    50: ("type", "user.geo.accuracy", "user.geo.accuracy is -1"),
    51: ("required", "imp[0].video.mimes", "imp[0].video is {}: video.mimes is required"),
    52: ("type", "imp[0].video.h", "imp[0].video.h is -1"),
    53: ("type", "imp[0].video.maxbitrate", "imp[0].video.maxbitrate is -1"),
    54: (
        "required",
        "imp[0].video.mimes",
        "imp[0].video.mimes is empty: at least one MIME type is required",
    ),
    55: ("type", "imp[0].video.w", "imp[0].video.w is -1"),
}

SPEC_ALLOWS: dict[int, str] = {
    1: "prebid config: the publisher's account is disabled",
    2: "prebid config: the app is on the blocklist",
    3: "prebid ext: ext.prebid.currency has an unusable rate (FOO)",
    4: "prebid config: the bidder named in imp.ext is disabled",
    20: "prebid ext: ext.prebid.aliases maps to an unknown core bidder",
    23: "banner.hmin: a 2.5 field (removed in 2.6), still valid 2.5",
    25: "banner with w and no h: OpenRTB only recommends the pair",
    26: "banner.wmax: a 2.5 field (removed in 2.6), still valid 2.5",
    27: "banner.wmin: a 2.5 field (removed in 2.6), still valid 2.5",
    28: "prebid ext: bidadjustmentfactors for an unknown bidder",
    29: "prebid ext: ext.prebid.cache asks to cache nothing",
    33: "banner.format[0] is {}: every Format field is optional in OpenRTB",
    36: "format with wratio and no hratio: OpenRTB does not require the pair",
    37: "format with both w and wratio: OpenRTB does not forbid it",
    38: "prebid: imp.ext names no bidder",
    39: "prebid: imp.ext names an unknown bidder",
    41: "prebid ext: device.ext.prebid.interstitial minwidthperc 120",
    46: "site is {}: OpenRTB only recommends site.id",
    47: "prebid ext: site.ext.amp = 2",
    48: "prebid ext: ext.prebid.storedrequest.id is an integer",
    49: "prebid ext: user.ext.prebid.buyeruids names an unknown bidder",
}

# The Native lines whose assets lack ids, with the ids added: what the native parser says then
# (None: accepted; the codes prebid objects to are open lists in Native 1.2).
WITH_ASSET_IDS: dict[int, tuple[str, str] | None] = {
    5: ("type", f"{_NATIVE_AT}.assets[0].img.h"),
    6: ("type", f"{_NATIVE_AT}.assets[0].img.hmin"),
    7: ("type", f"{_NATIVE_AT}.assets[0].img.wmin"),
    8: ("required", f"{_NATIVE_AT}.assets[0].video.mimes"),
    9: ("required", f"{_NATIVE_AT}.assets[0].video.maxduration"),
    10: ("required", f"{_NATIVE_AT}.assets[0].video.mimes"),
    11: ("required", f"{_NATIVE_AT}.assets[0].video.protocols"),
    13: None,
    14: None,
    16: None,
    17: None,
    18: None,
    19: None,
}


def _invalid_request(line: int) -> bytes:
    return _lines("invalid-requests.jsonl")[line - 1]


def _invalid_id(line: int) -> str:
    name = _sources("invalid-requests.index.tsv")[line - 1]
    return f"{line}-{name.removesuffix('.json').split('__')[-1]}"


def test_every_invalid_request_is_in_exactly_one_table() -> None:
    tables = [INVALID_AND_REFUSED, SPEC_ALLOWS]
    lines = [line for table in tables for line in table]
    assert sorted(lines) == list(range(1, len(_lines("invalid-requests.jsonl")) + 1))


_FORBIDDEN = [pytest.param(line, id=_invalid_id(line)) for line in INVALID_AND_REFUSED]


@pytest.mark.parametrize("line", _FORBIDDEN)
def test_an_invalid_request_openrtb_forbids_is_refused_with_a_path(line: int) -> None:
    body = _invalid_request(line)
    with pytest.raises(InvalidRequestError) as caught:
        bidcore.validate_request(body)
    err = caught.value
    assert err.path != "$"
    assert str(err).startswith(f"{err.path}: ")
    assert (err.rule, err.path) == INVALID_AND_REFUSED[line][:2]
    _assert_agree(body)


def _with_asset_ids(body: bytes) -> bytes:
    """``body`` with ids 1, 2, ... given to the assets of its (string) Native request."""
    request = json.loads(body)
    native = request["imp"][0]["native"]
    document = json.loads(native["request"])
    assert all("id" not in asset for asset in document["assets"])
    document["assets"] = [{"id": k, **asset} for k, asset in enumerate(document["assets"], 1)]
    native["request"] = json.dumps(document)
    return json.dumps(request).encode()


@pytest.mark.parametrize("line", [pytest.param(n, id=_invalid_id(n)) for n in WITH_ASSET_IDS])
def test_a_native_line_with_its_asset_ids_added_is_judged_on_what_it_tests(line: int) -> None:
    assert INVALID_AND_REFUSED[line][1].endswith((".assets[0].id", ".img.h", ".hmin", ".wmin"))
    outcome = _assert_agree(_with_asset_ids(_invalid_request(line)))
    expected = WITH_ASSET_IDS[line]
    if expected is None:
        assert outcome[0] == "view"
    else:
        assert outcome == ("refused", expected)


@pytest.mark.parametrize("line", [pytest.param(n, id=_invalid_id(n)) for n in SPEC_ALLOWS])
def test_an_invalid_request_the_spec_allows_is_accepted(line: int) -> None:
    body = _invalid_request(line)
    assert bidcore.validate_request(body) is None
    assert _assert_agree(body)[0] == "view"


# --- Generated requests ------------------------------------------------------------------------


@settings(MUTATIONS, max_examples=100)
@given(bid_requests())
def test_a_generated_request_reads_natively_as_the_oracle_reads_it(request: BidRequest) -> None:
    body = encode_request(request)
    assert bidcore.validate_request(body) is None
    native, oracle = _both(body)
    assert native[0] == oracle[0] == "view", _disagreement(native, oracle)
    assert native[1] == oracle[1], _view_diff(native[1], oracle[1])


# --- Real requests, broken on purpose ----------------------------------------------------------

_bodies = st.deferred(lambda: st.sampled_from(_accepted_bodies()))
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")

JsonPath = tuple[str | int, ...]


def _render(path: JsonPath) -> str:
    text = ""
    for segment in path:
        text += f"[{segment}]" if isinstance(segment, int) else f".{segment}" if text else segment
    return text


def _parse_path(path: str) -> JsonPath:
    return tuple(key if key else int(index) for key, index in _SEGMENT.findall(path))


def _read_fields(doc: Any, view: Any, path: JsonPath = ()) -> Iterator[tuple[JsonPath, Any]]:
    """``(path, value the view shows)`` for every field of ``doc`` the native parser reads
    (kept-whole values excluded: ``ext`` and ``native.request``)."""
    for key, value in doc.items():
        if key not in view or key == "ext" or (key == "request" and path[-1:] == ("native",)):
            continue
        yield (*path, key), view[key]
        yield from _inside(value, view[key], (*path, key))


def _inside(value: Any, shown: Any, path: JsonPath) -> Iterator[tuple[JsonPath, Any]]:
    if isinstance(value, dict) and isinstance(shown, dict):
        yield from _read_fields(value, shown, path)
    elif isinstance(value, list) and isinstance(shown, list):
        for index, (item, shown_item) in enumerate(zip(value, shown, strict=True)):
            yield (*path, index), shown_item
            yield from _inside(item, shown_item, (*path, index))


def _with(doc: Any, path: JsonPath, value: Any) -> Any:
    """A copy of ``doc`` with ``value`` at ``path`` (the last key may be new)."""
    doc = copy.deepcopy(doc)
    parent = doc
    for segment in path[:-1]:
        parent = parent[segment]
    parent[path[-1]] = value
    return doc


def _at(doc: Any, path: JsonPath) -> Any:
    for segment in path:
        doc = doc[segment]
    return doc


def _targets(body: bytes) -> list[tuple[str, JsonPath]]:
    """Where to put a value in a request: ``field`` (a string or number field the parser reads),
    ``unknown`` (a new key in an object it reads) or ``ext`` (a new key in an ``ext`` object)."""
    doc = json.loads(body)
    view = bidcore.inspect_request(body)
    fields = list(_read_fields(doc, view))
    targets = [("field", path) for path, shown in fields if isinstance(shown, int | float | str)]
    objects = [(), *(path for path, shown in fields if isinstance(shown, dict))]
    targets += [("unknown", (*path, "zz_unknown")) for path in objects]
    targets += [
        ("ext", (*path, "ext", "zz_unknown"))
        for path in objects
        if isinstance(_at(doc, path).get("ext"), dict)
    ]
    return targets


_MARKER = "__bidcore_test_marker__"


def _spliced(body: bytes, path: JsonPath, text: str) -> bytes:
    """``body`` with the JSON ``text`` (valid JSON or not) at ``path``."""
    encoded = json.dumps(_with(json.loads(body), path, _MARKER))
    assert encoded.count(f'"{_MARKER}"') == 1
    return encoded.replace(f'"{_MARKER}"', text).encode()


@MUTATIONS
@given(_bodies, st.data())
def test_a_truncated_request_is_refused_as_malformed_json(body: bytes, data: st.DataObject) -> None:
    cut = body[: data.draw(st.integers(0, len(body) - 1), label="cut")]
    native, oracle = _both(cut)
    assert native[0] == oracle[0] == "refused", _disagreement(native, oracle)
    assert native[1][0] == oracle[1][0] == "json", (native, oracle)


@settings(MUTATIONS, max_examples=1000)
@given(_bodies, st.data())
def test_a_request_with_bytes_flipped_is_judged_alike(body: bytes, data: st.DataObject) -> None:
    mutated = bytearray(body)
    flips = st.tuples(st.integers(0, len(body) - 1), st.integers(0, 255))
    for at, byte in data.draw(st.lists(flips, min_size=1, max_size=4), label="flips"):
        mutated[at] = byte
    native, oracle = _both(bytes(mutated))
    _assert_same_verdict(bytes(mutated), native, oracle)


_WRONG_TYPES: dict[type, list[Any]] = {
    int: ["7", 7.5, 1e3, True, [7], {"n": 7}],
    float: ["7.5", True, [7.5], {"n": 7.5}],
    str: [7, 7.5, True, ["x"], {"s": "x"}],
    list: ["x", 7, True, {"n": 7}],
    dict: ["x", 7, True, [7], []],
}


@MUTATIONS
@given(_bodies, st.data())
def test_a_field_of_the_wrong_type_is_refused_at_its_path(body: bytes, data: st.DataObject) -> None:
    doc = json.loads(body)
    fields = list(_read_fields(doc, bidcore.inspect_request(body)))
    path, shown = data.draw(st.sampled_from(fields), label="field")
    wrong = data.draw(st.sampled_from(_WRONG_TYPES[type(shown)]), label="value")
    mutated = json.dumps(_with(doc, path, wrong)).encode()
    native = _assert_agree(mutated)
    assert native == ("refused", ("type", _render(path)))


_VALID_NUMBERS = [
    "1e999",
    "-1e400",
    "1E+400",
    "1" + "0" * 400,
    "123456789012345678901234567890",
    "-123456789012345678901234567890",
    "2147483648",
    "-2147483649",
    "1e308",
    "-0",
    "4.9e-324",
]
_OUT_OF_RANGE = {"1e999", "-1e400", "1E+400", "1" + "0" * 400}
_NOT_JSON = ["NaN", "Infinity", "-Infinity", "+1", ".5", "0x10"]


@settings(MUTATIONS, max_examples=500)
@given(_bodies, st.data())
def test_huge_and_non_finite_numbers_are_judged_alike(body: bytes, data: st.DataObject) -> None:
    kind, path = data.draw(st.sampled_from(_targets(body)), label="where")
    number = data.draw(st.sampled_from(_VALID_NUMBERS + _NOT_JSON), label="number")
    mutated = _spliced(body, path, number)
    if number in _NOT_JSON:
        native, oracle = _both(mutated)
        assert native[0] == oracle[0] == "refused", _disagreement(native, oracle)
        return
    native = _assert_agree(mutated)
    if kind != "field" and number in _OUT_OF_RANGE:
        # Skipped or kept whole, a number that no float can hold is still refused.
        assert native[0] == "refused"
        assert native[1][0] == "json"


def _nested(depth: int, shape: str) -> str:
    if shape == "arrays":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "0" + "}" * depth


@MUTATIONS
@given(_bodies, st.data())
def test_deep_nesting_is_judged_alike(body: bytes, data: st.DataObject) -> None:
    kind, path = data.draw(st.sampled_from(_targets(body)), label="where")
    depth = data.draw(st.integers(1, 120), label="depth")
    shape = data.draw(st.sampled_from(["arrays", "objects"]), label="shape")
    mutated = _spliced(body, path, _nested(depth, shape))
    native = _assert_agree(mutated)
    # The value sits in len(path) containers (the request object is the first).
    if len(path) + depth > bidcore.Limits().max_depth:
        # Too deep, even where a string or a number belongs: the reader checks that a value of
        # the wrong type is JSON within the limits before it calls it the wrong type.
        assert native[0] == "refused"
        assert native[1][0] == "depth"
    elif kind == "field":
        assert native == ("refused", ("type", _render(path)))
    else:
        assert native[0] == "view"


_NOT_UTF8 = [
    b"\xff",
    b"\xfe",
    b"\x80",
    b"\xc3",
    b"\xe2\x82",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xf8\x88\x80\x80\x80",
]


@MUTATIONS
@given(_bodies, st.data())
def test_invalid_utf8_is_refused_where_it_is(body: bytes, data: st.DataObject) -> None:
    at = data.draw(st.integers(0, len(body)), label="at")
    mutated = body[:at] + data.draw(st.sampled_from(_NOT_UTF8), label="bytes") + body[at:]
    with pytest.raises(UnicodeDecodeError):
        mutated.decode()
    native, oracle = _both(mutated)
    # Checked before parsing, and named from the byte offset, by both.
    assert native == oracle
    assert native[0] == "refused"
    assert native[1][0] == "json"


@settings(MUTATIONS, max_examples=100)
@given(_bodies, st.data())
def test_a_body_over_the_size_limit_is_refused_before_anything_else(
    body: bytes, data: st.DataObject
) -> None:
    broken = data.draw(st.sampled_from([body, body[:-1], body + b"\xff", b"\x00" + body]))
    limit = data.draw(st.integers(0, len(broken) - 1), label="max_body_bytes")
    limits = bidcore.Limits(max_body_bytes=limit)
    assert _assert_agree(broken, limits) == ("refused", ("body_size", "$"))
    at_the_limit = bidcore.Limits(max_body_bytes=len(broken))
    assert _native(broken, at_the_limit) == _native(broken)


_STRING_LIMIT = bidcore.Limits().max_string_bytes


@settings(MUTATIONS, max_examples=100)
@given(_bodies, st.data())
def test_a_string_over_the_length_limit_is_judged_alike(body: bytes, data: st.DataObject) -> None:
    kind, path = data.draw(st.sampled_from(_targets(body)), label="where")
    if kind == "field":
        assume(isinstance(_at(json.loads(body), path), str))
    # Written length: escapes count as written (`\"` is two bytes, `\u00e9` six).
    tail = data.draw(st.text(alphabet='x"\\\né', max_size=6), label="tail")
    filler = data.draw(st.integers(_STRING_LIMIT - 12, _STRING_LIMIT + 2), label="filler")
    value = "x" * filler + tail
    written = len(json.dumps(value)) - 2
    as_key = kind != "field" and data.draw(st.booleans(), label="as a key")
    if as_key:
        mutated = json.dumps(_with(json.loads(body), (*path[:-1], value), 1)).encode()
    else:
        mutated = json.dumps(_with(json.loads(body), path, value)).encode()
    native = _assert_agree(mutated)
    if written <= _STRING_LIMIT:
        # Accepted, unless the string went where a currency code belongs.
        assert native[0] == "view" or native[1][0] == "currency", native
        return
    assert native[0] == "refused"
    assert native[1][0] == "string_length"
    if kind == "field":
        assert native[1][1] == _render(path)
    elif kind == "unknown":
        # A key names its object; a skipped value, its own key.
        assert native[1][1] == (_render(path[:-1] if as_key else path) or "$")


# --- Native requests, broken on purpose ----------------------------------------------------------


@functools.cache
def _native_imps() -> tuple[tuple[bytes, int], ...]:
    """Accepted fixture requests with a Native request: (body, index of the first native imp)."""
    found = []
    for body in _accepted_bodies():
        imps = json.loads(body).get("imp") or []
        native = [i for i, imp in enumerate(imps) if imp.get("native")]
        if native:
            found.append((body, native[0]))
    return tuple(found)


class _Repeated(list[tuple[str, Any]]):
    """An object written with its keys as listed, repeats included."""


def _dumps(value: Any) -> str:
    if isinstance(value, _Repeated):
        members = ",".join(f"{json.dumps(key)}:{_dumps(item)}" for key, item in value)
        return "{" + members + "}"
    if isinstance(value, dict):
        return _dumps(_Repeated(value.items()))
    if isinstance(value, list):
        return "[" + ",".join(_dumps(item) for item in value) + "]"
    return json.dumps(value)


def _nodes(value: Any, path: JsonPath = ()) -> Iterator[JsonPath]:
    """The path of every member and element inside ``value``."""
    children = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in children:
        yield (*path, key)
        if isinstance(item, dict | list):
            yield from _nodes(item, (*path, key))


_NATIVE_VALUES = [None, -1, 0, 7, 1.5, "x", "", True, [], [1], {}, {"id": 1}, 2**31, -(2**31) - 1]


def _broken_native_document(document: dict[str, Any], data: st.DataObject) -> Any:
    """``document`` with one thing changed: a value replaced or removed, an asset repeated, a
    key given twice, or Native 1.0's wrapper added."""
    nodes = list(_nodes(document))
    kinds = ["replace", "remove", "repeat a key", "wrap"]
    if isinstance(document.get("assets"), list) and document["assets"]:
        kinds.append("repeat an asset")
    kind = data.draw(st.sampled_from(kinds if nodes else ["wrap"]), label="change")
    if kind == "wrap":
        return {"native": document}
    if kind == "repeat an asset":
        asset = data.draw(st.sampled_from(document["assets"]), label="asset")
        return {**document, "assets": [*document["assets"], asset]}
    path = data.draw(st.sampled_from(nodes), label="where")
    parent = _at(document, path[:-1])
    if kind == "replace":
        return _with(document, path, data.draw(st.sampled_from(_NATIVE_VALUES), label="value"))
    if kind == "remove":
        changed = copy.deepcopy(document)
        del _at(changed, path[:-1])[path[-1]]
        return changed
    if not isinstance(parent, dict):
        return document
    # The key at `path` given again (first or last) with another value.
    twice = data.draw(st.sampled_from(_NATIVE_VALUES), label="other value")
    pairs = _Repeated(parent.items())
    pairs.insert(data.draw(st.sampled_from([0, len(pairs)]), label="at"), (path[-1], twice))
    if not path[:-1]:
        return pairs
    changed = copy.deepcopy(document)
    holder = _at(changed, path[:-2])
    holder[path[-2]] = pairs
    return changed


@settings(MUTATIONS, max_examples=500)
@given(st.deferred(lambda: st.sampled_from(_native_imps())), st.data())
def test_a_native_request_broken_on_purpose_is_judged_alike(
    found: tuple[bytes, int], data: st.DataObject
) -> None:
    body, i = found
    request = json.loads(body)
    native = request["imp"][i]["native"]
    sent = native["request"]
    document = json.loads(sent) if isinstance(sent, str) else sent
    text = _dumps(_broken_native_document(document, data))
    if data.draw(st.booleans(), label="as a string"):
        if data.draw(st.booleans(), label="bytes flipped"):
            flips = data.draw(st.lists(st.integers(0, len(text) - 1), min_size=1, max_size=2))
            for at in flips:
                text = text[:at] + data.draw(st.sampled_from(list('{}[]",:0a -'))) + text[at + 1 :]
        text = json.dumps(text)
    native["request"] = _MARKER
    mutated = json.dumps(request).replace(f'"{_MARKER}"', text).encode()
    _assert_agree(mutated)


@pytest.mark.parametrize(
    "name", sorted(n for n, what in NOT_BID_REQUESTS.items() if what == _NATIVE)
)
def test_each_native_request_example_of_the_spec_is_a_valid_native_request(name: str) -> None:
    document = (IAB / name).read_text()
    for sent in (document, json.loads(document)):
        body = json.dumps({"id": "r", "imp": [{"id": "1", "native": {"request": sent}}]})
        assert _assert_agree(body.encode())[0] == "view", name


# --- The reader's rules, one example each --------------------------------------------------------

_BANNER = '{"id":"r","imp":[{"id":"1","banner":{}%s}]%s}'


def _body(imp: str = "", rest: str = "") -> bytes:
    """A valid request with ``imp`` added to its imp and ``rest`` to the request."""
    return (_BANNER % (imp, rest)).encode()


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (b'["r",[{"id":"1","banner":{}}]]', "$"),
        (b'{"id":"r","imp":[["1",{}]]}', "imp[0]"),
        (b'{"id":"r","imp":[{"id":"1","banner":[300,250]}]}', "imp[0].banner"),
        (_body(rest=',"regs":[1,"1YNN"]'), "regs"),
        (_body(rest=',"device":{"geo":[48.8,2.3]}'), "device.geo"),
        (_body(imp=',"pmp":{"deals":[["d1",1.5]]}'), "imp[0].pmp.deals[0]"),
    ],
)
def test_an_object_sent_as_an_array_is_refused(body: bytes, path: str) -> None:
    assert _assert_agree(body) == ("refused", ("type", path))


@pytest.mark.parametrize("request_", ["5", "[1,2]", "true", "1.5"])
def test_a_native_request_that_is_neither_a_string_nor_an_object_is_refused(request_: str) -> None:
    body = b'{"id":"r","imp":[{"id":"1","native":{"request":' + request_.encode() + b"}}]}"
    assert _assert_agree(body) == ("refused", ("type", "imp[0].native.request"))


def test_values_kept_whole_are_shown_exactly_as_they_arrived() -> None:
    native_request = (
        '{"ver" : "1.2", "assets":[ {"id":1, "title":{"len":90}, "img":null,'
        ' "ext":[null, 1.50, 1E2, -0.0]} ]}'
    )
    imp_ext = '{ "a" : null , "b":[ -0.0 ,1e-2, 12345678901234567890123]}'
    request_ext = '"caf\\u00e9 \\ud83d\\ude00"'
    body = _body(
        imp=f',"native":{{"request":{native_request}}},"ext":{imp_ext}',
        rest=f',"ext":{request_ext}',
    )
    shown = bidcore.RequestParser().inspect_json(body)
    for text in (native_request, imp_ext, request_ext):
        assert text.encode() in shown  # byte for byte: spacing, nulls, number spelling
    view = _assert_agree(body)[1]
    assert view["imp"][0]["ext"] == {"a": None, "b": [-0.0, 0.01, 12345678901234567890123]}
    assert view["ext"] == "caf\u00e9 \U0001f600"
    string_request = json.dumps(native_request)
    view = _assert_agree(_body(imp=f',"native":{{"request":{string_request}}}'))[1]
    assert view["imp"][0]["native"] == {"request": native_request}


@pytest.mark.parametrize(
    "body",
    [
        _body(rest=',"zz":1e400'),
        _body(rest=',"zz":{"a":[0,-1e400]}'),
        _body(rest=',"site":{"zz":1E+999}'),
        _body(rest=',"ext":{"n":1e400}'),
        _body(imp=',"ext":[1' + "0" * 400 + "]"),
        _body(rest=',"regs":{"ext":{"zz":1e400}}'),
        _body(rest=',"regs":{"ext":[1e400]}'),
        _body(imp=',"native":{"request":{"n":1e400}}'),
        _body(imp=',"bidfloor":1e400'),
    ],
)
def test_a_number_no_float_can_hold_is_refused_wherever_it_is(body: bytes) -> None:
    outcome = _assert_agree(body)
    assert outcome[0] == "refused"
    assert outcome[1][0] == "json"


def test_a_number_too_large_where_an_integer_belongs_has_the_wrong_type() -> None:
    for number in ["1e400", "-1e999", "1" + "0" * 400, "123456789012345678901234567890"]:
        body = _body(imp=f',"secure":{number}')
        assert _assert_agree(body) == ("refused", ("type", "imp[0].secure")), number


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (_body(rest=r',"zz":"\ud800"'), "zz"),
        (_body(rest=r',"ext":{"k":["\udfff"]}'), "ext"),
        (_body(rest=r',"site":{"page":"a\ud800b"}'), "site.page"),
        (_body(rest=r',"site":{"\udc00":1}'), "site"),
        (_body(rest=r',"user":{"ext":{"consent":"\ud83d"}}'), "user.ext.consent"),
        (_body(rest=r',"user":{"id":"\ud83d\ud83d"}'), "user.id"),
    ],
)
def test_a_lone_surrogate_escape_is_refused_wherever_it_is(body: bytes, path: str) -> None:
    assert _assert_agree(body)[0] == "refused"
    assert _native(body) == ("refused", ("json", path))


def test_a_surrogate_pair_is_one_character() -> None:
    view = _assert_agree(_body(rest=r',"site":{"page":"\ud83d\ude00"}'))[1]
    assert view["site"] == {"page": "\U0001f600"}


# --- Fields given twice, malformed values where a value is read ---------------------------------

_TWICE = [
    ('{"id":"r","imp":[{"id":"1","banner":{"w":%s,"w":%s}}]}', "imp[0].banner.w"),
    ('{"id":%s,"id":%s,"imp":[{"id":"1","banner":{}}]}', "id"),
    ('{"id":"r","imp":[{"id":"1","banner":{}}],"regs":%s,"regs":%s}', "regs"),
    ('{"id":"r","imp":[{"id":"1","banner":{}}],"regs":{"ext":%s,"ext":%s}}', "regs.ext"),
]
_VALUES = {"imp[0].banner.w": "300", "id": '"r"', "regs": '{"gdpr":1}', "regs.ext": '{"gdpr":1}'}
_NOT_SET = {"imp[0].banner.w": "null", "id": "null", "regs": "null", "regs.ext": '"x"'}


@pytest.mark.parametrize(("template", "path"), _TWICE, ids=[path for _, path in _TWICE])
def test_a_field_given_twice_is_refused_at_its_path(template: str, path: str) -> None:
    for first, second in [(_VALUES[path], _VALUES[path]), (_VALUES[path], _NOT_SET[path])]:
        body = (template % (first, second)).encode()
        assert _assert_agree(body) == ("refused", ("type", path)), body


@pytest.mark.parametrize(("template", "path"), _TWICE, ids=[path for _, path in _TWICE])
def test_a_field_given_twice_null_first_is_refused_too(template: str, path: str) -> None:
    # A first value that leaves the field unset (null; for a 2.5 ext, anything but an object)
    # still counts: the reader records which keys an object has used, not which it kept.
    for first, second in [(_NOT_SET[path], _VALUES[path]), (_NOT_SET[path], _NOT_SET[path])]:
        body = (template % (first, second)).encode()
        assert _assert_agree(body) == ("refused", ("type", path)), body


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("secure", "tru", "imp[0].secure"),
        ("bidfloor", "fals", "imp[0].bidfloor"),
        ("banner", "-{}", "imp[0].banner"),
        ("tagid", "-x", "imp[0].tagid"),
        ("secure", '"1', "imp[0].secure"),
        ("secure", "[1,]", "imp[0].secure"),
        ("tagid", '["\\u00"]', "imp[0].tagid"),
        ("banner", "[1e400]", "imp[0].banner"),
        # Read into, so named deeper: the element of `deals` that is not a value.
        ("pmp", '{"deals":[}', "imp[0].pmp.deals[0]"),
    ],
)
def test_malformed_json_where_a_value_is_read_is_a_json_error(
    field: str, value: str, path: str
) -> None:
    body = f'{{"id":"r","imp":[{{"id":"1","{field}":{value}}}]}}'.encode()
    with pytest.raises(json.JSONDecodeError):
        json.loads(body, parse_float=_finite)
    assert _native(body) == ("refused", ("json", path))
    # The oracle says json too, at `$` or at the value (malformed JSON is named differently).
    assert _oracle(body)[1][0] == "json"


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise json.JSONDecodeError("number out of range", text, 0)
    return number


def test_a_value_of_the_wrong_type_followed_by_garbage_has_the_wrong_type() -> None:
    # The reader checks that the value itself is JSON; what follows it comes after, in order.
    for value in ["0x10", "truex", "{}x", "[1]]"]:
        body = _body(imp=f',"tagid":{value}')
        assert _assert_agree(body) == ("refused", ("type", "imp[0].tagid")), value


def test_what_comes_before_malformed_json_is_reported_first() -> None:
    # A field given twice, a value of the wrong type: the reader meets them before the garbage.
    twice = b'{"id":"r","imp":[{"id":"1","banner":{},"banner":-{}}]}'
    assert _assert_agree(twice) == ("refused", ("type", "imp[0].banner"))
    deep = b'{"id":"r","imp":[{"id":"1","banner":{"w":null,"w":1}}],"x":[1,]}'
    assert _assert_agree(deep) == ("refused", ("type", "imp[0].banner.w"))
    # msgspec sees a malformed number; the reader the number 0 where a string belongs.
    assert _assert_agree(_body(imp=',"tagid":01')) == ("refused", ("type", "imp[0].tagid"))
    assert _assert_agree(_body(imp=',"secure":01'))[1][0] == "json"
