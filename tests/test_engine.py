"""bidcore.Engine: the native decision through Python — its API, counters, threads and fork.

Linux, as the wheels are: the fork test forks, the memory test reads ``/proc/self/status``.

The rule-by-rule agreement with the Python reference is tests/test_engine_differential.py.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

import bidcore
from bidcore.config import loads

CORPUS = Path(__file__).parent / "fixtures" / "openrtb" / "requests.jsonl"
NOW = 1_795_390_200.0  # 2026-11-22 23:30 UTC

CONFIG = """
[bidder]
seat = "s1"
nurl = "https://n.example/win?p=${AUCTION_PRICE}&c={campaign}&cr={creative}&b={price_bucket}"
[fx]
rates = { EUR = 1.08 }
[[campaigns]]
id = "c1"
goal = "cpm"
cpm = 2
max_bid = 5
[[campaigns.creatives]]
id = "cr1"
media = "banner"
w = 300
h = 250
adomain = ["shop.example"]
cat = ["IAB3"]
markup = "<a href='https://shop.example/?c={campaign}&i={imp}'>ad</a>"
[[campaigns]]
id = "c2"
goal = "cpm"
cpm = 3
max_bid = 5
[campaigns.targeting]
countries = ["USA"]
[[campaigns.creatives]]
id = "cr2"
media = "banner"
w = 300
h = 250
adomain = ["other.example"]
"""

BODY = b'{"id":"r1","at":2,"imp":[{"id":"1","banner":{"w":300,"h":250},"bidfloor":0.5}]}'


@pytest.fixture(scope="module")
def engine() -> bidcore.Engine:
    return bidcore.Engine(loads(CONFIG))


def test_a_bid_carries_the_winner_its_price_and_filled_templates(engine: bidcore.Engine) -> None:
    us = BODY.replace(b'"at":2', b'"at":2,"device":{"geo":{"country":"USA"}}')
    response = json.loads(engine.bid(us, now=NOW) or b"null")
    (bid,) = response["seatbid"][0]["bid"]
    # c2 (3.00) outbids c1 (2.00) in a second-price auction: both bid their value.
    assert (bid["cid"], bid["crid"], bid["price"]) == ("c2", "cr2", 3)
    assert response["seatbid"][0]["seat"] == "s1"
    assert response["cur"] == "USD"
    assert bid["nurl"] == "https://n.example/win?p=${AUCTION_PRICE}&c=c2&cr=cr2&b=3.00"
    assert bid["adomain"] == ["other.example"]
    assert (bid["mtype"], bid["w"], bid["h"]) == (1, 300, 250)
    # Outside the USA only c1 is eligible; its markup names the campaign and imp.
    (bid,) = json.loads(engine.bid(BODY, now=NOW) or b"null")["seatbid"][0]["bid"]
    assert bid["adm"] == "<a href='https://shop.example/?c=c1&i=1'>ad</a>"


def test_no_bid_returns_none_and_counts_the_reason() -> None:
    engine = bidcore.Engine(loads(CONFIG))
    assert engine.bid(BODY.replace(b"0.5", b"2.5"), now=NOW) is None
    assert engine.bid(BODY.replace(b"300", b"728"), now=NOW) is None
    with pytest.raises(bidcore.InvalidRequestError):
        engine.bid(b'{"id":"r1","imp":[]}', now=NOW)
    counters = engine.counters()
    assert counters["requests"] == 3
    assert counters["bids"] == 0
    assert counters["no_bids"]["below_floor"] == 1
    assert counters["no_bids"]["size"] == 1
    assert counters["no_bids"]["invalid"] == 1


def test_explain_names_the_rule_and_the_arithmetic(engine: bidcore.Engine) -> None:
    explained = engine.explain(BODY.replace(b"0.5", b"2.5"), now=NOW)
    assert explained["bid"] is False
    assert explained["reason"] == "below_floor"
    assert explained["targeting"] == {"c1": None, "c2": "country"}
    (candidate,) = explained["candidates"]
    # value 2.00 CPM = 2,000,000 micros; the floor 2.50 = 2,500,000 micros is above it.
    assert candidate["excluded_by"] == "below_floor"
    assert (candidate["value"], candidate["floor"], candidate["upper"]) == (
        2_000_000,
        2_500_000,
        2_000_000,
    )


def test_bid_many_matches_bid_and_tolerates_invalid_bodies(engine: bidcore.Engine) -> None:
    bodies = [BODY, b"not json", BODY.replace(b"300", b"728")]
    assert engine.bid_many(bodies, now=NOW) == [engine.bid(BODY, now=NOW), None, None]


def test_a_bad_config_is_a_config_error() -> None:
    text = CONFIG.replace('goal = "cpm"\ncpm = 3', 'goal = "cpc"\ntarget_cpc = 3')
    with pytest.raises(bidcore.ConfigError, match="ctr model"):
        bidcore.Engine(loads(text))


def _corpus() -> list[bytes]:
    return [line for line in CORPUS.read_bytes().splitlines() if line.strip()]


def test_threads_share_one_engine_and_agree_with_one_thread(engine: bidcore.Engine) -> None:
    bodies = _corpus()[:800]
    expected = engine.bid_many(bodies, now=NOW)
    results: dict[int, list[bytes | None]] = {}

    def work(k: int) -> None:
        got: list[bytes | None] = []
        for body in bodies:
            try:
                got.append(engine.bid(body, now=NOW))
            except bidcore.InvalidRequestError:
                got.append(None)
        results[k] = got

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[k] == expected for k in range(8))


def test_the_engine_works_in_a_forked_child(engine: bidcore.Engine) -> None:
    expected = engine.bid(BODY, now=NOW)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: bid with the parent's engine, report, and leave at once
        os.close(read)
        ok = engine.bid(BODY, now=NOW) == expected
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.close(read)
    os.waitpid(pid, 0)
    assert answer == b"1"


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_many_threads_a_million_decisions_no_crash_and_flat_memory(engine: bidcore.Engine) -> None:
    bodies = _corpus()[:1000]
    expected = engine.bid_many(bodies, now=NOW)

    def work(rounds: int, failures: list[int]) -> None:
        changed = sum(engine.bid_many(bodies, now=NOW) != expected for _ in range(rounds))
        failures.append(changed)

    failures: list[int] = []
    work(50, failures)  # warm up: arenas and scratch grow to their working size
    before = _rss_kib()
    threads = [threading.Thread(target=work, args=(125, failures)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    grown = _rss_kib() - before
    assert sum(failures) == 0, "a decision changed under threads"
    # 8 threads x 125 rounds x 1,000 requests: a million decisions. Each new thread grows its own
    # arena and scratch once (a few hundred KiB); a leak of even 8 bytes a call would add 8 MiB.
    assert grown < 6 * 1024, f"RSS grew by {grown} KiB over 1M decisions"


def test_metrics_count_every_request_and_sum_bids_per_campaign_in_the_bidders_currency() -> None:
    engine = bidcore.Engine(loads(CONFIG))
    imp = b'"imp":[{"id":"1","banner":{"w":300,"h":250}}]'
    usd = b'{"id":"u","at":2,"device":{"geo":{"country":"USA"}},' + imp + b"}"
    eur = b'{"id":"e","at":2,"cur":["EUR"],' + imp + b"}"
    for _ in range(3):
        assert engine.bid(usd, now=NOW) is not None  # c2 (3.00) beats c1 (2.00) in the USA
    # c1's 2.00 USD is 1.851851 EUR (rounded down), which is 1.999999 USD back (rounded down):
    # bids are summed in the bidder's currency, never rounded up.
    assert b'"price":1.851851' in (engine.bid(eur, now=NOW) or b"")
    with pytest.raises(bidcore.InvalidRequestError):
        engine.bid(b"{", now=NOW)
    assert engine.bid(BODY.replace(b"0.5", b"9"), now=NOW) is None
    m = engine.metrics()
    assert (m["requests"], m["bids"], m["imp_bids"]) == (6, 4, 4)
    assert m["no_bids"]["invalid"] == 1
    assert m["no_bids"]["below_floor"] == 1
    assert sum(m["no_bids"].values()) + m["bids"] == m["requests"]
    assert m["campaigns"] == {
        "c1": {"imp_bids": 1, "bid_micros": 1_999_999},
        "c2": {"imp_bids": 3, "bid_micros": 9_000_000},
    }
    latency = m["latency"]
    assert len(latency["counts"]) == len(latency["bounds_s"]) + 1
    assert sum(latency["counts"]) == latency["count"] == 6
    assert 0 < latency["sum_s"] < 1
    assert m["models"] == {}


def test_a_request_that_waited_past_its_tmax_is_a_late_no_bid() -> None:
    engine = bidcore.Engine(loads(CONFIG))
    body = BODY.replace(b'"at":2', b'"at":2,"tmax":100')
    now_ns = time.monotonic_ns()
    assert engine.bid(body, now=NOW, received_ns=now_ns) is not None
    # The config keeps bidder.tmax_margin_ms = 10 (the default): 100 - 10 = 90 ms of budget.
    assert engine.bid(body, now=NOW, received_ns=now_ns - 89_000_000) is not None
    assert engine.bid(body, now=NOW, received_ns=now_ns - 91_000_000) is None
    # Without a tmax there is no deadline.
    assert engine.bid(BODY, now=NOW, received_ns=now_ns - 10**10) is not None
    assert engine.counters()["no_bids"]["late"] == 1


def test_the_decision_log_holds_one_record_per_decision_and_drops_when_full() -> None:
    log = bidcore.DecisionLog(capacity=4)
    engine = bidcore.Engine(loads(CONFIG), log=log)
    engine.bid(BODY, now=NOW)
    engine.bid(BODY.replace(b"0.5", b"9"), now=NOW)
    with pytest.raises(bidcore.InvalidRequestError):
        engine.bid(b'{"id":1}', now=NOW)
    records = [json.loads(r) for r in log.drain()]
    assert [(r["request"], r["bid"], r["reason"]) for r in records] == [
        ("r1", True, None),
        ("r1", False, "below_floor"),
        (None, False, "invalid"),
    ]
    won = records[0]["imps"][0]
    assert (won["campaign"], won["creative"], won["price_micros"], won["floor_micros"]) == (
        "c1",
        "cr1",
        2_000_000,
        500_000,
    )
    assert records[1]["imps"][0]["reason"] == "below_floor"
    assert records[2]["error"]
    for _ in range(6):
        engine.bid(BODY, now=NOW)
    assert log.stats() == {"logged": 7, "dropped": 2, "pending": 4}
    assert len(log.drain(format="msgpack")) == 4
    with pytest.raises(ValueError, match="format"):
        log.drain(format="xml")
