"""The native engine against the plain-Python reference (``bidcore.reference``).

Hypothesis generates bidder configs and bid requests over shared vocabularies
(``bidcore.testing.bidder``) and asserts both make the same decision: the same imps bid, the same
campaign, creative and deal, prices equal to the micro, the same no-bid reasons, the same
response JSON, and per candidate the same exclusion or price. The models are LightGBM boosters:
the reference calls ``Booster.predict``, the engine its own evaluator.

Examples per run: the ``ci`` profile (default), or ``HYPOTHESIS_PROFILE=long`` for 20,000
examples with no per-test timeout.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bidcore
from bidcore import models
from bidcore.config import Config, micros
from bidcore.reference import RoleModel
from bidcore.testing.bidder import assert_same_decision, configs, requests, train_role_model

CORPUS = Path(__file__).parent / "fixtures" / "openrtb" / "requests.jsonl"
TIMES = [1_795_390_200.0, 1_780_000_000.5, 1_700_000_000.0]

settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=20_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)
# The long profile runs for many minutes: no per-test timeout for it.
pytestmark = [pytest.mark.timeout(0)] if PROFILE == "long" else []


class _Trained(dict[str, tuple[RoleModel, models.Model]]):
    def __repr__(self) -> str:  # keeps Hypothesis' failure reports readable
        return "<trained ctr and cvr models>"


@pytest.fixture(scope="module")
def trained() -> dict[str, tuple[RoleModel, models.Model]]:
    bodies = [line for line in CORPUS.read_bytes().splitlines() if line.strip()][:1500]
    out = _Trained()
    for role, seed in (("ctr", 1), ("cvr", 2)):
        booster, spec = train_role_model(bodies, seed=seed)
        native = models.from_lightgbm(booster.model_to_string(), features=spec)
        out[role] = (RoleModel(predict=booster.predict, spec=spec), native)
    return out


def _native_models(trained: dict[str, tuple[RoleModel, models.Model]]) -> dict[str, models.Model]:
    return {role: pair[1] for role, pair in trained.items()}


def _reference_models(trained: dict[str, tuple[RoleModel, models.Model]]) -> dict[str, RoleModel]:
    return {role: pair[0] for role, pair in trained.items()}


@given(
    config=configs(),
    bodies=st.lists(requests(), min_size=1, max_size=4),
    now=st.sampled_from(TIMES),
)
def test_engine_and_reference_decide_alike(
    trained: dict[str, tuple[RoleModel, models.Model]],
    config: Config,
    bodies: list[bytes],
    now: float,
) -> None:
    engine = bidcore.Engine(config, models=_native_models(trained))
    for body in bodies:
        assert_same_decision(engine, config, _reference_models(trained), body, now)


@settings(max_examples=40)
@given(config=configs(), now=st.sampled_from(TIMES))
def test_engine_and_reference_decide_alike_on_the_corpus(
    trained: dict[str, tuple[RoleModel, models.Model]], config: Config, now: float
) -> None:
    engine = bidcore.Engine(config, models=_native_models(trained))
    lines = [line for line in CORPUS.read_bytes().splitlines() if line.strip()]
    for body in lines[:: max(1, len(lines) // 60)]:
        assert_same_decision(engine, config, _reference_models(trained), body, now)


def _allowed(body: bytes, bidder_currency: str) -> set[str]:
    cur = json.loads(body).get("cur") or []
    return {c.upper() for c in cur} or {bidder_currency}


@given(config=configs(), body=requests(), now=st.sampled_from(TIMES))
def test_money_properties_of_native_bids(
    trained: dict[str, tuple[RoleModel, models.Model]], config: Config, body: bytes, now: float
) -> None:
    """Every native bid: never above the campaign's max or its value (in the bid currency),
    never below the converted floor or 1 micro, in a currency the request allows; and turning
    shading off never lowers a price (shading never raises one)."""
    engine = bidcore.Engine(config, models=_native_models(trained))
    try:
        got = engine.explain(body, now=now)
    except bidcore.InvalidRequestError:
        return
    if not got["bid"]:
        return
    assert got["currency"] in _allowed(body, config.bidder.currency)
    campaigns = {c.id: c for c in config.campaigns}
    rates = {code: config.fx.rate_nanos(code) for code in ("USD", "EUR", "GBP", "JPY")}
    for c in got["candidates"]:
        if c["price"] is None:
            continue
        campaign = campaigns[c["campaign"]]
        bidder_rate, bid_rate = rates[config.bidder.currency], rates[got["currency"]]
        assert bidder_rate is not None
        assert bid_rate is not None
        # In exact integers: price * rate_bid <= min(value, max_bid) * rate_bidder.
        cap = min(c["value"], micros(campaign.max_bid))
        assert c["price"] * bid_rate <= cap * bidder_rate
        assert c["price"] >= max(c["floor"], 1)
    unshaded = msgspec.structs.replace(
        config, shading=msgspec.structs.replace(config.shading, enabled=False)
    )
    flat = bidcore.Engine(unshaded, models=_native_models(trained)).explain(body, now=now)
    for shaded, plain in zip(got["candidates"], flat["candidates"], strict=True):
        if shaded["price"] is not None:
            assert plain["price"] is not None
            assert shaded["price"] <= plain["price"]
