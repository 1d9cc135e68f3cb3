"""The pure-Python OpenRTB layer: the msgspec model, its codecs, and the reference pipeline
(validation, normalized view, limits) the native core is compared with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from bidcore.errors import InvalidRequestError
from bidcore.openrtb import (
    INT32_MAX,
    INT32_MIN,
    BidRequest,
    BidResponse,
    DeviceType,
    Limits,
    NativeRequest,
    NativeResponse,
    NoBidReason,
    Protocol,
    check_body,
    decode_native_request,
    decode_native_response,
    decode_request,
    decode_response,
    encode_native_request,
    encode_native_response,
    encode_request,
    encode_response,
    inspect_request_py,
    normalized_view,
    validate_request,
)
from bidcore.openrtb.limits import path_at_offset
from bidcore.testing.strategies import bid_requests

FIXTURES = Path(__file__).parent / "fixtures" / "openrtb"
IAB = FIXTURES / "iab"


def _lines(name: str) -> list[bytes]:
    return [line for line in (FIXTURES / name).read_bytes().splitlines() if line]


def _index(name: str) -> list[str]:
    """The source file name of each line of a ``.jsonl`` fixture (from its ``.index.tsv``)."""
    rows = (FIXTURES / name).read_text().splitlines()[1:]
    return [row.split("\t")[1] for row in rows]


def _rejection(body: bytes | str, decode: Any = decode_request) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as caught:
        decode(body)
    return caught.value


def _request(**fields: Any) -> bytes:
    """A minimal valid request with ``fields`` added (or replaced)."""
    body: dict[str, Any] = {"id": "r1", "imp": [{"id": "1", "banner": {"w": 300, "h": 250}}]}
    body.update(fields)
    return json.dumps(body).encode()


def _imp_request(**imp_fields: Any) -> bytes:
    """A minimal valid request whose only imp has ``imp_fields`` added."""
    return _request(imp=[{"id": "1", "banner": {}, **imp_fields}])


# --- The specification's own examples ----------------------------------------------------------

_DOCUMENTS = [
    (("bid-request", "breq"), decode_request, encode_request),
    (("bid-response", "bres"), decode_response, encode_response),
    (("_request", "native_request"), decode_native_request, encode_native_request),
    (("_response", "native_response"), decode_native_response, encode_native_response),
]


def _codecs_for(name: str) -> tuple[Any, Any]:
    # Order matters: "bid-request" names also contain "_request"-like words.
    for markers, decode, encode in _DOCUMENTS:
        if any(marker in name for marker in markers):
            return decode, encode
    raise AssertionError(f"no codec for fixture {name}")


@pytest.mark.parametrize("path", sorted(IAB.glob("*.json")), ids=lambda p: p.name)
def test_every_spec_example_decodes_and_round_trips(path: Path) -> None:
    decode, encode = _codecs_for(path.name)
    document = decode(path.read_bytes())
    assert decode(encode(document)) == document


def test_the_spec_examples_cover_every_document_kind() -> None:
    kinds = {type(_codecs_for(p.name)[0](p.read_bytes())) for p in IAB.glob("*.json")}
    assert kinds == {BidRequest, BidResponse, NativeRequest, NativeResponse}


def test_the_pod_bidding_fragment_decodes_but_lacks_an_id() -> None:
    name = "iab-openrtb2.x-impl2.6__bid-request_7-6-pod-bidding-for-video-and-audio-1_repaired.json"
    request = decode_request((IAB / name).read_bytes())
    assert request.imp is not None
    assert request.imp[0].video is not None
    assert request.imp[0].video.podid == "preroll_pod"
    with pytest.raises(InvalidRequestError) as caught:
        validate_request(request)
    assert (caught.value.rule, caught.value.path) == ("required", "id")


# --- The corpus --------------------------------------------------------------------------------

# Responses in the corpus that break OpenRTB's types on purpose (prebid-server's tests of broken
# bidder responses) or by accident (test data of a lenient converter): refused with rule "type".
_MISTYPED_RESPONSES = {
    "openrtb3-converter__response__RESPONSE_NATIVE_SITE_24.json": "seatbid[0].bid[0].api",
    "openrtb3-converter__response__RESPONSE_VAST_SITE_24.json": "seatbid[0].bid[0].api",
    "openrtb3-converter__response__TC5001_banner__input.json": "id",
    "prebid-server__aduptech__supplemental__broken-response__mockResponse0.json": (
        "seatbid[0].bid[0].id"
    ),
    "prebid-server__apacdex__supplemental__invalid-response-unmarshall-error__mockResponse0.json": (
        "seatbid[0].bid[0].w"
    ),
    "prebid-server__beintoo__supplemental__invalid-response-unmarshall-error__mockResponse0.json": (
        "seatbid[0].bid[0].w"
    ),
    "prebid-server__fwssp__supplemental__invalid_bid_response__mockResponse0.json": (
        "seatbid[0].bid[0].adid"
    ),
    "prebid-server__mobkoi__supplemental__bad-response__mockResponse0.json": "seatbid[0].bid",
    "prebid-server__pulsepoint__supplemental__bad-bid-data__mockResponse0.json": (
        "seatbid[0].bid[0].w"
    ),
    "prebid-server__seedtag__supplemental__response_unmarshal_error__mockResponse0.json": (
        "seatbid[0].bid[0].mtype"
    ),
    "prebid-server__trustedstack__supplemental__valid-req-200-incorrect-response-format__mockResponse0.json": (  # noqa: E501
        "seatbid[0].bid[0].price"
    ),
}


def test_every_response_of_the_corpus_decodes_unless_mistyped() -> None:
    names = _index("responses.index.tsv")
    bodies = _lines("responses.jsonl")
    assert len(names) == len(bodies)
    refused = {}
    for name, body in zip(names, bodies, strict=True):
        try:
            response = decode_response(body)
        except InvalidRequestError as err:
            refused[name] = (err.rule, err.path)
        else:
            assert decode_response(encode_response(response)) == response, name
    assert refused == {name: ("type", path) for name, path in _MISTYPED_RESPONSES.items()}


def test_native_markup_sent_as_an_object_is_accepted() -> None:
    # Google's OpenRTB library writes a native bid's adm as the Native response object.
    body = b'{"id":"1","seatbid":[{"bid":[{"id":"b","impid":"1","price":1,"adm":{"ver":"1.2"}}]}]}'
    (seat,) = decode_response(body).seatbid or []
    assert (seat.bid or [])[0].adm == {"ver": "1.2"}


def test_the_reference_accepts_the_corpus_as_the_core_expects() -> None:
    # rust/bidcore-core/tests/corpus.rs asserts the native core accepts more than 3,500 (site
    # and app together, video without MIME types and invalid Native documents are refused).
    accepted = 0
    for body in _lines("requests.jsonl"):
        try:
            inspect_request_py(body)
        except InvalidRequestError:
            continue
        accepted += 1
    assert accepted > 3500


# --- Types -------------------------------------------------------------------------------------


def test_codes_no_list_names_are_kept_as_pseudo_members() -> None:
    request = decode_request(_request(device={"devicetype": 77}, at=501))
    assert request.device is not None
    assert request.device.devicetype == 77
    assert request.device.devicetype.name == "UNKNOWN_77"
    assert not request.device.devicetype.is_known
    assert DeviceType(4) is DeviceType.PHONE
    assert DeviceType.PHONE.is_known
    assert b'"devicetype":77' in encode_request(request)


def test_unknown_codes_in_lists_are_kept_too() -> None:
    request = decode_request(_imp_request(video={"protocols": [2, 99, -5]}))
    video = (request.imp or [])[0].video
    assert video is not None
    assert video.protocols == [Protocol.VAST_2_0, 99, -5]
    assert [p.name for p in video.protocols] == ["VAST_2_0", "UNKNOWN_99", "UNKNOWN_-5"]


@pytest.mark.parametrize("value", [INT32_MAX + 1, INT32_MIN - 1, 2**70])
def test_codes_outside_32_bits_are_refused_like_integers(value: int) -> None:
    code = _rejection(_request(device={"devicetype": value}))
    assert (code.rule, code.path) == ("type", "device.devicetype")
    integer = _rejection(_request(tmax=value))
    assert (integer.rule, integer.path) == ("type", "tmax")
    with pytest.raises(ValueError, match="32-bit"):
        NoBidReason(value)


@pytest.mark.parametrize("value", [INT32_MIN, -1, 0, INT32_MAX])
def test_integers_within_32_bits_are_accepted(value: int) -> None:
    device = decode_request(_request(device={"geo": {"utcoffset": value}})).device
    assert device is not None
    assert device.geo is not None
    assert device.geo.utcoffset == value


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"tmax": -1}, "tmax"),
        ({"imp": [{"id": "1", "banner": {"w": -1}}]}, "imp[0].banner.w"),
        ({"imp": [{"id": "1", "banner": {"format": [{"wratio": -1}]}}]}, "imp[0].banner.format[0].wratio"),  # noqa: E501
        ({"imp": [{"id": "1", "video": {"mimes": ["v"], "rqddurs": [15, -1]}}]}, "imp[0].video.rqddurs[1]"),  # noqa: E501
        ({"imp": [{"id": "1", "audio": {"mimes": ["a"], "maxseq": -1}}]}, "imp[0].audio.maxseq"),
        ({"imp": [{"id": "1", "banner": {}, "exp": -1}]}, "imp[0].exp"),
        ({"device": {"ppi": -1}}, "device.ppi"),
        ({"device": {"geo": {"lastfix": -1}}}, "device.geo.lastfix"),
        ({"site": {"content": {"len": -1}}}, "site.content.len"),
    ],
)  # fmt: skip
def test_sizes_durations_and_counts_cannot_be_negative(fields: dict[str, Any], path: str) -> None:
    body = _request(**fields)
    for decode in (decode_request, inspect_request_py):
        err = _rejection(body, decode)
        assert (err.rule, err.path) == ("type", path)
    assert decode_request(body.replace(b"-1", b"0")) is not None


def test_a_native_size_cannot_be_negative_either() -> None:
    err = _rejection(b'{"assets":[{"id":1,"img":{"hmin":-1}}]}', decode_native_request)
    assert (err.rule, err.path) == ("type", "assets[0].img.hmin")


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (_imp_request(bidfloor="1.5"), "imp[0].bidfloor"),
        (_imp_request(banner={"w": "300"}), "imp[0].banner.w"),
        (_request(tmax="120"), "tmax"),
        (_request(device={"geo": {"lat": "48.8"}}), "device.geo.lat"),
        (_request(regs={"gdpr": "1"}), "regs.gdpr"),
        (_request(at=2.0), "at"),
        (_request(test=True), "test"),
        (_request(id=42), "id"),
        (_request(site={"cat": "IAB1"}), "site.cat"),
        (_request(imp={"id": "1"}), "imp"),
    ],
)
def test_wrong_types_are_refused_with_the_path(body: bytes, path: str) -> None:
    err = _rejection(body)
    assert (err.rule, err.path) == ("type", path)
    assert str(err).startswith(f"{path}: ")
    assert str(err).endswith(" [type]")


def test_null_inside_a_list_is_refused_but_a_null_field_is_absent() -> None:
    err = _rejection(_request(cur=["USD", None]))
    assert (err.rule, err.path) == ("type", "cur[1]")
    assert decode_request(_request(cur=None, site=None)).cur is None


def test_a_body_that_is_not_an_object_or_not_json_is_refused_at_the_root() -> None:
    assert (_rejection(b"[1]").rule, _rejection(b"[1]").path) == ("type", "$")
    for body in [b"", b"{", b'{"id":"r"} x', b"\xff", b'{"id":NaN}']:
        err = _rejection(body)
        assert (err.rule, err.path) == ("json", "$"), body


def test_a_number_too_large_for_a_float_is_a_json_error() -> None:
    # serde_json calls it a syntax error, and so does the native core.
    err = _rejection(b'{"id":"r","imp":[{"id":"1","bidfloor":1e400}]}')
    assert (err.rule, err.path) == ("json", "imp[0].bidfloor")


def test_ext_holds_any_json_value() -> None:
    for ext in [{"a": [1, None, {"b": "c"}]}, "a string", 12, [1, 2], True]:
        request = decode_request(_request(ext=ext, site={"ext": ext}))
        assert request.ext == ext
        assert request.site is not None
        assert request.site.ext == ext


def test_the_native_request_may_be_a_string_or_an_object() -> None:
    document = {"ver": "1.2", "assets": [{"id": 1, "title": {"len": 90}}]}
    for request in [json.dumps(document), document]:
        decoded = decode_request(_imp_request(native={"request": request}))
        native = (decoded.imp or [])[0].native
        assert native is not None
        assert native.request == request
    err = _rejection(_imp_request(native={"request": 5}))
    assert (err.rule, err.path) == ("type", "imp[0].native.request")


def test_native_documents_decode_with_or_without_the_1_0_envelope() -> None:
    inner = b'{"ver":"1.0","assets":[{"id":1,"required":1,"title":{"len":25}}]}'
    wrapped = decode_native_request(b'{"native":' + inner + b"}")
    assert wrapped == decode_native_request(inner)
    assert wrapped.assets is not None
    assert wrapped.assets[0].title is not None
    assert wrapped.assets[0].title.len == 25
    response = decode_native_response(b'{"native":{"link":{"url":"https://a.example"}}}')
    assert response.link is not None
    assert response.link.url == "https://a.example"


def test_decoded_requests_keep_every_field_of_the_model() -> None:
    body = _request(wlang=["fr"], source={"schain": {"complete": 1, "nodes": [{"asi": "a"}]}})
    request = decode_request(body)
    assert request.wlang == ["fr"]
    assert json.loads(encode_request(request)) == json.loads(body)


# --- Validation --------------------------------------------------------------------------------


def _broken(request: BidRequest | bytes, *, max_imps: int = 64) -> tuple[str, str]:
    if isinstance(request, bytes):
        request = decode_request(request)
    with pytest.raises(InvalidRequestError) as caught:
        validate_request(request, max_imps=max_imps)
    return caught.value.rule, caught.value.path


_TWO_IMPS = [{"id": "1", "banner": {}}, {"id": "2", "video": {"mimes": ["video/mp4"]}}]
_AUDIO = {"mimes": ["audio/mpeg"]}
_TITLE = {"id": 1, "title": {"len": 90}}
_VIDEO_ASSET = {"mimes": ["video/mp4"], "minduration": 5, "maxduration": 30, "protocols": [2]}


def _native(document: dict[str, Any], *, as_string: bool = False) -> bytes:
    """A request whose only imp is native, with ``document`` as its Native request."""
    request = json.dumps(document) if as_string else document
    return _request(imp=[{"id": "1", "native": {"request": request}}])


@pytest.mark.parametrize(
    ("body", "rule", "path"),
    [
        (_request(id=None), "required", "id"),
        (_request(id=""), "required", "id"),
        (_request(imp=None), "required", "imp"),
        (_request(imp=[]), "required", "imp"),
        (_request(imp=[{"banner": {}}]), "required", "imp[0].id"),
        (_request(imp=[{"id": "", "banner": {}}]), "required", "imp[0].id"),
        (_request(imp=[*_TWO_IMPS, {"id": "3"}]), "no_media", "imp[2]"),
        (_request(imp=[{"id": "1", "native": None}]), "no_media", "imp[0]"),
        (_imp_request(bidfloor=-0.01), "floor", "imp[0].bidfloor"),
        (_imp_request(bidfloorcur="EURO"), "currency", "imp[0].bidfloorcur"),
        (_imp_request(bidfloorcur="U$D"), "currency", "imp[0].bidfloorcur"),
        (_imp_request(bidfloorcur="éur"), "currency", "imp[0].bidfloorcur"),
        (_request(cur=["USD", "dollars"]), "currency", "cur[1]"),
        (_imp_request(pmp={"deals": [{"id": "d1"}, {"bidfloor": 1}]}), "required", "imp[0].pmp.deals[1].id"),  # noqa: E501
        (_imp_request(pmp={"deals": [{"id": "d1", "bidfloor": -1}]}), "floor", "imp[0].pmp.deals[0].bidfloor"),  # noqa: E501
        (_imp_request(pmp={"deals": [{"id": "d", "bidfloorcur": "E"}]}), "currency", "imp[0].pmp.deals[0].bidfloorcur"),  # noqa: E501
        (_request(imp=[*_TWO_IMPS, {"id": "2", "audio": _AUDIO}]), "duplicate_imp", "imp[2].id"),
        (_request(site={}, app={}), "channel", "app"),
        (_request(site={}, dooh={}), "channel", "dooh"),
        (_request(app={}, dooh={}), "channel", "dooh"),
        (_request(site={}, app={}, dooh={}), "channel", "app"),
        (_imp_request(video={}), "required", "imp[0].video.mimes"),
        (_imp_request(video={"mimes": []}), "required", "imp[0].video.mimes"),
        (_imp_request(audio={"mimes": None}), "required", "imp[0].audio.mimes"),
        (_imp_request(native={}), "required", "imp[0].native.request"),
        (_imp_request(native={"request": None}), "required", "imp[0].native.request"),
    ],
)  # fmt: skip
def test_each_rule_is_reported_with_its_path(body: bytes, rule: str, path: str) -> None:
    assert _broken(body) == (rule, path)


_ASSET = "assets[0]"
_DATA = {"id": 2, "data": {"type": 1}}


def _with_video(**changes: Any) -> dict[str, Any]:
    """A Native request whose video asset has ``changes``."""
    return {"assets": [{"id": 1, "video": {**_VIDEO_ASSET, **changes}}]}


def _with_tracker(**tracker: Any) -> dict[str, Any]:
    return {"assets": [_TITLE], "eventtrackers": [tracker]}


@pytest.mark.parametrize(
    ("document", "rule", "path"),
    [
        ({}, "required", "assets"),
        ({"assets": None}, "required", "assets"),
        ({"assets": [{"title": {"len": 1}}]}, "required", f"{_ASSET}.id"),
        ({"assets": [_TITLE, _DATA, _TITLE]}, "duplicate_asset", "assets[2].id"),
        ({"assets": [{"id": 1}]}, "native_asset", _ASSET),
        ({"assets": [{"id": 1, "title": {}, "data": {"type": 1}}]}, "native_asset", _ASSET),
        ({"assets": [{"id": 1, "title": {}}]}, "required", f"{_ASSET}.title.len"),
        ({"assets": [{"id": 1, "data": {"len": 5}}]}, "required", f"{_ASSET}.data.type"),
        (_with_video(mimes=[]), "required", f"{_ASSET}.video.mimes"),
        (_with_video(minduration=None), "required", f"{_ASSET}.video.minduration"),
        (_with_video(maxduration=None), "required", f"{_ASSET}.video.maxduration"),
        (_with_video(protocols=None), "required", f"{_ASSET}.video.protocols"),
        (_with_tracker(methods=[1]), "required", "eventtrackers[0].event"),
        (_with_tracker(event=1, methods=[]), "required", "eventtrackers[0].methods"),
        ({"native": {"assets": [{"id": 1}]}, "assets": []}, "native_asset", f"native.{_ASSET}"),
        ({"native": {}}, "required", "native.assets"),
        ({"assets": [{"id": 1, "img": {"w": "300"}}]}, "type", f"{_ASSET}.img.w"),
        ({"assets": [{"id": 1, "img": {"wmin": -1}}]}, "type", f"{_ASSET}.img.wmin"),
    ],
)  # fmt: skip
def test_each_native_rule_is_reported_with_its_path(
    document: dict[str, Any], rule: str, path: str
) -> None:
    # The same paths whether the document is sent as a string (OpenRTB) or as an object.
    for as_string in (False, True):
        assert _broken(_native(document, as_string=as_string)) == (
            rule,
            f"imp[0].native.request.{path}",
        )


def test_a_valid_native_request_passes_bare_or_wrapped() -> None:
    document = {
        "assets": [_TITLE, {"id": 2, "video": _VIDEO_ASSET}, {"id": 3, "data": {"type": 2}}]
    }
    for sent in (document, {"native": document}, {"native": document, "assets": []}):
        for as_string in (False, True):
            validate_request(decode_request(_native(sent, as_string=as_string)))


def test_too_many_imps_is_its_own_rule() -> None:
    imps = [{"id": str(i), "banner": {}} for i in range(3)]
    assert _broken(_request(imp=imps), max_imps=2) == ("imp_count", "imp")
    validate_request(decode_request(_request(imp=imps)), max_imps=3)


@pytest.mark.parametrize("floor", [float("nan"), float("inf"), float("-inf")])
def test_floors_built_in_python_must_be_finite(floor: float) -> None:
    request = decode_request(_imp_request())
    (request.imp or [])[0].bidfloor = floor
    assert _broken(request) == ("floor", "imp[0].bidfloor")


def test_rules_are_checked_in_the_cores_order() -> None:
    # Every imp is checked before ids are compared, and currencies of `cur` come last.
    late_duplicate = _request(imp=[*_TWO_IMPS, {"id": "1", "banner": {}, "bidfloor": -1}])
    assert _broken(late_duplicate) == ("floor", "imp[2].bidfloor")
    assert _broken(_request(id="", imp=[])) == ("required", "id")
    bad_cur_and_floor = _request(cur=["x"], imp=[{"id": "1", "banner": {}, "bidfloor": -1}])
    assert _broken(bad_cur_and_floor) == ("floor", "imp[0].bidfloor")
    in_imp_order = _imp_request(bidfloor=-1, bidfloorcur="x", pmp={"deals": [{}]})
    assert _broken(in_imp_order) == ("floor", "imp[0].bidfloor")
    # One channel is checked after the imp count and before any imp.
    assert _broken(_request(site={}, app={}, imp=[{"id": ""}])) == ("channel", "app")
    assert _broken(_request(site={}, app={}, imp=[])) == ("required", "imp")
    # In an imp: media, then video and audio MIME types, then the Native request, then floors.
    no_mimes = _request(imp=[{"id": "1", "video": {}, "audio": {}, "bidfloor": -1}])
    assert _broken(no_mimes) == ("required", "imp[0].video.mimes")
    late_native = _request(imp=[{"id": "1", "native": {"request": "{}"}, "bidfloor": -1}])
    assert _broken(late_native) == ("required", "imp[0].native.request.assets")
    # In a Native request: every asset in order, then the trackers.
    document = {"eventtrackers": [{}], "assets": [_TITLE, {"id": 2}, {"id": 2}]}
    assert _broken(_native(document)) == ("native_asset", "imp[0].native.request.assets[1]")


def test_valid_requests_pass_with_zero_and_lower_case_values() -> None:
    validate_request(decode_request(_imp_request(bidfloor=0, bidfloorcur="eur")))
    validate_request(decode_request(_imp_request(bidfloor=-0.0)))


# --- The normalized view -----------------------------------------------------------------------


def test_defaults_are_filled_in_and_currencies_upper_cased() -> None:
    deals = [{"id": "d1"}, {"id": "d2", "bidfloor": 2.5, "bidfloorcur": "gbp"}]
    body = _request(cur=["eur", "Usd"], imp=[{"id": "1", "banner": {}, "pmp": {"deals": deals}}])
    view = normalized_view(decode_request(body))
    assert view["at"] == 2
    assert view["cur"] == ["EUR", "USD"]
    (imp,) = view["imp"]
    assert (imp["bidfloor"], imp["bidfloorcur"]) == (0.0, "USD")
    assert imp["pmp"] == {
        "private_auction": 0,
        "deals": [
            {"id": "d1", "bidfloor": 0.0, "bidfloorcur": "USD"},
            {"id": "d2", "bidfloor": 2.5, "bidfloorcur": "GBP"},
        ],
    }


def test_values_the_request_gives_are_kept_over_defaults() -> None:
    view = inspect_request_py(_imp_request(bidfloor=1.25, bidfloorcur="EUR", pmp={}))
    assert view["imp"][0]["bidfloor"] == 1.25
    assert view["imp"][0]["pmp"] == {"private_auction": 0}
    assert inspect_request_py(_request(at=1))["at"] == 1


_SCHAIN = {"complete": 1, "ver": "1.0", "nodes": [{"asi": "exchange.example", "sid": "1", "hp": 1}]}
_EIDS = [{"source": "id5-sync.com", "uids": [{"id": "ID5*abc", "atype": 1}]}]


def test_2_5_signals_are_moved_to_their_2_6_places() -> None:
    body = _request(
        regs={"ext": {"gdpr": 1, "us_privacy": "1YNN", "other": [1]}},
        user={"ext": {"consent": "CPx", "eids": _EIDS, "data": {"x": 1}}},
        source={"tid": "t", "ext": {"schain": _SCHAIN}},
    )
    view = normalized_view(decode_request(body))
    assert view["regs"] == {"gdpr": 1, "us_privacy": "1YNN"}
    assert view["user"] == {"consent": "CPx", "eids": _EIDS}
    assert view["source"] == {"tid": "t", "schain": _SCHAIN}


def test_a_2_6_field_wins_over_its_2_5_twin() -> None:
    body = _request(
        regs={"gdpr": 0, "ext": {"gdpr": 1, "us_privacy": "1YNN"}},
        user={"consent": "new", "eids": [], "ext": {"consent": "old", "eids": _EIDS}},
        source={"schain": {"complete": 0}, "ext": {"schain": _SCHAIN}},
    )
    view = normalized_view(decode_request(body))
    assert view["regs"] == {"gdpr": 0, "us_privacy": "1YNN"}
    assert view["user"] == {"consent": "new", "eids": []}
    assert view["source"] == {"schain": {"complete": 0}}


@pytest.mark.parametrize("ext", ["gdpr=1", 1, [{"gdpr": 1}], True, None])
def test_a_2_5_ext_that_is_not_an_object_is_ignored(ext: Any) -> None:
    view = inspect_request_py(_request(regs={"coppa": 1, "ext": ext}, user={"ext": ext}))
    assert view["regs"] == {"coppa": 1}
    assert view["user"] == {}


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"regs": {"ext": {"gdpr": "1"}}}, "regs.ext.gdpr"),
        ({"regs": {"ext": {"us_privacy": 1}}}, "regs.ext.us_privacy"),
        ({"user": {"ext": {"eids": {"source": "x"}}}}, "user.ext.eids"),
        (
            {"user": {"ext": {"eids": [{"uids": [{"atype": "1"}]}]}}},
            "user.ext.eids[0].uids[0].atype",
        ),
        (
            {"source": {"ext": {"schain": {"nodes": [{"hp": 1.0}]}}}},
            "source.ext.schain.nodes[0].hp",
        ),
    ],
)
def test_a_2_5_signal_of_the_wrong_type_is_refused(fields: dict[str, Any], path: str) -> None:
    body = _request(**fields)
    with pytest.raises(InvalidRequestError) as caught:
        normalized_view(decode_request(body))
    assert (caught.value.rule, caught.value.path) == ("type", path)
    assert _rejection(body, inspect_request_py).path == path


def test_only_the_fields_the_core_reads_are_shown_and_ext_is_kept_whole() -> None:
    ext = {"prebid": {"bidder": None, "list": [None, 1.5, 'é\\"\u2028']}}
    body = _request(
        ext=ext,
        wlang=["fr"],
        imp=[
            {"id": "1", "banner": {"w": 1, "ext": {"a": 1}}, "metric": [{"type": "x"}], "ext": ext}
        ],
        device={"ua": "UA", "didsha1": "x", "geo": {"type": 2, "regionfips104": "x"}},
        regs={"coppa": None, "ext": {"gdpr": None}},
    )
    view = normalized_view(decode_request(body))
    assert view == {
        "id": "r1",
        "imp": [{"id": "1", "banner": {"w": 1}, "ext": ext, "bidfloor": 0.0, "bidfloorcur": "USD"}],
        "device": {"ua": "UA", "geo": {"type": 2}},
        "regs": {},
        "ext": ext,
        "at": 2,
    }


def test_the_native_request_is_shown_as_it_arrived() -> None:
    asset = {"id": 1, "title": {"len": 25}, "img": None}
    document = {"ver": "1.2", "assets": [asset], "ext": {"a": None}}
    for request in [document, json.dumps(document)]:
        view = inspect_request_py(_imp_request(native={"request": request, "ver": "1.2"}))
        assert view["imp"][0]["native"] == {"request": request, "ver": "1.2"}


def test_codes_are_shown_as_plain_integers() -> None:
    view = inspect_request_py(_request(device={"devicetype": 4, "connectiontype": 99}))
    assert view["device"] == {"devicetype": 4, "connectiontype": 99}
    assert type(view["device"]["devicetype"]) is int


# --- The reference pipeline --------------------------------------------------------------------


def test_fields_the_core_does_not_read_cannot_fail_a_request() -> None:
    body = _imp_request(metric=[{"value": "high"}], qty="x", iframebuster=[None])
    assert _rejection(body).path == "imp[0].metric[0].value"  # the full model refuses it
    assert inspect_request_py(body)["imp"][0]["id"] == "1"


def test_the_first_problem_in_document_order_is_reported() -> None:
    ext_first = b'{"regs":{"ext":{"gdpr":"1"}},"imp":[{"id":"1","bidfloor":"x"}]}'
    assert _rejection(ext_first, inspect_request_py).path == "regs.ext.gdpr"
    floor_first = b'{"imp":[{"id":"1","bidfloor":"x"}],"regs":{"ext":{"gdpr":"1"}}}'
    assert _rejection(floor_first, inspect_request_py).path == "imp[0].bidfloor"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        # The path names the field given twice (the native reader's path, key included).
        (b'{"id":"r","id":"s","imp":[{"id":"1","banner":{}}]}', "id"),
        (b'{"id":"r","imp":[{"id":"1","id":"2","banner":{}}]}', "imp[0].id"),
        (b'{"id":"r","imp":[{"id":"1","banner":{"w":1,"w":2}}]}', "imp[0].banner.w"),
        (
            b'{"id":"r","imp":[{"id":"1","banner":{}}],"regs":{"ext":{"gdpr":1,"gdpr":1}}}',
            "regs.ext.gdpr",
        ),
        # Before the second value is looked at, and before a later type error.
        (b'{"id":"r","id":5,"imp":[{"id":"1","banner":{"w":"x"}}]}', "id"),
    ],
)
def test_a_field_the_core_reads_given_twice_is_refused(body: bytes, path: str) -> None:
    err = _rejection(body, inspect_request_py)
    assert (err.rule, err.path) == ("type", path)
    assert "duplicate field" in str(err)


def test_keys_the_core_does_not_read_may_repeat() -> None:
    body = b'{"id":"r","z":1,"z":2,"imp":[{"id":"1","banner":{},"ext":{"a":1,"a":2}}]}'
    assert inspect_request_py(body)["imp"][0]["ext"] == {"a": 2}
    type_error_first = b'{"id":"r","imp":[{"id":"1","banner":{"w":"x"}}],"id":"s"}'
    assert _rejection(type_error_first, inspect_request_py).path == "imp[0].banner.w"


def test_invalid_utf8_is_refused_where_it_is() -> None:
    err = _rejection(b'{"id":"r","imp":[{"id":"1","tagid":"\xff"}]}', inspect_request_py)
    assert (err.rule, err.path) == ("json", "imp[0].tagid")


@pytest.mark.parametrize(
    ("limits", "body", "rule", "path"),
    [
        (Limits(max_body_bytes=10), b'{"id":"r1","imp":[]}', "body_size", "$"),
        (Limits(max_depth=3), b'{"imp":[{"ext":{"a":1}}]}', "depth", "imp[0].ext"),
        (Limits(max_string_bytes=5), b'{"imp":[{"id":"1"},{"id":"123456"}]}', "string_length", "imp[1].id"),  # noqa: E501
        (Limits(max_string_bytes=5), b'{"k":"a\\"bcd"}', "string_length", "k"),
    ],
)  # fmt: skip
def test_limits_are_checked_before_parsing(
    limits: Limits, body: bytes, rule: str, path: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        check_body(body, limits)
    assert (caught.value.rule, caught.value.path) == (rule, path)
    assert _rejection(body, lambda b: inspect_request_py(b, limits=limits)).rule == rule


def test_limits_leave_malformed_json_to_the_parser() -> None:
    tight = Limits(max_depth=3, max_string_bytes=5)
    for body in [b'{"a":"[[[[","b":[["{{"]]}', b'{"k":"a\\"bc"}', b'{"k":"abc', b'{"k":"ab\\']:
        check_body(body, tight)
    assert _rejection(b'{"k":"abc', inspect_request_py).rule == "json"


def test_too_many_imps_is_a_limit_of_the_pipeline() -> None:
    body = _request(imp=[{"id": str(i), "banner": {}} for i in range(3)])
    assert _rejection(body, lambda b: inspect_request_py(b, limits=Limits(max_imps=2))).rule == (
        "imp_count"
    )


@pytest.mark.parametrize(
    ("body", "needle", "path"),
    [
        (b'{"id":"x","imp":[{"id":"1"},{"banner":{"format":[{"w":1},{"w":2}]}}]}', b'{"w":2}', "imp[1].banner.format[1]"),  # noqa: E501
        (b'{"id":"x","imp":[{"id":"1"},{"banner":{}}]}', b'{"banner"', "imp[1]"),
        (b'{"id":"x","imp":[{"id":"1"}]}', b'[{"id"', "imp"),
        (b'{"a\\"[":"]}{,","b":[1,{"c":"x"}]}', b'{"c"', "b[1]"),
        (b'{"site":{"id":"1","page":"x"}}', b'"page"', "site"),
        (b"{}", b"{", ""),
    ],
)  # fmt: skip
def test_paths_are_named_from_byte_offsets_as_the_core_does(
    body: bytes, needle: bytes, path: str
) -> None:
    assert path_at_offset(body, body.index(needle)) == path


# --- Generated requests ------------------------------------------------------------------------


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bid_requests())
def test_generated_requests_round_trip_and_are_valid(request: BidRequest) -> None:
    body = encode_request(request)
    assert decode_request(body) == request
    validate_request(request)
    view = inspect_request_py(body)
    assert view == normalized_view(request)
    assert len(view["imp"]) == len(request.imp or [])
