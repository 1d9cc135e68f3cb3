"""Experiment arms in the decision: the native engine against the plain-Python reference.

``docs/experiments.md`` section 12: an arm replaces the models of the campaigns it applies to,
gives them its own shading table, multiplies their value, and an arm listing ``campaigns``
leaves its experiment's other campaigns out (``no_campaign``). The hand-written cases pick a
unit in each arm and check one effect each, with its arithmetic, on both sides; the property
test draws configs with 1-3 layers of random arms and requests with varied unit ids, and asserts
that ``Engine.explain``/``Engine.bid`` and :func:`bidcore.reference.decide` agree on everything
they both show.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, NamedTuple

import lightgbm
import msgspec
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import bidcore
from bidcore import models
from bidcore.config import Config, loads
from bidcore.engine import arm_model_key, arm_models
from bidcore.errors import InvalidRequestError
from bidcore.experiments import assign_request
from bidcore.reference import TARGETING_REASONS, Decision, RoleModel, decide
from bidcore.reference.arms import Assigned
from bidcore.reference.pricing import Bounds, Curve, shaded_price
from bidcore.testing.bidder import COUNTRIES, DEVICE_TYPES, configs, requests, train_role_model

CORPUS: Final = Path(__file__).parent / "fixtures" / "openrtb" / "requests.jsonl"
NOW: Final = 1_795_390_200.0
TIMES: Final = [1_795_390_200.0, 1_780_000_000.5, 1_700_000_000.0]
POOL: Final = ("ctr", "cvr", "alt-a", "alt-b")
"""The trained models, by name: the bidder's two and two more for arms to swap in."""


Predict = Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]


class Pair(NamedTuple):
    """One trained model on both sides: the reference's (``Booster.predict``), the engine's."""

    reference: RoleModel
    native: models.Model


def _predictor(booster: lightgbm.Booster) -> Predict:
    return lambda rows: np.asarray(booster.predict(rows), dtype=np.float64)


class _Pool(dict[str, Pair]):
    def __repr__(self) -> str:  # keeps Hypothesis' failure reports readable
        return "<trained models>"


@pytest.fixture(scope="module")
def pool() -> dict[str, Pair]:
    bodies = [line for line in CORPUS.read_bytes().splitlines() if line.strip()][:1000]
    out = _Pool()
    for seed, name in enumerate(POOL, start=1):
        booster, spec = train_role_model(bodies, seed=seed, trees=8 + seed)
        native = models.from_lightgbm(booster.model_to_string(), features=spec)
        out[name] = Pair(RoleModel(predict=_predictor(booster), spec=spec), native)
    return out


def engine_and_models(
    config: Config, pool: dict[str, Pair]
) -> tuple[bidcore.Engine, dict[str, RoleModel]]:
    """The engine and the reference's models: the bidder's ``ctr`` and ``cvr``, and each arm's
    under its key, the pool's model its config path names."""
    named = {"ctr": "ctr", "cvr": "cvr", **arm_models(config)}
    engine = bidcore.Engine(config, models={key: pool[name].native for key, name in named.items()})
    return engine, {key: pool[name].reference for key, name in named.items()}


def _candidates(candidates: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Candidates past targeting (and not left out by an arm), with their arithmetic."""
    kept = [
        c
        for c in candidates
        if c["excluded_by"] not in TARGETING_REASONS and c["excluded_by"] != "no_campaign"
    ]
    kept.sort(key=lambda c: (c["imp"], c["campaign"]))
    fields = ("excluded_by", "creative", "deal", "value", "floor", "lower", "upper", "price")
    return [
        (
            c["imp"],
            c["campaign"],
            *(c[f] for f in fields),
            c["surplus"],
            sorted(c["scores"].items()),
        )
        for c in kept
    ]


def assert_agree(
    engine: bidcore.Engine,
    config: Config,
    reference_models: dict[str, RoleModel],
    body: bytes,
    now: float = NOW,
) -> tuple[dict[str, Any], Decision | None]:
    """Asserts that the engine and the reference decide ``body`` alike, arms included; returns
    the engine's explanation and the reference's decision (``None`` for an invalid body)."""
    try:
        expected = decide(body, config, reference_models, now=now)
    except InvalidRequestError:
        with pytest.raises(InvalidRequestError):
            engine.explain(body, now=now)
        return {}, None
    got: dict[str, Any] = engine.explain(body, now=now)
    assert got["arms"] == expected.arms
    assert got["bid"] == expected.bid
    assert got["reason"] == expected.reason
    assert got["currency"] == expected.currency
    assert got["personal"] == expected.personal
    assert got["targeting"] == expected.targeting
    assert got["imps"] == [msgspec.structs.asdict(i) for i in expected.imps]
    response = None if got["response"] is None else json.loads(got["response"])
    assert response == expected.response
    reference_candidates = [msgspec.structs.asdict(c) for c in expected.candidates]
    assert _candidates(got["candidates"]) == _candidates(reference_candidates)
    # bid() answers what explain() shows.
    assert engine.bid(body, now=now) == got["response"]
    return got, expected


# --- Hand-written cases ---------------------------------------------------------------------

CREATIVE = """
[[campaigns.creatives]]
id = "cr-{id}"
media = "banner"
w = 300
h = 250
adomain = ["shop.example"]
nurl = "https://n.example/win?c={{campaign}}&arm={{arm}}"
"""


def campaign(cid: str, money: str, extra: str = "") -> str:
    """A campaign block ``cid`` with one 300x250 banner creative ``cr-{cid}``; ``money`` its goal
    and amounts, ``extra`` more keys (inline tables)."""
    return f'[[campaigns]]\nid = "{cid}"\n{money}\n{extra}\n' + CREATIVE.format(id=cid)


def bidder(campaigns: str, experiments: str, head: str = "") -> Config:
    return loads(
        f'{head}\n[models]\nctr = "ctr"\ncvr = "cvr"\n{campaigns}\n{experiments}',
    )


def experiment(key: str, arms: list[str], *, campaigns: str = "", layer: str = "l1") -> str:
    """A layer ``layer`` (seed ``{layer}-seed``) holding one experiment ``key`` with ``arms``
    (inline tables), equal weights."""
    scope = f"campaigns = {campaigns}\n" if campaigns else ""
    listed = ",\n    ".join(arms)
    return (
        f'[[experiments.layers]]\nname = "{layer}"\nseed = "{layer}-seed"\n'
        f'[[experiments.layers.experiments]]\nkey = "{key}"\n{scope}arms = [\n    {listed},\n]\n'
    )


def user_in(config: Config, key: str, arm: str) -> str:
    """A user id the request's assignment puts in ``arm`` of experiment ``key``."""
    for i in range(100_000):
        user = f"user-{i}"
        placed = assign_request({"id": "r1", "user": {"id": user}}, config.experiments.layers)
        if any(a.experiment == key and a.arm == arm for a in placed.values()):
            return user
    raise AssertionError(f"no user lands in {key}/{arm}")


def request(
    user: str | None,
    *,
    at: int = 2,
    floor: float | None = None,
    country: str | None = "USA",
    **fields: Any,
) -> bytes:
    """A site request for one 300x250 banner imp from ``user`` (``user.id``)."""
    imp: dict[str, Any] = {"id": "1", "banner": {"w": 300, "h": 250}}
    if floor is not None:
        imp["bidfloor"] = floor
    body: dict[str, Any] = {
        "id": "r1",
        "at": at,
        "imp": [imp],
        "site": {"domain": "news.example"},
        "device": {"devicetype": 2, "os": "iOS"},
        **fields,
    }
    if country is not None:
        body["device"]["geo"] = {"country": country}
    if user is not None:
        body["user"] = {"id": user, "yob": 1980}
    return json.dumps(body).encode()


def candidate(explained: dict[str, Any], cid: str) -> dict[str, Any]:
    (found,) = (c for c in explained["candidates"] if c["campaign"] == cid)
    assert isinstance(found, dict)
    return found


MULTIPLIED = (
    campaign("c1", 'goal = "cpm"\ncpm = 2.345678\nmax_bid = 5')
    + campaign("c2", 'goal = "cpm"\ncpm = 2\nmax_bid = 5')
    + campaign("c3", 'goal = "cpm"\ncpm = 1\nmax_bid = 5')
)


@pytest.mark.parametrize(
    ("multiplier", "floor", "values", "winner", "reason"),
    [
        # 2_345_678 * 1.1 = 2_580_245.8, rounded down; 2_000_000 * 1.1 = 2_200_000 exactly.
        ("1.1", None, (2_580_245, 2_200_000), ("c1", 2_580_245), None),
        # 2_345_678 * 0.000001 = 2.3 -> 2 micros, c2 2 too: c3, outside the experiment, wins.
        ("0.000001", None, (2, 2), ("c3", 1_000_000), None),
        # 7_037_034 and 6_000_000, both capped at max_bid 5: no multiplier bids above it.
        ("3", None, (7_037_034, 6_000_000), ("c1", 5_000_000), None),
        # A floor of 2.5 is above both values, but not above c1's scaled one.
        ("1.1", 2.5, (2_580_245, 2_200_000), ("c1", 2_580_245), None),
        # Scaled down below a floor the bidder's values meet.
        ("0.5", 1.5, (1_172_839, 1_000_000), None, "below_floor"),
    ],
)
def test_a_multiplier_arm_scales_the_value_before_the_caps(
    pool: dict[str, Pair],
    multiplier: str,
    floor: float | None,
    values: tuple[int, int],
    winner: tuple[str, int] | None,
    reason: str | None,
) -> None:
    arms = ['{name = "control"}', f'{{name = "treatment", bid_multiplier = {multiplier}}}']
    config = bidder(MULTIPLIED, experiment("mult", arms, campaigns='["c1", "c2"]'))
    engine, reference = engine_and_models(config, pool)

    treated, _ = assert_agree(
        engine, config, reference, request(user_in(config, "mult", "treatment"), floor=floor)
    )
    assert treated["arms"] == {"mult": "treatment"}
    assert (candidate(treated, "c1")["value"], candidate(treated, "c2")["value"]) == values
    assert candidate(treated, "c3")["value"] == 1_000_000  # outside the experiment's campaigns
    (imp,) = treated["imps"]
    assert (imp["campaign"], imp["price"]) == (winner or (None, None))
    assert imp["reason"] == reason

    control, _ = assert_agree(
        engine, config, reference, request(user_in(config, "mult", "control"), floor=floor)
    )
    assert control["arms"] == {"mult": "control"}
    assert (candidate(control, "c1")["value"], candidate(control, "c2")["value"]) == (
        2_345_678,
        2_000_000,
    )


SHADED = campaign("c1", 'goal = "cpm"\ncpm = 4\nmax_bid = 5')
SHADING_ARMS = [
    '{name = "control"}',
    '{name = "own", shading = {center = 1.2, scale = 0.4}}',
    '{name = "scale-only", shading = {scale = 0.9}}',
    '{name = "off", shading = {enabled = false}}',
    '{name = "on", shading = {enabled = true}}',
]


def shading_head(enabled: bool) -> str:
    # The bidder's curve (1, 0.5) and a segment for the USA (3, 0.3).
    return (
        f"[shading]\nenabled = {str(enabled).lower()}\ncenter = 1\nscale = 0.5\n"
        '[[shading.segments]]\ncenter = 3\nscale = 0.3\ncountries = ["USA"]\n'
    )


@pytest.mark.parametrize(
    ("enabled", "arm", "curve"),
    [
        (True, "control", (3.0, 0.3)),  # the bidder's segment for the USA
        (True, "own", (1.2, 0.4)),  # the arm's own curve: no segment applies to it
        (True, "scale-only", (1.0, 0.9)),  # the bidder's center with the arm's scale
        (True, "off", None),  # unshaded: the bid is its upper bound
        (True, "on", (3.0, 0.3)),  # only `enabled`: the bidder's curve and segments
        (False, "control", None),
        (False, "own", None),  # its own curve, but shading stays the bidder's: off
        (False, "on", (3.0, 0.3)),
    ],
)
def test_a_shading_arm_prices_on_its_own_table(
    pool: dict[str, Pair], enabled: bool, arm: str, curve: tuple[float, float] | None
) -> None:
    config = bidder(SHADED, experiment("shade", SHADING_ARMS), head=shading_head(enabled))
    engine, reference = engine_and_models(config, pool)
    user = user_in(config, "shade", arm)
    got, _ = assert_agree(engine, config, reference, request(user, at=1, floor=1.0))
    (imp,) = got["imps"]
    bounds = Bounds(lower=1_000_000, upper=4_000_000)
    expected = bounds.upper if curve is None else shaded_price(bounds, Curve(*curve))
    assert imp["price"] == expected
    if curve is not None:
        assert expected < bounds.upper
    # In Europe the segment does not match: the bidder's own curve (1, 0.5) for the control.
    europe, _ = assert_agree(
        engine, config, reference, request(user, at=1, floor=1.0, country="FRA")
    )
    if arm in ("control", "on") and curve is not None:
        assert europe["imps"][0]["price"] == shaded_price(bounds, Curve(1.0, 0.5))
    elif arm in ("own", "scale-only"):
        assert europe["imps"][0]["price"] == imp["price"]


def test_shading_arms_move_the_price_against_the_control(pool: dict[str, Pair]) -> None:
    config = bidder(SHADED, experiment("shade", SHADING_ARMS), head=shading_head(True))
    engine, reference = engine_and_models(config, pool)
    prices = {}
    for arm in ("control", "own", "scale-only", "off"):
        got, _ = assert_agree(
            engine, config, reference, request(user_in(config, "shade", arm), at=1, floor=1.0)
        )
        prices[arm] = got["imps"][0]["price"]
    assert len(set(prices.values())) == 4, prices


SUBSET = (
    campaign("c1", 'goal = "cpm"\ncpm = 1\nmax_bid = 5')
    + campaign("c2", 'goal = "cpm"\ncpm = 3\nmax_bid = 5')
    + campaign("c3", 'goal = "cpm"\ncpm = 2\nmax_bid = 5', 'targeting = {countries = ["USA"]}')
    + campaign("c4", 'goal = "cpm"\ncpm = 4\nmax_bid = 5', 'targeting = {countries = ["FRA"]}')
)
SUBSET_ARMS = [
    '{name = "control"}',
    '{name = "only-c1", campaigns = ["c1"]}',
    '{name = "only-c4", campaigns = ["c4"]}',
]


@pytest.mark.parametrize(
    ("arm", "country", "targeting", "winner", "reason"),
    [
        ("control", "USA", {"c1": None, "c2": None, "c3": None, "c4": "country"}, "c2", None),
        # c2 is left out (no_campaign); c4 keeps its own targeting failure; c3 is outside the
        # experiment's campaigns, untouched, and wins.
        (
            "only-c1",
            "USA",
            {"c1": None, "c2": "no_campaign", "c3": None, "c4": "country"},
            "c3",
            None,
        ),
        # Every campaign out: left out by the arm or failing targeting.
        (
            "only-c4",
            "GBR",
            {"c1": "no_campaign", "c2": "no_campaign", "c3": "country", "c4": "country"},
            None,
            "no_campaign",
        ),
        (
            "only-c4",
            "FRA",
            {"c1": "no_campaign", "c2": "no_campaign", "c3": "country", "c4": None},
            "c4",
            None,
        ),
    ],
)
def test_an_arm_campaign_subset_leaves_the_others_out(
    pool: dict[str, Pair],
    arm: str,
    country: str,
    targeting: dict[str, str | None],
    winner: str | None,
    reason: str | None,
) -> None:
    config = bidder(SUBSET, experiment("subset", SUBSET_ARMS, campaigns='["c1", "c2", "c4"]'))
    engine, reference = engine_and_models(config, pool)
    got, expected = assert_agree(
        engine, config, reference, request(user_in(config, "subset", arm), country=country)
    )
    assert got["targeting"] == targeting
    assert got["imps"][0]["campaign"] == winner
    assert got["reason"] == reason
    assert got["arms"] == {"subset": arm}  # a no-bid carries its arm too
    assert expected is not None
    left_out = {c.campaign for c in expected.candidates if c.excluded_by == "no_campaign"}
    assert left_out == {c for c, r in targeting.items() if r == "no_campaign"}


MODELLED = campaign(
    "c1", 'goal = "cpc"\ntarget_cpc = 0.05\nmax_bid = 100', "features = {campaign_bid = 2.0}"
) + campaign(
    "c2",
    'goal = "cpa"\ntarget_cpa = 2\nmax_bid = 100',
    "features = {campaign_bid = 5.0, advertiser = 1.0}",
)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _predict(pool: dict[str, Pair], name: str, row: list[float]) -> float:
    return float(pool[name].reference.predict(np.array([row], dtype=np.float64))[0])


def test_an_arm_model_replaces_the_bidders(pool: dict[str, Pair]) -> None:
    arms = ['{name = "control"}', '{name = "treatment", models = {ctr = "alt-a"}}']
    config = bidder(MODELLED, experiment("ctr-v2", arms))
    engine, reference = engine_and_models(config, pool)
    assert set(engine.models) == {"ctr", "cvr", arm_model_key("ctr", "ctr-v2", "treatment")}
    for arm, ctr in (("control", "ctr"), ("treatment", "alt-a")):
        got, expected = assert_agree(
            engine, config, reference, request(user_in(config, "ctr-v2", arm))
        )
        assert expected is not None
        for cid in ("c1", "c2"):
            (ours,) = (c for c in expected.candidates if c.campaign == cid)
            theirs = candidate(got, cid)
            ctr_row = ours.features["ctr"]
            assert theirs["scores"]["ctr"] == _predict(pool, ctr, ctr_row)
            other = "alt-a" if ctr == "ctr" else "ctr"
            assert theirs["scores"]["ctr"] != _predict(pool, other, ctr_row)
        # cvr is not replaced: the bidder's model scores c2's cvr in both arms.
        (c2,) = (c for c in expected.candidates if c.campaign == "c2")
        assert candidate(got, "c2")["scores"]["cvr"] == _predict(pool, "cvr", c2.features["cvr"])
        c1 = candidate(got, "c1")
        assert c1["value"] == math.floor(c1["scores"]["ctr"] * 50_000 * 1000.0)


def test_an_experiments_campaigns_leave_the_others_untouched(pool: dict[str, Pair]) -> None:
    # c1 and c3 are alike; only c1 is in the experiment, whose treatment changes everything.
    both = MODELLED + campaign(
        "c3", 'goal = "cpc"\ntarget_cpc = 0.05\nmax_bid = 100', "features = {campaign_bid = 2.0}"
    )
    arms = [
        '{name = "control"}',
        '{name = "treatment", models = {ctr = "alt-b", cvr = "alt-a"}, bid_multiplier = 1.5, '
        "shading = {enabled = false}}",
    ]
    config = bidder(both, experiment("scoped", arms, campaigns='["c1"]'), head=shading_head(True))
    engine, reference = engine_and_models(config, pool)
    control, _ = assert_agree(
        engine, config, reference, request(user_in(config, "scoped", "control"), at=1)
    )
    treated, _ = assert_agree(
        engine, config, reference, request(user_in(config, "scoped", "treatment"), at=1)
    )
    assert treated["arms"] == {"scoped": "treatment"}
    for cid in ("c2", "c3"):  # as JSON: NaN features compare equal
        assert _json(candidate(treated, cid)) == _json(candidate(control, cid))
    assert candidate(control, "c1")["scores"] == candidate(control, "c3")["scores"]
    c1 = candidate(treated, "c1")
    assert c1["scores"]["ctr"] != candidate(control, "c1")["scores"]["ctr"]
    assert c1["value"] == math.floor(c1["scores"]["ctr"] * 50_000 * 1000.0) * 3 // 2
    assert c1["price"] == c1["upper"]  # shading off for c1 only
    assert candidate(treated, "c3")["price"] < candidate(treated, "c3")["upper"]


def test_the_arm_placeholder_and_arms_of_no_bids(pool: dict[str, Pair]) -> None:
    layers = experiment("e-one", ['{name = "a"}', '{name = "b"}']) + experiment(
        "e-two", ['{name = "x"}', '{name = "y", bid_multiplier = 2}'], layer="l2"
    )
    config = bidder(MULTIPLIED, layers)
    engine, reference = engine_and_models(config, pool)
    user = "user-1"
    placed = assign_request({"id": "r1", "user": {"id": user}}, config.experiments.layers)
    arms = {a.experiment: a.arm for a in placed.values()}
    got, _ = assert_agree(engine, config, reference, request(user))
    assert got["arms"] == arms
    assert list(got["arms"]) == ["e-one", "e-two"]
    label = f"e-one%3A{arms['e-one']}%2Ce-two%3A{arms['e-two']}"
    nurl = json.loads(got["response"])["seatbid"][0]["bid"][0]["nurl"]
    assert nurl == f"https://n.example/win?c=c1&arm={label}"
    # Assigned before the gates: a blocked seat still has its arms.
    blocked, _ = assert_agree(engine, config, reference, request(user, bseat=["bidcore"]))
    assert (blocked["reason"], blocked["arms"]) == ("blocked_seat", arms)


def test_a_unit_beyond_the_coverage_has_no_arm(pool: dict[str, Pair]) -> None:
    layer = experiment("dark", ['{name = "a"}', '{name = "b", bid_multiplier = 2}'])
    config = bidder(MULTIPLIED, layer.replace('key = "dark"', 'key = "dark"\ncoverage = 0'))
    engine, reference = engine_and_models(config, pool)
    got, _ = assert_agree(engine, config, reference, request("user-1"))
    assert got["arms"] == {}
    nurl = json.loads(got["response"])["seatbid"][0]["bid"][0]["nurl"]
    assert nurl.endswith("&arm=")
    assert candidate(got, "c1")["value"] == 2_345_678


def test_the_reference_refuses_an_arm_without_its_model(pool: dict[str, Pair]) -> None:
    arms = ['{name = "control"}', '{name = "treatment", models = {ctr = "alt-a"}}']
    config = bidder(MODELLED, experiment("ctr-v2", arms))
    roles = {role: pool[role].reference for role in ("ctr", "cvr")}
    with pytest.raises(ValueError, match="ctr/ctr-v2/treatment"):
        decide(request("user-1"), config, roles, now=NOW)


# --- Random configs with random arms --------------------------------------------------------

PARAMETERS: Final = ("models.ctr", "models.cvr", "shading", "bid_multiplier", "campaigns")
MULTIPLIERS: Final = ["0.5", "0.9", "1", "1.1", "1.234567", "2", "0.000001", "100"]
UNIT_SOURCES: Final = ["user.id", "user.buyeruid", "device.ifa", "id"]


def _subset(items: list[str], *, min_size: int = 0) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(items), min_size=min_size, max_size=len(items), unique=True)


@st.composite
def _arm(draw: st.DrawFn, name: str, owned: list[str], scope: list[str]) -> dict[str, Any]:
    arm: dict[str, Any] = {"name": name}
    for parameter in owned:
        if not draw(st.booleans()):
            continue
        if parameter.startswith("models."):
            role = parameter.removeprefix("models.")
            arm.setdefault("models", {})[role] = draw(st.sampled_from(POOL))
        elif parameter == "shading":
            shading: dict[str, Any] = {}
            if draw(st.booleans()):
                shading["enabled"] = draw(st.booleans())
            if draw(st.booleans()):
                shading["center"] = draw(st.sampled_from(["0.3", "1.2", "2.5"]))
            if draw(st.booleans()):
                shading["scale"] = draw(st.sampled_from([0.2, 0.4, 0.9]))
            arm["shading"] = shading
        elif parameter == "bid_multiplier":
            arm["bid_multiplier"] = draw(st.sampled_from(MULTIPLIERS))
        else:
            arm["campaigns"] = draw(_subset(scope, min_size=1))
    return arm


@st.composite
def _layers(draw: st.DrawFn, campaigns: list[str]) -> list[dict[str, Any]]:
    """1-3 layers of 1-2 experiments of 2-3 arms; each parameter owned by one layer."""
    count = draw(st.integers(1, 3))
    owner = {p: draw(st.integers(0, count - 1)) for p in PARAMETERS}
    layers = []
    for index in range(count):
        owned = [p for p in PARAMETERS if owner[p] == index]
        split = draw(st.sampled_from([None, 0.3, 0.5]))
        namespaces = [None] if split is None else [(0.0, split), (split, 1.0)]
        experiments = []
        for e, namespace in enumerate(namespaces):
            scope = draw(_subset(campaigns)) if draw(st.booleans()) else []
            key = f"e{index}{e}"
            arms = [
                draw(_arm(f"a{k}", owned, scope or campaigns))
                for k in range(draw(st.integers(2, 3)))
            ]
            experiment: dict[str, Any] = {"key": key, "arms": arms}
            experiment["coverage"] = draw(st.sampled_from([1.0, 1.0, 0.6]))
            if namespace is not None:
                experiment["namespace"] = list(namespace)
            if scope:
                experiment["campaigns"] = scope
            if draw(st.integers(0, 4)) == 0:
                experiment["countries"] = draw(_subset(COUNTRIES, min_size=1))
            if draw(st.integers(0, 4)) == 0:
                experiment["device_types"] = draw(
                    st.lists(st.sampled_from(DEVICE_TYPES), min_size=1, unique=True)
                )
            if draw(st.booleans()):
                weight = draw(st.sampled_from([0.1, 0.5, 0.8]))
                shares = [weight, 1 - weight] + [0.0] * (len(arms) - 2)
                for arm, share in zip(arms, shares, strict=True):
                    arm["weight"] = share
            experiments.append(experiment)
        layer: dict[str, Any] = {
            "name": f"l{index}",
            "seed": f"seed-{index}-{draw(st.integers(0, 9))}",
            "hash_version": draw(st.sampled_from([1, 2])),
            "experiments": experiments,
        }
        if draw(st.booleans()):
            layer["unit"] = draw(_subset(UNIT_SOURCES, min_size=1))
        layers.append(layer)
    return layers


@st.composite
def arm_configs(draw: st.DrawFn) -> Config:
    """The differential tests' configs with an ``[experiments]`` table of random arms."""
    base = draw(configs())
    data = msgspec.to_builtins(base)
    data["experiments"] = {"layers": draw(_layers([c.id for c in base.campaigns]))}
    return msgspec.convert(data, Config)


@st.composite
def unit_requests(draw: st.DrawFn) -> bytes:
    """The differential tests' requests with varied unit ids: request ``id``, ``user.id``,
    ``user.buyeruid`` and ``device.ifa``, each sometimes absent (or empty)."""
    body = json.loads(draw(requests()))
    ids = st.integers(0, 10**6).map(str)
    body["id"] = "r" + draw(ids)
    user_id = draw(st.one_of(st.none(), st.just(""), ids.map(lambda i: f"u{i}")))
    if user_id is not None:
        body.setdefault("user", {})["id"] = user_id
    if draw(st.integers(0, 3)) == 0:
        body.setdefault("user", {})["buyeruid"] = "b" + draw(ids)
    if draw(st.booleans()):
        body.setdefault("device", {})["ifa"] = "ifa-" + draw(ids)
    if draw(st.booleans()):  # fewer seat gates: more requests reach the arms' campaigns
        body.pop("wseat", None)
        body.pop("bseat", None)
    if draw(st.booleans()):  # more first-price auctions, where shading tables matter
        body["at"] = 1
    return json.dumps(body).encode()


@settings(
    max_examples=5_000 if os.environ.get("HYPOTHESIS_PROFILE") == "long" else 100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    config=arm_configs(),
    bodies=st.lists(unit_requests(), min_size=1, max_size=4),
    now=st.sampled_from(TIMES),
)
def test_engine_and_reference_apply_arms_alike(
    pool: dict[str, Pair], config: Config, bodies: list[bytes], now: float
) -> None:
    engine, reference = engine_and_models(config, pool)
    for body in bodies:
        got, decided = assert_agree(engine, config, reference, body, now)
        if decided is not None:
            event(f"arms: {len(got['arms'])}")
            event("bid" if got["bid"] else f"no bid: {got['reason']}")
            for effect in _effects(config, decided):
                event(effect)


def _effects(config: Config, decided: Decision) -> set[str]:
    """What the request's arms changed for the candidates that got a value (for the statistics
    of ``--hypothesis-show-statistics``)."""
    arms = [
        Assigned(experiment=e, arm=a)
        for _, e, a in config.experiments.arms()
        if decided.arms.get(e.key) == a.name
    ]
    found = set()
    if "no_campaign" in decided.targeting.values():
        found.add("an arm left a campaign out")
    for c in decided.candidates:
        if c.value is None:
            continue
        for a in arms:
            if not a.applies_to(c.campaign):
                continue
            if a.arm.multiplier_ppm is not None:
                found.add("a multiplier scaled a value")
            if any(role in c.scores for role in a.arm.models):
                found.add("an arm model scored")
            if a.arm.shading is not None and c.price is not None:
                found.add("an arm's shading table priced")
                if c.price != c.upper:
                    found.add("an arm's shading table shaded")
    return found
