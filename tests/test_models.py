"""The native evaluator against LightGBM itself: the same predictions, to the last bit.

Models are trained here on generated CTR-like data (`bidcore.testing.models`), covering the
objectives, categorical splits, missing values and zero-as-missing; rows come from Hypothesis
and are built to hit every edge LightGBM's tree walk has: thresholds and their neighbours, zero
and values within 1e-35 of it, NaN, infinities, negative, fractional and unseen categories.
"""

from __future__ import annotations

import math
from pathlib import Path

import lightgbm
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bidcore
from bidcore import models
from bidcore.testing.models import LARGE, SMALL, TINY, ModelSpec, Size, ctr_data, model_path

SPECS = [
    ModelSpec(task="binary", categorical=True, size=SMALL),
    ModelSpec(task="binary", categorical=False, size=SMALL),
    ModelSpec(task="binary", categorical=True, zero_as_missing=True, size=SMALL),
    ModelSpec(task="regression", categorical=True, size=TINY),
    ModelSpec(task="regression", categorical=True, zero_as_missing=True, size=TINY),
    ModelSpec(task="multiclass", categorical=True, size=TINY),
    ModelSpec(task="binary", categorical=True, size=LARGE),
]


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


def _pair(spec: ModelSpec, directory: Path) -> tuple[lightgbm.Booster, models.Model]:
    path = model_path(spec, directory)
    return lightgbm.Booster(model_file=str(path)), models.from_lightgbm(path)


def _edge_values(booster: lightgbm.Booster) -> dict[int, list[float]]:
    """Per feature, the values where LightGBM's walk changes its mind."""
    edges: dict[int, list[float]] = {}

    def visit(node: dict[str, object]) -> None:
        if "split_feature" not in node:
            return
        feature = int(node["split_feature"])  # type: ignore[call-overload]
        threshold = node["threshold"]
        if isinstance(threshold, float):
            edges.setdefault(feature, []).extend(
                [
                    threshold,
                    math.nextafter(threshold, -math.inf),
                    math.nextafter(threshold, math.inf),
                ]
            )
        else:  # categorical: "3||7||12"
            edges.setdefault(feature, []).extend(float(c) for c in str(threshold).split("||"))
        visit(node["left_child"])  # type: ignore[arg-type]
        visit(node["right_child"])  # type: ignore[arg-type]

    for tree in booster.dump_model()["tree_info"]:
        visit(tree["tree_structure"])
    return edges


SPECIAL = [0.0, -0.0, 1e-36, -1e-36, 1e-35, math.nan, math.inf, -math.inf, -1.0, -0.5, 0.5, 1e300]
CATEGORIES = [
    float(c) for c in (-3, -1, 0, 1, 2, 3, 5, 7, 13, 31, 32, 63, 64, 65, 100, 499, 500, 600)
]


def _rows(booster: lightgbm.Booster) -> st.SearchStrategy[np.ndarray]:
    """Rows whose every value is drawn from that feature's pool of edges: its thresholds and
    their neighbours, the special values, and categories seen and unseen. Drawing indices into
    the pools keeps generation fast enough for 40-feature rows."""
    edges = _edge_values(booster)
    pools = [
        np.array(sorted(set(edges.get(f, []))) + SPECIAL + CATEGORIES)
        for f in range(booster.num_feature())
    ]
    row = st.tuples(*(st.integers(0, len(pool) - 1) for pool in pools)).map(
        lambda picks: np.array([pool[i] for pool, i in zip(pools, picks, strict=True)])
    )
    return st.lists(row, min_size=1, max_size=8).map(np.vstack)


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_raw_margins_match_lightgbm_on_edge_rows(spec: ModelSpec, model_dir: Path) -> None:
    booster, model = _pair(spec, model_dir)

    # No example database: this inner test is redefined for every model, with other strategies.
    @settings(
        max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(_rows(booster))
    def check(rows: np.ndarray) -> None:
        expected = booster.predict(rows, raw_score=True)
        got = model.predict(rows, raw=True)
        assert np.max(np.abs(expected - got)) <= 1e-9

    check()


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_predictions_match_lightgbm_on_data_rows(spec: ModelSpec, model_dir: Path) -> None:
    booster, model = _pair(spec, model_dir)
    rows = ctr_data(3_000, seed=7).features
    np.testing.assert_array_equal(
        model.predict(rows, raw=True), booster.predict(rows, raw_score=True)
    )
    np.testing.assert_allclose(model.predict(rows), booster.predict(rows), rtol=0, atol=1e-15)
    one = model.predict_one(rows[0])
    expected = booster.predict(rows[:1])[0]
    assert np.allclose(one, expected, rtol=0, atol=1e-15)


def test_multiclass_rows_give_one_probability_per_class(model_dir: Path) -> None:
    _, model = _pair(ModelSpec(task="multiclass", size=TINY), model_dir)
    rows = ctr_data(10, seed=3).features
    probabilities = model.predict(rows)
    assert probabilities.shape == (10, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert len(model.predict_one(rows[0])) == 3  # type: ignore[arg-type]


def test_models_describe_themselves(model_dir: Path) -> None:
    _, model = _pair(ModelSpec(size=Size(5, 7)), model_dir)
    assert (model.num_features, model.num_outputs, model.num_trees) == (40, 1, 5)
    assert model.feature_names[0] == "num_00"


def test_rows_of_the_wrong_width_are_refused(model_dir: Path) -> None:
    _, model = _pair(ModelSpec(size=Size(5, 7)), model_dir)
    with pytest.raises(ValueError, match="39 features; the model takes 40"):
        model.predict(np.zeros((2, 39)))
    with pytest.raises(ValueError, match="2-D"):
        model.predict(np.zeros(40))


def test_predict_takes_any_matrix_of_floats(model_dir: Path) -> None:
    """`Model.predict` is the native method itself: small blocks are copied, large arrays
    borrowed, anything but a C-contiguous float64 matrix converted; the answers are the same."""
    _, model = _pair(ModelSpec(size=Size(5, 7)), model_dir)
    rows = ctr_data(300, seed=5).features  # 12,000 values: borrowed
    expected = model.predict(rows, raw=True)
    small = model.predict(rows[:16], raw=True)  # 640 values: copied
    np.testing.assert_array_equal(small, expected[:16])
    np.testing.assert_array_equal(model.predict(np.asfortranarray(rows), raw=True), expected)
    np.testing.assert_array_equal(model.predict(rows[:16].tolist(), raw=True), small)
    np.testing.assert_array_equal(model.predict(rows[::2], raw=True), expected[::2])
    with pytest.raises(ValueError, match="2-D array, got 3 dimensions"):
        model.predict(rows.reshape(2, 150, 40))
    view = rows[:16]
    view.flags.writeable = False  # a read-only array is read as any other
    np.testing.assert_array_equal(model.predict(view, raw=True), small)


def test_predict_one_takes_any_vector_of_floats(model_dir: Path) -> None:
    """`Model.predict_one` is the native method itself: a contiguous float64 vector goes
    straight in, anything else numpy reads as a vector is converted, the rest refused."""
    _, model = _pair(ModelSpec(size=Size(5, 7)), model_dir)
    rows = ctr_data(4, seed=5).features
    expected = model.predict_one(rows[1], raw=True)
    assert expected == model.predict(rows[1:2], raw=True)[0]
    assert model.predict_one(rows[1].tolist(), raw=True) == expected
    assert model.predict_one(np.asfortranarray(rows)[1], raw=True) == expected  # strided view
    as_float32 = rows[1].astype(np.float32)
    assert model.predict_one(as_float32, raw=True) == model.predict_one(
        as_float32.astype(np.float64), raw=True
    )
    with pytest.raises(ValueError, match="1-D"):
        model.predict_one(rows[:2])
    with pytest.raises(ValueError, match="39 features; the model takes 40"):
        model.predict_one(rows[1][:39])
    with pytest.raises(ValueError, match="could not convert"):
        model.predict_one(["a"] * 40)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda text: text[: text.index("Tree=3")], "end of trees"),
        (lambda text: text.replace("left_child=", "left_child=99 ", 1), "left_child has"),
        (lambda text: text.replace("num_leaves=7", "num_leaves=0", 1), "num_leaves"),
        (lambda text: text.replace("max_feature_idx=39", "max_feature_idx=3", 1), "feature"),
        (lambda text: "not a model", "LightGBM"),
    ],
)
def test_damaged_model_text_is_refused_with_a_reason(damage, reason: str, model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    text = model_path(ModelSpec(size=Size(5, 7)), model_dir).read_text()
    with pytest.raises(bidcore.ModelError, match=reason):
        models.from_lightgbm(damage(text))


def test_linear_trees_are_refused(model_dir: Path) -> None:
    path = model_path(ModelSpec(size=Size(3, 4), linear_tree=True, categorical=False), model_dir)
    with pytest.raises(bidcore.ModelError, match="linear trees"):
        models.from_lightgbm(path)
