"""Always-valid inference for a difference between arms, so that results can be looked at daily.

The test is the mixture sequential probability ratio test (mSPRT) with a normal mixture, as in
Johari, Koomen, Pekelis and Walsh, "Always valid inference: continuous monitoring of A/B tests"
(Operations Research, 2022). With ``d`` the estimated difference (treatment minus control),
``V`` its variance and ``tau2`` the variance of the normal mixture over the true difference,
the mixture likelihood ratio of "difference = delta" against the alternatives is

    Lambda(delta) = sqrt(V / (V + tau2)) * exp(tau2 * (d - delta)^2 / (2 V (V + tau2)))

and ``p = min(1, 1 / Lambda(0))``. Under the null ``Lambda`` is (asymptotically) a
nonnegative martingale, so by Ville's inequality ``P(any look has p <= alpha) <= alpha``,
whenever and however often one looks. Inverting it gives the confidence sequence
``d +- sqrt(V (V + tau2) / tau2 * (2 log(1/alpha) + log((V + tau2) / V)))``, the normal-mixture
boundary of Howard, Ramdas, McAuliffe and Sekhon (Annals of Statistics, 2021); ``p <= alpha``
exactly when it excludes 0. Over several looks the running minimum of ``p`` and the running
intersection of the intervals (:func:`running`) stay valid.

The mixing variance. ``tau2`` must be fixed before the data is seen; the boundary is tightest at
the look where ``tau2 / V = r``, with ``r = 2 log(1/alpha) + log(1 + r)`` (``r = 8.21`` at
alpha = 0.05), where the interval is 1.55 times as wide as the fixed-horizon one. bidcore takes
``tau2 = r * V_h``, with ``V_h`` the variance expected at the planned horizon: ``V * n / n_h``
for ``n`` units now and ``n_h`` planned (the per-unit variance is a plug-in estimate, as in
Johari et al.). Without a planned horizon it is tuned to the data at hand, which is right for
one look; for daily looks, plan the horizon and keep it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import TypeAlias, overload

import numpy as np
import numpy.typing as npt

__all__ = [
    "AlwaysValid",
    "always_valid",
    "confidence_sequence",
    "mixing_ratio",
    "mixing_variance",
    "msprt_p_value",
    "running",
]

Floats: TypeAlias = npt.NDArray[np.float64]


@cache
def mixing_ratio(alpha: float) -> float:
    """``r = tau2 / V`` at the look where the confidence sequence is tightest.

    >>> round(mixing_ratio(0.05), 2)
    8.21
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), not {alpha}")
    r = 2 * math.log(1 / alpha)
    for _ in range(100):  # a contraction: the derivative of log(1 + r) is below 1
        r = 2 * math.log(1 / alpha) + math.log1p(r)
    return r


@overload
def mixing_variance(
    variance: float, units: int, horizon_units: int | None = None, alpha: float = 0.05
) -> float: ...
@overload
def mixing_variance(
    variance: Floats, units: Floats | int, horizon_units: int | None = None, alpha: float = 0.05
) -> Floats: ...
def mixing_variance(
    variance: float | Floats,
    units: Floats | int,
    horizon_units: int | None = None,
    alpha: float = 0.05,
) -> float | Floats:
    """``tau2`` for a difference of variance ``variance`` now, with ``units`` units, tuned to
    be tightest at ``horizon_units`` (by default ``units``: now). Element-wise over arrays of
    looks, with a horizon given.

    >>> round(mixing_variance(1e-4, 1000, 30_000) / 1e-4 * 30, 2)
    8.21
    """
    horizon = units if horizon_units is None else horizon_units
    if np.any(np.asarray(horizon) <= 0):
        raise ValueError(f"the horizon must be positive, not {horizon}")
    return mixing_ratio(alpha) * variance * units / horizon


def msprt_p_value(diff: npt.ArrayLike, variance: npt.ArrayLike, tau2: npt.ArrayLike) -> Floats:
    """The mSPRT p-value at one look, element-wise (NaN where the variance is not positive).

    >>> float(msprt_p_value(0.0, 1.0, 8.21)) == 1.0, float(msprt_p_value(5.0, 1.0, 8.21)) < 0.01
    (True, True)
    """
    d = np.asarray(diff, np.float64)
    v = np.asarray(variance, np.float64)
    t = np.asarray(tau2, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_lambda = 0.5 * np.log(v / (v + t)) + t * d**2 / (2 * v * (v + t))
        p = np.exp(-np.maximum(log_lambda, 0.0))
    return np.asarray(np.where((v > 0) & (t > 0), p, np.nan), np.float64)


def confidence_sequence(
    diff: npt.ArrayLike, variance: npt.ArrayLike, tau2: npt.ArrayLike, alpha: float = 0.05
) -> tuple[Floats, Floats]:
    """The always-valid interval ``(low, high)`` at one look, element-wise.

    >>> low, high = confidence_sequence(0.0, 1.0, mixing_ratio(0.05))
    >>> round(float(high), 2)
    3.04
    """
    d = np.asarray(diff, np.float64)
    v = np.asarray(variance, np.float64)
    t = np.asarray(tau2, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        half = np.sqrt(v * (v + t) / t * (2 * math.log(1 / alpha) + np.log((v + t) / v)))
    half = np.where((v > 0) & (t > 0), half, np.nan)
    return np.asarray(d - half, np.float64), np.asarray(d + half, np.float64)


def running(p: npt.ArrayLike, low: npt.ArrayLike, high: npt.ArrayLike) -> tuple[Floats, ...]:
    """Over successive looks (the last axis): the smallest p-value so far and the intersection
    of the intervals so far, all still always valid. Looks with NaN (no data yet) are skipped.

    >>> [x.tolist() for x in running([0.5, 0.2, 0.4], [-1, -2, 0], [3, 1, 2])]
    [[0.5, 0.2, 0.2], [-1.0, -1.0, 0.0], [3.0, 1.0, 1.0]]
    """
    p_ = np.fmin.accumulate(np.asarray(p, np.float64), axis=-1)
    low_ = np.fmax.accumulate(np.asarray(low, np.float64), axis=-1)
    high_ = np.fmin.accumulate(np.asarray(high, np.float64), axis=-1)
    return p_, low_, high_


@dataclass(frozen=True)
class AlwaysValid:
    """The sequential test at one look: the always-valid p-value, the interval (confidence
    sequence) at level ``1 - alpha`` and the mixing variance it used."""

    p_value: float
    low: float
    high: float
    mixing_variance: float


def always_valid(
    diff: float,
    variance: float,
    units: int,
    *,
    horizon_units: int | None = None,
    alpha: float = 0.05,
) -> AlwaysValid:
    """The mSPRT and its confidence sequence for one look at a difference.

    >>> result = always_valid(0.002, 0.0005**2 * 2, 20_000, horizon_units=20_000)
    >>> round(result.p_value, 3), result.low < 0.002 < result.high
    (0.086, True)
    """
    tau2 = mixing_variance(variance, units, horizon_units, alpha)
    p = float(msprt_p_value(diff, variance, tau2))
    low, high = confidence_sequence(diff, variance, tau2, alpha)
    return AlwaysValid(p, float(low), float(high), tau2)
