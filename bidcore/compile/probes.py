"""Rows generated from a model itself, to check a compiled library where models go wrong.

For every feature the candidate values are where a tree ensemble's evaluators can disagree: each
numeric split threshold and the doubles just either side of it, zero (``0.0`` and ``-0.0``,
LightGBM's zero band ``±1e-35``), NaN, negative values, the training range's ends and beyond,
infinities; for a categorical feature, every category the splits name or training saw, codes
outside them (above the largest, 64-bit bitmap word boundaries, up to 2**24 and past it), negative
codes and NaN. Categorical codes are integers: LightGBM truncates a fractional code toward zero
(``-0.5`` is category 0) while TL2cgen's code sends any negative value right, a disagreement
bidcore's integer codes never meet.

Left out: doubles whose low 32 bits are all ones, such as ``nextafter(inf, 0)`` (the largest
double, next to LightGBM's ``inf`` thresholds). TL2cgen's code asks ``data[j].missing != -1``,
and ``missing`` is an ``int`` overlaying the low half of the double in ``union Entry``, so it
takes those values for missing (1 double in 2**32; :func:`mistaken_for_missing`). Such values in
the caller's sample stay, and are named as the cause if they make rows differ.

Rows are built twice over: random rows (every cell a random candidate of its feature, so deep
paths are exercised too) and sweeps (a random row with one feature set to each of its candidates
in turn). The generator is seeded, so a model always gets the same rows.

>>> from bidcore.compile.modeltext import parse
>>> summary = parse("tree\\nmax_feature_idx=0\\nfeature_infos=[0:9]\\n\\nTree=0\\nnum_leaves=2\\n"
...                 "split_feature=0\\nthreshold=2.5\\ndecision_type=2\\n\\nend of trees\\n")
>>> rows = probe_rows(summary)
>>> rows.shape[1], bool((rows[:, 0] == 2.5).any()), bool(np.isnan(rows[:, 0]).any())
(1, True, True)
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from bidcore.compile.modeltext import ModelSummary

__all__ = ["MAX_CANDIDATES", "RANDOM_ROWS", "mistaken_for_missing", "probe_rows"]

RANDOM_ROWS: Final = 2_048
MAX_CANDIDATES: Final = 600
"""Per feature; a feature with more candidate values keeps the special ones and a random share
of its thresholds."""

ZERO_BAND: Final = 1.0000000180025095e-35  # LightGBM's kZeroThreshold, float(1e-35f)
_NUMERIC_SPECIALS: Final = (
    np.nan,
    0.0,
    -0.0,
    ZERO_BAND,
    -ZERO_BAND,
    2 * ZERO_BAND,
    -2 * ZERO_BAND,
    1.0,
    -1.0,
    1e300,
    -1e300,
    np.inf,
    -np.inf,
)
_CATEGORY_SPECIALS: Final = (np.nan, 0.0, -1.0, -2.0, 31.0, 32.0, 63.0, 64.0, 2.0**24, 2.0**24 + 1)


def probe_rows(summary: ModelSummary, *, seed: int = 0) -> npt.NDArray[np.float64]:
    """Probe rows for a model: C-contiguous float64, ``summary.num_features`` columns."""
    rng = np.random.default_rng(seed)
    candidates = [_candidates(summary, j, rng) for j in range(summary.num_features)]
    random_rows = np.column_stack([rng.choice(c, RANDOM_ROWS) for c in candidates])
    sweeps = []
    for j, values in enumerate(candidates):
        rows = random_rows[rng.integers(0, RANDOM_ROWS, len(values))].copy()
        rows[:, j] = values
        sweeps.append(rows)
    everything = np.vstack([random_rows, *sweeps])
    return np.ascontiguousarray(everything, dtype=np.float64)


def mistaken_for_missing(values: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Which values TL2cgen's generated code reads as missing although they are numbers:
    those whose low 32 bits are all ones (``union Entry { int missing; double fvalue; }``).

    >>> mistaken_for_missing(np.array([np.finfo(np.float64).max, 1.0, np.nan]))
    array([ True, False, False])
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    low_word = values.view(np.uint64) & np.uint64(0xFFFF_FFFF)
    result: npt.NDArray[np.bool_] = (low_word == np.uint64(0xFFFF_FFFF)) & ~np.isnan(values)
    return result


def _candidates(
    summary: ModelSummary, feature: int, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    if feature in summary.categorical_features:
        seen = set(summary.seen_categories(feature)) | set(summary.categories.get(feature, []))
        top = max(seen, default=0)
        values = [float(c) for c in sorted(seen)]
        specials = [*_CATEGORY_SPECIALS, top + 1.0, top + 2.0, 2.0 * top + 64.0]
    else:
        thresholds = np.asarray(summary.thresholds.get(feature, []), dtype=np.float64)
        values = np.concatenate(
            [thresholds, np.nextafter(thresholds, -np.inf), np.nextafter(thresholds, np.inf)]
        ).tolist()
        low, high = _range(summary, feature)
        specials = [*_NUMERIC_SPECIALS, low, high, low - 1.0, high + 1.0, -abs(high) - 1.0]
    if len(values) > MAX_CANDIDATES - len(specials):
        keep = rng.choice(len(values), MAX_CANDIDATES - len(specials), replace=False)
        values = [values[i] for i in sorted(keep)]
    candidates = np.asarray([*specials, *values], dtype=np.float64)
    return candidates[~mistaken_for_missing(candidates)]


def _range(summary: ModelSummary, feature: int) -> tuple[float, float]:
    """The training range LightGBM recorded (``[min:max]``), or (-1, 1)."""
    info = summary.feature_infos[feature] if feature < len(summary.feature_infos) else "none"
    if info.startswith("[") and info.endswith("]"):
        low, _, high = info[1:-1].partition(":")
        try:
            return float(low), float(high)
        except ValueError:
            pass
    return -1.0, 1.0
