"""Budget pacing: a PID controller per campaign that aims a day's spend at a target curve.

A :class:`TargetCurve` says which share of the daily budget should be spent by each moment of
the day: evenly, or following an expected traffic profile. A :class:`PacingController` is fed
the time and the spend so far, every ``interval_seconds`` off the hot path, and answers a
:class:`PacingState`: the probability of entering an auction (``throttle``) and a bid
multiplier in millionths (``multiplier_ppm``), the two numbers the hot path reads from atomics.

The controller does no I/O and reads no clock: the caller supplies time and spend, so a run is
deterministic and the same object can later live in a server's background thread (one thread
updates it; it is not meant to be shared between updaters). Money is integer micros; floats
carry only the control signal. The rules are in ``docs/pacing.md``.

>>> curve = TargetCurve.from_profile([1] * 6 + [3] * 12 + [1] * 6)  # busy from 6:00 to 18:00
>>> curve.share_at(6 * 3600)  # 6 of the 48 weights
0.125
>>> controller = PacingController(1_000_000_000, curve, mode="throttle")  # 1,000.00 a day
>>> controller.update(6 * 3600, spent_micros=140_000_000).throttle  # 1.4% ahead: slow down
0.01
>>> controller.update(7 * 3600, spent_micros=1_000_000_000).throttle  # budget spent: stop
0.0
>>> controller.remaining_micros
0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Final, Literal

__all__ = [
    "DAY_SECONDS",
    "PacingController",
    "PacingMode",
    "PacingState",
    "PidGains",
    "TargetCurve",
    "budget_share_micros",
    "day_position",
]

DAY_SECONDS: Final = 86_400
HOUR_SECONDS: Final = 3_600
PPM: Final = 1_000_000
# Wider than any civil time zone (UTC-12 to UTC+14).
_MAX_UTC_OFFSET: Final = 14 * HOUR_SECONDS

PacingMode = Literal["throttle", "multiplier"]


@dataclass(frozen=True, slots=True)
class TargetCurve:
    """The share of a day's budget that should be spent by each moment of the day.

    ``knots`` are the cumulative shares at the 25 hour boundaries (0 at midnight, 1 at the next
    midnight, never decreasing); between them the curve is linear, so the spend rate it asks
    for is constant within an hour.

    >>> TargetCurve.even().share_at(6 * 3600)
    0.25
    >>> TargetCurve.from_profile([0] * 12 + [1] * 12).share_at(18 * 3600)
    0.5
    """

    knots: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.knots) != 25:
            raise ValueError(f"knots: need 25 (one per hour boundary), got {len(self.knots)}")
        if self.knots[0] != 0.0 or self.knots[-1] != 1.0:
            raise ValueError("knots: must start at 0 and end at 1")
        if any(not b >= a for a, b in zip(self.knots, self.knots[1:], strict=False)):
            raise ValueError("knots: must never decrease")

    @classmethod
    def even(cls) -> TargetCurve:
        """The same spend in every second of the day."""
        return cls.from_profile([1.0] * 24)

    @classmethod
    def from_profile(cls, hourly_weights: Sequence[float]) -> TargetCurve:
        """Spend in proportion to 24 hourly weights (the expected traffic per hour, say);
        only their ratios matter."""
        weights = [float(w) for w in hourly_weights]
        if len(weights) != 24:
            raise ValueError(f"hourly_weights: need 24, got {len(weights)}")
        if any(not (math.isfinite(w) and w >= 0) for w in weights):
            raise ValueError("hourly_weights: each must be finite and >= 0")
        total = math.fsum(weights)
        if total <= 0:
            raise ValueError("hourly_weights: at least one must be > 0")
        inner = (min(1.0, math.fsum(weights[:hour]) / total) for hour in range(1, 24))
        return cls((0.0, *inner, 1.0))  # exactly 1 at the end, whatever the sums' rounding

    def share_at(self, seconds_into_day: float) -> float:
        """The share of the budget to have spent ``seconds_into_day`` after the day's start
        (clamped to the day: 0 before it, 1 after it)."""
        if seconds_into_day <= 0:
            return 0.0
        if seconds_into_day >= DAY_SECONDS:
            return 1.0
        hour = int(seconds_into_day // HOUR_SECONDS)
        fraction = (seconds_into_day - hour * HOUR_SECONDS) / HOUR_SECONDS
        low, high = self.knots[hour], self.knots[hour + 1]
        return low + (high - low) * fraction


@dataclass(frozen=True, slots=True)
class PidGains:
    """The controller's gains, for an error measured in shares of the daily budget.

    - ``kp``: output per unit of error (40: 1% of the budget behind adds 0.4 of throttle);
    - ``ki``: output per unit of error per hour, integrated (the integral holds the output the
      day's traffic needs, so the proportional part can return to zero);
    - ``kd``: output per unit of error rate, in hours (the gap between the target's spend rate
      and the actual one: it damps the loop and reacts at once to a new hour's target rate);
    - ``derivative_filter_seconds``: the time constant of the low-pass filter on that rate,
      against the noise of one interval's spend.

    The defaults were tuned on the simulated market of :mod:`bidcore.budget.simulation`, with
    one-minute updates, for traffic that could spend 2 to 20 times the budget; they suit both
    modes. The loop's gain grows with that ratio and with the interval: for updates much
    slower than a minute on heavily oversubscribed budgets, lower ``kp`` and ``ki``.
    """

    kp: float = 40.0
    ki: float = 30.0
    kd: float = 2.0
    derivative_filter_seconds: float = 300.0

    def __post_init__(self) -> None:
        for name in ("kp", "ki", "kd", "derivative_filter_seconds"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {value}")


@dataclass(frozen=True, slots=True)
class PacingState:
    """What the hot path reads: ``throttle``, the probability of entering an auction (0 stops
    bidding), and ``multiplier_ppm``, the bid multiplier in millionths (1,000,000 is x1).

    The other fields explain the decision: ``target_micros`` is the spend the curve asks for by
    now plus the look-ahead, ``error`` its gap with ``spent_micros`` as a share of the budget.
    """

    throttle: float
    multiplier_ppm: int
    target_micros: int
    spent_micros: int
    error: float

    @property
    def throttle_ppm(self) -> int:
        """``throttle`` in millionths, for an integer atomic."""
        return round(self.throttle * PPM)


class PacingController:
    """Paces one campaign's (or one experiment arm's) daily budget along a :class:`TargetCurve`.

    ``mode`` picks the actuator: ``"throttle"`` moves the probability of entering an auction
    within ``[min_throttle, 1]`` (the multiplier stays x1); ``"multiplier"`` moves the bid
    multiplier within ``[min_multiplier, max_multiplier]`` (every request is entered). Once
    ``spent_micros >= budget_micros`` the throttle is 0 in both modes.

    Call :meth:`update` every ``interval_seconds`` with the seconds since the day's start and the
    day's spend so far, and :meth:`new_day` at the day's start (or call :meth:`update_at` with
    Unix time, which does both; the day starts at midnight UTC plus ``utc_offset_seconds``).

    >>> controller = PacingController(86_400_000_000, TargetCurve.even(), mode="multiplier")
    >>> state = controller.update(43_200, spent_micros=30_000_000_000)  # 8% of budget behind
    >>> state.multiplier_ppm > 1_000_000, state.throttle
    (True, 1.0)
    """

    # The loop's memory, which new_day resets: the integral (it holds the output the day's
    # traffic needs), the last update's time and error, the filtered error rate, the last spend.
    _integral: float
    _now: float | None
    _error: float | None
    _error_rate: float
    _spent: int
    _state: PacingState

    def __init__(
        self,
        budget_micros: int,
        curve: TargetCurve,
        *,
        mode: PacingMode = "throttle",
        gains: PidGains | None = None,
        min_throttle: float = 0.01,
        min_multiplier: float = 0.2,
        max_multiplier: float = 1.5,
        interval_seconds: float = 60.0,
        lookahead_seconds: float | None = None,
        initial_output: float | None = None,
        utc_offset_seconds: int = 0,
    ) -> None:
        if mode not in ("throttle", "multiplier"):
            raise ValueError(f"mode must be 'throttle' or 'multiplier', got {mode!r}")
        if not 0 <= min_throttle <= 1:
            raise ValueError(f"min_throttle must be in [0, 1], got {min_throttle}")
        if not 0 < min_multiplier <= max_multiplier <= 100:
            raise ValueError(
                "multiplier bounds need 0 < min_multiplier <= max_multiplier <= 100, "
                f"got [{min_multiplier}, {max_multiplier}]"
            )
        if not (math.isfinite(interval_seconds) and 0 < interval_seconds <= DAY_SECONDS):
            raise ValueError(f"interval_seconds must be in (0, 86400], got {interval_seconds}")
        if abs(utc_offset_seconds) > _MAX_UTC_OFFSET:
            raise ValueError(f"utc_offset_seconds must be within +-14 h, got {utc_offset_seconds}")
        self.curve = curve
        self.mode: PacingMode = mode
        self.gains = gains if gains is not None else PidGains()
        self.interval_seconds = float(interval_seconds)
        # Aiming at where the curve will be one interval ahead spends what the next interval
        # should, instead of always trailing the curve by one interval's spend.
        self.lookahead_seconds = (
            self.interval_seconds if lookahead_seconds is None else float(lookahead_seconds)
        )
        if not (math.isfinite(self.lookahead_seconds) and self.lookahead_seconds >= 0):
            raise ValueError(f"lookahead_seconds must be >= 0, got {lookahead_seconds}")
        self.utc_offset_seconds = utc_offset_seconds
        self.min_throttle = float(min_throttle)
        self.min_multiplier_ppm = round(min_multiplier * PPM)
        self.max_multiplier_ppm = round(max_multiplier * PPM)
        # The output's range, in the actuator's own unit (a probability, or a multiplier).
        if mode == "throttle":
            self._low, self._high = self.min_throttle, 1.0
        else:
            self._low = self.min_multiplier_ppm / PPM
            self._high = self.max_multiplier_ppm / PPM
        # Halfway for the throttle: spending too fast at the day's start cannot be undone (the
        # curve only rises), spending too slowly can; x1 (within bounds) for the multiplier.
        default_start = (self._low + self._high) / 2 if mode == "throttle" else 1.0
        default_start = min(max(default_start, self._low), self._high)
        start = default_start if initial_output is None else float(initial_output)
        if not self._low <= start <= self._high:
            raise ValueError(f"initial_output must be in [{self._low}, {self._high}], got {start}")
        self._start = start
        self.budget_micros = _check_budget(budget_micros)
        self.day: int | None = None
        self._reset()

    def new_day(self, budget_micros: int | None = None) -> None:
        """Start a new day (optionally with a new budget): the integral, the derivative's
        memory and the spend seen are reset, so yesterday's errors do not steer today."""
        if budget_micros is not None:
            self.budget_micros = _check_budget(budget_micros)
        self._reset()

    @property
    def remaining_micros(self) -> int:
        """What is left of the day's budget after the last spend seen (never negative)."""
        return max(0, self.budget_micros - self._spent)

    @property
    def state(self) -> PacingState:
        """The last state :meth:`update` answered (the start state before the first update)."""
        return self._state

    def update_at(self, unix_seconds: float, spent_micros: int) -> PacingState:
        """:meth:`update` from Unix time: starts a new day (:meth:`new_day`) when the day of
        ``unix_seconds`` is not the last one seen. ``spent_micros`` is that day's spend."""
        day, seconds = day_position(unix_seconds, self.utc_offset_seconds)
        if day != self.day:
            if self.day is not None:
                self.new_day()
            self.day = day
        return self.update(seconds, spent_micros)

    def update(self, now_seconds_into_day: float, spent_micros: int) -> PacingState:
        """Take the day's spend so far and answer the throttle and multiplier until the next
        update. Time is in seconds since the day's start (clamped to ``[0, 86400]``)."""
        if spent_micros < 0:
            raise ValueError(f"spent_micros must be >= 0, got {spent_micros}")
        now = min(max(float(now_seconds_into_day), 0.0), float(DAY_SECONDS))
        budget = self.budget_micros
        aim = self.curve.share_at(min(now + self.lookahead_seconds, DAY_SECONDS))
        target = min(budget, math.floor(aim * budget))
        error = (target - spent_micros) / budget
        hours = 0.0 if self._now is None else max(0.0, now - self._now) / HOUR_SECONDS
        self._filter_error_rate(error, hours)
        exhausted = spent_micros >= budget
        output = self._control(error, hours, frozen=exhausted)
        self._now, self._error, self._spent = now, error, spent_micros
        if self.mode == "throttle":
            throttle, ppm = output, PPM
        else:
            throttle = 1.0
            ppm = min(max(round(output * PPM), self.min_multiplier_ppm), self.max_multiplier_ppm)
        if exhausted:
            throttle = 0.0  # the hard rule: a spent budget stops bidding, whatever the PID says
        self._state = PacingState(throttle, ppm, target, spent_micros, error)
        return self._state

    def _reset(self) -> None:
        self._integral = self._start
        self._now = None
        self._error = None
        self._error_rate = 0.0
        self._spent = 0
        self._state = self._start_state()

    def _start_state(self) -> PacingState:
        throttle_mode = self.mode == "throttle"
        return PacingState(
            throttle=self._start if throttle_mode else 1.0,
            multiplier_ppm=PPM if throttle_mode else round(self._start * PPM),
            target_micros=0,
            spent_micros=0,
            error=0.0,
        )

    def _filter_error_rate(self, error: float, hours: float) -> None:
        # A first-order low-pass of d(error)/dt, in shares of the budget per hour. The target is
        # continuous (no setpoint steps), so differentiating the error cannot kick the output;
        # it carries the change of the target's rate at each hour, which the loop should see.
        if self._error is None or hours <= 0:
            return
        raw = (error - self._error) / hours
        tau = self.gains.derivative_filter_seconds / HOUR_SECONDS
        self._error_rate += (raw - self._error_rate) * hours / (tau + hours)

    def _control(self, error: float, hours: float, *, frozen: bool) -> float:
        gains, low, high = self.gains, self._low, self._high
        integral = self._integral + gains.ki * error * hours
        raw = integral + gains.kp * error + gains.kd * self._error_rate
        # Anti-windup by conditional integration: while the output is pinned at a bound, an
        # error that pushes it further out is not integrated (it would have to be unwound
        # before the output could move back); and the integral, the output the traffic needs,
        # never leaves the output's range.
        pushing_out = (raw > high and error > 0) or (raw < low and error < 0)
        if not (frozen or pushing_out):
            self._integral = min(max(integral, low), high)
        output = self._integral + gains.kp * error + gains.kd * self._error_rate
        return min(max(output, low), high)


def day_position(unix_seconds: float, utc_offset_seconds: int = 0) -> tuple[int, float]:
    """The day number and the seconds into that day of a Unix time, for days that start at
    midnight UTC plus ``utc_offset_seconds`` (3600 for UTC+1). A fixed offset: a region with
    daylight saving time changes the offset twice a year, and those days pace as 24 h days.

    >>> day_position(1_700_000_000, utc_offset_seconds=3600)
    (19675, 83600.0)
    """
    local = unix_seconds + utc_offset_seconds
    day = math.floor(local / DAY_SECONDS)
    return day, float(local - day * DAY_SECONDS)


def budget_share_micros(budget_micros: int, share: float) -> int:
    """An experiment arm's part of a campaign's budget: ``budget_micros * share`` rounded down,
    exactly, with ``share`` the decimal the config wrote (the float's shortest repr: 0.3 is
    3/10, not the binary value just below it), so shares of 0.3 and 0.7 of $10 are $3 and $7
    and the arms' budgets never sum above the campaign's when their shares sum to 1 or less.

    >>> budget_share_micros(1_000_000_001, 0.5), budget_share_micros(10_000_000, 0.3)
    (500000000, 3000000)
    """
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    return math.floor(Fraction(budget_micros) * Fraction(repr(share)))


def _check_budget(budget_micros: int) -> int:
    if isinstance(budget_micros, bool) or not isinstance(budget_micros, int):
        raise TypeError(f"budget_micros must be an int (micros), got {type(budget_micros)}")
    if budget_micros <= 0:
        raise ValueError(f"budget_micros must be > 0, got {budget_micros}")
    return budget_micros
