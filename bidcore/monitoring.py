"""Model monitoring: how far live traffic has drifted from what a model was trained on.

A model artifact carries reference histograms of its score and main features
(:class:`bidcore.artifact.Reference`); the engine counts the live values of the same score and
features into the same bins. The **population stability index** compares the two:

.. math:: \\mathrm{PSI} = \\sum_i (q_i - p_i) \\ln(q_i / p_i)

where :math:`p_i` is the reference share of bin :math:`i` and :math:`q_i` the live share. The
usual reading: below 0.1 the population is stable, 0.1 to 0.25 it has moved moderately, above
0.25 significantly (the model sees traffic it was not trained on).

A bin empty on one side would make the logarithm infinite, so shares are floored at
:data:`EPSILON` (``1e-4``) before the sum: a bin holding 10% of the live values and none of the
reference's adds ``(0.1 - 0.0001) * ln(0.1 / 0.0001) = 0.69``, a significant shift on its own.
Missing values (NaN features) are a bin of their own when either side has some.

>>> psi([50, 30, 20], [50, 30, 20])
0.0
>>> round(psi([50, 30, 20], [30, 30, 40]), 4)
0.2408
>>> reading(0.2408)
'moderate'

:func:`drift` computes it for every monitored model of an engine; a running bidder exports it
as ``bidcore_model_psi`` (:mod:`bidcore.metrics`), which :func:`scrape` reads back and
``bidcore monitor`` prints.
"""

from __future__ import annotations

import math
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple

import msgspec

from bidcore.artifact import FeatureHistogram, Histogram, Reference

if TYPE_CHECKING:
    from bidcore.engine import Engine

__all__ = [
    "EPSILON",
    "MODERATE",
    "SCORE",
    "SIGNIFICANT",
    "DriftRow",
    "ModelDrift",
    "drift",
    "drift_rows",
    "format_drift",
    "histogram_psi",
    "model_drift",
    "psi",
    "reading",
    "scrape",
]

EPSILON: Final = 1e-4
"""The floor of every bin's share before the logarithm (see the module's docstring)."""

MODERATE: Final = 0.1
"""PSI from which a population has moved moderately."""

SIGNIFICANT: Final = 0.25
"""PSI above which a population has moved significantly."""

SCORE: Final = "score"
"""The ``feature`` name under which the PSI of a model's score is exported and printed."""

Reading = Literal["stable", "moderate", "significant", "no data"]

_PSI_METRIC: Final = "bidcore_model_psi"  # bidcore.metrics exports it under this name


def psi(
    reference_counts: Sequence[float], live_counts: Sequence[float], *, epsilon: float = EPSILON
) -> float:
    """The population stability index of ``live_counts`` against ``reference_counts``, two
    counts over the same bins; each bin's share is floored at ``epsilon`` (a bin empty on both
    sides adds nothing). Raises ``ValueError`` for different lengths, a negative count, or a
    side with no values at all.

    >>> round(psi([100, 0], [90, 10]), 4)  # 0.0105 + 0.6901: the new bin dominates
    0.7006
    """
    if len(reference_counts) != len(live_counts):
        raise ValueError(f"{len(reference_counts)} reference bins but {len(live_counts)} live bins")
    if any(c < 0 for c in reference_counts) or any(c < 0 for c in live_counts):
        raise ValueError("counts must not be negative")
    reference_total, live_total = math.fsum(reference_counts), math.fsum(live_counts)
    if reference_total <= 0 or live_total <= 0:
        side = "reference" if reference_total <= 0 else "live"
        raise ValueError(f"the {side} histogram has no values: PSI is undefined")
    total = 0.0
    for r, q in zip(reference_counts, live_counts, strict=True):
        if r == 0 and q == 0:
            continue
        expected = max(r / reference_total, epsilon)
        actual = max(q / live_total, epsilon)
        total += (actual - expected) * math.log(actual / expected)
    return total


def histogram_psi(
    reference: Histogram,
    counts: Sequence[int],
    missing: int = 0,
    *,
    epsilon: float = EPSILON,
) -> float:
    """PSI of live ``counts`` (and ``missing`` values) binned on ``reference``'s edges against
    the reference's own counts; missing values are one more bin when either side has some.
    ``nan`` when there are no live values; ``ValueError`` when the bins differ in number.

    >>> h = FeatureHistogram(edges=[0.0, 1.0, 2.0], counts=[80, 20], missing=0)
    >>> round(histogram_psi(h, [80, 10], missing=10), 4)  # 0 + 0.0693 + 0.6901
    0.7594
    """
    reference_missing = reference.missing if isinstance(reference, FeatureHistogram) else 0
    expected, actual = list(reference.counts), list(counts)
    if reference_missing or missing:
        expected.append(reference_missing)
        actual.append(missing)
    if len(expected) != len(actual):
        raise ValueError(f"{len(reference.counts)} reference bins but {len(counts)} live bins")
    if not any(actual):
        return math.nan
    return psi(expected, actual, epsilon=epsilon)


def reading(value: float) -> Reading:
    """The usual reading of a PSI: ``stable`` below 0.1, ``moderate`` up to 0.25,
    ``significant`` above; ``no data`` for ``nan``."""
    if math.isnan(value):
        return "no data"
    if value < MODERATE:
        return "stable"
    return "moderate" if value <= SIGNIFICANT else "significant"


class ModelDrift(msgspec.Struct, frozen=True):
    """The drift of one model: the PSI of its score and of each reference feature the engine
    counted (``nan`` while no live value has been seen)."""

    model: str
    """The model's id, as the engine reports it."""
    scores: int
    """Live scores counted."""
    score: float
    features: dict[str, float]


def model_drift(reference: Reference, live: Mapping[str, Any]) -> ModelDrift:
    """The drift of a model from its artifact's ``reference`` and the engine's live histograms
    of one role (an entry of ``Engine.metrics()["models"]``: ``model``, ``scores``,
    ``features``, each histogram with ``edges``, ``counts``, ``missing``). A live histogram whose
    edges are not the reference's cannot be compared bin by bin and is left out."""
    scores = live["scores"]
    score = (
        histogram_psi(reference.score, scores["counts"], scores["missing"])
        if _same_edges(reference.score, scores)
        else math.nan
    )
    features: dict[str, float] = {}
    for name, histogram in live["features"].items():
        expected = reference.features.get(name)
        if expected is not None and _same_edges(expected, histogram):
            features[name] = histogram_psi(expected, histogram["counts"], histogram["missing"])
    return ModelDrift(
        model=str(live["model"]),
        scores=sum(scores["counts"]) + scores["missing"],
        score=score,
        features=features,
    )


def _same_edges(reference: Histogram, live: Mapping[str, Any]) -> bool:
    return [float(e) for e in live["edges"]] == reference.edges


def drift(engine: Engine) -> dict[str, ModelDrift]:
    """Per role (``ctr``, ``cvr``), the drift of the engine's model since the engine was built:
    every model the engine monitors whose artifact has reference histograms."""
    found: dict[str, ModelDrift] = {}
    for role, live in engine.metrics()["models"].items():
        model = engine.models.get(role)
        reference = None if model is None else model.reference
        if reference is not None:
            found[role] = model_drift(reference, live)
    return found


class DriftRow(NamedTuple):
    """One line of the drift table: a model's score (``feature == "score"``) or feature."""

    role: str
    model: str
    feature: str
    psi: float

    @property
    def reading(self) -> Reading:
        return reading(self.psi)


def drift_rows(drifts: Mapping[str, ModelDrift]) -> list[DriftRow]:
    """The table's rows: per role, the score first, then the features by decreasing PSI."""
    rows: list[DriftRow] = []
    for role in sorted(drifts):
        found = drifts[role]
        rows.append(DriftRow(role, found.model, SCORE, found.score))
        rows += _by_psi(DriftRow(role, found.model, f, v) for f, v in found.features.items())
    return rows


def _by_psi(rows: Iterable[DriftRow]) -> list[DriftRow]:
    """Highest PSI first, rows without data last."""
    return sorted(rows, key=lambda r: (-r.psi, r.feature) if r.psi == r.psi else (math.inf, ""))


def scrape(url: str, *, timeout: float = 10.0) -> list[DriftRow]:
    """The ``bidcore_model_psi`` series of a running bidder's metrics page, as table rows
    (per role and model, the score first, then the features by decreasing PSI). ``url`` is the
    page, or a bare ``host:port`` or ``http://host:port`` (then ``/metrics`` is read). Raises
    ``OSError`` when the page cannot be read, ``ValueError`` when it is not Prometheus' text
    format."""
    from prometheus_client.parser import text_string_to_metric_families

    if "://" not in url:
        url = f"http://{url}"
    parts = urllib.parse.urlsplit(url)
    if parts.path in ("", "/"):
        url = urllib.parse.urlunsplit(parts._replace(path="/metrics"))
    request = urllib.request.Request(url, headers={"Accept": "text/plain; version=0.0.4"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        text = response.read().decode("utf-8")
    by_model: dict[tuple[str, str], list[DriftRow]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != _PSI_METRIC:
            continue
        for sample in family.samples:
            labels = sample.labels
            key = (labels.get("role", ""), labels.get("model", ""))
            row = DriftRow(*key, labels.get("feature", ""), float(sample.value))
            by_model.setdefault(key, []).append(row)
    rows: list[DriftRow] = []
    for key in sorted(by_model):
        found = by_model[key]
        rows += [r for r in found if r.feature == SCORE]
        rows += _by_psi(r for r in found if r.feature != SCORE)
    return rows


def format_drift(rows: Sequence[DriftRow]) -> str:
    """The rows as an aligned text table (role, model, feature, PSI, reading).

    >>> print(format_drift([DriftRow("ctr", "ctr@1", "score", 0.02),
    ...                     DriftRow("ctr", "ctr@1", "floor", 0.31)]))
    role  model  feature  psi     reading
    ctr   ctr@1  score    0.0200  stable
    ctr   ctr@1  floor    0.3100  significant
    """
    header = ("role", "model", "feature", "psi", "reading")
    lines = [header] + [
        (r.role, r.model, r.feature, "-" if math.isnan(r.psi) else f"{r.psi:.4f}", r.reading)
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )
