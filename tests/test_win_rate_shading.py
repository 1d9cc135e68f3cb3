"""First-price shading on a learned win-rate model (``[models] win_rate``).

The model predicts, per imp, the natural log of the CPM that wins half the time; that is the
center of the bidder's win-rate curve ``w(b) = 1 / (1 + exp(-(ln b - ln center) / scale))``,
the scale staying the configured one (``docs/engine.md``, step 6). The engine predicts once per
imp with its own evaluator; the reference (``bidcore.reference``) calls LightGBM's
``Booster.predict`` on the row ``features_py`` builds, and both must make the same decision.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import lightgbm
import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bidcore
from bidcore import features, models
from bidcore.compile import build_artifact
from bidcore.config import Config
from bidcore.decisionlog import DecisionLogWriter, DecisionRecord, FileSink, read
from bidcore.errors import ConfigError
from bidcore.reference import RoleModel
from bidcore.reference.pricing import model_center
from bidcore.testing.bidder import (
    WIN_RATE_HAS_IFA,
    WIN_RATE_SPEC,
    assert_same_decision,
    configs,
    requests,
    train_role_model,
    train_win_rate_model,
)

CORPUS = Path(__file__).parent / "fixtures" / "openrtb" / "requests.jsonl"
NOW = 1_795_390_200.0


def _bodies() -> list[bytes]:
    return [line for line in CORPUS.read_bytes().splitlines() if line.strip()][:1500]


class _Pairs(dict[str, tuple[RoleModel, models.Model]]):
    def __repr__(self) -> str:  # keeps Hypothesis' failure reports readable
        return "<trained ctr, cvr and win-rate models>"


@pytest.fixture(scope="module")
def trained() -> dict[str, tuple[RoleModel, models.Model]]:
    bodies = _bodies()
    out = _Pairs()
    for role, seed in (("ctr", 1), ("cvr", 2)):
        booster, spec = train_role_model(bodies, seed=seed)
        native = models.from_lightgbm(booster.model_to_string(), features=spec)
        out[role] = (RoleModel(predict=booster.predict, spec=spec), native)
    booster, spec = train_win_rate_model(bodies, seed=3)
    native = models.from_lightgbm(booster.model_to_string(), features=spec)
    out["win_rate"] = (RoleModel(predict=booster.predict, spec=spec), native)
    return out


def _with_win_rate(config: Config) -> Config:
    """``config`` with the win-rate model and shading on (so most candidates shade)."""
    return msgspec.structs.replace(
        config,
        models=msgspec.structs.replace(config.models, win_rate="win_rate"),
        shading=msgspec.structs.replace(config.shading, enabled=True),
    )


def _first_price(body: bytes) -> bytes:
    """``body`` as a first-price auction, when it is a JSON object."""
    try:
        request = json.loads(body)
    except ValueError:
        return body
    if not isinstance(request, dict):
        return body
    request["at"] = 1
    return json.dumps(request).encode()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs(), bodies=st.lists(requests(), min_size=1, max_size=3))
def test_engine_and_reference_shade_alike_on_a_win_rate_model(
    trained: dict[str, tuple[RoleModel, models.Model]], config: Config, bodies: list[bytes]
) -> None:
    config = _with_win_rate(config)
    engine = bidcore.Engine(config, models={k: v[1] for k, v in trained.items()})
    reference = {k: v[0] for k, v in trained.items()}
    for body in bodies:
        assert_same_decision(engine, config, reference, _first_price(body), NOW)


_CONFIG = """
[bidder]
seat = "s1"
currency = "USD"

[shading]
center = 1.0
scale = 0.5

[[campaigns]]
id = "fixed"
goal = "cpm"
cpm = 4
max_bid = 10

[[campaigns.creatives]]
id = "cr1"
media = "banner"
w = 300
h = 250
adomain = ["a.example"]
markup = "<div>ad</div>"
"""


def _request(devicetype: int, *, at: int = 1, floor: float = 0.5, ifa: bool = True) -> bytes:
    device: dict[str, Any] = {"devicetype": devicetype, "ua": "x"}
    if ifa:
        device["ifa"] = "ifa-1"
    return json.dumps(
        {
            "id": "r1",
            "at": at,
            "imp": [
                {"id": "1", "bidfloor": floor, "banner": {"format": [{"w": 300, "h": 250}]}},
            ],
            "site": {"domain": "news.example"},
            "device": device,
        }
    ).encode()


def _constant_model(ln_center: float) -> models.Model:
    """A regression model that predicts ``ln_center`` for every row of the win-rate spec."""
    spec = features.loads(_SPEC)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 10, (200, len(spec.features)))
    params = {"objective": "regression", "verbose": -1, "num_threads": 1, "seed": 0}
    booster = lightgbm.train(params, lightgbm.Dataset(x, np.full(200, ln_center)), 1)
    return models.from_lightgbm(booster.model_to_string(), features=spec)


_SPEC = """
[[features]]
name = "devicetype"
number = "device.devicetype"
"""


def _price(engine: bidcore.Engine, body: bytes) -> int:
    explained: dict[str, Any] = engine.explain(body, now=NOW)
    [imp] = explained["imps"]
    price: int = imp["price"]
    return price


def test_a_model_center_prices_as_the_same_configured_center() -> None:
    # The model predicts ln(2.4) for every imp: center floor(exp(ln 2.4) * 10^6) micros (the
    # double exp gives may fall a hair below 2.4). A bidder configured with exactly that center
    # and no model must shade every request to the same price, first price; second price is
    # not shaded at all (the bid is the value, $4.00).
    model = _constant_model(float(np.log(2.4)))
    predicted = float(model.predict_one([2.0]))
    center = model_center(predicted)
    assert center is not None
    assert abs(center - 2_400_000) <= 1
    config = bidcore.config.loads(_CONFIG + '\n[models]\nwin_rate = "w"\n')
    configured = bidcore.config.loads(
        _CONFIG.replace("center = 1.0", f"center = {Decimal(center).scaleb(-6)}")
    )
    with_model = bidcore.Engine(config, models={"win_rate": model})
    fixed = bidcore.Engine(configured, models={})
    for devicetype in (1, 2, 4):
        body = _request(devicetype)
        assert _price(with_model, body) == _price(fixed, body)
    # The configured center of 1.0 shades lower: the model's center is what moved the price.
    plain = bidcore.Engine(bidcore.config.loads(_CONFIG), models={})
    assert _price(plain, _request(1)) < _price(with_model, _request(1))
    assert _price(with_model, _request(1, at=2)) == 4_000_000


def test_the_center_follows_the_imp(trained: dict[str, tuple[RoleModel, models.Model]]) -> None:
    # The trained model's center is higher for an imp with an ad id than for one without
    # (e^0.4 times, in the data it learned from): the first imp is shaded higher. `explain`
    # shows the imp's row and the prediction.
    model = trained["win_rate"][1]
    config = bidcore.config.loads(_CONFIG + '\n[models]\nwin_rate = "w"\n')
    engine = bidcore.Engine(config, models={"win_rate": model})
    with_ifa, without = _request(2), _request(2, ifa=False)
    assert _price(engine, with_ifa) > _price(engine, without)
    explained = engine.explain(with_ifa, now=NOW)
    [candidate] = explained["candidates"]
    row = candidate["features"]["win_rate"]
    assert row[WIN_RATE_HAS_IFA] == 1.0
    assert candidate["scores"]["win_rate"] == pytest.approx(float(model.predict_one(row)))


def test_an_arms_own_curve_is_not_the_models() -> None:
    # An arm with its own curve shades on it, model or not: every request is in one of two
    # such arms, and its prices are those of the same bidder without a model.
    arm = """
[[experiments.layers]]
name = "shading"
seed = "s"
unit = ["id"]
[[experiments.layers.experiments]]
key = "own-curve"
arms = [
    {name = "high", shading = {center = 3.0, scale = 0.4}},
    {name = "low", shading = {center = 2.0, scale = 0.4}},
]
"""
    with_model = bidcore.Engine(
        bidcore.config.loads(_CONFIG + '\n[models]\nwin_rate = "w"\n' + arm),
        models={"win_rate": _constant_model(float(np.log(1.2)))},
    )
    without = bidcore.Engine(bidcore.config.loads(_CONFIG + arm), models={})
    for devicetype in (1, 4):
        assert _price(with_model, _request(devicetype)) == _price(without, _request(devicetype))


def test_a_win_rate_model_reading_campaign_attributes_is_refused(
    trained: dict[str, tuple[RoleModel, models.Model]],
) -> None:
    config = bidcore.config.loads(_CONFIG + '\n[models]\nwin_rate = "w"\n')
    with pytest.raises(ConfigError, match="campaign attributes"):
        bidcore.Engine(config, models={"win_rate": trained["ctr"][1]})


def test_the_config_loads_the_win_rate_artifact(tmp_path: Path) -> None:
    # `models.win_rate` names an artifact directory, loaded (checksums verified) like ctr's.
    booster, _ = train_win_rate_model(_bodies(), seed=5)
    booster.save_model(tmp_path / "win.txt")
    (tmp_path / "win.toml").write_text(WIN_RATE_SPEC)
    build_artifact(
        tmp_path / "win.txt",
        tmp_path / "win",
        features=tmp_path / "win.toml",
        name="win-rate",
        cache_dir=tmp_path / "cache",
        progress=False,
    )
    (tmp_path / "bidder.toml").write_text(_CONFIG + '\n[models]\nwin_rate = "win"\n')
    engine = bidcore.Engine.load(tmp_path / "bidder.toml")
    assert engine.models["win_rate"].name.startswith("win-rate@")
    assert _price(engine, _request(2)) > _price(engine, _request(2, ifa=False))


def test_the_decision_log_names_the_win_rate_model(
    trained: dict[str, tuple[RoleModel, models.Model]], tmp_path: Path
) -> None:
    log = bidcore.DecisionLog()
    config = bidcore.config.loads(_CONFIG + '\n[models]\nwin_rate = "w"\n')
    engine = bidcore.Engine(config, models={"win_rate": trained["win_rate"][1]}, log=log)
    assert engine.bid(_request(2), now=NOW) is not None
    writer = DecisionLogWriter(
        log, FileSink(tmp_path, format="jsonl"), interval=60.0, max_backoff=60.0
    )
    writer.close()
    [record] = [r for r in read(tmp_path) if isinstance(r, DecisionRecord)]
    assert record.models == {"win_rate": trained["win_rate"][1].name or "win_rate-model"}
