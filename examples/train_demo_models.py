"""Train the demo bidder's click (``ctr``) and conversion (``cvr``) models and build their
artifacts, the directories ``examples/bidder.toml`` names in its ``[models]`` table.

The training rows are real requests, the labels made up: every impression of the OpenRTB corpus
(``tests/fixtures/openrtb/requests.jsonl``) is paired with every campaign of the config, its
features computed by :func:`bidcore.features.matrix` exactly as the engine computes them when it
scores that campaign (the campaign's ``features`` table fills the campaign attributes), at a
made-up moment of March 2026. A click, and a conversion after a click, are then drawn from fixed
logistic functions of a few of those features with a fixed seed, so the same inputs give the
same models. The vocabularies of the specs' ``vocabulary = []`` features are learned from the
corpus first.

The models are small (ctr: 50 trees of 15 leaves, cvr: 30 trees) and the artifacts are built with
:func:`bidcore.compile.build_artifact`. The engine scores with bidcore's native evaluator by
default, which needs no C compiler, so a failed or missing gcc is not an error here: the artifact
is written without its compiled library and says why (``metadata.json``, ``compiled_refused``).

Run from the repository root (needs the ``bidcore[compile]`` extra)::

    python examples/train_demo_models.py            # writes examples/models/{ctr,cvr}
    python examples/train_demo_models.py --out /tmp/models
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import numpy.typing as npt

from bidcore import config as bidder_config
from bidcore import features, models
from bidcore.compile import build_artifact
from bidcore.features import FeatureSpec

HERE = Path(__file__).resolve().parent
DEFAULT_REQUESTS = HERE.parent / "tests" / "fixtures" / "openrtb" / "requests.jsonl"
SEED = 20261122
START = datetime(2026, 3, 2, tzinfo=UTC).timestamp()  # a Monday
SPAN_SECONDS = 28 * 86_400
HOLDOUT = 0.2

Columns = dict[str, npt.NDArray[np.float64]]
Logit = Callable[[Columns], npt.NDArray[np.float64]]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=HERE / "models", help="where to write ctr/ and cvr/"
    )
    parser.add_argument("--config", type=Path, default=HERE / "bidder.toml", help="bidder config")
    parser.add_argument(
        "--requests", type=Path, default=DEFAULT_REQUESTS, help="bid requests, one per line"
    )
    parser.add_argument("--seed", type=int, default=SEED, help="labels and split")
    parser.add_argument("--cache-dir", type=Path, help="compiled-library cache (bidcore's default)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")

    started = time.perf_counter()
    campaigns = [c.features for c in bidder_config.load(args.config).campaigns]
    bodies = [line for line in args.requests.read_bytes().splitlines() if line.strip()]
    rng = np.random.default_rng(args.seed)
    timestamps = START + rng.uniform(0, SPAN_SECONDS, len(bodies)).round()

    for role, trees, logit in (("ctr", 50, ctr_logit), ("cvr", 30, cvr_logit)):
        spec = features.learn_vocabularies(
            features.load(HERE / "features" / f"{role}.toml"), bodies, min_count=2, max_size=40
        )
        rows = training_rows(bodies, spec, timestamps, campaigns)
        labels = draw(rng, logit(dict(zip(spec.names, rows.T, strict=True))))
        path = train_and_build(role, spec, rows, labels, trees, rng, args.out, args.cache_dir)
        print(f"{role}: {describe(path)}")
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0


def training_rows(
    bodies: Sequence[bytes],
    spec: FeatureSpec,
    timestamps: npt.NDArray[np.float64],
    campaigns: Sequence[dict[str, float]],
) -> npt.NDArray[np.float64]:
    """Every valid request's impressions, once per campaign, as the engine would score them."""
    blocks = [
        features.matrix_with_index(
            bodies, spec, timestamps=timestamps, campaign=attributes, skip_invalid=True
        ).values
        for attributes in campaigns
    ]
    return np.vstack(blocks)


def _filled(column: npt.NDArray[np.float64], value: float = 0.0) -> npt.NDArray[np.float64]:
    return np.where(np.isnan(column), value, column)


def ctr_logit(x: Columns) -> npt.NDArray[np.float64]:
    """Clicks: apps and phones click more, video and native more than banners, big floors
    (premium, crowded slots) less; an evening peak; some advertisers' ads are simply better."""
    media = x["media_type"]  # 0 banner, 1 video, 2 audio, 3 native
    hour = _filled(x["hour_local"], 12.0)
    category_effect = {2: 0.2, 8: 0.35, 9: 0.5, 13: -0.3, 18: 0.1, 19: -0.2, 20: 0.25, 22: 0.15}
    advertiser = sum(
        effect * (x["advertiser_category"] == category)
        for category, effect in category_effect.items()
    )
    logit = (
        -3.4
        + 0.7 * (x["is_app"] == 1)
        + 0.5 * np.isin(x["device_type"], (1, 4))
        + 0.6 * (media == 1)
        - 0.4 * (media == 2)
        + 0.45 * (media == 3)
        + 0.3 * (_filled(x["banner_area"]) >= 300 * 600)
        - 0.3 * np.log1p(_filled(x["floor_usd"]))
        + 0.35 * np.cos(2 * math.pi * (hour - 20) / 24)
        + 0.15 * np.log1p(_filled(x["campaign_bid"]))
        - 0.002 * _filled(x["campaign_age_days"])
        + 0.2 * (_filled(x["site_domain"], -1.0) % 5 == 0)
        + advertiser
    )
    return np.asarray(logit, dtype=np.float64)


def cvr_logit(x: Columns) -> npt.NDArray[np.float64]:
    """Conversions after a click: app users of game advertisers install, finance converts in
    the daytime on weekdays, known users convert more, expensive placements less."""
    hour = _filled(x["hour_local"], 12.0)
    weekday = _filled(x["weekday_local"], 2.0)
    category = _filled(x["advertiser_category"])
    logit = (
        -2.6
        + 1.4 * ((x["is_app"] == 1) & (category == 9))
        + 1.0 * ((category == 13) & (hour >= 9) & (hour <= 17) & (weekday <= 4))
        + 0.7 * (x["has_user_id"] == 1)
        - 0.3 * np.log1p(_filled(x["floor_usd"]))
        - 0.5 * (x["media_type"] == 2)
        + 0.4 * (_filled(x["placement"], -1.0) % 7 == 0)
    )
    return np.asarray(logit, dtype=np.float64)


def draw(rng: np.random.Generator, logit: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """0/1 labels with probability sigmoid(logit)."""
    return (rng.random(len(logit)) < 1.0 / (1.0 + np.exp(-logit))).astype(np.float64)


def train_and_build(
    role: str,
    spec: FeatureSpec,
    rows: npt.NDArray[np.float64],
    labels: npt.NDArray[np.float64],
    trees: int,
    rng: np.random.Generator,
    out: Path,
    cache_dir: Path | None,
) -> Path:
    """Train on 80% of the rows, measure on the rest, and write the artifact ``out/role``."""
    holdout = rng.random(len(rows)) < HOLDOUT
    categorical = spec.categorical_columns()
    train = lightgbm.Dataset(
        rows[~holdout], labels[~holdout], feature_name=spec.names, categorical_feature=categorical
    )
    valid = lightgbm.Dataset(rows[holdout], labels[holdout], reference=train)
    params: dict[str, Any] = {
        "objective": "binary",
        "metric": ["auc", "binary_logloss"],
        "num_leaves": 15,
        "learning_rate": 0.1,
        "min_data_in_leaf": 50,
        "cat_smooth": 10,
        "seed": SEED,
        "deterministic": True,
        "num_threads": 1,
        "verbose": -1,
    }
    evaluation: dict[str, Any] = {}
    booster = lightgbm.train(
        params,
        train,
        num_boost_round=trees,
        valid_sets=[valid],
        valid_names=["holdout"],
        callbacks=[lightgbm.record_evaluation(evaluation)],
    )
    metrics = {
        "rows": len(rows),
        "holdout_rows": int(holdout.sum()),
        "positive_rate": round(float(labels.mean()), 6),
        "holdout_auc": round(float(evaluation["holdout"]["auc"][-1]), 6),
        "holdout_logloss": round(float(evaluation["holdout"]["binary_logloss"][-1]), 6),
        "labels": "synthetic (examples/train_demo_models.py)",
    }
    sample = rows[holdout][:2_000]
    with tempfile.TemporaryDirectory(prefix=f"bidcore-demo-{role}-") as tmp:
        model = Path(tmp) / f"{role}.txt"
        booster.save_model(model)
        spec_file = Path(tmp) / "features.toml"
        spec_file.write_text(spec_toml(spec), encoding="utf-8")
        path = build_artifact(
            model,
            out / role,
            features=spec_file,
            name=f"demo-{role}",
            training_metrics=metrics,
            sample=sample,
            require_compiled=False,  # the native evaluator needs no library
            cache_dir=cache_dir,
            overwrite=True,
            progress=False,
        )
    loaded = models.load(path)  # checks the artifact; scores as the engine will
    expected = booster.predict(sample)
    assert np.abs(np.asarray(loaded.predict(sample)) - expected).max() <= 1e-9, role
    return path


def spec_toml(spec: FeatureSpec) -> str:
    """The spec as TOML, learned vocabularies included (strings as JSON strings, which are valid
    TOML basic strings)."""
    import json

    lines = ["# Learned by examples/train_demo_models.py from examples/features/*.toml.", ""]
    if spec.fx:
        lines.append("[fx]")
        lines += [f"{code} = {rate!r}" for code, rate in spec.fx.items()]
        lines.append("")
    for feature in spec.features:
        lines.append("[[features]]")
        for key in ("name", "number", "text", "derived", "campaign", "vocabulary", "buckets"):
            value = getattr(feature, key)
            if value is not None:
                lines.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
        if feature.unseen != "own_code":
            lines.append(f'unseen = "{feature.unseen}"')
        lines.append("")
    text = "\n".join(lines)
    assert features.loads(text) == spec, "the TOML does not read back as the spec"
    return text


def describe(path: Path) -> str:
    from bidcore.artifact import read_metadata

    metadata = read_metadata(path)
    metrics = metadata.training_metrics
    compiled = "compiled" if metadata.compiled else "native only"
    return (
        f"{path} ({metadata.num_trees} trees, {metadata.num_features} features, {compiled}); "
        f"{metrics['rows']} rows, positive rate {metrics['positive_rate']:.3f}, "
        f"holdout AUC {metrics['holdout_auc']:.3f}"
    )


if __name__ == "__main__":
    sys.exit(main())
