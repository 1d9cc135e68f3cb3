"""Feature rows and model predictions for an imp's candidates (``docs/engine.md``, Features).

Each role's model is called once per imp on the block of rows of the candidates that need it,
as the native engine batches them; the predictions are then read back per candidate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Final

import numpy as np
import numpy.typing as npt

from bidcore.config import Campaign
from bidcore.features import FeatureSpec
from bidcore.features.reference import features_py

from .view import View

__all__ = ["ROLES", "RoleModel", "feature_row", "predict_block", "roles_needed"]

ROLES: Final = ("ctr", "cvr")

_ROLES_BY_GOAL: Final[dict[str, tuple[str, ...]]] = {
    "cpm": (),
    "cpc": ("ctr",),
    "cpa": ("ctr", "cvr"),
}


@dataclasses.dataclass(frozen=True)
class RoleModel:
    """A model for one role: ``predict`` maps a 2-D float64 block of rows (one per candidate,
    columns in ``spec`` order) to one prediction per row, as ``lightgbm.Booster.predict`` does."""

    predict: Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]
    spec: FeatureSpec


def roles_needed(campaign: Campaign) -> tuple[str, ...]:
    return _ROLES_BY_GOAL[campaign.goal]


def feature_row(
    view: View, spec: FeatureSpec, *, imp: int, now: float, campaign: Campaign
) -> list[float]:
    """The spec's features of imp ``imp`` for ``campaign`` (its ``features`` table as the
    campaign attributes). ``features_py`` itself makes the user-level sources missing when the
    request does not allow personal use (``docs/engine.md``, Features)."""
    return features_py(view, spec, imp=imp, timestamp=now, campaign=campaign.features)


def predict_block(model: RoleModel, rows: list[list[float]]) -> list[float]:
    """One prediction per row, from a single call of the model on the whole block."""
    block = np.array(rows, dtype=np.float64).reshape(len(rows), len(model.spec.features))
    predictions = np.asarray(model.predict(block), dtype=np.float64)
    if predictions.shape != (len(rows),):
        raise ValueError(
            f"a model returned predictions of shape {predictions.shape} for {len(rows)} rows"
        )
    return [float(p) for p in predictions]
