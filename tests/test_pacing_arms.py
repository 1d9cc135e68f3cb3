"""Pacing per experiment arm: an arm with a ``budget_share`` is paced on its own account.

- The engine: a request in such an arm is throttled and multiplied by its share's pacing
  (``Engine.set_pacing("c1@split:a", ...)``), the draw still the campaign's; a property test
  against :func:`bidcore.reference.decide` with random pacing of every account and money.
- The pacer: with the budget ledger on, one controller per account (the shares and the
  campaign's rest), fed by the notices the ledger settles, which name the account; without it,
  one per campaign, its pacing written to its shares too.
- The server: a bill for a bid in an arm counts in the spend metric under its campaign and
  moves its share's pacing.
- A simulated day through the real engine, ledger and pacer: users split evenly between two
  arms whose shares are 30% and 70% of the budget, traffic worth twice the budget; each arm
  spends its share along the curve (within 1% at the day's end, the issue asks 5%), with
  throttles near 0.3 and 0.7, which one throttle for the campaign could not do. Charts of
  each arm's day go to the test output directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bidcore
from bidcore.asgi import app
from bidcore.budget import BudgetLedger, Pacer, TargetCurve
from bidcore.budget.pacing import DAY_SECONDS, HOUR_SECONDS, PPM
from bidcore.budget.simulation import DayResult, TrafficShape, plot
from bidcore.config import Config
from bidcore.reference.arms import account_ids
from bidcore.testing.bidder import assert_same_decision, pacings
from tests.test_asgi import run
from tests.test_budget_ledger import TOKEN, bidder, split, user_request

MIDNIGHT: Final = 1_795_305_600.0  # 2026-11-22 00:00 UTC
NOON: Final = MIDNIGHT + 43_200
SHARES: Final = ("c1", "c1@split:a", "c1@split:b")


def paced(daily_budget: str, share_a: float, share_b: float, *, budget: bool = True) -> Config:
    """``bidder``'s campaign c1 ($2 CPM, ``{bid}`` in its notices) with ``daily_budget``, its
    users split between arms ``a`` and ``b`` with those budget shares, pacing on (by the
    diurnal profile, updated every minute) and the budget ledger on when ``budget``."""
    profile = ", ".join(str(w) for w in TrafficShape.diurnal().hourly_weights)
    extra = (
        f"[pacing]\nenabled = true\ninterval_seconds = 60\nprofile = [{profile}]\n"
        f"[budget]\nenabled = {'true' if budget else 'false'}\n"
    )
    return bidder(daily_budget, extra=extra + split(share_a, share_b))


def arm_of(engine: bidcore.Engine, body: bytes) -> str:
    return str(engine.explain(body, now=NOON)["arms"]["split"])


# --- The engine -------------------------------------------------------------------------------


def test_a_request_is_paced_on_its_arms_share() -> None:
    config = bidder(None, extra=split(0.5, 0.5))
    engine = bidcore.Engine(config)
    assert list(engine.pacing()) == list(SHARES) == account_ids(config)
    engine.set_pacing("c1@split:a", throttle_ppm=0, multiplier_ppm=PPM)
    engine.set_pacing("c1@split:b", throttle_ppm=PPM, multiplier_ppm=PPM // 2)
    engine.set_pacing("c1", throttle_ppm=0, multiplier_ppm=PPM)  # no request is outside the arms
    seen = {"a": 0, "b": 0}
    for i in range(40):
        body = user_request(f"r{i}", f"user-{i}")
        arm = arm_of(engine, body)
        seen[arm] += 1
        explained = engine.explain(body, now=NOON)
        if arm == "a":
            assert explained["reason"] == "budget"
        else:
            # $2 CPM at half: the share's multiplier, not the campaign's.
            assert explained["candidates"][0]["value"] == 1_000_000
    assert min(seen.values()) > 5
    with pytest.raises(ValueError, match='no arm share "c1@split:c"'):
        engine.set_pacing("c1@split:c", throttle_ppm=0, multiplier_ppm=PPM)
    with pytest.raises(ValueError, match='no campaign "c2"'):
        engine.set_pacing("c2", throttle_ppm=0, multiplier_ppm=PPM)


def test_a_campaign_id_with_an_at_sign_is_refused() -> None:
    text = msgspec.json.encode(msgspec.to_builtins(bidder("1"))).decode()
    with pytest.raises(msgspec.ValidationError, match="must not contain '@'"):
        msgspec.json.decode(text.replace('"c1"', '"c1@x"'), type=Config)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    shares=st.tuples(st.sampled_from([0.1, 0.3, 0.5]), st.sampled_from([0.2, 0.5])),
    coverage=st.sampled_from([0.5, 1.0]),
    users=st.lists(st.integers(0, 40), min_size=1, max_size=8),
    imps=st.integers(1, 2),
)
def test_engine_and_reference_pace_arm_shares_alike(
    data: st.DataObject,
    shares: tuple[float, float],
    coverage: float,
    users: list[int],
    imps: int,
) -> None:
    config = bidder(None, cpm="1.5", extra=split(*shares, coverage))
    ledger = bidcore.Ledger()
    engine = bidcore.Engine(config, ledger=ledger)
    pacing = data.draw(pacings(list(SHARES)), label="pacing")
    for account, (throttle, multiplier) in pacing.items():
        engine.set_pacing(account, throttle_ppm=throttle, multiplier_ppm=multiplier)
    for account in SHARES:
        if data.draw(st.booleans(), label=f"limit {account}"):
            ledger.set_limited(account, True)
            ledger.grant(account, data.draw(st.integers(0, 6_000_000), label=f"money {account}"))
    for i, user in enumerate(users):
        body = user_request(f"r{i}", f"user-{user}", imps)
        budget = {c: a[1] for c, a in ledger.accounts().items() if a[0]}
        assert_same_decision(engine, config, {}, body, NOON, pacing=pacing, budget=budget)


# --- The pacer ----------------------------------------------------------------------------------


def test_with_the_ledger_each_account_is_paced_on_its_own_spend() -> None:
    config = paced("10", 0.3, 0.6)
    engine = bidcore.Engine(config, ledger=bidcore.Ledger())
    pacer = Pacer(config, engine, clock=lambda: NOON)
    state = pacer.tick()
    # $10: 3 and 6 to the arms, the 1 left to the campaign's own account.
    assert {a: s.budget_micros for a, s in state.items()} == {
        "c1@split:a": 3_000_000,
        "c1@split:b": 6_000_000,
        "c1": 1_000_000,
    }
    assert pacer.record_spend("c1@split:a", 3_000_000)  # a's whole share: a stops at once
    assert engine.pacing()["c1@split:a"][0] == 0
    assert engine.pacing()["c1@split:b"][0] > 0
    assert engine.pacing()["c1"][0] > 0
    after = pacer.tick()
    assert after["c1@split:a"].spent_micros == 3_000_000
    assert after["c1@split:b"].spent_micros == after["c1"].spent_micros == 0
    assert not pacer.record_spend("c1@split:z", 1)
    assert pacer.ignored()["unknown_campaign"] == 1


def test_without_the_ledger_a_campaign_is_paced_whole_and_its_shares_follow() -> None:
    config = paced("10", 0.3, 0.6, budget=False)
    engine = bidcore.Engine(config)
    pacer = Pacer(config, engine, clock=lambda: NOON)
    assert list(pacer.tick()) == ["c1"]
    # A bill names only its campaign (and an account's spend counts on its campaign).
    assert pacer.record_spend("c1", 4_000_000)
    assert pacer.record_spend("c1@split:a", 6_000_000)
    assert pacer.state()["c1"].spent_micros == 10_000_000
    assert set(engine.pacing().values()) == {(0, PPM)}


def test_a_bill_for_a_bid_in_an_arm_counts_on_its_campaign_and_paces_its_share() -> None:
    config = paced("10", 0.5, 0.5)
    ledger = bidcore.Ledger()
    engine = bidcore.Engine(config, ledger=ledger)
    budget = BudgetLedger(config, ledger, clock=lambda: NOON)
    budget.tick()
    pacer = Pacer(config, engine, clock=lambda: NOON)
    bidder_app = app(engine, pacer=pacer, budget=budget)
    body = next(
        b for b in (user_request(f"r{i}", f"u{i}") for i in range(50)) if arm_of(engine, b) == "b"
    )
    answer = run(bidder_app, "POST", "/openrtb2/bid", body=body)
    assert answer.status == 200
    (token,) = set(TOKEN.findall(answer.text))
    query = f"bid={token}&price=2.5".encode()
    assert run(bidder_app, "GET", "/openrtb2/bill", query=query).status == 204
    assert run(bidder_app, "GET", "/openrtb2/bill", query=query).status == 204  # a retry: once
    state = pacer.state()
    assert state["c1@split:b"].spent_micros == 2_500  # one impression at a $2.50 CPM
    assert state["c1@split:a"].spent_micros == state["c1"].spent_micros == 0
    shown = run(bidder_app, "GET", "/metrics").text
    spend = [line for line in shown.splitlines() if line.startswith("bidcore_spend_total{")]
    assert spend == ['bidcore_spend_total{campaign="c1",currency="USD"} 0.0025'], spend
    assert (
        'bidcore_pacing_spent_today{account="c1@split:b",campaign="c1",currency="USD"} 0.0025'
        in shown
    )


# --- A simulated day ------------------------------------------------------------------------------


STEP: Final = 60  # seconds: the pacer's interval
REQUESTS_PER_DAY: Final = 80_000
WIN_RATE: Final = 0.5
CLEARING_MICROS: Final = 1_500_000  # a $1.50 CPM: 1,500 micros an impression
# Traffic worth twice the budget: the pacer must hold each arm back, by a different amount.
DAILY_BUDGET_MICROS: Final = REQUESTS_PER_DAY * WIN_RATE * CLEARING_MICROS // 1000 // 2


def simulate_arms_day(seed: int) -> dict[str, DayResult]:
    """A day of bid requests from 4,000 users through the engine, the local budget ledger and
    the pacer: a bid wins with probability ``WIN_RATE`` and is billed at ``CLEARING_MICROS``
    at once, else lost; the pacer ticks every minute. Per account, the day as
    :class:`~bidcore.budget.simulation.DayResult` (one-minute steps)."""
    daily = f"{DAILY_BUDGET_MICROS / 1e6:.6f}"
    config = paced(daily, 0.3, 0.7)
    now = [MIDNIGHT]
    clock = lambda: now[0]  # noqa: E731 - a clock the loop moves
    ledger = bidcore.Ledger()
    engine = bidcore.Engine(config, ledger=ledger)
    budget = BudgetLedger(config, ledger, clock=clock)
    pacer = Pacer(config, engine, clock=clock)
    rng = np.random.default_rng(seed)
    steps = DAY_SECONDS // STEP
    time = np.arange(steps, dtype=np.float64) * STEP
    rate = TrafficShape.diurnal().relative_rate(time + STEP / 2)
    arrivals = rng.poisson(REQUESTS_PER_DAY / steps * rate)
    accounts = ("c1@split:a", "c1@split:b")
    spend = {a: np.zeros(steps, dtype=np.int64) for a in accounts}
    requests = {a: np.zeros(steps, dtype=np.int64) for a in accounts}
    wins = {a: np.zeros(steps, dtype=np.int64) for a in accounts}
    throttle = {a: np.zeros(steps, dtype=np.float64) for a in accounts}
    multiplier = {a: np.zeros(steps, dtype=np.int64) for a in accounts}
    arm_by_user = {}
    for user in range(4_000):
        probe = user_request("probe", f"user-{user}")
        arm_by_user[user] = f"c1@split:{arm_of(engine, probe)}"
    serial = 0
    for step in range(steps):
        now[0] = MIDNIGHT + step * STEP
        budget.tick()
        pacer.tick()
        for account in accounts:
            throttle[account][step] = engine.pacing()[account][0] / PPM
            multiplier[account][step] = engine.pacing()[account][1]
        users = rng.integers(0, 4_000, arrivals[step])
        won = rng.random(arrivals[step]) < WIN_RATE
        for user, win in zip(users, won, strict=True):
            serial += 1
            account = arm_by_user[int(user)]
            requests[account][step] += 1
            response = engine.bid(user_request(f"r{serial}", f"user-{user}"), now=now[0])
            if response is None:
                continue
            (token,) = set(TOKEN.findall(response.decode()))
            if not win:
                budget.notice("loss", token, price_micros=None, now=now[0])
                continue
            settled = budget.notice("bill", token, price_micros=CLEARING_MICROS, now=now[0])
            assert (settled.outcome, settled.account) == ("accepted", account)
            pacer.record_bill(settled.account, CLEARING_MICROS)
            spend[account][step] += CLEARING_MICROS // 1000
            wins[account][step] += 1
    curve = TargetCurve.from_profile(TrafficShape.diurnal().hourly_weights)
    ends = time + STEP
    share = np.interp(ends, np.arange(25, dtype=np.float64) * HOUR_SECONDS, curve.knots)
    days = {}
    for account in accounts:
        account_budget = pacer.state()[account].budget_micros
        days[account] = DayResult(
            budget_micros=account_budget,
            step_seconds=STEP,
            time=time,
            spend_micros=spend[account],
            cumulative_micros=np.cumsum(spend[account]),
            target_micros=np.floor(share * account_budget).astype(np.int64),
            throttle=throttle[account],
            multiplier_ppm=multiplier[account],
            requests=requests[account],
            wins=wins[account],
        )
    return days


def test_each_arm_spends_its_share_along_the_curve(output_dir: Path) -> None:
    days = simulate_arms_day(seed=11)
    a, b = days["c1@split:a"], days["c1@split:b"]
    for name, day in (("a", a), ("b", b)):
        plot(day, output_dir / f"pacing_arm_{name}.png")
        # The issue asks for 5%; this run spends within 0.1% (0.3% off the curve at most at
        # the hours' ends): the bounds leave room for noise and catch a regression.
        assert abs(day.end_error) < 0.01, (name, day.end_error)
        assert day.total_micros <= day.budget_micros, "the ledger never lets a share overspend"
        assert day.hourly().max_abs_deviation < 0.02, (name, day.hourly().deviation)
    # Even traffic, unequal shares: a must enter far fewer of its requests than b, which one
    # throttle for the whole campaign could not do.
    assert abs(a.requests.sum() / b.requests.sum() - 1) < 0.1
    assert a.throttle[120:].mean() < 0.6 * b.throttle[120:].mean()
    assert (output_dir / "pacing_arm_b.png").read_bytes()[:4] == b"\x89PNG"
