"""A simulated day of auctions, to check a :class:`~bidcore.budget.PacingController` against.

The market (:class:`Market`): bid requests arrive as a Poisson stream whose rate follows a daily
:class:`TrafficShape`; the controller's throttle picks which of them are entered; an entered
request is won when the bid (the base bid times the multiplier, in integer micros as the engine
computes it) beats the highest competing bid, whose distribution is log-logistic, so the win
rate is a logistic curve of the log of the bid; the winner pays the competing bid, or the floor
when that is higher (a second-price auction). A day's volume and competition are off by random
factors the controller is not told of. Each step draws its requests, entries and wins as
Poisson and binomial counts and one price per win, with numpy, from a seeded Generator: a day
of one-minute steps takes a few tens of milliseconds and is the same on every run.

>>> from bidcore.budget import PacingController, TargetCurve
>>> market = Market(shape=TrafficShape.diurnal())
>>> budget = market.expected_spend_micros() // 2  # twice the traffic the budget can buy
>>> curve = TargetCurve.from_profile(TrafficShape.diurnal().hourly_weights)
>>> result = simulate_day(PacingController(budget, curve), market, seed=1)
>>> abs(result.end_error) < 0.05, result.hourly().max_abs_deviation < 0.05
(True, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from bidcore.budget.pacing import DAY_SECONDS, HOUR_SECONDS, PPM, PacingController

__all__ = ["DayResult", "HourlySpend", "Market", "TrafficShape", "plot", "simulate_day"]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

# Requests per hour, relative: a quiet night, a morning climb, a lunch peak, an afternoon dip
# and the evening peak (the shape of display and app traffic in one time zone).
_DIURNAL: Final = (
    0.30, 0.22, 0.18, 0.16, 0.18, 0.28, 0.50, 0.80, 1.00, 1.10, 1.15, 1.30,
    1.45, 1.30, 1.10, 1.05, 1.10, 1.25, 1.45, 1.70, 1.85, 1.75, 1.20, 0.60,
)  # fmt: skip
# A day the diurnal profile mispredicts: later mornings, a flat midday with no lunch peak and
# a taller, later evening (a weekend, or an audience in another time zone).
_LATE_EVENING: Final = (
    0.45, 0.35, 0.25, 0.18, 0.14, 0.14, 0.20, 0.35, 0.55, 0.75, 0.90, 1.00,
    1.05, 1.05, 1.00, 1.00, 1.05, 1.20, 1.45, 1.80, 2.10, 2.20, 1.80, 0.95,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class TrafficShape:
    """Requests per hour, relative (only ratios matter): the rate at each hour's middle,
    linear in between, around the clock (23:30 joins 00:30)."""

    hourly_weights: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.hourly_weights) != 24:
            raise ValueError(f"hourly_weights: need 24, got {len(self.hourly_weights)}")
        if any(not (math.isfinite(w) and w >= 0) for w in self.hourly_weights):
            raise ValueError("hourly_weights: each must be finite and >= 0")
        if not math.fsum(self.hourly_weights) > 0:
            raise ValueError("hourly_weights: at least one must be > 0")

    @classmethod
    def diurnal(cls) -> TrafficShape:
        """Low at night, peaks at lunch and in the evening."""
        return cls(_DIURNAL)

    @classmethod
    def late_evening(cls) -> TrafficShape:
        """Later mornings, no lunch peak, a taller and later evening peak."""
        return cls(_LATE_EVENING)

    def relative_rate(self, seconds_into_day: Floats) -> Floats:
        """The request rate at these times relative to the day's mean (which is 1)."""
        weights = np.asarray(self.hourly_weights, dtype=np.float64)
        # Knots at the hours' middles, wrapped by one on each side for the periodic join. The
        # mean of a periodic linear interpolant is the mean of its knots: the day mean is 1.
        centres = np.arange(-1, 25, dtype=np.float64) * HOUR_SECONDS + HOUR_SECONDS / 2
        values = np.concatenate(([weights[-1]], weights, [weights[0]])) / weights.mean()
        at = np.mod(seconds_into_day, DAY_SECONDS)
        return np.asarray(np.interp(at, centres, values), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Market:
    """The auctions one campaign meets in a day, amounts in integer micros per impression
    (2,000 micros is a $2 CPM).

    - ``requests_per_day``: the day's expected bid requests;
    - ``base_bid_micros``: the campaign's bid at multiplier x1;
    - ``competing_median_micros`` and ``competition_steepness``: the highest competing bid is
      log-logistic with this median and shape, so the win rate of a bid ``b`` is
      ``1 / (1 + (median / b) ** steepness)``, a logistic curve in ``log b``;
    - ``floor_micros``: the reserve price; a bid below it never wins, a win pays at least it;
    - ``volume_noise`` and ``competition_noise``: the standard deviations of the log of a day's
      random volume factor and competing-bid factor (the controller is not told of either).
    """

    shape: TrafficShape
    requests_per_day: int = 4_000_000
    base_bid_micros: int = 2_000
    competing_median_micros: int = 2_200
    competition_steepness: float = 4.0
    floor_micros: int = 500
    volume_noise: float = 0.1
    competition_noise: float = 0.05

    def __post_init__(self) -> None:
        if self.requests_per_day <= 0 or self.base_bid_micros <= 0:
            raise ValueError("requests_per_day and base_bid_micros must be > 0")
        if self.competing_median_micros <= 0 or not self.competition_steepness > 0:
            raise ValueError("competing_median_micros and competition_steepness must be > 0")
        if self.floor_micros < 0 or self.volume_noise < 0 or self.competition_noise < 0:
            raise ValueError("floor_micros and the noises must be >= 0")

    def win_rate(self, bid_micros: int, competing_median: float | None = None) -> float:
        """The probability that a bid beats the highest competing bid (0 below the floor)."""
        median = self.competing_median_micros if competing_median is None else competing_median
        if bid_micros <= 0 or bid_micros < self.floor_micros:
            return 0.0
        return 1.0 / (1.0 + math.pow(median / bid_micros, self.competition_steepness))

    def expected_spend_micros(self, multiplier: float = 1.0) -> int:
        """A day's expected spend when every request is entered at this multiplier, at the
        median volume and competition: what the traffic could buy, to size budgets against."""
        bid = self.base_bid_micros * multiplier
        p = self.win_rate(math.floor(bid))
        if p == 0:
            return 0
        # E[price | win] = E[max(X, floor) | X < bid], X log-logistic: by quadrature over the
        # quantiles of X below the bid.
        quantiles = (np.arange(20_000, dtype=np.float64) + 0.5) / 20_000 * p
        prices = self._prices(quantiles, self.competing_median_micros)
        return math.floor(self.requests_per_day * p * float(prices.mean()))

    def _prices(self, quantiles: Floats, median: float) -> Ints:
        # The competing bids at these quantiles of their distribution (the inverse of the
        # log-logistic distribution function), in whole micros, and at least the floor.
        bids = median * (quantiles / (1.0 - quantiles)) ** (1.0 / self.competition_steepness)
        return np.maximum(np.floor(bids), self.floor_micros).astype(np.int64)


@dataclass(frozen=True, slots=True)
class HourlySpend:
    """A day's spend per hour next to the target's, and the cumulative shares of the budget at
    each hour's end (``deviation`` is their gap: +0.01 is one point of the budget ahead)."""

    spend_micros: Ints
    target_micros: Ints
    cumulative_share: Floats
    target_share: Floats

    @property
    def deviation(self) -> Floats:
        return self.cumulative_share - self.target_share

    @property
    def mean_abs_deviation(self) -> float:
        return float(np.abs(self.deviation).mean())

    @property
    def max_abs_deviation(self) -> float:
        return float(np.abs(self.deviation).max())


@dataclass(frozen=True, slots=True)
class DayResult:
    """One simulated day, an entry per step: ``time`` (the step's start, seconds into the day),
    ``spend_micros`` in the step, ``cumulative_micros`` and ``target_micros`` (the curve's
    cumulative target, no look-ahead) at the step's end, and the ``throttle`` and
    ``multiplier_ppm`` the step ran with; ``requests`` and ``wins`` count the auctions."""

    budget_micros: int
    step_seconds: int
    time: Floats
    spend_micros: Ints
    cumulative_micros: Ints
    target_micros: Ints
    throttle: Floats
    multiplier_ppm: Ints
    requests: Ints
    wins: Ints

    @property
    def total_micros(self) -> int:
        return int(self.cumulative_micros[-1])

    @property
    def end_error(self) -> float:
        """The day's spend less the budget, as a share of the budget (-0.02: 2% unspent)."""
        return (self.total_micros - self.budget_micros) / self.budget_micros

    @property
    def max_step_micros(self) -> int:
        """The most spent in one step. With an update every step, the day's overspend is at
        most this: the stop takes effect at the first update that sees the budget spent."""
        return int(self.spend_micros.max())

    def hourly(self) -> HourlySpend:
        """The day by hour: spend and target per hour, cumulative shares at the hours' ends."""
        per_hour = HOUR_SECONDS // self.step_seconds
        spend = self.spend_micros.reshape(24, per_hour).sum(axis=1)
        target_end = self.target_micros[per_hour - 1 :: per_hour]
        target = np.diff(target_end, prepend=np.int64(0))
        return HourlySpend(
            spend_micros=spend,
            target_micros=target,
            cumulative_share=np.cumsum(spend) / self.budget_micros,
            target_share=target_end / self.budget_micros,
        )


def simulate_day(
    controller: PacingController,
    market: Market,
    *,
    seed: int,
    step_seconds: int = 60,
) -> DayResult:
    """Run one day of ``market`` under ``controller`` (from :meth:`~PacingController.new_day`),
    updating it every ``interval_seconds`` (rounded to whole steps) with the spend so far."""
    if step_seconds <= 0 or HOUR_SECONDS % step_seconds:
        raise ValueError(f"step_seconds must divide an hour, got {step_seconds}")
    rng = np.random.default_rng(seed)
    volume = market.requests_per_day * math.exp(rng.normal(0.0, market.volume_noise))
    median = market.competing_median_micros * math.exp(rng.normal(0.0, market.competition_noise))
    steps = DAY_SECONDS // step_seconds
    every = max(1, round(controller.interval_seconds / step_seconds))
    time = np.arange(steps, dtype=np.float64) * step_seconds
    rate = market.shape.relative_rate(time + step_seconds / 2)
    requests = rng.poisson(volume / steps * rate).astype(np.int64)
    cumulative = np.zeros(steps, dtype=np.int64)
    wins = np.zeros(steps, dtype=np.int64)
    throttle = np.zeros(steps, dtype=np.float64)
    multiplier = np.zeros(steps, dtype=np.int64)

    controller.new_day()
    spent = 0
    state = controller.state
    for i in range(steps):
        if i % every == 0:
            state = controller.update(float(time[i]), spent)
        # The engine's integer arithmetic: value * ppm / 10^6, rounded down.
        bid = market.base_bid_micros * state.multiplier_ppm // PPM
        p = market.win_rate(bid, median)
        entered = rng.binomial(requests[i], state.throttle) if state.throttle > 0 else 0
        won = int(rng.binomial(entered, p)) if p > 0 else 0
        if won:
            # Each win pays the competing bid it beat: a quantile of that bid's distribution
            # below our bid's, which is p.
            spent += int(market._prices(rng.random(won) * p, median).sum())
        cumulative[i], wins[i] = spent, won
        throttle[i], multiplier[i] = state.throttle, state.multiplier_ppm

    spend = np.diff(cumulative, prepend=np.int64(0))
    ends = np.minimum(time + step_seconds, DAY_SECONDS)
    knots = np.asarray(controller.curve.knots, dtype=np.float64)
    target_share = np.interp(ends, np.arange(25, dtype=np.float64) * HOUR_SECONDS, knots)
    target = np.floor(target_share * controller.budget_micros).astype(np.int64)
    return DayResult(
        budget_micros=controller.budget_micros,
        step_seconds=step_seconds,
        time=time,
        spend_micros=spend,
        cumulative_micros=cumulative,
        target_micros=target,
        throttle=throttle,
        multiplier_ppm=multiplier,
        requests=requests,
        wins=wins,
    )


def plot(result: DayResult, path: str | Path) -> Path:
    """Write a PNG of ``result``: cumulative spend against the target, spend per hour against
    the target's, and the control signal. Drawn on matplotlib's Agg canvas (no pyplot, no
    display, safe in threads); matplotlib is needed only here."""
    from matplotlib.figure import Figure  # an optional dependency (the experiments extra)

    path = Path(path)
    hours = result.time / HOUR_SECONDS
    ends = hours + result.step_seconds / HOUR_SECONDS
    hourly = result.hourly()
    units = 1e6  # micros to currency units

    figure = Figure(figsize=(9.0, 9.0), layout="constrained")
    cumulative, per_hour, signal = figure.subplots(3, 1, sharex=True)
    cumulative.plot(ends, result.target_micros / units, color="grey", ls="--", label="target")
    cumulative.plot(ends, result.cumulative_micros / units, color="tab:blue", label="spend")
    cumulative.axhline(result.budget_micros / units, color="tab:red", lw=0.8, label="budget")
    cumulative.set_ylabel("cumulative spend")
    cumulative.set_title(
        f"spent {result.total_micros / units:,.2f} of {result.budget_micros / units:,.2f} "
        f"({result.end_error:+.2%}); off the target by {hourly.mean_abs_deviation:.2%} of the "
        f"budget on average, {hourly.max_abs_deviation:.2%} at most (hour ends)",
        fontsize="medium",
    )
    cumulative.legend(loc="upper left", fontsize="small")

    centres = np.arange(24, dtype=np.float64) + 0.5
    per_hour.bar(centres, hourly.spend_micros / units, width=0.8, color="tab:blue", label="spend")
    per_hour.step(
        np.arange(25, dtype=np.float64),
        np.append(hourly.target_micros, hourly.target_micros[-1]) / units,
        where="post",
        color="grey",
        ls="--",
        label="target",
    )
    per_hour.set_ylabel("spend per hour")
    per_hour.legend(loc="upper left", fontsize="small")

    signal.plot(hours, result.throttle, color="tab:green", label="throttle")
    signal.plot(hours, result.multiplier_ppm / PPM, color="tab:purple", label="multiplier")
    signal.set_ylabel("control signal")
    signal.set_xlabel("hour of the day")
    signal.set_xlim(0, 24)
    signal.set_xticks(range(0, 25, 3))
    signal.legend(loc="upper left", fontsize="small")
    for axes in (cumulative, per_hour, signal):
        axes.grid(alpha=0.3)
    figure.savefig(path, format="png", dpi=100)
    return path
