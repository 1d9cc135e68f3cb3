"""Pacing in the decision: the native engine against the plain-Python reference.

``docs/engine.md``, Pacing: per campaign, a throttle (the share of requests it enters, by a
deterministic draw from the request id and the campaign id) and a multiplier of its value, set
at run time with ``Engine.set_pacing``. The draw is checked through the engine against
:func:`bidcore.budget.draw.pacing_draw`, request by request; the hand-written cases check one
effect each, with its arithmetic, on both sides (and a small property test the multipliers'
integer arithmetic over any amount); the property test draws configs, requests and pacing
states and asserts that ``Engine.explain``/``Engine.bid`` and :func:`bidcore.reference.decide`
agree; a last test sets pacing from one thread while two bid.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import lightgbm
import msgspec
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import bidcore
from bidcore import models
from bidcore.budget.draw import pacing_draw
from bidcore.config import Config, loads, micros
from bidcore.reference import RoleModel, decide
from bidcore.reference.pacing import UNPACED
from bidcore.testing.bidder import (
    assert_same_decision,
    configs,
    pacings,
    requests,
    train_role_model,
)

CORPUS: Final = Path(__file__).parent / "fixtures" / "openrtb" / "requests.jsonl"
NOW: Final = 1_795_390_200.0
TIMES: Final = [1_795_390_200.0, 1_780_000_000.5, 1_700_000_000.0]
PPM: Final = 1_000_000

Rows = npt.NDArray[np.float64]


def campaign(cid: str, money: str, extra: str = "") -> str:
    """A campaign block ``cid`` with one 300x250 banner creative; ``money`` its goal and
    amounts, ``extra`` more keys (inline tables)."""
    return (
        f'[[campaigns]]\nid = "{cid}"\n{money}\n{extra}\n'
        f'[[campaigns.creatives]]\nid = "cr-{cid}"\nmedia = "banner"\nw = 300\nh = 250\n'
        'adomain = ["shop.example"]\n'
    )


def request(request_id: str = "r1", *, country: str = "USA", ascii_only: bool = True) -> bytes:
    """A site request ``request_id`` for one 300x250 banner imp with a floor of 0.5, from
    ``country``; non-ASCII ids as ``\\u`` escapes, or as UTF-8 when not ``ascii_only``."""
    body = {
        "id": request_id,
        "at": 2,
        "imp": [{"id": "1", "banner": {"w": 300, "h": 250}, "bidfloor": 0.5}],
        "site": {"domain": "news.example"},
        "device": {"geo": {"country": country}},
    }
    return json.dumps(body, ensure_ascii=ascii_only).encode()


def engine_of(config: Config) -> bidcore.Engine:
    return bidcore.Engine(config)


def agree(
    engine: bidcore.Engine,
    config: Config,
    body: bytes,
    pacing: dict[str, tuple[int, int]] | None = None,
) -> dict[str, Any]:
    """Sets ``pacing`` on ``engine``, asserts both sides decide ``body`` alike, and returns the
    engine's explanation (models: none, every campaign here bids a fixed CPM)."""
    for cid, (throttle, multiplier) in (pacing or {}).items():
        engine.set_pacing(cid, throttle_ppm=throttle, multiplier_ppm=multiplier)
    return assert_same_decision(engine, config, {}, body, NOW, pacing=pacing or {})


# --- The draw -------------------------------------------------------------------------------

# A non-ASCII campaign id: both sides hash the UTF-8 of each id.
ONE: Final = loads(campaign("café-ü", 'goal = "cpm"\ncpm = 1\nmax_bid = 2'))
IDS: Final = [
    *(f"req-{i}" for i in range(600)),
    *(f"{i:x}é😀" for i in range(200)),
    "r",
    "R",
    "a" * 200,
    "ünïcödé",
    '🦀 \t \\ " /',
]


@pytest.mark.parametrize("throttle", [1, 123_457, 500_000, 999_999])
def test_the_engine_draws_as_pacing_draw(throttle: int) -> None:
    """Request by request, the campaign is out (``budget``) exactly when its draw is at or above
    the throttle; the request's id is hashed as decoded, whether sent as escapes or UTF-8."""
    engine = engine_of(ONE)
    engine.set_pacing("café-ü", throttle_ppm=throttle, multiplier_ppm=PPM)
    for i, rid in enumerate(IDS):
        got = engine.explain(request(rid, ascii_only=i % 2 == 0), now=NOW)
        out = pacing_draw(rid, "café-ü") >= throttle
        assert got["targeting"] == {"café-ü": "budget" if out else None}, rid
        assert got["reason"] == ("budget" if out else None), rid


@pytest.mark.parametrize("throttle", [10_000, 250_000, 700_000])
def test_the_share_entered_follows_the_throttle(throttle: int) -> None:
    """Over 10,000 request ids: every bid where the draw says so, and the share entered within
    five standard deviations of the throttle."""
    engine = engine_of(ONE)
    engine.set_pacing("café-ü", throttle_ppm=throttle, multiplier_ppm=PPM)
    n = 10_000
    ids = [f"{i}-{i * 7919 % 10_007}" for i in range(n)]
    answers = engine.bid_many([request(rid) for rid in ids], now=NOW)
    entered = [answer is not None for answer in answers]
    assert entered == [pacing_draw(rid, "café-ü") < throttle for rid in ids]
    p = throttle / PPM
    assert abs(sum(entered) - n * p) < 5 * math.sqrt(n * p * (1 - p))


@pytest.mark.parametrize("rid", ["r1", "r2", "ü", "req-42"])
def test_a_draw_equal_to_the_throttle_stays_out(rid: str) -> None:
    """The campaign enters when its draw is strictly below the throttle: at a throttle equal to
    the draw it is out, one ppm more and it is in, on both sides."""
    engine = engine_of(ONE)
    draw = pacing_draw(rid, "café-ü")
    out = agree(engine, ONE, request(rid), {"café-ü": (draw, PPM)})
    assert (out["reason"], out["targeting"]) == ("budget", {"café-ü": "budget"})
    entered = agree(engine, ONE, request(rid), {"café-ü": (draw + 1, PPM)})
    assert (entered["reason"], entered["targeting"]) == (None, {"café-ü": None})


def test_no_throttle_means_no_draw_and_every_request() -> None:
    engine = engine_of(ONE)
    engine.set_pacing("café-ü", throttle_ppm=PPM, multiplier_ppm=PPM)
    assert all(engine.bid(request(rid), now=NOW) is not None for rid in IDS[:100])


# --- Hand-written cases ---------------------------------------------------------------------

PAIR: Final = loads(
    campaign("c1", 'goal = "cpm"\ncpm = 1.234567\nmax_bid = 5')
    + campaign("c2", 'goal = "cpm"\ncpm = 1\nmax_bid = 5', 'targeting = {countries = ["FRA"]}')
)


@pytest.mark.parametrize("rid", ["r1", "r2", "x", "ü"])
def test_throttle_zero_stops_the_only_eligible_campaign(rid: str) -> None:
    engine = engine_of(PAIR)
    got = agree(engine, PAIR, request(rid), {"c1": (0, PPM)})
    assert (got["bid"], got["reason"]) == (False, "budget")
    assert got["targeting"] == {"c1": "budget", "c2": "country"}
    assert [imp["reason"] for imp in got["imps"]] == ["budget"]
    assert engine.bid(request(rid), now=NOW) is None


def test_throttle_zero_leaves_the_other_campaigns_bidding() -> None:
    engine = engine_of(PAIR)
    got = agree(engine, PAIR, request(country="FRA"), {"c1": (0, PPM)})
    assert got["targeting"] == {"c1": "budget", "c2": None}
    assert (got["imps"][0]["campaign"], got["imps"][0]["price"]) == ("c2", 1_000_000)


TARGETED: Final = loads(
    campaign("c1", 'goal = "cpm"\ncpm = 1\nmax_bid = 5', 'targeting = {countries = ["USA"]}')
    + campaign("c2", 'goal = "cpm"\ncpm = 1\nmax_bid = 5', 'targeting = {countries = ["FRA"]}')
    # An arm that keeps c1 only, for every request (coverage 1, the other arm weighs 0).
    + '[[experiments.layers]]\nname = "l1"\nseed = "l1-seed"\n'
    '[[experiments.layers.experiments]]\nkey = "subset"\ncoverage = 1\n'
    'arms = [\n    {name = "all", weight = 0},\n'
    '    {name = "only-c1", weight = 1, campaigns = ["c1"]},\n]\n'
)


@pytest.mark.parametrize(
    ("country", "pacing", "reason", "targeting"),
    [
        # Targeting leaves nothing: no_campaign, whatever the throttles.
        ("GBR", {"c1": (0, PPM), "c2": (0, PPM)}, "no_campaign", ("country", "country")),
        # The arm leaves nothing (c2 out, c1 fails targeting): no_campaign too.
        ("FRA", {"c1": (0, PPM), "c2": (0, PPM)}, "no_campaign", ("country", "no_campaign")),
        # c1 passes targeting and the arm, and its throttle keeps it out: budget.
        ("USA", {"c1": (0, PPM), "c2": (0, PPM)}, "budget", ("budget", "country")),
        ("USA", {"c1": (PPM, PPM), "c2": (0, PPM)}, None, (None, "country")),
    ],
)
def test_targeting_and_arms_come_before_the_throttle(
    country: str,
    pacing: dict[str, tuple[int, int]],
    reason: str | None,
    targeting: tuple[str | None, str | None],
) -> None:
    """In ``explain``, a campaign's failure is its targeting rule, else ``budget`` when its
    throttle kept it out, else ``no_campaign`` (the arm); the request's no-bid is ``budget``
    only when pacing removed every campaign left."""
    engine = engine_of(TARGETED)
    got = agree(engine, TARGETED, request(country=country), pacing)
    assert got["arms"] == {"subset": "only-c1"}
    assert got["reason"] == reason
    assert got["targeting"] == dict(zip(("c1", "c2"), targeting, strict=True))


def test_a_multiplier_scales_the_value_rounding_down() -> None:
    engine = engine_of(PAIR)
    got = agree(engine, PAIR, request(), {"c1": (PPM, 1_300_000)})
    value = 1_234_567 * 1_300_000 // PPM  # 1,604,937.1 -> 1,604,937
    assert value == 1_604_937
    (imp,) = got["imps"]
    assert (imp["campaign"], imp["price"]) == ("c1", value)
    assert got["candidates"][0]["value"] == value
    response = json.loads(engine.bid(request(), now=NOW) or b"null")
    assert response["seatbid"][0]["bid"][0]["price"] == 1.604937


ARMED: Final = loads(
    campaign("c1", 'goal = "cpm"\ncpm = 2.345678\nmax_bid = 5')
    + campaign("c2", 'goal = "cpm"\ncpm = 1\nmax_bid = 5')
    # Every request in the treatment (coverage 1, the control weighs 0); c1's value is x1.1.
    + '[[experiments.layers]]\nname = "l1"\nseed = "l1-seed"\n'
    '[[experiments.layers.experiments]]\nkey = "mult"\ncoverage = 1\ncampaigns = ["c1"]\n'
    'arms = [\n    {name = "control", weight = 0},\n'
    '    {name = "treatment", weight = 1, bid_multiplier = 1.1},\n]\n'
)


def test_the_arm_and_pacing_multipliers_round_down_in_turn() -> None:
    engine = engine_of(ARMED)
    got = agree(engine, ARMED, request(), {"c1": (PPM, 1_300_000)})
    assert got["arms"] == {"mult": "treatment"}
    armed = 2_345_678 * 1_100_000 // PPM  # 2,580,245.8 -> 2,580,245
    paced = armed * 1_300_000 // PPM  # 3,354,318.5 -> 3,354,318
    assert (armed, paced) == (2_580_245, 3_354_318)
    # Not the product of the two in one step: 2,345,678 * 1.43 = 3,354,319.54.
    assert paced != 2_345_678 * 1_430_000 // PPM
    (imp,) = got["imps"]
    assert (imp["campaign"], imp["price"]) == ("c1", paced)


def test_max_bid_still_caps_the_paced_value() -> None:
    engine = engine_of(ARMED)
    # 2,580,245 * 3 = 7,740,735 > max_bid 5.
    got = agree(engine, ARMED, request(), {"c1": (PPM, 3 * PPM)})
    c1 = next(c for c in got["candidates"] if c["campaign"] == "c1")
    assert (c1["value"], c1["upper"], c1["price"]) == (7_740_735, 5_000_000, 5_000_000)
    assert got["imps"][0]["price"] == 5_000_000
    # And the largest multiplier the pacer may set, on both campaigns.
    got = agree(engine, ARMED, request(), {"c1": (PPM, 100 * PPM), "c2": (PPM, 100 * PPM)})
    assert all(c["price"] == 5_000_000 for c in got["candidates"])


def test_a_small_multiplier_can_fall_below_the_floor() -> None:
    engine = engine_of(PAIR)
    # 1,234,567 * 0.4 = 493,826.8 -> 493,826, under the floor of 500,000.
    got = agree(engine, PAIR, request(), {"c1": (PPM, 400_000)})
    assert (got["reason"], got["candidates"][0]["value"]) == ("below_floor", 493_826)


def test_unpacing_restores_the_unpaced_decision() -> None:
    engine = engine_of(ARMED)
    bodies = [request(f"r{i}") for i in range(40)]
    before = [engine.explain(b, now=NOW) for b in bodies]
    for throttle, multiplier in [(0, PPM), (300_000, 1_700_000), (PPM, 600_000)]:
        engine.set_pacing("c1", throttle_ppm=throttle, multiplier_ppm=multiplier)
        engine.set_pacing("c2", throttle_ppm=throttle, multiplier_ppm=multiplier)
        assert [engine.explain(b, now=NOW) for b in bodies] != before
    engine.set_pacing("c1", throttle_ppm=PPM, multiplier_ppm=PPM)
    engine.set_pacing("c2", throttle_ppm=PPM, multiplier_ppm=PPM)
    assert engine.pacing() == {"c1": UNPACED, "c2": UNPACED}
    assert [engine.explain(b, now=NOW) for b in bodies] == before
    for b, explained in zip(bodies, before, strict=True):
        assert engine.bid(b, now=NOW) == explained["response"]


@settings(max_examples=100, deadline=None)
@given(
    cpm=st.integers(0, 10**9),
    max_bid=st.integers(1, 10**10),
    arm=st.booleans(),
    multiplier=st.one_of(st.integers(1, 100 * PPM), st.integers(900_000, 1_100_000)),
)
def test_multipliers_in_integers(cpm: int, max_bid: int, arm: bool, multiplier: int) -> None:
    """Any CPM, ``max_bid`` and pacing multiplier, with the x1.1 arm or without: the value is
    the two floor steps, capped by ``max_bid``; below the floor of 0.5, no bid."""
    base = ARMED if arm else PAIR
    c1 = msgspec.structs.replace(
        base.campaigns[0], cpm=Decimal(cpm).scaleb(-6), max_bid=Decimal(max_bid).scaleb(-6)
    )
    config = msgspec.structs.replace(base, campaigns=[c1, *base.campaigns[1:]])
    engine = engine_of(config)
    got = agree(engine, config, request(), {"c1": (PPM, multiplier)})
    value = (cpm * 1_100_000 // PPM if arm else cpm) * multiplier // PPM
    c1_candidate = next(c for c in got["candidates"] if c["campaign"] == "c1")
    assert c1_candidate["value"] == value
    if min(value, max_bid) >= 500_000:
        assert c1_candidate["price"] == min(value, max_bid)
    else:
        assert c1_candidate["excluded_by"] == "below_floor"


def test_pacing_reads_back_per_campaign() -> None:
    engine = engine_of(PAIR)
    assert engine.pacing() == {"c1": (PPM, PPM), "c2": (PPM, PPM)}
    engine.set_pacing("c2", throttle_ppm=0, multiplier_ppm=1)
    engine.set_pacing("c1", throttle_ppm=PPM, multiplier_ppm=100 * PPM)
    assert engine.pacing() == {"c1": (PPM, 100 * PPM), "c2": (0, 1)}


@pytest.mark.parametrize(
    ("throttle", "multiplier"),
    [(PPM + 1, PPM), (PPM, 0), (PPM, 100 * PPM + 1), (2**32 - 1, PPM), (0, 2**32 - 1)],
)
def test_out_of_range_values_raise_value_error(throttle: int, multiplier: int) -> None:
    engine = engine_of(PAIR)
    with pytest.raises(ValueError, match="ppm"):
        engine.set_pacing("c1", throttle_ppm=throttle, multiplier_ppm=multiplier)
    assert engine.pacing()["c1"] == UNPACED  # nothing set
    with pytest.raises(ValueError, match="ppm"):
        decide(request(), PAIR, {}, now=NOW, pacing={"c1": (throttle, multiplier)})


@pytest.mark.parametrize(("throttle", "multiplier"), [(-1, PPM), (PPM, -1), (2**32, PPM)])
def test_values_outside_u32_raise_value_error(throttle: int, multiplier: int) -> None:
    engine = engine_of(PAIR)
    with pytest.raises(ValueError, match="ppm"):
        engine.set_pacing("c1", throttle_ppm=throttle, multiplier_ppm=multiplier)


def test_an_unknown_campaign_raises_value_error() -> None:
    engine = engine_of(PAIR)
    with pytest.raises(ValueError, match="c9"):
        engine.set_pacing("c9", throttle_ppm=0, multiplier_ppm=PPM)
    with pytest.raises(ValueError, match="c9"):
        decide(request(), PAIR, {}, now=NOW, pacing={"c9": (0, PPM)})


# --- Property: native and reference on random configs, requests and pacing -------------------


def _predictor(booster: lightgbm.Booster) -> Callable[[Rows], Rows]:
    return lambda rows: np.asarray(booster.predict(rows), dtype=np.float64)


class _Trained(dict[str, tuple[RoleModel, models.Model]]):
    def __repr__(self) -> str:  # keeps Hypothesis' failure reports readable
        return "<trained ctr and cvr models>"


@pytest.fixture(scope="module")
def trained() -> dict[str, tuple[RoleModel, models.Model]]:
    bodies = [line for line in CORPUS.read_bytes().splitlines() if line.strip()][:1000]
    out = _Trained()
    for role, seed in (("ctr", 1), ("cvr", 2)):
        booster, spec = train_role_model(bodies, seed=seed)
        native = models.from_lightgbm(booster.model_to_string(), features=spec)
        out[role] = (RoleModel(predict=_predictor(booster), spec=spec), native)
    return out


REQUEST_IDS: Final = st.one_of(st.sampled_from(["r1", "r2", "r3", "é"]), st.text(max_size=12))
LIFTED_MAX_BID: Final = Decimal(1_000_000)


def lifted(config: Config, lift: list[bool]) -> Config:
    """``config`` with the ``max_bid`` of the campaigns ``lift`` picks raised to 10^6: the
    drawn ``max_bid`` is mostly below the drawn value, which would cap away the multiplier."""
    campaigns = [
        msgspec.structs.replace(c, max_bid=LIFTED_MAX_BID) if up else c
        for c, up in zip(config.campaigns, lift, strict=True)
    ]
    return msgspec.structs.replace(config, campaigns=campaigns)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), config=configs(), now=st.sampled_from(TIMES))
def test_engine_and_reference_pace_alike(
    trained: dict[str, tuple[RoleModel, models.Model]],
    data: st.DataObject,
    config: Config,
    now: float,
) -> None:
    n = len(config.campaigns)
    lift = data.draw(st.lists(st.booleans(), min_size=n, max_size=n), label="lift")
    config = lifted(config, lift)
    pacing = data.draw(pacings([c.id for c in config.campaigns]), label="pacing")
    bodies = data.draw(st.lists(requests(ids=REQUEST_IDS), min_size=1, max_size=4), "bodies")
    engine = bidcore.Engine(config, models={role: pair[1] for role, pair in trained.items()})
    for cid, (throttle, multiplier) in pacing.items():
        engine.set_pacing(cid, throttle_ppm=throttle, multiplier_ppm=multiplier)
    reference = {role: pair[0] for role, pair in trained.items()}
    for body in bodies:
        got = assert_same_decision(engine, config, reference, body, now, pacing=pacing)
        event(f"reason: {got.get('reason')}")
        if "budget" in got.get("targeting", {}).values():
            event("a campaign throttled out")
        max_bids = {c.id: micros(c.max_bid) for c in config.campaigns}
        for c in got.get("candidates", []):
            multiplied = pacing.get(c["campaign"], UNPACED)[1] != PPM
            if multiplied and c["price"] is not None and c["value"] < max_bids[c["campaign"]]:
                event("priced below max_bid with a pacing multiplier")


# --- Threads --------------------------------------------------------------------------------


def test_setting_pacing_while_bidding() -> None:
    """One thread sets pacing in a loop while two bid: no crash, every answer a no-bid or a
    valid response within max_bid, and the last values set are the ones read back."""
    config = PAIR
    engine = engine_of(config)
    bodies = [request(f"r{i}", country="FRA" if i % 3 else "USA") for i in range(64)]
    rounds = 20_000
    done = threading.Event()
    errors: list[BaseException] = []
    answered = [0, 0]

    def settings_at(i: int) -> tuple[int, int]:
        return (i * 7919) % (PPM + 1), 1 + (i * 104_729) % (3 * PPM)

    def pace() -> None:
        try:
            for i in range(rounds):
                throttle, multiplier = settings_at(i)
                engine.set_pacing(
                    "c1" if i % 2 else "c2", throttle_ppm=throttle, multiplier_ppm=multiplier
                )
        except BaseException as err:  # reported by the main thread
            errors.append(err)
        finally:
            done.set()

    def bid(k: int) -> None:
        try:
            while not done.is_set() or answered[k] < 2_000:
                body = bodies[answered[k] % len(bodies)]
                answer = engine.bid(body, now=NOW)
                if answer is not None:
                    (seatbid,) = json.loads(answer)["seatbid"]
                    for b in seatbid["bid"]:
                        assert 0 < b["price"] <= 5
                answered[k] += 1
        except BaseException as err:
            errors.append(err)

    threads = [
        threading.Thread(target=pace),
        *(threading.Thread(target=bid, args=(k,)) for k in (0, 1)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert min(answered) >= 2_000
    assert engine.pacing() == {"c1": settings_at(rounds - 1), "c2": settings_at(rounds - 2)}
