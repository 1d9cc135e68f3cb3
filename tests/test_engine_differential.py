"""The native engine against the plain-Python reference (``bidcore.reference``).

Hypothesis generates bidder configs and bid requests over shared vocabularies
(``bidcore.testing.bidder``) and asserts both make the same decision: the same imps bid, the same
campaign, creative and deal, prices equal to the micro, the same no-bid reasons, the same
response JSON, and per candidate the same exclusion or price. The models are LightGBM boosters:
the reference calls ``Booster.predict``, the engine its own evaluator.

Examples per run: the ``ci`` profile (default), or ``HYPOTHESIS_PROFILE=long`` for many more.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bidcore
from bidcore import models
from bidcore.config import Config
from bidcore.reference import RoleModel
from bidcore.testing.bidder import assert_same_decision, configs, requests, train_role_model

CORPUS = Path(__file__).parent / "fixtures" / "openrtb" / "requests.jsonl"
TIMES = [1_795_390_200.0, 1_780_000_000.5, 1_700_000_000.0]

settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=20_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


class _Trained(dict[str, tuple[RoleModel, models.Model]]):
    def __repr__(self) -> str:  # keeps Hypothesis' failure reports readable
        return "<trained ctr and cvr models>"


@pytest.fixture(scope="module")
def trained() -> dict[str, tuple[RoleModel, models.Model]]:
    bodies = [line for line in CORPUS.read_bytes().splitlines() if line.strip()][:1500]
    out = _Trained()
    for role, seed in (("ctr", 1), ("cvr", 2)):
        booster, spec = train_role_model(bodies, seed=seed)
        native = models.from_lightgbm(booster.model_to_string(), features=spec)
        out[role] = (RoleModel(predict=booster.predict, spec=spec), native)
    return out


def _native_models(trained: dict[str, tuple[RoleModel, models.Model]]) -> dict[str, models.Model]:
    return {role: pair[1] for role, pair in trained.items()}


def _reference_models(trained: dict[str, tuple[RoleModel, models.Model]]) -> dict[str, RoleModel]:
    return {role: pair[0] for role, pair in trained.items()}


@given(
    config=configs(),
    bodies=st.lists(requests(), min_size=1, max_size=4),
    now=st.sampled_from(TIMES),
)
def test_engine_and_reference_decide_alike(
    trained: dict[str, tuple[RoleModel, models.Model]],
    config: Config,
    bodies: list[bytes],
    now: float,
) -> None:
    engine = bidcore.Engine(config, models=_native_models(trained))
    for body in bodies:
        assert_same_decision(engine, config, _reference_models(trained), body, now)


@settings(max_examples=40)
@given(config=configs(), now=st.sampled_from(TIMES))
def test_engine_and_reference_decide_alike_on_the_corpus(
    trained: dict[str, tuple[RoleModel, models.Model]], config: Config, now: float
) -> None:
    engine = bidcore.Engine(config, models=_native_models(trained))
    lines = [line for line in CORPUS.read_bytes().splitlines() if line.strip()]
    for body in lines[:: max(1, len(lines) // 60)]:
        assert_same_decision(engine, config, _reference_models(trained), body, now)
