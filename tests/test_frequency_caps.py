"""Frequency caps (``docs/budget.md``, Frequency caps): at most ``count`` impressions per user
and campaign in any window, counted from notices, with bids in flight holding their slots.

- Hand-written cases: a burst to one user stops at the cap before any notice; a loss frees the
  slot, a bill counts an impression, the window moves on; the user key's sources and the
  privacy gate; the imps of one request; the memory bound; impressions shared between ledgers.
- Property: random bids and notices for a few users, engine (``explain`` and ``bid``) against
  :func:`bidcore.reference.decide`, with the slots in use kept by an independent model.
- Threads: four threads bid to the same users and settle their notices at once; no user ever
  gets more impressions than the cap.
"""

from __future__ import annotations

import random
import re
import threading
from collections import Counter, defaultdict
from typing import Any, Final

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bidcore
from bidcore.budget.ledger import BudgetLedger
from bidcore.config import Config, loads
from bidcore.testing.bidder import assert_same_decision

NOON: Final = 1_795_348_800  # 2026-11-22 12:00 UTC
TOKEN: Final = re.compile(r"bid=([0-9a-f]{16})&c=([a-z0-9]+)")


def bidder(count: int = 2, window: int = 3600, *, with_open: bool = True) -> Config:
    """``capped`` (a $3 CPM, capped) and ``open`` (a $1 CPM, not capped; unless not
    ``with_open``) on any 300x250."""
    creative = """
[[campaigns.creatives]]
id = "cr-{0}"
media = "banner"
w = 300
h = 250
adomain = ["{0}.example"]
"""
    open_campaign = f"""
[[campaigns]]
id = "open"
goal = "cpm"
cpm = 1
max_bid = 5
{creative.format("open")}
"""
    return loads(
        f"""
[bidder]
nurl = "https://n.example/win?bid={{bid}}&c={{campaign}}&price=${{AUCTION_PRICE}}"
burl = "https://n.example/bill?bid={{bid}}&c={{campaign}}&price=${{AUCTION_PRICE}}"
[budget]
enabled = true

[[campaigns]]
id = "capped"
goal = "cpm"
cpm = 3
max_bid = 5
[campaigns.frequency_cap]
count = {count}
window_seconds = {window}
{creative.format("capped")}
{open_campaign if with_open else ""}
"""
    )


def request(
    user: dict[str, Any] | None = None,
    *,
    device: dict[str, Any] | None = None,
    imps: int = 1,
    request_id: str = "r",
    regs: dict[str, Any] | None = None,
) -> bytes:
    body: dict[str, Any] = {
        "id": request_id,
        "at": 2,
        "imp": [{"id": str(i), "banner": {"w": 300, "h": 250}} for i in range(imps)],
        "site": {"domain": "news.example"},
    }
    given = {"user": user, "device": device, "regs": regs}
    body.update({key: value for key, value in given.items() if value is not None})
    return msgspec.json.encode(body)


def for_user(user_id: str, request_id: str = "r", imps: int = 1) -> bytes:
    return request({"buyeruid": user_id}, request_id=request_id, imps=imps)


def setup(config: Config, **ledger_options: Any) -> tuple[bidcore.Engine, bidcore.Ledger]:
    ledger = bidcore.Ledger(**ledger_options)
    BudgetLedger(config, ledger, clock=lambda: float(NOON)).tick()
    return bidcore.Engine(config, ledger=ledger), ledger


def bids(response: bytes | None) -> list[tuple[str, str]]:
    """(token, campaign) of each bid in a response."""
    return [] if response is None else sorted(set(TOKEN.findall(response.decode())))


def winner(engine: bidcore.Engine, body: bytes, now: float) -> str | None:
    explained = engine.explain(body, now=now)
    return explained["imps"][0]["campaign"]  # type: ignore[no-any-return]


# --- Hand-written cases ----------------------------------------------------------------------


def test_a_burst_to_one_user_stops_at_the_cap_before_any_notice() -> None:
    engine, ledger = setup(bidder(count=2))
    answers = [bids(engine.bid(for_user("u1", f"r{i}"), now=NOON)) for i in range(4)]
    assert [a[0][1] for a in answers] == ["capped", "capped", "open", "open"]
    assert ledger.frequency("b:u1", "capped", NOON) == 2
    explained = engine.explain(for_user("u1"), now=NOON)
    assert [(c["campaign"], c["excluded_by"]) for c in explained["candidates"]] == [
        ("capped", "frequency_cap"),
        ("open", None),
    ]
    # Another user is not capped by u1's bids.
    assert winner(engine, for_user("u2"), NOON) == "capped"


def test_a_loss_frees_the_slot_a_bill_counts_and_the_window_moves_on() -> None:
    engine, ledger = setup(bidder(count=2, window=60))
    (first,) = bids(engine.bid(for_user("u1", "r1"), now=NOON))
    (second,) = bids(engine.bid(for_user("u1", "r2"), now=NOON))
    assert winner(engine, for_user("u1"), NOON) == "open"
    assert ledger.notice("loss", first[0], 0, NOON + 1)[0] == "accepted"
    assert winner(engine, for_user("u1"), NOON + 1) == "capped"
    assert ledger.notice("win", second[0], 3_000_000, NOON + 2)[0] == "accepted"
    assert ledger.frequency("b:u1", "capped", NOON + 2) == 1, "won, not yet billed: in flight"
    assert ledger.notice("bill", second[0], 3_000_000, NOON + 5)[0] == "accepted"
    (third,) = bids(engine.bid(for_user("u1", "r3"), now=NOON + 6))
    assert ledger.notice("bill", third[0], 3_000_000, NOON + 10)[0] == "accepted"
    assert winner(engine, for_user("u1"), NOON + 64) == "open", "bills at +5 and +10 in (4, 64]"
    assert winner(engine, for_user("u1"), NOON + 65) == "capped", "+5 left the window"
    assert ledger.frequency("b:u1", "capped", NOON + 70) == 0
    assert ledger.stats()["caps"]["counted"] == 2


def test_an_expired_bid_gives_its_slot_back() -> None:
    engine, ledger = setup(bidder(count=1), ttl_seconds=30.0)
    assert bids(engine.bid(for_user("u1"), now=NOON))[0][1] == "capped"
    assert winner(engine, for_user("u1"), NOON + 10) == "open"
    ledger.expire(NOON + 31)
    assert winner(engine, for_user("u1"), NOON + 31) == "capped"


def test_the_user_key_is_the_buyer_id_then_the_exchange_id_then_the_device_id() -> None:
    engine, ledger = setup(bidder(count=1))
    user = {"buyeruid": "B", "id": "U"}
    engine.bid(request(user, device={"ifa": "D"}), now=NOON)
    assert ledger.frequency("b:B", "capped", NOON) == 1
    engine.bid(request({"buyeruid": "", "id": "U"}, device={"ifa": "D"}), now=NOON)
    assert ledger.frequency("u:U", "capped", NOON) == 1, "an empty buyeruid is no id"
    engine.bid(request(None, device={"ifa": "D"}), now=NOON)
    assert ledger.frequency("d:D", "capped", NOON) == 1
    assert ledger.frequency("b:U", "capped", NOON) == 0, "ids of different kinds never mix"


def test_without_a_usable_user_key_a_capped_campaign_does_not_bid() -> None:
    engine, _ = setup(bidder(count=5))
    no_user = request(None)
    no_consent = request({"buyeruid": "B"}, regs={"gdpr": 1})
    for body in (no_user, no_consent):
        explained = engine.explain(body, now=NOON)
        assert [c["excluded_by"] for c in explained["candidates"]] == ["frequency_cap", None]
        assert explained["imps"][0]["campaign"] == "open"
    # Only the capped campaign targeted: the imp's reason says why.
    engine, _ = setup(bidder(count=5, with_open=False))
    assert engine.explain(no_user, now=NOON)["reason"] == "frequency_cap"
    assert engine.bid(no_user, now=NOON) is None
    assert engine.counters()["no_bids"]["frequency_cap"] == 1


def test_the_imps_of_one_request_count_against_the_cap_together() -> None:
    engine, ledger = setup(bidder(count=2))
    explained = engine.explain(for_user("u1", imps=3), now=NOON)
    assert [i["campaign"] for i in explained["imps"]] == ["capped", "capped", "open"]
    assert [c for _, c in bids(engine.bid(for_user("u1", imps=3), now=NOON))].count("capped") == 2
    assert ledger.frequency("b:u1", "capped", NOON) == 2


def test_a_full_table_refuses_new_users_until_a_sweep_frees_room() -> None:
    engine, ledger = setup(bidder(count=3, window=60), cap_capacity=2)
    for user in ("u1", "u2"):
        assert bids(engine.bid(for_user(user), now=NOON))[0][1] == "capped"
    assert bids(engine.bid(for_user("u3"), now=NOON))[0][1] == "open", "no entry left for u3"
    assert ledger.stats()["caps"]["entries"] == 2
    for token, _ in bids(engine.bid(for_user("u1", "again"), now=NOON)):
        ledger.notice("loss", token, 0, NOON)
    ledger.expire(NOON + 400)  # past the bids' time to live: their slots are freed, entries swept
    assert ledger.stats()["caps"]["entries"] == 0
    assert bids(engine.bid(for_user("u3"), now=NOON + 400))[0][1] == "capped"


def test_impressions_counted_by_one_ledger_cap_the_user_in_another() -> None:
    config = bidder(count=1)
    engine_a, ledger_a = setup(config)
    engine_b, ledger_b = setup(config)
    assert ledger_a.take_impressions() == [], "the first take starts keeping them"
    ((token, _),) = bids(engine_a.bid(for_user("u1"), now=NOON))
    ledger_a.notice("bill", token, 3_000_000, NOON + 1)
    shared = ledger_a.take_impressions()
    assert len(shared) == 1
    assert ledger_a.take_impressions() == []
    assert winner(engine_b, for_user("u1"), NOON + 2) == "capped"
    ledger_b.add_impressions(shared, NOON + 2)
    assert winner(engine_b, for_user("u1"), NOON + 2) == "open"
    assert ledger_b.stats()["caps"]["imported"] == 1
    assert ledger_b.frequency("b:u1", "capped", NOON + 2) == 1


def test_caps_are_not_enforced_without_a_ledger() -> None:
    # Nothing could count its impressions: the engine does not pretend to cap.
    engine = bidcore.Engine(bidder(count=1))
    for i in range(3):
        assert engine.bid(for_user("u1", f"r{i}"), now=NOON) is not None
        assert winner(engine, for_user("u1"), NOON) == "capped"


# --- Property: the engine against the reference ---------------------------------------------

USERS: Final = ["u1", "u2", "u3"]
WINDOW: Final = 20


class SlotModel:
    """The slots in use, kept independently of the ledger: bids in flight per (user,
    campaign) and the seconds of billed impressions."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.in_flight: Counter[tuple[str, str]] = Counter()
        self.shown: defaultdict[tuple[str, str], list[int]] = defaultdict(list)
        self.open: dict[str, tuple[str, str]] = {}  # token -> (user key, campaign)

    def used(self, now: int) -> dict[tuple[str, str], int]:
        keys = set(self.in_flight) | set(self.shown)
        counts = {
            k: self.in_flight[k] + sum(t + self.window > now for t in self.shown[k]) for k in keys
        }
        return {k: n for k, n in counts.items() if n}


actions = st.lists(
    st.tuples(
        st.sampled_from(["bid", "bid", "bill", "loss", "tick"]),
        st.sampled_from(USERS),
        st.integers(1, 2),  # imps
        st.integers(0, 9),  # seconds to wait, or which open bid a notice settles
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=actions, count=st.integers(1, 3))
def test_the_engine_agrees_with_the_reference_as_slots_fill_and_free(
    steps: list[tuple[str, str, int, int]], count: int
) -> None:
    config = bidder(count=count, window=WINDOW)
    engine, ledger = setup(config)
    model = SlotModel(WINDOW)
    now = NOON
    for i, (action, user, imps, n) in enumerate(steps):
        if action == "bid":
            body = for_user(user, f"r{i}", imps)
            used = model.used(now)
            got = assert_same_decision(engine, config, {}, body, float(now), frequency=used)
            # Its bid() made the bids: the model holds their slots too.
            for token, campaign in bids(got["sent"]):
                if campaign == "capped":
                    model.in_flight[("b:" + user, campaign)] += 1
                    model.open[token] = ("b:" + user, campaign)
        elif action in ("bill", "loss") and model.open:
            token = sorted(model.open)[n % len(model.open)]
            key = model.open.pop(token)
            outcome = ledger.notice(action, token, 3_000_000, float(now))
            assert outcome[0] == "accepted"
            model.in_flight[key] -= 1
            if action == "bill":
                model.shown[key].append(now)
        elif action == "tick":
            now += n * 3
    for user in USERS:
        assert ledger.frequency("b:" + user, "capped", float(now)) == model.used(now).get(
            ("b:" + user, "capped"), 0
        )


# --- Threads ---------------------------------------------------------------------------------


def test_concurrent_bids_and_notices_never_give_a_user_more_than_the_cap() -> None:
    cap = 3
    engine, ledger = setup(bidder(count=cap, window=3600))
    users = [f"u{i}" for i in range(8)]
    shown: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(4)

    def work(seed: int) -> None:
        rng = random.Random(seed)
        in_flight: list[tuple[str, str]] = []
        start.wait()
        for i in range(600):
            user = rng.choice(users)
            for token, campaign in bids(engine.bid(for_user(user, f"t{seed}-{i}"), now=NOON)):
                if campaign == "capped":
                    in_flight.append((token, user))
            if in_flight and rng.random() < 0.6:
                token, user = in_flight.pop(rng.randrange(len(in_flight)))
                kind = "bill" if rng.random() < 0.5 else "loss"
                if ledger.notice(kind, token, 3_000_000, NOON)[0] == "accepted" and kind == "bill":
                    with lock:
                        shown[user] += 1
        for token, user in in_flight:  # the rest win
            if ledger.notice("bill", token, 3_000_000, NOON)[0] == "accepted":
                with lock:
                    shown[user] += 1

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max(shown.values()) == cap, shown
    assert all(shown[u] <= cap for u in users)
    assert all(ledger.frequency("b:" + u, "capped", NOON) == shown[u] for u in users)
    assert ledger.stats()["in_flight"] > 0  # the open campaign's bids, untouched


# --- Shared through Redis ---------------------------------------------------------------------


def test_impressions_reach_the_other_processes_through_redis_and_survive_an_outage() -> None:
    import redis

    from bidcore.budget.frequency import SharedFrequency
    from bidcore.testing.servers import redis_server

    config = bidder(count=2, window=3600)
    clock = [float(NOON)]
    with redis_server(durable=True) as server:  # a restart keeps the stream

        def client() -> redis.Redis:
            # 1 s: this Redis syncs its file on every write, on a shared two-core machine.
            return redis.Redis.from_url(server.url, socket_timeout=1.0, socket_connect_timeout=1.0)

        processes = [setup(config) for _ in range(2)]
        shares = [
            SharedFrequency(ledger, client(), max_window_seconds=3600, clock=lambda: clock[0])
            for _, ledger in processes
        ]
        (engine_a, ledger_a), (engine_b, _) = processes

        def show(engine: bidcore.Engine, ledger: bidcore.Ledger, request_id: str) -> None:
            ((token, campaign),) = bids(engine.bid(for_user("u1", request_id), now=clock[0]))
            assert campaign == "capped"
            assert ledger.notice("bill", token, 3_000_000, clock[0])[0] == "accepted"

        show(engine_a, ledger_a, "a1")
        for share in shares:
            share.tick()
        assert shares[1].received == 1
        assert ledger_a.frequency("b:u1", "capped", clock[0]) == 1, "its own not added twice"
        assert winner(engine_b, for_user("u1"), clock[0]) == "capped", "one of two slots used"

        server.stop()
        show(engine_a, ledger_a, "a2")  # counted while Redis is away: waits, then goes out
        shares[0].tick()
        assert shares[0].errors == 1
        assert winner(engine_b, for_user("u1"), clock[0]) == "capped", "b has not heard yet"
        server.start()
        for share in shares:
            share.tick()
        assert winner(engine_b, for_user("u1"), clock[0]) == "open"
        assert shares[0].published == 2

        # A process started later reads the window back; past the window, nothing is kept.
        late_engine, late_ledger = setup(config)
        SharedFrequency(
            late_ledger, client(), max_window_seconds=3600, clock=lambda: clock[0]
        ).tick()
        assert winner(late_engine, for_user("u1"), clock[0]) == "open"
        clock[0] += 3600
        fresh_engine, fresh_ledger = setup(config)
        SharedFrequency(
            fresh_ledger, client(), max_window_seconds=3600, clock=lambda: clock[0]
        ).tick()
        assert winner(fresh_engine, for_user("u1"), clock[0]) == "capped"
