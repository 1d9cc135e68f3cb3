"""One bidder process of a simulated fleet sharing budgets through Redis: the worker of
``tests/test_budget_shared.py``'s multi-process tests.

    python -m bidcore.testing.fleet CONFIG --url redis://127.0.0.1:PORT/0 --process-id w1

It builds an engine on a native :class:`bidcore.Ledger` and a
:class:`~bidcore.budget.SharedBudgetLedger` ticking in its thread, prints ``ready``, waits for
a line on stdin, then bids on one request (one imp per campaign) ``--rate`` times a second for
``--seconds`` (and on, up to ``--max-seconds``, while its bids are still made). Each bid is
won with probability ``--win-share`` at a clearing price between half the bid and the bid, its
bill notice delivered after a random delay (so bids are in flight), or lost (a loss notice,
after a delay too). At the end it delivers the notices still due, stops the shared ledger
(which reports the spend and gives the leases back) and prints one JSON line: per campaign the
native account (spent, available, held), the ledger's counts, the seconds (since the start
signal) at which leases were granted and calls failed, and the spend over time.

Days are counted on a clock that starts at noon UTC (2026-11-22 12:00) when the process
starts, so a run never crosses midnight.
"""

from __future__ import annotations

import argparse
import heapq
import json
import logging
import random
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import msgspec

import bidcore
from bidcore.budget.ledger import NoticeKind
from bidcore.budget.shared import SharedBudgetLedger

__all__ = ["main"]

TOKEN: Final = re.compile(r"bid=([0-9a-f]{16})")
NOON: Final = 1_795_348_800.0  # 2026-11-22 12:00 UTC


def request(sizes: Sequence[tuple[int, int]], request_id: str) -> bytes:
    """A first-price request with one banner imp of each size."""
    imps = [{"id": str(i), "banner": {"w": w, "h": h}} for i, (w, h) in enumerate(sizes)]
    return msgspec.json.encode({"id": request_id, "at": 1, "imp": imps})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("config", type=Path)
    parser.add_argument("--url", required=True)
    parser.add_argument("--process-id", required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="after --seconds, bid on while bids are still made, up to this (a slow machine)",
    )
    parser.add_argument("--rate", type=float, default=500.0, help="requests a second")
    parser.add_argument("--win-share", type=float, default=0.7)
    parser.add_argument("--max-delay", type=float, default=0.2, help="notice delay, seconds")
    parser.add_argument("--report-seconds", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format=f"{args.process_id} %(name)s: %(message)s")

    config = bidcore.config.load(args.config)
    rng = random.Random(args.seed)
    started = time.monotonic()

    def clock() -> float:
        return NOON + (time.monotonic() - started)

    ledger = bidcore.Ledger(ttl_seconds=60, spend_on="bill")
    budget = SharedBudgetLedger(
        config,
        ledger,
        url=args.url,
        process_id=args.process_id,
        clock=clock,
        report_seconds=args.report_seconds,
    )
    engine = bidcore.Engine(config, ledger=ledger)
    sizes = []
    for c in config.campaigns:
        cr = c.creatives[0]
        assert cr.w is not None
        assert cr.h is not None
        sizes.append((cr.w, cr.h))
    print("ready", flush=True)
    sys.stdin.readline()

    go = time.monotonic()
    budget.tick()
    budget.start()
    pending: list[tuple[float, int, NoticeKind, str, int]] = []  # (due, seq, kind, token, price)
    leases, errors = 0, 0
    lease_times: list[float] = []
    error_times: list[float] = []
    spend: list[tuple[float, int]] = []
    bids = no_bids = seq = 0
    interval = 1.0 / args.rate
    next_bid = next_sample = last_bid = go
    end = go + args.seconds
    hard_end = go + max(args.seconds, args.max_seconds or 0.0)
    while (now := time.monotonic()) < end or (now < hard_end and now - last_bid < 0.5):
        while pending and pending[0][0] <= now:
            _, _, kind, token, price = heapq.heappop(pending)
            budget.notice(kind, token, price_micros=price)
        counts = budget.stats()
        if counts["leases"] > leases:
            leases = counts["leases"]
            lease_times.append(round(now - go, 3))
        if counts["store_errors"] > errors:
            errors = counts["store_errors"]
            error_times.append(round(now - go, 3))
        if now >= next_sample:
            spent = sum(a[3] for a in ledger.accounts().values())
            spend.append((round(now - go, 3), spent))
            next_sample += 0.1
        if now < next_bid:
            wake = min(next_bid, pending[0][0]) if pending else next_bid
            time.sleep(max(0.0, wake - now))
            continue
        next_bid += interval
        seq += 1
        answer = engine.bid(request(sizes, f"{args.process_id}-{seq}"), now=clock())
        if answer is None:
            no_bids += 1
            continue
        bids += 1
        last_bid = now
        for seatbid in msgspec.json.decode(answer)["seatbid"]:
            for bid in seatbid["bid"]:
                (token,) = set(TOKEN.findall(bid["burl"]))
                price = round(bid["price"] * 1_000_000)
                due = now + rng.uniform(0.005, args.max_delay)
                if rng.random() < args.win_share:
                    clearing = rng.randint(price // 2, price)  # never above the bid
                    heapq.heappush(pending, (due, seq, "bill", token, clearing))
                else:
                    heapq.heappush(pending, (due, seq, "loss", token, 0))
    for _, _, kind, token, price in sorted(pending):
        budget.notice(kind, token, price_micros=price)
    budget.stop()
    report: dict[str, Any] = {
        "process_id": args.process_id,
        "accounts": {
            c: {"limited": a[0], "available": a[1], "exposure": a[2], "spent": a[3]}
            for c, a in ledger.accounts().items()
        },
        "stats": budget.stats(),
        "leased_micros": budget.leased_micros(),
        "lease_times": lease_times,
        "error_times": error_times,
        "spend": spend,
        "bids": bids,
        "no_bids": no_bids,
        "no_bid_reasons": engine.counters()["no_bids"],
    }
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
