"""Tree-ensemble models, scored in native code.

A :class:`Model` scores rows of features with bidcore's native evaluator, which reads
LightGBM's model text directly and reproduces LightGBM's predictions exactly (missing values,
zero-as-missing, categorical splits, every objective's transform).

>>> from bidcore.testing.models import ModelSpec, Size, train_model, ctr_data
>>> booster = train_model(ModelSpec(size=Size(trees=5, leaves=7)), ctr_data(500))
>>> model = from_lightgbm(booster.model_to_string())
>>> rows = ctr_data(3, seed=1).features
>>> bool((model.predict(rows) == booster.predict(rows)).all())
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from bidcore._core import TreeEnsemble

__all__ = ["Model", "from_lightgbm"]

Rows = npt.NDArray[np.float64]


class Model:
    """A tree ensemble ready to score; thread-safe. Scoring releases the GIL.

    Rows are float64 features in the model's order, NaN for missing; categorical features are
    their integer codes (as LightGBM was trained on them).
    """

    __slots__ = ("_native",)

    def __init__(self, native: TreeEnsemble) -> None:
        self._native: Final = native

    @property
    def num_features(self) -> int:
        return self._native.num_features

    @property
    def num_outputs(self) -> int:
        """Values per row: 1, or the number of classes of a multiclass model."""
        return self._native.num_outputs

    @property
    def num_trees(self) -> int:
        return self._native.num_trees

    @property
    def feature_names(self) -> list[str]:
        return self._native.feature_names

    def predict(self, rows: npt.ArrayLike, *, raw: bool = False) -> Rows:
        """Predictions for a 2-D array of rows: shape ``(n,)``, or ``(n, classes)``.

        ``raw=True`` returns the raw margins (before the sigmoid, softmax…), as LightGBM's
        ``raw_score=True`` does.
        """
        matrix = np.ascontiguousarray(rows, dtype=np.float64)
        if matrix.ndim != 2:
            raise ValueError(f"rows must be a 2-D array, got {matrix.ndim} dimensions")
        return self._native.predict(matrix, raw=raw)

    def predict_one(self, row: npt.ArrayLike, *, raw: bool = False) -> float | list[float]:
        """The prediction for one row: a float, or one value per class."""
        vector = np.ascontiguousarray(row, dtype=np.float64)
        if vector.ndim != 1:
            raise ValueError(f"a row must be a 1-D array, got {vector.ndim} dimensions")
        return self._native.predict_one(vector, raw=raw)


def from_lightgbm(model: str | Path) -> Model:
    """A model from LightGBM's model text, or the path of a file holding it.

    Raises :class:`bidcore.ModelError` for text that is not a LightGBM model bidcore can score
    (cut short, inconsistent trees, linear trees, an unsupported objective).
    """
    text = model.read_text() if isinstance(model, Path) else model
    return Model(TreeEnsemble.from_lightgbm(text))
