"""Small LightGBM models trained on generated CTR-like data, deterministically.

For tests and benchmarks of model loading, compilation and scoring. Needs ``numpy`` and
``lightgbm`` (the ``bidcore[compile]`` extra). The data look like an ad exchange's: counts with
many exact zeros, skewed prices, scores that can be negative, every numeric feature sometimes
missing (NaN), and categorical codes (0..cardinality-1, Zipf-distributed, cardinalities from 5 to
500) that are sometimes missing too. Every model is trained with one thread, a fixed seed and
``deterministic=True``, so the same :class:`ModelSpec` gives the same model text, byte for byte.

>>> spec = ModelSpec(task="binary", categorical=True, size=Size(trees=5, leaves=7))
>>> booster = train_model(spec, ctr_data(500))
>>> (booster.num_trees(), booster.num_feature())
(5, 40)
>>> spec.name
'binary-cat-5x7'
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple

import lightgbm
import numpy as np
import numpy.typing as npt

__all__ = [
    "LARGE",
    "SMALL",
    "TINY",
    "CtrData",
    "ModelSpec",
    "Size",
    "benchmark_model_path",
    "ctr_data",
    "model_path",
    "train_model",
]

Task = Literal["binary", "regression", "multiclass"]

NUM_NUMERIC: Final = 30
NUM_CATEGORICAL: Final = 10
CARDINALITY_RANGE: Final = (5, 500)
MULTICLASS_CLASSES: Final = 3


@dataclasses.dataclass(frozen=True)
class CtrData:
    """Generated training data: ``features`` is ``(n, 40)`` float64, NaN for missing."""

    features: npt.NDArray[np.float64]
    clicked: npt.NDArray[np.float64]
    """Binary label, 0.0 or 1.0 (about one row in five is a click)."""
    value: npt.NDArray[np.float64]
    """Regression target (think log of a winning price)."""
    feature_names: tuple[str, ...]
    categorical: tuple[int, ...]
    """Column indices of the categorical features."""
    cardinalities: tuple[int, ...]
    """One per categorical feature, in the order of ``categorical``."""

    @property
    def classes(self) -> npt.NDArray[np.float64]:
        """Multiclass label: the tercile of ``value`` (0.0, 1.0 or 2.0)."""
        cuts = np.quantile(self.value, [1 / 3, 2 / 3])
        return np.searchsorted(cuts, self.value, side="right").astype(np.float64)


def ctr_data(n_rows: int = 2_000, *, seed: int = 0) -> CtrData:
    """Generate ``n_rows`` of CTR-like data; the same arguments give the same arrays.

    >>> data = ctr_data(100)
    >>> data.features.shape, data.feature_names[0], data.feature_names[-1], data.cardinalities
    ((100, 40), 'num_00', 'cat_09', (5, 8, 14, 23, 39, 65, 108, 180, 300, 500))
    """
    rng = np.random.default_rng(seed)
    numeric = np.empty((n_rows, NUM_NUMERIC))
    for j in range(NUM_NUMERIC):
        kind = j % 3
        if kind == 0:  # counts: many exact zeros, which is what zero_as_missing changes
            numeric[:, j] = rng.poisson(0.7 + j / 10, n_rows)
        elif kind == 1:  # prices: skewed, positive
            numeric[:, j] = rng.lognormal(0.0, 1.0, n_rows)
        else:  # scores: centred, often negative
            numeric[:, j] = rng.normal(0.0, 1.0 + j / 10, n_rows)
        numeric[rng.random(n_rows) < 0.05 + 0.01 * (j % 10), j] = np.nan

    low, high = CARDINALITY_RANGE
    cardinalities = tuple(
        int(c) for c in np.geomspace(low, high, NUM_CATEGORICAL).round().astype(int)
    )
    categorical = np.empty((n_rows, NUM_CATEGORICAL))
    for j, cardinality in enumerate(cardinalities):
        ranks = np.arange(1, cardinality + 1, dtype=np.float64)
        weights = 1.0 / ranks**1.1
        categorical[:, j] = rng.choice(cardinality, n_rows, p=weights / weights.sum())
        categorical[rng.random(n_rows) < 0.03, j] = np.nan

    # The label depends on a few numeric features, zeros included, and on some categories.
    filled = np.nan_to_num(numeric)
    effects = [rng.normal(0.0, 0.8, c) for c in cardinalities[:4]]
    logit = (
        -1.6
        + 0.6 * (filled[:, 0] == 0)
        + 0.4 * np.tanh(filled[:, 2])
        - 0.3 * np.log1p(filled[:, 1])
        + 0.5 * np.isnan(numeric[:, 5])
    )
    for j, effect in enumerate(effects):
        codes = np.nan_to_num(categorical[:, j], nan=0.0).astype(int)
        logit += effect[codes]
    clicked = (rng.random(n_rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.float64)
    value = 0.5 * logit + 0.2 * filled[:, 3] - 0.1 * filled[:, 6] + rng.normal(0.0, 0.5, n_rows)

    names = tuple(f"num_{j:02d}" for j in range(NUM_NUMERIC)) + tuple(
        f"cat_{j:02d}" for j in range(NUM_CATEGORICAL)
    )
    return CtrData(
        features=np.ascontiguousarray(np.column_stack([numeric, categorical])),
        clicked=clicked,
        value=value,
        feature_names=names,
        categorical=tuple(range(NUM_NUMERIC, NUM_NUMERIC + NUM_CATEGORICAL)),
        cardinalities=cardinalities,
    )


class Size(NamedTuple):
    """Boosting rounds and leaves per tree (a multiclass model has ``trees * 3`` trees)."""

    trees: int
    leaves: int


TINY: Final = Size(10, 15)
"""For tests: compiles in a second or two."""
SMALL: Final = Size(50, 31)
"""The small model of the measurements (``docs/model-toolchain.md``, model A)."""
LARGE: Final = Size(300, 63)
"""The large model of the measurements (model B): for benchmarks only, minutes to compile."""


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What to train. ``categorical=False`` blanks the categorical columns (all NaN), so the
    model still has 40 inputs but splits on the numeric ones only."""

    task: Task = "binary"
    categorical: bool = True
    zero_as_missing: bool = False
    size: Size = SMALL
    linear_tree: bool = False
    seed: int = 0

    @property
    def name(self) -> str:
        """A file-name-safe summary, e.g. ``binary-cat-zam-50x31``."""
        parts = [self.task, "cat" if self.categorical else "num"]
        if self.zero_as_missing:
            parts.append("zam")
        if self.linear_tree:
            parts.append("linear")
        if self.seed:
            parts.append(f"s{self.seed}")
        parts.append(f"{self.size.trees}x{self.size.leaves}")
        return "-".join(parts)

    def params(self) -> dict[str, Any]:
        """LightGBM training parameters."""
        params: dict[str, Any] = {
            "objective": self.task,
            "num_leaves": self.size.leaves,
            "learning_rate": 0.1,
            "min_data_in_leaf": 10,
            "max_cat_to_onehot": 4,
            "cat_smooth": 10.0,
            "min_data_per_group": 20,
            "zero_as_missing": self.zero_as_missing,
            "linear_tree": self.linear_tree,
            "num_threads": 1,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
        }
        if self.task == "multiclass":
            params["num_class"] = MULTICLASS_CLASSES
        return params


def train_model(spec: ModelSpec, data: CtrData | None = None) -> lightgbm.Booster:
    """Train ``spec`` on ``data`` (default: :func:`ctr_data` with 2,000 rows)."""
    data = ctr_data() if data is None else data
    label = {
        "binary": data.clicked,
        "regression": data.value,
        "multiclass": data.classes,
    }[spec.task]
    features = data.features
    categorical = list(data.categorical) if spec.categorical else []
    if not spec.categorical:
        features = features.copy()
        features[:, list(data.categorical)] = np.nan  # no information: never split on
    dataset = lightgbm.Dataset(
        features,
        label,
        feature_name=list(data.feature_names),
        categorical_feature=categorical,
        params={"verbose": -1},
        free_raw_data=True,
    )
    return lightgbm.train(spec.params(), dataset, num_boost_round=spec.size.trees)


def model_path(spec: ModelSpec, directory: Path, *, n_rows: int = 2_000) -> Path:
    """Train ``spec`` and save its text as ``directory/<spec.name>.txt``, unless that file
    already exists (training is deterministic, so a saved model is the same model)."""
    path = directory / f"{spec.name}-{n_rows}.txt"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        booster = train_model(spec, ctr_data(n_rows, seed=spec.seed))
        partial = path.with_suffix(f".tmp{os.getpid()}")
        booster.save_model(partial)
        partial.replace(path)
    return path


def benchmark_model_path(spec: ModelSpec | None = None, *, root: Path | None = None) -> Path:
    """The large benchmark model (300 trees x 63 leaves, categorical, binary; 20,000 training
    rows), trained once and kept in ``root/.benchmarks/models/`` (``root`` defaults to the
    current directory)."""
    spec = ModelSpec(size=LARGE) if spec is None else spec
    directory = (Path.cwd() if root is None else root) / ".benchmarks" / "models"
    return model_path(spec, directory, n_rows=20_000)
