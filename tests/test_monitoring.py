"""``bidcore.monitoring``: the population stability index, worked by hand; the drift of a real
engine's model (an artifact built here from the OpenRTB corpus) as shifted traffic comes in;
and ``bidcore monitor``, offline over request files and against a live ``/metrics`` page."""

from __future__ import annotations

import contextlib
import http.server
import json
import math
import threading
from collections.abc import Iterator
from pathlib import Path

import lightgbm
import numpy as np
import pytest

import bidcore
from bidcore import features
from bidcore.artifact import FeatureHistogram, Histogram
from bidcore.cli import main
from bidcore.compile import build_artifact
from bidcore.metrics import BidderMetrics
from bidcore.monitoring import (
    drift,
    drift_rows,
    format_drift,
    histogram_psi,
    psi,
    reading,
    scrape,
)

ROOT = Path(__file__).parent.parent
CORPUS = ROOT / "tests" / "fixtures" / "openrtb" / "requests.jsonl"
NOW = 1_795_390_200.0

SPEC = """
[[features]]
name = "floor"
number = "imp.bidfloor"
[[features]]
name = "devicetype"
number = "device.devicetype"
[[features]]
name = "area"
derived = "banner_area"
[[features]]
name = "os"
text = "device.os"
vocabulary = ["iOS", "Android"]
[[features]]
name = "campaign_bid"
campaign = "campaign_bid"
"""

CONFIG = """
[bidder]
currency = "USD"
[models]
ctr = "ctr"
[[campaigns]]
id = "performance"
goal = "cpc"
target_cpc = 0.8
max_bid = 20
features = { campaign_bid = 2.0 }
"""

CREATIVE = """
[[campaigns.creatives]]
id = "banner-{w}x{h}"
media = "banner"
w = {w}
h = {h}
adomain = ["shop.example"]
markup = "<a href='https://shop.example/?c={{campaign}}'>ad</a>"
"""

SIZES = [(300, 250), (320, 50), (728, 90), (300, 600), (160, 600), (320, 480)]


# --- PSI by hand -------------------------------------------------------------------------------


def test_psi_of_a_hand_worked_example() -> None:
    # Reference shares 0.5, 0.3, 0.2; live shares 0.3, 0.3, 0.4:
    #   (0.3 - 0.5) * ln(0.3 / 0.5) = -0.2 * -0.5108256 = 0.1021651
    #   (0.3 - 0.3) * ln(1)                              = 0
    #   (0.4 - 0.2) * ln(0.4 / 0.2) =  0.2 *  0.6931472 = 0.1386294
    #                                               sum = 0.2407946
    assert psi([50, 30, 20], [300, 300, 400]) == pytest.approx(0.2407946, abs=1e-7)
    assert reading(0.2407946) == "moderate"


def test_an_empty_bin_is_floored_at_epsilon() -> None:
    # Reference shares 1.0 and 0 (floored to 1e-4); live shares 0.9 and 0.1:
    #   (0.9 - 1.0)    * ln(0.9 / 1.0)    = -0.1    * -0.1053605 = 0.0105361
    #   (0.1 - 0.0001) * ln(0.1 / 0.0001) =  0.0999 *  6.9077553 = 0.6900848
    #                                                         sum = 0.7006208
    assert psi([100, 0], [90, 10]) == pytest.approx(0.7006208, abs=1e-7)
    # A larger floor makes the same shift look smaller: ln(0.1 / 0.01) = 2.3025851.
    assert psi([100, 0], [90, 10], epsilon=0.01) == pytest.approx(
        0.0105361 + 0.09 * 2.3025851, abs=1e-7
    )
    # Bins empty on both sides add nothing.
    assert psi([100, 0, 0], [90, 10, 0]) == psi([100, 0], [90, 10])


def test_identical_distributions_have_psi_zero_whatever_the_volume() -> None:
    reference = [120, 340, 80, 0, 460]
    assert psi(reference, reference) == 0.0
    assert psi(reference, [c * 7 for c in reference]) == pytest.approx(0.0, abs=1e-15)


def test_a_shifted_distribution_has_a_large_psi() -> None:
    rng = np.random.default_rng(5)
    edges = np.quantile(rng.normal(0, 1, 20_000), np.linspace(0, 1, 11))
    inner = edges[1:-1]

    def counts(values: np.ndarray) -> list[int]:
        binned = np.bincount(np.searchsorted(inner, values, side="right"), minlength=10)
        return [int(c) for c in binned]

    reference = counts(rng.normal(0, 1, 20_000))
    same = psi(reference, counts(rng.normal(0, 1, 5_000)))
    half_sigma = psi(reference, counts(rng.normal(0.5, 1, 5_000)))
    one_sigma = psi(reference, counts(rng.normal(1.0, 1, 5_000)))
    assert same < 0.01
    assert reading(same) == "stable"
    assert 0.1 < half_sigma < one_sigma
    assert one_sigma > 0.25
    assert reading(one_sigma) == "significant"


def test_missing_values_are_a_bin_of_their_own() -> None:
    reference = FeatureHistogram(edges=[0.0, 1.0, 2.0], counts=[50, 50], missing=0)
    # Reference 0.5, 0.5, 0 (floored to 1e-4); live 0.4, 0.4, 0.2:
    #   2 * (0.4 - 0.5) * ln(0.8)        = 2 * 0.0223144 = 0.0446287
    #   (0.2 - 0.0001) * ln(0.2 / 0.0001) = 0.1999 * 7.6009025 = 1.5194204
    assert histogram_psi(reference, [40, 40], missing=20) == pytest.approx(1.5640491, abs=1e-6)
    # Without missing values on either side there is no extra bin.
    assert histogram_psi(reference, [40, 40]) == 0.0
    # A score histogram has no missing count: the live NaN scores alone make the bin.
    score = Histogram(edges=[0.0, 0.5, 1.0], counts=[50, 50])
    assert histogram_psi(score, [40, 40], missing=20) == pytest.approx(1.5640491, abs=1e-6)
    assert math.isnan(histogram_psi(reference, [0, 0]))


def test_psi_refuses_what_it_cannot_compare() -> None:
    with pytest.raises(ValueError, match="3 reference bins but 2 live bins"):
        psi([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="negative"):
        psi([1, 2], [3, -1])
    with pytest.raises(ValueError, match="the live histogram has no values"):
        psi([1, 2], [0, 0])
    with pytest.raises(ValueError, match="the reference histogram has no values"):
        psi([0, 0], [1, 2])


def test_the_usual_reading() -> None:
    assert [reading(v) for v in (0.0, 0.0999, 0.1, 0.25, 0.2501, math.nan)] == [
        "stable",
        "stable",
        "moderate",
        "moderate",
        "significant",
        "no data",
    ]


# --- A real engine's drift ---------------------------------------------------------------------


def _corpus() -> list[bytes]:
    return [line for line in CORPUS.read_bytes().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def bidder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cpc bidder of banners with a click model trained on the corpus' banner imps, its
    reference histograms computed on the rows the model was trained on."""
    root = tmp_path_factory.mktemp("bidder")
    (root / "features.toml").write_text(SPEC)
    spec = features.load(root / "features.toml")
    rows = features.matrix_with_index(
        _corpus(), spec, campaign={"campaign_bid": 2.0}, skip_invalid=True
    ).values
    rows = rows[~np.isnan(rows[:, 2])]  # banner imps: those with an area
    floor, devicetype, ios = np.nan_to_num(rows[:, 0]), rows[:, 1], rows[:, 3] == 0
    # Clicks depend on the device type, the OS and the floor: the score moves when they do.
    logit = -2.0 + 0.6 * (devicetype == 4) - 0.8 * (devicetype == 2) + 0.5 * ios + 0.2 * floor
    labels = (np.random.default_rng(3).random(len(rows)) < 1 / (1 + np.exp(-logit))).astype(float)
    data = lightgbm.Dataset(
        rows,
        labels,
        feature_name=spec.names,
        categorical_feature=spec.categorical_columns(),
        free_raw_data=False,
    )
    params = {"objective": "binary", "num_leaves": 7, "min_data_in_leaf": 5, "verbose": -1}
    params |= {"num_threads": 1, "deterministic": True, "seed": 3}
    lightgbm.train(params, data, num_boost_round=15).save_model(str(root / "ctr.txt"))
    build_artifact(
        root / "ctr.txt",
        root / "ctr",
        features=root / "features.toml",
        sample=rows,
        name="ctr",
        version="1",
        cache_dir=root / "cache",
        progress=False,
    )
    creatives = "".join(CREATIVE.format(w=w, h=h) for w, h in SIZES)
    (root / "bidder.toml").write_text(CONFIG + creatives)
    return root


def _shifted(bodies: list[bytes]) -> list[bytes]:
    """The corpus as another exchange might send it: every device a connected TV (type 3)
    on an OS the model has never seen."""
    out = []
    for body in bodies:
        try:
            request = json.loads(body)
        except ValueError:
            continue
        if not isinstance(request, dict):
            continue
        device = request.setdefault("device", {})
        if isinstance(device, dict):
            device["devicetype"] = 3
            device["os"] = "Tizen"
        out.append(json.dumps(request).encode())
    return out


def _feed(engine: bidcore.Engine, bodies: list[bytes]) -> None:
    for body in bodies:
        with contextlib.suppress(bidcore.InvalidRequestError):
            engine.bid(body, now=NOW)


def test_drift_of_a_real_engine_rises_with_shifted_traffic(bidder_dir: Path) -> None:
    engine = bidcore.Engine.load(bidder_dir / "bidder.toml")
    assert drift(engine)["ctr"].scores == 0
    assert math.isnan(drift(engine)["ctr"].score)

    _feed(engine, _corpus())
    before = drift(engine)["ctr"]
    assert before.model == "ctr@1"
    assert before.scores > 1000
    assert {"devicetype", "os"} <= set(before.features) <= {"floor", "devicetype", "area", "os"}
    # The traffic the reference was computed on, less the imps no creative fits: close to it.
    assert all(reading(v) != "significant" for v in [before.score, *before.features.values()])

    _feed(engine, _shifted(_corpus()) * 2)
    after = drift(engine)["ctr"]
    assert after.scores > before.scores
    assert after.features["devicetype"] > 0.25 + before.features["devicetype"]
    assert after.features["os"] > 0.25 + before.features["os"]
    assert reading(after.features["devicetype"]) == "significant"
    assert after.score > before.score + 0.25
    # The shifted requests are the corpus' own in every other respect: those features hold still.
    for feature in set(after.features) - {"devicetype", "os"}:
        assert after.features[feature] == pytest.approx(before.features[feature])
    # What moved most comes first in the table, after the score.
    rows = drift_rows({"ctr": after})
    assert rows[0].feature == "score"
    assert [r.psi for r in rows[1:]] == sorted((r.psi for r in rows[1:]), reverse=True)
    assert {rows[1].feature, rows[2].feature} == {"devicetype", "os"}


def test_monitor_offline_runs_a_config_over_request_files(
    bidder_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shifted = tmp_path / "shifted.jsonl"
    shifted.write_bytes(b"\n".join(_shifted(_corpus())) + b"\n")
    config = str(bidder_dir / "bidder.toml")
    assert main(["monitor", "--config", config, str(shifted), "--now", str(NOW)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["role", "model", "feature", "psi", "reading"]
    table = {line.split()[2]: line.split() for line in lines[1:]}
    assert table["devicetype"][:2] == ["ctr", "ctr@1"]
    assert table["devicetype"][4] == "significant"
    assert float(table["devicetype"][3]) > 0.25
    assert "score" in table
    assert "requests" in err
    # The same with a threshold: the exit status says drift was found.
    status = main(["monitor", "--config", config, str(shifted), "--fail-above", "0.25"])
    assert status == 1
    capsys.readouterr()
    assert main(["monitor", "--config", config, str(CORPUS), "--fail-above", "5"]) == 0


@pytest.fixture
def served_metrics(bidder_dir: Path) -> Iterator[tuple[str, BidderMetrics, bidcore.Engine]]:
    """A real HTTP endpoint serving a real collector's page."""
    engine = bidcore.Engine.load(bidder_dir / "bidder.toml")
    metrics = BidderMetrics(engine)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, content_type = metrics.render(self.headers.get("Accept"))
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", metrics, engine
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_monitor_reads_the_psi_a_running_bidder_exports(
    served_metrics: tuple[str, BidderMetrics, bidcore.Engine],
    capsys: pytest.CaptureFixture[str],
) -> None:
    address, _, engine = served_metrics
    assert scrape(address) == []  # no traffic yet: no PSI series
    _feed(engine, _corpus() + _shifted(_corpus()))
    expected = drift(engine)["ctr"]
    for url in (address, f"http://{address}", f"http://{address}/metrics"):
        rows = scrape(url)
        assert rows[0][:3] == ("ctr", "ctr@1", "score")
        assert rows[0].psi == pytest.approx(expected.score)
        assert {r.feature: r.psi for r in rows[1:]} == pytest.approx(expected.features)
    assert main(["monitor", address]) == 0
    out = capsys.readouterr().out
    assert out == format_drift(scrape(address)) + "\n"
    assert "devicetype" in out
    assert main(["monitor", "127.0.0.1:9"]) == 2  # nothing listens on the discard port
    assert "cannot read" in capsys.readouterr().err
