"""The shared budget ledger (``docs/budget.md``, "Across a fleet"): leases from a real
``redis-server``, spent locally through the native ledger.

- Hand-written cases, exact to the nano: two processes lease until the budget is gone; renewal
  below half a lease; money given back on stop and when a campaign leaves the config; a reload
  changing the budget for the fleet; Redis down (the process spends its lease, then no-bids)
  and back (leasing resumes, the buffered spend reported exactly); a store that lost its data
  (fail closed); a new record's fresh window; the day's carry-over; answers lost on the way
  back; metrics; ``bidcore serve`` building the shared ledger.
- Property: random interleavings of leases, returns, charges, spend reports, lost answers and
  data loss from three process ids against the Lua script itself.
- Fleets: three worker processes (``bidcore.testing.fleet``) bid on the same two campaigns
  with wins at a high rate; total spend never exceeds the budget (durable Redis: zero
  overspend), also with Redis killed and restarted mid-run; with a restart that loses the
  data, at most the number of processes times a lease over.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import msgspec
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

import bidcore
from bidcore.budget import Pacer, SharedBudgetLedger
from bidcore.budget.pacing import day_position
from bidcore.budget.shared import LEASE_SCRIPT, RECORD_TTL_SECONDS
from bidcore.config import Config, loads
from bidcore.serve import Settings, build_app
from bidcore.testing.servers import RedisServer, redis_server
from tests.test_asgi import write_config

NOON: Final = 1_795_348_800.0  # 2026-11-22 12:00 UTC
DAY: Final = day_position(NOON)[0]
TOKEN: Final = re.compile(r"bid=([0-9a-f]{16})")
BID: Final = 1_000_000  # nanos: one impression at the $1 CPM of bidder()
# The tests' Redis syncs its file on every write (durable) on a shared two-core machine: a call
# can wait longer than the default 0.25 s, a store error no test here is about.
STORE_TIMEOUT: Final = "store_timeout_seconds = 1.0"


def bidder(
    daily_budget: str | None = "0.01",
    *,
    lease_share: float = 0.3,
    campaign: str = "c1",
    store: str = "redis",
    settings: str = "",
) -> Config:
    """One campaign bidding $1 CPM (1,000 micros an impression) on any 300x250 banner, with a
    budget shared through Redis: $0.01 is 10 impressions, a lease of 0.3 is 3."""
    budget = "" if daily_budget is None else f"daily_budget = {daily_budget}"
    if "store_timeout_seconds" not in settings:
        settings = f"{STORE_TIMEOUT}\n{settings}"  # first: settings may open other tables
    return loads(
        f"""
[bidder]
burl = "https://n.example/bill?bid={{bid}}&price=${{AUCTION_PRICE}}"
[budget]
enabled = true
store = "{store}"
lease_share = {lease_share}
{settings}
[[campaigns]]
id = "{campaign}"
goal = "cpm"
cpm = 1
max_bid = 1
{budget}
[[campaigns.creatives]]
id = "cr1"
media = "banner"
w = 300
h = 250
adomain = ["shop.example"]
"""
    )


def request(request_id: str = "r1") -> bytes:
    body = {"id": request_id, "at": 2, "imp": [{"id": "1", "banner": {"w": 300, "h": 250}}]}
    return msgspec.json.encode(body)


class Process:
    """One simulated bidder process: an engine on its own native ledger and shared ledger."""

    _requests = itertools.count()

    def __init__(
        self,
        server: RedisServer,
        pid: str,
        config: Config | None = None,
        *,
        clock: Callable[[], float] = lambda: NOON,
        **options: Any,
    ) -> None:
        config = config or bidder()
        options.setdefault("fresh_seconds", 0.0)
        options.setdefault("report_seconds", 60.0)
        self.ledger = bidcore.Ledger(ttl_seconds=86_400)
        self.budget = SharedBudgetLedger(
            config, self.ledger, url=server.url, process_id=pid, clock=clock, **options
        )
        self.engine = bidcore.Engine(config, ledger=self.ledger)
        self.clock = clock

    def bid(self) -> str | None:
        """Bids once: the bid's token, or None (no bid)."""
        answer = self.engine.bid(request(f"r{next(self._requests)}"), now=self.clock())
        return None if answer is None else TOKEN.findall(answer.decode())[0]

    def bids(self, n: int) -> list[str | None]:
        return [self.bid() for _ in range(n)]

    def bill(self, token: str | None, micros: int = 1_000) -> None:
        assert token is not None
        # price_micros is a CPM: the impression costs price_micros nanos.
        got = self.budget.notice("bill", token, price_micros=micros * 1000, now=self.clock())
        assert got.outcome == "accepted"

    def money(self, campaign: str = "c1") -> tuple[int, int, int]:
        """(available, exposure, spent) in nanos."""
        return self.ledger.accounts()[campaign][1:]

    def record(self, campaign: str = "c1", day: int = DAY) -> dict[str, int]:
        return self.budget.record(campaign, day)

    def close(self) -> None:
        self.budget.client.close()


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with redis_server(durable=True) as running:
        yield running


@pytest.fixture
def processes(server: RedisServer) -> Iterator[Callable[..., Process]]:
    made: list[Process] = []

    def make(pid: str, config: Config | None = None, **options: Any) -> Process:
        made.append(Process(server, pid, config, **options))
        return made[-1]

    yield make
    for process in made:
        process.close()


# --- Leases ------------------------------------------------------------------------------------


def test_two_processes_lease_until_the_budget_is_gone(
    processes: Callable[..., Process],
) -> None:
    a, b = processes("a"), processes("b")
    a.budget.tick()
    b.budget.tick()
    assert a.money() == b.money() == (3 * BID, 0, 0)
    assert a.record()["leased"] == 6_000
    assert a.bids(4)[-1] is None  # the lease covers 3 bids: the 4th no-bids, Redis or not
    assert a.engine.counters()["no_bids"]["budget"] == 1
    a.budget.tick()  # renews: a full lease
    assert a.money() == (3 * BID, 3 * BID, 0)
    assert b.bids(3)[-1] is not None
    b.budget.tick()  # 1,000 micros were left of the 10,000
    assert b.money() == (BID, 3 * BID, 0)
    assert a.bids(4)[-1] is None
    a.budget.tick()
    assert a.money() == (0, 6 * BID, 0)
    assert a.bid() is None
    record = a.record()
    assert (record["budget"], record["leased"], record["p:a"], record["p:b"]) == (
        10_000,
        10_000,
        6_000,
        4_000,
    )
    assert a.budget.stats()["leases"] == 2
    assert b.budget.stats()["leases"] == 2
    assert a.budget.leased_micros() == {"c1": 6_000}


def test_a_lease_is_renewed_below_half_and_tops_up_to_one_lease(
    processes: Callable[..., Process],
) -> None:
    a = processes("a")
    a.budget.tick()
    a.bid()
    a.budget.tick()  # 2,000 micros left of a 3,000 lease: no call
    assert a.budget.stats()["calls"] == 1
    assert a.money() == (2 * BID, BID, 0)
    a.bid()
    a.budget.tick()  # 1,000 left, below half: asks for 2,000, so never more than a lease idle
    assert a.budget.stats()["calls"] == 2
    assert a.money() == (3 * BID, 2 * BID, 0)
    assert a.record()["leased"] == 5_000


def test_stop_reports_the_spend_and_gives_back_what_no_bid_holds(
    processes: Callable[..., Process],
) -> None:
    a, b = processes("a"), processes("b")
    a.budget.tick()
    t1, _t2 = a.bids(2)
    a.bill(t1, 700)
    a.budget.stop()
    assert a.money() == (0, BID, 700 * 1000)  # the bid in flight keeps its hold
    record = a.record()
    # Leased 3,000; gave back the 1,300 neither held nor spent.
    assert (record["leased"], record["p:a"], record["spent_nanos"]) == (1_700, 1_700, 700_000)
    b.budget.tick()
    assert b.money()[0] == 3 * BID
    assert a.record()["leased"] == 4_700


def test_a_campaign_leaving_the_config_gives_its_money_back(
    processes: Callable[..., Process],
) -> None:
    a = processes("a")
    a.budget.tick()
    a.bid()
    a.budget.swap(bidder(campaign="c2"))
    a.budget.tick()
    assert a.money() == (0, BID, 0)
    assert a.record()["leased"] == 1_000
    # A campaign left unlimited gives its money back too.
    b = processes("b", bidder(campaign="c3"))
    b.budget.tick()
    b.budget.swap(bidder(None, campaign="c3"))
    b.budget.tick()
    assert b.record("c3")["leased"] == 0
    assert b.bid() is not None  # unlimited


def test_a_reload_changes_the_budget_for_the_fleet(processes: Callable[..., Process]) -> None:
    a = processes("a")
    a.budget.tick()
    smaller = bidder("0.002")  # 2,000 micros: less than a has leased already
    a.budget.swap(smaller)
    a.budget.tick()
    assert (a.record()["budget"], a.record()["leased"]) == (2_000, 3_000)
    b = processes("b", smaller)
    b.budget.tick()
    assert b.money() == (0, 0, 0)
    assert b.budget.lease_micros("c1") == 1_000  # one impression: more than 0.3 of $0.002
    larger = bidder("0.02", lease_share=0.1)  # 20,000 micros, leases of 2,000
    a.budget.swap(larger)
    b.budget.swap(larger)
    b.budget.tick()
    assert b.money() == (2 * BID, 0, 0)
    assert (a.record()["budget"], a.record()["leased"]) == (20_000, 5_000)


# --- Redis down, Redis losing data -------------------------------------------------------------


def test_with_redis_down_a_process_spends_its_lease_then_stops_and_resumes_after(
    server: RedisServer, processes: Callable[..., Process]
) -> None:
    a = processes("a")
    a.budget.tick()
    server.stop()
    tokens = a.bids(4)
    assert tokens[-1] is None  # the lease is spent: no bid for the campaign
    assert a.engine.counters()["no_bids"]["budget"] == 1
    for token in tokens[:3]:
        a.bill(token, 900)
    a.budget.tick()
    a.budget.tick(flush=True)
    assert a.budget.stats()["store_errors"] == 2
    assert a.money() == (300_000, 0, 2_700_000)  # less than one bid: still no bids
    assert a.bid() is None
    server.start()  # durable: the record is as it was
    a.budget.tick()
    assert a.money() == (3 * BID, 0, 2_700_000)
    record = a.record()
    assert record["spent_nanos"] == a.money()[2] == 2_700_000
    assert (record["leased"], record["p:a"], record.get("lost", 0)) == (5_700, 5_700, 0)
    assert a.budget.stats()["leases"] == 2
    assert a.bid() is not None


def test_a_store_that_lost_the_record_closes_it_for_the_day(
    server: RedisServer, processes: Callable[..., Process]
) -> None:
    a, b = processes("a"), processes("b")
    a.budget.tick()
    b.budget.tick()
    for token in a.bids(3):
        a.bill(token)
    redis.Redis.from_url(server.url).flushall()
    c = processes("c")  # had nothing: cannot tell a loss from a new record
    c.budget.tick()
    assert c.money()[0] == 3 * BID
    a.budget.tick(flush=True)  # received 3,000 from a record that says nothing of it
    assert a.budget.stats()["lost"] == 1
    record = a.record()
    assert (record["leased"], record["budget"], record["lost"]) == (10_000, 10_000, 1)
    assert record["spent_nanos"] == 3 * BID  # a reported its spend again, in full
    b.budget.tick(flush=True)
    assert b.budget.stats()["lost"] == 1
    assert a.record()["leased"] == 10_000
    # Nobody leases any more today: a and c spend what they hold, then stop.
    a.budget.tick()
    assert a.money()[0] == 0
    assert c.bids(4)[-1] is None
    c.budget.tick()
    assert c.money()[0] == 0
    # What the fleet received today: a 3,000 and b 3,000 before, c 3,000 after: at most one
    # lease per process over the budget (here under it).
    assert sum(p.record()[f"p:{p.budget.process_id}"] for p in (a, b, c)) == 9_000


def test_a_new_record_gives_each_process_one_lease_while_fresh(
    server: RedisServer, processes: Callable[..., Process]
) -> None:
    a = processes("a", fresh_seconds=60.0)
    a.budget.tick()
    a.bids(2)
    a.budget.tick()  # below half a lease, but the record is fresh and a has one lease
    assert a.money() == (BID, 2 * BID, 0)
    assert a.record()["leased"] == 3_000
    # The store loses the record: a new process takes one lease, no more, until a process
    # that had money from the lost record closes it.
    redis.Redis.from_url(server.url).flushall()
    c = processes("c", fresh_seconds=60.0)
    c.budget.tick()
    c.bids(3)
    c.budget.tick()
    assert c.money() == (0, 3 * BID, 0)
    a.budget.tick(flush=True)
    assert a.budget.stats()["lost"] == 1
    assert a.record()["leased"] == 10_000
    # A record past its fresh window renews as usual.
    b = processes("b", bidder(campaign="c2"), fresh_seconds=0.2)
    b.budget.tick()
    b.bids(2)
    b.budget.tick()
    assert b.money("c2")[0] == BID
    time.sleep(0.25)
    b.budget.tick()
    assert b.money("c2")[0] == 3 * BID


def test_a_restart_without_persistence_fails_closed() -> None:
    with redis_server() as server:
        a = Process(server, "a")
        a.budget.tick()
        a.bids(3)
        server.kill()
        server.start()  # empty
        a.budget.tick()
        assert a.budget.stats()["lost"] == 1
        assert a.record()["leased"] == 10_000
        a.close()


# --- Days --------------------------------------------------------------------------------------


def test_a_new_day_charges_what_is_left_to_today_s_record(
    processes: Callable[..., Process],
) -> None:
    now = [NOON]
    a = processes("a", clock=lambda: now[0])
    a.budget.tick()
    t1, t2 = a.bids(2)
    a.bill(t1, 800)  # not yet reported
    now[0] = NOON + 50_000  # 01:53 the next day
    a.budget.tick()
    yesterday, today = a.record(day=DAY), a.record(day=DAY + 1)
    assert (yesterday["leased"], yesterday["spent_nanos"]) == (3_000, 800_000)
    # Left: 1,200 available and 1,000 held by t2, charged to today; then a top-up to a lease.
    assert (today["leased"], today["c:a"], today["p:a"]) == (4_000, 2_200, 4_000)
    assert a.money() == (3 * BID, BID, 800_000)
    a.bill(t2, 1_000)  # yesterday's bid, billed today: today's spend
    a.budget.tick(flush=True)
    assert a.record(day=DAY + 1)["spent_nanos"] == BID
    assert a.record(day=DAY)["spent_nanos"] == 800_000


# --- Answers lost on the way back ----------------------------------------------------------------


def test_answers_lost_on_the_way_back_are_made_good(processes: Callable[..., Process]) -> None:
    a = processes("a")
    a.budget.tick()
    key = f"bidcore:budget:c1:{DAY}"
    script = a.budget.client.register_script(LEASE_SCRIPT)
    # A lease of 1,000 the record granted and a never heard of: the next call hands it over.
    script(keys=[key], args=["a", RECORD_TTL_SECONDS, 0, 10_000, 3_000, 0, 0, 1_000, 0, 0])
    a.budget.tick(flush=True)
    assert a.money()[0] == 4 * BID
    assert a.record()["p:a"] == 4_000
    # A spend report that arrived but whose answer did not: sent again, counted once.
    a.bill(a.bid(), 500)
    script(keys=[key], args=["a", RECORD_TTL_SECONDS, 0, -1, 4_000, 0, 0, 0, 0, 500_000])
    a.budget.tick(flush=True)
    assert a.record()["spent_nanos"] == 500_000
    a.budget.tick(flush=True)
    assert a.record()["spent_nanos"] == 500_000
    assert a.budget.stats()["lost"] == 0


# --- Serving -------------------------------------------------------------------------------------


def test_each_process_paces_on_the_fleet_s_spend(processes: Callable[..., Process]) -> None:
    paced = bidder(settings="[pacing]\nenabled = true")
    a = processes("a", paced, report_seconds=1e-9)
    b = processes("b", paced, report_seconds=1e-9)
    a.budget.tick()
    b.budget.tick()
    for token in a.bids(2):
        a.bill(token)
    b.bill(b.bid())
    a.budget.tick()  # reports its 2,000 micros
    b.budget.tick()  # reports its 1,000 and learns of a's
    assert b.budget.fleet_spent_micros() == {"c1": 3_000}
    assert a.budget.fleet_spent_micros() == {"c1": 2_000}  # not yet told of b's
    a.budget.tick()
    assert a.budget.fleet_spent_micros() == {"c1": 3_000}
    a.bill(a.bid())  # its own spend counts at once, reported or not
    assert a.budget.fleet_spent_micros() == {"c1": 4_000}
    # The pacer of a, told of its own bills only, paces on the fleet's spend.
    pacer = Pacer(paced, a.engine, clock=lambda: NOON, fleet_spend=a.budget.fleet_spent_micros)
    assert pacer.record_bill("c1", 1_000_000)
    assert pacer.tick()["c1"].spent_micros == 4_000
    alone = Pacer(paced, a.engine, clock=lambda: NOON)
    assert alone.record_bill("c1", 1_000_000)
    assert alone.tick()["c1"].spent_micros == 1_000


def test_the_collector_adds_the_store_s_counts(processes: Callable[..., Process]) -> None:
    a = processes("a")
    a.budget.tick()
    registry = CollectorRegistry()
    registry.register(a.budget.collector())
    page = generate_latest(registry).decode()
    assert "bidcore_budget_store_errors_total 0.0" in page
    assert "bidcore_budget_leases_total 1.0" in page
    assert "bidcore_budget_store_lost_total 0.0" in page
    assert 'bidcore_budget_leased{campaign="c1",currency="USD"} 0.003' in page
    assert 'bidcore_budget_money{campaign="c1",currency="USD",state="available"} 0.003' in page


def test_serve_builds_the_shared_ledger_and_ticks_it(server: RedisServer, tmp_path: Path) -> None:
    path = write_config(tmp_path / "bidder.toml", seat="s")
    text = path.read_text().replace("&bucket={price_bucket}", "&bid={bid}&bucket={price_bucket}")
    path.write_text(
        text + f'\n[budget]\nenabled = true\nstore = "redis"\nredis_url = "{server.url}"\n'
        f"tick_seconds = 0.05\n{STORE_TIMEOUT}\n"
    )
    app = build_app(Settings(config=path))
    budget = app.budget
    assert isinstance(budget, SharedBudgetLedger)
    engine = app.holder.engine
    assert engine is not None
    assert engine.ledger is budget.ledger
    limited = [c.id for c in engine.config.campaigns if c.daily_budget is not None]
    ticks: list[float] = []
    tick = budget.tick

    def counted(now: float | None = None, *, flush: bool = False) -> None:
        ticks.append(time.monotonic())
        tick(now, flush=flush)

    budget.tick = counted  # type: ignore[method-assign]
    try:
        budget.start()  # as the app's startup does: every tick_seconds
        time.sleep(0.5)
        assert len(ticks) >= 5
        assert budget.stats()["store_errors"] == 0
        leased = budget.leased_micros()
        assert set(leased) == set(limited)
        assert all(budget.record(c)["leased"] == leased[c] > 0 for c in limited)
    finally:
        budget.stop()
    assert all(budget.record(c)["leased"] == 0 for c in limited)
    budget.client.close()


def test_budget_store_settings_are_checked() -> None:
    with pytest.raises(bidcore.ConfigError, match="store"):
        bidder(store="memcached")
    for table, match in [
        ("tick_seconds = 0", "tick_seconds"),
        ("tick_seconds = 5", "tick_seconds"),
        ("store_timeout_seconds = 0", "store_timeout_seconds"),
        ("store_timeout_seconds = inf", "store_timeout_seconds"),
        ('redis_url = "http://x"', "redis_url"),
        ('key_prefix = ""', "key_prefix"),
    ]:
        with pytest.raises(bidcore.ConfigError, match=match):
            bidder(settings=table)
    for share in (0, 1.5, float("nan")):
        with pytest.raises(bidcore.ConfigError, match="lease_share"):
            bidder(lease_share=share)


# --- Property: the script keeps its books --------------------------------------------------------


@pytest.fixture(scope="module")
def store() -> Iterator[redis.Redis]:
    with redis_server() as running:
        client = redis.Redis.from_url(running.url)
        yield client
        client.close()


_keys = itertools.count()

operations = st.lists(
    st.one_of(
        st.tuples(st.just("lease"), st.sampled_from("abc"), st.integers(0, 4_000)),
        st.tuples(st.just("release"), st.sampled_from("abc"), st.integers(0, 4_000)),
        st.tuples(st.just("charge"), st.sampled_from("abc"), st.integers(1, 3_000)),
        st.tuples(st.just("report"), st.sampled_from("abc"), st.integers(1, 10**12)),
        st.tuples(st.just("budget"), st.sampled_from("abc"), st.integers(0, 20_000)),
        st.tuples(st.just("unanswered"), st.sampled_from("abc"), st.integers(1, 4_000)),
        st.tuples(st.just("loss"), st.just("a"), st.just(0)),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations=operations, budget=st.integers(0, 20_000), fresh=st.booleans())
def test_the_lease_script_keeps_its_books(
    store: redis.Redis, operations: list[tuple[str, str, int]], budget: int, fresh: bool
) -> None:
    script = store.register_script(LEASE_SCRIPT)
    key = f"prop:{next(_keys)}"
    fresh_ms = 60_000 if fresh else 0
    mine = dict.fromkeys("abc", 0)  # what each process knows it received
    reported = dict.fromkeys("abc", 0)  # its s:{pid} as it last saw it
    charged: dict[str, int] = {}
    spent = 0  # spend the record was sent and took (without loss)
    lost = False
    budgets = [budget]

    def call(pid: str, **values: int) -> list[Any]:
        v = {"budget": budgets[-1], "charge": 0, "ret": 0, "want": 0, "delta": 0} | values
        args: list[str | int] = [pid, 60, fresh_ms, v["budget"], mine[pid], v["charge"]]
        args += [v["ret"], v["want"], reported[pid], v["delta"]]
        answer: list[Any] = script(keys=[key], args=args)[0]
        return answer

    def record() -> dict[str, int]:
        raw: dict[bytes, bytes] = store.hgetall(key)  # type: ignore[assignment]
        return {k.decode(): int(v) for k, v in raw.items()}

    for kind, pid, amount in operations:
        before = record()
        if kind == "loss":
            store.delete(key)
            lost = True  # the books start again: only the loss checks below hold
            continue
        if kind == "budget":
            budgets.append(amount)
            answer = call(pid)
        elif kind == "release":
            ret = min(amount, mine[pid])
            mine[pid] -= ret
            answer = call(pid, ret=ret)
        elif kind == "charge":
            answer = call(pid, charge=amount)
            if before.get(f"c:{pid}") is None:
                charged[pid] = amount
        elif kind == "report":
            answer = call(pid, delta=amount)
            if int(answer[5]) == reported[pid] + amount:
                spent += amount
        elif kind == "unanswered":  # applied, its answer lost
            call(pid, want=amount)
            continue
        else:
            answer = call(pid, want=amount)
        take, p, leased, now_budget, was_lost, s, fleet = answer
        assert take >= 0
        assert (take <= amount) if kind == "lease" else (take == 0)
        assert now_budget == budgets[-1]
        if was_lost:
            assert lost
            assert leased >= now_budget
        else:
            assert p >= mine[pid]
        if kind == "lease" and not was_lost:
            room = max(0, budgets[-1] - before.get("leased", 0))
            fresh_blocked = fresh and before.get(f"p:{pid}", 0) - before.get(f"c:{pid}", 0) > 0
            assert take == (0 if fresh_blocked else min(amount, room))
        if kind != "release":
            mine[pid] = p  # the process takes what the record says it has
        reported[pid] = int(s)
        after = record()
        shares = sum(v for k, v in after.items() if k.startswith("p:"))
        if not lost:
            assert shares == after["leased"] == leased
            # Takes stop at the budget: beyond it only charges (the day before's carry-over).
            assert after["leased"] - sum(charged.values()) <= max(budgets)
            assert after["spent_nanos"] == spent == sum(reported.values()) == int(fleet)
        assert all(v >= 0 for k, v in after.items() if k.startswith("p:"))
    store.delete(key)


# --- Fleets: several processes on one Redis ------------------------------------------------------

FLEET_CONFIG: Final = (
    """
[bidder]
burl = "https://n.example/bill?bid={bid}&price=${AUCTION_PRICE}"
lurl = "https://n.example/loss?bid={bid}"

[budget]
enabled = true
store = "redis"
lease_share = 0.02
tick_seconds = 0.05
"""
    + STORE_TIMEOUT
    + """

[[campaigns]]
id = "c1"
goal = "cpm"
cpm = 2
max_bid = 2
daily_budget = 2
[[campaigns.creatives]]
id = "cr1"
media = "banner"
w = 300
h = 250
adomain = ["shop.example"]

[[campaigns]]
id = "c2"
goal = "cpm"
cpm = 1
max_bid = 1
daily_budget = 1
[[campaigns.creatives]]
id = "cr2"
media = "banner"
w = 728
h = 90
adomain = ["shop.example"]
"""
)
FLEET: Final = 3
BUDGETS: Final = {"c1": 2_000_000_000, "c2": 1_000_000_000}  # nanos: $2 and $1
LEASES: Final = {c: b * 2 // 100 for c, b in BUDGETS.items()}


def run_fleet(
    server: RedisServer,
    tmp_path: Path,
    *,
    seconds: float,
    outage: tuple[float, float] | None = None,
) -> list[dict[str, Any]]:
    """Runs FLEET workers for ``seconds`` from a common start (and on, up to twice as long,
    while they still bid: a slow machine spends the budgets later); with ``outage``, Redis is
    killed (SIGKILL) that many seconds after the start and started again at the second."""
    config = tmp_path / "fleet.toml"
    config.write_text(FLEET_CONFIG)
    logs = [(tmp_path / f"w{i}.err").open("w") for i in range(FLEET)]
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bidcore.testing.fleet",
                str(config),
                "--url",
                server.url,
                "--process-id",
                f"w{i}",
                "--seconds",
                str(seconds),
                "--max-seconds",
                str(2 * seconds),
                "--seed",
                str(i),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=logs[i],
            text=True,
        )
        for i in range(FLEET)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        go = time.monotonic()
        if outage is not None:
            time.sleep(max(0.0, go + outage[0] - time.monotonic()))
            server.kill()
            time.sleep(max(0.0, go + outage[1] - time.monotonic()))
            server.start()
        reports = []
        for worker in workers:
            out, _ = worker.communicate(timeout=60)
            assert worker.returncode == 0, (tmp_path / "w0.err").read_text()
            reports.append(json.loads(out.splitlines()[-1]))
        return reports
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        for file in logs:
            file.close()


def fleet_totals(reports: list[dict[str, Any]], campaign: str) -> tuple[int, int]:
    """(spent, held) over the fleet, nanos."""
    accounts = [r["accounts"][campaign] for r in reports]
    return sum(a["spent"] for a in accounts), sum(a["exposure"] for a in accounts)


def stored_spend(server: RedisServer, campaign: str) -> int:
    with redis.Redis.from_url(server.url) as client:
        return int(client.hget(f"bidcore:budget:{campaign}:{DAY}", "spent_nanos") or 0)


@pytest.mark.slow
def test_a_fleet_never_spends_more_than_the_budget(tmp_path: Path) -> None:
    with redis_server(durable=True) as server:
        reports = run_fleet(server, tmp_path, seconds=4.0)
        for campaign, budget in BUDGETS.items():
            spent, held = fleet_totals(reports, campaign)
            assert held == 0  # every notice delivered
            assert spent <= budget  # zero overspend
            assert spent >= budget - FLEET * LEASES[campaign]  # and the budget was spent
            assert stored_spend(server, campaign) == spent
    assert all(r["stats"]["lost"] == r["stats"]["store_errors"] == 0 for r in reports)
    assert all(r["no_bid_reasons"]["budget"] > 0 for r in reports)


@pytest.mark.slow
def test_a_fleet_stays_within_the_budget_when_redis_is_killed_and_restarted(
    tmp_path: Path,
) -> None:
    killed, restarted = 1.3, 2.3
    with redis_server(durable=True) as server:
        reports = run_fleet(server, tmp_path, seconds=5.0, outage=(killed, restarted))
        for campaign, budget in BUDGETS.items():
            spent, _ = fleet_totals(reports, campaign)
            assert budget - FLEET * LEASES[campaign] <= spent <= budget
            assert stored_spend(server, campaign) == spent
    for r in reports:
        assert r["stats"]["store_errors"] > 0
        assert r["stats"]["lost"] == 0
        assert any(killed < t < restarted + 0.5 for t in r["error_times"])
        assert any(t > restarted for t in r["lease_times"])  # leasing resumed
        at_restart = max(s for t, s in r["spend"] if t <= restarted)
        assert r["spend"][-1][1] > at_restart  # and spending with it


@pytest.mark.slow
def test_a_fleet_overspends_at_most_a_lease_per_process_when_redis_loses_its_data(
    tmp_path: Path,
) -> None:
    # Killed when most of the budgets are leased: a fleet that did not notice the loss would
    # lease them again from the empty records and spend well past them in the second after.
    with redis_server() as server:  # no persistence: the restart is empty
        reports = run_fleet(server, tmp_path, seconds=4.5, outage=(2.4, 2.8))
        for campaign, budget in BUDGETS.items():
            spent, _ = fleet_totals(reports, campaign)
            assert spent <= budget + FLEET * LEASES[campaign]
            assert stored_spend(server, campaign) == spent  # reported again, in full
    assert all(r["stats"]["lost"] == len(BUDGETS) for r in reports)  # each noticed, fail closed
