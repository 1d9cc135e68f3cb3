"""The agreement check: a compiled library must give LightGBM's raw margins on every row.

The library is run through TL2cgen's own ``Predictor`` (one thread) with ``pred_margin=True``,
LightGBM through ``Booster.predict(raw_score=True)``; any row whose margins differ by more than
:data:`TOLERANCE` (for any class) is a disagreement. A NaN on one side only counts as an infinite
difference.

Known causes of disagreement, named in the refusal: a model that treats zero as missing (Treelite
4.8.1 reads it wrongly, treelite issue #376); numbers TL2cgen's code takes for missing (see
:func:`bidcore.compile.probes.mistaken_for_missing`) in the differing rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from pathlib import Path
from typing import Final

import lightgbm
import numpy as np
import numpy.typing as npt
import tl2cgen

from bidcore.compile.modeltext import ModelSummary
from bidcore.compile.probes import ZERO_BAND, mistaken_for_missing
from bidcore.compile.toolchain import native_output

__all__ = ["TOLERANCE", "Agreement", "compare", "known_causes"]

TOLERANCE: Final = 1e-9
"""Largest accepted absolute difference of raw margins."""


@dataclasses.dataclass(frozen=True)
class Agreement:
    """How a compiled library compared with LightGBM."""

    rows: int
    rows_differing: int
    max_abs_diff: float
    first_differing_row: int | None
    rows_mistaken_missing: int = 0
    """Differing rows holding a number TL2cgen's code reads as missing."""
    sample_rows: int = 0
    """How many of the rows (the first ones) came from the caller's sample."""

    @property
    def ok(self) -> bool:
        """No row differs by more than :data:`TOLERANCE`."""
        return self.rows_differing == 0

    def describe(self) -> str:
        """One line for logs and error messages."""
        first = self.first_differing_row
        if first is None:
            where = ""
        elif first < self.sample_rows:
            where = f", the first at sample row {first}"
        else:
            where = f", the first at generated row {first - self.sample_rows}"
        return (
            f"{self.rows_differing} of {self.rows} rows differ from LightGBM by more than "
            f"{TOLERANCE:g} on the raw margin (max |diff| {self.max_abs_diff:.6g}{where})"
        )


def compare(
    library: Path,
    booster: lightgbm.Booster,
    rows: npt.NDArray[np.float64],
    *,
    categorical: Collection[int] = (),
    sample_rows: int = 0,
) -> Agreement:
    """Run ``rows`` through the library, prepared as bidcore's compiled scorer prepares them
    (:func:`as_called`), and through LightGBM, and compare the raw margins (the first
    ``sample_rows`` rows are the caller's, which error messages say)."""
    rows = np.ascontiguousarray(rows, dtype=np.float64)
    with native_output("tl2cgen.Predictor"):
        predictor = tl2cgen.Predictor(library, nthread=1)
        compiled = np.asarray(
            predictor.predict(tl2cgen.DMatrix(as_called(rows, categorical)), pred_margin=True),
            dtype=np.float64,
        ).reshape(len(rows), -1)
        del predictor  # unloads the library now, not whenever the collector gets to it
    expected = np.asarray(
        booster.predict(rows, raw_score=True, num_threads=1), dtype=np.float64
    ).reshape(len(rows), -1)
    if compiled.shape != expected.shape:
        first = 0 if len(rows) else None
        return Agreement(len(rows), len(rows), float("inf"), first, sample_rows=sample_rows)
    diff = np.abs(compiled - expected)
    both_nan = np.isnan(compiled) & np.isnan(expected)
    diff = np.where(both_nan, 0.0, np.where(np.isnan(diff), np.inf, diff))
    worst = diff.max(axis=1) if diff.size else np.zeros(len(rows))
    differing = np.flatnonzero(worst > TOLERANCE)
    return Agreement(
        rows=len(rows),
        rows_differing=len(differing),
        max_abs_diff=float(worst.max()) if worst.size else 0.0,
        first_differing_row=int(differing[0]) if len(differing) else None,
        rows_mistaken_missing=int(mistaken_for_missing(rows[differing]).any(axis=1).sum()),
        sample_rows=sample_rows,
    )


def as_called(
    rows: npt.NDArray[np.float64], categorical: Collection[int] = ()
) -> npt.NDArray[np.float64]:
    """``rows`` as bidcore's compiled scorer hands them to the generated code
    (``rust/bidcore-core/src/model/compiled.rs``): values within 1e-35 of zero become 0.0 (as
    LightGBM's ``predict`` reads them), categorical columns are truncated toward zero, and a
    number whose low 32 bits are all ones is nudged one ulp toward zero (else it reads as
    missing). NaN stays NaN (missing).

    >>> as_called(np.array([[-1e-36, -0.5, np.finfo(np.float64).max]]), [1]).tolist()
    [[0.0, -0.0, 1.7976931348623155e+308]]
    """
    out = np.array(rows, dtype=np.float64, copy=True)
    out[np.abs(out) <= ZERO_BAND] = 0.0
    columns = sorted(categorical)
    if columns:
        out[:, columns] = np.trunc(out[:, columns])
    bits = out.view(np.uint64)
    nudge = mistaken_for_missing(out)
    bits[nudge] -= np.uint64(1)
    return out


def known_causes(summary: ModelSummary, agreement: Agreement) -> list[str]:
    """What Treelite/TL2cgen are known to get wrong, found in the model or the differing rows."""
    causes = []
    if agreement.rows_mistaken_missing:
        causes.append(
            f"{agreement.rows_mistaken_missing} differing rows hold numbers whose low 32 bits "
            "are all ones (such as 1.7976931348623157e+308), which TL2cgen's code reads as "
            "missing"
        )
    if summary.zero_as_missing:
        causes.append(
            "the model treats zero as missing (zero_as_missing="
            f"{summary.parameters.get('zero_as_missing', '?')}, "
            f"{summary.zero_missing_splits} splits with missing type Zero), which Treelite "
            "4.8.1 reads wrongly (treelite issue #376)"
        )
    if summary.linear_trees:
        causes.append(f"{summary.linear_trees} trees are linear trees (is_linear=1)")
    return causes
