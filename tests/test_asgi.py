"""``bidcore.asgi``: the app driven through the ASGI interface itself (receive and send
callables, no server), with real engines built from the bundled demo."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import bidcore
from bidcore import demo
from bidcore.asgi import (
    App,
    EngineHolder,
    Notice,
    NoticeError,
    SighupLatch,
    app,
    parse_notice,
)

SAMPLE = demo.sample_request()
MODELS = demo.config_path().parent / "models"


@dataclass
class Response:
    status: int
    headers: dict[bytes, bytes]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


async def call(
    application: App,
    method: str,
    path: str,
    *,
    body: bytes | Sequence[bytes] = b"",
    headers: Sequence[tuple[bytes, bytes]] = (),
    query: bytes = b"",
    client: tuple[str, int] | None = ("127.0.0.1", 40000),
    delay: float = 0.0,
) -> Response:
    """One request through the app; ``body`` as one message, or a sequence of chunks; ``delay``
    seconds before the body arrives (a slow client)."""
    chunks = [body] if isinstance(body, bytes) else list(body)
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if delay:
            await asyncio.sleep(delay)
        if messages:
            return messages.pop(0)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": [(k.lower(), v) for k, v in headers],
        "client": client,
    }
    await application(scope, receive, send)
    assert sent[0]["type"] == "http.response.start"
    assert all(m["type"] == "http.response.body" for m in sent[1:])
    return Response(
        sent[0]["status"],
        dict(sent[0].get("headers", [])),
        b"".join(m.get("body", b"") for m in sent[1:]),
    )


def run(application: App, method: str, path: str, **kwargs: Any) -> Response:
    return asyncio.run(call(application, method, path, **kwargs))


def request_with(**changes: Any) -> bytes:
    """The sample request with top-level fields or first-imp fields (``imp_*``) changed."""
    request = json.loads(SAMPLE)
    for key, value in changes.items():
        if key.startswith("imp_"):
            request["imp"][0][key.removeprefix("imp_")] = value
        else:
            request[key] = value
    return json.dumps(request).encode()


def write_config(path: Path, *, seat: str) -> Path:
    """The demo config with another seat and absolute model paths."""
    text = demo.config_path().read_text()
    text = text.replace('seat = "bidcore-demo"', f'seat = "{seat}"', 1)
    text = text.replace('ctr = "models/ctr"', f'ctr = "{MODELS / "ctr"}"', 1)
    text = text.replace('cvr = "models/cvr"', f'cvr = "{MODELS / "cvr"}"', 1)
    path.write_text(text)
    return path


def seat_of(response: Response) -> str:
    seat: str = json.loads(response.body)["seatbid"][0]["seat"]
    return seat


@pytest.fixture(scope="module")
def engine() -> bidcore.Engine:
    return bidcore.Engine.load(demo.config_path())


@pytest.fixture
def bidder(engine: bidcore.Engine) -> App:
    return app(engine)


def reloadable(config: Path, smoke: bytes | None = SAMPLE) -> App:
    holder = EngineHolder(
        loader=lambda: bidcore.Engine.load(config), smoke=smoke, source=str(config)
    )
    assert holder.load().ok
    return app(holder)


# --- POST /openrtb2/bid ----------------------------------------------------------------------


def test_a_bid_is_200_json_with_the_openrtb_version(bidder: App) -> None:
    response = run(bidder, "POST", "/openrtb2/bid", body=SAMPLE)
    assert response.status == 200
    assert response.headers[b"content-type"] == b"application/json"
    assert response.headers[b"x-openrtb-version"] == b"2.6"
    assert int(response.headers[b"content-length"]) == len(response.body)
    answer = json.loads(response.body)
    assert answer["id"] == "some-request-id"
    assert answer["seatbid"][0]["bid"][0]["impid"] == "some-impression-id"


def test_a_no_bid_is_204_without_a_body(bidder: App) -> None:
    response = run(bidder, "POST", "/openrtb2/bid", body=request_with(imp_bidfloor=900))
    assert (response.status, response.body) == (204, b"")
    assert response.headers[b"x-openrtb-version"] == b"2.6"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"id":"r1","imp":[', "invalid request: "),
        (b"not json at all", "invalid request: "),
        (b'{"id":"r1"}', "invalid request: imp"),
        (b"", "invalid request: "),
    ],
)
def test_an_invalid_request_is_400_with_the_reason(bidder: App, body: bytes, reason: str) -> None:
    response = run(bidder, "POST", "/openrtb2/bid", body=body)
    assert response.status == 400
    assert response.text.startswith(reason)
    assert response.headers[b"content-type"].startswith(b"text/plain")


def test_a_gzip_body_is_unzipped(bidder: App) -> None:
    plain = run(bidder, "POST", "/openrtb2/bid", body=SAMPLE)
    zipped = run(
        bidder,
        "POST",
        "/openrtb2/bid",
        body=gzip.compress(SAMPLE),
        headers=[(b"Content-Encoding", b"gzip")],
    )
    assert zipped.status == 200
    assert json.loads(zipped.body)["seatbid"] == json.loads(plain.body)["seatbid"]


def test_a_gzip_body_above_the_cap_once_unzipped_is_413(engine: bidcore.Engine) -> None:
    bomb = gzip.compress(b" " * 100_000 + SAMPLE)  # about 200 bytes on the wire
    response = run(
        app(engine, max_body_bytes=10_000),
        "POST",
        "/openrtb2/bid",
        body=bomb,
        headers=[(b"content-encoding", b"gzip")],
    )
    assert response.status == 413
    assert "unzipped" in response.text


def test_a_truncated_gzip_body_is_400(bidder: App) -> None:
    cut = gzip.compress(SAMPLE)[:-12]
    response = run(
        bidder, "POST", "/openrtb2/bid", body=cut, headers=[(b"content-encoding", b"gzip")]
    )
    assert response.status == 400
    assert response.text.startswith("bad gzip body")


def test_an_unknown_content_encoding_is_415(bidder: App) -> None:
    response = run(
        bidder, "POST", "/openrtb2/bid", body=SAMPLE, headers=[(b"content-encoding", b"br")]
    )
    assert response.status == 415


def test_a_body_above_the_cap_is_413_whether_in_one_message_or_in_chunks(
    engine: bidcore.Engine,
) -> None:
    small = app(engine, max_body_bytes=len(SAMPLE) - 1)
    assert run(small, "POST", "/openrtb2/bid", body=SAMPLE).status == 413
    chunks = [SAMPLE[:100], SAMPLE[100:300], SAMPLE[300:]]
    assert run(small, "POST", "/openrtb2/bid", body=chunks).status == 413


def test_a_body_in_chunks_is_put_together(bidder: App) -> None:
    chunks = [SAMPLE[:7], SAMPLE[7:200], b"", SAMPLE[200:]]
    response = run(bidder, "POST", "/openrtb2/bid", body=chunks)
    assert response.status == 200
    assert json.loads(response.body)["id"] == "some-request-id"


@pytest.mark.parametrize("version", [b"2.5", b"2.6", b"2.6.1", b" 2.3 "])
def test_openrtb_2x_versions_are_accepted(bidder: App, version: bytes) -> None:
    response = run(
        bidder, "POST", "/openrtb2/bid", body=SAMPLE, headers=[(b"X-OpenRTB-Version", version)]
    )
    assert response.status == 200


@pytest.mark.parametrize("version", [b"3.0", b"1.0", b"", b"2.x", b"26"])
def test_other_openrtb_versions_are_400_with_the_reason(bidder: App, version: bytes) -> None:
    response = run(
        bidder, "POST", "/openrtb2/bid", body=SAMPLE, headers=[(b"x-openrtb-version", version)]
    )
    assert response.status == 400
    assert response.text.startswith("x-openrtb-version")
    assert "2.x" in response.text


def test_a_request_past_its_deadline_is_a_late_no_bid() -> None:
    # tmax 60 ms, less the demo's 10 ms margin: a body arriving 80 ms after the request began
    # (a slow client) is past the deadline, since the clock starts when the request arrives.
    engine = bidcore.Engine.load(demo.config_path())
    bidder = app(engine)
    late = asyncio.run(
        call(bidder, "POST", "/openrtb2/bid", body=request_with(tmax=60), delay=0.08)
    )
    assert late.status == 204
    assert engine.counters()["no_bids"]["late"] == 1
    on_time = run(bidder, "POST", "/openrtb2/bid", body=request_with(tmax=60))
    assert on_time.status == 200


def test_offloading_to_a_thread_gives_the_same_answers(engine: bidcore.Engine) -> None:
    inline, offloaded = app(engine), app(engine, offload=True)
    for body in (SAMPLE, request_with(imp_bidfloor=900), b"{"):
        a = run(inline, "POST", "/openrtb2/bid", body=body)
        b = run(offloaded, "POST", "/openrtb2/bid", body=body)
        assert (a.status, a.body[:60]) == (b.status, b.body[:60])


def test_without_an_engine_bids_are_503_and_not_ready() -> None:
    bidder = app(EngineHolder())
    assert run(bidder, "POST", "/openrtb2/bid", body=SAMPLE).status == 503
    assert run(bidder, "GET", "/readyz").status == 503
    assert run(bidder, "GET", "/healthz").status == 200


# --- Notices ---------------------------------------------------------------------------------


def test_a_win_notice_is_counted_and_handed_to_the_sink(engine: bidcore.Engine) -> None:
    received: list[Notice] = []
    bidder = app(engine, on_notice=received.append)
    query = b"c=northwind-brand-display&cr=nw-mobile-320x50&imp=1&price=1.734&bucket=1.80"
    response = run(bidder, "GET", "/openrtb2/win", query=query)
    assert (response.status, response.body) == (204, b"")
    assert bidder.notices == {"win": 1, "bill": 0, "loss": 0}
    (notice,) = received
    assert (notice.kind, notice.campaign, notice.creative, notice.imp) == (
        "win",
        "northwind-brand-display",
        "nw-mobile-320x50",
        "1",
    )
    assert notice.price_micros == 1_734_000
    assert abs(notice.received_at - time.time()) < 60


def test_bill_and_loss_notices(bidder: App) -> None:
    bill = run(bidder, "GET", "/openrtb2/bill", query=b"c=c1&cr=cr1&req=r1&price=0.5")
    loss = run(bidder, "GET", "/openrtb2/loss", query=b"c=c1&cr=cr1&reason=102&min_to_win=2.1")
    assert (bill.status, loss.status) == (204, 204)
    assert bidder.notices == {"win": 0, "bill": 1, "loss": 1}
    known = b"c=northwind-brand-display&price=2.5&cur=USD"  # a campaign of the demo config
    assert run(bidder, "GET", "/openrtb2/bill", query=known).status == 204
    page = run(bidder, "GET", "/metrics").body.decode()
    # Spend is the clearing price per impression (CPM / 1000); c1 is no campaign of the
    # config, so it is counted under _other (labels come from the config, not the URL).
    assert 'bidcore_spend_total{campaign="_other",currency="USD"} 0.0005' in page
    assert 'bidcore_spend_total{campaign="northwind-brand-display",currency="USD"} 0.0025' in page


@pytest.mark.parametrize(
    ("path", "query", "reason"),
    [
        ("/openrtb2/win", b"c=c1&price=${AUCTION_PRICE}", "was not filled"),
        ("/openrtb2/win", b"c=c1&price=%24%7BAUCTION_PRICE%7D", "was not filled"),
        ("/openrtb2/bill", b"c=c1&price=$AUCTION_PRICE", "was not filled"),
        ("/openrtb2/loss", b"c=c1&reason=${AUCTION_LOSS}", "was not filled"),
        ("/openrtb2/win", b"c=c1&price=abc", "not a number"),
        ("/openrtb2/win", b"c=c1&price=-1", "not a price"),
        ("/openrtb2/win", b"c=c1&price=NaN", "not a price"),
        ("/openrtb2/win", b"c=c1&price=1e30", "out of range"),
        ("/openrtb2/win", b"c=c1", "price: missing"),
        ("/openrtb2/loss", b"c=c1&reason=x2", "not a loss reason"),
        ("/openrtb2/win", b"c=c1&price=1&currency=euro", "3-letter"),
    ],
)
def test_a_bad_notice_is_400_with_the_reason_and_not_counted(
    bidder: App, path: str, query: bytes, reason: str
) -> None:
    response = run(bidder, "GET", path, query=query)
    assert response.status == 400
    assert reason in response.text
    assert sum(bidder.notices.values()) == 0


def test_parse_notice_reads_every_field() -> None:
    notice = parse_notice(
        "loss",
        b"c=c1&cr=cr1&imp=2&req=r9&price=0.1234567&currency=EUR&reason=102&min_to_win=2.1",
        received_at=5.0,
    )
    assert notice == Notice(
        kind="loss",
        received_at=5.0,
        price_micros=123_457,
        currency="EUR",
        campaign="c1",
        creative="cr1",
        imp="2",
        request="r9",
        loss_reason=102,
        min_to_win_micros=2_100_000,
    )
    with pytest.raises(NoticeError):
        parse_notice("bill", b"price=")


def test_a_failing_notice_sink_is_500_and_the_app_goes_on(engine: bidcore.Engine) -> None:
    def sink(notice: Notice) -> None:
        raise OSError("disk full")

    bidder = app(engine, on_notice=sink)
    assert run(bidder, "GET", "/openrtb2/win", query=b"price=1").status == 500
    assert run(bidder, "POST", "/openrtb2/bid", body=SAMPLE).status == 200


# --- Metrics, health, routing ----------------------------------------------------------------


def test_metrics_count_every_request_and_show_the_engine_counters() -> None:
    bidder = app(bidcore.Engine.load(demo.config_path()))
    run(bidder, "POST", "/openrtb2/bid", body=SAMPLE)
    run(bidder, "POST", "/openrtb2/bid", body=b"{")
    run(bidder, "GET", "/nowhere")
    run(bidder, "GET", "/openrtb2/win", query=b"price=1")
    run(bidder, "GET", "/openrtb2/win", query=b"price=${AUCTION_PRICE}")
    response = run(bidder, "GET", "/metrics")
    assert response.status == 200
    assert response.headers[b"content-type"].startswith(b"text/plain; version=")
    text = response.text
    for line in (
        'bidcore_http_responses_total{route="bid",status="200"} 1.0',
        'bidcore_http_responses_total{route="bid",status="400"} 1.0',
        'bidcore_http_responses_total{route="unknown",status="404"} 1.0',
        'bidcore_http_responses_total{route="win",status="204"} 1.0',
        'bidcore_http_responses_total{route="win",status="400"} 1.0',
        'bidcore_notices_total{kind="win",result="accepted"} 1.0',
        'bidcore_notices_total{kind="win",result="rejected"} 1.0',
        "bidcore_requests_total 2.0",
        "bidcore_bids_total 1.0",
        'bidcore_no_bids_total{reason="invalid"} 1.0',
    ):
        assert line in text.splitlines(), line


def test_metrics_in_openmetrics_when_asked(bidder: App) -> None:
    response = run(
        bidder, "GET", "/metrics", headers=[(b"accept", b"application/openmetrics-text")]
    )
    assert response.status == 200
    assert response.headers[b"content-type"].startswith(b"application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


def test_engine_counters_keep_growing_across_reloads(tmp_path: Path) -> None:
    bidder = reloadable(write_config(tmp_path / "bidder.toml", seat="seat-one"))
    run(bidder, "POST", "/openrtb2/bid", body=SAMPLE)
    assert run(bidder, "POST", "/admin/reload").status == 200
    run(bidder, "POST", "/openrtb2/bid", body=SAMPLE)
    text = run(bidder, "GET", "/metrics").text.splitlines()
    assert "bidcore_requests_total 2.0" in text  # the smoke decisions count nothing
    assert "bidcore_bids_total 2.0" in text


def test_health_and_readiness(bidder: App) -> None:
    assert (run(bidder, "GET", "/healthz").status, run(bidder, "GET", "/readyz").status) == (
        200,
        200,
    )


@pytest.mark.parametrize("path", ["/", "/openrtb2", "/openrtb2/bid/", "/OPENRTB2/BID", "/admin"])
def test_an_unknown_path_is_404(bidder: App, path: str) -> None:
    assert run(bidder, "POST", path, body=SAMPLE).status == 404


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/openrtb2/bid", b"POST"),
        ("PUT", "/openrtb2/bid", b"POST"),
        ("POST", "/openrtb2/win", b"GET"),
        ("POST", "/metrics", b"GET"),
        ("GET", "/admin/reload", b"POST"),
    ],
)
def test_a_wrong_method_is_405_with_allow(
    bidder: App, method: str, path: str, allowed: bytes
) -> None:
    response = run(bidder, method, path)
    assert response.status == 405
    assert response.headers[b"allow"] == allowed


def test_a_websocket_is_closed(bidder: App) -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(bidder({"type": "websocket", "path": "/openrtb2/bid"}, receive, send))
    assert sent == [{"type": "websocket.close", "code": 1003}]


# --- Reload ----------------------------------------------------------------------------------


def test_admin_reload_swaps_in_the_changed_config(tmp_path: Path) -> None:
    config = write_config(tmp_path / "bidder.toml", seat="seat-one")
    bidder = reloadable(config)
    assert seat_of(run(bidder, "POST", "/openrtb2/bid", body=SAMPLE)) == "seat-one"
    write_config(config, seat="seat-two")
    response = run(bidder, "POST", "/admin/reload")
    assert response.status == 200
    result = json.loads(response.body)
    assert result["ok"] is True
    assert result["campaigns"] == 13
    assert result["error"] is None
    assert seat_of(run(bidder, "POST", "/openrtb2/bid", body=SAMPLE)) == "seat-two"
    metrics = run(bidder, "GET", "/metrics").text
    assert 'bidcore_reloads_total{result="ok"} 1.0' in metrics


@pytest.mark.parametrize(
    "breakage",
    [
        "not toml [",
        "[[campaigns]]\nid = 'c1'\ngoal = 'cpm'\n",  # a campaign without its money
        "[models]\nctr = 'nowhere/ctr'\n[[campaigns]]\nid = 'c1'\ngoal = 'cpm'\ncpm = 1\n"
        "max_bid = 2\n[[campaigns.creatives]]\nid = 'x'\nmedia = 'banner'\nw = 1\nh = 1\n"
        "adomain = ['a.example']\n",
    ],
)
def test_a_failed_reload_is_500_and_keeps_the_old_engine(tmp_path: Path, breakage: str) -> None:
    config = write_config(tmp_path / "bidder.toml", seat="seat-one")
    bidder = reloadable(config)
    config.write_text(breakage)
    response = run(bidder, "POST", "/admin/reload")
    assert response.status == 500
    result = json.loads(response.body)
    assert result["ok"] is False
    assert result["error"]
    assert bidder.holder.ready
    assert seat_of(run(bidder, "POST", "/openrtb2/bid", body=SAMPLE)) == "seat-one"
    assert 'bidcore_reloads_total{result="failed"} 1.0' in run(bidder, "GET", "/metrics").text


def test_a_reload_whose_smoke_decision_raises_keeps_the_old_engine(tmp_path: Path) -> None:
    config = write_config(tmp_path / "bidder.toml", seat="seat-one")
    bidder = reloadable(config)
    bidder.holder.smoke = b'{"id":"smoke"}'  # no imp: the new engine refuses it
    write_config(config, seat="seat-two")
    response = run(bidder, "POST", "/admin/reload")
    assert response.status == 500
    assert "imp" in json.loads(response.body)["error"]
    assert seat_of(run(bidder, "POST", "/openrtb2/bid", body=SAMPLE)) == "seat-one"


def test_a_holder_without_a_loader_cannot_reload(bidder: App) -> None:
    response = run(bidder, "POST", "/admin/reload")
    assert response.status == 500
    assert json.loads(response.body)["error"] == "no config to load from"


@pytest.mark.parametrize("client", [("10.0.0.7", 5000), ("203.0.113.9", 1), ("::ffff:1.2.3.4", 1)])
def test_admin_reload_from_elsewhere_is_403(tmp_path: Path, client: tuple[str, int]) -> None:
    bidder = reloadable(write_config(tmp_path / "bidder.toml", seat="seat-one"))
    assert run(bidder, "POST", "/admin/reload", client=client).status == 403
    assert bidder.holder.started == 0


@pytest.mark.parametrize("client", [("127.0.0.1", 5000), ("::1", 5000), None])
def test_admin_reload_from_this_machine_is_allowed(
    tmp_path: Path, client: tuple[str, int] | None
) -> None:
    bidder = reloadable(write_config(tmp_path / "bidder.toml", seat="seat-one"))
    assert run(bidder, "POST", "/admin/reload", client=client).status == 200


def test_reloads_under_traffic_fail_no_request(tmp_path: Path) -> None:
    config = write_config(tmp_path / "bidder.toml", seat="seat-0")
    bidder = reloadable(config)
    bidder.offload = True  # bids in threads, racing the reloads' threads

    async def traffic() -> tuple[list[Response], list[Response]]:
        async def reloads() -> list[Response]:
            done = []
            for n in range(1, 4):
                write_config(config, seat=f"seat-{n}")
                done.append(await call(bidder, "POST", "/admin/reload"))
            return done

        bids = [call(bidder, "POST", "/openrtb2/bid", body=SAMPLE) for _ in range(300)]
        *answers, reloaded = await asyncio.gather(*bids, reloads())
        return answers, reloaded

    answers, reloaded = asyncio.run(traffic())
    assert [r.status for r in reloaded] == [200, 200, 200]
    assert {r.status for r in answers} == {200}
    assert {seat_of(r) for r in answers} <= {"seat-0", "seat-1", "seat-2", "seat-3"}
    assert seat_of(run(bidder, "POST", "/openrtb2/bid", body=SAMPLE)) == "seat-3"


# --- Lifespan --------------------------------------------------------------------------------


async def lifespan(application: App, body: Callable[[], Any] | None = None) -> list[str]:
    """Run the lifespan protocol: startup, then ``body`` (awaited if it is a coroutine
    function), then shutdown; the message types the app sent."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: list[str] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    task = asyncio.create_task(application({"type": "lifespan"}, inbox.get, send))
    await inbox.put({"type": "lifespan.startup"})
    while not sent:
        await asyncio.sleep(0.001)
    if sent == ["lifespan.startup.complete"] and body is not None:
        result = body()
        if asyncio.iscoroutine(result):
            await result
        await inbox.put({"type": "lifespan.shutdown"})
    await task
    return sent


def test_lifespan_runs_the_startup_and_shutdown_hooks(engine: bidcore.Engine) -> None:
    calls: list[str] = []
    bidder = app(
        engine,
        on_startup=[lambda: calls.append("start")],
        on_shutdown=[lambda: calls.append("stop")],
    )
    sent = asyncio.run(lifespan(bidder, lambda: calls.append("serve")))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert calls == ["start", "serve", "stop"]


def test_a_failing_startup_hook_fails_the_startup(engine: bidcore.Engine) -> None:
    def broken() -> None:
        raise OSError("cannot open the log directory")

    sent = asyncio.run(lifespan(app(engine, on_startup=[broken])))
    assert sent == ["lifespan.startup.failed"]


async def reload_finished(bidder: App) -> None:
    """Waits (up to 5 s) until a reload has started and every reload task has finished."""
    for _ in range(500):
        if bidder.holder.started and not bidder._reload_tasks:
            break
        await asyncio.sleep(0.01)


def test_sighup_reloads_once_the_lifespan_has_started(tmp_path: Path) -> None:
    config = write_config(tmp_path / "bidder.toml", seat="seat-one")
    bidder = reloadable(config)
    bidder.reload_on_sighup = True
    write_config(config, seat="seat-two")
    before = signal.getsignal(signal.SIGHUP)

    async def hang_up() -> None:
        # Sending SIGHUP with the default action in place would kill the test run.
        assert signal.getsignal(signal.SIGHUP) not in (signal.SIG_DFL, before)
        os.kill(os.getpid(), signal.SIGHUP)
        await reload_finished(bidder)

    asyncio.run(lifespan(bidder, hang_up))
    assert bidder.holder.started == 1
    assert seat_of(run(bidder, "POST", "/openrtb2/bid", body=SAMPLE)) == "seat-two"
    assert signal.getsignal(signal.SIGHUP) == before  # shutdown put the old handler back


def test_a_sighup_that_came_while_starting_reloads_once_started(tmp_path: Path) -> None:
    # A worker of several gets the parent's SIGHUP while it is still starting (after it has
    # read the config, before its handler is installed): the latch keeps the signal, and the
    # app reloads as soon as its own handler is in place.
    config = write_config(tmp_path / "bidder.toml", seat="seat-one")
    bidder = reloadable(config)
    bidder.reload_on_sighup = True
    write_config(config, seat="seat-two")
    latch = SighupLatch()
    before = signal.signal(signal.SIGHUP, latch)
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        assert latch.received

        asyncio.run(lifespan(bidder, lambda: reload_finished(bidder)))
        assert bidder.holder.started == 1
        assert not latch.received  # taken: the next start would not reload again
        assert seat_of(run(bidder, "POST", "/openrtb2/bid", body=SAMPLE)) == "seat-two"
        assert signal.getsignal(signal.SIGHUP) is latch  # shutdown put the latch back
    finally:
        signal.signal(signal.SIGHUP, before)


def test_without_a_sighup_while_starting_nothing_reloads(tmp_path: Path) -> None:
    bidder = reloadable(write_config(tmp_path / "bidder.toml", seat="seat-one"))
    bidder.reload_on_sighup = True
    before = signal.signal(signal.SIGHUP, SighupLatch())
    try:
        asyncio.run(lifespan(bidder, lambda: asyncio.sleep(0.05)))
        assert bidder.holder.started == 0
    finally:
        signal.signal(signal.SIGHUP, before)
