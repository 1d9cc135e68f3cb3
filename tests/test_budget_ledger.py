"""The budget ledger (``docs/budget.md``): bids hold their cost against a limited campaign's
money, notices settle them, and the engine agrees with the reference's budget rule.

- Hand-written cases: a campaign stops when its money cannot cover one more bid, before any
  notice comes back; each notice kind and outcome (accepted, duplicate, conflict, unknown,
  expired), in both spend modes, with the exact nanos; day rollover and reload.
- Property: random configs, requests and available money, engine (``explain`` and ``bid``)
  against :func:`bidcore.reference.decide`, with the money read back from the ledger after
  every bid.
- Threads: four threads bid on one limited campaign; the money held and spent never exceeds
  what was granted, and every hold is accounted for.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Final

import msgspec
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import bidcore
from bidcore.asgi import app
from bidcore.budget.ledger import NANOS_PER_MICRO, BudgetLedger, NoticeOutcome
from bidcore.config import Config, Targeting, loads
from bidcore.errors import BidcoreError
from bidcore.serve import Settings, build_app, serve
from bidcore.testing.bidder import assert_same_decision, configs, requests
from tests.test_asgi import run, write_config

NOON: Final = 1_795_348_800.0  # 2026-11-22 12:00 UTC (a day starts at midnight)
TOKEN: Final = re.compile(r"bid=([0-9a-f]{16})")


def bidder(daily_budget: str | None = "0.01", *, cpm: str = "2", extra: str = "") -> Config:
    """One campaign bidding a fixed ``cpm`` (USD) on any 300x250 banner, with ``{bid}`` in its
    win and billing notice URLs."""
    budget = "" if daily_budget is None else f"daily_budget = {daily_budget}"
    return loads(
        f"""
[bidder]
nurl = "https://n.example/win?bid={{bid}}&price=${{AUCTION_PRICE}}"
burl = "https://n.example/bill?bid={{bid}}&price=${{AUCTION_PRICE}}"
{extra}
[[campaigns]]
id = "c1"
goal = "cpm"
cpm = {cpm}
max_bid = 5
{budget}
[[campaigns.creatives]]
id = "cr1"
media = "banner"
w = 300
h = 250
adomain = ["shop.example"]
"""
    )


def request(request_id: str = "r1", imps: int = 1) -> bytes:
    body = {
        "id": request_id,
        "at": 2,
        "imp": [{"id": str(i), "banner": {"w": 300, "h": 250}} for i in range(imps)],
        "site": {"domain": "news.example"},
    }
    return msgspec.json.encode(body)


def setup(
    config: Config, *, spend_on: str = "bill", ttl: float = 300.0
) -> tuple[bidcore.Engine, bidcore.Ledger, BudgetLedger]:
    ledger = bidcore.Ledger(ttl_seconds=ttl, spend_on=spend_on)
    budget = BudgetLedger(config, ledger, clock=lambda: NOON)
    budget.tick()
    return bidcore.Engine(config, ledger=ledger), ledger, budget


def tokens(response: bytes | None) -> list[str]:
    assert response is not None
    return sorted(set(TOKEN.findall(response.decode())))


# --- Holds -----------------------------------------------------------------------------------


def test_a_campaign_stops_when_its_money_cannot_cover_one_more_bid() -> None:
    # $0.01 a day at a $2 CPM: 5 impressions of 2_000_000 nanos each.
    engine, ledger, _ = setup(bidder("0.01"))
    answers = [engine.bid(request(f"r{i}"), now=NOON) for i in range(7)]
    assert [a is not None for a in answers] == [True] * 5 + [False] * 2
    assert ledger.accounts()["c1"] == (True, 0, 5 * 2_000_000, 0)
    assert engine.counters()["no_bids"]["budget"] == 2
    explained = engine.explain(request("r9"), now=NOON)
    assert explained["reason"] == "budget"
    assert [c["excluded_by"] for c in explained["candidates"]] == ["budget"]
    # A loss gives the hold back: one more bid.
    (token,) = tokens(answers[0])
    assert ledger.notice("loss", token, 0, NOON) == ("accepted", "c1", "c1", 0)
    assert engine.bid(request("r10"), now=NOON) is not None
    assert engine.bid(request("r11"), now=NOON) is None


def test_the_imps_of_one_request_hold_together() -> None:
    # Money for 3 impressions; a request of 5 imps gets 3 bids, the others no-bid (budget).
    engine, ledger, _ = setup(bidder("0.006"))
    explained = engine.explain(request("r1", imps=5), now=NOON)
    assert [i["reason"] for i in explained["imps"]] == [None] * 3 + ["budget"] * 2
    response = msgspec.json.decode(engine.bid(request("r1", imps=5), now=NOON) or b"")
    assert [b["impid"] for b in response["seatbid"][0]["bid"]] == ["0", "1", "2"]
    assert ledger.accounts()["c1"][1:3] == (0, 6_000_000)


def test_an_unlimited_campaign_bids_on_and_its_bids_are_still_registered() -> None:
    engine, ledger, budget = setup(bidder(None))
    answers = [engine.bid(request(f"r{i}"), now=NOON) for i in range(20)]
    assert all(a is not None for a in answers)
    assert ledger.stats()["in_flight"] == 20
    assert budget.remaining_nanos() == {}
    (token,) = tokens(answers[3])
    assert budget.notice("bill", token, price_micros=1_500_000, now=NOON).spent_nanos == 1_500_000


def test_explain_registers_nothing_and_writes_a_zero_token() -> None:
    engine, ledger, _ = setup(bidder("0.01"))
    explained = engine.explain(request(), now=NOON)
    assert "bid=0000000000000000" in explained["response"].decode()
    assert ledger.stats()["in_flight"] == 0
    assert ledger.accounts()["c1"] == (True, 10_000_000, 0, 0)


# --- Notices ---------------------------------------------------------------------------------


def test_notices_in_bill_mode() -> None:
    engine, ledger, budget = setup(bidder("0.01"), spend_on="bill")
    t1, t2, t3 = (tokens(engine.bid(request(f"r{i}"), now=NOON))[0] for i in range(3))
    assert ledger.accounts()["c1"] == (True, 4_000_000, 6_000_000, 0)

    def notice(kind: str, token: str, price: int | None = 1_234_567) -> tuple[str, int]:
        got = budget.notice(kind, token, price_micros=price, now=NOON + 1)  # type: ignore[arg-type]
        return got.outcome, got.spent_nanos

    # A win keeps the hold until the bill, which spends the clearing price and frees the rest.
    assert notice("win", t1) == ("accepted", 0)
    assert ledger.accounts()["c1"] == (True, 4_000_000, 6_000_000, 0)
    assert notice("bill", t1) == ("accepted", 1_234_567)
    assert ledger.accounts()["c1"] == (True, 4_765_433, 4_000_000, 1_234_567)
    assert notice("bill", t1) == ("duplicate", 0)
    assert notice("win", t1) == ("duplicate", 0)
    assert notice("loss", t1) == ("conflict", 0)
    # A bill with no win before it spends too; a loss frees the whole hold.
    assert notice("bill", t2, 2_000_000) == ("accepted", 2_000_000)
    assert notice("loss", t3, None) == ("accepted", 0)
    assert notice("loss", t3, None) == ("duplicate", 0)
    assert notice("win", t3) == ("conflict", 0)
    assert ledger.accounts()["c1"] == (True, 6_765_433, 0, 3_234_567)
    # Forged and malformed tokens are unknown (a forged one stamped long ago, expired);
    # nothing moves.
    assert notice("bill", f"{int(NOON):08x}deadbeef") == ("unknown", 0)
    assert notice("bill", "not-a-token") == ("unknown", 0)
    assert notice("bill", "00000000deadbeef") == ("expired", 0)
    stats = ledger.stats()["notices"]
    assert stats["bill"] == {
        "accepted": 2,
        "duplicate": 1,
        "conflict": 0,
        "unknown": 2,
        "expired": 1,
    }
    assert stats["win"]["conflict"] == 1
    assert stats["loss"]["duplicate"] == 1


def test_notices_in_win_mode_spend_on_the_win() -> None:
    engine, ledger, budget = setup(bidder("0.01"), spend_on="win")
    (t1,) = tokens(engine.bid(request("r1"), now=NOON))
    assert budget.notice("win", t1, price_micros=1_000_000, now=NOON).spent_nanos == 1_000_000
    assert budget.notice("bill", t1, price_micros=1_000_000, now=NOON).outcome == "accepted"
    assert ledger.accounts()["c1"] == (True, 9_000_000, 0, 1_000_000)


def test_a_notice_in_another_currency_is_converted_rounding_up() -> None:
    config = bidder("0.01", extra='[fx]\nrates = {USD = "1", EUR = "1.1"}')
    engine, ledger, budget = setup(config)
    (t1,) = tokens(engine.bid(request("r1"), now=NOON))
    # 1.000001 EUR CPM = 1.1000011 USD: 1_100_002 micros (up), so many nanos.
    got = budget.notice("bill", t1, price_micros=1_000_001, currency="EUR", now=NOON)
    assert (got.outcome, got.spent_nanos) == ("accepted", 1_100_002)
    (t2,) = tokens(engine.bid(request("r2"), now=NOON))
    assert budget.notice("bill", t2, price_micros=1, currency="CHF", now=NOON).outcome == (
        "currency"
    )
    assert ledger.accounts()["c1"][3] == 1_100_002


def test_expired_bids_release_their_hold_and_their_notices_are_refused() -> None:
    engine, ledger, budget = setup(bidder("0.004"), ttl=30.0)
    t1, t2 = (tokens(engine.bid(request(f"r{i}"), now=NOON))[0] for i in range(2))
    assert engine.bid(request("r3"), now=NOON) is None
    budget.tick(NOON + 31)  # past the bids' time to live: their holds come back
    assert ledger.accounts()["c1"] == (True, 4_000_000, 0, 0)
    assert ledger.stats()["expired"] == 2
    assert budget.notice("bill", t1, price_micros=2_000_000, now=NOON + 32).outcome == "expired"
    assert engine.bid(request("r4"), now=NOON + 31) is not None
    assert t2 != t1


# --- Days and reloads --------------------------------------------------------------------------


def test_each_day_grants_the_budget_less_nothing_and_bids_in_flight_carry_over() -> None:
    engine, ledger, budget = setup(bidder("0.01"), ttl=86_400)
    t = [tokens(engine.bid(request(f"r{i}"), now=NOON))[0] for i in range(5)]
    budget.notice("bill", t[0], price_micros=2_000_000, now=NOON)
    assert ledger.accounts()["c1"] == (True, 0, 8_000_000, 2_000_000)
    tomorrow = NOON + 86_400
    budget.tick(NOON + 40_000)  # 23:06, the same day: nothing granted
    assert ledger.accounts()["c1"][1] == 0
    budget.tick(tomorrow)
    # The new day's $0.01 less what yesterday's 4 bids still hold.
    assert ledger.accounts()["c1"] == (True, 2_000_000, 8_000_000, 2_000_000)
    # A bill of yesterday's bid arriving today counts against today.
    budget.notice("bill", t[1], price_micros=2_000_000, now=tomorrow)
    assert ledger.accounts()["c1"] == (True, 2_000_000, 6_000_000, 4_000_000)


def test_a_reload_changes_the_budget_and_keeps_today_s_spend() -> None:
    engine, ledger, budget = setup(bidder("0.01"))
    (t1,) = tokens(engine.bid(request("r1"), now=NOON))
    budget.notice("bill", t1, price_micros=2_000_000, now=NOON)
    budget.swap(bidder("0.005"))
    # $0.005 less the $0.002 spent today.
    assert ledger.accounts()["c1"] == (True, 3_000_000, 0, 2_000_000)
    new_engine = bidcore.Engine(bidder("0.005"), ledger=ledger)
    assert [new_engine.bid(request(f"s{i}"), now=NOON) is not None for i in range(2)] == [
        True,
        False,
    ]
    budget.swap(bidder(None))
    assert ledger.accounts()["c1"][0] is False
    assert new_engine.bid(request("s9"), now=NOON) is not None


def test_ledger_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="spend_on"):
        bidcore.Ledger(spend_on="click")
    with pytest.raises(ValueError, match="ttl_seconds"):
        bidcore.Ledger(ttl_seconds=0)
    with pytest.raises(ValueError, match="kind"):
        bidcore.Ledger().notice("click", "0" * 16, 0, NOON)


# --- Property: engine and reference with random money ----------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), config=configs())
def test_engine_and_reference_hold_budgets_alike(data: st.DataObject, config: Config) -> None:
    # Only fixed-price goals (models are not what this checks: the pacing test has them), and
    # no targeting, so that most requests reach pricing and the money decides.
    open_cpm = [
        msgspec.structs.replace(c, targeting=Targeting())
        for c in config.campaigns
        if c.goal == "cpm"
    ]
    config = msgspec.structs.replace(config, campaigns=open_cpm)
    if not config.campaigns:
        return
    ledger = bidcore.Ledger()
    engine = bidcore.Engine(config, models={}, ledger=ledger)
    for c in config.campaigns:
        if data.draw(st.booleans(), label=f"limit {c.id}"):
            ledger.set_limited(c.id, True)
            # From nothing to a few of its largest bids' worth (a price is at most max_bid, a
            # bid's cost in nanos its price in micros), so that some bids fit and some do not.
            most = int(c.max_bid * 1_000_000) * 4
            ledger.grant(c.id, data.draw(st.integers(0, most), label=f"money {c.id}"))
    bodies = data.draw(st.lists(requests(), min_size=1, max_size=5), label="bodies")
    for body in bodies:
        budget = {c: a[1] for c, a in ledger.accounts().items() if a[0]}
        before = sum(a[1] + a[2] for a in ledger.accounts().values() if a[0])
        got = assert_same_decision(engine, config, {}, body, NOON, budget=budget)
        # bid() (called by assert_same_decision) held each limited winner's cost: money moved
        # from available to exposure, none created or lost.
        after = sum(a[1] + a[2] for a in ledger.accounts().values() if a[0])
        assert after == before
        assert all(a[1] >= 0 for a in ledger.accounts().values() if a[0])
        event(f"bid: {got.get('bid')}")
        if any(c.get("excluded_by") == "budget" for c in got.get("candidates", [])):
            event("a candidate out of money")


# --- Threads ---------------------------------------------------------------------------------


def test_threads_never_hold_more_than_was_granted() -> None:
    config = bidder("1")  # $1: 500 impressions at $2 CPM
    engine, ledger, budget = setup(config)
    won: list[list[str]] = [[] for _ in range(4)]

    def bid(k: int) -> None:
        for i in range(400):
            answer = engine.bid(request(f"t{k}-{i}"), now=NOON)
            if answer is not None:
                won[k] += tokens(answer)

    threads = [threading.Thread(target=bid, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    all_tokens = [t for w in won for t in w]
    assert len(all_tokens) == len(set(all_tokens)) == 500
    assert ledger.accounts()["c1"] == (True, 0, 1_000_000 * NANOS_PER_MICRO, 0)
    for token in all_tokens:
        assert budget.notice("bill", token, price_micros=2_000_000, now=NOON).outcome == "accepted"
    assert ledger.accounts()["c1"] == (True, 0, 0, 1_000_000 * NANOS_PER_MICRO)


# --- Serving: notices through the app ----------------------------------------------------------


def test_the_app_settles_notices_through_the_ledger_and_counts_spend_once() -> None:
    config = bidder("0.01", extra="[budget]\nenabled = true")
    engine, ledger, budget = setup(config)
    server = app(engine, budget=budget)
    answer = run(server, "POST", "/openrtb2/bid", body=request("r1"))
    assert answer.status == 200
    (token,) = tokens(answer.body)
    bill = f"bid={token}&price=1.5".encode()
    for _ in range(3):  # the exchange retries: one spend
        assert run(server, "GET", "/openrtb2/bill", query=bill).status == 204
    forged = f"bid={int(NOON):08x}00000000&price=9".encode()
    assert run(server, "GET", "/openrtb2/bill", query=forged).status == 204
    assert ledger.accounts()["c1"][3] == 1_500_000
    page = run(server, "GET", "/metrics").body.decode()
    assert 'bidcore_budget_notices_total{kind="bill",outcome="accepted"} 1.0' in page
    assert 'bidcore_budget_notices_total{kind="bill",outcome="duplicate"} 2.0' in page
    assert 'bidcore_budget_spent_total{campaign="c1",currency="USD"} 0.0015' in page
    assert 'bidcore_spend_total{campaign="c1",currency="USD"} 0.0015' in page


def test_budget_needs_a_bid_placeholder() -> None:
    with pytest.raises(bidcore.ConfigError, match=r"\{bid\}"):
        loads(
            '[budget]\nenabled = true\n[[campaigns]]\nid = "c1"\ngoal = "cpm"\ncpm = 1\n'
            'max_bid = 2\n[[campaigns.creatives]]\nid = "cr"\nmedia = "banner"\nw = 1\nh = 1\n'
            'adomain = ["a.example"]\n'
        )


def test_serve_builds_the_ledger_when_the_config_enables_it(tmp_path: Path) -> None:
    path = write_config(tmp_path / "bidder.toml", seat="s")
    text = path.read_text().replace("&bucket={price_bucket}", "&bid={bid}&bucket={price_bucket}")
    path.write_text(text + "\n[budget]\nenabled = true\nbid_ttl_seconds = 60\n")
    server = build_app(Settings(config=path))
    assert server.budget is not None
    engine = server.holder.engine
    assert engine is not None
    assert engine.ledger is server.budget.ledger
    assert engine.ledger.ttl_seconds == 60
    # A reload builds the next engine on the same ledger.
    assert server.holder.load().ok
    assert server.holder.engine is not engine
    assert server.holder.engine.ledger is engine.ledger
    # Without [budget], no ledger.
    plain = build_app(Settings(config=write_config(tmp_path / "plain.toml", seat="s")))
    assert plain.budget is None


def test_serve_refuses_several_workers_with_a_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path / "bidder.toml", seat="s")
    text = path.read_text().replace("&bucket={price_bucket}", "&bid={bid}&bucket={price_bucket}")
    path.write_text(text + "\n[budget]\nenabled = true\n")
    # Refused before any worker starts: a notice could reach a worker without its bid.
    assert serve(Settings(config=path), workers=2, port=0) == 2
    assert "[budget] enabled needs one worker" in capsys.readouterr().err
    # And at a worker's load (a reload that turns the budget on, in a multi-worker server).
    with pytest.raises(BidcoreError, match="needs one worker"):
        build_app(Settings(config=path, reload_via_parent=True))


# --- Experiment arms with a budget share -----------------------------------------------------


def split(share_a: float, share_b: float, coverage: float = 1.0) -> str:
    """A layer with one experiment, ``split``, whose arms ``a`` and ``b`` have budget shares."""
    return f"""
[[experiments.layers]]
name = "budget"
seed = "split"
unit = ["user.id"]
[[experiments.layers.experiments]]
key = "split"
coverage = {coverage}
arms = [{{name = "a", budget_share = {share_a}}}, {{name = "b", budget_share = {share_b}}}]
"""


def user_request(request_id: str, user: str, imps: int = 1) -> bytes:
    """``request``'s banner imps, from ``user`` (the experiment's unit)."""
    body = msgspec.json.decode(request(request_id, imps))
    body["user"] = {"id": user}
    return msgspec.json.encode(body)


def test_an_arms_budget_share_is_an_account_its_bids_hold_against() -> None:
    # $0.01 at $2 CPM: 5 impressions. Arms "a" and "b" get 40% each (2 impressions), the
    # campaign's own account (requests in no arm: none here, coverage is whole) the rest.
    config = bidder("0.01", extra=split(0.4, 0.4))
    engine, ledger, _ = setup(config)
    assert {c: a[1] for c, a in ledger.accounts().items()} == {
        "c1": 2_000_000,
        "c1@split:a": 4_000_000,
        "c1@split:b": 4_000_000,
    }
    won: dict[str, int] = {"a": 0, "b": 0}
    for i in range(40):
        body = user_request(f"r{i}", f"user-{i}")
        arm = engine.explain(body, now=NOON)["arms"]["split"]
        if engine.bid(body, now=NOON) is not None:
            won[arm] += 1
    assert won == {"a": 2, "b": 2}, "each arm stops at its share, whatever the other has left"
    assert ledger.accounts()["c1"][1] == 2_000_000, "no request came outside the arms"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shares=st.tuples(st.sampled_from([0.1, 0.25, 0.5]), st.sampled_from([0.2, 0.3, 0.5])),
    coverage=st.sampled_from([0.5, 1.0]),
    money=st.lists(st.integers(0, 8_000_000), min_size=3, max_size=3),
    users=st.lists(st.integers(0, 50), min_size=1, max_size=12),
    imps=st.integers(1, 3),
)
def test_engine_and_reference_hold_arm_shares_alike(
    shares: tuple[float, float], coverage: float, money: list[int], users: list[int], imps: int
) -> None:
    config = bidder(None, cpm="1.5", extra=split(*shares, coverage))
    ledger = bidcore.Ledger()
    engine = bidcore.Engine(config, ledger=ledger)
    for account, nanos in zip(("c1", "c1@split:a", "c1@split:b"), money, strict=True):
        ledger.set_limited(account, True)
        ledger.grant(account, nanos)
    for i, user in enumerate(users):
        body = user_request(f"r{i}", f"user-{user}", imps)
        budget = {c: a[1] for c, a in ledger.accounts().items() if a[0]}
        assert_same_decision(engine, config, {}, body, NOON, budget=budget)


def test_the_engine_settles_notices_in_its_ledger() -> None:
    engine, ledger, _ = setup(bidder("0.01"))
    (token,) = tokens(engine.bid(request("r1"), now=NOON))
    (other,) = tokens(engine.bid(request("r2"), now=NOON))
    assert engine.win(token, 1_500_000, now=NOON + 1) == NoticeOutcome("accepted", "c1", 0, "c1")
    assert engine.bill(token, 1_500_000, now=NOON + 2) == NoticeOutcome(
        "accepted", "c1", 1_500_000, "c1"
    )
    assert engine.bill(token, 1_500_000, now=NOON + 3).outcome == "duplicate"
    assert engine.loss(other, now=NOON + 3) == NoticeOutcome("accepted", "c1", 0, "c1")
    assert engine.bill("0" * 16, 1, now=NOON).outcome == "unknown"
    assert engine.bill(other, 1, currency="XYZ", now=NOON).outcome == "currency"
    assert ledger.accounts()["c1"] == (True, 10_000_000 - 1_500_000, 0, 1_500_000)
    with pytest.raises(bidcore.ConfigError, match="ledger"):
        bidcore.Engine(bidder("0.01")).loss(token)
