"""Metrics as operators see them: ``bidcore serve`` (the demo bidder with two layers of
experiments, and its decision log) in one process, Debian's ``prometheus`` scraping its
``/metrics`` every second in another; bid requests go over HTTP, the engine is reloaded halfway,
and the numbers are read back through Prometheus' query API. Every query of the Grafana
dashboard runs there too."""

from __future__ import annotations

import http.client
import json
import math
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from prometheus_client.parser import text_string_to_metric_families

import bidcore
from bidcore import demo
from bidcore.experiments import assign_request

ROOT = Path(__file__).parent.parent
CORPUS = ROOT / "tests" / "fixtures" / "openrtb" / "requests.jsonl"
DASHBOARD = ROOT / "examples" / "grafana" / "bidcore-dashboard.json"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
REQUESTS_PER_ENGINE = 400
# The demo bidder's experiments: two layers, one with two experiments and a bid multiplier,
# one with a single experiment over all of it.
EXPERIMENTS = """
[[experiments.layers]]
name = "pricing"
seed = "pricing-2026"

[[experiments.layers.experiments]]
key = "multiplier"
namespace = [0, 0.5]
arms = [{name = "control"}, {name = "higher", bid_multiplier = 1.25}]

[[experiments.layers.experiments]]
key = "discount"
namespace = [0.5, 1]
coverage = 0.8
arms = [{name = "control"}, {name = "half", bid_multiplier = 0.5}]

[[experiments.layers]]
name = "reach"
seed = "reach-2026"

[[experiments.layers.experiments]]
key = "narrow"
arms = [
    {name = "control"},
    {name = "two", campaigns = ["northwind-brand-display", "puzzlequest-installs"]},
]
"""

T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait(what: str, check: Callable[[], T | None], timeout: float = 20.0) -> T:
    """``check()``'s first answer other than None (or False), polled until ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            found = check()
        except OSError as err:  # not listening yet
            last_error = err
        else:
            if found is not None and found is not False:
                return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last error: {last_error})")


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def bidder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``bidcore serve`` on a free port; its address."""
    tmp = tmp_path_factory.mktemp("serve")
    config = tmp / "bidder.toml"  # the demo's, its models where they are, and experiments
    models = (demo.config_path().parent / "models").as_posix()
    config.write_text(
        demo.config_path().read_text().replace('"models/', f'"{models}/') + EXPERIMENTS
    )
    port = _free_port()
    command = [sys.executable, "-m", "bidcore.cli", "serve", "--port", str(port)]
    command += ["--config", str(config), "--log-dir", str(tmp / "decisions")]
    with (tmp / "serve.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
    address = f"127.0.0.1:{port}"
    try:
        _wait("bidcore serve to be ready", lambda: _get(f"http://{address}/readyz")[0] == 200)
        yield address
    finally:
        _stop(process)
        if process.returncode not in (0, -15):
            print((tmp / "serve.log").read_text())


@pytest.fixture(scope="module")
def prometheus(bidder: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Prometheus server scraping the bidder every second; its base URL, once the bidder's
    target is up."""
    tmp = tmp_path_factory.mktemp("prometheus")
    config = tmp / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: bidcore\n"
        "    static_configs:\n"
        f"      - targets: ['{bidder}']\n"
    )
    port = _free_port()
    command = [
        PROMETHEUS,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    with (tmp / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
    url = f"http://127.0.0.1:{port}"

    def target_up() -> bool:
        status, body = _get(f"{url}/api/v1/targets")
        targets = json.loads(body)["data"]["activeTargets"] if status == 200 else []
        return any(t["health"] == "up" for t in targets)

    try:
        _wait("Prometheus to scrape the bidder", target_up)
        yield url
    finally:
        _stop(process)


def _query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    status, body = _get(f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    answer = json.loads(body)
    assert status == 200, (expr, answer)
    assert answer["status"] == "success", (expr, answer)
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def _scalar(prometheus: str, expr: str) -> float:
    result = _query(prometheus, expr)
    assert len(result) == 1, (expr, result)
    return float(result[0]["value"][1])


def _bodies() -> list[bytes]:
    """The requests ``traffic`` sends."""
    corpus = [line for line in CORPUS.read_bytes().splitlines() if line.strip()]
    return corpus[: 2 * REQUESTS_PER_ENGINE]


def _post(connection: http.client.HTTPConnection, path: str, body: bytes) -> int:
    connection.request("POST", path, body, {"content-type": "application/json"})
    response = connection.getresponse()
    response.read()
    return response.status


def _histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' ``histogram_quantile`` on cumulative (le, count) buckets, +Inf last:
    linear interpolation within the bucket holding the rank, the first bucket starting at 0,
    the +Inf bucket answering the highest finite bound."""
    rank = q * buckets[-1][1]
    for i, (le, cumulative) in enumerate(buckets):
        if cumulative >= rank:
            if math.isinf(le):
                return buckets[i - 1][0]
            start, below = (0.0, 0.0) if i == 0 else buckets[i - 1]
            return start + (le - start) * (rank - below) / (cumulative - below)
    raise AssertionError("no bucket holds the rank")


@pytest.fixture(scope="module")
def traffic(bidder: str, prometheus: str) -> Counter[int]:
    """Status counts of the corpus requests sent, half before and half after a reload of the
    engine, once Prometheus has scraped them all."""
    bodies = _bodies()
    statuses: Counter[int] = Counter()
    connection = http.client.HTTPConnection(bidder, timeout=10)
    for body in bodies[:REQUESTS_PER_ENGINE]:
        statuses[_post(connection, "/openrtb2/bid", body)] += 1
    assert _post(connection, "/admin/reload", b"") == 200
    for body in bodies[REQUESTS_PER_ENGINE : 2 * REQUESTS_PER_ENGINE]:
        statuses[_post(connection, "/openrtb2/bid", body)] += 1
    connection.close()
    sent = 2 * REQUESTS_PER_ENGINE

    def scraped() -> bool:
        return _query(prometheus, f"bidcore_requests_total == {sent}") != []

    _wait(f"Prometheus to see {sent} requests", scraped)
    time.sleep(1.5)  # one more scrape, so the page read below is the one Prometheus has
    return statuses


def test_prometheus_reads_back_the_bids_sent(prometheus: str, traffic: Counter[int]) -> None:
    sent = sum(traffic.values())
    assert set(traffic) <= {200, 204, 400}
    assert traffic[200] > 0
    assert traffic[204] > 0
    assert traffic[400] > 0  # the corpus has invalid requests: counted, answered 400
    assert _scalar(prometheus, "bidcore_requests_total") == sent
    assert _scalar(prometheus, "bidcore_bids_total") == traffic[200]
    assert _scalar(prometheus, 'bidcore_no_bids_total{reason="invalid"}') == traffic[400]
    assert _scalar(prometheus, "sum(bidcore_no_bids_total)") == traffic[204] + traffic[400]
    ok = _scalar(prometheus, 'bidcore_http_responses_total{route="bid",status="200"}')
    assert ok == traffic[200]
    # The reload replaced the engine halfway: the counters went on rather than restarting.
    assert _scalar(prometheus, 'bidcore_reloads_total{result="ok"}') == 1
    assert _scalar(prometheus, "resets(bidcore_requests_total[1h])") == 0
    assert _scalar(prometheus, "changes(bidcore_engine_loaded_timestamp_seconds[1h])") == 1


def test_prometheus_reads_back_the_arms(prometheus: str, traffic: Counter[int]) -> None:
    layers = bidcore.config.loads(demo.config_path().read_text() + EXPERIMENTS).experiments.layers
    requests: Counter[tuple[str, str]] = Counter()
    for body in _bodies():
        try:
            assigned = assign_request(body, layers)
        except bidcore.InvalidRequestError:
            continue
        for a in assigned.values():
            if a.arm is not None:
                requests[a.experiment, a.arm] += 1
    found = {
        (r["metric"]["experiment"], r["metric"]["arm"]): float(r["value"][1])
        for r in _query(prometheus, "bidcore_experiment_requests_total")
    }
    arms = [(e.key, a.name) for layer in layers for e in layer.experiments for a in e.arms]
    assert found == {arm: requests[arm] for arm in arms}  # summed over the reload
    valid = sum(traffic.values()) - traffic[400]
    assert requests["narrow", "control"] + requests["narrow", "two"] == valid  # all of a layer
    # Every bid was made in one arm of the narrow experiment.
    narrow = 'sum(bidcore_experiment_bids_total{experiment="narrow"})'
    assert _scalar(prometheus, narrow) == traffic[200]
    for name in ("requests", "bids", "imp_bids", "bid_value"):
        assert _scalar(prometheus, f"max(resets(bidcore_experiment_{name}_total[1h]))") == 0


def test_prometheus_reads_back_the_decision_latency(
    bidder: str, prometheus: str, traffic: Counter[int]
) -> None:
    sent = sum(traffic.values())
    assert _scalar(prometheus, "bidcore_decision_seconds_count") == sent
    assert _scalar(prometheus, 'bidcore_decision_seconds_bucket{le="+Inf"}') == sent
    mean = _scalar(prometheus, "bidcore_decision_seconds_sum / bidcore_decision_seconds_count")
    assert 0 < mean < 0.005
    # The median Prometheus computes from the scraped buckets is the one the page implies.
    _, page = _get(f"http://{bidder}/metrics")
    buckets = sorted(
        (float(s.labels["le"]), s.value)
        for family in text_string_to_metric_families(page.decode())
        for s in family.samples
        if s.name == "bidcore_decision_seconds_bucket"
    )
    for q in (0.5, 0.99):
        expected = _histogram_quantile(q, buckets)
        found = _scalar(prometheus, f"histogram_quantile({q}, bidcore_decision_seconds_bucket)")
        assert found == pytest.approx(expected, rel=1e-9)
    recent = _scalar(
        prometheus, "histogram_quantile(0.5, rate(bidcore_decision_seconds_bucket[1m]))"
    )
    assert 0 < recent < 0.005


def _dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every query of the dashboard (panels, annotations, variables), its
    Grafana variables replaced as Grafana does for "All"."""
    dashboard = json.loads(DASHBOARD.read_text())
    found = [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
    found += [(a["name"], a["expr"]) for a in dashboard["annotations"]["list"] if "expr" in a]
    found += [
        (v["name"], v["query"]["query"].removeprefix("label_values(").split(",")[0])
        for v in dashboard["templating"]["list"]
        if v["type"] == "query"
    ]
    replacements = {"$__rate_interval": "30s", "$instance": ".*", "$role": ".*"}
    for variable, value in replacements.items():
        found = [(where, expr.replace(variable, value)) for where, expr in found]
    assert all("$" not in expr for _, expr in found), found
    return found


def test_every_dashboard_query_runs_in_prometheus_and_has_data(
    prometheus: str, traffic: Counter[int]
) -> None:
    queries = _dashboard_queries()
    assert len(queries) > 20
    # Each runs (a syntax error fails _query) and answers: traffic was sent in the last 30 s,
    # the engine reloaded, the decision log is on.
    assert [(where, expr) for where, expr in queries if not _query(prometheus, expr)] == []
