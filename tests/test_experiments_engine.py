"""End to end: an engine with a two-arm experiment answers the corpus, its decision log is
analysed, and each arm's decisions were made with that arm's model and parameters.

The bidder is the demo (``bidcore/demo``: thirteen campaigns, its ctr and cvr models). The
experiment ``ctr-challenger`` gives its ``challenger`` arm a ctr model trained here (other
labels, other trees) and a bid multiplier of 1.25; ``control`` changes nothing. Every corpus
request is bid on once, the log drained, and then, from the records alone:

- each record's arm is the one :func:`bidcore.experiments.assign_request` gives the request,
  and its ``units`` key is :func:`bidcore.experiments.unit_key` of that unit;
- each record names the arm's ctr model, and each winning imp's ctr score is that model's
  prediction on the feature row the record carries (so the arm's model did the scoring);
- each winning ``cpc`` imp's value is the goal value of its score, times 1.25 in the
  challenger arm, in integer micros, exactly;
- the analysis finds both arms with the assignment's unit counts, no sample-ratio mismatch on
  a 50/50 split of the units.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from pathlib import Path
from typing import Any, Final

import lightgbm
import numpy as np
import pytest

import bidcore
from bidcore import config as bidder_config
from bidcore import demo, features, models
from bidcore.compile import build_artifact
from bidcore.decisionlog import DecisionRecord, decode
from bidcore.experiments import assign_request, unit_key
from bidcore.experiments.analysis import analyze

CORPUS: Final = Path(__file__).parent / "fixtures" / "openrtb" / "requests.jsonl"
NOW: Final = 1_795_390_200.0
EXPERIMENT: Final = "ctr-challenger"
MULTIPLIER_PPM: Final = 1_250_000


def _experiment(challenger: Path) -> str:
    return f"""
[[experiments.layers]]
name = "models"
seed = "e2e-models"
unit = ["user.id", "device.ifa"]

[[experiments.layers.experiments]]
key = "{EXPERIMENT}"
arms = [
    {{name = "control"}},
    {{name = "challenger", models = {{ctr = "{challenger.as_posix()}"}}, bid_multiplier = 1.25}},
]
"""


@pytest.fixture(scope="module")
def challenger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ctr artifact on the demo ctr model's feature spec, trained on other labels."""
    work = tmp_path_factory.mktemp("challenger")
    spec_file = demo.config_path().parent / "models" / "ctr" / "features.toml"
    spec = features.load(spec_file)
    bodies = [line for line in CORPUS.read_bytes().splitlines() if line.strip()]
    campaigns = bidder_config.load(demo.config_path()).campaigns
    rows = np.vstack(
        [
            features.matrix_with_index(
                bodies,
                spec,
                timestamps=np.full(len(bodies), NOW),
                campaign=c.features,
                skip_invalid=True,
            ).values
            for c in campaigns[:5]
        ]
    )
    rng = np.random.default_rng(7)
    # Clicks that depend on the first two features: a model unlike the demo's.
    signal = np.nan_to_num(rows[:, 0]) % 7 + np.nan_to_num(rows[:, 1]) % 3
    labels = (rng.random(len(rows)) < 0.01 + 0.02 * signal).astype(np.float64)
    booster = lightgbm.train(
        {
            "objective": "binary",
            "num_leaves": 7,
            "min_data_in_leaf": 20,
            "verbose": -1,
            "seed": 7,
            "deterministic": True,
            "num_threads": 1,
        },
        lightgbm.Dataset(
            rows, labels, feature_name=spec.names, categorical_feature=spec.categorical_columns()
        ),
        num_boost_round=20,
    )
    model_file = work / "challenger.txt"
    booster.save_model(model_file)
    return build_artifact(
        model_file,
        work / "artifact",
        features=spec_file,
        name="challenger-ctr",
        sample=rows[:500],
        require_compiled=False,
        cache_dir=work / "cache",
        progress=False,
    )


@pytest.fixture(scope="module")
def run(challenger: Path) -> dict[str, Any]:
    """The demo bidder with the experiment, every corpus request bid on once, the log drained."""
    text = demo.config_path().read_text(encoding="utf-8") + _experiment(challenger)
    config = bidder_config.loads(text)
    log = bidcore.DecisionLog(8192)
    engine = bidcore.Engine(config, base_dir=demo.config_path().parent, log=log)
    bodies = [line for line in CORPUS.read_bytes().splitlines() if line.strip()]
    for body in bodies:
        with contextlib.suppress(bidcore.InvalidRequestError):
            engine.bid(body, now=NOW)
    records = [decode(line) for line in log.drain(100_000, "json")]
    assert log.stats()["dropped"] == 0
    assert len(records) == len(bodies)
    return {"config": config, "engine": engine, "bodies": bodies, "records": records}


def test_each_record_carries_the_arm_and_unit_the_assignment_gives(run: dict[str, Any]) -> None:
    layers = run["config"].experiments.layers
    arms: Counter[str] = Counter()
    for body, record in zip(run["bodies"], run["records"], strict=True):
        assert isinstance(record, DecisionRecord)
        if record.request is None:  # refused: no request to assign
            assert record.arms == {}
            continue
        expected = assign_request(body, layers)["models"]
        assert expected.arm is not None  # coverage 1: every unit has an arm
        assert record.arms == {EXPERIMENT: expected.arm}
        assert record.units == {EXPERIMENT: unit_key(expected.unit)}
        arms[expected.arm] += 1
    assert set(arms) == {"control", "challenger"}
    assert min(arms.values()) > 1000


def test_each_arm_scored_with_its_own_model_and_priced_with_its_multiplier(
    run: dict[str, Any], challenger: Path
) -> None:
    engine = run["engine"]
    by_arm = {"control": engine.models["ctr"], "challenger": models.load(challenger)}
    assert by_arm["control"].name != by_arm["challenger"].name
    amounts = {
        c.id: bidder_config.micros(c.target_cpc)
        for c in run["config"].campaigns
        if c.goal == "cpc" and c.target_cpc is not None
    }
    checked: Counter[str] = Counter()
    for record in run["records"]:
        if not record.bid:
            continue
        arm = record.arms[EXPERIMENT]
        model = by_arm[arm]
        assert record.models["ctr"] == model.name
        for imp in record.imps:
            if imp.campaign is None or "ctr" not in imp.scores:
                continue
            row = np.array([np.nan if x is None else x for x in imp.features["ctr"]])
            assert imp.scores["ctr"] == pytest.approx(model.predict_one(row), rel=1e-12, abs=1e-15)
            if imp.campaign in amounts:
                value = int(np.floor(imp.scores["ctr"] * amounts[imp.campaign] * 1000.0))
                if arm == "challenger":
                    value = value * MULTIPLIER_PPM // 1_000_000
                assert imp.value_micros == value, (record.request, imp)
                checked[arm] += 1
    assert min(checked["control"], checked["challenger"]) > 20, checked


def test_the_analysis_counts_each_arms_units_and_requests(run: dict[str, Any]) -> None:
    records = [r for r in run["records"] if isinstance(r, DecisionRecord)]
    analysis = analyze(records, experiment=EXPERIMENT, control="control")
    for arm in ("control", "challenger"):
        # Test requests (`test: 1`) are left out of an analysis by default.
        mine = [r for r in records if r.arms.get(EXPERIMENT) == arm and not r.test]
        assert analysis.arms[arm].units == len({r.units[EXPERIMENT] for r in mine})
        assert analysis.arms[arm].requests == len(mine)
    # Units are what was randomised: a 50/50 split of them, no sample-ratio mismatch.
    assert not analysis.srm.flagged, analysis.srm


def test_a_missing_arm_model_names_the_arm() -> None:
    text = demo.config_path().read_text(encoding="utf-8") + _experiment(Path("models/missing"))
    with pytest.raises(
        bidcore.ModelError,
        match=r"experiment ctr-challenger, arm challenger: models\.ctr: .*missing",
    ):
        bidcore.Engine(bidder_config.loads(text), base_dir=demo.config_path().parent)
