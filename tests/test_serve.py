"""``bidcore serve`` as users run it: the console script in a subprocess on a free port, spoken
to over HTTP; reloads by SIGHUP and ``/admin/reload`` under traffic; the decision log it
writes; ``bidcore replay`` against it; granian and several workers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from bidcore import demo
from bidcore.decisionlog import DecisionRecord, NoticeRecord, read, validate
from bidcore.replay import ERROR, read_requests, replay_async

BIN = Path(sys.executable).parent
CORPUS = Path(__file__).parent / "fixtures" / "openrtb" / "requests.jsonl"
SAMPLE = demo.sample_request()
MODELS = demo.config_path().parent / "models"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_config(path: Path, *, seat: str) -> Path:
    """The demo config with another seat and absolute model paths."""
    text = demo.config_path().read_text()
    text = text.replace('seat = "bidcore-demo"', f'seat = "{seat}"', 1)
    text = text.replace('ctr = "models/ctr"', f'ctr = "{MODELS / "ctr"}"', 1)
    text = text.replace('cvr = "models/cvr"', f'cvr = "{MODELS / "cvr"}"', 1)
    path.write_text(text)
    return path


@dataclass
class Answer:
    status: int
    body: bytes


def http(url: str, body: bytes | None = None, timeout: float = 10.0) -> Answer:
    """One request on a fresh connection (POST when there is a body)."""
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, response.read())
    except urllib.error.HTTPError as err:
        return Answer(err.code, err.read())


def seat(url: str) -> str:
    answer = http(f"{url}/openrtb2/bid", SAMPLE)
    assert answer.status == 200, answer
    name: str = json.loads(answer.body)["seatbid"][0]["seat"]
    return name


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    line: str
    cwd: Path

    def stop(self) -> str:
        """Stop it as Ctrl-C does (a graceful shutdown: the decision log's last drain); its
        standard error."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            _, stderr = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate()
        return stderr


def start(
    *args: str, cwd: Path, ready_on_fresh_connections: int = 1, env: dict[str, str] | None = None
) -> Server:
    """``bidcore serve ARGS --port P``, once ``/readyz`` answers 200 (that many times in a row,
    each on a new connection: with several workers, most of them are up); ``env`` is its
    environment (default: this process's)."""
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "bidcore"), "serve", "--port", str(port), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    url = f"http://127.0.0.1:{port}"
    server = Server(process, url, line, cwd)
    deadline = time.monotonic() + 60
    in_a_row = 0
    while in_a_row < ready_on_fresh_connections:
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"not ready: {line!r}\n{server.stop()}")
        try:
            in_a_row = in_a_row + 1 if http(f"{url}/readyz", timeout=1).status == 200 else 0
        except OSError:
            in_a_row = 0
            time.sleep(0.05)
    return server


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``bidcore serve`` with nothing but a port: the bundled demo, logging to ./."""
    cwd = tmp_path_factory.mktemp("demo-server")
    server = start(cwd=cwd)
    yield server
    server.stop()


def metric(text: str, name: str) -> float:
    """The value of one sample line of a Prometheus exposition (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# --- The embedded default --------------------------------------------------------------------


def test_with_no_config_it_serves_the_demo_and_says_how_to_try_it(demo_server: Server) -> None:
    line = demo_server.line
    assert line.startswith(f"bidcore serve: {demo_server.url} (uvicorn, 1 worker, ")
    assert str(demo.config_path()) in line
    curl = line.split("try: ", 1)[1].split()
    assert curl[:2] == ["curl", "-s"]
    assert curl[-1] == f"{demo_server.url}/openrtb2/bid"
    assert Path(curl[-2].removeprefix("@")).read_bytes() == SAMPLE
    assert seat(demo_server.url) == "bidcore-demo"
    assert http(f"{demo_server.url}/healthz").status == 200


def test_the_default_decision_log_is_under_the_current_directory(demo_server: Server) -> None:
    shown = Path(demo_server.line.split("decision log ", 1)[1].split(")", 1)[0])
    assert shown == demo_server.cwd / "bidcore-decisions"
    assert shown.is_dir()


def test_replay_sends_the_corpus_and_prints_the_report(demo_server: Server) -> None:
    done = subprocess.run(
        [str(BIN / "bidcore"), "replay", demo_server.url, str(CORPUS), "--count", "400"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    first, statuses, latency = done.stdout.splitlines()
    assert first.startswith("400 requests in ")
    assert "bids (" in first
    assert statuses.startswith("status: 200 ")
    assert latency.startswith("latency ms: p50 ")


def test_replay_exits_1_when_nothing_answers() -> None:
    done = subprocess.run(
        [str(BIN / "bidcore"), "replay", f"http://127.0.0.1:{free_port()}", "--count", "3"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 1
    assert "status: error 3" in done.stdout


def test_gzip_bodies_over_http(demo_server: Server) -> None:
    bodies = read_requests([CORPUS])[:300]
    plain = asyncio.run(replay_async(demo_server.url, bodies, concurrency=2))
    zipped = asyncio.run(replay_async(demo_server.url, bodies, concurrency=2, compress=True))
    assert zipped.statuses == plain.statuses
    assert plain.failed == 0


# --- Reloads under traffic and the decision log ----------------------------------------------


def test_reloads_under_traffic_fail_no_request_and_every_decision_is_logged(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path / "bidder.toml", seat="seat-one")
    log_dir = tmp_path / "decisions"
    server = start("--config", str(config), "--log-dir", str(log_dir), cwd=tmp_path)
    bodies = read_requests([CORPUS])
    steps: list[tuple[str, int]] = []

    async def reload_while_traffic_runs(traffic: asyncio.Task[object]) -> None:
        await asyncio.sleep(0.3)
        write_config(config, seat="seat-two")
        server.process.send_signal(signal.SIGHUP)
        steps.append(("sighup", 0))
        await asyncio.sleep(0.4)
        config.write_text("[[campaigns]]\nid = 'broken'\n")
        answer = await asyncio.to_thread(http, f"{server.url}/admin/reload", b"")
        steps.append(("broken", answer.status))
        write_config(config, seat="seat-three")
        answer = await asyncio.to_thread(http, f"{server.url}/admin/reload", b"")
        steps.append(("admin", answer.status))
        assert not traffic.done(), "the traffic ended before the reloads: send more"

    async def main() -> object:
        traffic = asyncio.create_task(
            # Long enough for the reloads below on a slow machine, cycling through the corpus.
            replay_async(server.url, bodies, concurrency=4, duration=3.0, timeout=10)
        )
        await reload_while_traffic_runs(traffic)
        return await traffic

    try:
        report = asyncio.run(main())
        assert steps == [("sighup", 0), ("broken", 500), ("admin", 200)]
        assert report.statuses[ERROR] == 0, report.summary()
        assert report.failed == 0, report.summary()
        assert set(report.statuses) <= {200, 204, 400}
        assert seat(server.url) == "seat-three"
        assert http(f"{server.url}/openrtb2/win", None).status == 400  # price missing
        notice = http(f"{server.url}/openrtb2/win?c=x&cr=y&imp=1&req=r&price=1.25")
        assert notice.status == 204
        metrics = http(f"{server.url}/metrics").body.decode()
    finally:
        stderr = server.stop()
    assert metric(metrics, 'bidcore_reloads_total{result="ok"}') == 2, stderr
    assert metric(metrics, 'bidcore_reloads_total{result="failed"}') == 1, stderr
    assert "failed, still serving the previous engine" in stderr
    bid_requests = report.requests + 1  # and the one `seat` sent
    answered = sum(
        metric(metrics, f'bidcore_http_responses_total{{route="bid",status="{status}"}}')
        for status in (200, 204, 400)
    )
    assert answered == bid_requests
    assert metric(metrics, "bidcore_requests_total") == bid_requests  # across the reloads
    assert metric(metrics, 'bidcore_notices_total{kind="win",result="accepted"}') == 1
    records = Counter(type(record) for record in read(log_dir))
    assert records[DecisionRecord] == bid_requests
    assert records[NoticeRecord] == 1
    # The contract: every record the server wrote, as written, against the published schema
    # (bidcore/schemas/decision-v1.json, which tests/test_decision_schema.py holds to the Structs).
    published = json.loads(
        (Path(demo.__file__).parent.parent / "schemas" / "decision-v1.json").read_text()
    )
    files = sorted(log_dir.glob("*.jsonl"))
    raw = [json.loads(line) for path in files for line in path.read_bytes().splitlines() if line]
    assert len(raw) == bid_requests + 1
    assert [error for record in raw for error in validate(record, published)] == []


# --- granian, several workers ----------------------------------------------------------------


def test_granian_serves_and_reloads_on_sighup(tmp_path: Path) -> None:
    config = write_config(tmp_path / "bidder.toml", seat="seat-one")
    server = start("--server", "granian", "--config", str(config), "--no-log", cwd=tmp_path)
    try:
        assert "(granian, 1 worker" in server.line
        assert "decision log off" in server.line
        assert seat(server.url) == "seat-one"
        write_config(config, seat="seat-two")
        server.process.send_signal(signal.SIGHUP)  # to granian's main process: passed on
        deadline = time.monotonic() + 20
        while seat(server.url) != "seat-two":
            assert time.monotonic() < deadline, "SIGHUP did not reload the worker"
            time.sleep(0.05)
        write_config(config, seat="seat-three")
        reload = http(f"{server.url}/admin/reload", b"")
        assert reload.status == 200, reload.body
        assert seat(server.url) == "seat-three"
    finally:
        server.stop()


def test_with_two_workers_a_reload_reaches_every_worker(tmp_path: Path) -> None:
    config = write_config(tmp_path / "bidder.toml", seat="seat-one")
    server = start(
        "--workers",
        "2",
        "--config",
        str(config),
        "--no-log",
        cwd=tmp_path,
        ready_on_fresh_connections=10,
    )
    try:
        assert "(uvicorn, 2 workers" in server.line
        write_config(config, seat="seat-two")
        answer = http(f"{server.url}/admin/reload", b"")
        assert answer.status == 200, answer.body
        assert json.loads(answer.body)["ok"] is True
        deadline = time.monotonic() + 20  # the other worker's reload runs alongside
        while {seat(server.url) for _ in range(30)} != {"seat-two"}:
            assert time.monotonic() < deadline, "the reload did not reach every worker"
            time.sleep(0.1)
        write_config(config, seat="seat-three")
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while {seat(server.url) for _ in range(30)} != {"seat-three"}:
            assert time.monotonic() < deadline, "SIGHUP did not reload every worker"
            time.sleep(0.1)
    finally:
        server.stop()


def _bid_on_fresh_connections(url: str, count: int) -> None:
    """``count`` sample bids, each on a new connection, four at a time: the workers share
    the listening socket, so each worker accepts some of them."""
    with ThreadPoolExecutor(4) as pool:
        statuses = list(
            pool.map(lambda _: http(f"{url}/openrtb2/bid", SAMPLE).status, range(count))
        )
    assert statuses == [200] * count


def _worker_requests(shared: Path) -> dict[int, int]:
    """Requests by worker pid, as the workers last published them."""
    found = {}
    for path in shared.glob("*.json"):
        snapshot = json.loads(path.read_bytes())
        found[snapshot["pid"]] = snapshot["totals"]["requests"]
    return found


def _scrapes(url: str, count: int) -> list[tuple[float, float, float]]:
    """``count`` scrapes, each on a new connection (so by either worker): requests, bids and
    bid responses answered 200."""
    pages = [http(f"{url}/metrics").body.decode() for _ in range(count)]
    return [
        (
            metric(page, "bidcore_requests_total"),
            metric(page, "bidcore_bids_total"),
            metric(page, 'bidcore_http_responses_total{route="bid",status="200"}'),
        )
        for page in pages
    ]


def test_with_two_workers_metrics_count_the_whole_server(tmp_path: Path) -> None:
    # Under tmp_path, the run's metrics directory, where the workers publish their counts.
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    server = start(
        "--workers", "2", "--no-log", cwd=tmp_path, ready_on_fresh_connections=10, env=env
    )
    try:
        (shared,) = tmp_path.glob("bidcore-metrics-*")
        sent = 0
        deadline = time.monotonic() + 20
        while True:
            _bid_on_fresh_connections(server.url, 60)
            sent += 60
            time.sleep(2.0)  # more than the publishing interval (1 s)
            by_worker = _worker_requests(shared)
            assert sum(by_worker.values()) == sent
            if len(by_worker) == 2 and min(by_worker.values()) > 0:
                break
            assert time.monotonic() < deadline, f"one worker took every request: {by_worker}"
        assert _scrapes(server.url, 12) == [(sent, sent, sent)] * 12

        # A worker killed: uvicorn starts another (a new pid, from zero); the dead one's
        # counts stay in every scrape.
        os.kill(max(by_worker, key=by_worker.__getitem__), signal.SIGKILL)
        deadline = time.monotonic() + 20
        while len(_worker_requests(shared)) < 3:
            assert server.process.poll() is None
            assert time.monotonic() < deadline, "the killed worker was not replaced"
            assert _scrapes(server.url, 1) == [(sent, sent, sent)]
            time.sleep(0.2)
        _bid_on_fresh_connections(server.url, 20)
        sent += 20
        time.sleep(2.0)
        assert sum(_worker_requests(shared).values()) == sent
        assert _scrapes(server.url, 12) == [(sent, sent, sent)] * 12
    finally:
        stderr = server.stop()
    assert not shared.exists(), stderr  # the server removes it when it stops
