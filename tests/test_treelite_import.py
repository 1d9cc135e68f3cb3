"""The Treelite way in (`bidcore.models.from_treelite`) against the libraries themselves.

bidcore routes rows as Treelite's reference predictor (GTIL) does and sums margins in float64.
What "agree" means, per library:

* **XGBoost** stores features and leaves as float32 and sums a row's leaves in float32. bidcore
  reaches the same leaves (checked against XGBoost's own ``pred_leaf``), and its margin is
  exactly those leaves summed in float64 in tree order plus the base score: ``==``, no
  tolerance. Against ``predict(output_margin=True)`` the difference is XGBoost's float32
  rounding, bounded per row by the classic bound for n sequential float32 additions,
  ``n u / (1 - n u) * (|base| + sum |leaf|)`` with ``u = 2**-24``: measured up to 3e-6 on
  these 40-tree models (at most 15% of the bound), so 1e-9 is out of reach for anyone who does
  not also sum in float32.
* **GTIL** also sums a float32 model in float32: its per-tree outputs summed in float64 equal
  bidcore's margins exactly, its margins agree to the same float32 bound. Rows XGBoost refuses
  (infinities, values beyond float32) are checked against GTIL only.
* **scikit-learn** and **LightGBM** models are float64 in Treelite: scikit-learn agrees to 1e-12
  (summation order; measured 0 to 1.1e-15), and a LightGBM model read through Treelite gives
  bidcore's direct LightGBM reader's margins bit for bit (``zero_as_missing`` models excepted:
  Treelite cannot express that rule, treelite issue #376).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import lightgbm
import numpy as np
import numpy.typing as npt
import pytest
import treelite
import treelite.sklearn
import xgboost
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.ensemble import (
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)

import bidcore
from bidcore import models
from bidcore.testing.models import NUM_NUMERIC, TINY, ModelSpec, Size, ctr_data, model_path

Rows = npt.NDArray[np.float64]

ROUNDS = 40
"""XGBoost boosting rounds: depth 6 on 3,000 rows, about a second to train each."""


def _float32_sum_bound(additions: int, magnitude: Rows) -> Rows:
    """The most a float32 sum of ``additions`` sequential additions can be off, per row."""
    nu = additions * 2.0**-24
    return nu / (1.0 - nu) * magnitude


@dataclass(frozen=True)
class XgbCase:
    booster: xgboost.Booster
    feature_types: list[str]
    treelite_model: treelite.Model
    model: models.Model
    leaf_values: list[Rows]
    """Per tree, XGBoost's leaf value (float32, widened) by node id."""
    base: float

    def dmatrix(self, rows: Rows) -> xgboost.DMatrix:
        return xgboost.DMatrix(rows, feature_types=self.feature_types, enable_categorical=True)

    def reference(self, rows: Rows) -> tuple[Rows, Rows]:
        """XGBoost's own leaves for ``rows`` summed in float64 in tree order, then the base
        score (bidcore's arithmetic), and ``|base| + sum |leaf|`` for the float32 bound."""
        ids = self.booster.predict(self.dmatrix(rows), pred_leaf=True).astype(np.int64)
        ids = ids.reshape(len(rows), -1)
        total = np.zeros(len(rows))
        magnitude = np.full(len(rows), abs(self.base))
        for tree, values in enumerate(self.leaf_values):
            leaves = values[ids[:, tree]]
            total += leaves
            magnitude += np.abs(leaves)
        return total + self.base, magnitude

    def xgboost_margin(self, rows: Rows) -> Rows:
        margin = self.booster.predict(self.dmatrix(rows), output_margin=True)
        return np.asarray(margin, dtype=np.float64)


def _train_xgboost(categorical: bool) -> XgbCase:
    data = ctr_data(3_000, seed=0)
    columns = data.features.shape[1] if categorical else NUM_NUMERIC
    feature_types = ["q"] * NUM_NUMERIC + ["c"] * (columns - NUM_NUMERIC)
    params = {
        "objective": "binary:logistic",
        "max_depth": 6,
        "eta": 0.3,
        "nthread": 1,
        "seed": 0,
        "max_cat_to_onehot": 4,  # both kinds of categorical split: one-hot and partition
    }
    train = xgboost.DMatrix(
        data.features[:, :columns],
        data.clicked,
        feature_types=feature_types,
        enable_categorical=True,
    )
    booster = xgboost.train(params, train, num_boost_round=ROUNDS)
    trees = json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"]
    leaf_values = [
        np.asarray(tree["split_conditions"], dtype=np.float32).astype(np.float64) for tree in trees
    ]
    imported = treelite.frontend.from_xgboost(booster)
    base = json.loads(imported.dump_as_json(pretty_print=False))["base_scores"][0]
    return XgbCase(
        booster, feature_types, imported, models.from_treelite(imported), leaf_values, base
    )


@pytest.fixture(scope="module", params=[False, True], ids=["numeric", "categorical"])
def xgb_case(request: pytest.FixtureRequest) -> XgbCase:
    return _train_xgboost(categorical=request.param)


@pytest.fixture(scope="module")
def xgb_categorical() -> XgbCase:
    return _train_xgboost(categorical=True)


def _test_rows(case: XgbCase) -> Rows:
    rows = ctr_data(2_000, seed=1).features[:, : case.treelite_model.num_feature]
    return np.ascontiguousarray(rows)


def test_xgboost_reaches_the_same_leaves(xgb_case: XgbCase) -> None:
    rows = _test_rows(xgb_case)
    assert np.isnan(rows).any()
    expected, _ = xgb_case.reference(rows)
    np.testing.assert_array_equal(xgb_case.model.predict(rows, raw=True), expected)


def test_xgboost_margins_agree_to_float32_rounding(xgb_case: XgbCase) -> None:
    rows = _test_rows(xgb_case)
    got = xgb_case.model.predict(rows, raw=True)
    _, magnitude = xgb_case.reference(rows)
    bound = _float32_sum_bound(ROUNDS + 1, magnitude)
    diff = np.abs(got - xgb_case.xgboost_margin(rows))
    assert (diff <= bound).all(), (
        f"max diff {diff.max():.3g}, bound there {bound[diff.argmax()]:.3g}"
    )
    assert diff.max() <= 1e-5
    # Probabilities: the sigmoid's slope is at most 1/4; XGBoost rounds its result to float32.
    probability = xgb_case.booster.predict(xgb_case.dmatrix(rows)).astype(np.float64)
    assert (np.abs(xgb_case.model.predict(rows) - probability) <= bound / 4 + 1e-7).all()


def _gtil_reference(case: XgbCase, rows: Rows) -> tuple[Rows, Rows]:
    """GTIL's per-tree outputs summed in float64 plus the base, and GTIL's own margins."""
    with np.errstate(over="ignore"):  # 1e300 becomes inf, as GTIL itself would cast it
        single = np.ascontiguousarray(rows, dtype=np.float32)
    per_tree = treelite.gtil.predict_per_tree(case.treelite_model, single).astype(np.float64)
    total = np.zeros(len(rows))
    for tree in range(per_tree.shape[1]):
        total += per_tree[:, tree, 0]
    margin = treelite.gtil.predict(case.treelite_model, single, pred_margin=True)
    return total + case.base, margin.astype(np.float64).ravel()


def test_gtil_agrees_exactly_on_its_leaves(xgb_case: XgbCase) -> None:
    rows = _test_rows(xgb_case)
    got = xgb_case.model.predict(rows, raw=True)
    exact, margin = _gtil_reference(xgb_case, rows)
    np.testing.assert_array_equal(got, exact)
    _, magnitude = xgb_case.reference(rows)
    assert (np.abs(got - margin) <= _float32_sum_bound(ROUNDS + 1, magnitude)).all()


def _pools(case: XgbCase, *, beyond_float32: bool) -> list[list[float]]:
    """Per feature, the values where a walk can change its mind: each threshold as a float,
    its float neighbours, the doubles that round to it and the ties between floats; the
    categories listed and unseen ones, negative and fractional codes; NaN, zeros, subnormals
    and (for GTIL, which XGBoost refuses) infinities and values beyond float32."""
    model = json.loads(case.treelite_model.dump_as_json(pretty_print=False))
    special = [math.nan, 0.0, -0.0, 1e-45, -1e-45, 1e-300, 3e38, -3e38]
    if beyond_float32:
        special += [math.inf, -math.inf, 1e300, -1e300]
    pools: list[set[float]] = [set(special) for _ in range(model["num_feature"])]
    for tree in model["trees"]:
        for node in tree["nodes"]:
            if "threshold" in node:
                t = np.float32(node["threshold"])
                below = np.nextafter(t, np.float32(-np.inf))
                above = np.nextafter(t, np.float32(np.inf))
                half = (float(above) - float(t)) / 2  # exact in float64
                pools[node["split_feature_id"]].update(
                    [float(t), float(below), float(above), float(t) + half, float(t) - half / 2]
                )
            elif "category_list" in node:
                pools[node["split_feature_id"]].update(float(c) for c in node["category_list"])
    for feature, kind in enumerate(case.feature_types):
        if kind == "c":
            pools[feature].update([-1.0, -0.5, 0.5, 2.5, 499.0, 500.0, 550.0, 1e6])
    return [sorted(pool, key=lambda x: (math.isnan(x), x)) for pool in pools]


def _rows(pools: list[list[float]]) -> st.SearchStrategy[Rows]:
    row = st.tuples(*(st.sampled_from(pool) for pool in pools)).map(
        lambda values: np.array(values, dtype=np.float64)
    )
    return st.lists(row, min_size=1, max_size=8).map(np.vstack)


def test_xgboost_edge_rows(xgb_categorical: XgbCase) -> None:
    case = xgb_categorical

    @settings(
        max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(_rows(_pools(case, beyond_float32=False)))
    def check(rows: Rows) -> None:
        got = case.model.predict(rows, raw=True)
        expected, magnitude = case.reference(rows)
        np.testing.assert_array_equal(got, expected)
        diff = np.abs(got - case.xgboost_margin(rows))
        assert (diff <= _float32_sum_bound(ROUNDS + 1, magnitude)).all()

    check()


def test_gtil_edge_rows_with_infinities(xgb_categorical: XgbCase) -> None:
    case = xgb_categorical

    @settings(
        max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(_rows(_pools(case, beyond_float32=True)))
    def check(rows: Rows) -> None:
        exact, _ = _gtil_reference(case, rows)
        np.testing.assert_array_equal(case.model.predict(rows, raw=True), exact)

    check()


def test_the_json_text_reads_like_the_model(xgb_categorical: XgbCase) -> None:
    case = xgb_categorical
    text = case.treelite_model.dump_as_json(pretty_print=False)
    from_text = models.from_treelite(text)
    rows = _test_rows(case)[:200]
    np.testing.assert_array_equal(from_text.predict(rows), case.model.predict(rows))
    assert (from_text.num_features, from_text.num_outputs, from_text.num_trees) == (40, 1, ROUNDS)
    assert from_text.feature_names == []


def test_xgboost_multiclass_takes_turns_over_the_classes() -> None:
    data = ctr_data(1_000, seed=2)
    params = {"objective": "multi:softprob", "num_class": 3, "max_depth": 4, "nthread": 1}
    train = xgboost.DMatrix(data.features[:, :NUM_NUMERIC], data.classes)
    booster = xgboost.train(params, train, num_boost_round=8)
    model = models.from_treelite(treelite.frontend.from_xgboost(booster))
    rows = np.ascontiguousarray(ctr_data(500, seed=3).features[:, :NUM_NUMERIC])
    margin = booster.predict(xgboost.DMatrix(rows), output_margin=True)
    assert model.num_outputs == 3
    np.testing.assert_allclose(model.predict(rows, raw=True), margin, rtol=0, atol=1e-5)
    np.testing.assert_allclose(
        model.predict(rows), booster.predict(xgboost.DMatrix(rows)), atol=1e-6
    )


def _sklearn_rows(columns: int) -> Rows:
    """Test rows rounded to float32, as scikit-learn's trees read them."""
    rows = ctr_data(2_000, seed=1).features[:, :columns]
    return np.ascontiguousarray(rows.astype(np.float32).astype(np.float64))


def test_sklearn_random_forest_with_missing_values() -> None:
    # NaN in training gives splits with threshold +inf ("missing or not"), which Treelite's
    # JSON writer leaves out; from_treelite fills them in from the model.
    data = ctr_data(3_000, seed=0)
    forest = RandomForestRegressor(n_estimators=30, max_depth=8, random_state=0, n_jobs=1)
    forest.fit(data.features[:, :NUM_NUMERIC], data.value)
    imported = treelite.sklearn.import_model(forest)
    model = models.from_treelite(imported)
    rows = _sklearn_rows(NUM_NUMERIC)
    assert np.isnan(rows).any()
    np.testing.assert_allclose(model.predict(rows), forest.predict(rows), rtol=0, atol=1e-12)
    with pytest.raises(bidcore.ModelError, match="infinite"):
        models.from_treelite(imported.dump_as_json(pretty_print=False))


def test_sklearn_gradient_boosting() -> None:
    data = ctr_data(3_000, seed=0)
    features = np.nan_to_num(data.features[:, :NUM_NUMERIC])  # it takes no missing values
    boosting = GradientBoostingRegressor(n_estimators=30, max_depth=4, random_state=0)
    boosting.fit(features, data.value)
    model = models.from_treelite(treelite.sklearn.import_model(boosting))
    rows = np.nan_to_num(_sklearn_rows(NUM_NUMERIC))
    np.testing.assert_allclose(model.predict(rows), boosting.predict(rows), rtol=0, atol=1e-12)


def test_sklearn_random_forest_classifier_leaf_vectors() -> None:
    data = ctr_data(2_000, seed=0)
    forest = RandomForestClassifier(n_estimators=20, max_depth=8, random_state=0, n_jobs=1)
    forest.fit(data.features[:, :NUM_NUMERIC], data.classes)
    model = models.from_treelite(treelite.sklearn.import_model(forest))
    rows = _sklearn_rows(NUM_NUMERIC)
    assert model.num_outputs == 3
    np.testing.assert_allclose(model.predict(rows), forest.predict_proba(rows), atol=1e-12)


LIGHTGBM_SPECS = [
    ModelSpec(task="binary", categorical=True, size=Size(30, 31)),
    ModelSpec(task="regression", categorical=True, size=TINY),
    ModelSpec(task="multiclass", categorical=True, size=TINY),
]


@pytest.mark.parametrize("spec", LIGHTGBM_SPECS, ids=lambda spec: spec.name)
def test_lightgbm_both_ways_in_agree(
    spec: ModelSpec, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = model_path(spec, tmp_path_factory.mktemp("lightgbm"))
    direct = models.from_lightgbm(path)
    booster = lightgbm.Booster(model_file=str(path))
    via_treelite = models.from_treelite(treelite.frontend.from_lightgbm(booster))
    rows = ctr_data(2_000, seed=1).features
    # Edge rows: NaN, zeros, infinities; negative, unseen and fractional categories (but no
    # fractional negative ones: LightGBM reads -0.5 as category 0, Treelite as no category).
    edges = rows[:64].copy()
    special = [math.nan, 0.0, -0.0, math.inf, -math.inf, -1.0, 2.5, 1e9, 1e-36, 499.0, 7.0]
    for i in range(len(edges)):
        columns = np.random.default_rng(i).choice(edges.shape[1], 8, replace=False)
        edges[i, columns] = special[i % len(special)]
    rows = np.vstack([rows, edges])
    np.testing.assert_array_equal(
        via_treelite.predict(rows, raw=True), direct.predict(rows, raw=True)
    )
    np.testing.assert_array_equal(via_treelite.predict(rows), direct.predict(rows))
    np.testing.assert_allclose(
        direct.predict(rows, raw=True), booster.predict(rows, raw_score=True)
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "not a Treelite model JSON"),
        ("{}", "threshold_type"),
        ('{"threshold_type": "float16"}', "float16"),
    ],
)
def test_what_is_not_a_treelite_model_is_refused(text: str, reason: str) -> None:
    with pytest.raises(bidcore.ModelError, match=reason):
        models.from_treelite(text)


def test_an_unsupported_postprocessor_is_refused_with_its_name() -> None:
    data = ctr_data(500, seed=0)
    train = xgboost.DMatrix(data.features[:, :NUM_NUMERIC], data.clicked)
    params: dict[str, Any] = {"objective": "binary:hinge", "max_depth": 2, "nthread": 1}
    booster = xgboost.train(params, train, num_boost_round=2)
    with pytest.raises(bidcore.ModelError, match='postprocessor "hinge" is not supported'):
        models.from_treelite(treelite.frontend.from_xgboost(booster))
