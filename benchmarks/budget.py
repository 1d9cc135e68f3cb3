"""What the shared budget ledger costs ``Engine.bid``: leases from Redis against the local ledger.

    python benchmarks/budget.py               # 15 rounds (under a minute)
    python benchmarks/budget.py --rounds 3    # a quick check that everything runs

Two arms in one process, on the demo bidder (``bidcore/demo``) with a ``{bid}`` placeholder
and the budget ledger on; the demo's sample request is won by ``northwind-brand-display``,
whose daily budget is raised to $1,000,000 so that neither arm runs out (and whose frequency
cap is removed: every request comes from the same user):

- **local**: ``BudgetLedger``, the whole daily budget granted at once, its thread ticking at
  its default interval (1 s);
- **shared**: ``SharedBudgetLedger`` on a real ``redis-server`` (``bidcore.testing.servers``),
  its thread ticking at its default ``tick_seconds`` (0.1 s), with leases of 0.01% of the
  budget ($100, about 55,000 bids): every bid is billed at its price, so the leases run low
  and are renewed about twice a second while the bids are timed.

Each arm has its own native ledger and engine. A round runs each arm once (the order
alternating): its thread is started (the shared arm leases first), then ``--calls`` bids are
timed one by one (``perf_counter_ns``, the collector off), each followed, untimed, by its bill
notice through the arm's ledger; then the thread is stopped (the shared arm gives its lease
back). The figure is the median over rounds of each round's ratio of medians, shared over
local (a round shares the machine's drift). The Redis calls made during the shared arm's
timed blocks are counted, and every bid must have been made (no arm ever no-bids). Writes
``.benchmarks/budget.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import bidcore
from bidcore import demo
from bidcore.budget import BudgetLedger, SharedBudgetLedger
from bidcore.config import Config, loads
from bidcore.testing.servers import redis_server

REPO: Final = Path(__file__).resolve().parent.parent
WORK: Final = REPO / ".benchmarks"
TOKEN: Final = re.compile(rb"bid=([0-9a-f]{16})")
PRICE: Final = re.compile(rb'"price":([0-9.]+)')


def _config(url: str) -> Config:
    text = demo.config_path().read_text(encoding="utf-8")
    text = text.replace("&bucket={price_bucket}", "&bid={bid}&bucket={price_bucket}", 1)
    text = text.replace("daily_budget = 1500\n", "daily_budget = 1000000\n", 1)
    # The same user on every request: no frequency cap, or the campaign stops after a few.
    text = re.sub(r"\[campaigns\.frequency_cap\]\n(\w+ = \d+\n)+", "", text)
    text += (
        f'\n[budget]\nenabled = true\nstore = "redis"\nredis_url = "{url}"\nlease_share = 0.0001\n'
    )
    return loads(text)


@dataclass
class Arm:
    name: str
    engine: bidcore.Engine
    budget: BudgetLedger
    medians: list[float] = field(default_factory=list)
    p99s: list[float] = field(default_factory=list)
    no_bids: int = 0
    calls: int = 0
    leases: int = 0

    def _counts(self) -> dict[str, int]:
        if isinstance(self.budget, SharedBudgetLedger):
            return self.budget.stats()
        return {"calls": 0, "leases": 0}

    def block(self, request: bytes, calls: int) -> None:
        """Starts the arm's thread, times ``calls`` bids (each billed, untimed), stops it."""
        self.budget.tick()  # the shared arm leases before its first bid
        self.budget.start()
        before = self._counts()
        bid, notice, clock = self.engine.bid, self.budget.notice, time.perf_counter_ns
        times = [0] * calls
        gc.collect()
        gc.disable()
        try:
            for k in range(calls):
                started = clock()
                answer = bid(request)
                times[k] = clock() - started
                if answer is None:
                    self.no_bids += 1
                    continue
                token = TOKEN.search(answer)
                price = PRICE.search(answer)
                assert token is not None
                assert price is not None
                micros = round(float(price.group(1)) * 1_000_000)
                notice("bill", token.group(1).decode(), price_micros=micros)
            after = self._counts()
        finally:
            gc.enable()
            self.budget.stop()
        self.calls += after["calls"] - before["calls"]
        self.leases += after["leases"] - before["leases"]
        ordered = sorted(times)
        self.medians.append(float(statistics.median(ordered)))
        self.p99s.append(float(ordered[math.ceil(0.99 * len(ordered)) - 1]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=15, help="rounds (each arm once a round)")
    parser.add_argument("--calls", type=int, default=60_000, help="timed bids per arm per round")
    parser.add_argument("--json", type=Path, default=WORK / "budget.json", help="result file")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    request = demo.sample_request()
    base_dir = demo.config_path().parent
    with redis_server() as server:
        config = _config(server.url)
        arms = []
        for name, kind in (("local", BudgetLedger), ("shared", SharedBudgetLedger)):
            ledger = bidcore.Ledger(ttl_seconds=10, spend_on="bill")  # settled bids stay till then
            engine = bidcore.Engine(config, base_dir=base_dir, ledger=ledger)
            arms.append(Arm(name, engine, kind(config, ledger)))
        local, shared = arms
        assert isinstance(shared.budget, SharedBudgetLedger)
        for arm in arms:  # warm-up: caches, the registry's first growth
            arm.block(request, min(args.calls, 5_000))
        # A new record gives each process one lease until it is older than the fresh window
        # (docs/budget.md): the rounds start after it.
        time.sleep(shared.budget.fresh_seconds)
        for arm in arms:
            arm.medians.clear()
            arm.p99s.clear()
            arm.calls = arm.leases = 0
        for r in range(args.rounds):
            for arm in arms if r % 2 == 0 else arms[::-1]:
                arm.block(request, args.calls)
        shared.budget.client.close()
    if local.no_bids or shared.no_bids:
        raise SystemExit(f"no-bids: local {local.no_bids}, shared {shared.no_bids}")
    ratios = [s / m for s, m in zip(shared.medians, local.medians, strict=True)]
    p99_ratios = [s / m for s, m in zip(shared.p99s, local.p99s, strict=True)]
    report: dict[str, Any] = {
        "created_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "command": " ".join(
            [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]
        ),
        "rounds": args.rounds,
        "calls": args.calls,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "seconds": round(time.perf_counter() - started, 1),
        "arms": {
            arm.name: {
                "median_ns": round(statistics.median(arm.medians), 1),
                "p99_ns": round(statistics.median(arm.p99s), 1),
            }
            for arm in arms
        },
        "ratio": round(statistics.median(ratios), 4),
        "ratio_spread": [round(min(ratios), 4), round(max(ratios), 4)],
        "p99_ratio": round(statistics.median(p99_ratios), 4),
        "redis_calls": shared.calls,
        "leases": shared.leases,
        "lease_micros": shared.budget.lease_micros("northwind-brand-display"),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(markdown(report))
    return 0


def markdown(report: dict[str, Any]) -> str:
    local, shared = report["arms"]["local"], report["arms"]["shared"]
    lines = [
        f"Engine.bid with the local and the shared budget ledger (demo bidder, sample request; "
        f"{report['rounds']} rounds of {report['calls']:,} bids per arm; medians over rounds):",
        "",
        "| ledger | p50 (us) | p99 (us) |",
        "|---|---:|---:|",
        f"| local | {local['median_ns'] / 1e3:.2f} | {local['p99_ns'] / 1e3:.2f} |",
        f"| shared (Redis leases) | {shared['median_ns'] / 1e3:.2f} | "
        f"{shared['p99_ns'] / 1e3:.2f} |",
        "",
        f"shared / local: p50 {report['ratio']:.3f} (rounds from {report['ratio_spread'][0]:.3f} "
        f"to {report['ratio_spread'][1]:.3f}), p99 {report['p99_ratio']:.3f}. During the shared "
        f"arm's timed blocks its thread made {report['redis_calls']} Redis calls, "
        f"{report['leases']} of them granting a lease (of {report['lease_micros'] / 1e6:,.2f} "
        "USD).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
