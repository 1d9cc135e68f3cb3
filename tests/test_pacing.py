"""Budget pacing (bidcore/budget/pacing.py), checked on its own and over simulated days of
auctions (bidcore/budget/simulation.py).

The simulated days are seeded, so every figure is the same on every run. The must-show of
issue 7: in both modes, over several seeds, two traffic shapes (one the target curve assumes,
one it does not) and two constraining budgets (the traffic could buy 2x and 4x the budget), the
day ends within 5% of the budget, never above it by more than one step's spend, and the
cumulative spend stays near the target curve at every hour's end. The charts are written to
``$BIDCORE_TEST_OUTPUT`` (default: pytest's ``tmp_path``).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bidcore.budget import (
    DAY_SECONDS,
    PacingController,
    PacingMode,
    PacingState,
    PidGains,
    TargetCurve,
    budget_share_micros,
    day_position,
)
from bidcore.budget.simulation import DayResult, Market, TrafficShape, plot, simulate_day

MODES: tuple[PacingMode, ...] = ("throttle", "multiplier")
HOUR = 3600
BUDGET = 1_000_000_000  # 1,000.00 a day
# The curve every simulated campaign is paced along: the traffic profile it expects.
CURVE = TargetCurve.from_profile(TrafficShape.diurnal().hourly_weights)
SHAPES = {"diurnal": TrafficShape.diurnal(), "late_evening": TrafficShape.late_evening()}
SEEDS = range(5)
OVERSUPPLY = (2, 4)  # the traffic could buy this many times the budget

# The bounds the simulated days must meet (docs/pacing.md gives the figures measured).
END_TOLERANCE = 0.05  # the issue's: the day's spend within 5% of the budget
END_ACHIEVED = 0.005  # what the controller does, with a margin: a regression shows here
MEAN_DEVIATION = 0.01  # of the cumulative share of the budget at the hours' ends, mean |gap|
# The largest gap comes from the first hour (the controller starts from a guess) and, for the
# shape the curve does not expect, from the morning, when the traffic is less than half what
# the curve asks for and even a full throttle falls behind (test_lag_only_at_full_throttle).
MAX_DEVIATION = 0.025


def _controller(
    mode: PacingMode = "throttle", *, budget: int = BUDGET, **options: Any
) -> PacingController:
    return PacingController(budget, CURVE, mode=mode, **options)


def _output(state: PacingState, mode: PacingMode) -> float:
    return state.throttle if mode == "throttle" else state.multiplier_ppm / 1_000_000


def _day(mode: PacingMode, shape: str, oversupply: int, seed: int) -> DayResult:
    market = Market(shape=SHAPES[shape])
    budget = market.expected_spend_micros() // oversupply
    return simulate_day(PacingController(budget, CURVE, mode=mode), market, seed=seed)


# -- the target curve ---------------------------------------------------------------------------


def test_even_curve_is_linear_from_0_to_1() -> None:
    curve = TargetCurve.even()
    assert curve.share_at(0) == 0.0
    assert curve.share_at(DAY_SECONDS) == 1.0
    assert curve.share_at(DAY_SECONDS / 2) == pytest.approx(0.5)
    assert curve.share_at(90 * 60) == pytest.approx(1.5 / 24)
    assert curve.share_at(-5) == 0.0  # clamped to the day
    assert curve.share_at(DAY_SECONDS + 5) == 1.0


def test_profile_curve_follows_the_weights() -> None:
    weights = [0.0] * 6 + [2.0] * 12 + [1.0] * 6  # nothing at night, busy days
    curve = TargetCurve.from_profile(weights)
    assert curve.share_at(5 * HOUR) == 0.0  # no weight, nothing to spend
    assert curve.share_at(18 * HOUR) == pytest.approx(24 / 30)
    assert curve.share_at(12 * HOUR + 1800) == pytest.approx(13 / 30)  # linear within the hour
    assert curve.share_at(DAY_SECONDS) == 1.0
    # Only the ratios matter.
    assert TargetCurve.from_profile([w * 7 for w in weights]).knots == pytest.approx(curve.knots)
    assert TargetCurve.from_profile([1] * 24).knots == pytest.approx(TargetCurve.even().knots)


@pytest.mark.parametrize(
    "curve", [TargetCurve.even(), CURVE, TargetCurve.from_profile([0] * 23 + [1])]
)
def test_curve_is_monotone_with_exact_endpoints(curve: TargetCurve) -> None:
    shares = [curve.share_at(t) for t in range(0, DAY_SECONDS + 1, 60)]
    assert shares[0] == 0.0
    assert shares[-1] == 1.0
    assert all(b >= a for a, b in itertools.pairwise(shares))


@pytest.mark.parametrize(
    "weights", [[1.0] * 23, [1.0] * 25, [0.0] * 24, [1.0] * 23 + [-1.0], [1.0] * 23 + [math.nan]]
)
def test_profile_refuses_bad_weights(weights: list[float]) -> None:
    with pytest.raises(ValueError, match="hourly_weights"):
        TargetCurve.from_profile(weights)


def test_curve_refuses_bad_knots() -> None:
    with pytest.raises(ValueError, match="never decrease"):
        TargetCurve((0.0, 0.5, 0.4, *([0.9] * 21), 1.0))
    with pytest.raises(ValueError, match="start at 0"):
        TargetCurve((0.1, *([0.5] * 23), 1.0))


# -- the controller -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_output_falls_when_ahead_and_rises_when_behind(mode: PacingMode) -> None:
    start = _output(_controller(mode).state, mode)
    now = 10 * HOUR
    on_target = math.floor(CURVE.share_at(now) * BUDGET)
    ahead = _controller(mode).update(now, on_target + BUDGET // 100)
    behind = _controller(mode).update(now, on_target - BUDGET // 100)
    assert _output(ahead, mode) < start < _output(behind, mode)
    assert ahead.error < 0 < behind.error
    # Half as far ahead, half the cut (or less, at the lower bound).
    nearer = _controller(mode).update(now, on_target + BUDGET // 200)
    assert _output(ahead, mode) <= _output(nearer, mode) < start


def test_error_aims_one_interval_ahead() -> None:
    controller = _controller(interval_seconds=300)
    state = controller.update(10 * HOUR, 0)
    assert state.target_micros == math.floor(CURVE.share_at(10 * HOUR + 300) * BUDGET)
    assert state.error == pytest.approx(state.target_micros / BUDGET)


def test_throttle_saturates_at_its_bounds() -> None:
    behind = _controller(min_throttle=0.05).update(12 * HOUR, 0)
    assert (behind.throttle, behind.multiplier_ppm) == (1.0, 1_000_000)
    ahead = _controller(min_throttle=0.05).update(12 * HOUR, BUDGET // 2 + BUDGET // 10)
    assert (ahead.throttle, ahead.multiplier_ppm) == (0.05, 1_000_000)


def test_multiplier_saturates_at_its_bounds_in_integer_ppm() -> None:
    bounds: dict[str, Any] = {"min_multiplier": 0.25, "max_multiplier": 1.75}
    behind = _controller("multiplier", **bounds).update(12 * HOUR, 0)
    assert (behind.throttle, behind.multiplier_ppm) == (1.0, 1_750_000)
    ahead = _controller("multiplier", **bounds).update(12 * HOUR, BUDGET * 3 // 4)
    assert (ahead.throttle, ahead.multiplier_ppm) == (1.0, 250_000)
    between = _controller("multiplier").update(
        12 * HOUR, math.floor(CURVE.share_at(12 * HOUR) * BUDGET)
    )
    assert type(between.multiplier_ppm) is int
    assert 200_000 <= between.multiplier_ppm <= 1_500_000


@pytest.mark.parametrize("mode", MODES)
def test_stops_exactly_at_the_budget(mode: PacingMode) -> None:
    controller = _controller(mode, budget=5_000_000)
    before = controller.update(23 * HOUR, 4_999_999)
    assert before.throttle > 0
    assert controller.remaining_micros == 1
    at = controller.update(23 * HOUR + 60, 5_000_000)
    assert at.throttle == 0.0
    assert at.throttle_ppm == 0
    assert controller.remaining_micros == 0
    over = controller.update(23 * HOUR + 120, 5_000_123)
    assert over.throttle == 0.0
    assert controller.remaining_micros == 0
    # The stop holds at any time of day, however far behind the curve says we are.
    early = _controller(mode, budget=5_000_000).update(1 * HOUR, 5_000_000)
    assert early.throttle == 0.0


@pytest.mark.parametrize("mode", MODES)
def test_anti_windup_recovers_at_once_after_a_long_saturation(mode: PacingMode) -> None:
    # Six hours with no spend at all (an exchange outage): far behind, the output is pinned at
    # its upper bound. An integral left to wind up would hold ki * mean error * hours, about
    # 30 * 0.07 * 6 = 13 units over the bound, and keep the output pinned for hours once the
    # spend is back. With the integral held within the bounds, the output falls at the first
    # update that sees the spend ahead of the curve, and stays down.
    controller = _controller(mode, gains=PidGains(kd=0.0))
    high = 1.0 if mode == "throttle" else 1.5
    for minute in range(6 * 60):
        state = controller.update(minute * 60, 0)
        assert minute < 60 or _output(state, mode) == high  # pinned after the first hour
    now = 6 * HOUR
    ahead = math.floor(CURVE.share_at(now) * BUDGET) + BUDGET // 50  # 2% of the budget ahead
    for minute in range(30):
        spent = ahead + minute * BUDGET // 5000  # spending on, slowly
        state = controller.update(now + minute * 60, spent)
        assert _output(state, mode) <= 0.5, f"still high {minute} min after the spend came back"


def test_new_day_resets_the_loop() -> None:
    controller = _controller()
    for minute in range(120):
        controller.update(minute * 60, 0)
    assert controller.state.throttle == 1.0
    controller.new_day(budget_micros=2 * BUDGET)
    assert controller.budget_micros == 2 * BUDGET
    assert controller.remaining_micros == 2 * BUDGET
    assert controller.state == _controller().state
    fresh = _controller(budget=2 * BUDGET)
    assert controller.update(600, 1_000) == fresh.update(600, 1_000)


def test_update_at_starts_a_new_day_at_the_offset_midnight() -> None:
    offset = 2 * HOUR  # UTC+2
    midnight = 1_700_000_000 - day_position(1_700_000_000, offset)[1]
    assert day_position(midnight, offset)[1] == 0.0
    assert day_position(midnight - 1, offset) == (day_position(midnight, offset)[0] - 1, 86_399.0)

    controller = _controller(utc_offset_seconds=offset)
    for minute in range(1, 60):  # the last hour of a day, spending nothing: throttle pinned
        controller.update_at(midnight - minute * 60, 0)
    assert controller.state.throttle == 1.0
    first = controller.update_at(midnight + 60, 10)
    assert first == _controller().update(60, 10)  # as if fresh: yesterday's integral is gone
    assert controller.day == day_position(midnight, offset)[0]


def test_budget_share_rounds_down() -> None:
    assert budget_share_micros(1_000_000, 0.5) == 500_000
    assert budget_share_micros(999_999, 0.5) == 499_999
    # The decimal written, not the binary float just below it.
    assert [budget_share_micros(10_000_000, s) for s in (0.3, 0.7, 0.1)] == [
        3_000_000,
        7_000_000,
        1_000_000,
    ]
    shares = [0.3, 0.3, 0.4]
    assert sum(budget_share_micros(10**15, s) for s in shares) == 10**15
    assert sum(budget_share_micros(10**15 + 7, s) for s in shares) <= 10**15 + 7
    with pytest.raises(ValueError, match="share"):
        budget_share_micros(1_000_000, 0.0)


def test_controller_refuses_bad_arguments() -> None:
    with pytest.raises(TypeError, match="micros"):
        PacingController(1.5, CURVE)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="budget_micros"):
        PacingController(0, CURVE)
    with pytest.raises(ValueError, match="mode"):
        PacingController(BUDGET, CURVE, mode="bid")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="multiplier bounds"):
        PacingController(BUDGET, CURVE, min_multiplier=1.6, max_multiplier=1.5)
    with pytest.raises(ValueError, match="initial_output"):
        PacingController(BUDGET, CURVE, initial_output=1.2)
    with pytest.raises(ValueError, match="kp"):
        PidGains(kp=-1.0)
    with pytest.raises(ValueError, match="spent_micros"):
        PacingController(BUDGET, CURVE).update(0, -1)


@settings(max_examples=200, deadline=None)
@given(
    mode=st.sampled_from(MODES),
    budget=st.integers(1, 10**15),
    kp=st.floats(0, 500),
    ki=st.floats(0, 500),
    kd=st.floats(0, 50),
    min_throttle=st.floats(0, 1),
    multiplier_bounds=st.tuples(st.floats(0.01, 10), st.floats(0.01, 10)).map(sorted),
    steps=st.lists(st.tuples(st.integers(0, 7200), st.floats(0, 0.2)), min_size=1, max_size=60),
)
def test_outputs_stay_within_bounds_and_stop_at_budget(
    mode: PacingMode,
    budget: int,
    kp: float,
    ki: float,
    kd: float,
    min_throttle: float,
    multiplier_bounds: list[float],
    steps: list[tuple[int, float]],
) -> None:
    low, high = multiplier_bounds
    controller = PacingController(
        budget,
        CURVE,
        mode=mode,
        gains=PidGains(kp, ki, kd),
        min_throttle=min_throttle,
        min_multiplier=low,
        max_multiplier=high,
    )
    low_ppm, high_ppm = round(low * 1_000_000), round(high * 1_000_000)
    now, spent = 0, 0
    for gap, spend_share in steps:
        now += gap  # past the day's end as well: time is clamped
        spent += math.floor(spend_share * budget)
        state = controller.update(now, spent)
        assert type(state.multiplier_ppm) is int
        assert low_ppm <= state.multiplier_ppm <= high_ppm or mode == "throttle"
        assert controller.remaining_micros == max(0, budget - spent)
        if spent >= budget:
            assert state.throttle == 0.0
        elif mode == "throttle":
            assert min_throttle <= state.throttle <= 1.0
            assert state.multiplier_ppm == 1_000_000
        else:
            assert state.throttle == 1.0


# -- simulated days -----------------------------------------------------------------------------


def test_market_win_rate_and_capacity() -> None:
    market = Market(shape=TrafficShape.diurnal())
    assert market.win_rate(market.competing_median_micros) == pytest.approx(0.5)
    assert market.win_rate(market.floor_micros - 1) == 0.0
    assert market.win_rate(1_000) < market.win_rate(2_000) < market.win_rate(3_000) < 1
    assert 0 < market.expected_spend_micros(1.0) < market.requests_per_day * 2_000
    rate = TrafficShape.late_evening().relative_rate(np.arange(0, DAY_SECONDS, 60.0))
    assert rate.mean() == pytest.approx(1.0, abs=1e-3)


def test_simulation_is_deterministic_and_fast() -> None:
    market = Market(shape=TrafficShape.diurnal())
    budget = market.expected_spend_micros() // 3
    a = simulate_day(PacingController(budget, CURVE), market, seed=7)
    b = simulate_day(PacingController(budget, CURVE), market, seed=7)
    assert np.array_equal(a.cumulative_micros, b.cumulative_micros)
    assert a.spend_micros.dtype == np.int64
    assert a.spend_micros.sum() == a.total_micros
    assert len(a.time) == DAY_SECONDS // 60
    # Second price: a win pays the competing bid (at least the floor), less than our bid.
    wins = int(a.wins.sum())
    assert market.floor_micros * wins < a.total_micros < market.base_bid_micros * wins
    hourly = a.hourly()
    assert hourly.spend_micros.sum() == a.total_micros
    assert hourly.target_micros.sum() == budget == a.target_micros[-1]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("oversupply", OVERSUPPLY)
def test_simulated_days_spend_the_budget_along_the_curve(
    mode: PacingMode, shape: str, oversupply: int
) -> None:
    for seed in SEEDS:
        day = _day(mode, shape, oversupply, seed)
        hourly = day.hourly()
        context = f"{mode} {shape} x{oversupply} seed {seed}"
        assert abs(day.end_error) <= END_TOLERANCE, context
        assert abs(day.end_error) <= END_ACHIEVED, context
        # The stop acts at the update after the budget is reached: at most one step over.
        assert day.total_micros - day.budget_micros <= day.max_step_micros, context
        assert hourly.mean_abs_deviation <= MEAN_DEVIATION, context
        assert hourly.max_abs_deviation <= MAX_DEVIATION, context


@pytest.mark.parametrize("mode", MODES)
def test_lag_only_at_full_throttle(mode: PacingMode) -> None:
    # Where the day falls behind the curve by more than a point of the budget, the controller
    # had spent at least half the hour at its upper bound: the market had no more to sell at
    # the bids it may make, so that lag is the market's, not the controller's.
    high = 1.0 if mode == "throttle" else 1.5
    lagging = 0
    for seed in SEEDS:
        day = _day(mode, "late_evening", 2, seed)
        output = day.throttle if mode == "throttle" else day.multiplier_ppm / 1_000_000
        per_hour = output.reshape(24, -1)
        for hour in np.flatnonzero(day.hourly().deviation < -0.01):
            lagging += 1
            assert np.mean(per_hour[hour] >= high) >= 0.5, f"seed {seed} hour {hour}"
    # The throttle can only enter every request: there, the morning outruns the traffic.
    assert lagging > 0 if mode == "throttle" else lagging == 0


@pytest.mark.parametrize("mode", MODES)
def test_budget_the_traffic_cannot_reach_is_never_exceeded(mode: PacingMode) -> None:
    # Traffic worth half the budget at the highest bid: the controller stays at its upper
    # bound, buys what there is, and never stops.
    market = Market(shape=TrafficShape.diurnal())
    budget = market.expected_spend_micros(1.0 if mode == "throttle" else 1.5) * 2
    day = simulate_day(PacingController(budget, CURVE, mode=mode), market, seed=3)
    output = day.throttle if mode == "throttle" else day.multiplier_ppm / 1_000_000
    assert np.mean(output == output.max()) > 0.9
    assert day.total_micros < budget
    assert np.all(day.throttle > 0)


@pytest.mark.parametrize("mode", MODES)
def test_plot_of_spend_against_target(mode: PacingMode, output_dir: Path) -> None:
    day = _day(mode, "late_evening", 3, seed=0)
    path = plot(day, output_dir / f"pacing_{mode}.png")
    assert path.exists()
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
