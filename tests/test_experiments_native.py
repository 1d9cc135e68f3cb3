"""The engine's experiment hashing (Rust, ``bidcore._core.experiment_bucket``) against the Python
reference (``bidcore.experiments.hashing``), GrowthBook's cross-language cases and bidcore's
published vectors: the same integer bucket for every id. Then the engine's whole assignment, as
it runs on every request, against ``assign_request``: the published request and id vectors, and
random requests (ids of any text, the privacy flags, the filters' fields)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bidcore
from bidcore import config as bidder_config
from bidcore._core import NativeEngine, experiment_bucket
from bidcore.decisionlog import DecisionRecord, decode
from bidcore.engine import plan as engine_plan
from bidcore.experiments import Experiments, Layer, assign_request, loads_layers, unit_key
from bidcore.experiments.hashing import bucket
from tests.test_experiments_assignment import RUN_SUPPORTED, _bucketing, _hash_value, _run_float

FIXTURES = Path(__file__).parent / "fixtures"


def _has_lone_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def test_growthbook_hash_cases() -> None:
    cases = json.loads((FIXTURES / "growthbook" / "cases.json").read_text())["hash"]
    ran = 0
    for seed, unit, version, expected in cases:
        if version not in (1, 2):
            continue  # GrowthBook's hash returns null for other versions
        buckets = 10000 if version == 2 else 1000
        assert experiment_bucket(seed, unit, version) / buckets == expected, (seed, unit)
        ran += 1
    assert ran >= 12


def test_bidcores_published_vectors() -> None:
    vectors = json.loads((FIXTURES / "assignment_vectors.json").read_text())["hash"]
    ran = 0
    for v in vectors:
        if _has_lone_surrogate(v["seed"] + v["id"]):
            # The native side never sees one: the request parser refuses lone surrogates.
            with pytest.raises(UnicodeEncodeError):
                experiment_bucket(v["seed"], v["id"], v["version"])
            continue
        assert experiment_bucket(v["seed"], v["id"], v["version"]) == v["bucket"], v
        ran += 1
    assert ran >= 100


# Text without lone surrogates (category Cs): what a Rust str, and the parser, can hold.
_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=64)


@settings(max_examples=500, deadline=None)
@given(seed=_TEXT, unit=_TEXT, version=st.sampled_from([1, 2]))
def test_native_and_python_agree_on_random_ids(seed: str, unit: str, version: int) -> None:
    assert experiment_bucket(seed, unit, version) == bucket(seed, unit, version)


def test_an_unknown_version_is_refused() -> None:
    with pytest.raises(ValueError, match="hash version"):
        experiment_bucket("s", "u", 3)


# The engine's assignment on the hot path (rust/bidcore-core/src/engine/arms.rs): whole requests,
# every layer, against `assign_request` on the published vectors' layers.

_CAMPAIGN = """
[[campaigns]]
id = "{id}"
goal = "cpm"
cpm = 1
max_bid = 2
[[campaigns.creatives]]
id = "cr1"
media = "banner"
w = 300
h = 250
adomain = ["a.example"]
"""


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "assignment_vectors.json").read_text())
    return data


# Beside the vectors' layers, the shapes the engine hashes by different paths: one experiment
# on part of a layer (v2 and v1), and experiments spanning their layers whole (hashed side by
# side, four at a time: more than four, so some are hashed alone; a non-ASCII seed; a v1 layer
# with filters).
_MORE_LAYERS = """
[[experiments.layers]]
name = "part-v2"
seed = "part-v2"
unit = ["device.ifa", "user.id"]
[[experiments.layers.experiments]]
key = "part-v2-x"
namespace = [0.2, 0.7]
coverage = 0.8
arms = [{name = "a"}, {name = "b"}, {name = "c"}]

[[experiments.layers]]
name = "part-v1"
seed = "part-v1"
hash_version = 1
[[experiments.layers.experiments]]
key = "part-v1-x"
namespace = [0.5, 1]
arms = [{name = "a", weight = 0.25}, {name = "b", weight = 0.75}]

[[experiments.layers]]
name = "whole-v2-a"
seed = "whole-v2-a"
[[experiments.layers.experiments]]
key = "whole-v2-a-x"
arms = [{name = "a"}, {name = "b"}, {name = "c"}]

[[experiments.layers]]
name = "whole-v2-b"
seed = "whole-v2-b"
unit = ["id"]
[[experiments.layers.experiments]]
key = "whole-v2-b-x"
coverage = 0.5
arms = [{name = "a"}, {name = "b"}]

[[experiments.layers]]
name = "whole-v2-c"
seed = "whole-v2-c-été"
unit = ["device.ifa"]
[[experiments.layers.experiments]]
key = "whole-v2-c-x"
arms = [{name = "a"}, {name = "b"}]

[[experiments.layers]]
name = "whole-v1"
seed = "whole-v1-\u00fc"
hash_version = 1
unit = ["user.buyeruid"]
[[experiments.layers.experiments]]
key = "whole-v1-x"
countries = ["FRA", "DEU"]
device_types = [1, 4]
arms = [{name = "a"}, {name = "b"}]
"""


@pytest.fixture(scope="module")
def layers(vectors: dict[str, Any]) -> tuple[Layer, ...]:
    published: tuple[Layer, ...] = msgspec.convert(vectors["layers"], tuple[Layer, ...])
    return published + loads_layers(_MORE_LAYERS)


@pytest.fixture(scope="module")
def engine(layers: tuple[Layer, ...]) -> bidcore.Engine:
    # Every campaign an experiment names exists (the config refuses unknown ones).
    named = {c for layer in layers for e in layer.experiments for c in e.campaigns}
    text = "".join(_CAMPAIGN.format(id=c) for c in sorted(named | {"c1"}))
    config = msgspec.structs.replace(
        bidder_config.loads(text), experiments=Experiments(layers=layers)
    )
    return bidcore.Engine(config, log=bidcore.DecisionLog(4096))


def _expected(body: bytes, layers: tuple[Layer, ...]) -> dict[str, str]:
    found = assign_request(body, layers).values()
    return {a.experiment: a.arm for a in found if a.arm is not None}


def test_the_engine_assigns_the_published_requests(
    engine: bidcore.Engine, vectors: dict[str, Any]
) -> None:
    published = {e["key"] for layer in vectors["layers"] for e in layer["experiments"]}
    for case in vectors["requests"]:
        body = json.dumps(case["request"]).encode()
        expected = {
            a["experiment"]: a["arm"] for a in case["assignments"].values() if a["in_experiment"]
        }
        arms = engine.explain(body)["arms"]
        assert {k: v for k, v in arms.items() if k in published} == expected, case


def test_the_engine_assigns_the_published_ids(
    engine: bidcore.Engine, vectors: dict[str, Any], layers: tuple[Layer, ...]
) -> None:
    experiments = {layer.name: {e.key for e in layer.experiments} for layer in layers}
    ran = 0
    for case in vectors["assign"]:
        unit = case["id"] if isinstance(case["id"], str) else str(case["id"])
        if not unit or _has_lone_surrogate(unit):
            continue  # no unit (the request id decides then), or one no request can carry
        device: dict[str, Any] = {}
        if case["country"] is not None:
            device["geo"] = {"country": case["country"]}
        if case["device_type"] is not None:
            device["devicetype"] = case["device_type"]
        # Every layer's first source is user.id or user.buyeruid: both carry the id.
        request = {
            "id": "r",
            "imp": [{"id": "1", "banner": {"w": 300, "h": 250}}],
            "user": {"id": unit, "buyeruid": unit},
            "device": device,
        }
        arms = engine.explain(json.dumps(request).encode())["arms"]
        mine = {k: v for k, v in arms.items() if k in experiments[case["layer"]]}
        a = case["assignment"]
        expected = {a["experiment"]: a["arm"]} if a is not None and a["in_experiment"] else {}
        assert mine == expected, case
        ran += 1
    assert ran >= 50


_UNIT = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40),
    st.sampled_from(["user-1", "😀", "日本語のユーザー", "café", "a" * 300]),
)


@settings(max_examples=300, deadline=None)
@given(
    user_id=st.none() | _UNIT,
    buyeruid=st.none() | _UNIT,
    ifa=st.none() | _UNIT,
    request_id=_UNIT,
    country=st.none() | st.sampled_from(["FRA", "fra", "DEU", "USA", "Fra"]),
    device_type=st.none() | st.sampled_from([1, 2, 4, 5]),
    lmt=st.booleans(),
    gdpr_without_consent=st.booleans(),
)
def test_native_and_python_assign_random_requests_alike(
    engine: bidcore.Engine,
    layers: tuple[Layer, ...],
    user_id: str | None,
    buyeruid: str | None,
    ifa: str | None,
    request_id: str,
    country: str | None,
    device_type: int | None,
    lmt: bool,
    gdpr_without_consent: bool,
) -> None:
    user = {k: v for k, v in (("id", user_id), ("buyeruid", buyeruid)) if v is not None}
    device: dict[str, Any] = {"lmt": int(lmt)}
    if ifa is not None:
        device["ifa"] = ifa
    if country is not None:
        device["geo"] = {"country": country}
    if device_type is not None:
        device["devicetype"] = device_type
    request: dict[str, Any] = {
        "id": request_id,
        "imp": [{"id": "1", "banner": {"w": 300, "h": 250}}],
        "user": user,
        "device": device,
        "regs": {"gdpr": int(gdpr_without_consent)},
    }
    body = json.dumps(request).encode()
    expected = _expected(body, layers)
    assert engine.explain(body)["arms"] == expected
    # The decision log's units: each experiment's unit key, of the unit the layer used.
    engine.bid(body)
    assert engine.log is not None
    (line,) = engine.log.drain(10, "json")
    record = decode(line)
    assert isinstance(record, DecisionRecord)
    assert record.arms == expected
    found = assign_request(body, layers).values()
    assert record.units == {a.experiment: unit_key(a.unit) for a in found if a.arm is not None}


# GrowthBook's `run` cases through the engine: each case's experiment as a native layer plan
# (GrowthBook's seed, namespace and ranges, exactly), its hash attribute as the user id.


def _native_layer(experiment: dict[str, Any]) -> dict[str, Any]:
    bucketing = _bucketing(experiment)
    namespace = bucketing.namespace
    return {
        "name": "growthbook",
        # The namespace hash is fnv(unit + "__" + seed): GrowthBook's namespace name is the seed.
        "seed": namespace[0] if namespace is not None else "no-namespace",
        "hash_version": bucketing.hash_version,
        "unit": ["user.id"],
        "experiments": [
            {
                "key": "case",
                "seed": bucketing.seed,
                "namespace": [0, 1000] if namespace is None else [namespace[1], namespace[2]],
                "ranges": [list(r) for r in bucketing.ranges],
                "arms": [{"name": f"v{i}"} for i in range(len(bucketing.ranges))],
            }
        ],
    }


def test_growthbooks_run_cases_through_the_engine() -> None:
    plan = engine_plan(bidder_config.loads(_CAMPAIGN.format(id="c1")))
    ran = 0
    for name, context, experiment, *_ in RUN_SUPPORTED:
        unit = _hash_value(context, experiment)
        if len(experiment["variations"]) < 2 or not unit:
            continue  # no experiment, or no unit: the engine would fall back to the request id
        native = NativeEngine(json.dumps({**plan, "experiments": [_native_layer(experiment)]}), {})
        request: dict[str, Any] = {
            "id": "r",
            "imp": [{"id": "1", "banner": {"w": 300, "h": 250}}],
            "user": {"id": unit},
        }
        arms = native.explain(json.dumps(request).encode())["arms"]
        variation = _run_float(context, experiment)
        assert arms == ({} if variation < 0 else {"case": f"v{variation}"}), name
        ran += 1
    assert ran >= 40
