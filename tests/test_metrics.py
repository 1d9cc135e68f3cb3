"""``bidcore.metrics``: the exposition of a real engine (the demo bidder, two models) after the
OpenRTB corpus, held to the engine's own counts and to what its responses say; counters that
never go down across engine swaps; the campaign cap; experiment arms (the demo with two layers
of experiments) held to the Python reference assignment and to the responses, across reloads
and workers; the HTTP layer's counters; the decision log; several workers summed through a
shared directory; and the Grafana dashboard's queries against the names really exported."""

from __future__ import annotations

import json
import math
import random
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

import bidcore
from bidcore import demo
from bidcore.config import Config
from bidcore.engine import DecisionLog
from bidcore.experiments import assign_request
from bidcore.metrics import BidderMetrics
from bidcore.monitoring import drift

ROOT = Path(__file__).parent.parent
CORPUS = ROOT / "tests" / "fixtures" / "openrtb" / "requests.jsonl"
DASHBOARD = ROOT / "examples" / "grafana" / "bidcore-dashboard.json"
NOW = 1_795_390_200.0  # a Sunday evening in UTC

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _corpus() -> list[bytes]:
    return [line for line in CORPUS.read_bytes().splitlines() if line.strip()]


def _engine(log: DecisionLog | None = None) -> bidcore.Engine:
    return bidcore.Engine.load(demo.config_path(), log=log)


@dataclass
class Seen:
    """What the responses said."""

    requests: int = 0
    invalid: int = 0
    bids: int = 0
    imps: Counter[str] = field(default_factory=Counter)
    value: Counter[str] = field(default_factory=Counter)  # CPM prices summed, in USD


def _feed(engine: bidcore.Engine, bodies: list[bytes], seen: Seen | None = None) -> Seen:
    seen = seen if seen is not None else Seen()
    rates = {code: float(rate) for code, rate in engine.config.fx.rates.items()}
    rates[engine.config.fx.base] = 1.0
    for body in bodies:
        seen.requests += 1
        try:
            response = engine.bid(body, now=NOW)
        except bidcore.InvalidRequestError:
            seen.invalid += 1
            continue
        if response is None:
            continue
        seen.bids += 1
        decoded = json.loads(response)
        for bid in decoded["seatbid"][0]["bid"]:
            seen.imps[bid["cid"]] += 1
            seen.value[bid["cid"]] += bid["price"] * rates[decoded.get("cur", "USD")]
    return seen


def _samples(metrics: BidderMetrics) -> Samples:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples[name, frozenset(labels.items())]


def _series(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: value for (n, labels), value in samples.items() if n == name}


def _buckets(samples: Samples, name: str, **labels: str) -> list[tuple[float, float]]:
    wanted = set(labels.items())
    found = [
        (float(dict(key)["le"]), value)
        for key, value in _series(samples, f"{name}_bucket").items()
        if wanted <= set(key)
    ]
    return sorted(found)


@pytest.fixture(scope="module")
def fed() -> tuple[bidcore.Engine, BidderMetrics, Seen]:
    engine = _engine()
    metrics = BidderMetrics(engine, psi_window=None)
    return engine, metrics, _feed(engine, _corpus())


# --- The engine's counts -----------------------------------------------------------------------


def test_requests_bids_and_no_bids_equal_the_engine_and_its_answers(
    fed: tuple[bidcore.Engine, BidderMetrics, Seen],
) -> None:
    engine, metrics, seen = fed
    samples = _samples(metrics)
    counters, native = engine.counters(), engine.metrics()
    assert _value(samples, "bidcore_requests_total") == counters["requests"] == len(_corpus())
    assert _value(samples, "bidcore_bids_total") == counters["bids"] == seen.bids > 2500
    imps = sum(seen.imps.values())
    assert _value(samples, "bidcore_imp_bids_total") == counters["imp_bids"] == imps
    no_bids = {dict(k)["reason"]: v for k, v in _series(samples, "bidcore_no_bids_total").items()}
    assert no_bids == native["no_bids"] == counters["no_bids"]
    assert {"invalid", "late", "below_floor"} <= set(no_bids)
    assert no_bids["invalid"] == seen.invalid > 0
    assert sum(no_bids.values()) + seen.bids == seen.requests


def test_per_campaign_bids_and_value_equal_the_responses(
    fed: tuple[bidcore.Engine, BidderMetrics, Seen],
) -> None:
    engine, metrics, seen = fed
    samples = _samples(metrics)
    native = engine.metrics()["campaigns"]
    ids = [c.id for c in engine.config.campaigns]
    imps = _series(samples, "bidcore_campaign_imp_bids_total")
    assert {dict(k)["campaign"] for k in imps} == set(ids)  # every campaign, zeros included
    assert all(set(dict(k)) == {"campaign"} for k in imps)  # no arm: bidcore_experiment_*
    values = _series(samples, "bidcore_campaign_bid_value_total")
    assert all(set(dict(k)) == {"campaign", "currency"} for k in values)
    for campaign in ids:
        exported = _value(samples, "bidcore_campaign_imp_bids_total", campaign=campaign)
        assert exported == native[campaign]["imp_bids"] == seen.imps[campaign]
        value = _value(
            samples, "bidcore_campaign_bid_value_total", campaign=campaign, currency="USD"
        )
        assert value == pytest.approx(native[campaign]["bid_micros"] / 1e9, rel=1e-12)
        # Prices are CPM in the response's currency, rounded to the micro after conversion.
        assert value == pytest.approx(seen.value[campaign] / 1000, abs=2e-9 * seen.imps[campaign])
    assert sum(seen.imps[c] > 0 for c in ids) >= 5


def test_the_latency_histogram_is_the_native_one_made_cumulative(
    fed: tuple[bidcore.Engine, BidderMetrics, Seen],
) -> None:
    engine, metrics, _ = fed
    samples = _samples(metrics)
    latency = engine.metrics()["latency"]
    buckets = _buckets(samples, "bidcore_decision_seconds")
    assert [le for le, _ in buckets] == [*latency["bounds_s"], math.inf]
    running = 0
    for (_, cumulative), count in zip(buckets, latency["counts"], strict=True):
        running += count
        assert cumulative == running
    assert buckets[-1][1] == _value(samples, "bidcore_decision_seconds_count") == latency["count"]
    assert latency["count"] == engine.counters()["requests"]
    assert _value(samples, "bidcore_decision_seconds_sum") == pytest.approx(latency["sum_s"])
    assert 0 < latency["sum_s"] / latency["count"] < 0.01  # microseconds, not milliseconds


def test_model_scores_are_histograms_on_the_reference_bins(
    fed: tuple[bidcore.Engine, BidderMetrics, Seen],
) -> None:
    engine, metrics, _ = fed
    samples = _samples(metrics)
    native = engine.metrics()["models"]
    assert set(native) == {"ctr", "cvr"}
    for role, live in native.items():
        model = engine.models[role]
        reference = model.reference
        assert reference is not None
        assert live["model"] == model.name
        buckets = _buckets(samples, "bidcore_model_score", role=role, model=live["model"])
        assert [le for le, _ in buckets] == [*reference.score.edges[1:-1], math.inf]
        counts = live["scores"]["counts"]
        assert [c for _, c in buckets] == [sum(counts[: i + 1]) for i in range(len(counts))]
        assert buckets[-1][1] > 50  # the cvr model scores the cpa campaigns only


def test_psi_series_are_the_drift_of_the_engine(
    fed: tuple[bidcore.Engine, BidderMetrics, Seen],
) -> None:
    engine, metrics, _ = fed
    exported = {
        (dict(k)["role"], dict(k)["model"], dict(k)["feature"]): v
        for k, v in _series(_samples(metrics), "bidcore_model_psi").items()
    }
    expected = {}
    for role, found in drift(engine).items():
        expected[role, found.model, "score"] = found.score
        for feature, value in found.features.items():
            expected[role, found.model, feature] = value
    assert exported == pytest.approx(expected)
    assert len(expected) > 10
    assert all(v >= 0 for v in exported.values())


def _psi(engine: bidcore.Engine) -> dict[tuple[str, str], float]:
    """``drift(engine)`` as (role, feature) -> PSI, without the PSIs not computed (nan)."""
    found = {}
    for role, model in drift(engine).items():
        for feature, value in [("score", model.score), *model.features.items()]:
            if not math.isnan(value):
                found[role, feature] = value
    return found


def test_psi_looks_at_the_last_window_of_traffic() -> None:
    corpus = _corpus()
    early, late = corpus[:2000], corpus[2000:]
    clock = [0.0]
    engine = _engine()
    metrics = BidderMetrics(engine, psi_window=600, clock=lambda: clock[0])

    def psi_now() -> dict[tuple[str, str], float]:
        series = _series(_samples(metrics), "bidcore_model_psi")
        return {(dict(k)["role"], dict(k)["feature"]): v for k, v in series.items()}

    _feed(engine, early)
    since_start = _psi(engine)
    assert psi_now() == pytest.approx(since_start)
    clock[0] = 700.0  # marks are taken at scrapes: the latest one at or before t=100 is the start
    assert psi_now() == pytest.approx(since_start)
    _feed(engine, late)
    clock[0] = 1400.0  # the window now starts at the mark taken at t=700: the late traffic only
    only_late = _engine()
    _feed(only_late, late)
    assert psi_now() == pytest.approx(_psi(only_late))
    assert psi_now() != pytest.approx(_psi(engine))
    clock[0] = 2800.0  # no traffic in the last 600 s: no PSI at all
    assert psi_now() == {}


# --- Across reloads ----------------------------------------------------------------------------


def _counter_samples(samples: Samples) -> Samples:
    counters = ("_total", "_bucket", "_count", "_sum")
    return {k: v for k, v in samples.items() if k[0].endswith(counters)}


def _assert_grown(before: Samples, after: Samples) -> None:
    for key, value in _counter_samples(before).items():
        assert after[key] >= value, key


def test_counters_never_go_down_when_the_engine_is_swapped() -> None:
    corpus = _corpus()
    first, second = corpus[:2000], corpus[2000:]
    a = _engine()
    metrics = BidderMetrics(a)
    seen = _feed(a, first)
    s1 = _samples(metrics)
    assert _value(s1, "bidcore_requests_total") == 2000

    b = _engine()
    metrics.track(b)
    _feed(a, corpus[:100], seen)  # requests the old engine finishes after the swap still count
    s2 = _samples(metrics)
    _assert_grown(s1, s2)
    assert _value(s2, "bidcore_requests_total") == 2100

    _feed(b, second, seen)
    s3 = _samples(metrics)
    _assert_grown(s2, s3)
    assert _value(s3, "bidcore_requests_total") == len(corpus) + 100
    assert _value(s3, "bidcore_bids_total") == seen.bids
    ca, cb = a.counters(), b.counters()
    no_bids = {dict(k)["reason"]: v for k, v in _series(s3, "bidcore_no_bids_total").items()}
    assert no_bids == {r: ca["no_bids"][r] + cb["no_bids"][r] for r in ca["no_bids"]}
    for campaign in seen.imps:
        exported = _value(s3, "bidcore_campaign_imp_bids_total", campaign=campaign)
        assert exported == seen.imps[campaign]
    assert _value(s3, "bidcore_decision_seconds_count") == len(corpus) + 100
    for role, live in b.metrics()["models"].items():  # the same models: their counts go on
        total = sum(live["scores"]["counts"]) + sum(a.metrics()["models"][role]["scores"]["counts"])
        buckets = _buckets(s3, "bidcore_model_score", role=role, model=live["model"])
        assert buckets[-1][1] == total

    metrics.track(b)  # the same engine again: nothing counted twice
    assert _counter_samples(_samples(metrics)) == _counter_samples(s3)
    metrics.track(_engine())
    metrics.track(_engine())  # two swaps between scrapes
    s4 = _samples(metrics)
    assert _counter_samples(s4) == _counter_samples(s3)


def test_campaigns_past_the_cap_are_counted_as_other(
    fed: tuple[bidcore.Engine, BidderMetrics, Seen],
) -> None:
    engine, _, seen = fed
    ids = [c.id for c in engine.config.campaigns]
    native = engine.metrics()["campaigns"]
    for cap in (3, 0):
        samples = _samples(BidderMetrics(engine, max_campaigns=cap))
        imps = {
            dict(k)["campaign"]: v
            for k, v in _series(samples, "bidcore_campaign_imp_bids_total").items()
        }
        assert set(imps) == {*ids[:cap], "_other"}
        assert imps["_other"] == sum(native[c]["imp_bids"] for c in ids[cap:]) > 0
        assert sum(imps.values()) == sum(seen.imps.values())
        value = _value(
            samples, "bidcore_campaign_bid_value_total", campaign="_other", currency="USD"
        )
        assert value == pytest.approx(sum(native[c]["bid_micros"] for c in ids[cap:]) / 1e9)


def test_openmetrics_is_served_to_who_asks_for_it(
    fed: tuple[bidcore.Engine, BidderMetrics, Seen],
) -> None:
    engine, metrics, _ = fed
    body, content_type = metrics.render("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert body.endswith(b"# EOF\n")
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in openmetrics_families(body.decode())  # type: ignore[no-untyped-call]
        for s in family.samples
    }
    assert _value(samples, "bidcore_requests_total") == engine.counters()["requests"]
    buckets = _buckets(samples, "bidcore_decision_seconds")
    assert buckets[-1][1] == engine.metrics()["latency"]["count"]
    # Prometheus 2 asks for OpenMetrics 0.0.1, which prometheus-client does not write: text.
    accept = "application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5"
    assert metrics.render(accept)[1].startswith("text/plain; version=0.0.4")


# --- Experiment arms ---------------------------------------------------------------------------

# Two layers: in one, two experiments share the traffic (bid multipliers, one at 90% coverage);
# in the other, one experiment holds it all (an arm that lets two campaigns bid, not thirteen).
EXPERIMENTS = """
[[experiments.layers]]
name = "pricing"
seed = "pricing-2026"
unit = ["user.id"]

[[experiments.layers.experiments]]
key = "multiplier"
namespace = [0, 0.6]
coverage = 0.9
arms = [
    {name = "control", weight = 0.4},
    {name = "higher", weight = 0.6, bid_multiplier = 1.25},
]

[[experiments.layers.experiments]]
key = "discount"
namespace = [0.6, 1]
arms = [{name = "control"}, {name = "half", bid_multiplier = 0.5}]

[[experiments.layers]]
name = "reach"
seed = "reach-2026"

[[experiments.layers.experiments]]
key = "narrow"
arms = [
    {name = "control"},
    {name = "two-advertisers", campaigns = ["northwind-brand-display", "puzzlequest-installs"]},
]
"""
ARM_SERIES = (
    "bidcore_experiment_requests_total",
    "bidcore_experiment_bids_total",
    "bidcore_experiment_imp_bids_total",
    "bidcore_experiment_bid_value_total",
)

Arm = tuple[str, str]  # (experiment, arm)


def _arm_config(experiments: str = EXPERIMENTS, currency: str = "USD") -> Config:
    """The demo bidder with ``experiments``, bidding in ``currency``."""
    demo_text = demo.config_path().read_text()
    text = demo_text.replace('currency = "USD"', f'currency = "{currency}"')
    return bidcore.config.loads(text + experiments)


def _arm_engine(config: Config | None = None, log: DecisionLog | None = None) -> bidcore.Engine:
    config = config if config is not None else _arm_config()
    return bidcore.Engine(config, base_dir=demo.config_path().parent, log=log)


def _arms(config: Config) -> list[Arm]:
    return [(e.key, a.name) for _, e, a in config.experiments.arms()]


def _arm_bodies(start: int, stop: int, seed: int) -> list[bytes]:
    """Corpus requests, nine in ten of them given the ``user.id`` of one of 300 users, and
    each its own request id (the unit of the requests that allow no personal data; the corpus
    repeats a few). The invalid ones stay as they are: they are counted in no arm."""
    rng = random.Random(seed)
    bodies = []
    for number, body in enumerate(_corpus()[start:stop], start):
        try:
            request = json.loads(body)
        except ValueError:
            bodies.append(body)
            continue
        user = request.get("user", {}) if isinstance(request, dict) else None
        if isinstance(user, dict) and isinstance(request.get("id"), str):
            request["id"] = f"request-{seed}-{number}"
            if rng.random() < 0.9:
                request["user"] = {**user, "id": f"user-{rng.randrange(300)}"}
            body = json.dumps(request).encode()
        bodies.append(body)
    return bodies


@dataclass
class ArmSeen:
    """Per arm, what the reference assignment and the responses say."""

    valid: int = 0  # requests the engine decided (parsed)
    beyond_coverage: int = 0  # placed in an experiment but in none of its arms
    requests: Counter[Arm] = field(default_factory=Counter)
    bids: Counter[Arm] = field(default_factory=Counter)
    imps: Counter[Arm] = field(default_factory=Counter)
    value: Counter[Arm] = field(default_factory=Counter)  # CPM prices, in the bidder's currency


def _feed_arms(engine: bidcore.Engine, bodies: list[bytes], seen: ArmSeen | None = None) -> ArmSeen:
    """Bid ``bodies``; each request's arms are those of ``assign_request`` (the Python
    reference), its bid is counted in each of them."""
    seen = seen if seen is not None else ArmSeen()
    config = engine.config
    rates = {code: float(rate) for code, rate in config.fx.rates.items()}
    rates[config.fx.base] = 1.0
    for body in bodies:
        try:
            assigned = assign_request(body, config.experiments.layers)
        except bidcore.InvalidRequestError:
            assigned = None
        try:
            response = engine.bid(body, now=NOW)
        except bidcore.InvalidRequestError:
            assert assigned is None, body  # the two parsers agree
            continue
        assert assigned is not None, body
        seen.valid += 1
        arms = [(a.experiment, a.arm) for a in assigned.values() if a.arm is not None]
        seen.beyond_coverage += len(assigned) - len(arms)
        for arm in arms:
            seen.requests[arm] += 1
        if response is None:
            continue
        decoded = json.loads(response)
        bids = decoded["seatbid"][0]["bid"]
        rate = rates[decoded.get("cur", "USD")] / rates[config.bidder.currency]
        for arm in arms:
            seen.bids[arm] += 1
            seen.imps[arm] += len(bids)
            seen.value[arm] += sum(bid["price"] for bid in bids) * rate
    return seen


def _by_arm(samples: Samples, name: str) -> dict[Arm, float]:
    found = {}
    for key, value in _series(samples, name).items():
        labels = dict(key)
        assert set(labels) == {"experiment", "arm"}, labels
        found[labels["experiment"], labels["arm"]] = value
    return found


def _values_by_arm(samples: Samples) -> dict[tuple[str, str, str], float]:
    """``bidcore_experiment_bid_value_total`` by (experiment, arm, currency)."""
    found = {}
    for key, value in _series(samples, "bidcore_experiment_bid_value_total").items():
        labels = dict(key)
        assert set(labels) == {"experiment", "arm", "currency"}, labels
        found[labels["experiment"], labels["arm"], labels["currency"]] = value
    return found


@pytest.fixture(scope="module")
def arms_fed() -> tuple[bidcore.Engine, BidderMetrics, ArmSeen]:
    engine = _arm_engine()
    metrics = BidderMetrics(engine, psi_window=None)
    return engine, metrics, _feed_arms(engine, _arm_bodies(0, 500, seed=1))


def test_per_arm_counters_equal_the_reference_assignment_and_the_responses(
    arms_fed: tuple[bidcore.Engine, BidderMetrics, ArmSeen],
) -> None:
    engine, metrics, seen = arms_fed
    samples = _samples(metrics)
    arms = _arms(engine.config)
    assert len(arms) == 6
    # Every arm of the config, zeros included, and nothing else; "control" in two experiments.
    for name, counted in (
        ("bidcore_experiment_requests_total", seen.requests),
        ("bidcore_experiment_bids_total", seen.bids),
        ("bidcore_experiment_imp_bids_total", seen.imps),
    ):
        assert _by_arm(samples, name) == {arm: counted[arm] for arm in arms}, name
    values = _values_by_arm(samples)
    assert set(values) == {(*arm, "USD") for arm in arms}
    native = {(a["experiment"], a["arm"]): a for a in engine.metrics()["arms"]}
    assert list(native) == arms  # config order
    for arm in arms:
        value = values[(*arm, "USD")]
        assert value == pytest.approx(native[arm]["bid_micros"] / 1e9, rel=1e-12)
        # CPM prices in the response's currency, rounded to the micro after conversion.
        assert value == pytest.approx(seen.value[arm] / 1000, abs=2e-9 * seen.imps[arm])
    # The traffic reached every arm, and the arms count what the layers say.
    assert all(seen.requests[arm] >= 30 and seen.bids[arm] > 0 for arm in arms), seen
    rate = {arm: seen.bids[arm] / seen.requests[arm] for arm in arms}  # the dashboard's bid rate
    assert (
        rate["narrow", "two-advertisers"] < rate["narrow", "control"] / 1.5
    )  # 2 campaigns, not 13
    narrow = seen.requests["narrow", "control"] + seen.requests["narrow", "two-advertisers"]
    assert narrow == seen.valid  # a layer of one experiment, all covered: every request decided
    pricing = sum(n for (experiment, _), n in seen.requests.items() if experiment != "narrow")
    assert pricing == seen.valid - seen.beyond_coverage
    assert seen.beyond_coverage > 0  # the multiplier experiment's 10%: in no arm
    assert _value(samples, "bidcore_requests_total") > seen.valid  # invalid ones: in no arm


def test_arm_counters_never_go_down_across_reloads() -> None:
    first = _arm_engine()
    metrics = BidderMetrics(first, psi_window=None)
    before = _feed_arms(first, _arm_bodies(0, 300, seed=2))
    s1 = _samples(metrics)
    # The next config replaces an experiment and bids in euros.
    changed = _arm_config(
        EXPERIMENTS.replace('key = "discount"', 'key = "discount-v2"'), currency="EUR"
    )
    second = _arm_engine(changed)
    metrics.track(second)
    _feed_arms(first, _arm_bodies(300, 400, seed=3), before)  # finished after the swap: counted
    s2 = _samples(metrics)
    _assert_grown(s1, s2)
    after = _feed_arms(second, _arm_bodies(400, 800, seed=4))
    s3 = _samples(metrics)
    _assert_grown(s2, s3)

    old, new = _arms(first.config), _arms(changed)
    assert ("discount", "half") in set(old) - set(new)
    assert ("discount-v2", "half") in set(new) - set(old)
    # The arms of both configs: those of the old one still exported with what they counted.
    both = dict.fromkeys([*old, *new])
    for name, counted in (
        ("bidcore_experiment_requests_total", "requests"),
        ("bidcore_experiment_bids_total", "bids"),
        ("bidcore_experiment_imp_bids_total", "imps"),
    ):
        expected = {
            arm: getattr(before, counted)[arm] + getattr(after, counted)[arm] for arm in both
        }
        assert _by_arm(s3, name) == expected, name
    assert before.bids["discount", "half"] > 0
    assert after.bids["discount-v2", "half"] > 0
    values = _values_by_arm(s3)  # the value bid, in the bidder's currency of the time
    assert set(values) == {(*arm, "USD") for arm in old} | {(*arm, "EUR") for arm in new}
    for arm in old:
        usd = before.value[arm] / 1000
        assert values[(*arm, "USD")] == pytest.approx(usd, abs=2e-9 * before.imps[arm])
    for arm in new:
        eur = after.value[arm] / 1000
        assert values[(*arm, "EUR")] == pytest.approx(eur, abs=2e-9 * after.imps[arm])

    metrics.track(second)  # the same engine again: nothing counted twice
    assert _counter_samples(_samples(metrics)) == _counter_samples(s3)
    metrics.track(_arm_engine(changed))
    metrics.track(_arm_engine(changed))  # two swaps between scrapes
    assert _counter_samples(_samples(metrics)) == _counter_samples(s3)


def test_workers_sum_their_arm_counts_and_read_the_previous_snapshot_format(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    one, two, whole = _arm_engine(), _arm_engine(), _arm_engine()
    first, second = _worker(tmp_path, one), _worker(tmp_path, two)
    bodies = _arm_bodies(0, 600, seed=5)
    _feed_arms(one, bodies[:250])
    _feed_arms(two, bodies[250:])
    seen = _feed_arms(whole, bodies)  # one engine that saw everything: what the sums must show
    first.publish()
    samples = _samples(second)  # its own counts, taken now, and first's file
    expected = _samples(BidderMetrics(whole, psi_window=None))
    for name in ARM_SERIES:
        assert _series(samples, name) == _series(expected, name), name
    assert _by_arm(samples, "bidcore_experiment_requests_total") == {
        arm: seen.requests[arm] for arm in _arms(whole.config)
    }
    assert _counter_samples(_samples(first)) == _counter_samples(samples)
    assert {json.loads(p.read_text())["format"] for p in tmp_path.glob("*.json")} == {2}

    # A worker of the previous version (snapshot format 1, no arms): its counts count, in no arm.
    files = set(tmp_path.glob("*.json"))
    third = _arm_engine()
    _feed_arms(third, bodies[:100])
    _worker(tmp_path, third).publish()
    [written] = set(tmp_path.glob("*.json")) - files
    snapshot = json.loads(written.read_text())
    snapshot["format"] = 1
    del snapshot["totals"]["arms"]
    (tmp_path / "1-00000000.json").write_text(json.dumps(snapshot))
    written.unlink()
    later = _samples(second)
    assert _value(later, "bidcore_requests_total") == len(bodies) + 100
    for name in ARM_SERIES:
        assert _series(later, name) == _series(expected, name), name
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []


# --- The HTTP layer and the decision log -------------------------------------------------------


def test_http_reload_and_notice_counters() -> None:
    metrics = BidderMetrics()
    samples = _samples(metrics)
    # Reloads and notices exist before the first one (alerts on increase() need the zero).
    assert _value(samples, "bidcore_reloads_total", result="failed") == 0
    assert _value(samples, "bidcore_notices_total", kind="win", result="accepted") == 0
    assert _series(samples, "bidcore_requests_total") == {}  # no engine yet
    for _ in range(3):
        metrics.record_response("bid", 200)
    metrics.record_response("bid", 204)
    metrics.record_response("/wp-login.php", 404)  # not a route: counted as other
    metrics.record_response("bid", 1234)
    metrics.record_reload(True)
    metrics.record_reload(False)
    metrics.record_reload(False)
    metrics.record_notice("win", True)
    metrics.record_notice("loss", False)
    metrics.record_notice("click", True)
    samples = _samples(metrics)
    responses = {
        (dict(k)["route"], dict(k)["status"]): v
        for k, v in _series(samples, "bidcore_http_responses_total").items()
    }
    assert responses == {("bid", "200"): 3, ("bid", "204"): 1, ("other", "404"): 1,
                         ("bid", "other"): 1}  # fmt: skip
    assert _value(samples, "bidcore_reloads_total", result="ok") == 1
    assert _value(samples, "bidcore_reloads_total", result="failed") == 2
    notices = {
        (dict(k)["kind"], dict(k)["result"]): v
        for k, v in _series(samples, "bidcore_notices_total").items()
    }
    assert notices == {
        **{(k, r): 0 for k in ("win", "bill", "loss", "other") for r in ("accepted", "rejected")},
        ("win", "accepted"): 1,
        ("loss", "rejected"): 1,
        ("other", "accepted"): 1,
    }


def test_spend_is_what_bill_notices_say_with_bounded_labels() -> None:
    engine = _engine()
    campaign = engine.config.campaigns[0].id
    metrics = BidderMetrics(engine)
    # A clearing price of 2.50 CPM billed twice: two impressions at 0.0025 each.
    metrics.record_spend(campaign, None, 2_500_000)
    metrics.record_spend(campaign, "USD", 2_500_000)
    metrics.record_spend(campaign, "EUR", 1_000_000)  # a currency of the config's FX table
    metrics.record_spend("not-a-campaign", "USD", 9_000_000)  # whatever the query string says
    metrics.record_spend(campaign, "CHF", 9_000_000)  # a currency the FX table lacks
    samples = _samples(metrics)
    assert _value(samples, "bidcore_spend_total", campaign=campaign, currency="USD") == 0.005
    assert _value(samples, "bidcore_spend_total", campaign=campaign, currency="EUR") == 0.001
    assert _value(samples, "bidcore_spend_total", campaign="_other", currency="USD") == 0.009
    assert _value(samples, "bidcore_spend_total", campaign=campaign, currency="other") == 0.009
    assert len(_series(samples, "bidcore_spend_total")) == 4


def test_decision_log_counts_are_exported_and_kept_across_logs() -> None:
    first = DecisionLog(capacity=256)
    engine = _engine(first)
    metrics = BidderMetrics(engine)
    assert _series(_samples(metrics), "bidcore_decision_log_records_total") == {}
    metrics.track_decision_log(first.stats)
    _feed(engine, _corpus()[:1000])
    stats = first.stats()
    samples = _samples(metrics)
    assert stats["logged"] > 0
    assert stats["dropped"] > 0
    for outcome in ("logged", "dropped"):
        exported = _value(samples, "bidcore_decision_log_records_total", outcome=outcome)
        assert exported == stats[outcome]
    assert _value(samples, "bidcore_decision_log_records_total", outcome="lost") == 0
    if "pending" in stats:
        assert _value(samples, "bidcore_decision_log_pending") == stats["pending"]

    second = DecisionLog(capacity=256)
    successor = _engine(second)
    metrics.track(successor)
    metrics.track_decision_log(second.stats)
    metrics.track_decision_log(second.stats)  # a new bound method of the same log: no fold
    _feed(successor, _corpus()[1000:1100])
    samples = _samples(metrics)
    logged = _value(samples, "bidcore_decision_log_records_total", outcome="logged")
    assert logged == stats["logged"] + second.stats()["logged"]
    metrics.track_decision_log(None)
    after = _value(_samples(metrics), "bidcore_decision_log_records_total", outcome="logged")
    assert after == logged


# --- Several workers ----------------------------------------------------------------------------
# Two BidderMetrics on one directory are two workers: each names its file with a token besides
# the pid.


def _worker(directory: Path, engine: bidcore.Engine | None, **kwargs: Any) -> BidderMetrics:
    return BidderMetrics(engine, psi_window=None, shared_dir=directory, **kwargs)


def test_each_worker_exports_the_sum_of_every_worker(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    corpus = _corpus()
    log = DecisionLog(capacity=256)
    one, two, whole = _engine(log), _engine(), _engine()
    first, second = _worker(tmp_path, one), _worker(tmp_path, two)
    first.track_decision_log(log.stats)
    _feed(one, corpus[:1500])
    _feed(two, corpus[1500:])
    _feed(whole, corpus)  # one engine that saw everything: what the sums must show
    for _ in range(3):
        first.record_response("bid", 200)
    second.record_response("bid", 200)
    second.record_response("bid", 204)
    first.publish()
    (tmp_path / "junk.json").write_text("{")  # not a snapshot: left out, with an error logged
    (tmp_path / ".123-0123abcd.json.tmp").write_text("{")  # a write not finished: left out

    samples = _samples(second)  # its own counts, taken now, and first's file
    expected = _samples(BidderMetrics(whole, psi_window=None))
    for name in ("bidcore_requests_total", "bidcore_bids_total", "bidcore_imp_bids_total"):
        assert _value(samples, name) == _value(expected, name) > 0, name
    for name in (
        "bidcore_no_bids_total",
        "bidcore_campaign_imp_bids_total",
        "bidcore_campaign_bid_value_total",
        "bidcore_model_score_bucket",
        "bidcore_model_score_count",
    ):
        assert _series(samples, name) == _series(expected, name), name
    # The latency buckets, cumulative, are the two workers' native counts summed.
    latencies = [engine.metrics()["latency"] for engine in (one, two)]
    running = 0
    buckets = _buckets(samples, "bidcore_decision_seconds")
    assert len(buckets) == len(latencies[0]["counts"])
    for (_, cumulative), *counts in zip(
        buckets, *(lat["counts"] for lat in latencies), strict=True
    ):
        running += sum(counts)
        assert cumulative == running
    assert running == len(corpus)
    total = sum(lat["sum_s"] for lat in latencies)
    assert _value(samples, "bidcore_decision_seconds_sum") == pytest.approx(total, rel=1e-12)
    # PSI from the summed live histograms: the drift of the engine that saw all the traffic.
    psi = {
        (dict(k)["role"], dict(k)["feature"]): v
        for k, v in _series(samples, "bidcore_model_psi").items()
    }
    assert psi == pytest.approx(_psi(whole))
    assert psi != pytest.approx(_psi(two))
    responses = {
        (dict(k)["route"], dict(k)["status"]): v
        for k, v in _series(samples, "bidcore_http_responses_total").items()
    }
    assert responses == {("bid", "200"): 4, ("bid", "204"): 1}
    assert _value(samples, "bidcore_reloads_total", result="ok") == 0
    stats = log.stats()
    assert (
        _value(samples, "bidcore_decision_log_records_total", outcome="logged") == stats["logged"]
    )
    if "pending" in stats:
        assert _value(samples, "bidcore_decision_log_pending") == stats["pending"]
    # Whichever worker answers, the same counters, to the last bit of the float sums.
    assert _counter_samples(_samples(first)) == _counter_samples(samples)
    snapshots = sorted(p.name for p in tmp_path.glob("*.json") if p.name != "junk.json")
    assert len(snapshots) == 2
    assert all(re.fullmatch(r"\d+-[0-9a-f]{8}\.json", name) for name in snapshots), snapshots
    _samples(second)  # the file unchanged: not read (nor logged) again
    logged = [r.getMessage().split(" ")[0] for r in caplog.records]
    assert logged == [str(tmp_path / "junk.json")] * 2  # once by each worker


def test_a_worker_that_exits_still_counts_and_its_successor_starts_from_zero(
    tmp_path: Path,
) -> None:
    corpus = _corpus()
    mine = _engine()
    # A short interval: the others' snapshots older than 5 of them come from stopped workers.
    survivor = _worker(tmp_path, mine, share_interval=0.02)
    loaded = "bidcore_engine_loaded_timestamp_seconds"
    own_load = _value(_samples(survivor), loaded)
    stopping, crashing = _engine(), _engine()
    stopped, crashed = _worker(tmp_path, stopping), _worker(tmp_path, crashing)
    _feed(mine, corpus[:500])
    _feed(stopping, corpus[500:1000])
    _feed(crashing, corpus[1000:1500])
    stopped.publish()
    crashed.publish()
    s1 = _samples(survivor)
    assert _value(s1, "bidcore_requests_total") == 1500
    assert _value(s1, loaded) > own_load  # the latest load among the running workers

    stopped.stop_publishing()  # a clean exit writes a last snapshot, marked as such
    del crashed  # a crash: its last snapshot stays, unmarked, and ages
    time.sleep(0.2)
    s2 = _samples(survivor)
    _assert_grown(s1, s2)
    assert _value(s2, "bidcore_requests_total") == 1500
    assert _value(s2, loaded) == own_load  # gauges: the running workers only

    restarting = _engine()  # the replacement: a new process, a new file, counting from zero
    restarted = _worker(tmp_path, restarting)
    _feed(restarting, corpus[1500:2000])
    _feed(mine, corpus[2000:2100])
    restarted.publish()
    s3 = _samples(survivor)
    _assert_grown(s2, s3)
    assert _value(s3, "bidcore_requests_total") == 2100
    assert _value(s3, loaded) > own_load
    assert len(list(tmp_path.glob("*.json"))) == 4
    # The restarted worker answers the same (what the survivor counted since its last scrape
    # reached the file at that scrape).
    assert _counter_samples(_samples(restarted)) == _counter_samples(s3)


def test_a_worker_publishes_on_its_own_every_interval(tmp_path: Path) -> None:
    engine = _engine()
    worker = _worker(tmp_path, engine, share_interval=0.05)
    reader = _worker(tmp_path, None)  # a worker with no engine yet: the others' counts only
    worker.start_publishing()
    try:
        assert _value(_samples(reader), "bidcore_requests_total") == 0
        _feed(engine, _corpus()[:300])
        deadline = time.monotonic() + 10
        while _value(_samples(reader), "bidcore_requests_total") != 300:
            assert time.monotonic() < deadline, "no snapshot written in 10 s"
            time.sleep(0.02)
    finally:
        worker.stop_publishing()
    _feed(engine, _corpus()[300:400])  # after the last snapshot: not published any more
    time.sleep(0.2)
    assert _value(_samples(reader), "bidcore_requests_total") == 300


def test_without_a_shared_directory_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    engine = _engine()
    metrics = BidderMetrics(engine)
    metrics.start_publishing()
    _feed(engine, _corpus()[:10])
    metrics.publish()
    assert _value(_samples(metrics), "bidcore_requests_total") == 10
    metrics.stop_publishing()
    assert list(tmp_path.iterdir()) == []


# --- The Grafana dashboard ---------------------------------------------------------------------


def _strings(node: Any, keys: tuple[str, ...]) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in keys and isinstance(value, str):
                yield value
            else:
                yield from _strings(value, keys)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item, keys)


def _everything_exported() -> set[str]:
    """Every metric and sample name of a bidder that has bid, reloaded, taken notices and
    logged decisions."""
    log = DecisionLog(capacity=1024)
    engine = _arm_engine(log=log)
    metrics = BidderMetrics(engine)
    metrics.track_decision_log(log.stats)
    _feed(engine, _corpus()[:500])
    metrics.record_response("bid", 200)
    metrics.record_reload(True)
    metrics.record_notice("win", True)
    body, _ = metrics.render()
    names = set()
    for family in text_string_to_metric_families(body.decode()):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


def test_every_dashboard_query_names_a_metric_the_bidder_exports() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = list(_strings(dashboard, ("expr", "query", "definition")))
    used = {name for query in queries for name in re.findall(r"\bbidcore_[a-zA-Z0-9_]+", query)}
    exported = _everything_exported()
    assert used - exported == set()
    # The panels the issue asks for are there.
    for name in (
        "bidcore_requests_total",
        "bidcore_bids_total",
        "bidcore_no_bids_total",
        "bidcore_decision_seconds_bucket",
        "bidcore_campaign_imp_bids_total",
        "bidcore_campaign_bid_value_total",
        "bidcore_experiment_requests_total",
        "bidcore_experiment_bids_total",
        "bidcore_model_score_bucket",
        "bidcore_model_psi",
        "bidcore_http_responses_total",
        "bidcore_reloads_total",
        "bidcore_decision_log_records_total",
    ):
        assert name in used, name


def test_the_dashboard_is_a_grafana_dashboard_on_a_prometheus_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 39
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        assert all(t["expr"] for t in panel["targets"])
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
    psi = [p for p in panels if any("bidcore_model_psi" in t["expr"] for t in p["targets"])]
    steps = [s["value"] for s in psi[0]["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert steps == [None, 0.1, 0.25]
