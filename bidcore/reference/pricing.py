"""Value, bounds, the shaded price and the rank of a candidate (``docs/engine.md``, steps 4-7).

Floats appear only where the spec computes in doubles (the model-based values and the win-rate
curve), each expression in the spec's written order so that the native engine, doing the same
IEEE operations, lands on the same bits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Final, NamedTuple

from bidcore.config import Campaign, Config, Media, Shading, micros

from .money import convert_down, convert_up
from .view import View, ascii_upper, lookup

__all__ = [
    "GRID_STEPS",
    "VALUE_CAP",
    "Bounds",
    "Curve",
    "bounds",
    "curve",
    "expected_surplus",
    "model_center",
    "scaled",
    "shaded_price",
    "value_micros",
    "win_rate",
]

GRID_STEPS: Final = 32
VALUE_CAP: Final = 10**18
"""The config's largest amount in micros: a model value above it (or infinite) is capped here,
which ``min(value, max_bid)`` would do anyway, so the cap only keeps integers bounded."""


def _micros_of_product(product: float) -> int:
    """``floor(product)`` clamped to ``[0, VALUE_CAP]``; NaN (a broken model) is worth 0."""
    if math.isnan(product) or product <= 0.0:
        return 0
    if product >= VALUE_CAP:
        return VALUE_CAP
    return math.floor(product)


def _goal_amount(amount: Decimal | None) -> int:
    if amount is None:
        raise AssertionError("the config requires the goal's amount")
    return micros(amount)


def value_micros(campaign: Campaign, scores: Mapping[str, float]) -> int:
    """What an impression is worth to the campaign, micros CPM in the bidder's currency, from
    the predictions by role (``ctr``, ``cvr``) its goal needs."""
    if campaign.goal == "cpm":
        return _goal_amount(campaign.cpm)
    if campaign.goal == "cpc":
        target_cpc = float(_goal_amount(campaign.target_cpc))
        return _micros_of_product(scores["ctr"] * target_cpc * 1000.0)
    target_cpa = float(_goal_amount(campaign.target_cpa))
    return _micros_of_product(scores["ctr"] * scores["cvr"] * target_cpa * 1000.0)


def scaled(value: int, multiplier_ppm: int) -> int:
    """``value`` times a multiplier of ``multiplier_ppm`` millionths (an experiment arm's, then
    the campaign's pacing), in integers and rounded down, within ``[0, VALUE_CAP]``: applied to
    the value before the caps, so ``max_bid``, floors and ``min_bid`` bound the scaled value."""
    return min(max(value * multiplier_ppm // 1_000_000, 0), VALUE_CAP)


class Bounds(NamedTuple):
    """The price range in the bid currency; empty (``upper < lower``) means no bid."""

    lower: int
    upper: int


def bounds(value: int, campaign: Campaign, floor: int, config: Config, currency: str) -> Bounds:
    """``upper`` = value capped by ``max_bid``; ``lower`` = the floor, ``min_bid`` and 1 micro.
    The bidder's currency converts to the bid currency by construction of the currency gate."""
    bidder = config.bidder.currency
    upper = convert_down(min(value, micros(campaign.max_bid)), bidder, currency, config.fx)
    min_bid = convert_up(micros(campaign.min_bid), bidder, currency, config.fx)
    assert upper is not None
    assert min_bid is not None
    return Bounds(lower=max(floor, min_bid, 1), upper=upper)


class Curve(NamedTuple):
    """The win-rate curve's parameters: ``center`` in bid-currency units, ``scale``."""

    center: float
    scale: float


def model_center(ln_center: float) -> int | None:
    """The curve center a win-rate model predicts, in micros of the bidder's currency: the
    prediction is the natural log of the CPM that wins half the time, so
    ``floor(exp(ln_center) * 10^6)``, at least 1 and at most 10^15. ``None`` when that is not
    a finite number (a NaN prediction, an ``exp`` beyond a double): the configured center
    applies then."""
    try:
        scaled = math.exp(ln_center) * 1e6
    except OverflowError:
        return None
    if not math.isfinite(scaled):
        return None
    return min(max(math.floor(scaled), 1), 10**15)


def curve(
    config: Config,
    view: View,
    media: Media,
    currency: str,
    shading: Shading | None = None,
    center_micros: int | None = None,
) -> Curve:
    """The first segment of the shading table ``shading`` (the bidder's ``[shading]`` when
    ``None``; an experiment arm's otherwise) matching the request and the bid's media, else the
    table's defaults.

    The configured center is in the bidder's currency (as every config amount is);
    ``center_micros`` (the win-rate model's, :func:`model_center`) replaces it when given. The
    center is converted down to the bid currency in micros, then to a double, with 1 micro as
    the least center (``ln 0`` is undefined).
    """
    if shading is None:
        shading = config.shading
    country = lookup(view, "device", "geo", "country")
    country = ascii_upper(country) if isinstance(country, str) else None
    device_type = lookup(view, "device", "devicetype")
    center, scale = shading.center, shading.scale
    for segment in shading.segments:
        if (
            (not segment.countries or country in segment.countries)
            and (not segment.device_types or device_type in segment.device_types)
            and (not segment.media or media in segment.media)
        ):
            center, scale = segment.center, segment.scale
            break
    configured = micros(center) if center_micros is None else center_micros
    converted = convert_down(configured, config.bidder.currency, currency, config.fx)
    assert converted is not None
    return Curve(center=max(converted, 1) / 1e6, scale=scale)


def win_rate(price: int, c: Curve) -> float:
    """``w(b) = 1 / (1 + exp(-(ln(b / 1e6) - ln(center)) / scale))``. An ``exp`` too large for a
    double is infinity (as IEEE arithmetic gives it), so the win rate is 0."""
    exponent = -(math.log(price / 1e6) - math.log(c.center)) / c.scale
    try:
        grows = math.exp(exponent)
    except OverflowError:
        grows = math.inf
    return 1.0 / (1.0 + grows)


def expected_surplus(upper: int, price: int, c: Curve) -> float:
    """``(upper - price) * w(price)``: what winning at ``price`` is expected to leave over."""
    return float(upper - price) * win_rate(price, c)


def shaded_price(b: Bounds, c: Curve) -> int:
    """The peak of the expected surplus on the 33-point grid from ``lower`` to ``upper``,
    walking up: the best grid price so far (the first, lowest, on ties) until a surplus falls
    below it. The surplus is log-concave in the price, so that first fall is past the grid's
    maximum. The grid's ends are ``lower`` and ``upper``, so the price never leaves the bounds."""
    best_price = b.lower
    best = expected_surplus(b.upper, b.lower, c)
    for i in range(1, GRID_STEPS + 1):
        price = b.lower + (b.upper - b.lower) * i // GRID_STEPS
        surplus = expected_surplus(b.upper, price, c)
        if surplus > best:
            best_price, best = price, surplus
        elif surplus < best:
            break
    return best_price
