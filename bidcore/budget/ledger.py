"""The budget ledger of one process: daily budgets granted into the native
:class:`bidcore.Ledger`, whose accounts the engine holds each bid's cost against, and the
notices that settle those bids (``docs/budget.md``).

The engine does the per-bid work on the hot path, without a lock: a limited campaign's bid
takes its cost out of the account's available money (or does not bid), and the bid's
``{bid}`` token, written into its notice URLs, finds it again. This module grants each
campaign's ``daily_budget`` at the start of each day, settles notices, and forgets bids past
their time to live (:meth:`BudgetLedger.tick`, every few seconds, off the hot path).

Money is exact: *nanos*, thousandths of a micro of the bidder's currency, the unit in which a
CPM price in micros is the cost of one impression. A notice's price in another currency is
converted to the bidder's rounding up, so spend is never undercounted.

>>> import bidcore
>>> config = bidcore.config.loads('''
... [[campaigns]]
... id = "c1"
... goal = "cpm"
... cpm = 2
... max_bid = 5
... daily_budget = 0.004
... [[campaigns.creatives]]
... id = "cr1"
... media = "banner"
... w = 300
... h = 250
... adomain = ["shop.example"]
... burl = "https://bill.example/b?bid={bid}&price=${AUCTION_PRICE}"
... ''')
>>> ledger = bidcore.Ledger()
>>> budget = BudgetLedger(config, ledger, clock=lambda: 43_200.0)
>>> engine = bidcore.Engine(config, ledger=ledger)
>>> budget.tick()  # grants the day's $0.004: two $2 CPM impressions
>>> sample = b'{"id": "r1", "imp": [{"id": "1", "banner": {"w": 300, "h": 250}}], "at": 2}'
>>> [engine.bid(sample, now=43_200.0) is not None for _ in range(3)]
[True, True, False]
>>> ledger.accounts()["c1"]  # (limited, available, exposure, spent) in nanos
(True, 0, 4000000, 0)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal, NamedTuple

from bidcore._amounts import micros as to_micros
from bidcore._core import Ledger
from bidcore.budget.pacing import budget_share_micros, day_position
from bidcore.config import Config
from bidcore.reference.arms import arm_shares
from bidcore.reference.money import convert_up

__all__ = [
    "NANOS_PER_MICRO",
    "AccountBudget",
    "BudgetCollector",
    "BudgetLedger",
    "NoticeKind",
    "NoticeOutcome",
    "account_budgets",
    "settle_notice",
]

if TYPE_CHECKING:
    from prometheus_client.core import Metric

log = logging.getLogger("bidcore.budget")

NANOS_PER_MICRO: Final = 1000
"""A nano is a thousandth of a micro: a CPM price in micros is one impression's cost in nanos."""

NoticeKind = Literal["win", "bill", "loss"]


@dataclass(frozen=True, slots=True)
class NoticeOutcome:
    """What a notice did: ``outcome`` is ``accepted``, ``duplicate``, ``conflict`` (it
    contradicts an earlier notice: a win after a loss), ``unknown`` (no such bid), ``expired``
    (the bid is past its time to live) or ``currency`` (its price's currency does not convert
    to the bidder's); ``campaign`` is the bid's when known, and ``account`` the account it held
    against (the campaign's, or its share under an arm, ``campaign@experiment:arm``);
    ``spent_nanos`` what it spent."""

    outcome: str
    campaign: str | None
    spent_nanos: int
    account: str | None = None


@dataclass
class _Account:
    budget_nanos: int | None
    granted: int = 0
    day_start_spent: int = 0


class AccountBudget(NamedTuple):
    """A ledger account's campaign and daily budget in nanos (``None``: not limited)."""

    campaign: str
    nanos: int | None


def settle_notice(
    ledger: Ledger,
    config: Config,
    kind: NoticeKind,
    token: str,
    price_micros: int | None,
    *,
    currency: str | None,
    now: float,
) -> NoticeOutcome:
    """Settles a ``kind`` notice for the bid ``token`` in ``ledger``, its price (micros CPM in
    ``currency``, the bidder's by default) converted to the bidder's currency rounding up."""
    price = 0
    if price_micros is not None and kind != "loss":
        bidder = config.bidder.currency
        converted = convert_up(price_micros, currency or bidder, bidder, config.fx)
        if converted is None:
            return NoticeOutcome("currency", None, 0)
        price = converted
    outcome, campaign, account, spent = ledger.notice(kind, token, price, now)
    return NoticeOutcome(outcome, campaign, spent, account)


def account_budgets(config: Config) -> dict[str, AccountBudget]:
    """Each ledger account's campaign and daily budget. A campaign's
    account is its id. An experiment arm with a ``budget_share`` gets that share of each
    campaign it applies to, rounded down, in the account ``campaign@experiment:arm``
    (:func:`bidcore.reference.arms.budget_account`), where the campaign's bids in that arm
    hold; the campaign's own account keeps the rest, for requests in no such arm."""
    # What each campaign's own account keeps: the budget less its arms' shares.
    rest = {
        c.id: None if c.daily_budget is None else to_micros(c.daily_budget)
        for c in config.campaigns
    }
    shares: dict[str, AccountBudget] = {}
    for campaign, account, fraction in arm_shares(config):
        left = rest[campaign.id]
        if campaign.daily_budget is None or left is None:
            shares[account] = AccountBudget(campaign.id, None)
            continue
        # Never more than is left: shares may sum a rounding error above 1.
        part = min(budget_share_micros(to_micros(campaign.daily_budget), fraction), left)
        shares[account] = AccountBudget(campaign.id, part * NANOS_PER_MICRO)
        rest[campaign.id] = left - part
    own = {
        cid: AccountBudget(cid, None if left is None else left * NANOS_PER_MICRO)
        for cid, left in rest.items()
    }
    return own | shares


class BudgetLedger:
    """Grants each campaign's ``daily_budget`` into ``ledger`` once a day (a day starts at
    midnight UTC plus ``config.pacing.utc_offset_seconds``); campaigns without one are not
    limited. ``clock`` is the wall clock (seconds since the epoch)."""

    def __init__(
        self, config: Config, ledger: Ledger, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.ledger = ledger
        self._clock = clock
        self._lock = threading.Lock()
        self._accounts: dict[str, _Account] = {}
        self._day: int | None = None
        self._config = config
        self._apply(config)
        self._thread: threading.Thread | None = None
        self._stop: threading.Event | None = None

    @property
    def config(self) -> Config:
        return self._config

    def swap(self, config: Config) -> None:
        """A reloaded config: new, changed and removed budgets take effect now; what was spent
        today still counts against the new budget."""
        with self._lock:
            self._config = config
            self._apply(config)
            if self._day is not None:
                self._rebalance_all()

    def _apply(self, config: Config) -> None:
        budgets = {account: b.nanos for account, b in account_budgets(config).items()}
        for campaign_id, budget in budgets.items():
            account = self._accounts.setdefault(campaign_id, _Account(budget))
            account.budget_nanos = budget
            self.ledger.set_limited(campaign_id, budget is not None)
        for campaign_id, account in self._accounts.items():
            if campaign_id not in budgets and account.budget_nanos is not None:
                # Gone from the config: no engine bids on it; its holds settle as notices come.
                account.budget_nanos = None
                self.ledger.set_limited(campaign_id, True)

    def tick(self, now: float | None = None) -> None:
        """Forgets bids past their time to live (releasing their holds) and, on the first tick
        of a day, grants the day's budgets."""
        now = self._clock() if now is None else now
        self.ledger.expire(now)
        day, _ = day_position(now, self._config.pacing.utc_offset_seconds)
        with self._lock:
            if day != self._day:
                spent = self._spent()
                for campaign_id, account in self._accounts.items():
                    account.day_start_spent = spent.get(campaign_id, 0)
                self._day = day
                self._rebalance_all()

    def _spent(self) -> dict[str, int]:
        return {c: state[3] for c, state in self.ledger.accounts().items()}

    def _rebalance_all(self) -> None:
        for campaign_id, account in self._accounts.items():
            self._rebalance(campaign_id, account)

    def _rebalance(self, campaign_id: str, account: _Account) -> None:
        # Held plus available is what was granted less what was spent, whatever the bids in
        # flight do meanwhile; today it must be the budget less today's spend. So the grant is
        # budget - granted + (spend before today), from numbers no bid can change under us.
        budget = account.budget_nanos or 0
        delta = budget - account.granted + account.day_start_spent
        if delta:
            self.ledger.grant(campaign_id, delta)
            account.granted += delta

    def notice(
        self,
        kind: NoticeKind,
        token: str,
        *,
        price_micros: int | None,
        currency: str | None = None,
        now: float | None = None,
    ) -> NoticeOutcome:
        """Settles a notice for the bid ``token`` (its ``{bid}``) at ``price_micros`` CPM in
        ``currency`` (the bidder's by default)."""
        now = self._clock() if now is None else now
        return settle_notice(
            self.ledger, self._config, kind, token, price_micros, currency=currency, now=now
        )

    # --- Serving: a thread ticks, /metrics reads -------------------------------------------

    def start(self, interval_seconds: float = 1.0) -> None:
        """Ticks every ``interval_seconds`` in a background thread until :meth:`stop`."""
        if self._thread is not None:
            return
        stop = threading.Event()

        def run() -> None:
            while True:
                try:
                    self.tick()
                except Exception:  # a tick must never end the thread: log and go on
                    log.exception("budget ledger tick failed")
                if stop.wait(interval_seconds):
                    return

        self._stop = stop
        self._thread = threading.Thread(target=run, name="bidcore-budget", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None and self._stop is not None:
            self._stop.set()
            self._thread.join()
        self._thread = self._stop = None

    def collector(self) -> BudgetCollector:
        """A Prometheus collector of the ledger's accounts and counts."""
        return BudgetCollector(self)

    def remaining_nanos(self) -> dict[str, int]:
        """Per limited campaign, what it may still hold and spend today."""
        return {
            c: available
            for c, (limited, available, _, _) in self.ledger.accounts().items()
            if limited
        }


class BudgetCollector:
    """``bidcore_budget_*`` at ``/metrics``: per campaign, the money ``available`` and held
    (``exposure``) in currency units and what notices ``spent`` (a counter); the bids in flight;
    holds released by expiry; notices settled, by kind and outcome."""

    def __init__(self, budget: BudgetLedger) -> None:
        self._budget = budget

    def describe(self) -> Iterator[Metric]:
        return iter(())  # collected at scrape time only: nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        # The serving extra's dependency: imported when a server scrapes, not with bidcore.
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        ledger = self._budget.ledger
        currency = self._budget.config.bidder.currency
        units = 1e9  # nanos per currency unit
        money = GaugeMetricFamily(
            "bidcore_budget_money",
            "A limited campaign's money in this process, available or held by bids in flight",
            labels=["campaign", "state", "currency"],
        )
        spent = CounterMetricFamily(
            "bidcore_budget_spent",
            "What accepted notices spent, per campaign",
            labels=["campaign", "currency"],
        )
        for campaign, (limited, available, exposure, total) in ledger.accounts().items():
            if limited:
                money.add_metric([campaign, "available", currency], available / units)
                money.add_metric([campaign, "exposure", currency], exposure / units)
            spent.add_metric([campaign, currency], total / units)
        stats = ledger.stats()
        notices = CounterMetricFamily(
            "bidcore_budget_notices",
            "Notices the ledger settled, by kind and outcome",
            labels=["kind", "outcome"],
        )
        for kind, outcomes in stats["notices"].items():
            for outcome, count in outcomes.items():
                notices.add_metric([kind, outcome], count)
        yield money
        yield spent
        yield notices
        yield GaugeMetricFamily(
            "bidcore_budget_bids_in_flight",
            "Bids registered, not yet forgotten",
            stats["in_flight"],
        )
        yield CounterMetricFamily(
            "bidcore_budget_expired_holds",
            "Holds released because their bid expired unsettled",
            stats["expired"],
        )
        yield CounterMetricFamily(
            "bidcore_budget_unregistered_bids",
            "Bids the full registry could not take",
            stats["unregistered"],
        )
