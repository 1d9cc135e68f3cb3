"""``bidcore.budget.pacer``: the pacer of a serving process, with a fake clock and real engines
built from a small config, then through the ASGI app (bill notices in, pacing and gauges out)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

import pytest

import bidcore
from bidcore import demo
from bidcore.asgi import App, EngineHolder, app
from bidcore.budget import CampaignPacing, Pacer, PacingController, PidGains, TargetCurve
from bidcore.budget.pacing import PPM
from bidcore.serve import Settings, build_app

MIDNIGHT = 1_699_920_000  # 2023-11-14 00:00 UTC
NOON = MIDNIGHT + 43_200
DAY = 86_400
USA_BUDGET = 100_000_000  # daily_budget = 100
FRA_BUDGET = 50_000_000


def config_text(
    *,
    pacing: str = "enabled = true",
    usa_budget: str = "100",
    extra: str = "",
) -> str:
    """Three campaigns: ``usa`` and ``fra`` with daily budgets, each the only one for requests
    from its country; ``deu`` without a budget, so not paced."""
    campaigns = ""
    for campaign, country, cpm, budget in (
        ("usa", "USA", 2, usa_budget),
        ("fra", "FRA", 1, "50"),
        ("deu", "DEU", 1, None),
    ):
        campaigns += f"""
[[campaigns]]
id = "{campaign}"
goal = "cpm"
cpm = {cpm}
max_bid = 5
targeting = {{ countries = ["{country}"] }}
{"" if budget is None else f"daily_budget = {budget}"}
[[campaigns.creatives]]
id = "{campaign}-cr"
media = "banner"
w = 300
h = 250
adomain = ["shop.example"]
"""
    return f"[pacing]\n{pacing}\n{extra}\n{campaigns}"


def make(text: str | None = None) -> tuple[bidcore.config.Config, bidcore.Engine]:
    config = bidcore.config.loads(text if text is not None else config_text())
    return config, bidcore.Engine(config)


def request(country: str, request_id: str = "r1") -> bytes:
    return (
        f'{{"id":"{request_id}","device":{{"geo":{{"country":"{country}"}}}},'
        '"imp":[{"id":"1","banner":{"w":300,"h":250},"bidfloor":0.5}]}'
    ).encode()


class Clock:
    """A settable Unix clock."""

    def __init__(self, now: float = NOON) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def reference(budget: int, config: bidcore.config.Config) -> PacingController:
    """A controller built as the pacer builds one from ``config``."""
    pacing = config.pacing
    curve = (
        TargetCurve.even() if pacing.profile is None else TargetCurve.from_profile(pacing.profile)
    )
    gains = PidGains(**{name: getattr(pacing.gains, name) for name in ("kp", "ki", "kd")})
    return PacingController(
        budget,
        curve,
        mode=pacing.mode,
        gains=gains,
        interval_seconds=pacing.interval_seconds,
    )


# --- Ticks write the controllers' state into the engine --------------------------------------


@pytest.mark.parametrize("mode", ["throttle", "multiplier"])
def test_a_tick_writes_each_controllers_state_into_the_engine(mode: str) -> None:
    config, engine = make(config_text(pacing=f'enabled = true\nmode = "{mode}"'))
    clock = Clock()
    pacer = Pacer(config, engine, clock=clock)
    assert engine.pacing()["usa"] == (PPM, PPM)  # nothing written before the first tick
    usa, fra = reference(USA_BUDGET, config), reference(FRA_BUDGET, config)

    # At noon: usa has spent 10% (behind the curve), fra 70% (ahead of it).
    assert pacer.record_spend("usa", 10_000_000)
    assert pacer.record_spend("fra", 35_000_000)
    state = pacer.tick()
    expected_usa = usa.update(43_200, 10_000_000)
    expected_fra = fra.update(43_200, 35_000_000)
    pacing = engine.pacing()
    assert pacing["usa"] == (expected_usa.throttle_ppm, expected_usa.multiplier_ppm)
    assert pacing["fra"] == (expected_fra.throttle_ppm, expected_fra.multiplier_ppm)
    assert pacing["deu"] == (PPM, PPM)  # no daily budget: not paced
    assert set(state) == {"usa", "fra"}
    assert state["usa"] == CampaignPacing(
        budget_micros=USA_BUDGET,
        spent_micros=10_000_000,
        throttle_ppm=expected_usa.throttle_ppm,
        multiplier_ppm=expected_usa.multiplier_ppm,
        target_micros=expected_usa.target_micros,
    )
    if mode == "throttle":
        assert pacing["usa"][0] > pacing["fra"][0] > 0  # behind enters more, ahead fewer
        assert pacing["usa"][1] == pacing["fra"][1] == PPM
    else:
        assert pacing["usa"][1] > PPM > pacing["fra"][1]  # behind bids up, ahead down
        assert pacing["usa"][0] == pacing["fra"][0] == PPM

    # A minute later, with more spend: the same sequence as the controllers on their own.
    clock.now += 60
    pacer.record_spend("usa", 1_000_000)
    pacer.tick()
    expected_usa = usa.update(43_260, 11_000_000)
    assert engine.pacing()["usa"] == (expected_usa.throttle_ppm, expected_usa.multiplier_ppm)
    # state() reads the ledger as it is, and the pacing last written, without an update.
    pacer.record_spend("usa", 89_000_000)
    reported = pacer.state()["usa"]
    assert (reported.spent_micros, reported.throttle_ppm) == (USA_BUDGET, 0)  # stopped at once
    assert reported.target_micros == expected_usa.target_micros


@pytest.mark.parametrize("mode", ["throttle", "multiplier"])
def test_a_spent_budget_stops_the_campaign_at_once_in_either_mode(mode: str) -> None:
    config, engine = make(config_text(pacing=f'enabled = true\nmode = "{mode}"'))
    pacer = Pacer(config, engine, clock=Clock())
    pacer.tick()
    usa = request("USA")
    assert engine.bid(usa) is not None

    pacer.record_spend("usa", USA_BUDGET - 1)  # one micro short: still bids
    assert pacer.tick()["usa"].throttle_ppm > 0
    pacer.record_spend("usa", 1)  # the budget: stopped before any tick
    assert engine.pacing()["usa"][0] == 0
    explained = engine.explain(usa)
    assert explained["targeting"]["usa"] == "budget"
    assert explained["reason"] == "budget"
    assert engine.bid(usa) is None
    assert engine.counters()["no_bids"]["budget"] == 1
    # Ticks keep it stopped; the other campaigns go on.
    assert pacer.tick()["usa"].throttle_ppm == 0
    assert engine.pacing()["usa"][0] == 0
    assert engine.bid(request("DEU")) is not None
    assert engine.explain(request("FRA"))["targeting"]["fra"] is None


def test_a_zero_budget_never_bids() -> None:
    config, engine = make(config_text(usa_budget="0"))
    pacer = Pacer(config, engine, clock=Clock())
    assert pacer.tick()["usa"] == CampaignPacing(0, 0, 0, PPM, 0)
    assert engine.explain(request("USA"))["targeting"]["usa"] == "budget"


# --- Spend: exact, attributed, converted ------------------------------------------------------


def test_bills_are_summed_exactly_and_rounded_down_once() -> None:
    config, engine = make()
    pacer = Pacer(config, engine, clock=Clock())
    pacer.record_bill("usa", 999)  # a 0.000999 CPM: 0.999 micros
    assert pacer.state()["usa"].spent_micros == 0
    pacer.record_bill("usa", 1)
    assert pacer.state()["usa"].spent_micros == 1
    for _ in range(1_000):
        pacer.record_bill("fra", 1_234_567)  # 1.234567 CPM: 1,234.567 micros an impression
    assert pacer.state()["fra"].spent_micros == 1_234_567  # not 1,234,000


def test_bills_in_another_currency_are_converted_with_the_fx_rates() -> None:
    config, engine = make(config_text(extra="[fx]\nbase = 'USD'\nrates = { EUR = 1.08 }"))
    pacer = Pacer(config, engine, clock=Clock())
    assert pacer.record_bill("usa", 1_000_000, "EUR")  # 1 EUR CPM: 1.08 USD / 1000
    assert pacer.record_bill("usa", 1_000_000, "USD")
    assert pacer.state()["usa"].spent_micros == 1_080 + 1_000
    assert not pacer.record_bill("usa", 1_000_000, "GBP")  # no rate: not counted
    assert pacer.state()["usa"].spent_micros == 2_080


def test_spend_of_unknown_campaigns_is_ignored_and_counted() -> None:
    config, engine = make()
    pacer = Pacer(config, engine, clock=Clock())
    assert not pacer.record_bill("nobody", 1_000_000)
    assert not pacer.record_bill(None, 1_000_000)
    assert not pacer.record_spend("nobody", 5)
    assert pacer.record_spend("deu", 5)  # known, not paced: counted, not reported
    assert not pacer.record_bill("usa", 1_000_000, "JPY")
    assert pacer.ignored() == {"unknown_campaign": 3, "unknown_currency": 1}
    assert {c.spent_micros for c in pacer.state().values()} == {0}
    with pytest.raises(ValueError, match="micros"):
        pacer.record_spend("usa", -1)
    with pytest.raises(ValueError, match="micros"):
        pacer.record_spend("usa", 1.5)  # type: ignore[arg-type]


def test_concurrent_records_sum_exactly() -> None:
    config, engine = make()
    pacer = Pacer(config, engine, clock=Clock())
    threads, records = 8, 5_000
    start = threading.Barrier(threads)

    def spend(i: int) -> None:
        start.wait()
        for _ in range(records):
            pacer.record_spend("usa", 7)
            pacer.record_bill("fra", 1_001 + i)

    workers = [threading.Thread(target=spend, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    state = pacer.state()
    assert state["usa"].spent_micros == threads * records * 7
    assert state["fra"].spent_micros == sum(records * (1_001 + i) for i in range(threads)) // 1000


# --- Days --------------------------------------------------------------------------------------


def test_a_new_day_resets_the_spend_and_the_controllers() -> None:
    config, engine = make()
    clock = Clock(MIDNIGHT + DAY - 60)  # 23:59
    pacer = Pacer(config, engine, clock=clock)
    pacer.record_spend("usa", USA_BUDGET)
    pacer.record_spend("fra", 1_000)
    assert pacer.tick()["usa"].throttle_ppm == 0

    clock.now = MIDNIGHT + DAY + 30  # 00:00:30 the next day
    state = pacer.tick()
    assert (state["usa"].spent_micros, state["fra"].spent_micros) == (0, 0)
    fresh = reference(USA_BUDGET, config).update(30, 0)  # as a controller's first update
    assert engine.pacing()["usa"] == (fresh.throttle_ppm, fresh.multiplier_ppm)
    assert engine.pacing()["usa"][0] > 0  # bidding again

    # A record is the first thing to see the next day: the ledger starts it all the same.
    clock.now += DAY
    pacer.record_spend("usa", 5)
    assert pacer.state()["usa"].spent_micros == 5


def test_a_clock_stepped_back_over_midnight_keeps_the_day() -> None:
    config, engine = make()
    clock = Clock(MIDNIGHT + DAY + 5)
    pacer = Pacer(config, engine, clock=clock)
    pacer.record_spend("usa", 1_000)
    clock.now = MIDNIGHT + DAY - 5
    assert pacer.tick()["usa"].spent_micros == 1_000


def test_the_day_starts_at_midnight_plus_the_utc_offset() -> None:
    config, engine = make(config_text(pacing="enabled = true\nutc_offset_seconds = 3600"))
    clock = Clock(MIDNIGHT + DAY - 3_601)  # 22:59:59 UTC: 23:59:59 at UTC+1
    pacer = Pacer(config, engine, clock=clock)
    pacer.record_spend("usa", 1_000)
    clock.now += 1  # midnight at UTC+1
    assert pacer.state()["usa"].spent_micros == 1_000  # nothing recorded or ticked yet
    assert pacer.tick()["usa"].spent_micros == 0


# --- Reloads -----------------------------------------------------------------------------------


def test_a_swap_keeps_the_days_spend_and_paces_the_new_engine_at_once() -> None:
    config, engine = make()
    pacer = Pacer(config, engine, clock=Clock())
    pacer.record_spend("usa", 30_000_000)
    pacer.record_spend("fra", FRA_BUDGET)
    pacer.tick()

    # fra is gone, gbr is new, usa's budget is now 30: what it already spent.
    text = config_text(usa_budget="30").replace('"fra"', '"gbr"').replace('"FRA"', '"GBR"')
    config2, engine2 = make(text)
    pacer.swap(engine2, config2)
    state = pacer.state()
    assert set(state) == {"usa", "gbr"}
    assert state["usa"].spent_micros == 30_000_000
    assert state["usa"].budget_micros == 30_000_000
    assert state["gbr"].spent_micros == 0
    pacing = engine2.pacing()
    assert pacing["usa"][0] == 0  # written to the new engine before any tick
    assert pacing["gbr"] == (state["gbr"].throttle_ppm, state["gbr"].multiplier_ppm)
    fresh = reference(FRA_BUDGET, config2).update(43_200, 0)  # gbr: a controller of its own
    assert state["gbr"].target_micros == fresh.target_micros > 0
    assert engine2.explain(request("USA"))["targeting"]["usa"] == "budget"
    # The old engine no longer receives updates.
    before = engine.pacing()
    pacer.record_spend("gbr", 1_000)
    pacer.tick()
    assert engine.pacing() == before


def test_a_swap_to_a_config_without_pacing_unpaces_every_campaign() -> None:
    config, engine = make()
    pacer = Pacer(config, engine, clock=Clock())
    pacer.record_spend("usa", USA_BUDGET)
    pacer.tick()
    off = bidcore.config.loads(config_text(pacing="enabled = false"))
    pacer.swap(engine, off)  # the same engine: its settings are undone
    assert set(engine.pacing().values()) == {(PPM, PPM)}
    assert pacer.state() == {}
    assert pacer.tick() == {}
    pacer.swap(engine, config)  # on again: the day's spend was kept meanwhile
    assert pacer.state()["usa"].spent_micros == USA_BUDGET
    assert engine.pacing()["usa"][0] == 0


def test_a_swap_that_cannot_write_changes_nothing() -> None:
    config, engine = make()
    pacer = Pacer(config, engine, clock=Clock())
    pacer.record_spend("usa", 1_000)
    pacer.tick()
    other_config, _ = make(config_text().replace('"fra"', '"esp"'))
    with pytest.raises(ValueError, match="esp"):
        pacer.swap(engine, other_config)  # an engine without the config's campaigns
    assert pacer.config is config
    assert set(pacer.state()) == {"usa", "fra"}
    assert pacer.state()["usa"].spent_micros == 1_000


# --- The thread --------------------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def test_start_ticks_from_a_thread_until_stop() -> None:
    config, engine = make(config_text(pacing="enabled = true\ninterval_seconds = 0.02"))
    pacer = Pacer(config, engine, clock=Clock())
    pacer.start()
    try:
        assert pacer.running
        assert pacer.state()["usa"].target_micros > 0  # start ticks at once
        pacer.record_spend("usa", 60_000_000)  # ahead of the curve: the next tick slows it
        assert wait_for(lambda: engine.pacing()["usa"] == (10_000, PPM))  # min_throttle
    finally:
        pacer.stop()
    assert not pacer.running
    assert not any(t.name == "bidcore-pacer" for t in threading.enumerate())
    pacer.record_spend("fra", 1_000)
    before = engine.pacing()
    time.sleep(0.1)  # five intervals: no thread writes any more
    assert engine.pacing() == before


def test_the_thread_runs_only_while_the_config_enables_pacing() -> None:
    off = bidcore.config.loads(config_text(pacing="enabled = false\ninterval_seconds = 0.02"))
    engine = bidcore.Engine(off)
    pacer = Pacer(off, engine, clock=Clock())
    pacer.start()
    assert not pacer.running
    on = bidcore.config.loads(config_text(pacing="enabled = true\ninterval_seconds = 0.02"))
    pacer.swap(engine, on)
    assert pacer.running
    pacer.swap(engine, off)
    assert not pacer.running
    pacer.stop()


# --- Through the ASGI app ------------------------------------------------------------------------


async def call(
    application: App, method: str, path: str, query: bytes = b"", body: bytes = b""
) -> tuple[int, bytes]:
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": [],
        "client": ("127.0.0.1", 40000),
    }
    await application(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def run(application: App, method: str, path: str, **kwargs: Any) -> tuple[int, bytes]:
    return asyncio.run(call(application, method, path, **kwargs))


def gauges(application: App) -> dict[str, float]:
    status, body = run(application, "GET", "/metrics")
    assert status == 200
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in body.decode().splitlines()
        if line.startswith("bidcore_pacing_")
    }


def test_bill_notices_through_the_app_move_the_pacing_and_the_gauges() -> None:
    config, engine = make()
    pacer = Pacer(config, engine, clock=Clock())
    bidder = app(engine, pacer=pacer)
    pacer.tick()
    throttle_before = engine.pacing()["usa"][0]
    assert run(bidder, "POST", "/openrtb2/bid", body=request("USA"))[0] == 200

    for _ in range(3):  # 60 of the 100 spent by noon: ahead of the curve
        assert run(bidder, "GET", "/openrtb2/bill", query=b"c=usa&cr=usa-cr&price=20000")[0] == 204
    assert run(bidder, "GET", "/openrtb2/bill", query=b"c=usa&price=${AUCTION_PRICE}")[0] == 400
    pacer.tick()
    assert engine.pacing()["usa"][0] < throttle_before
    shown = gauges(bidder)
    assert shown['bidcore_pacing_spent_today{account="usa",campaign="usa",currency="USD"}'] == 60.0
    assert shown['bidcore_pacing_budget{account="usa",campaign="usa",currency="USD"}'] == 100.0
    assert (
        shown['bidcore_pacing_throttle{account="usa",campaign="usa"}']
        == engine.pacing()["usa"][0] / PPM
    )
    assert shown['bidcore_pacing_multiplier{account="fra",campaign="fra"}'] == 1.0
    assert not any("deu" in name for name in shown)  # labels: the paced campaigns only

    # The bill that spends the rest stops usa before the next tick.
    assert run(bidder, "GET", "/openrtb2/bill", query=b"c=usa&price=40000")[0] == 204
    assert run(bidder, "POST", "/openrtb2/bid", body=request("USA", "r2"))[0] == 204
    assert gauges(bidder)['bidcore_pacing_throttle{account="usa",campaign="usa"}'] == 0.0


def test_the_app_makes_a_pacer_when_the_config_enables_pacing() -> None:
    _, engine = make()
    assert app(engine).pacer is not None
    off = bidcore.Engine(bidcore.config.loads(config_text(pacing="enabled = false")))
    bidder = app(off)
    assert bidder.pacer is None
    assert gauges(bidder) == {}


def test_a_reloaded_engine_is_paced_before_it_serves(tmp_path: Path) -> None:
    path = tmp_path / "bidder.toml"
    path.write_text(config_text())
    holder = EngineHolder(loader=lambda: bidcore.Engine.load(path), smoke=request("USA"))
    assert holder.load().ok
    assert holder.engine is not None
    pacer = Pacer(holder.engine.config, holder.engine, clock=Clock())
    bidder = app(holder, pacer=pacer)
    run(bidder, "GET", "/openrtb2/bill", query=b"c=usa&price=100000000")  # the whole budget

    path.write_text(config_text().replace("cpm = 2", "cpm = 3"))
    status, _ = run(bidder, "POST", "/admin/reload")
    assert status == 200
    assert holder.engine.config.campaigns[0].cpm == 3
    assert holder.engine.pacing()["usa"][0] == 0  # the day's spend came along
    assert run(bidder, "POST", "/openrtb2/bid", body=request("USA"))[0] == 204


async def lifespan(application: App, body: Callable[[], None]) -> list[str]:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: list[str] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message["type"])

    task = asyncio.create_task(application({"type": "lifespan"}, inbox.get, send))
    await inbox.put({"type": "lifespan.startup"})
    while not sent:
        await asyncio.sleep(0.001)
    body()
    await inbox.put({"type": "lifespan.shutdown"})
    await task
    return sent


@pytest.mark.parametrize("enabled", [True, False])
def test_serve_builds_a_pacer_started_and_stopped_by_the_lifespan(
    tmp_path: Path, enabled: bool
) -> None:
    path = tmp_path / "bidder.toml"
    path.write_text(config_text(pacing=f"enabled = {'true' if enabled else 'false'}"))
    bidder = build_app(Settings(config=path, smoke_request=demo.sample_request_path()))
    pacer = bidder.pacer
    assert pacer is not None  # made either way, so that a reload can turn pacing on
    running: list[bool] = []
    sent = asyncio.run(lifespan(bidder, lambda: running.append(pacer.running)))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert running == [enabled]
    assert not pacer.running
