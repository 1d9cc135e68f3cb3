"""``bidcore.experiments`` assignment (``hashing.py``, ``assignment.py``): GrowthBook's
cross-language cases, the official GrowthBook Python SDK as a second oracle, bidcore's own
published vectors, integer buckets against GrowthBook's float formulation, unit ids, config
errors with their key paths, and properties (coverage only adds units; arm shares over 10^6 ids).

``python tests/test_experiments_assignment.py`` rewrites ``fixtures/assignment_vectors.json``
from :func:`generate_vectors`; ``test_vectors_file_is_current`` fails whenever the
implementation and the committed file disagree.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import random
import string
import sys
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import growthbook
import growthbook.core
import msgspec
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bidcore.errors import ConfigError, InvalidRequestError
from bidcore.experiments import (
    UNIT_SOURCES,
    Arm,
    Experiment,
    Layer,
    arm_seed,
    assign,
    assign_request,
    growthbook_experiment,
    loads_layers,
    unit_id,
    unit_text,
)
from bidcore.experiments.hashing import (
    BUCKETS,
    Bucketing,
    bucket,
    bucket_ranges,
    choose_variation,
    equal_weights,
    fnv1a32,
    hash,
    in_namespace,
    integer_bound,
    namespace_bucket,
    utf16_units,
)
from bidcore.parsing import inspect_request

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CASES: dict[str, Any] = json.loads((FIXTURES / "growthbook" / "cases.json").read_text("utf-8"))
VECTORS = FIXTURES / "assignment_vectors.json"


# --- GrowthBook's cross-language cases --------------------------------------------------------


def _floor8(values: Sequence[float]) -> list[float]:
    # GrowthBook's own json.test.ts compares ranges and weights floored to 1e-8.
    return [math.floor(v * 1e8) / 1e8 for v in values]


@pytest.mark.parametrize(("seed", "unit", "version", "expected"), CASES["hash"])
def test_growthbook_hash(seed: str, unit: str, version: int, expected: float | None) -> None:
    assert hash(seed, unit, version) == expected
    if expected is None:
        with pytest.raises(ValueError, match="unknown hash version"):
            bucket(seed, unit, version)
    else:
        assert bucket(seed, unit, version) / BUCKETS[version] == expected


@pytest.mark.parametrize(("name", "args", "expected"), CASES["getBucketRange"])
def test_growthbook_bucket_ranges(name: str, args: list[Any], expected: list[list[float]]) -> None:
    variations, coverage, weights = args
    got = bucket_ranges(variations, coverage, weights)
    assert [_floor8(r) for r in got] == [_floor8(r) for r in expected]
    # The integer ranges hold exactly the buckets the float ranges hold, for both versions.
    for version, buckets in BUCKETS.items():
        b = Bucketing.build(
            seed="s",
            hash_version=version,
            variations=variations,
            coverage=coverage,
            weights=weights,
        )
        for k in range(buckets):
            assert b.variation(k) == choose_variation(k / buckets, got)


@pytest.mark.parametrize(("name", "n", "ranges", "expected"), CASES["chooseVariation"])
def test_growthbook_choose_variation(
    name: str, n: float, ranges: list[list[float]], expected: int
) -> None:
    assert choose_variation(n, [(lo, hi) for lo, hi in ranges]) == expected
    k = round(n * 10000)
    assert k / 10000 == n  # every case's n is a v2 hash value
    pairs = [(lo, hi) for lo, hi in ranges]
    b = Bucketing.build(seed="s", hash_version=2, variations=len(pairs), ranges=pairs)
    assert b.variation(k) == expected


@pytest.mark.parametrize(("name", "unit", "namespace", "expected"), CASES["inNamespace"])
def test_growthbook_in_namespace(
    name: str, unit: str, namespace: list[Any], expected: bool
) -> None:
    space = (namespace[0], namespace[1], namespace[2])
    assert in_namespace(unit, space) is expected
    b = Bucketing.build(seed="s", hash_version=2, variations=2, namespace=space)
    assert b.in_namespace(unit) is expected


@pytest.mark.parametrize(("variations", "expected"), CASES["getEqualWeights"])
def test_growthbook_equal_weights(variations: int, expected: list[float]) -> None:
    assert _floor8(equal_weights(variations)) == _floor8(expected)


def _unsupported(case: list[Any]) -> str | None:
    """Why a ``run`` case is not run here, or ``None``: each needs a GrowthBook feature bidcore's
    assignment does not have (none of them touches hashing or ranges)."""
    _, context, experiment, *_ = case
    if {"condition", "parentConditions"} & experiment.keys() or "savedGroups" in context:
        return "GrowthBook's condition language / prerequisite features (bidcore filters are lists)"
    if "force" in experiment or {"forcedVariations", "qaMode"} & context.keys():
        return "forced variations and QA mode: bidcore never forces an arm"
    if "url" in context:
        return "query-string overrides from the page URL: a browser feature"
    if context.get("enabled") is False:
        return "a disabled GrowthBook context: a bidder without experiments has no layers"
    if experiment.get("active") is False:
        return "inactive experiments: bidcore removes an experiment from its layer instead"
    if "filters" in experiment:
        return "GrowthBook's hash filters: bidcore layers make experiments exclusive by namespace"
    return None


RUN_CASES = [
    pytest.param(*case, id=case[0], marks=[pytest.mark.skip(reason=reason)] if reason else [])
    for case in CASES["run"]
    for reason in [_unsupported(case)]
]
RUN_SUPPORTED = [case for case in CASES["run"] if _unsupported(case) is None]


def _hash_value(context: dict[str, Any], experiment: dict[str, Any]) -> str:
    value = context.get("attributes", {}).get(experiment.get("hashAttribute") or "id")
    return value if isinstance(value, str) else ""


def _bucketing(experiment: dict[str, Any]) -> Bucketing:
    # GrowthBook's run: seed defaults to the key, hash version to 1, coverage to 1; explicit
    # ranges win over coverage and weights.
    return Bucketing.build(
        seed=experiment.get("seed") or experiment["key"],
        hash_version=experiment.get("hashVersion") or 1,
        variations=len(experiment["variations"]),
        coverage=experiment.get("coverage", 1),
        weights=experiment.get("weights"),
        ranges=experiment.get("ranges"),
        namespace=experiment.get("namespace"),
    )


def _run_float(context: dict[str, Any], experiment: dict[str, Any]) -> int:
    """GrowthBook's float formulation of the same steps: the variation, -1 when not in it."""
    unit = _hash_value(context, experiment)
    variations = len(experiment["variations"])
    namespace = experiment.get("namespace")
    if variations < 2 or not unit or (namespace and not in_namespace(unit, tuple(namespace))):
        return -1
    n = hash(experiment.get("seed") or experiment["key"], unit, experiment.get("hashVersion") or 1)
    assert n is not None
    ranges = experiment.get("ranges") or bucket_ranges(
        variations, experiment.get("coverage", 1), experiment.get("weights")
    )
    return choose_variation(n, ranges)


@pytest.mark.parametrize(
    ("name", "context", "experiment", "value", "in_experiment", "hash_used"), RUN_CASES
)
def test_growthbook_run(
    name: str,
    context: dict[str, Any],
    experiment: dict[str, Any],
    value: Any,
    in_experiment: bool,
    hash_used: bool,
) -> None:
    variations = experiment["variations"]
    chosen = None
    if len(variations) >= 2:  # GrowthBook runs no experiment of fewer than two variations
        chosen = _bucketing(experiment).choose(_hash_value(context, experiment))
    variation = -1 if chosen is None else chosen[0]
    got_in = variation >= 0
    assert (variations[variation if got_in else 0], got_in, got_in) == (
        value,
        in_experiment,
        hash_used,
    )
    assert _run_float(context, experiment) == variation


def test_growthbook_case_counts() -> None:
    """How many GrowthBook cases run, per section (every case of the five sections; the
    ``run`` cases that need no feature bidcore lacks)."""
    counts = {
        section: len(CASES[section])
        for section in (
            "hash",
            "getBucketRange",
            "chooseVariation",
            "inNamespace",
            "getEqualWeights",
        )
    }
    assert counts == {
        "hash": 15,
        "getBucketRange": 13,
        "chooseVariation": 13,
        "inNamespace": 16,
        "getEqualWeights": 6,
    }
    assert len(RUN_SUPPORTED) >= 54
    assert len(CASES["run"]) - len(RUN_SUPPORTED) <= 19


# --- integer buckets against GrowthBook's floats ----------------------------------------------


def _case_bounds() -> Iterator[float]:
    """Every float range bound the GrowthBook cases hold or produce."""
    for _, (variations, coverage, weights), expected in CASES["getBucketRange"]:
        for lo, hi in [*expected, *bucket_ranges(variations, coverage, weights)]:
            yield from (lo, hi)
    for _, n, ranges, _ in CASES["chooseVariation"]:
        yield n
        for lo, hi in ranges:
            yield from (lo, hi)
    for _, _, (_, lo, hi), _ in CASES["inNamespace"]:
        yield from (lo, hi)
    for _, _, experiment, *_ in CASES["run"]:
        variations = len(experiment["variations"])
        for lo, hi in experiment.get("ranges") or bucket_ranges(
            variations, experiment.get("coverage", 1), experiment.get("weights")
        ):
            yield from (lo, hi)
        if experiment.get("namespace"):
            yield from experiment["namespace"][1:]


def test_integer_bounds_agree_with_floats_on_every_bucket() -> None:
    """For each bound of the case set, random ones and ones a double away from a bucket's
    value, ``k >= integer_bound(x)`` exactly when ``k / D >= x``, for every bucket ``k`` of
    both hash versions (all 11,000 of them)."""
    rng = random.Random(6)
    bounds = {*_case_bounds(), 0.1 + 0.2, 1 - 1e-16, 0.9999, 0.99995, 5e-5, -0.0}
    bounds |= {rng.random() for _ in range(1000)}
    bounds |= {round(rng.random(), rng.randint(1, 5)) for _ in range(1000)}
    for k in range(0, 10001, 97):  # on a bucket's value, and one double either side of it
        bounds |= {k / 10000, math.nextafter(k / 10000, -1), math.nextafter(k / 10000, 2)}
    assert len(bounds) > 1900
    for buckets in BUCKETS.values():
        every = np.arange(buckets)
        for x in bounds:
            assert np.array_equal(every / buckets >= x, every >= integer_bound(x, buckets)), x


@settings(max_examples=200, deadline=None)
@given(x=st.floats(-2, 2), buckets=st.sampled_from(sorted(BUCKETS.values())))
def test_integer_bound_is_the_first_bucket_at_or_above(x: float, buckets: int) -> None:
    # With k / D non-decreasing in k, these two facts make the integer test exact for all k.
    b = integer_bound(x, buckets)
    assert 0 <= b <= buckets
    assert b == buckets or b / buckets >= x
    assert b == 0 or (b - 1) / buckets < x


# --- unit ids for the hash oracles --------------------------------------------------------------

ACCENTS = "àáâäãåçèéêëìíîïñòóôöõøùúûüýÿßÀÉÎÕÜŁłŒœ"
CJK = "的一是不了人我在有他这中大来上国个到说们日本語のユーザー사용자"
EMOJI = "😀😂🥳🤖👍🏽🚀🎉🦄🍕🧪👩‍👩‍👧‍👦🇫🇷"  # outside the BMP, with ZWJ sequences and flags

ids_ascii = st.text(alphabet=string.printable, max_size=40)
ids_accents = st.text(alphabet=string.ascii_letters + ACCENTS, max_size=40)
ids_cjk = st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), max_size=20)
ids_emoji = st.text(
    alphabet=st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF), max_size=20
)
# Any code point, lone surrogates included (as json.loads makes them from "\ud800").
ids_any = st.lists(st.integers(0, 0x10FFFF), max_size=20).map(lambda cps: "".join(map(chr, cps)))
unit_ids = st.one_of(ids_ascii, ids_accents, ids_cjk, ids_emoji, st.text(max_size=30), ids_any)


def _random_id(rng: random.Random) -> str:
    alphabet = rng.choice(
        [
            string.ascii_letters + string.digits + "-_",
            ACCENTS + "abc",
            CJK,
            EMOJI,
            ACCENTS + CJK + EMOJI,
        ]
    )
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 36)))


# --- the official GrowthBook Python SDK as a second oracle ------------------------------------


def test_sdk_is_the_pinned_version() -> None:
    # The SDK hashes UTF-16 code units from 4.0 (earlier versions hashed code points).
    pinned = (Path(__file__).resolve().parent.parent / "requirements" / "dev.txt").read_text()
    assert f"\ngrowthbook=={importlib.metadata.version('growthbook')}" in pinned
    assert growthbook.core.fnv1a32("😀") == fnv1a32("😀")


@settings(max_examples=200, deadline=None)
@given(seed=unit_ids, unit=unit_ids)
def test_sdk_same_hash(seed: str, unit: str) -> None:
    assert fnv1a32(seed + unit) == growthbook.core.fnv1a32(seed + unit)
    for version in (1, 2):
        assert hash(seed, unit, version) == growthbook.core.gbhash(seed, unit, version)
    for start, end in ((0.0, 0.4), (0.4, 1.0), (0.25, 0.75)):
        assert in_namespace(unit, (seed, start, end)) is growthbook.core.inNamespace(
            unit, (seed, start, end)
        )


def _sdk_arm(
    gb: growthbook.GrowthBook, layer: Layer, key: str, attributes: dict[str, Any]
) -> tuple[bool, int, float | None]:
    gb.set_attributes(attributes)
    result = gb.run(growthbook.Experiment(**growthbook_experiment(layer, key)))
    return result.inExperiment, result.variationId, result.bucket


def _check_against_sdk(
    gb: growthbook.GrowthBook,
    layer: Layer,
    unit: str,
    country: str | None = None,
    device_type: int | None = None,
) -> None:
    ours = assign(unit, layer, country=country, device_type=device_type)
    attributes: dict[str, Any] = {"id": unit}
    if country is not None:
        attributes["country"] = country
    if device_type is not None:
        attributes["device_type"] = device_type
    for experiment in layer.experiments:
        in_experiment, variation, bucket_float = _sdk_arm(gb, layer, experiment.key, attributes)
        mine = ours is not None and ours.experiment == experiment.key and ours.in_experiment
        assert in_experiment is mine, (unit, experiment.key, ours)
        if mine:
            assert ours is not None
            assert (variation, bucket_float) == (ours.variation, ours.bucket)
            assert experiment.arms[variation].name == ours.arm


# Built once: strategies made inside a composite's draw cost Hypothesis time on every example.
_CUTS = {
    n: st.lists(st.integers(0, 1000), min_size=2 * n, max_size=2 * n, unique=True)
    for n in (1, 2, 3)
}
_RAW_WEIGHTS = {n: st.lists(st.integers(0, 100), min_size=n, max_size=n) for n in (2, 3, 4)}
_COVERAGES = st.sampled_from([0.0, 0.01, 0.3, 0.5, 0.99, 1.0]) | st.floats(0, 1)
_SEEDS = st.one_of(ids_ascii, ids_accents, ids_emoji, ids_any).filter(bool)


@st.composite
def layers(draw: st.DrawFn, *, filters: bool = False) -> Layer:
    """A valid layer: 1-3 experiments on disjoint namespaces (or one on the whole layer),
    2-4 arms with weights summing to 1 (or equal), any coverage, either hash version."""
    count = draw(st.integers(1, 3))
    bounds = sorted(draw(_CUTS[count]))  # strictly increasing: non-empty, disjoint namespaces
    experiments = []
    for i in range(count):
        lo, hi = bounds[2 * i], bounds[2 * i + 1]
        raw = draw(_RAW_WEIGHTS[draw(st.integers(2, 4))])
        total = sum(raw)
        weights = [r / total for r in raw] if total else [None] * len(raw)
        experiments.append(
            Experiment(
                key=f"e{i}",
                arms=tuple(Arm(name=f"a{j}", weight=w) for j, w in enumerate(weights)),
                coverage=draw(_COVERAGES),
                namespace=None if count == 1 and draw(st.booleans()) else (lo / 1000, hi / 1000),
                bucket_version=draw(st.integers(1, 3)),
                countries=("FRA", "DEU") if filters and draw(st.booleans()) else (),
                device_types=(1, 4) if filters and draw(st.booleans()) else (),
            )
        )
    return Layer(
        name="layer",
        seed=draw(_SEEDS),
        hash_version=draw(st.sampled_from([1, 2])),
        experiments=tuple(experiments),
    )


@settings(max_examples=200, deadline=None)
@given(
    layer=layers(filters=True), units=st.lists(unit_ids, min_size=1, max_size=10), data=st.data()
)
def test_sdk_same_arm_random_layers(layer: Layer, units: list[str], data: st.DataObject) -> None:
    gb = growthbook.GrowthBook()
    for unit in units:
        country = data.draw(st.sampled_from([None, "FRA", "DEU", "USA"]))
        device_type = data.draw(st.sampled_from([None, 1, 4, 5]))
        _check_against_sdk(gb, layer, unit, country, device_type)


def test_sdk_same_arm_many_random_ids() -> None:
    """5,000 random ids (ASCII, accents, CJK, emoji outside the BMP) through a three-way split
    with a namespace, a 50/50 v1 layer at 0.3 coverage, and a 10/90 whole-layer split."""
    rng = random.Random(2026)
    gb = growthbook.GrowthBook()
    tested = [
        Layer(
            name="three",
            seed="models-2026",
            experiments=(
                Experiment(
                    key="three-way",
                    namespace=(0.1, 0.8),
                    coverage=0.9,
                    arms=(
                        Arm(name="a", weight=0.2),
                        Arm(name="b", weight=0.3),
                        Arm(name="c", weight=0.5),
                    ),
                ),
            ),
        ),
        Layer(
            name="v1",
            seed="legacy",
            hash_version=1,
            experiments=(
                Experiment(key="half", coverage=0.3, arms=(Arm(name="a"), Arm(name="b"))),
            ),
        ),
        Layer(
            name="skew",
            seed="skew",
            experiments=(
                Experiment(key="skew", arms=(Arm(name="a", weight=0.1), Arm(name="b", weight=0.9))),
            ),
        ),
    ]
    arms: dict[str | None, int] = {}
    for _ in range(5000):
        unit = _random_id(rng)
        assert hash("seed", unit, 2) == growthbook.core.gbhash("seed", unit, 2)
        for layer in tested:
            _check_against_sdk(gb, layer, unit)
            found = assign(unit, layer)
            arms[found.arm if found else None] = arms.get(found.arm if found else None, 0) + 1
    assert set(arms) == {"a", "b", "c", None}  # every outcome reached


# --- lone surrogates -------------------------------------------------------------------------


def test_lone_surrogate_rule() -> None:
    """A lone surrogate from JSON's "\\ud800" is a Python str holding U+D800; it is hashed as
    the single UTF-16 code unit 0xD800, as JavaScript hashes the same JSON string."""
    unit = json.loads('"\\ud800x"')
    assert [ord(c) for c in unit] == [0xD800, ord("x")]
    assert list(utf16_units(unit)) == [0xD800, 0x78]
    by_hand = 0x811C9DC5
    for code_unit in (0xD800, 0x78):
        by_hand = ((by_hand ^ code_unit) * 0x01000193) % 2**32
    assert fnv1a32(unit) == by_hand == growthbook.core.fnv1a32(unit)
    # A pair written as two lone surrogates is the same UTF-16 text as the character itself.
    assert json.loads('"\\ud83d\\ude00"') == "😀"
    assert bucket("s", "\ud83d\ude00", 2) == bucket("s", "😀", 2)
    assert list(utf16_units("\ude00\ud83d")) == [0xDE00, 0xD83D]
    layer = VECTOR_LAYERS[0]
    found = assign(unit, layer)
    gb = growthbook.GrowthBook()
    _check_against_sdk(gb, layer, unit)
    # In a view decoded by Python's json, the same rule applies...
    view = json.loads('{"id": "r1", "user": {"id": "\\ud800x"}}')
    assert assign_request(view, [layer]).get(layer.name) == (
        None if found is None else msgspec.structs.replace(found, unit_source="user.id")
    )
    # ...while a request body is refused by bidcore's parser, as by the native engine.
    body = b'{"id":"r1","imp":[{"id":"1","banner":{}}],"user":{"id":"\\ud800x"}}'
    with pytest.raises(InvalidRequestError, match="lone high surrogate"):
        assign_request(body, [layer])


# --- unit ids ---------------------------------------------------------------------------------


def test_unit_text() -> None:
    assert unit_text("u") == "u"
    assert unit_text(" ") == " "  # not stripped
    assert unit_text(0) == "0"
    assert unit_text(-42) == "-42"
    assert unit_text(2**64 + 1) == "18446744073709551617"  # every digit, unlike a double
    absent_values: tuple[object, ...] = ("", None, 1.0, 1.5, True, False, [], {}, ["u"])
    for absent in absent_values:
        assert unit_text(absent) is None
    assert assign(123, VECTOR_LAYERS[0]) == assign("123", VECTOR_LAYERS[0])
    assert assign("", VECTOR_LAYERS[0]) is None
    with pytest.raises(TypeError, match="str or an int"):
        assign(True, VECTOR_LAYERS[0])
    with pytest.raises(TypeError, match="str or an int"):
        assign(1.5, VECTOR_LAYERS[0])  # type: ignore[arg-type]


def test_unit_id_order_and_fallbacks() -> None:
    full = {
        "id": "r1",
        "user": {"id": "u1", "buyeruid": "b1"},
        "device": {"ifa": "i1"},
    }
    assert unit_id(full) == ("u1", "user.id")
    assert UNIT_SOURCES == ("user.id", "user.buyeruid", "device.ifa", "id")
    assert unit_id({**full, "user": {"id": "", "buyeruid": "b1"}}) == ("b1", "user.buyeruid")
    assert unit_id({**full, "user": {}}) == ("i1", "device.ifa")
    assert unit_id({"id": "r1", "user": None, "device": {"ifa": ""}}) == ("r1", "id")
    assert unit_id(full, ["device.ifa", "user.id"]) == ("i1", "device.ifa")
    assert unit_id(full, ["user.buyeruid"]) == ("b1", "user.buyeruid")
    assert unit_id({"id": "r1"}, ["user.id"]) == ("r1", "id")  # the request id ends every list
    assert unit_id({"id": "", "user": {}}) is None
    assert unit_id({}) is None
    assert unit_id({**full, "user": {"id": 7}}) == ("7", "user.id")
    assert unit_id({**full, "user": {"id": 7.5, "buyeruid": True}}) == ("i1", "device.ifa")


@pytest.mark.parametrize(
    "privacy",
    [
        {"device": {"ifa": "i1", "lmt": 1}},
        {"regs": {"coppa": 1}},
        {"regs": {"gdpr": 1}},
        {"regs": {"gdpr": 1}, "user": {"id": "u1", "consent": ""}},
    ],
)
def test_unit_id_without_personal_data_is_the_request_id(privacy: dict[str, Any]) -> None:
    view: dict[str, Any] = {
        "id": "r1",
        "user": {"id": "u1", "buyeruid": "b1"},
        "device": {"ifa": "i1"},
    }
    for key, value in privacy.items():
        view[key] = {**view.get(key, {}), **value}
    assert unit_id(view) == ("r1", "id")
    assert unit_id(view, personal=True) == ("u1", "user.id")
    consented = {**view, "regs": {"gdpr": 1}, "user": {"id": "u1", "consent": "CO-abc"}}
    if "lmt" not in json.dumps(privacy) and "coppa" not in json.dumps(privacy):
        assert unit_id(consented) == ("u1", "user.id")


def test_assign_request_body_and_view_agree() -> None:
    body = json.dumps(
        {
            "id": "req-9",
            "imp": [{"id": "1", "banner": {"w": 300, "h": 250}}],
            "user": {"buyeruid": "buyer-77"},
            "device": {
                "ifa": "6D92078A-8246-4BA4-AE5B-76104861E7DC",
                "devicetype": 4,
                "geo": {"country": "fra"},
            },
        }
    ).encode()
    by_body = assign_request(body, VECTOR_LAYERS)
    assert by_body == assign_request(inspect_request(body), VECTOR_LAYERS)
    for layer in VECTOR_LAYERS:
        source = unit_id(inspect_request(body), layer.unit)
        assert source is not None
        expected = assign(source[0], layer, country="FRA", device_type=4, unit_source=source[1])
        assert by_body.get(layer.name) == expected
    assert by_body["models"].unit_source == "device.ifa"  # its unit skips user.buyeruid


def test_filters() -> None:
    layer = Layer(
        name="geo",
        seed="geo",
        experiments=(
            Experiment(
                key="geo",
                countries=("FRA",),
                device_types=(4,),
                campaigns=("c1",),
                arms=(Arm(name="a"), Arm(name="b")),
            ),
        ),
    )
    unit = "user-1"
    found = assign(unit, layer, country="fra", device_type=4)
    assert found is not None
    assert found.in_experiment
    assert found.applies_to("c1")
    assert not found.applies_to("c2")
    assert assign(unit, layer, country="USA", device_type=4) is None
    assert assign(unit, layer, device_type=4) is None  # missing never matches a list
    assert assign(unit, layer, country="FRA", device_type=5) is None
    assert assign(unit, layer, country="FRA") is None
    assert assign(unit, msgspec.structs.replace(layer, experiments=())) is None
    open_layer = msgspec.structs.replace(
        layer, experiments=(msgspec.structs.replace(layer.experiments[0], campaigns=()),)
    )
    everywhere = assign(unit, open_layer, country="FRA", device_type=4)
    assert everywhere is not None
    assert everywhere.applies_to("any")


def test_layers_built_in_python() -> None:
    """Structs built with lists (not tuples, as decoding makes them) still assign the same; a
    request that is neither bytes nor a view is refused."""
    layer = VECTOR_LAYERS[0]
    listed = Layer(
        name=layer.name,
        seed=layer.seed,
        unit=list(layer.unit),  # type: ignore[arg-type]
        experiments=[  # type: ignore[arg-type]
            msgspec.structs.replace(e, arms=list(e.arms)) for e in layer.experiments
        ],
    )
    for unit in ("a", "b", "c", "user-42", "😀"):
        assert assign(unit, listed) == assign(unit, layer)
    with pytest.raises(TypeError, match="bytes or a mapping"):
        assign_request('{"id": "r1"}', [layer])  # type: ignore[arg-type]


def test_namespaces_make_experiments_exclusive() -> None:
    """Each unit falls in at most one experiment of a layer; the experiments' shares follow
    their namespaces; another layer's assignment is independent of this one's."""
    layer, other = VECTOR_LAYERS[0], VECTOR_LAYERS[1]
    rng = random.Random(1)
    counts: dict[tuple[str | None, str | None], int] = {}
    for _ in range(20000):
        unit = f"{rng.getrandbits(64):016x}"
        first, second = assign(unit, layer), assign(unit, other)
        key = (first.experiment if first else None, second.arm if second else None)
        counts[key] = counts.get(key, 0) + 1
    # The namespaces give 60%, 30% and 10% (none); the other layer's 50% coverage of a 50/50
    # split gives 25%, 25% and 50% (none). Independent layers: each cell is the product.
    observed, expected = [], []
    for experiment, share in (("ctr-v7", 0.6), ("cvr-v3", 0.3), (None, 0.1)):
        for arm, other_share in (("on", 0.25), ("off", 0.25), (None, 0.5)):
            observed.append(counts.get((experiment, arm), 0))
            expected.append(share * other_share)
    _assert_sampled(observed, expected)


def _assert_sampled(observed: Sequence[int], probabilities: Sequence[float]) -> None:
    """Multinomial counts against their probabilities: every count within 5 sigma, and the
    chi-square statistic under its 1 - 3e-7 quantile (Wilson-Hilferty, z = 5). A category of
    probability 0 must stay empty."""
    total = sum(observed)
    statistic, categories = 0.0, 0
    for count, p in zip(observed, probabilities, strict=True):
        if p <= 0:
            assert count == 0, (observed, probabilities)
            continue
        categories += 1
        mean = total * p
        assert abs(count - mean) <= 5 * math.sqrt(mean * (1 - p)) + 1e-9, (observed, probabilities)
        statistic += (count - mean) ** 2 / mean
    df = categories - 1
    if df > 0:
        quantile = df * (1 - 2 / (9 * df) + 5 * math.sqrt(2 / (9 * df))) ** 3
        assert statistic <= quantile, (statistic, quantile, observed, probabilities)


# --- config -----------------------------------------------------------------------------------

LAYER_TOML = """
[bidder]
seat = "ignored here"

[[experiments.layers]]
name = "models"
seed = "models-2026"
unit = ["user.id", "device.ifa"]

[[experiments.layers.experiments]]
key = "ctr-v7"
namespace = [0, 0.6]
coverage = 0.8
countries = ["FRA"]
arms = [
    {name = "control", weight = 0.2},
    {name = "ctr-v7", weight = 0.3},
    {name = "ctr-v8", weight = 0.5},
]

[[experiments.layers.experiments]]
key = "cvr-v3"
namespace = [0.6, 0.9]
bucket_version = 2
arms = [{name = "control"}, {name = "cvr-v3"}]
"""


def test_config_reads_the_experiments_table() -> None:
    layers_read = loads_layers(LAYER_TOML)
    assert len(layers_read) == 1
    layer = layers_read[0]
    assert (layer.hash_version, layer.unit) == (2, ("user.id", "device.ifa"))
    assert layer.experiments[1].weights == (0.5, 0.5)
    assert arm_seed(layer, layer.experiments[1]) == "models-2026:cvr-v3:2"
    as_json = msgspec.json.encode({"experiments": {"layers": [layer]}})
    assert loads_layers(as_json, format="json") == layers_read
    assert loads_layers("[bidder]\nseat = 's'\n") == ()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("coverage = 0.8", "coverage = 1.2"),
            "experiments.layers[0].experiments[0]: coverage must be in [0, 1]",
        ),
        (
            ('{name = "ctr-v8", weight = 0.5}', '{name = "ctr-v8", weight = 0.4}'),
            "experiments.layers[0].experiments[0]: arms: weights sum to 0.9",
        ),
        (
            (
                '{name = "control"}, {name = "cvr-v3"}',
                '{name = "control", weight = 1}, {name = "cvr-v3"}',
            ),
            "experiments.layers[0].experiments[1]: arms: give every arm a weight, or none",
        ),
        (
            ('{name = "control"}, {name = "cvr-v3"}', '{name = "control"}'),
            "experiments.layers[0].experiments[1]: arms: an experiment needs at least two arms",
        ),
        (
            ('{name = "control"}, {name = "cvr-v3"}', '{name = "x"}, {name = "x"}'),
            "arms: names must be unique, repeated: ['x']",
        ),
        (
            ("namespace = [0.6, 0.9]", "namespace = [0.5, 0.9]"),
            "experiments.layers[0]: experiments: the namespaces of 'ctr-v7' [0.0, 0.6] and "
            "'cvr-v3' [0.5, 0.9] overlap",
        ),
        (
            ("namespace = [0.6, 0.9]", "namespace = [0.9, 0.6]"),
            "namespace must be [start, end) with 0 <= start < end <= 1",
        ),
        (
            ("namespace = [0.6, 0.9]", "namespace = [0.6]"),
            "experiments.layers[0].experiments[1].namespace: Expected `array` of length 2",
        ),
        (
            ("namespace = [0.6, 0.9]\n", ""),
            "'cvr-v3' has no namespace (the whole layer) but shares the layer",
        ),
        (
            ('key = "cvr-v3"', 'key = "ctr-v7"'),
            "experiments.layers[0]: experiments: keys must be unique, repeated: ['ctr-v7']",
        ),
        (
            ('key = "cvr-v3"', 'key = "cvr:v3"'),
            "experiments.layers[0].experiments[1]: key must be ASCII letters",
        ),
        (
            ('countries = ["FRA"]', 'countries = ["fr"]'),
            "countries: 'fr' is not a 3-letter upper-case code",
        ),
        (("bucket_version = 2", "bucket_version = 0"), "bucket_version must be >= 1"),
        (
            ('unit = ["user.id", "device.ifa"]', 'unit = ["user.id", "user.ext.id"]'),
            "experiments.layers[0].unit[1]: Invalid enum value 'user.ext.id'",
        ),
        (
            ('unit = ["user.id", "device.ifa"]', 'unit = ["id", "id"]'),
            "experiments.layers[0]: unit: sources must be unique",
        ),
        (('unit = ["user.id", "device.ifa"]', "unit = []"), "unit must list at least one source"),
        (
            ('seed = "models-2026"', "hash_version = 3\nseed = 'x'"),
            "experiments.layers[0].hash_version: Invalid enum value 3",
        ),
        (('seed = "models-2026"', 'seed = ""'), "experiments.layers[0]: seed must not be empty"),
        (
            ("coverage = 0.8", "coverage = 0.8\nshare = 1"),
            "experiments.layers[0].experiments[0]: Object contains unknown field `share`",
        ),
    ],
)
def test_config_errors_name_the_key_path(change: tuple[str, str], message: str) -> None:
    old, new = change
    assert old in LAYER_TOML
    with pytest.raises(ConfigError) as err:
        loads_layers(LAYER_TOML.replace(old, new, 1))
    assert message in str(err.value)


SECOND_LAYER = """
[[experiments.layers]]
name = "{name}"
seed = "{seed}"
[[experiments.layers.experiments]]
key = "{key}"
arms = [{{name = "a"}}, {{name = "b"}}]
"""


@pytest.mark.parametrize(
    ("name", "seed", "key", "message"),
    [
        (
            "other",
            "models-2026",
            "k",
            "seeds must be unique across layers, repeated: ['models-2026']",
        ),
        ("models", "other", "k", "names must be unique across layers, repeated: ['models']"),
        ("other", "other", "cvr-v3", "experiment keys must be unique across layers"),
    ],
)
def test_config_errors_across_layers(name: str, seed: str, key: str, message: str) -> None:
    assert len(loads_layers(LAYER_TOML + SECOND_LAYER.format(name="n", seed="s", key="k"))) == 2
    with pytest.raises(ConfigError) as err:
        loads_layers(LAYER_TOML + SECOND_LAYER.format(name=name, seed=seed, key=key))
    assert str(err.value).startswith("experiments: layers: ")
    assert message in str(err.value)


# --- properties -------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    layer=layers(),
    low=st.floats(0, 1),
    high=st.floats(0, 1),
    units=st.lists(unit_ids.filter(bool), min_size=1, max_size=30),
)
def test_raising_coverage_never_moves_a_unit(
    layer: Layer, low: float, high: float, units: list[str]
) -> None:
    low, high = min(low, high), max(low, high)

    def at(coverage: float) -> Layer:
        return msgspec.structs.replace(
            layer,
            experiments=tuple(
                msgspec.structs.replace(e, coverage=coverage) for e in layer.experiments
            ),
        )

    before, after = at(low), at(high)
    for unit in units:
        was, now = assign(unit, before), assign(unit, after)
        assert (was is None) == (now is None)  # coverage never changes namespaces
        if was is not None and was.in_experiment:
            assert now is not None
            assert (now.experiment, now.arm) == (was.experiment, was.arm)


@settings(max_examples=200, deadline=None)
@given(layer=layers(), unit=unit_ids)
def test_integer_assignment_agrees_with_the_float_formulation(layer: Layer, unit: str) -> None:
    found = assign(unit, layer)
    expected = None
    for experiment in layer.experiments:
        start, end = experiment.namespace or (0.0, 1.0)
        if unit and in_namespace(unit, (layer.seed, start, end)):
            n = hash(arm_seed(layer, experiment), unit, layer.hash_version)
            ranges = bucket_ranges(len(experiment.arms), experiment.coverage, experiment.weights)
            assert n is not None
            expected = (experiment.key, choose_variation(n, ranges), n)
    got = None if found is None else (found.experiment, found.variation, found.bucket)
    assert got == expected


def test_bucket_version_reshuffles() -> None:
    layer = VECTOR_LAYERS[1]
    bumped = msgspec.structs.replace(
        layer, experiments=(msgspec.structs.replace(layer.experiments[0], bucket_version=2),)
    )
    pairs = [(assign(f"u{i}", layer), assign(f"u{i}", bumped)) for i in range(4000)]
    both = [(a.arm, b.arm) for a, b in pairs if a and b and a.in_experiment and b.in_experiment]
    moved = sum(before != after for before, after in both)
    # Independent 50/50 draws: half of the units in both versions change arm.
    assert len(both) > 500
    assert abs(moved / len(both) - 0.5) < 5 * math.sqrt(0.25 / len(both))


# Arm shares over 10^6 random ids, vectorised: FNV-1a over UTF-16 code units with numpy's
# wrapping uint32 arithmetic, checked against the pure-Python hash on the first 2,000 ids.
_PRIME = np.uint32(0x01000193)
_OFFSET = np.uint32(0x811C9DC5)
_ALPHABET = np.array(
    [ord(c) for c in string.ascii_lowercase + string.digits + "-éü日本語"], np.uint32
)
SHARE_IDS = 1_000_000


@pytest.fixture(scope="module")
def million_ids() -> npt.NDArray[np.uint32]:
    """10^6 random 16-character ids as UTF-16 code units, one row per character position."""
    rng = np.random.default_rng(20260601)
    return np.ascontiguousarray(_ALPHABET[rng.integers(0, len(_ALPHABET), (16, SHARE_IDS))])


def _fnv_rows(state: npt.NDArray[np.uint32], rows: Any) -> npt.NDArray[np.uint32]:
    for row in rows:
        state = (state ^ row) * _PRIME
    return state


def _fnv_of_decimal(values: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
    """``fnv1a32(str(v))`` for each uint32 ``v``: its digits from the most significant, the
    leading zeros skipped."""
    state = np.full(values.shape, _OFFSET, np.uint32)
    for k in range(9, -1, -1):
        power = np.uint32(10**k)
        stepped = (state ^ ((values // power) % np.uint32(10) + np.uint32(48))) * _PRIME
        state = stepped if k == 0 else np.where(values >= power, stepped, state)
    return state


def _buckets_many(
    layer: Layer, experiment: Experiment, ids: npt.NDArray[np.uint32]
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
    """(namespace bucket over 1,000, arm bucket) of every id, as :func:`assign` computes them."""
    n = ids.shape[1]
    seed = arm_seed(layer, experiment)
    start = np.full(n, np.uint32(fnv1a32(seed)), np.uint32)
    if layer.hash_version == 2:
        arm = _fnv_of_decimal(_fnv_rows(start, ids)) % np.uint32(10000)
    else:
        suffix = np.array(list(utf16_units(seed)), np.uint32)
        arm = _fnv_rows(_fnv_rows(np.full(n, _OFFSET, np.uint32), ids), suffix) % np.uint32(1000)
    suffix = np.array(list(utf16_units("__" + layer.seed)), np.uint32)
    space = _fnv_rows(_fnv_rows(np.full(n, _OFFSET, np.uint32), ids), suffix) % np.uint32(1000)
    return space, arm


@settings(max_examples=12, deadline=None)
@given(layer=layers(), which=st.integers(0, 2))
def test_arm_shares_are_the_weights(
    million_ids: npt.NDArray[np.uint32], layer: Layer, which: int
) -> None:
    """Over 10^6 random ids, the counts out of the namespace, in each arm and beyond the
    coverage match their probabilities (namespace share x arm range / buckets) within sampling
    error (:func:`_assert_sampled`). Twelve drawn layers: 10^6 ids cost 0.2 s each."""
    experiment = layer.experiments[which % len(layer.experiments)]
    space, arm = _buckets_many(layer, experiment, million_ids)
    sample = ["".join(map(chr, million_ids[:, i])) for i in range(2000)]
    assert [namespace_bucket(layer.seed, u) for u in sample] == space[:2000].tolist()
    seed = arm_seed(layer, experiment)
    assert [bucket(seed, u, layer.hash_version) for u in sample] == arm[:2000].tolist()
    compiled = Bucketing.build(
        seed=seed,
        hash_version=layer.hash_version,
        variations=len(experiment.arms),
        coverage=experiment.coverage,
        weights=experiment.weights,
        namespace=(layer.seed, *(experiment.namespace or (0.0, 1.0))),
    )
    assert compiled.namespace is not None
    _, lo, hi = compiled.namespace
    inside = (space >= lo) & (space < hi)
    buckets = BUCKETS[layer.hash_version]
    observed = [int((~inside).sum())]
    expected = [1 - (hi - lo) / 1000]
    for a, b in compiled.ranges:
        observed.append(int((inside & (arm >= a) & (arm < b)).sum()))
        expected.append((hi - lo) / 1000 * (b - a) / buckets)
    observed.append(SHARE_IDS - sum(observed))
    expected.append(1 - sum(expected))
    _assert_sampled(observed, expected)
    # Each arm's integer range is its weight times the coverage, to a bucket (exact rationals:
    # in floats, a range exactly one bucket off compared as 1/1000 + 9e-19 once).
    coverage = Fraction(min(max(experiment.coverage, 0), 1))
    for (a, b), weight in zip(compiled.ranges, experiment.weights, strict=True):
        assert abs(Fraction(b - a, buckets) - Fraction(weight) * coverage) <= Fraction(1, buckets)


# --- bidcore's own vectors --------------------------------------------------------------------

VECTOR_LAYERS: tuple[Layer, ...] = (
    Layer(
        name="models",
        seed="models-2026",
        unit=("user.id", "device.ifa"),
        experiments=(
            Experiment(
                key="ctr-v7",
                namespace=(0.0, 0.6),
                coverage=0.8,
                arms=(
                    Arm(name="control", weight=0.2),
                    Arm(name="ctr-v7", weight=0.3),
                    Arm(name="ctr-v8", weight=0.5),
                ),
            ),
            Experiment(
                key="cvr-v3",
                namespace=(0.6, 0.9),
                bucket_version=2,
                arms=(Arm(name="control"), Arm(name="cvr-v3")),
            ),
        ),
    ),
    Layer(
        name="shading",
        seed="shading-q3",
        hash_version=1,
        experiments=(
            Experiment(key="shade-off", coverage=0.5, arms=(Arm(name="on"), Arm(name="off"))),
        ),
    ),
    Layer(
        name="geo",
        seed="géo-😀",
        unit=("user.buyeruid",),
        experiments=(
            Experiment(
                key="eu-floors",
                countries=("FRA", "DEU"),
                device_types=(1, 4),
                campaigns=("c1", "c2"),
                arms=(Arm(name="a", weight=0.25), Arm(name="b", weight=0.75)),
            ),
        ),
    ),
)

VECTOR_IDS: tuple[str, ...] = (
    "",
    "0",
    "1",
    "123",
    "-7",
    "00123",
    "1.5",
    "user-42",
    "6D92078A-8246-4BA4-AE5B-76104861E7DC",
    " padded ",
    "café",
    "Ünïcödé ñ",
    "日本語のユーザー",
    "사용자",
    "😀",
    "a😀b",
    "👩‍👩‍👧‍👦",
    "🇫🇷",
    "\u0000",
    "\uffff",
    "x" * 10240,
    "é日😀" * 1024,  # 10 kB of UTF-8 (2 + 3 + 4 bytes a repeat; 4 code units)
)
VECTOR_SEEDS = ("", "seed", "models-2026:ctr-v7:1", "géo-😀")
NUMERIC_IDS = (0, 7, -7, 2**53 + 1, 1234567890123456789)
LONE_SURROGATES: tuple[tuple[int, ...], ...] = (
    (0xD800,),
    (0xDFFF,),
    (0x75, 0xD83D),  # "u" then a high surrogate with no low one
    (0xDE00, 0xD83D),  # a pair in the wrong order
    (0xD83D, 0xDE00),  # a pair written as two escapes: the same text as "😀"
)
VECTOR_VIEWS: tuple[dict[str, Any], ...] = (
    {"id": "r1", "user": {"id": "u1", "buyeruid": "b1"}, "device": {"ifa": "i1"}},
    {"id": "r1", "user": {"id": "", "buyeruid": "b1"}, "device": {"ifa": "i1"}},
    {"id": "r1", "user": {"buyeruid": ""}, "device": {"ifa": "i1"}},
    {"id": "r1", "device": {"ifa": ""}},
    {"id": "r1", "user": {"id": 42}},
    {"id": "r1", "user": {"id": 4.2, "buyeruid": True}},
    {"id": "r1", "user": {"id": "u1"}, "device": {"ifa": "i1", "lmt": 1}},
    {"id": "r1", "user": {"id": "u1"}, "regs": {"coppa": 1}},
    {"id": "r1", "user": {"id": "u1"}, "regs": {"gdpr": 1}},
    {"id": "r1", "user": {"id": "u1", "consent": "CO-abc"}, "regs": {"gdpr": 1}},
    {"id": "", "user": {}},
    {},
)
VECTOR_REQUESTS: tuple[dict[str, Any], ...] = (
    {
        "id": "req-1",
        "imp": [{"id": "1", "banner": {"w": 300, "h": 250}}],
        "user": {"id": "user-42", "buyeruid": "buyer-9"},
        "device": {
            "ifa": "6D92078A-8246-4BA4-AE5B-76104861E7DC",
            "devicetype": 4,
            "geo": {"country": "fra"},
        },
    },
    {
        "id": "req-2",
        "imp": [{"id": "1", "banner": {"w": 300, "h": 250}}],
        "user": {"buyeruid": "buyer-9"},
        "device": {"devicetype": 1, "geo": {"country": "DEU"}},
        "regs": {"ext": {"gdpr": 1}},
    },
    {"id": "req-3", "imp": [{"id": "1", "banner": {"w": 300, "h": 250}}]},
)


def _assignment_json(found: Any) -> dict[str, Any] | None:
    if found is None:
        return None
    return {
        "experiment": found.experiment,
        "arm": found.arm,
        "variation": found.variation,
        "in_experiment": found.in_experiment,
        "bucket": found.bucket,
        "bucket_int": found.bucket_int,
        "unit": found.unit,
        "unit_source": found.unit_source,
    }


def _without_unit(found: Any) -> dict[str, Any] | None:
    # A lone surrogate has no UTF-8 form: its vectors give the id as "utf16" code units only.
    described = _assignment_json(found)
    if described is not None:
        del described["unit"]
    return described


def generate_vectors() -> dict[str, Any]:
    """bidcore's assignment vectors, from the current implementation (the committed file is
    its output; see the module docstring)."""
    hashes = []
    for seed in VECTOR_SEEDS:
        for unit in VECTOR_IDS:
            if len(unit) > 1000 and seed != "seed":
                continue  # long ids once, to keep the file small
            hashes += [
                {
                    "seed": seed,
                    "id": unit,
                    "version": version,
                    "fnv": fnv1a32(seed + unit if version == 2 else unit + seed),
                    "bucket": bucket(seed, unit, version),
                    "hash": hash(seed, unit, version),
                }
                for version in (1, 2)
            ]
    assignments = []
    filters = [("FRA", 4), ("fra", 1), ("USA", 4), (None, 4), ("DEU", None), ("DEU", 2)]
    for number, layer in enumerate(VECTOR_LAYERS):
        every_id: tuple[str | int, ...] = (*VECTOR_IDS, *NUMERIC_IDS)
        for index, unit_value in enumerate(every_id):
            if isinstance(unit_value, str) and len(unit_value) > 1000 and number:
                continue
            country, device_type = (
                filters[index % len(filters)] if layer.name == "geo" else (None, None)
            )
            found = assign(unit_value, layer, country=country, device_type=device_type)
            assignments.append(
                {
                    "layer": layer.name,
                    "id": unit_value,
                    "country": country,
                    "device_type": device_type,
                    "namespace_bucket": namespace_bucket(layer.seed, unit_text(unit_value) or "")
                    if unit_text(unit_value)
                    else None,
                    "assignment": _assignment_json(found),
                }
            )
    surrogates = []
    for units in LONE_SURROGATES:
        text = "".join(map(chr, units))
        surrogates.append(
            {
                "utf16": list(units),
                "seed": "seed",
                "fnv_v1": fnv1a32(text + "seed"),
                "bucket_v1": bucket("seed", text, 1),
                "bucket_v2": bucket("seed", text, 2),
                "assignment": _without_unit(assign(text, VECTOR_LAYERS[0])),
            }
        )
    values: tuple[object, ...] = ("u1", " ", "", *NUMERIC_IDS, 1.5, 1e21, True, None, [], {})
    unit_texts = [{"value": value, "text": unit_text(value)} for value in values]
    views = [
        {
            "view": view,
            "default": unit_id(view),
            "by_layer": {layer.name: unit_id(view, layer.unit) for layer in VECTOR_LAYERS},
        }
        for view in VECTOR_VIEWS
    ]
    requests = []
    for request in VECTOR_REQUESTS:
        body = json.dumps(request).encode()
        requests.append(
            {
                "request": request,
                "assignments": {
                    name: _assignment_json(found)
                    for name, found in assign_request(inspect_request(body), VECTOR_LAYERS).items()
                },
            }
        )
    document = {
        "about": (
            "bidcore's experiment assignment vectors (docs/experiments.md): the hash of each id "
            "under each seed and version, the assignment of each id in each layer, lone "
            "surrogates given as UTF-16 code units, how unit id values become text, which unit "
            "id a request view yields per layer, and whole requests. Generated by "
            "tests/test_experiments_assignment.py (python tests/test_experiments_assignment.py); "
            "the test fails when the implementation disagrees."
        ),
        "layers": [msgspec.to_builtins(layer) for layer in VECTOR_LAYERS],
        "hash": hashes,
        "assign": assignments,
        "lone_surrogates": surrogates,
        "unit_text": unit_texts,
        "unit_id": views,
        "requests": requests,
    }
    normal: dict[str, Any] = json.loads(json.dumps(document))  # tuples as lists, as read back
    return normal


def _write_vectors() -> None:
    text = json.dumps(generate_vectors(), ensure_ascii=False, indent=1) + "\n"
    VECTORS.write_text(text, encoding="utf-8")


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(VECTORS.read_text("utf-8"))
    return loaded


def test_vectors_file_is_current(vectors: dict[str, Any]) -> None:
    assert vectors == generate_vectors()


def test_vectors_cover_what_they_promise(vectors: dict[str, Any]) -> None:
    ids = {v["id"] for v in vectors["hash"]}
    assert {"", "123", "😀", "café", "日本語のユーザー", "\u0000"} <= ids
    assert max(len(u.encode()) for u in ids) >= 10240
    assert any(isinstance(v["id"], int) for v in vectors["assign"])
    assert (
        sum(
            v["assignment"] is not None and v["assignment"]["in_experiment"]
            for v in vectors["assign"]
        )
        >= 20
    )
    assert any(
        v["assignment"] is not None and not v["assignment"]["in_experiment"]
        for v in vectors["assign"]
    )
    assert {a["layer"] for a in vectors["assign"]} == {"models", "shading", "geo"}
    assert len(vectors["lone_surrogates"]) == len(LONE_SURROGATES)
    assert all(r["assignments"] for r in vectors["requests"][:2])


def test_vectors_hold(vectors: dict[str, Any]) -> None:
    """Each vector against the implementation (and the hashes against the GrowthBook SDK)."""
    layers_by_name = {
        layer.name: layer for layer in msgspec.convert(vectors["layers"], tuple[Layer, ...])
    }
    assert tuple(layers_by_name.values()) == VECTOR_LAYERS
    for v in vectors["hash"]:
        seed, unit, version = v["seed"], v["id"], v["version"]
        assert fnv1a32(seed + unit if version == 2 else unit + seed) == v["fnv"]
        outer = v["fnv"] if version == 1 else fnv1a32(str(v["fnv"]))
        assert bucket(seed, unit, version) == v["bucket"] == outer % BUCKETS[version]
        assert hash(seed, unit, version) == v["hash"] == growthbook.core.gbhash(seed, unit, version)
    for v in vectors["assign"]:
        layer = layers_by_name[v["layer"]]
        found = assign(v["id"], layer, country=v["country"], device_type=v["device_type"])
        assert _assignment_json(found) == v["assignment"]
    for v in vectors["lone_surrogates"]:
        text = "".join(map(chr, v["utf16"]))
        assert list(utf16_units(text)) == v["utf16"]
        assert fnv1a32(text + "seed") == v["fnv_v1"] == growthbook.core.fnv1a32(text + "seed")
        assert (bucket("seed", text, 1), bucket("seed", text, 2)) == (
            v["bucket_v1"],
            v["bucket_v2"],
        )
        assert _without_unit(assign(text, VECTOR_LAYERS[0])) == v["assignment"]
    for v in vectors["unit_text"]:
        assert unit_text(v["value"]) == v["text"]
    for v in vectors["unit_id"]:
        expected = None if v["default"] is None else tuple(v["default"])
        assert unit_id(v["view"]) == expected
        for name, found in v["by_layer"].items():
            assert unit_id(v["view"], layers_by_name[name].unit) == (
                None if found is None else tuple(found)
            )
    for v in vectors["requests"]:
        body = json.dumps(v["request"]).encode()
        got = {name: _assignment_json(a) for name, a in assign_request(body, VECTOR_LAYERS).items()}
        assert got == v["assignments"]


if __name__ == "__main__":
    if sys.argv[1:] not in ([], ["--write-vectors"]):
        raise SystemExit("usage: python tests/test_experiments_assignment.py [--write-vectors]")
    _write_vectors()
    print(f"wrote {VECTORS}")
