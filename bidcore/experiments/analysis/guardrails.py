"""Guardrails and the recommendation: roll back, continue, or ship.

Each treatment arm is judged against the control, in this order:

1. a sample ratio mismatch means assignment or logging is broken and no comparison can be
   trusted: roll back (every arm);
2. guardrails, each a reason to roll back:
   - spend pace: the arm's spend over its planned spend for the period (``spend_targets``), or
     else its spend per request over the control's, outside ``spend_pace``; against the
     control the change must also be significant (always-valid p at most alpha);
   - win rate: a drop of more than ``max_win_rate_drop`` (relative), significant as above;
   - latency: the arm's p99 decision latency above ``max_latency_p99_ns``, or above
     ``max_latency_ratio`` times the control's (with at least ``min_latency_samples``
     decisions in each);
3. the primary metric (ROI by default), on the always-valid p-value, because people look
   daily: significantly better ships, significantly worse rolls back, anything else continues.

Significance is always the sequential test's, so that looking every day does not turn noise
into a rollback or a ship.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from bidcore.experiments.analysis.metrics import Metric
from bidcore.experiments.analysis.sequential import AlwaysValid
from bidcore.experiments.analysis.stats import Difference, SampleRatio

__all__ = ["Action", "Guardrails", "Recommendation", "overall", "recommend"]

Action: TypeAlias = Literal["rollback", "continue", "ship"]


@dataclass(frozen=True)
class Guardrails:
    """The thresholds of the recommendation (see the module's documentation).

    >>> Guardrails(max_latency_p99_ns=2_000_000).primary
    'roi'
    """

    primary: str = "roi"
    spend_pace: tuple[float, float] = (0.8, 1.25)
    spend_targets: Mapping[str, float] | None = None
    max_win_rate_drop: float = 0.10
    max_latency_p99_ns: float | None = None
    max_latency_ratio: float = 1.25
    min_latency_samples: int = 100


@dataclass(frozen=True)
class Recommendation:
    """What to do with an arm (or, from :func:`overall`, the experiment), and why."""

    action: Action
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class ArmFacts:
    """What the guardrails read about one arm."""

    spend: float
    latency_p99_ns: float
    decisions: int


@dataclass(frozen=True)
class Compared:
    """What the guardrails read about one metric of one treatment arm."""

    metric: Metric
    difference: Difference
    sequential: AlwaysValid


def recommend(
    arm: str,
    control: str,
    facts: Mapping[str, ArmFacts],
    compared: Mapping[str, Compared],
    srm: SampleRatio,
    guardrails: Guardrails,
    alpha: float,
) -> Recommendation:
    """The recommendation for treatment ``arm``; ``compared`` holds its comparisons with
    ``control`` by metric name."""
    if srm.flagged:
        return Recommendation(
            "rollback",
            (
                f"sample ratio mismatch (chi-square p = {srm.p_value:.2g} < 0.001): assignment "
                "or logging is broken, no result can be trusted",
            ),
        )
    breaches = [
        *_spend_pace(arm, facts, compared, guardrails, alpha),
        *_win_rate(compared, guardrails, alpha),
        *_latency(arm, control, facts, guardrails),
    ]
    if breaches:
        return Recommendation("rollback", tuple(breaches))
    primary = compared.get(guardrails.primary)
    if primary is None:
        return Recommendation("continue", (f"no {guardrails.primary} to judge the arm on",))
    label, seq = primary.metric.label, primary.sequential
    lift = primary.difference.lift.value
    if not seq.p_value <= alpha:
        reason = f"{label}: no conclusive difference yet ({_lift(lift)}, always-valid p = "
        return Recommendation("continue", (f"{reason}{seq.p_value:.2g})",))
    direction = primary.metric.better * (1 if primary.difference.diff.value > 0 else -1)
    said = f"{label} {_lift(lift)} (always-valid p = {seq.p_value:.2g})"
    if direction > 0:
        return Recommendation("ship", (f"{said}, guardrails within bounds",))
    if direction < 0:
        return Recommendation("rollback", (f"{said}: worse than {control}",))
    return Recommendation("continue", (f"{said}, but {label} is not a metric to win on",))


def overall(recommendations: Mapping[str, Recommendation]) -> Recommendation:
    """The experiment's recommendation: roll back if any arm should, ship if any arm can,
    else continue; the reasons name their arm.

    >>> overall({"b": Recommendation("continue", ("roi: not yet",)),
    ...          "c": Recommendation("rollback", ("win rate -20%",))})
    Recommendation(action='rollback', reasons=('c: win rate -20%',))
    """
    for action in ("rollback", "ship", "continue"):
        reasons = tuple(
            f"{arm}: {reason}"
            for arm, rec in recommendations.items()
            if rec.action == action
            for reason in rec.reasons
        )
        if reasons:
            return Recommendation(action, reasons)
    return Recommendation("continue", ("no treatment arm to judge",))


def _lift(lift: float) -> str:
    return f"{lift:+.1%}"


def _significant(compared: Compared, alpha: float) -> bool:
    return compared.sequential.p_value <= alpha


def _spend_pace(
    arm: str,
    facts: Mapping[str, ArmFacts],
    compared: Mapping[str, Compared],
    guardrails: Guardrails,
    alpha: float,
) -> Sequence[str]:
    low, high = guardrails.spend_pace
    targets = guardrails.spend_targets
    if targets is not None:
        target = targets.get(arm)
        if target is None or target <= 0:
            return []
        pace = facts[arm].spend / target
        if low <= pace <= high:
            return []
        return [f"spend pace {pace:.2f} of target, outside [{low:g}, {high:g}]"]
    spend = compared.get("spend")
    if spend is None or not _significant(spend, alpha):
        return []
    pace = 1.0 + spend.difference.lift.value
    if low <= pace <= high:
        return []
    return [
        f"spend per request {pace:.2f} times the control's, outside [{low:g}, {high:g}] "
        f"(always-valid p = {spend.sequential.p_value:.2g})"
    ]


def _win_rate(compared: Mapping[str, Compared], guardrails: Guardrails, alpha: float) -> list[str]:
    win_rate = compared.get("win_rate")
    if win_rate is None or not _significant(win_rate, alpha):
        return []
    lift = win_rate.difference.lift.value
    if lift >= -guardrails.max_win_rate_drop:
        return []
    return [
        f"win rate {_lift(lift)}, a drop beyond {guardrails.max_win_rate_drop:.0%} "
        f"(always-valid p = {win_rate.sequential.p_value:.2g})"
    ]


def _latency(
    arm: str, control: str, facts: Mapping[str, ArmFacts], guardrails: Guardrails
) -> list[str]:
    mine, theirs = facts[arm], facts[control]
    if mine.decisions < guardrails.min_latency_samples:
        return []
    reasons = []
    limit = guardrails.max_latency_p99_ns
    if limit is not None and mine.latency_p99_ns > limit:
        reasons.append(f"p99 latency {mine.latency_p99_ns / 1e3:.0f} us above {limit / 1e3:.0f} us")
    if (
        theirs.decisions >= guardrails.min_latency_samples
        and mine.latency_p99_ns > guardrails.max_latency_ratio * theirs.latency_p99_ns
    ):
        reasons.append(
            f"p99 latency {mine.latency_p99_ns / 1e3:.0f} us, "
            f"{mine.latency_p99_ns / theirs.latency_p99_ns:.2f} times the control's "
            f"(limit {guardrails.max_latency_ratio:g})"
        )
    return reasons
