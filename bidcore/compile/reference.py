"""Reference histograms for drift monitoring: the score and the most important features.

Edges are the deciles of the reference values (deduplicated), and the binning rule is the one
:class:`bidcore.artifact.Histogram` states, so live traffic binned the same way can be compared
bin by bin (PSI, KL, ...).

>>> h = histogram(np.array([0.0, 1.0, 1.0, 1.0, 5.0, np.inf, np.nan]), bins=2)
>>> h.edges, h.counts, h.missing
([0.0, 1.0, 5.0], [1, 5], 1)
"""

from __future__ import annotations

from typing import Final

import lightgbm
import numpy as np
import numpy.typing as npt

from bidcore.artifact import FeatureHistogram, Histogram, Reference

__all__ = ["BINS", "TOP_FEATURES", "histogram", "reference"]

BINS: Final = 10
TOP_FEATURES: Final = 10


def reference(booster: lightgbm.Booster, rows: npt.NDArray[np.float64]) -> Reference:
    """Histograms of LightGBM's transformed prediction on ``rows`` and of the (up to)
    :data:`TOP_FEATURES` features with the most total gain."""
    scores = np.asarray(booster.predict(rows, num_threads=1), dtype=np.float64)
    if scores.ndim == 2:  # multiclass: the probability of the most likely class
        scores = scores.max(axis=1)
    score = histogram(scores)
    gains = np.asarray(booster.feature_importance(importance_type="gain"), dtype=np.float64)
    names = booster.feature_name()
    order = sorted(np.flatnonzero(gains > 0), key=lambda j: (-gains[j], j))[:TOP_FEATURES]
    return Reference(
        score=Histogram(edges=score.edges, counts=score.counts),
        features={names[j]: histogram(rows[:, j]) for j in order},
    )


def histogram(values: npt.NDArray[np.float64], *, bins: int = BINS) -> FeatureHistogram:
    """Decile histogram of ``values``; NaN counted as missing, infinities in the end bins."""
    values = np.asarray(values, dtype=np.float64)
    missing = np.isnan(values)
    present = values[~missing]
    finite = present[np.isfinite(present)]
    if finite.size == 0:
        return FeatureHistogram(edges=[0.0, 0.0], counts=[int(present.size)], missing=_n(missing))
    edges = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, bins + 1)))
    if edges.size == 1:
        edges = np.repeat(edges, 2)
    index = np.searchsorted(edges[1:-1], present, side="right")
    counts = np.bincount(index, minlength=edges.size - 1)
    return FeatureHistogram(
        edges=[float(e) for e in edges],
        counts=[int(c) for c in counts],
        missing=_n(missing),
    )


def _n(mask: npt.NDArray[np.bool_]) -> int:
    return int(mask.sum())
