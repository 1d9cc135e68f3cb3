"""The plain-Python decision (``bidcore.reference``) against ``docs/engine.md``, rule by rule.

Each example spells out its arithmetic, so a failure says which rule moved; the property tests
at the end check what must hold whatever the config and request: a price never above what the
campaign allows, never below the floor, in a currency the request accepts, and never raised by
shading.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bidcore.config import Config, Fx, loads, micros
from bidcore.errors import InvalidRequestError
from bidcore.features import Feature, FeatureSpec
from bidcore.reference import Candidate, Decision, RoleModel, decide
from bidcore.reference.money import (
    convert_down,
    convert_up,
    floor_micros,
    price_bucket,
    price_number,
)
from bidcore.reference.pricing import curve

NOW = 1_704_110_400.0  # Monday 2024-01-01 12:00:00 UTC, 07:00 in New York

BANNER = """
[[campaigns.creatives]]
id = "cr1"
media = "banner"
w = 300
h = 250
adomain = ["shop.example"]
"""

VIDEO = """
[[campaigns.creatives]]
id = "v1"
media = "video"
w = 640
h = 360
duration = 15
mime = "video/mp4"
adomain = ["shop.example"]
"""

CPM = 'goal = "cpm"\ncpm = 2\nmax_bid = 5'
USD_EUR = '[fx]\nbase = "USD"\nrates = { EUR = 1.08 }'

QUALITY = FeatureSpec(features=[Feature(name="quality", campaign="quality")])


def config(
    campaign: str = "", *, money: str = CPM, creatives: str = BANNER, head: str = ""
) -> Config:
    """One campaign ``c1``: ``campaign`` holds its extra keys (inline tables: ``targeting =
    {...}``), ``money`` its goal and amounts, ``head`` the tables before it."""
    return loads(f'{head}\n[[campaigns]]\nid = "c1"\n{money}\n{campaign}\n{creatives}')


def imp(**fields: Any) -> dict[str, Any]:
    """Imp ``1``, a 300x250 banner without a floor, with ``fields`` on top."""
    return {"id": "1", "banner": {"w": 300, "h": 250}, **fields}


def body(*imps: dict[str, Any], **fields: Any) -> bytes:
    """A site request holding ``imps`` (default: :func:`imp`); a field given as ``None`` is
    left out."""
    request: dict[str, Any] = {
        "id": "r1",
        "imp": list(imps) or [imp()],
        "site": {"domain": "news.example"},
    }
    request.update(fields)
    return json.dumps({k: v for k, v in request.items() if v is not None}).encode()


def constant(value: float) -> Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]:
    return lambda rows: np.full(len(rows), value)


def models(ctr: float = 0.02, cvr: float = 0.1) -> dict[str, RoleModel]:
    return {
        "ctr": RoleModel(predict=constant(ctr), spec=QUALITY),
        "cvr": RoleModel(predict=constant(cvr), spec=QUALITY),
    }


def run(request: bytes, cfg: Config, roles: dict[str, RoleModel] | None = None) -> Decision:
    return decide(request, cfg, models() if roles is None else roles, now=NOW)


def only(decision: Decision, campaign: str = "c1", imp_id: str = "1") -> Candidate:
    (found,) = (c for c in decision.candidates if c.campaign == campaign and c.imp == imp_id)
    return found


# --- Money ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bidfloor", "expected"),
    [
        (0.0, 0),  # start at floor(0) - 1 = -1: -1e-6 < 0, so 0
        (0.29, 290_000),  # 0.29 * 1e6 = 290000.0 and 290000 / 1e6 == 0.29
        (0.1234561, 123_457),  # 123456 / 1e6 < 0.1234561 <= 123457 / 1e6
        # 0.000123 * 1e6 = 123.00000000000001 (ceil would say 124), yet 123 / 1e6 == 0.000123
        (0.000123, 123),
        # Doubles are 128 apart here: 999999999999.0 * 1e6 = 999_999_999_999_000_064, the
        # search starts at ..._063, which rounds to the double ..._064: already >= x.
        (999_999_999_999.0, 999_999_999_999_000_063),
        (1e12, None),  # 10^12 units or more: a floor no bid can meet
    ],
)
def test_floor_micros_is_the_least_micros_not_below_the_floor(
    bidfloor: float, expected: int | None
) -> None:
    assert floor_micros(bidfloor) == expected


def test_conversions_round_floors_up_and_prices_down_in_integers() -> None:
    fx = Fx(base="USD", rates={"EUR": Decimal("1.08")})  # EUR: 1_080_000_000 nanos, USD 10^9
    # floor 0.29 EUR in USD: ceil(290000 * 1.08e9 / 1e9) = 313200 exactly
    assert convert_up(290_000, "EUR", "USD", fx) == 313_200
    # 1000001 * 1.08 = 1080001.08: up 1080002, down 1080001
    assert convert_up(1_000_001, "EUR", "USD", fx) == 1_080_002
    assert convert_down(1_000_001, "EUR", "USD", fx) == 1_080_001
    # 1 USD in EUR: 1e6 * 1e9 / 1.08e9 = 925925.9259...
    assert convert_down(1_000_000, "USD", "EUR", fx) == 925_925
    assert convert_up(1_000_000, "USD", "EUR", fx) == 925_926
    # no JPY rate; but a currency converts to itself, and 0 to 0, without one
    assert convert_up(1, "JPY", "USD", fx) is None
    assert convert_down(1, "USD", "JPY", fx) is None
    assert convert_up(7, "JPY", "JPY", fx) == 7
    assert convert_up(0, "JPY", "USD", fx) == 0


def test_prices_are_written_from_micros() -> None:
    assert price_number(1_234_567) == 1.234567
    assert price_number(1) == 0.000001
    assert price_bucket(1_234_567) == "1.20"  # rounded down to 0.10
    assert price_bucket(99_999) == "0.00"
    assert price_bucket(25_000_000) == "20.00"  # capped


# --- Request-level gates -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "blocked"),
    [
        ({"wseat": ["other"]}, True),
        ({"bseat": ["bidcore"]}, True),
        ({"wseat": ["other", "bidcore"]}, False),
        ({"wseat": []}, False),  # an empty wseat allows every seat
        ({"bseat": ["other"]}, False),
    ],
)
def test_seat_gate(fields: dict[str, Any], blocked: bool) -> None:
    decision = run(body(**fields), config())
    assert decision.bid is not blocked
    if blocked:
        assert decision.reason == "blocked_seat"
        assert decision.currency is None
        assert [i.reason for i in decision.imps] == ["blocked_seat"]
        assert decision.candidates == []


@pytest.mark.parametrize(
    ("cur", "head", "expected", "price"),
    [
        (None, USD_EUR, "USD", 2_000_000),  # no cur: the bidder's
        (["EUR", "USD"], USD_EUR, "USD", 2_000_000),  # the bidder's when listed
        # else the first with a rate: cpm 2 USD in EUR = floor(2e6 * 1e9 / 1.08e9) = 1851851
        (["JPY", "EUR"], USD_EUR, "EUR", 1_851_851),
        (["JPY"], USD_EUR, None, None),  # no rate for JPY
        # a EUR bidder without an FX table: its own currency only
        (["USD"], '[bidder]\ncurrency = "EUR"', None, None),
        (["EUR"], '[bidder]\ncurrency = "EUR"', "EUR", 2_000_000),
    ],
)
def test_bid_currency(
    cur: list[str] | None, head: str, expected: str | None, price: int | None
) -> None:
    decision = run(body(cur=cur), config(head=head))
    assert decision.currency == expected
    assert decision.imps[0].price == price
    if expected is None:
        assert decision.reason == "currency"
    else:
        assert decision.response is not None
        assert decision.response["cur"] == expected


@pytest.mark.parametrize(
    ("fields", "personal"),
    [
        ({}, True),
        ({"regs": {"coppa": 1}}, False),
        ({"device": {"lmt": 1}}, False),
        ({"regs": {"gdpr": 1}}, False),  # GDPR without consent
        ({"regs": {"gdpr": 1}, "user": {"consent": ""}}, False),
        ({"regs": {"gdpr": 1}, "user": {"consent": "CO-consent"}}, True),
        ({"regs": {"ext": {"gdpr": 1}}, "user": {"ext": {"consent": "CO"}}}, True),  # 2.5 places
        ({"regs": {"gdpr": 0}}, True),
    ],
)
def test_privacy(fields: dict[str, Any], personal: bool) -> None:
    assert run(body(**fields), config()).personal is personal


# --- Campaign targeting --------------------------------------------------------------------------

APP = {"app": {"bundle": "com.game", "cat": ["IAB9"]}, "site": None}
SEGMENT_S1 = {"user": {"data": [{"id": "d", "segment": [{"id": "s0"}, {"id": "s1"}]}]}}


@pytest.mark.parametrize(
    ("targeting", "fields", "reason"),
    [
        ('countries = ["USA"]', {"device": {"geo": {"country": "usa"}}}, None),  # upper-cased
        ('countries = ["USA"]', {"device": {"geo": {"country": "FRA"}}}, "country"),
        ('countries = ["USA"]', {}, "country"),  # missing never matches an allow-list
        ('regions = ["CA"]', {"device": {"geo": {"region": "CA"}}}, None),
        ('regions = ["CA"]', {"device": {"geo": {"region": "ca"}}}, "region"),  # exact
        ("device_types = [4, 5]", {"device": {"devicetype": 4}}, None),
        ("device_types = [4, 5]", {"device": {"devicetype": 2}}, "device_type"),
        ('os = ["iOS"]', {"device": {"os": "IOS"}}, None),  # both sides lower-cased
        ('os = ["iOS"]', {"device": {"os": "android"}}, "os"),
        ("connection_types = [2]", {"device": {"connectiontype": 2}}, None),
        ("connection_types = [2]", {}, "connection_type"),
        ('domains = ["News.Example"]', {"site": {"domain": "news.EXAMPLE"}}, None),
        ('domains = ["news.example"]', APP, "domain"),  # an app has no site.domain
        ('domains_block = ["news.example"]', {"site": {"domain": "NEWS.example"}}, "domain_block"),
        ('domains_block = ["news.example"]', APP, None),  # missing is never blocked
        ('bundles = ["com.game"]', APP, None),
        ('bundles = ["COM.GAME"]', APP, "bundle"),  # exact
        ('bundles_block = ["com.game"]', APP, "bundle_block"),
        ('bundles_block = ["com.game"]', {}, None),
        ('categories = ["IAB1"]', {"site": {"cat": ["IAB2", "IAB1"]}}, None),
        ('categories = ["IAB1"]', APP, "category"),  # app.cat is IAB9
        ('categories_block = ["IAB9"]', APP, "category_block"),
        ('categories_block = ["IAB9"]', {}, None),
        ('segments = ["s1"]', SEGMENT_S1, None),
        ('segments = ["s1"]', {**SEGMENT_S1, "regs": {"coppa": 1}}, "segment"),  # not personal
        ('segments = ["s1"]', {}, "segment"),
        # 12:00 UTC is 07:00 on Monday in New York (EST, UTC-5)
        ('daypart = { timezone = "America/New_York", hours = [7] }', {}, None),
        ('daypart = { timezone = "America/New_York", hours = [12] }', {}, "daypart"),
        ('daypart = { timezone = "UTC", hours = [12], weekdays = [0] }', {}, None),
        ('daypart = { timezone = "UTC", weekdays = [1, 2] }', {}, "daypart"),
    ],
)
def test_targeting_rule(targeting: str, fields: dict[str, Any], reason: str | None) -> None:
    decision = run(body(**fields), config(f"targeting = {{ {targeting} }}"))
    if reason is None:
        assert decision.bid
    else:
        assert decision.reason == "no_campaign"
        assert [i.reason for i in decision.imps] == ["no_campaign"]
        assert only(decision).excluded_by == reason


def test_targeting_reports_the_first_failing_rule_in_table_order() -> None:
    cfg = config('targeting = { os = ["android"], countries = ["FRA"], daypart = { hours = [1] } }')
    decision = run(body(device={"os": "iOS", "geo": {"country": "USA"}}), cfg)
    assert only(decision).excluded_by == "country"


def test_campaigns_failing_targeting_are_listed_but_not_counted_for_the_imp() -> None:
    cfg = loads(
        f"""
        [[campaigns]]
        id = "c1"
        {CPM}
        targeting = {{ countries = ["FRA"] }}
        {BANNER}
        [[campaigns]]
        id = "c2"
        {CPM}
        {VIDEO}
        """
    )
    decision = run(body(), cfg)
    assert only(decision, "c1").excluded_by == "country"
    assert only(decision, "c2").excluded_by == "media"
    assert decision.reason == "media"  # country is request-level, not an imp reason


# --- Deals ---------------------------------------------------------------------------------------

PMP = {
    "private_auction": 0,
    "deals": [
        {"id": "d0", "wseat": ["other"], "bidfloor": 0.1},  # not open to the bidder's seat
        {"id": "d1", "bidfloor": 1.5, "at": 1},
        {"id": "d2", "bidfloor": 1.0},
    ],
}


@pytest.mark.parametrize(
    ("campaign", "pmp", "deal", "reason"),
    [
        ('deals = ["d2", "d1"]', PMP, "d1", None),  # the first of the imp's deals it lists
        ('deals = ["d0"]', PMP, None, None),  # d0 is closed to the seat: open auction
        ('deals = ["d0"]\ndeals_only = true', PMP, None, "deal"),
        ("", {**PMP, "private_auction": 1}, None, "private_auction"),
        (
            'deals = ["d0"]\ndeals_only = true',
            {**PMP, "private_auction": 1},
            None,
            "private_auction",
        ),
        ('deals = ["d2"]', {**PMP, "private_auction": 1}, "d2", None),
        ('deals = ["d2"]\ndeals_only = true', None, None, "deal"),  # no pmp at all
    ],
)
def test_deals(campaign: str, pmp: dict[str, Any] | None, deal: str | None, reason: str) -> None:
    fields = {} if pmp is None else {"pmp": pmp}
    decision = run(body(imp(**fields)), config(campaign))
    assert decision.imps[0].reason == reason
    assert decision.imps[0].deal == deal
    if deal is not None:
        assert decision.response is not None
        assert decision.response["seatbid"][0]["bid"][0]["dealid"] == deal


def test_a_deal_brings_its_floor_and_auction_type() -> None:
    # c1: cpm 3; d1's floor is 1.5 USD and its at = 1 (first price) over the request's at = 2.
    decision = run(body(imp(pmp=PMP), at=2), config('deals = ["d1"]', money=CPM3))
    candidate = only(decision)
    assert (candidate.floor, candidate.lower, candidate.upper) == (1_500_000, 1_500_000, 3_000_000)
    assert candidate.price is not None
    assert candidate.price < 3_000_000  # shaded: first price


# --- Creatives -----------------------------------------------------------------------------------


def creative(media: str = "banner", **keys: Any) -> str:
    """A creative block ``cr1``; ``keys`` as TOML values (``w=300`` or ``mime='"video/mp4"'``)."""
    defaults: dict[str, Any] = {"adomain": '["shop.example"]'}
    if media == "banner":
        defaults |= {"w": 300, "h": 250}
    if media in ("video", "audio"):
        defaults |= {"duration": 15, "mime": '"video/mp4"'}
    lines = [f"{k} = {v}" for k, v in (defaults | keys).items()]
    return '[[campaigns.creatives]]\nid = "cr1"\nmedia = "{}"\n{}\n'.format(media, "\n".join(lines))


VIDEO_IMP = {"id": "1", "video": {"mimes": ["video/mp4"], "minduration": 5, "maxduration": 30}}


@pytest.mark.parametrize(
    ("block", "slot", "fields", "reason"),
    [
        (creative("video"), imp(), {}, "media"),
        (creative(), imp(banner={"w": 320, "h": 50, "format": [{"w": 728, "h": 90}]}), {}, "size"),
        (creative(), imp(banner={"format": [{"w": 728, "h": 90}, {"w": 300, "h": 250}]}), {}, None),
        (creative("video", duration=31), VIDEO_IMP, {}, "duration"),
        (creative("video", duration=4), VIDEO_IMP, {}, "duration"),
        (creative("video", duration=90), {"id": "1", "video": {"mimes": ["video/mp4"]}}, {}, None),
        (
            creative("video", duration=90),  # a bound of 0 does not restrict
            {"id": "1", "video": {"mimes": ["video/mp4"], "minduration": 0, "maxduration": 0}},
            {},
            None,
        ),
        (creative("video", mime='"video/webm"'), VIDEO_IMP, {}, "mime"),
        (creative(markup='"<img src=http://x.example/a.png>"'), imp(secure=1), {}, "secure"),
        (creative(markup='"<img src=http://x.example/a.png>"'), imp(secure=0), {}, None),
        (creative(markup='"<img src=https://x.example/a.png>"'), imp(secure=1), {}, None),
        (creative(cat='["IAB7", "IAB8"]'), imp(), {"bcat": ["IAB8"]}, "blocked_cat"),
        (creative(), imp(), {"badv": ["shop.example"]}, "blocked_adomain"),
        (creative(bundle='"com.shop"'), imp(), {"bapp": ["com.shop"]}, "blocked_app"),
        (creative(attr="[3]"), imp(banner={"w": 300, "h": 250, "battr": [3]}), {}, "blocked_attr"),
        # battr of another media object does not apply to a banner creative
        (creative(attr="[3]"), imp(video={"mimes": ["video/mp4"], "battr": [3]}), {}, None),
    ],
)
def test_creative_rule(
    block: str, slot: dict[str, Any], fields: dict[str, Any], reason: str | None
) -> None:
    decision = run(body(slot, **fields), config(creatives=block))
    assert decision.imps[0].reason == reason
    assert only(decision).excluded_by == reason


def test_secure_looks_at_the_notice_urls_the_bid_carries() -> None:
    head = '[bidder]\nnurl = "http://win.example/{imp}"'
    # The creative inherits the bidder's plain-http nurl: not secure.
    assert run(body(imp(secure=1)), config(head=head)).imps[0].reason == "secure"
    # Its own https nurl replaces the bidder's: secure.
    own = creative(nurl='"https://win.example/{imp}"')
    assert run(body(imp(secure=1)), config(head=head, creatives=own)).bid


def test_the_first_fitting_creative_is_taken_else_the_last_reason() -> None:
    tried = VIDEO + creative(w=728, h=90).replace('"cr1"', '"big"')
    assert run(body(), config(creatives=tried)).imps[0].reason == "size"  # the last one's
    fitting = tried + creative().replace('"cr1"', '"cr2"') + creative().replace('"cr1"', '"cr3"')
    assert run(body(), config(creatives=fitting)).imps[0].creative == "cr2"


# --- Floor, value, bounds ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("money", "slot", "reason", "candidate"),
    [
        # floor 0.29 EUR at 1.08 USD/EUR: ceil(290000 * 1.08e9 / 1e9) = 313200 > upper 300000
        ("cpm = 0.3", imp(bidfloor=0.29, bidfloorcur="EUR"), "below_floor", (313_200, 300_000)),
        ("cpm = 0.32", imp(bidfloor=0.29, bidfloorcur="EUR"), None, (313_200, 320_000)),
        ("cpm = 2", imp(bidfloor=0.29, bidfloorcur="JPY"), "currency", None),  # no JPY rate
        ("cpm = 2", imp(bidfloor=0, bidfloorcur="JPY"), None, (0, 2_000_000)),  # 0 needs none
        ("cpm = 2", imp(bidfloor=1e12), "below_floor", None),  # cannot be met
        # upper = min(cpm 3, max_bid 2) = 2_000_000
        ("cpm = 3\nmax_bid = 2", imp(bidfloor=1), None, (1_000_000, 2_000_000)),
        # lower = max(floor 0, min_bid 1_500_000, 1) > upper 1_000_000, and upper >= floor
        ("cpm = 1\nmin_bid = 1.5", imp(), "below_min_bid", (0, 1_000_000)),
        # both missed: the floor is named
        ("cpm = 1\nmin_bid = 1.5", imp(bidfloor=1.2), "below_floor", (1_200_000, 1_000_000)),
    ],
)
def test_floor_and_bounds(
    money: str, slot: dict[str, Any], reason: str | None, candidate: tuple[int, int] | None
) -> None:
    keys = f'goal = "cpm"\n{money}' + ("" if "max_bid" in money else "\nmax_bid = 5")
    decision = run(body(slot), config(money=keys, head=USD_EUR))
    assert decision.imps[0].reason == reason
    found = only(decision)
    if candidate is not None:
        assert (found.floor, found.upper) == candidate
    if reason is None:
        assert decision.imps[0].price == found.upper  # second price


def test_cpc_value_is_the_double_product_floored() -> None:
    # 0.009 * 100000.0 * 1000.0 = 899999.9999999999 -> 899_999 (not 900_000)
    cfg = config(money='goal = "cpc"\ntarget_cpc = 0.1\nmax_bid = 5', head='[models]\nctr = "m"')
    decision = run(body(), cfg, models(ctr=0.009))
    assert only(decision).value == 899_999
    assert only(decision).scores == {"ctr": 0.009}
    assert decision.imps[0].price == 899_999


def test_cpa_value_multiplies_both_predictions_in_order() -> None:
    # ((0.036 * 0.5) * 100000.0) * 1000.0 = 0.018 * 1e5 * 1e3 = 1799999.9999999998 -> 1_799_999
    cfg = config(
        money='goal = "cpa"\ntarget_cpa = 0.1\nmax_bid = 5',
        head='[models]\nctr = "m"\ncvr = "m"',
    )
    decision = run(body(), cfg, models(ctr=0.036, cvr=0.5))
    assert only(decision).value == 1_799_999
    assert only(decision).scores == {"ctr": 0.036, "cvr": 0.5}


@pytest.mark.parametrize(
    ("prediction", "value", "reason"),
    [
        (math.nan, 0, "below_min_bid"),  # a broken model is worth nothing; 1 micro is the least
        (-0.5, 0, "below_min_bid"),
        (math.inf, 10**18, None),  # capped, then by max_bid
        (1e300, 10**18, None),
    ],
)
def test_model_values_outside_the_range(prediction: float, value: int, reason: str | None) -> None:
    cfg = config(money='goal = "cpc"\ntarget_cpc = 0.1\nmax_bid = 5', head='[models]\nctr = "m"')
    decision = run(body(), cfg, models(ctr=prediction))
    assert only(decision).value == value
    assert decision.imps[0].reason == reason
    if reason is None:
        assert decision.imps[0].price == 5_000_000


class Recorder:
    """A model that remembers the blocks it was called on."""

    def __init__(self, value: float) -> None:
        self.value = value
        self.calls: list[list[list[float]]] = []

    def __call__(self, rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        self.calls.append(rows.tolist())
        return np.full(len(rows), self.value)


def test_each_model_is_called_once_per_imp_on_the_candidates_needing_it() -> None:
    cfg = loads(
        """
        [models]
        ctr = "ctr"
        cvr = "cvr"
        [[campaigns]]
        id = "cpm"
        goal = "cpm"
        cpm = 1
        max_bid = 5
        features = { quality = 1.0 }
        """
        + BANNER
        + """
        [[campaigns]]
        id = "cpc"
        goal = "cpc"
        target_cpc = 0.1
        max_bid = 5
        features = { quality = 2.0 }
        """
        + BANNER
        + """
        [[campaigns]]
        id = "video-cpc"
        goal = "cpc"
        target_cpc = 0.1
        max_bid = 5
        features = { quality = 3.0 }
        """
        + VIDEO
        + """
        [[campaigns]]
        id = "cpa"
        goal = "cpa"
        target_cpa = 1
        max_bid = 5
        features = { quality = 4.0 }
        """
        + BANNER
    )
    ctr, cvr = Recorder(0.02), Recorder(0.1)
    roles = {
        "ctr": RoleModel(predict=ctr, spec=QUALITY),
        "cvr": RoleModel(predict=cvr, spec=QUALITY),
    }
    run(body(imp(), imp(id="2")), cfg, roles)
    # Per imp: ctr on cpc and cpa (the video campaign was excluded by its creative), in config
    # order; cvr on cpa alone.
    assert ctr.calls == [[[2.0], [4.0]], [[2.0], [4.0]]]
    assert cvr.calls == [[[4.0]], [[4.0]]]


def test_user_level_features_are_missing_when_not_personal() -> None:
    spec = FeatureSpec(
        features=[
            Feature(name="yob", number="user.yob"),
            Feature(name="gender", text="user.gender", buckets=7),
            Feature(name="lat", number="device.geo.lat"),
            Feature(name="has_ifa", derived="has_ifa"),
            Feature(name="segments", derived="segment_count"),
            Feature(name="devicetype", number="device.devicetype"),
            Feature(name="quality", campaign="quality"),
        ]
    )
    cfg = config(
        "features = { quality = 0.5 }",
        money='goal = "cpc"\ntarget_cpc = 0.1\nmax_bid = 5',
        head='[models]\nctr = "m"',
    )
    roles = {"ctr": RoleModel(predict=constant(0.02), spec=spec)}
    fields: dict[str, Any] = {
        "user": {"yob": 1990, "gender": "F", "data": [{"segment": [{"id": "a"}]}]},
        "device": {"devicetype": 4, "ifa": "x", "geo": {"lat": 1.5}},
    }
    personal = only(run(body(**fields), cfg, roles)).features["ctr"]
    assert personal[0] == 1990.0
    assert personal[2:] == [1.5, 1.0, 1.0, 4.0, 0.5]
    masked = only(run(body(**fields, regs={"coppa": 1}), cfg, roles)).features["ctr"]
    assert all(math.isnan(v) for v in masked[:5])
    assert masked[5:] == [4.0, 0.5]  # inventory and campaign features stay


def test_a_missing_model_is_refused() -> None:
    cfg = config(money='goal = "cpc"\ntarget_cpc = 0.1\nmax_bid = 5', head='[models]\nctr = "m"')
    with pytest.raises(ValueError, match="needs a 'ctr' model"):
        run(body(), cfg, {})


def test_an_invalid_body_is_refused() -> None:
    with pytest.raises(InvalidRequestError):
        run(b'{"id":"r","imp":[]}', config())


# --- Price and rank ------------------------------------------------------------------------------

CPM3 = 'goal = "cpm"\ncpm = 3\nmax_bid = 5'


def test_first_price_is_shaded_on_the_grid() -> None:
    # lower = floor 1_000_000, upper = cpm 3_000_000; default curve center 1, scale 0.5:
    # w(b) = 1 / (1 + exp(-ln(b / 1e6) / 0.5)) = b^2 / (b^2 + 1) with b in units.
    # b_i = 1_000_000 + 2_000_000 * i // 32 = 1_000_000 + 62_500 * i; the surplus
    # (3e6 - b) * w(b) is 1_067_073 at i = 4, 1_067_701 at i = 5 (b = 1_312_500), 1_062_838 at 6.
    decision = run(body(imp(bidfloor=1.0), at=1), config(money=CPM3))
    candidate = only(decision)
    assert candidate.price == 1_312_500
    assert candidate.surplus == pytest.approx(1_067_700.9, abs=0.1)
    assert decision.imps[0].price == 1_312_500


def test_shading_off_second_price_and_other_auction_types_bid_upper() -> None:
    shaded_off = config(money=CPM3, head="[shading]\nenabled = false")
    assert run(body(imp(bidfloor=1.0), at=1), shaded_off).imps[0].price == 3_000_000
    for at in (2, 3, 500):
        assert run(body(imp(bidfloor=1.0), at=at), config(money=CPM3)).imps[0].price == 3_000_000


def test_shading_with_no_room_bids_the_floor() -> None:
    # upper = lower = 2_000_000: every grid point is 2_000_000
    assert run(body(imp(bidfloor=2.0), at=1), config()).imps[0].price == 2_000_000


def grid_price(lower: int, upper: int, center_micros: int, scale: float) -> int:
    """The spec's grid search with the curve written as a power, w(b) = 1 / (1 + (b /
    center)^(-1 / scale)): the same maximum by a different formula."""
    surplus = [
        (upper - b) / (1 + (b / center_micros) ** (-1 / scale))
        for b in (lower + (upper - lower) * i // 32 for i in range(33))
    ]
    i = surplus.index(max(surplus))
    return lower + (upper - lower) * i // 32


def test_shading_center_is_converted_to_the_bid_currency() -> None:
    # Bid in EUR: upper = floor(3e6 * 1e9 / 1.08e9) = 2_777_777; floor 1 EUR = 1_000_000;
    # center 1 USD = convert_down(1_000_000, USD, EUR) = 925_925 micros, i.e. 0.925925 EUR.
    decision = run(
        body(imp(bidfloor=1.0, bidfloorcur="EUR"), at=1, cur=["EUR"]),
        config(money=CPM3, head=USD_EUR),
    )
    candidate = only(decision)
    assert (candidate.lower, candidate.upper) == (1_000_000, 2_777_777)
    assert candidate.price == grid_price(1_000_000, 2_777_777, 925_925, 0.5)


def test_the_center_is_at_least_one_micro() -> None:
    # 1 USD -> floor(1e6 * 1e9 / 1.08e9) = 925_925 EUR micros, 0.925925 EUR
    assert curve(config(head=USD_EUR), {}, "banner", "EUR") == (0.925925, 0.5)
    # 0.000001 USD -> floor(1 * 1e9 / 1.08e9) = 0 EUR micros: 1 micro instead (ln 0 is undefined)
    tiny = config(head=USD_EUR + "\n[shading]\ncenter = 0.000001")
    assert curve(tiny, {}, "banner", "EUR") == (1e-6, 0.5)


def test_a_curve_without_a_chance_of_winning_bids_the_lowest_grid_point() -> None:
    # center 1_000_000 units, scale 0.01: the exponent -(ln(b) - ln(1e6)) / 0.01 is about 1300
    # for b in [1, 3], exp overflows a double, so w = 0 and every surplus is 0: the first grid
    # point, lower, wins the tie.
    head = "[shading]\ncenter = 1000000\nscale = 0.01"
    candidate = only(run(body(imp(bidfloor=1.0), at=1), config(money=CPM3, head=head)))
    assert (candidate.price, candidate.surplus) == (1_000_000, 0.0)


def test_the_first_matching_shading_segment_sets_the_curve() -> None:
    head = """
    [shading]
    center = 1
    scale = 0.5
    [[shading.segments]]
    countries = ["FRA"]
    center = 0.1
    scale = 1.0
    [[shading.segments]]
    media = ["banner"]
    device_types = [4]
    center = 2.5
    scale = 0.25
    [[shading.segments]]
    media = ["banner"]
    center = 0.2
    scale = 2.0
    """
    request = body(imp(bidfloor=1.0), at=1, device={"devicetype": 4, "geo": {"country": "usa"}})
    # USA, device type 4, banner: the second segment, center 2.5, scale 0.25
    price = only(run(request, config(money=CPM3, head=head))).price
    assert price == grid_price(1_000_000, 3_000_000, 2_500_000, 0.25)
    assert price != grid_price(1_000_000, 3_000_000, 1_000_000, 0.5)


TWO_MEDIA_IMP = imp(video={"mimes": ["video/mp4"]}, bidfloor=1.0)


def test_first_price_ranks_by_expected_surplus() -> None:
    # c2 values the imp more (3.2 vs 3) but its video curve centers on 100: its win rate is
    # tiny, so c1's banner bid has the higher expected surplus.
    cfg = loads(
        f"""
        [[shading.segments]]
        media = ["video"]
        center = 100
        scale = 0.5
        [[campaigns]]
        id = "c1"
        {CPM3}
        {BANNER}
        [[campaigns]]
        id = "c2"
        goal = "cpm"
        cpm = 3.2
        max_bid = 5
        {VIDEO}
        """
    )
    decision = run(body(TWO_MEDIA_IMP, at=1), cfg)
    assert decision.imps[0].campaign == "c1"
    c1, c2 = only(decision, "c1"), only(decision, "c2")
    assert c1.surplus is not None
    assert c2.surplus is not None
    assert c1.surplus > c2.surplus
    # Second price ranks by upper: c2.
    assert run(body(TWO_MEDIA_IMP, at=2), cfg).imps[0].campaign == "c2"


def test_second_price_ties_keep_the_earlier_campaign() -> None:
    cfg = loads(
        "\n".join(
            f'[[campaigns]]\nid = "{name}"\ngoal = "cpm"\ncpm = {cpm}\nmax_bid = 5\n{BANNER}'
            for name, cpm in (("a", 2), ("b", 3), ("c", 3))
        )
    )
    decision = run(body(), cfg)
    assert (decision.imps[0].campaign, decision.imps[0].price) == ("b", 3_000_000)
    assert [c.surplus for c in decision.candidates] == [2e6, 3e6, 3e6]


# --- Imp and request reasons -------------------------------------------------------------------


def campaigns(*creative_blocks: str) -> Config:
    return loads(
        "\n".join(
            f'[[campaigns]]\nid = "c{i}"\n{CPM}\n{block}' for i, block in enumerate(creative_blocks)
        )
    )


def test_an_imp_reason_is_the_most_common_then_the_earliest() -> None:
    small = creative(w=320, h=50)
    assert run(body(), campaigns(VIDEO, small, small)).imps[0].reason == "size"  # 2 to 1
    assert run(body(), campaigns(small, VIDEO)).imps[0].reason == "media"  # 1 to 1: media first


def test_the_request_reason_is_the_first_imps() -> None:
    cfg = config()
    decision = run(
        body(imp(banner={"w": 1, "h": 1}), {"id": "2", "video": {"mimes": ["a/b"]}}), cfg
    )
    assert not decision.bid
    assert [i.reason for i in decision.imps] == ["size", "media"]
    assert decision.reason == "size"
    assert decision.response is None


def test_one_bid_per_imp_in_imp_order() -> None:
    decision = run(body(imp(id="a"), imp(id="b", banner={"w": 1, "h": 1}), imp(id="c")), config())
    assert decision.bid
    assert decision.reason is None
    assert [(i.imp, i.price, i.reason) for i in decision.imps] == [
        ("a", 2_000_000, None),
        ("b", None, "size"),
        ("c", 2_000_000, None),
    ]
    assert decision.response is not None
    bids = decision.response["seatbid"][0]["bid"]
    assert [b["impid"] for b in bids] == ["a", "c"]


# --- The response --------------------------------------------------------------------------------


def test_the_response_fills_templates_and_keeps_exchange_macros() -> None:
    cfg = loads(
        """
        [bidder]
        seat = "seat-1"
        nurl = "https://win.example/n?c={campaign}&p=${AUCTION_PRICE}&b={price_bucket}"
        lurl = "https://win.example/l?r={request}&a={arm}"
        [[campaigns]]
        id = "camp 1"
        goal = "cpm"
        cpm = 1.234567
        max_bid = 5
        [[campaigns.creatives]]
        id = "cr/1"
        media = "video"
        w = 640
        h = 360
        duration = 15
        mime = "video/mp4"
        adomain = ["shop.example"]
        markup = "<VAST>{creative}|{imp}|${AUCTION_ID}</VAST>"
        burl = "https://bill.example/?i={imp}&r={request}"
        """
    )
    request = body({"id": "1", "video": {"mimes": ["video/mp4"]}}, id="r&1 é", test=1)
    decision = run(request, cfg)
    assert decision.response == {
        "id": "r&1 é",
        "seatbid": [
            {
                "bid": [
                    {
                        "id": "1-camp 1",
                        "impid": "1",
                        "price": 1.234567,
                        "adid": "cr/1",
                        "crid": "cr/1",
                        "cid": "camp 1",
                        "adomain": ["shop.example"],
                        "mtype": 2,
                        "w": 640,
                        "h": 360,
                        "dur": 15,
                        "adm": "<VAST>cr%2F1|1|${AUCTION_ID}</VAST>",
                        # 1_234_567 micros: bucket 1_200_000, "1.20"
                        "nurl": "https://win.example/n?c=camp%201&p=${AUCTION_PRICE}&b=1.20",
                        "burl": "https://bill.example/?i=1&r=r%261%20%C3%A9",
                        "lurl": "https://win.example/l?r=r%261%20%C3%A9&a=",
                    }
                ],
                "seat": "seat-1",
            }
        ],
        "cur": "USD",
        "ext": {"bidcore": {"test": 1}},
    }


def test_a_banner_bid_carries_its_deal_categories_attributes_and_bundle() -> None:
    block = creative(cat='["IAB3"]', attr="[1, 2]", bundle='"com.shop"')
    decision = run(body(imp(pmp=PMP)), config('deals = ["d2"]', creatives=block))
    assert decision.response is not None
    assert "ext" not in decision.response
    (bid,) = decision.response["seatbid"][0]["bid"]
    assert bid == {
        "id": "1-c1",
        "impid": "1",
        "price": 2.0,
        "adid": "cr1",
        "crid": "cr1",
        "cid": "c1",
        "adomain": ["shop.example"],
        "cat": ["IAB3"],
        "attr": [1, 2],
        "bundle": "com.shop",
        "mtype": 1,
        "dealid": "d2",
        "w": 300,
        "h": 250,
    }


# --- Properties ----------------------------------------------------------------------------------

RATED = ("EUR", "GBP", "JPY")
_micros_amount = st.integers(1, 20_000_000).map(lambda m: Decimal(m).scaleb(-6))
_rate = st.integers(1_000_000, 200_000_000_000).map(lambda n: Decimal(n).scaleb(-9))


@st.composite
def configs(draw: st.DrawFn) -> Config:
    rates = draw(st.dictionaries(st.sampled_from(RATED), _rate))
    bidder_currency = draw(st.sampled_from(("USD", "EUR")))
    if bidder_currency == "EUR" and rates:
        rates.setdefault("EUR", draw(_rate))
    items = []
    for i in range(draw(st.integers(1, 3))):
        max_bid = draw(_micros_amount)
        min_bid = Decimal(draw(st.integers(0, micros(max_bid)))).scaleb(-6)
        goal = draw(st.sampled_from(("cpm", "cpc")))
        amount = draw(_micros_amount)
        items.append(
            {
                "id": f"c{i}",
                "goal": goal,
                ("cpm" if goal == "cpm" else "target_cpc"): amount,
                "max_bid": max_bid,
                "min_bid": min_bid,
                "deals": draw(st.sampled_from(([], ["d1"]))),
                "creatives": [
                    {"id": "cr", "media": "banner", "w": 300, "h": 250, "adomain": ["a.example"]}
                ],
            }
        )
    shading = {
        "enabled": True,
        "center": draw(_micros_amount),
        "scale": draw(st.floats(0.05, 3.0)),
    }
    return msgspec.convert(
        {
            "bidder": {"currency": bidder_currency},
            "fx": {"base": "USD", "rates": rates},
            "models": {"ctr": "m"},
            "shading": shading,
            "campaigns": items,
        },
        Config,
    )


_floors = st.one_of(
    st.sampled_from((0.0, 0.29, 0.1234561, 0.000123, 1.0)),
    st.floats(0.0, 30.0),
)
_floor_currencies = st.sampled_from(("USD", *RATED, "XYZ"))


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    imps = []
    for i in range(draw(st.integers(1, 2))):
        slot: dict[str, Any] = {
            "id": str(i),
            "banner": {"w": 300, "h": 250},
            "bidfloor": draw(_floors),
            "bidfloorcur": draw(_floor_currencies),
        }
        if draw(st.booleans()):
            deal = {
                "id": "d1",
                "bidfloor": draw(_floors),
                "bidfloorcur": draw(_floor_currencies),
                "at": draw(st.sampled_from((1, 2))),
            }
            slot["pmp"] = {"deals": [deal]}
        imps.append(slot)
    cur = draw(st.lists(st.sampled_from(("USD", *RATED, "XYZ")), max_size=3, unique=True))
    return {"id": "r", "imp": imps, "site": {}, "cur": cur, "at": draw(st.sampled_from((1, 2)))}


def _floor_of(request: dict[str, Any], candidate: Candidate, currency: str, fx: Fx) -> int:
    """The candidate's floor recomputed from the request, in the bid currency."""
    slot = next(s for s in request["imp"] if s["id"] == candidate.imp)
    priced = slot["pmp"]["deals"][0] if candidate.deal is not None else slot
    m = floor_micros(priced["bidfloor"])
    assert m is not None
    floor = convert_up(m, priced["bidfloorcur"], currency, fx)
    assert floor is not None
    return floor


@settings(max_examples=150, deadline=None)
@given(cfg=configs(), request=requests(), ctr=st.floats(0.0, 1.0))
def test_prices_stay_within_what_the_campaign_allows_and_the_floor(
    cfg: Config, request: dict[str, Any], ctr: float
) -> None:
    decision = run(json.dumps(request).encode(), cfg, models(ctr=ctr))
    by_id = {c.id: c for c in cfg.campaigns}
    bidder = cfg.bidder.currency
    for result in decision.imps:
        if result.price is None:
            continue
        currency = decision.currency
        assert currency is not None
        assert currency in (request["cur"] or [bidder])
        assert result.campaign is not None
        campaign = by_id[result.campaign]
        candidate = next(
            c for c in decision.candidates if c.imp == result.imp and c.campaign == result.campaign
        )
        assert candidate.value is not None
        assert result.price == candidate.price
        assert result.price <= (
            convert_down(micros(campaign.max_bid), bidder, currency, cfg.fx) or 0
        )
        assert result.price <= (convert_down(candidate.value, bidder, currency, cfg.fx) or 0)
        assert result.price >= _floor_of(request, candidate, currency, cfg.fx)
        assert result.price >= (convert_up(micros(campaign.min_bid), bidder, currency, cfg.fx) or 1)
        assert result.price >= 1
    if decision.bid:
        assert decision.response is not None
        prices = [b["price"] for b in decision.response["seatbid"][0]["bid"]]
        assert prices == [price_number(i.price) for i in decision.imps if i.price is not None]


@settings(max_examples=100, deadline=None)
@given(cfg=configs(), request=requests(), ctr=st.floats(0.0, 1.0))
def test_shading_never_raises_a_price(cfg: Config, request: dict[str, Any], ctr: float) -> None:
    request["at"] = 1
    unshaded = msgspec.structs.replace(
        cfg, shading=msgspec.structs.replace(cfg.shading, enabled=False)
    )
    data = json.dumps(request).encode()
    on, off = run(data, cfg, models(ctr=ctr)), run(data, unshaded, models(ctr=ctr))
    assert [c.excluded_by for c in on.candidates] == [c.excluded_by for c in off.candidates]
    for shaded, plain in zip(on.candidates, off.candidates, strict=True):
        if shaded.price is not None:
            assert plain.price is not None
            assert shaded.lower is not None
            assert shaded.lower <= shaded.price <= plain.price
