"""Bidder configs, bid requests and small models for testing the engine against the reference.

Configs and requests draw from the same small vocabularies (countries, sizes, deals, segments…)
so that generated requests hit generated targeting rules often, in every combination: each
Hypothesis example exercises rules, not just parsing. The models are tiny LightGBM boosters
trained on features of the OpenRTB corpus with made-up labels: they only need to give varied,
exact predictions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final

import lightgbm
import msgspec
import numpy as np
import numpy.typing as npt
from hypothesis import strategies as st

from bidcore import features
from bidcore._core import Ledger
from bidcore.config import Config
from bidcore.engine import Engine
from bidcore.errors import InvalidRequestError
from bidcore.features import FeatureSpec
from bidcore.openrtb.reference import inspect_request_py
from bidcore.reference import TARGETING_REASONS, RoleModel, decide
from bidcore.reference.arms import account_ids
from bidcore.reference.budget import Budget
from bidcore.reference.frequency import Frequency, user_key
from bidcore.reference.gates import is_personal
from bidcore.reference.pacing import UNPACED, Pacing

__all__ = [
    "COUNTRIES",
    "ROLE_SPEC",
    "WIN_RATE_HAS_IFA",
    "WIN_RATE_SPEC",
    "assert_same_decision",
    "configs",
    "pacings",
    "requests",
    "train_role_model",
    "train_win_rate_model",
]

COUNTRIES: Final = ["USA", "GBR", "FRA", "DEU"]
DEVICE_TYPES: Final = [1, 2, 4, 5]
OSES: Final = ["iOS", "Android", "Windows"]
CONNECTIONS: Final = [1, 2, 6]
DOMAINS: Final = ["news.example", "Shop.example", "bad.example"]
BUNDLES: Final = ["com.game", "com.news"]
CATEGORIES: Final = ["IAB1", "IAB2", "IAB3", "IAB25"]
SEGMENTS: Final = ["s1", "s2", "s3"]
DEALS: Final = ["d1", "d2", "d3"]
SIZES: Final = [(300, 250), (320, 50), (728, 90)]
VIDEO_MIMES: Final = ["video/mp4", "video/webm"]
AUDIO_MIMES: Final = ["audio/mp4"]
ADOMAINS: Final = ["a.example", "b.example", "c.example"]
CURRENCIES: Final = ["USD", "EUR", "GBP", "JPY"]
ZONES: Final = ["UTC", "America/New_York", "Asia/Kolkata"]
NATIVE_REQUEST: Final = '{"ver":"1.2","assets":[{"id":1,"required":1,"title":{"len":90}}]}'

_REQUEST_FEATURES: Final = """
[[features]]
name = "floor"
number = "imp.bidfloor"
[[features]]
name = "devicetype"
number = "device.devicetype"
[[features]]
name = "yob"
number = "user.yob"
[[features]]
name = "area"
derived = "banner_area"
[[features]]
name = "hour"
derived = "hour_utc"
[[features]]
name = "has_ifa"
derived = "has_ifa"
[[features]]
name = "media"
derived = "media_type"
[[features]]
name = "os"
text = "device.os"
vocabulary = ["iOS", "Android"]
[[features]]
name = "placement"
text = "placement"
buckets = 16
"""
"""The request's and imp's features of the test models (no campaign attributes)."""

ROLE_SPEC: Final = (
    _REQUEST_FEATURES
    + """
[[features]]
name = "campaign_bid"
campaign = "campaign_bid"
[[features]]
name = "advertiser"
campaign = "advertiser"
"""
)


def train_role_model(
    bodies: Sequence[bytes], *, seed: int, trees: int = 12
) -> tuple[lightgbm.Booster, FeatureSpec]:
    """A small binary model over :data:`ROLE_SPEC`, trained on ``bodies`` with every campaign
    attribute combination of a few, and labels from a fixed logistic function."""
    spec = features.loads(ROLE_SPEC)
    rng = np.random.default_rng(seed)
    blocks = []
    for bid, advertiser in [(0.5, 0.0), (2.0, 1.0), (5.0, 2.0), (float("nan"), 1.0)]:
        found = features.matrix_with_index(
            bodies,
            spec,
            timestamps=rng.uniform(1.7e9, 1.8e9, len(bodies)),
            campaign={"campaign_bid": bid, "advertiser": advertiser},
            skip_invalid=True,
        )
        blocks.append(found.values)
    x = np.vstack(blocks)
    filled = np.nan_to_num(x)
    logit = (
        -3.0 + 0.4 * filled[:, 0] + 0.3 * filled[:, 9] - 0.5 * filled[:, 10] + 0.2 * filled[:, 1]
    )
    y = (rng.random(len(x)) < 1 / (1 + np.exp(-logit))).astype(np.float64)
    return _train_small(x, y, spec, objective="binary", learning_rate=0.2, seed=seed, trees=trees)


WIN_RATE_SPEC: Final = _REQUEST_FEATURES
"""The imp's features a win-rate model reads: no campaign attributes (the price that wins an
imp is the imp's, whoever bids)."""
WIN_RATE_HAS_IFA: Final = 5
"""The column of ``has_ifa`` in :data:`WIN_RATE_SPEC`."""


def train_win_rate_model(
    bodies: Sequence[bytes], *, seed: int, trees: int = 12
) -> tuple[lightgbm.Booster, FeatureSpec]:
    """A small regression over :data:`WIN_RATE_SPEC`, trained on ``bodies`` to predict the
    natural log of the CPM that wins half the time: from $1.50, higher with an ad id and
    higher floors, lower on phones, with noise."""
    spec = features.loads(WIN_RATE_SPEC)
    rng = np.random.default_rng(seed)
    found = features.matrix_with_index(
        bodies, spec, timestamps=rng.uniform(1.7e9, 1.8e9, len(bodies)), skip_invalid=True
    )
    x = found.values
    filled = np.nan_to_num(x)
    y = (
        math.log(1.5)
        + 0.4 * filled[:, WIN_RATE_HAS_IFA]
        + 0.3 * np.log1p(np.clip(filled[:, 0], 0.0, 100.0))
        - 0.3 * (filled[:, 1] == 4)
        + rng.normal(0.0, 0.1, len(x))
    )
    return _train_small(
        x, y, spec, objective="regression", learning_rate=0.3, seed=seed, trees=trees
    )


def _train_small(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    spec: FeatureSpec,
    *,
    objective: str,
    learning_rate: float,
    seed: int,
    trees: int,
) -> tuple[lightgbm.Booster, FeatureSpec]:
    """A small, deterministic LightGBM model (7 leaves a tree, one thread) over ``spec``'s
    columns, its categorical ones declared."""
    params = {
        "objective": objective,
        "num_leaves": 7,
        "min_data_in_leaf": 5,
        "learning_rate": learning_rate,
        "verbose": -1,
        "num_threads": 1,
        "deterministic": True,
        "seed": seed,
    }
    data = lightgbm.Dataset(
        x, y, categorical_feature=spec.categorical_columns(), free_raw_data=False
    )
    return lightgbm.train(params, data, num_boost_round=trees), spec


def _amounts(low: int, high: int) -> st.SearchStrategy[Decimal]:
    return st.integers(low, high).map(lambda m: Decimal(m).scaleb(-6))


def _subset(items: Sequence[Any], max_size: int = 2) -> st.SearchStrategy[list[Any]]:
    return st.lists(st.sampled_from(items), max_size=max_size, unique=True)


@st.composite
def _creative(draw: st.DrawFn, key: str) -> dict[str, Any]:
    media = draw(st.sampled_from(["banner", "banner", "banner", "video", "audio", "native"]))
    creative: dict[str, Any] = {
        "id": key,
        "media": media,
        "adomain": draw(st.lists(st.sampled_from(ADOMAINS), min_size=1, max_size=2, unique=True)),
        "cat": draw(_subset(CATEGORIES)),
        "attr": draw(_subset([1, 2, 3])),
    }
    if media == "banner":
        creative["w"], creative["h"] = draw(st.sampled_from(SIZES))
    elif media in ("video", "audio"):
        creative["duration"] = draw(st.sampled_from([6, 15, 30]))
        mimes = VIDEO_MIMES if media == "video" else AUDIO_MIMES
        creative["mime"] = draw(st.sampled_from(mimes))
    if draw(st.booleans()):
        creative["bundle"] = draw(st.sampled_from(BUNDLES))
    scheme = draw(st.sampled_from(["https", "https", "http"]))
    if draw(st.booleans()):
        creative["markup"] = f"<a href='{scheme}://x.example/?c={{campaign}}&p=${{AUCTION_PRICE}}'>"
    if draw(st.booleans()):
        creative["nurl"] = f"{scheme}://n.example/?cr={{creative}}&b={{price_bucket}}&i={{imp}}"
    return creative


@st.composite
def _campaign(draw: st.DrawFn, index: int) -> dict[str, Any]:
    goal = draw(st.sampled_from(["cpm", "cpc", "cpa"]))
    max_bid = draw(_amounts(1, 20_000_000))
    campaign: dict[str, Any] = {
        "id": f"c{index}",
        "goal": goal,
        "max_bid": max_bid,
        "min_bid": draw(_amounts(0, int(max_bid.scaleb(6)))),
        "creatives": [draw(_creative(f"cr{index}-{k}")) for k in range(draw(st.integers(1, 4)))],
        "features": {
            "campaign_bid": draw(st.sampled_from([0.5, 2.0, 5.0, 3.3])),
            "advertiser": draw(st.sampled_from([0.0, 1.0, 2.0])),
        },
    }
    amount = {"cpm": "cpm", "cpc": "target_cpc", "cpa": "target_cpa"}[goal]
    campaign[amount] = draw(_amounts(0, 10_000_000 if goal == "cpm" else 200_000_000))
    deals = draw(_subset(DEALS)) if draw(st.integers(0, 3)) == 0 else []
    if deals:
        campaign["deals"] = deals
        campaign["deals_only"] = draw(st.booleans())
    targeting: dict[str, Any] = {}
    rules: list[tuple[str, Sequence[Any]]] = [
        ("countries", COUNTRIES),
        ("device_types", DEVICE_TYPES),
        ("os", [s.lower() for s in OSES] + ["IOS"]),
        ("connection_types", CONNECTIONS),
        ("domains", DOMAINS),
        ("domains_block", DOMAINS),
        ("bundles", BUNDLES),
        ("bundles_block", BUNDLES),
        ("categories", CATEGORIES),
        ("categories_block", CATEGORIES),
        ("segments", SEGMENTS),
        ("regions", ["NY", "CA"]),
    ]
    for key, vocabulary in rules:
        if draw(st.integers(0, 11)) == 0:  # most campaigns leave most rules open
            targeting[key] = draw(st.lists(st.sampled_from(vocabulary), min_size=1, max_size=2))
    if draw(st.integers(0, 7)) == 0:
        targeting["daypart"] = {
            "timezone": draw(st.sampled_from(ZONES)),
            "hours": draw(st.lists(st.integers(0, 23), max_size=12, unique=True)),
            "weekdays": draw(st.lists(st.integers(0, 6), max_size=5, unique=True)),
        }
    campaign["targeting"] = targeting
    return campaign


@st.composite
def configs(draw: st.DrawFn) -> Config:
    """Bidder configs with 1-6 campaigns of every goal, rule, creative kind and currency."""
    rates = {
        "EUR": draw(st.sampled_from(["1.08", "1.1", "0.93"])),
        "GBP": draw(st.sampled_from(["1.27", "1.3"])),
        "JPY": draw(st.sampled_from(["0.0067", "0.007"])),
    }
    bidder: dict[str, Any] = {"seat": "s1", "currency": draw(st.sampled_from(["USD", "EUR"]))}
    if draw(st.booleans()):
        scheme = draw(st.sampled_from(["https", "http"]))
        bidder["nurl"] = f"{scheme}://win.example/?p=${{AUCTION_PRICE}}&c={{campaign}}"
    shading: dict[str, Any] = {
        "enabled": draw(st.booleans()),
        "center": draw(_amounts(100_000, 5_000_000)),
        "scale": draw(st.sampled_from([0.2, 0.5, 1.0])),
    }
    if draw(st.booleans()):
        shading["segments"] = [
            {
                "center": draw(_amounts(100_000, 5_000_000)),
                "scale": draw(st.sampled_from([0.3, 0.8])),
                "countries": draw(_subset(COUNTRIES)),
                "media": draw(_subset(["banner", "video"])),
                "device_types": draw(_subset(DEVICE_TYPES)),
            }
        ]
    data = {
        "bidder": bidder,
        "fx": {"base": "USD", "rates": {k: Decimal(v) for k, v in rates.items()}},
        "models": {"ctr": "ctr", "cvr": "cvr"},
        "shading": shading,
        "campaigns": [draw(_campaign(i)) for i in range(draw(st.integers(1, 6)))],
    }
    return msgspec.convert(data, Config)


@st.composite
def _imp(draw: st.DrawFn, index: int) -> dict[str, Any]:
    imp: dict[str, Any] = {"id": str(index + 1)}
    media = ["banner", "banner", "banner", "video", "audio", "native"]
    offered = draw(st.lists(st.sampled_from(media), min_size=1, max_size=3))
    if "banner" in offered:
        w, h = draw(st.sampled_from(SIZES))
        banner: dict[str, Any] = (
            {"w": w, "h": h}
            if draw(st.booleans())
            else {"format": [{"w": a, "h": b} for a, b in draw(_subset(SIZES, 3))]}
        )
        _maybe(draw, banner, "battr", _subset([1, 2, 3]), odds=3)
        imp["banner"] = banner
    if "video" in offered:
        imp["video"] = {
            "mimes": draw(st.lists(st.sampled_from(VIDEO_MIMES), min_size=1, unique=True)),
            "minduration": draw(st.sampled_from([0, 5, 10])),
            "maxduration": draw(st.sampled_from([0, 15, 30, 60])),
        }
        _maybe(draw, imp["video"], "battr", _subset([1, 2, 3]), odds=3)
    if "audio" in offered:
        imp["audio"] = {"mimes": AUDIO_MIMES, "maxduration": draw(st.sampled_from([0, 10, 30]))}
    if "native" in offered:
        imp["native"] = {"request": NATIVE_REQUEST}
        _maybe(draw, imp["native"], "battr", _subset([1, 2, 3]), odds=3)
    floor = draw(st.sampled_from([None, 0, 0.01, 0.29, 1, 1.5, 2.37, 5, 20, 0.1234567]))
    if floor is not None:
        imp["bidfloor"] = floor
    currency = draw(st.sampled_from([None, "USD", "EUR", "eur", "JPY", "CHF"]))
    if currency is not None:
        imp["bidfloorcur"] = currency
    if draw(st.booleans()):
        imp["secure"] = draw(st.sampled_from([0, 1]))
    if draw(st.integers(0, 3)) == 0:
        deals = []
        for deal_id in draw(_subset([*DEALS, "other"], 3)):
            deal: dict[str, Any] = {"id": deal_id}
            if draw(st.booleans()):
                deal["bidfloor"] = draw(st.sampled_from([0, 0.5, 3, 12]))
                deal["bidfloorcur"] = draw(st.sampled_from(["USD", "GBP", "CHF"]))
            if draw(st.booleans()):
                deal["at"] = draw(st.sampled_from([1, 2, 3]))
            if draw(st.integers(0, 3)) == 0:
                deal["wseat"] = draw(_subset(["s1", "other"]))
            deals.append(deal)
        imp["pmp"] = {"private_auction": draw(st.sampled_from([0, 0, 1])), "deals": deals}
    return imp


def _maybe(
    draw: st.DrawFn, target: dict[str, Any], key: str, values: st.SearchStrategy[Any], odds: int = 2
) -> None:
    """Sets ``key`` one time in ``odds``."""
    if draw(st.integers(1, odds)) == 1:
        target[key] = draw(values)


@st.composite
def requests(draw: st.DrawFn, ids: st.SearchStrategy[str] | None = None) -> bytes:
    """Bid requests over the same vocabularies as :func:`configs`, with request ids from
    ``ids`` (``"r1"`` when ``None``: the id only matters to pacing's draw)."""
    request: dict[str, Any] = {
        "id": "r1" if ids is None else draw(ids),
        "imp": [draw(_imp(i)) for i in range(draw(st.integers(1, 3)))],
    }
    _maybe(draw, request, "at", st.sampled_from([1, 2]))
    currencies = [[], ["USD"], ["EUR"], ["JPY"], ["GBP", "EUR"], ["CHF"]]
    _maybe(draw, request, "cur", st.sampled_from(currencies), odds=3)
    _maybe(draw, request, "wseat", st.sampled_from([[], ["s1"], ["other"]]), odds=6)
    _maybe(draw, request, "bseat", st.sampled_from([[], ["s1"], ["other"]]), odds=6)
    _maybe(draw, request, "bcat", _subset(CATEGORIES), odds=3)
    _maybe(draw, request, "badv", _subset(ADOMAINS), odds=4)
    _maybe(draw, request, "bapp", _subset(BUNDLES), odds=4)
    _maybe(draw, request, "test", st.sampled_from([0, 1]))
    if draw(st.booleans()):
        site: dict[str, Any] = {}
        _maybe(draw, site, "domain", st.sampled_from([*DOMAINS, "BAD.example"]))
        _maybe(draw, site, "cat", _subset(CATEGORIES))
        request["site"] = site
    else:
        app: dict[str, Any] = {}
        _maybe(draw, app, "bundle", st.sampled_from(BUNDLES))
        _maybe(draw, app, "cat", _subset(CATEGORIES))
        request["app"] = app
    device: dict[str, Any] = {}
    _maybe(draw, device, "devicetype", st.sampled_from(DEVICE_TYPES))
    _maybe(draw, device, "os", st.sampled_from([*OSES, "ios"]))
    _maybe(draw, device, "connectiontype", st.sampled_from(CONNECTIONS))
    _maybe(draw, device, "lmt", st.sampled_from([0, 1]))
    _maybe(draw, device, "ifa", st.just("ifa-1"))
    geo: dict[str, Any] = {}
    _maybe(draw, geo, "country", st.sampled_from([*COUNTRIES, "usa"]))
    _maybe(draw, geo, "region", st.sampled_from(["NY", "CA"]))
    _maybe(draw, geo, "utcoffset", st.sampled_from([-300, 60, 330]))
    if geo:
        device["geo"] = geo
    if device:
        request["device"] = device
    user: dict[str, Any] = {}
    _maybe(draw, user, "yob", st.sampled_from([1970, 1999]))
    _maybe(draw, user, "consent", st.sampled_from(["", "CONSENT"]))
    if draw(st.booleans()):
        user["data"] = [{"id": "dp", "segment": [{"id": s} for s in draw(_subset(SEGMENTS))]}]
    if user:
        request["user"] = user
    regs: dict[str, Any] = {}
    _maybe(draw, regs, "coppa", st.sampled_from([0, 1]))
    _maybe(draw, regs, "gdpr", st.sampled_from([0, 1]))
    if regs:
        request["regs"] = regs
    return json.dumps(request).encode()


@st.composite
def pacings(draw: st.DrawFn, campaign_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Pacing states, ``(throttle_ppm, multiplier_ppm)``, for about two in three of
    ``campaign_ids`` (the others unpaced): throttles that stop the campaign, let it in
    sometimes or always; multipliers from x0.5 to x2, round or not."""
    throttles = st.one_of(st.just(0), st.integers(1, 999_999), st.just(1_000_000))
    multipliers = st.one_of(
        st.sampled_from([500_000, 1_000_000, 1_300_000, 2_000_000]),
        st.integers(500_000, 2_000_000),
    )
    paced = [c for c in campaign_ids if draw(st.sampled_from([True, True, False]))]
    return {campaign: (draw(throttles), draw(multipliers)) for campaign in paced}


_LEFT_OUT: Final = frozenset(TARGETING_REASONS) | {"no_campaign", "budget"}
"""Candidate reasons that are targeting outcomes, which the engine lists under ``targeting``
only: a rule, a campaign an experiment arm leaves out (``no_campaign``) and one its pacing
throttle keeps out of the request (``budget``)."""


def _priced(candidates: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Candidates past targeting, comparable across both: who, why not, or at what price."""
    return sorted(
        (c["imp"], c["campaign"], c["excluded_by"], c["creative"], c["deal"], c["price"])
        for c in candidates
        if c["excluded_by"] not in _LEFT_OUT
    )


def _check_frequency(
    ledger: Ledger, config: Config, body: bytes, now: float, frequency: Frequency
) -> None:
    try:
        view = inspect_request_py(body)
    except InvalidRequestError:
        return
    user = user_key(view, personal=is_personal(view))
    if user is None:
        return
    for c in config.campaigns:
        if c.frequency_cap is not None:
            in_use = ledger.frequency(user, c.id, now)
            assert in_use == frequency.get((user, c.id), 0), (user, c.id, in_use)


def assert_same_decision(
    engine: Engine,
    config: Config,
    reference_models: dict[str, RoleModel],
    body: bytes,
    now: float,
    *,
    pacing: Pacing | None = None,
    budget: Budget | None = None,
    frequency: Frequency | None = None,
) -> dict[str, Any]:
    """Asserts that the engine and the reference make the same decision on ``body``: the same
    verdict, reasons, currency, targeting, imps, response JSON and per-candidate outcome (past
    targeting); and that ``bid`` answers what ``explain`` shows. Returns the engine's
    explanation, with what ``bid`` sent under ``"sent"``.

    ``pacing`` is what the caller set on ``engine`` (``Engine.set_pacing``), for the reference:
    the engine's ``pacing()`` is checked against it first (a campaign it does not list unpaced).
    ``budget``: the available nanos of the campaigns the engine's ledger limits, for the
    reference (``bidcore.reference.budget``); checked against the ledger's accounts first.
    With a ledger, ``bid`` registers the bids it makes and holds their cost and the user's
    frequency-cap slots; ``frequency`` (default: none in use) is then the slots in use
    (``bidcore.reference.frequency``), checked against the ledger's first for the request's
    user and every capped campaign.
    """
    if budget is not None:
        assert engine.ledger is not None
        limited = {c: a[1] for c, a in engine.ledger.accounts().items() if a[0]}
        assert {c: v for c, v in limited.items() if c in budget} == dict(budget)
    if engine.ledger is not None:
        frequency = {} if frequency is None else frequency
        _check_frequency(engine.ledger, config, body, now, frequency)
    if pacing is not None:
        assert engine.pacing() == {a: pacing.get(a, UNPACED) for a in account_ids(config)}
    try:
        expected = decide(
            body,
            config,
            reference_models,
            now=now,
            pacing=pacing,
            budget=budget,
            frequency=frequency,
        )
    except InvalidRequestError:
        try:
            engine.explain(body, now=now)
        except InvalidRequestError:
            return {}
        raise AssertionError("the reference refused a request the engine accepted") from None
    got: dict[str, Any] = engine.explain(body, now=now)
    assert got["bid"] == expected.bid
    assert got["reason"] == expected.reason
    assert got["currency"] == expected.currency
    assert got["personal"] == expected.personal
    assert got["arms"] == expected.arms
    assert got["targeting"] == expected.targeting
    assert got["imps"] == [
        {
            "imp": i.imp,
            "campaign": i.campaign,
            "creative": i.creative,
            "price": i.price,
            "deal": i.deal,
            "reason": i.reason,
        }
        for i in expected.imps
    ]
    response = None if got["response"] is None else json.loads(got["response"])
    assert response == expected.response
    reference_candidates = [
        {
            "imp": c.imp,
            "campaign": c.campaign,
            "excluded_by": c.excluded_by,
            "creative": c.creative,
            "deal": c.deal,
            "price": c.price,
        }
        for c in expected.candidates
    ]
    assert _priced(got["candidates"]) == _priced(reference_candidates)
    # bid() answers exactly what explain() shows, but for the {bid} tokens of the bids it
    # registered, where explain() writes zeros. The caller finds them in got["sent"].
    sent = engine.bid(body, now=now)
    assert _untokened(sent, got["response"]) == got["response"]
    got["sent"] = sent
    return got


_NO_TOKEN: Final = b"0" * 16


def _untokened(sent: bytes | None, explained: bytes | None) -> bytes | None:
    """``sent`` with zeros wherever ``explained`` (of the same length) has a zero token."""
    if sent is None or explained is None or len(sent) != len(explained):
        return sent
    masked = bytearray(sent)
    at = explained.find(_NO_TOKEN)
    while at >= 0:
        masked[at : at + 16] = _NO_TOKEN
        at = explained.find(_NO_TOKEN, at + 16)
    return bytes(masked)
