"""The demo bidder (examples/) on the whole shared corpus: every request decided without error,
the share that bids reported, and every decision equal to the Python reference's.

The demo models are trained by the example's own script (examples/train_demo_models.py) into a
temporary directory, as a user would run it.
"""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import lightgbm
import pytest

import bidcore
from bidcore import models
from bidcore.reference import RoleModel
from bidcore.testing.bidder import assert_same_decision

ROOT = Path(__file__).parent.parent
CORPUS = ROOT / "tests" / "fixtures" / "openrtb" / "requests.jsonl"
EXAMPLE = ROOT / "examples" / "bidder.toml"
NOW = 1_795_390_200.0  # a Sunday evening in UTC, 18:30 in New York


@pytest.fixture(scope="module")
def demo_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo-models")
    script = runpy.run_path(str(ROOT / "examples" / "train_demo_models.py"))
    assert script["main"](["--out", str(out), "--cache-dir", str(out / "cache")]) == 0
    return out


@pytest.fixture(scope="module")
def engine(demo_models: Path) -> bidcore.Engine:
    config = bidcore.config.load(EXAMPLE)
    loaded = {role: models.load(demo_models / role) for role in ("ctr", "cvr")}
    return bidcore.Engine(config, models=loaded)


def _corpus() -> list[bytes]:
    return [line for line in CORPUS.read_bytes().splitlines() if line.strip()]


def test_every_corpus_request_is_decided_and_a_good_share_bids(
    engine: bidcore.Engine, record_property: pytest.RecordProperty
) -> None:
    valid = bids = 0
    for body in _corpus():
        try:
            response = engine.bid(body, now=NOW)
        except bidcore.InvalidRequestError:
            continue
        valid += 1
        if response is not None:
            bids += 1
            decoded = json.loads(response)
            for bid in decoded["seatbid"][0]["bid"]:
                assert bid["price"] > 0
                assert bid["crid"]
                assert bid["adomain"]
    share = bids / valid
    record_property("bid_share", f"{bids}/{valid} = {share:.1%}")
    print(f"\nthe demo bidder bids on {bids} of {valid} valid corpus requests ({share:.1%})")
    assert valid > 3500
    assert share > 0.6, f"only {share:.1%} of the corpus bids"


def test_the_reference_decides_every_corpus_request_alike(
    engine: bidcore.Engine, demo_models: Path
) -> None:
    reference_models = {}
    for role in ("ctr", "cvr"):
        booster = lightgbm.Booster(model_file=str(demo_models / role / "model.txt"))
        spec = engine.models[role].features
        assert spec is not None
        reference_models[role] = RoleModel(predict=booster.predict, spec=spec)
    for body in _corpus():
        assert_same_decision(engine, engine.config, reference_models, body, NOW)


def test_live_histograms_use_the_artifacts_reference_edges(engine: bidcore.Engine) -> None:
    fresh = bidcore.Engine(engine.config, models=engine.models)
    bodies = _corpus()
    fresh.bid_many(bodies, now=NOW)
    live = fresh.metrics()["models"]
    assert set(live) == {"ctr", "cvr"}
    for role, model in engine.models.items():
        reference = model.reference
        assert reference is not None
        assert live[role]["model"] == model.name
        assert live[role]["scores"]["edges"] == list(reference.score.edges)
        assert sum(live[role]["scores"]["counts"]) > 50
        assert set(live[role]["features"]) == set(reference.features)
        for name, histogram in live[role]["features"].items():
            assert histogram["edges"] == list(reference.features[name].edges)
            # Every scored row is binned once per monitored feature, as the score is.
            assert (
                sum(histogram["counts"]) + histogram["missing"]
                == sum(live[role]["scores"]["counts"]) + live[role]["scores"]["missing"]
            )
