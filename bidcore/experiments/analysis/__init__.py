"""The analysis of an experiment: per-arm metrics with intervals, differences, SRM, CUPED, an
always-valid sequential test, guardrails and a recommendation.

:func:`analyze` takes the decision log's records (decisions carry their arm and unit in each
experiment they are in, by experiment key; notices their wins and bills), with clicks and
conversions given by the caller until the log has them, and judges one experiment;
:func:`analyze_units` does the same from per-unit arrays (:class:`UnitTable`). numpy does the
arithmetic, over one row per unit:

- :mod:`.units`: the join of the records into per-unit sums (a unit's decisions summed);
- :mod:`.metrics`: the metrics, each a ratio of two sums (bid rate, win rate, spend, eCPM,
  CTR, CPA, ROI);
- :mod:`.stats`: delta-method intervals, CUPED, differences, the sample-ratio-mismatch test;
- :mod:`.sequential`: the mSPRT and its confidence sequence, valid however often one looks;
- :mod:`.guardrails`: spend pace, win rate and latency guardrails and the recommendation.

A simulated experiment whose treatment raises CTR by 10%:

>>> rng = np.random.default_rng(7)
>>> arm = rng.choice(["control", "treatment"], size=200_000)
>>> shown = rng.poisson(5.0, arm.size).astype(float)
>>> clicks = rng.binomial(shown.astype(int), np.where(arm == "treatment", 0.022, 0.02))
>>> table = UnitTable.from_arrays(arm, impressions=shown, clicks=clicks)
>>> result = analyze_units(table, guardrails=Guardrails(primary="ctr"))
>>> ctr = result.comparison("ctr", "treatment")
>>> round(ctr.difference.lift.value, 3), ctr.difference.p_value < 0.001
(0.087, True)
>>> result.srm.flagged, result.recommendation.action
(False, 'ship')
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from bidcore.decisionlog import DecisionRecord
from bidcore.experiments.analysis.guardrails import (
    ArmFacts,
    Compared,
    Guardrails,
    Recommendation,
    overall,
    recommend,
)
from bidcore.experiments.analysis.metrics import METRICS, Metric, available
from bidcore.experiments.analysis.sequential import AlwaysValid, always_valid
from bidcore.experiments.analysis.stats import (
    Difference,
    Estimate,
    SampleRatio,
    arm_ratios,
    difference,
    sample_ratio_test,
)
from bidcore.experiments.analysis.units import (
    AnyRecord,
    ClickRecord,
    ConversionRecord,
    SpendSource,
    UnitTable,
    unit_table,
)

__all__ = [
    "METRICS",
    "AlwaysValid",
    "Analysis",
    "ArmResult",
    "ClickRecord",
    "Comparison",
    "ConversionRecord",
    "Difference",
    "Estimate",
    "Guardrails",
    "Metric",
    "Recommendation",
    "SampleRatio",
    "UnitTable",
    "analyze",
    "analyze_units",
    "experiments",
    "unit_table",
]


@dataclass(frozen=True)
class ArmResult:
    """One arm: its units, requests, total spend, p99 decision latency (NaN without
    decisions) and each metric's value with its interval (unadjusted)."""

    arm: str
    units: int
    requests: int
    spend: float
    latency_p99_ns: float
    metrics: Mapping[str, Estimate]


@dataclass(frozen=True)
class Comparison:
    """One metric of a treatment arm against the control: the fixed-horizon difference (CUPED-
    adjusted when ``cuped``, with ``variance_reduction`` the share of the difference's variance
    it removed and ``theta`` its coefficient) and the always-valid sequential test."""

    metric: Metric
    arm: str
    control: str
    difference: Difference
    sequential: AlwaysValid
    cuped: bool = False
    theta: float = 0.0
    variance_reduction: float = 0.0


@dataclass(frozen=True)
class Analysis:
    """Everything :func:`analyze` found: per-arm results (:attr:`arms`, by name), comparisons
    with the control, the sample-ratio-mismatch test, and the recommendation (overall and per
    treatment arm), with :attr:`notes` on the data (records that joined nothing, ...).
    :attr:`experiment` is the experiment key analysed (``None`` for a table without one)."""

    experiment: str | None
    control: str
    alpha: float
    metrics: tuple[Metric, ...]
    arms: Mapping[str, ArmResult]
    comparisons: tuple[Comparison, ...]
    srm: SampleRatio
    recommendation: Recommendation
    recommendations: Mapping[str, Recommendation]
    currency: str | None = None
    notes: tuple[str, ...] = field(default=())

    def comparison(self, metric: str, arm: str) -> Comparison:
        """The comparison of ``metric`` for treatment ``arm``; ``KeyError`` if there is none."""
        for c in self.comparisons:
            if c.metric.name == metric and c.arm == arm:
                return c
        raise KeyError((metric, arm))


def experiments(records: Iterable[AnyRecord]) -> list[str]:
    """The experiment keys named in the decisions' ``arms``, sorted.

    >>> from bidcore.decisionlog import decode
    >>> decision = decode(b'{"v":1,"ts":0,"request":"r1","bid":false,"reason":"no_campaign",'
    ...     b'"nbr":null,"error":null,"currency":null,"test":false,"latency_ns":5000,'
    ...     b'"arms":{"shade-v2":"on","ctr-v7":"treatment"},'
    ...     b'"units":{"shade-v2":"af63dc4c8601ec8c","ctr-v7":"af63dc4c8601ec8c"},'
    ...     b'"models":{},"imps":[]}')
    >>> experiments([decision])
    ['ctr-v7', 'shade-v2']
    """
    return sorted({k for r in records if isinstance(r, DecisionRecord) for k in r.arms})


def analyze(
    records: Iterable[AnyRecord],
    *,
    experiment: str | None = None,
    control: str | None = None,
    weights: Mapping[str, float] | None = None,
    unit_of: Callable[[DecisionRecord], str | None] | None = None,
    pre: Iterable[AnyRecord] | None = None,
    clicks: Iterable[ClickRecord | tuple[str, str]] | None = None,
    guardrails: Guardrails | None = None,
    metrics: tuple[Metric, ...] = METRICS,
    alpha: float = 0.05,
    horizon_units: int | None = None,
    include_test: bool = False,
    spend_from: SpendSource = "auto",
    fx: Mapping[str, float] | None = None,
) -> Analysis:
    """Analyse the experiment whose key is ``experiment`` (by default the only experiment in
    the decisions).

    ``records``: decisions, notices (``bidcore.decisionlog.read`` gives both), and clicks and
    conversions (:class:`ClickRecord`, :class:`ConversionRecord`; clicks may come as
    ``clicks`` instead, Structs or ``(request, imp)`` keys). ``weights``: the arms' configured
    weights for the sample-ratio-mismatch test (equal when ``None``). A decision's unit is the
    unit key the log gives it in ``experiment`` (``units``), or the request in records without
    one; ``unit_of`` (a decision to its unit id) overrides that (see :mod:`.units`). ``pre``:
    records from before the experiment for CUPED, joined by ``unit_of`` (so it needs one).
    ``horizon_units``: the planned number of units at the end, to which the sequential test is
    tuned (see :mod:`.sequential`); keep it fixed across daily looks. The other arguments are
    those of :func:`unit_table` and :func:`analyze_units`.
    """
    records = list(records)
    if experiment is None:
        names = experiments(records)
        if len(names) != 1:
            raise ValueError(f"name the experiment to analyse, among: {', '.join(names) or 'none'}")
        experiment = names[0]

    def table_of(
        records: Iterable[AnyRecord],
        experiment: str | None,
        clicks: Iterable[ClickRecord | tuple[str, str]] | None,
    ) -> UnitTable:
        return unit_table(
            records,
            experiment=experiment,
            unit_of=unit_of,
            clicks=clicks,
            include_test=include_test,
            spend_from=spend_from,
            fx=fx,
        )

    table = table_of(records, experiment, clicks)
    covariates = None
    if pre is not None:
        if unit_of is None:
            raise ValueError("CUPED joins the pre-period by unit: it needs unit_of")
        covariates = table.aligned(table_of(pre, None, None))
    return analyze_units(
        table,
        control=control,
        weights=weights,
        covariates=covariates,
        guardrails=guardrails,
        metrics=metrics,
        alpha=alpha,
        horizon_units=horizon_units,
    )


def analyze_units(
    table: UnitTable,
    *,
    control: str | None = None,
    weights: Mapping[str, float] | None = None,
    covariates: Mapping[str, npt.ArrayLike] | None = None,
    guardrails: Guardrails | None = None,
    metrics: tuple[Metric, ...] = METRICS,
    alpha: float = 0.05,
    horizon_units: int | None = None,
) -> Analysis:
    """Analyse a :class:`UnitTable`: every metric its columns allow, each treatment arm against
    ``control`` (by default the arm named ``control``, else the first by name).

    ``covariates``: pre-period columns, one value per unit in the table's order, by column
    name; a metric whose two columns are there is CUPED-adjusted.
    """
    if not table.arms:
        raise ValueError("no unit in any arm")
    arms = table.arms
    if control is None:
        control = "control" if "control" in arms else arms[0]
    if control not in arms:
        raise ValueError(f"no control arm {control!r} among {', '.join(arms)}")
    guardrails = guardrails or Guardrails()
    counts = table.counts()
    srm = sample_ratio_test(dict(zip(arms, counts.tolist(), strict=True)), weights)
    c = arms.index(control)
    chosen = available(metrics, table.columns)
    per_arm: dict[str, dict[str, Estimate]] = {a: {} for a in arms}
    comparisons: list[Comparison] = []
    for metric in chosen:
        num, den = table.columns[metric.numerator], table.columns[metric.denominator]
        raw = arm_ratios(num, den, table.arm, len(arms), scale=metric.scale)
        for i, a in enumerate(arms):
            per_arm[a][metric.name] = Estimate.normal(
                float(raw.value[i]), float(raw.variance[i]), alpha
            )
        covariate = _covariate(covariates, metric, table.size)
        ratios = raw
        if covariate is not None:
            ratios = arm_ratios(
                num, den, table.arm, len(arms), covariate=covariate, scale=metric.scale
            )
        for t, a in enumerate(arms):
            if t == c:
                continue
            diff = difference(
                float(ratios.value[t]),
                float(ratios.variance[t]),
                float(ratios.value[c]),
                float(ratios.variance[c]),
                alpha,
            )
            seq = always_valid(
                diff.diff.value,
                diff.diff.se**2,
                table.size,
                horizon_units=horizon_units,
                alpha=alpha,
            )
            raw_var = float(raw.variance[t] + raw.variance[c])
            reduction = 1.0 - diff.diff.se**2 / raw_var if raw_var > 0 else 0.0
            comparisons.append(
                Comparison(
                    metric,
                    a,
                    control,
                    diff,
                    seq,
                    cuped=covariate is not None,
                    theta=ratios.theta,
                    variance_reduction=reduction,
                )
            )

    results = {
        a: ArmResult(
            arm=a,
            units=int(counts[i]),
            requests=int(table.columns["requests"][table.arm == i].sum())
            if "requests" in table.columns
            else 0,
            spend=float(table.columns["spend"][table.arm == i].sum())
            if "spend" in table.columns
            else 0.0,
            latency_p99_ns=_p99(table.latency_ns[table.latency_arm == i]),
            metrics=per_arm[a],
        )
        for i, a in enumerate(arms)
    }
    facts = {
        a: ArmFacts(r.spend, r.latency_p99_ns, int((table.latency_arm == i).sum()))
        for i, (a, r) in enumerate(results.items())
    }
    recommendations = {
        a: recommend(
            a,
            control,
            facts,
            {
                cmp.metric.name: Compared(cmp.metric, cmp.difference, cmp.sequential)
                for cmp in comparisons
                if cmp.arm == a
            },
            srm,
            guardrails,
            alpha,
        )
        for a in arms
        if a != control
    }
    return Analysis(
        experiment=table.experiment,
        control=control,
        alpha=alpha,
        metrics=chosen,
        arms=results,
        comparisons=tuple(comparisons),
        srm=srm,
        recommendation=overall(recommendations),
        recommendations=recommendations,
        currency=table.currency,
        notes=_notes(table, horizon_units),
    )


def _covariate(
    covariates: Mapping[str, npt.ArrayLike] | None, metric: Metric, size: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None:
    if covariates is None:
        return None
    if metric.numerator not in covariates or metric.denominator not in covariates:
        return None
    x = np.asarray(covariates[metric.numerator], np.float64)
    m = np.asarray(covariates[metric.denominator], np.float64)
    if x.shape != (size,) or m.shape != (size,):
        raise ValueError(f"covariates for {metric.name}: need {size} values each")
    return x, m


def _p99(latencies: npt.NDArray[np.float64]) -> float:
    return float(np.percentile(latencies, 99)) if latencies.size else float("nan")


def _notes(table: UnitTable, horizon_units: int | None) -> tuple[str, ...]:
    notes = []
    if table.request_units:
        which = (
            "units are requests (the decisions carry no unit key)"
            if table.units is None
            else f"{table.request_units} decisions without a unit key are units of their own"
        )
        notes.append(f"{which}: if the experiment randomises users, intervals are too narrow")
    unmatched = {k: v for k, v in table.unmatched.items() if v}
    if unmatched:
        notes.append(
            "left out: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in unmatched.items())
        )
    notes.append(
        "value: conversions' values"
        if table.value_source == "conversions"
        else "value: the engine's value of each impression (model estimate)"
    )
    if horizon_units is None:
        notes.append(
            "sequential test tuned to the units at hand; fix horizon_units for daily looks"
        )
    return tuple(notes)
