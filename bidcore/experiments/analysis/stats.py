"""Fixed-horizon statistics: ratio metrics by the delta method, CUPED, differences, SRM.

Ratio metrics. An arm's metric is ``R = sum(Y) / sum(N)`` over its ``n`` units (``Y``, ``N``
per-unit sums, so the units are independent even when their requests are not). The delta
method linearises it around the estimate: ``L_i = (Y_i - R N_i) / mean(N)``, and
``Var(R) ~ var(L) / n`` (Deng, Knoblich and Lu, "Applying the delta method in metric analytics",
KDD 2018). With ``N = 1`` this is the variance of a mean.

CUPED (Deng, Xu, Kohavi and Walker, WSDM 2013) uses a pre-period covariate: the same metric's
sums before the experiment, ``X_i`` over ``M_i``, linearised the same way around the pooled
(all arms) pre-period ratio, ``K_i = (X_i - R_X M_i) / mean(M)``. One ``theta`` for all arms,
``cov(L, K) / var(K)`` within arms, gives ``R_cv = R - theta * mean_arm(K)`` with
``Var(R_cv) ~ var(L - theta K) / n``: the variance shrinks by ``corr(L, K)^2`` and, since the
covariate was fixed before assignment, the difference between arms stays unbiased.

Differences are treatment minus control with a normal interval and a two-sided z-test; the
relative lift ``R_t / R_c - 1`` gets its variance by the delta method too.

The sample-ratio-mismatch test compares the units per arm with the configured weights
(Pearson's chi-square, ``k - 1`` degrees of freedom); a p-value under 0.001 flags it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

import numpy as np
import numpy.typing as npt
from scipy import special  # type: ignore[import-untyped]  # scipy ships no type information

__all__ = [
    "SRM_THRESHOLD",
    "ArmRatios",
    "Difference",
    "Estimate",
    "SampleRatio",
    "arm_ratios",
    "difference",
    "normal_quantile",
    "sample_ratio_test",
    "two_sided_p",
]

Floats: TypeAlias = npt.NDArray[np.float64]
Ints: TypeAlias = npt.NDArray[np.intp]

SRM_THRESHOLD: Final = 0.001
"""The p-value under which a sample ratio mismatch is flagged."""


def normal_quantile(q: float) -> float:
    """The standard normal quantile: ``normal_quantile(0.975)`` is 1.96.

    >>> round(normal_quantile(0.975), 4)
    1.96
    """
    return float(special.ndtri(q))


def two_sided_p(z: float) -> float:
    """The two-sided p-value of a standard normal statistic (NaN for NaN).

    >>> round(two_sided_p(1.959964), 4)
    0.05
    """
    return float(2.0 * special.ndtr(-abs(z)))


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its standard error and a two-sided interval."""

    value: float
    se: float
    low: float
    high: float

    @classmethod
    def normal(cls, value: float, variance: float, alpha: float) -> Estimate:
        """``value +- z_(1 - alpha/2) * sqrt(variance)``.

        >>> Estimate.normal(1.0, 0.25, 0.05)
        Estimate(value=1.0, se=0.5, low=0.02001..., high=1.97998...)
        """
        se = math.sqrt(variance) if variance >= 0 else math.nan
        half = normal_quantile(1 - alpha / 2) * se
        return cls(value, se, value - half, value + half)


@dataclass(frozen=True)
class ArmRatios:
    """A ratio metric in every arm: ``value[a]`` with ``variance[a]`` (of the value), the
    unadjusted ``raw_value``/``raw_variance`` (equal to them without a covariate), CUPED's
    ``theta`` (0 without one), and the units per arm ``n``."""

    value: Floats
    variance: Floats
    raw_value: Floats
    raw_variance: Floats
    theta: float
    n: Ints

    @property
    def variance_reduction(self) -> Floats:
        """``1 - variance / raw_variance`` per arm: CUPED's gain (0 without a covariate)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(1.0 - self.variance / self.raw_variance, np.float64)


def arm_ratios(
    numerator: npt.ArrayLike,
    denominator: npt.ArrayLike,
    arm: npt.ArrayLike,
    n_arms: int,
    *,
    covariate: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
    scale: float = 1.0,
) -> ArmRatios:
    """``scale * sum(numerator) / sum(denominator)`` per arm and its delta-method variance,
    CUPED-adjusted when ``covariate`` gives the pre-period ``(numerator, denominator)`` per
    unit. An arm with fewer than two units, or a zero denominator, gets NaN.

    >>> clicks, shown = np.array([1.0, 0, 2, 0, 1, 0]), np.array([2.0, 1, 3, 1, 2, 2])
    >>> ratios = arm_ratios(clicks, shown, np.array([0, 0, 0, 1, 1, 1]), 2)
    >>> ratios.value.round(4).tolist(), ratios.variance.round(5).tolist()
    ([0.5, 0.2], [0.02083, 0.0336])
    """
    y = np.asarray(numerator, np.float64)
    d = np.asarray(denominator, np.float64)
    a = np.asarray(arm, np.intp)
    n = np.bincount(a, minlength=n_arms).astype(np.intp)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = _sum(a, y, n_arms) / _sum(a, d, n_arms)
        mean_d = _sum(a, d, n_arms) / n
        lin = (y - ratio[a] * d) / mean_d[a]
        raw_variance = _within_variance(a, lin, n_arms) / n
    if covariate is None:
        value, variance, theta = ratio, raw_variance, 0.0
    else:
        x = np.asarray(covariate[0], np.float64)
        m = np.asarray(covariate[1], np.float64)
        if x.shape != y.shape or m.shape != y.shape:
            raise ValueError("the covariate needs one value per unit")
        mean_m = float(m.mean()) if m.size else 0.0
        if mean_m == 0.0:
            cov_lin = np.zeros_like(x)
        else:
            cov_lin = (x - float(x.sum()) / float(m.sum()) * m) / mean_m
        theta = _pooled_theta(a, lin, cov_lin, n_arms)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = ratio - theta * _sum(a, cov_lin, n_arms) / n
            variance = _within_variance(a, lin - theta * cov_lin, n_arms) / n
    return ArmRatios(
        value=value * scale,
        variance=variance * scale**2,
        raw_value=ratio * scale,
        raw_variance=raw_variance * scale**2,
        theta=theta,
        n=n,
    )


def _sum(arm: Ints, values: Floats, n_arms: int) -> Floats:
    return np.bincount(arm, weights=values, minlength=n_arms).astype(np.float64)


def _within_variance(arm: Ints, values: Floats, n_arms: int) -> Floats:
    """The sample variance (ddof 1) of ``values`` within each arm; NaN under two units."""
    n = np.bincount(arm, minlength=n_arms)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = _sum(arm, values, n_arms) / n
        centred = values - mean[arm]
        return np.where(n > 1, _sum(arm, centred**2, n_arms) / (n - 1), np.nan)


def _pooled_theta(arm: Ints, lin: Floats, cov_lin: Floats, n_arms: int) -> float:
    """``cov(L, K) / var(K)`` with both centred within arms, summed over arms (0 when the
    covariate does not vary or the metric is undefined)."""
    n = np.bincount(arm, minlength=n_arms)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = cov_lin - (_sum(arm, cov_lin, n_arms) / n)[arm]
        l_ = lin - (_sum(arm, lin, n_arms) / n)[arm]
    ok = np.isfinite(l_) & np.isfinite(k)
    var_k = float(np.dot(k[ok], k[ok]))
    if var_k <= 0.0:
        return 0.0
    return float(np.dot(l_[ok], k[ok])) / var_k


@dataclass(frozen=True)
class Difference:
    """Treatment minus control (``diff``), the relative lift ``treatment / control - 1``
    (``lift``), and the fixed-horizon two-sided p-value of no difference."""

    diff: Estimate
    lift: Estimate
    p_value: float


def difference(
    treatment: float,
    treatment_variance: float,
    control: float,
    control_variance: float,
    alpha: float = 0.05,
) -> Difference:
    """The difference of two independent estimates, with intervals and a z-test.

    >>> result = difference(0.022, 0.0005**2, 0.020, 0.0005**2)
    >>> round(result.diff.value, 6), round(result.lift.value, 3), round(result.p_value, 4)
    (0.002, 0.1, 0.0047)
    """
    variance = treatment_variance + control_variance
    diff = Estimate.normal(treatment - control, variance, alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        lift_value = float(np.float64(treatment) / control - 1.0)
        lift_variance = float(
            np.float64(treatment_variance) / control**2
            + treatment**2 * np.float64(control_variance) / control**4
        )
    lift = (
        Estimate.normal(lift_value, lift_variance, alpha)
        if math.isfinite(lift_variance)
        else Estimate(lift_value, math.nan, math.nan, math.nan)
    )
    z = diff.value / diff.se if diff.se > 0 else math.nan
    return Difference(diff, lift, two_sided_p(z))


@dataclass(frozen=True)
class SampleRatio:
    """The sample-ratio-mismatch test: units per arm against the configured weights."""

    arms: tuple[str, ...]
    observed: tuple[int, ...]
    expected: tuple[float, ...]
    chi2: float
    p_value: float
    flagged: bool


def sample_ratio_test(
    observed: Mapping[str, int],
    weights: Mapping[str, float] | Sequence[float] | None = None,
    *,
    threshold: float = SRM_THRESHOLD,
) -> SampleRatio:
    """Pearson's chi-square test of the units per arm against ``weights`` (by arm name, or in
    the order of ``observed``; equal weights when ``None``); flagged when ``p < threshold``.

    An arm with a weight but no unit counts 0; a unit in an arm without a weight is an error.

    >>> sample_ratio_test({"control": 50_000, "treatment": 50_600}).flagged
    False
    >>> srm = sample_ratio_test({"control": 50_000, "treatment": 51_000}, {"control": 0.5,
    ...                         "treatment": 0.5})
    >>> round(srm.chi2, 2), srm.p_value < 0.001, srm.flagged
    (9.9, False, False)
    >>> sample_ratio_test({"control": 50_000, "treatment": 51_500}).flagged
    True
    """
    if weights is None:
        weights = dict.fromkeys(observed, 1.0)
    elif not isinstance(weights, Mapping):
        if len(weights) != len(observed):
            raise ValueError(f"{len(weights)} weights for {len(observed)} arms")
        weights = dict(zip(observed, weights, strict=True))
    extra = sorted(set(observed) - set(weights))
    if extra:
        raise ValueError(f"units in arms without a weight: {', '.join(extra)}")
    arms = tuple(weights)
    w = np.asarray([weights[a] for a in arms], np.float64)
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError("weights must be non-negative with a positive sum")
    counts = np.asarray([observed.get(a, 0) for a in arms], np.float64)
    expected = counts.sum() * w / w.sum()
    positive = expected > 0
    if (counts[~positive] > 0).any():
        chi2, p = math.inf, 0.0  # units in an arm of weight 0
    elif positive.sum() < 2 or counts.sum() == 0:
        chi2, p = 0.0, 1.0
    else:
        chi2 = float((((counts - expected) ** 2)[positive] / expected[positive]).sum())
        p = float(special.chdtrc(int(positive.sum()) - 1, chi2))
    return SampleRatio(
        arms=arms,
        observed=tuple(int(c) for c in counts),
        expected=tuple(float(e) for e in expected),
        chi2=chi2,
        p_value=p,
        flagged=p < threshold,
    )
