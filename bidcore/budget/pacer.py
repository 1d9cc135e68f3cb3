"""The pacer of a serving process: a :class:`~bidcore.budget.PacingController` per campaign
with a ``daily_budget``, fed the day's spend, writing each campaign's throttle and multiplier
into the engine's atomics (``engine.set_pacing``) every ``pacing.interval_seconds``.

With the budget ledger on (``[budget] enabled``), an experiment arm with a ``budget_share``
splits each of its campaigns into accounts (:func:`bidcore.budget.ledger.account_budgets`):
the arm's share, ``campaign@experiment:arm``, and the campaign's own account, which keeps the
rest. Each account is paced on its own budget and its own spend (a notice settled by the
ledger names the account its bid held against), so an arm spends its share over the day
whatever the others do. Without the ledger a bill names only its campaign: a campaign is paced
as a whole, and its shares get the campaign's throttle and multiplier.

The request path never waits for it: a billing notice adds to a per-campaign ledger under a
lock (:meth:`Pacer.record_bill`), a background thread runs the controllers
(:meth:`Pacer.tick`), and the engine reads two integers per campaign. Money is exact: the
ledger counts thousandths of a micro, the unit in which a clearing price (CPM, in micros) is
the cost of one impression, so a day of bills sums without rounding; the controllers see the
spend rounded down to whole micros. ``docs/pacing.md`` (Serving) has the rules.

>>> import bidcore
>>> config = bidcore.config.loads('''
... [pacing]
... enabled = true
... [[campaigns]]
... id = "c1"
... goal = "cpm"
... cpm = 2
... max_bid = 5
... daily_budget = 100
... [[campaigns.creatives]]
... id = "cr1"
... media = "banner"
... w = 300
... h = 250
... adomain = ["shop.example"]
... ''')
>>> engine = bidcore.Engine(config)
>>> pacer = Pacer(config, engine, clock=lambda: 43_200.0)  # noon, UTC
>>> pacer.record_bill("c1", 2_500_000)  # one impression at a $2.50 CPM
True
>>> pacer.state()["c1"].spent_micros  # $0.0025
2500
>>> pacer.record_spend("c1", 100_000_000)  # the budget: c1 stops at once
True
>>> engine.pacing()["c1"]
(0, 1000000)
>>> pacer.tick()["c1"].throttle_ppm
0
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from bidcore._amounts import micros as to_micros
from bidcore.budget.ledger import account_budgets
from bidcore.budget.pacing import (
    DAY_SECONDS,
    PPM,
    PacingController,
    PidGains,
    TargetCurve,
    day_position,
)
from bidcore.reference.arms import arm_shares
from bidcore.reference.money import convert_down, convertible

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from bidcore.config import Config, Pacing

__all__ = ["IGNORED_REASONS", "CampaignPacing", "PacedEngine", "Pacer", "PacingCollector"]

log = logging.getLogger("bidcore.pacing")

MILLI: Final = 1_000
"""Ledger units per micro: a CPM price in micros is one impression's cost in these units."""

IGNORED_REASONS: Final = ("unknown_campaign", "unknown_currency")
"""Why spend was not counted: no campaign of the config (or none named), or a currency the
config's ``fx`` has no rate for."""


class PacedEngine(Protocol):
    """What the pacer writes to: :class:`bidcore.Engine` (``NativeEngine.set_pacing``)."""

    def set_pacing(self, account: str, *, throttle_ppm: int, multiplier_ppm: int) -> None: ...


@dataclass(frozen=True, slots=True)
class CampaignPacing:
    """One paced campaign, as :meth:`Pacer.state` and :meth:`Pacer.tick` report it: its daily
    budget and today's spend (micros of the bidder's currency), the throttle and multiplier
    last written to the engine (millionths), and the curve's target at the last update."""

    budget_micros: int
    spent_micros: int
    throttle_ppm: int
    multiplier_ppm: int
    target_micros: int


class _Campaign:
    """A paced account's ledger (a campaign's, or its share under an arm), its controller when
    it has a daily budget, and the engine's accounts it writes (``cells``: the account, and
    when spend is paced per campaign, the campaign's shares too)."""

    __slots__ = (
        "budget_micros",
        "cells",
        "controller",
        "fleet",
        "multiplier_ppm",
        "spent",
        "target",
        "throttle_ppm",
    )

    def __init__(
        self,
        budget_micros: int | None,
        controller: PacingController | None,
        cells: tuple[str, ...],
    ) -> None:
        self.cells = cells
        self.budget_micros = budget_micros  # None: not paced (no daily budget)
        self.controller = controller  # None when not paced, or paced with a budget of 0
        self.spent = 0  # thousandths of a micro, today
        self.fleet = 0  # micros, today, the fleet's as last read (0 without fleet_spend)
        self.throttle_ppm = PPM
        self.multiplier_ppm = PPM
        self.target = 0

    @property
    def spent_micros(self) -> int:
        """Today's spend: this process's, or the fleet's when that is known and larger."""
        return max(self.spent // MILLI, self.fleet)

    def report(self) -> CampaignPacing:
        assert self.budget_micros is not None
        return CampaignPacing(
            self.budget_micros,
            self.spent_micros,
            self.throttle_ppm,
            self.multiplier_ppm,
            self.target,
        )


class Pacer:
    """Paces every campaign of ``config`` with a ``daily_budget`` into ``engine``, when
    ``config.pacing.enabled`` (otherwise it only keeps the ledger, so that a reload that
    enables pacing knows the day's spend). With ``[budget] enabled``, each account of such a
    campaign is paced (its share under an arm with a ``budget_share``, and its own account):
    the module's docstring has why.

    - :meth:`record_bill` / :meth:`record_spend` add to today's spend (any thread);
    - :meth:`tick` updates every controller and writes the engine (the thread of
      :meth:`start` calls it every ``pacing.interval_seconds``);
    - :meth:`swap` moves to a reloaded engine and config;
    - :meth:`state` reports the paced campaigns (and accounts).

    A campaign (account) whose spend reaches its budget gets a throttle of 0 (it stops bidding) in
    either mode, written at once by the call that recorded the spend.

    In a fleet each process sees only its own bills, a fraction of the spend. ``fleet_spend``
    (:meth:`bidcore.budget.SharedBudgetLedger.fleet_spent_micros`) gives today's spend of the
    whole fleet per account, in micros: each update then paces on the larger of it and this
    process's own count, so every process of the fleet aims the fleet's spend at the curve.

    The day starts at midnight UTC plus ``pacing.utc_offset_seconds``, by ``clock`` (Unix
    seconds); the first record or tick of a new day resets the ledger and the controllers.
    """

    def __init__(
        self,
        config: Config,
        engine: PacedEngine,
        *,
        clock: Callable[[], float] = time.time,
        fleet_spend: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        self._clock = clock
        self._fleet_spend = fleet_spend
        # Guards the ledger, the controllers, the day and the engine written to. Held for a
        # whole tick (microseconds per campaign), so that a stop written by record_spend is
        # never overwritten by a tick computed from the spend before it.
        self._lock = threading.Lock()
        self._lifecycle = threading.Lock()  # the thread's start and stop
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._started = False
        self._ignored = dict.fromkeys(IGNORED_REASONS, 0)
        self._config = config
        self._engine = engine
        self._day = day_position(clock(), config.pacing.utc_offset_seconds)[0]
        # Paced accounts by id, and where each account of the engine's spend is paced.
        self._campaigns = _build_campaigns(config, {}, same_settings=False)
        self._route = _routes(self._campaigns)

    # --- spend ---

    def record_spend(self, campaign: str | None, micros: int) -> bool:
        """Add ``micros`` (of the bidder's currency) to ``campaign``'s spend today (a
        campaign id, or an account: ``campaign@experiment:arm``); False, and counted in
        :meth:`ignored`, for a campaign the config does not have."""
        if isinstance(micros, bool) or not isinstance(micros, int) or micros < 0:
            raise ValueError(f"micros must be an int >= 0, got {micros!r}")
        return self._add(campaign, micros * MILLI)

    def record_bill(
        self, campaign: str | None, price_micros: int, currency: str | None = None
    ) -> bool:
        """Add what one billing notice says was paid: ``price_micros`` is the clearing price
        (CPM, micros of ``currency``, the bidder's when None), so the impression cost
        ``price_micros / 1000`` micros, counted exactly. Another currency is converted with
        the config's ``fx`` rates (rounded down to a thousandth of a micro); one without a
        rate is not counted. False when it was not counted (see :meth:`ignored`)."""
        if price_micros < 0:
            raise ValueError(f"price_micros must be >= 0, got {price_micros}")
        return self._add(campaign, price_micros, currency)

    def _add(self, campaign: str | None, amount: int, currency: str | None = None) -> bool:
        now = self._clock()
        with self._lock:
            self._roll(now)
            key = self._route.get(campaign) if campaign is not None else None
            if key is None:
                return self._ignore("unknown_campaign", campaign)
            found = self._campaigns[key]
            if currency is not None:
                fx, bidder = self._config.fx, self._config.bidder.currency
                converted = convert_down(amount, currency, bidder, fx)
                if converted is None or not convertible(currency, bidder, fx):
                    return self._ignore("unknown_currency", currency)
                amount = converted
            before = found.spent
            found.spent += amount
            budget = found.budget_micros
            enabled = self._config.pacing.enabled
            if enabled and budget is not None and before < budget * MILLI <= found.spent:
                # Stop now rather than at the next tick: up to an interval's overspend saved.
                found.throttle_ppm = 0
                self._write(found)
        return True

    def _ignore(self, reason: str, what: str | None) -> bool:
        if self._ignored[reason] == 0:
            log.warning("spend not paced (%s: %r); later ones are only counted", reason, what)
        self._ignored[reason] += 1
        return False

    def ignored(self) -> dict[str, int]:
        """How many records were not counted, by reason (:data:`IGNORED_REASONS`)."""
        with self._lock:
            return dict(self._ignored)

    # --- control ---

    def tick(self, now: float | None = None) -> dict[str, CampaignPacing]:
        """Update every controller with today's spend and write each campaign's throttle and
        multiplier to the engine; returns :meth:`state`. ``now`` is Unix seconds (by default
        the clock's)."""
        now = self._clock() if now is None else now
        with self._lock:
            self._roll(now)
            self._update(now)
            return self._state()

    def _roll(self, now: float) -> None:
        """Start a new day when ``now`` is in a later day than the ledger's. (Only later: a
        clock stepped back over midnight must not wipe the day's spend.)"""
        day = day_position(now, self._config.pacing.utc_offset_seconds)[0]
        if day <= self._day:
            return
        self._day = day
        for campaign in self._campaigns.values():
            campaign.spent = campaign.fleet = 0
            if campaign.controller is not None:
                campaign.controller.new_day()

    def _update(self, now: float) -> None:
        if not self._config.pacing.enabled:
            return
        # Seconds into the ledger's day (the controller clamps them to [0, 86400]).
        seconds = now + self._config.pacing.utc_offset_seconds - self._day * DAY_SECONDS
        fleet = {} if self._fleet_spend is None else self._fleet_spend()
        for key, campaign in self._campaigns.items():
            budget = campaign.budget_micros
            if budget is None:
                continue
            campaign.fleet = fleet.get(key, 0)
            spent = campaign.spent_micros
            if campaign.controller is None:  # a budget of 0: never bids
                campaign.throttle_ppm, campaign.multiplier_ppm = 0, PPM
            else:
                state = campaign.controller.update(seconds, spent)
                # The controller already answers 0 at the budget; the pacer's contract says it
                # too, whatever the mode.
                campaign.throttle_ppm = 0 if spent >= budget else state.throttle_ppm
                # At least 1 ppm: the engine refuses a multiplier of 0.
                campaign.multiplier_ppm = max(1, state.multiplier_ppm)
                campaign.target = state.target_micros
            self._write(campaign)

    def _write(self, campaign: _Campaign) -> None:
        for account in campaign.cells:
            self._engine.set_pacing(
                account,
                throttle_ppm=campaign.throttle_ppm,
                multiplier_ppm=campaign.multiplier_ppm,
            )

    def swap(self, engine: PacedEngine, config: Config) -> None:
        """Pace ``engine`` (a reload of ``config``) from now on, and write its pacing at once.
        Today's spend is kept for the campaigns that remain; new campaigns start at 0. A
        campaign keeps its controller (and the loop's memory) unless the ``[pacing]``
        settings changed; a changed budget applies from this update on. If writing to the
        new engine fails (it lacks a campaign of ``config``), the error is raised and the
        pacer keeps its engine, config and ledger."""
        now = self._clock()
        with self._lock:
            self._roll(now)
            before = self._config.pacing
            same = _settings(before) == _settings(config.pacing)
            campaigns = _build_campaigns(config, self._campaigns, same_settings=same)
            old = self._config, self._engine, self._campaigns, self._day
            self._config, self._engine, self._campaigns = config, engine, campaigns
            route = self._route
            if config.pacing.utc_offset_seconds != before.utc_offset_seconds:
                # Another time zone: today is the day it says (the spend so far stays).
                self._day = day_position(now, config.pacing.utc_offset_seconds)[0]
            try:
                self._route = _routes(campaigns)
                for campaign in campaigns.values():
                    if campaign.budget_micros is None or not config.pacing.enabled:
                        # Unpaced: as a new engine starts (also undoes an older setting).
                        campaign.throttle_ppm = campaign.multiplier_ppm = PPM
                        self._write(campaign)
                self._update(now)
            except Exception:
                self._config, self._engine, self._campaigns, self._day = old
                self._route = route
                for campaign in self._campaigns.values():  # a kept controller's budget back
                    if campaign.controller is not None and campaign.budget_micros is not None:
                        campaign.controller.budget_micros = campaign.budget_micros
                raise
        with self._lifecycle:
            self._sync_thread()

    # --- the thread ---

    def start(self) -> None:
        """Tick now, then every ``pacing.interval_seconds`` from a daemon thread until
        :meth:`stop` (while the config enables pacing: a reload can start or stop it). Call
        it in the serving process: a thread does not survive a fork."""
        with self._lifecycle:
            self._started = True
            self._sync_thread()

    def stop(self) -> None:
        """Stop the thread and wait for it (the ledger stays)."""
        with self._lifecycle:
            self._started = False
            self._sync_thread()

    @property
    def running(self) -> bool:
        """Whether the background thread runs."""
        return self._thread is not None

    def _sync_thread(self) -> None:
        """Run the thread exactly when started and enabled (under ``_lifecycle``, never under
        ``_lock``: the thread's tick takes it, and this may join the thread)."""
        wanted = self._started and self._config.pacing.enabled
        if wanted and self._thread is None:
            self.tick()
            self._stop = threading.Event()  # each thread its own: a stopped one stays stopped
            self._thread = threading.Thread(
                target=self._run, args=(self._stop,), name="bidcore-pacer", daemon=True
            )
            self._thread.start()
        elif not wanted and self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def _run(self, stop: threading.Event) -> None:
        # The interval is read each time: a reload's new one applies after the current wait.
        while not stop.wait(self._config.pacing.interval_seconds):
            try:
                self.tick()
            except Exception:  # the thread must go on: the next tick may work
                log.exception("pacing update failed")

    # --- introspection ---

    @property
    def config(self) -> Config:
        """The config being paced."""
        return self._config

    def state(self) -> dict[str, CampaignPacing]:
        """Every campaign with a daily budget (while pacing is enabled), in config order."""
        with self._lock:
            return self._state()

    def _state(self) -> dict[str, CampaignPacing]:
        if not self._config.pacing.enabled:
            return {}
        return {
            campaign_id: campaign.report()
            for campaign_id, campaign in self._campaigns.items()
            if campaign.budget_micros is not None
        }

    def collector(self) -> PacingCollector:
        """A Prometheus collector of the pacing gauges (:class:`PacingCollector`)."""
        return PacingCollector(self)


class PacingCollector:
    """The pacer's state as Prometheus gauges, labelled by the paced accounts of the config
    (so bounded by it): ``campaign``, and ``account``, the campaign's id again or its share
    under an arm (``campaign@experiment:arm``). Read at each scrape:

    - ``bidcore_pacing_throttle{campaign,account}``: the share of requests entered (0 to 1);
    - ``bidcore_pacing_multiplier{campaign,account}``: the bid value's multiplier;
    - ``bidcore_pacing_spent_today{campaign,account,currency}``: today's spend, in currency
      units;
    - ``bidcore_pacing_budget{campaign,account,currency}``: the daily budget, in currency units.

    Nothing is exported while pacing is disabled. With several workers, each paces on its own
    spend and a scrape shows the pacer of the worker that answered it.
    """

    def __init__(self, pacer: Pacer) -> None:
        self.pacer = pacer

    def describe(self) -> Iterator[Metric]:
        """The families, without samples: the registry refuses a name registered twice."""
        yield from self._families(None)

    def collect(self) -> Iterator[Metric]:
        state = self.pacer.state()
        if state:
            yield from self._families(state)

    def _families(self, state: dict[str, CampaignPacing] | None) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily  # the serving extra's dependency

        currency = self.pacer.config.bidder.currency
        families: list[tuple[str, str, list[str], Callable[[CampaignPacing], float]]] = [
            (
                "bidcore_pacing_throttle",
                "Share of requests each paced campaign enters (0: stopped)",
                [],
                lambda c: c.throttle_ppm / PPM,
            ),
            (
                "bidcore_pacing_multiplier",
                "Multiplier of each paced campaign's bid value",
                [],
                lambda c: c.multiplier_ppm / PPM,
            ),
            (
                "bidcore_pacing_spent_today",
                "Each paced campaign's spend today (bill notices), in units of the currency",
                ["currency"],
                lambda c: c.spent_micros / 1e6,
            ),
            (
                "bidcore_pacing_budget",
                "Each paced campaign's daily budget, in units of the currency",
                ["currency"],
                lambda c: c.budget_micros / 1e6,
            ),
        ]
        for name, documentation, extra, value in families:
            family = GaugeMetricFamily(name, documentation, labels=["campaign", "account", *extra])
            for account, paced in (state or {}).items():
                # A campaign id has no "@": an account's campaign is its id up to the first.
                labels = [account.split("@")[0], account] + ([currency] if extra else [])
                family.add_metric(labels, value(paced))
            yield family


def _settings(pacing: Pacing) -> tuple[Any, ...]:
    """What a controller is built from: everything in ``[pacing]`` but ``enabled``."""
    return (
        pacing.mode,
        pacing.interval_seconds,
        pacing.utc_offset_seconds,
        pacing.profile,
        pacing.min_throttle,
        pacing.min_multiplier,
        pacing.max_multiplier,
        pacing.gains,
    )


def _routes(campaigns: dict[str, _Campaign]) -> dict[str, str]:
    """Every account of the engine, to the paced entry its spend counts on."""
    return {cell: key for key, campaign in campaigns.items() for cell in campaign.cells}


def _paced_budgets(config: Config) -> dict[str, tuple[int | None, tuple[str, ...]]]:
    """What is paced: id -> (daily budget in micros, None when unpaced; the engine's accounts
    it writes). Per account with the budget ledger on, else per campaign (its shares written
    the campaign's pacing)."""
    if config.budget.enabled:
        return {
            account: (None if b.nanos is None else b.nanos // 1_000, (account,))
            for account, b in account_budgets(config).items()
        }
    shares: dict[str, list[str]] = {c.id: [c.id] for c in config.campaigns}
    for arm_share in arm_shares(config):
        shares[arm_share.campaign.id].append(arm_share.account)
    return {
        c.id: (None if c.daily_budget is None else to_micros(c.daily_budget), tuple(shares[c.id]))
        for c in config.campaigns
    }


def _build_campaigns(
    config: Config, before: dict[str, _Campaign], *, same_settings: bool
) -> dict[str, _Campaign]:
    """A ledger entry per paced campaign or account of ``config`` (:func:`_paced_budgets`;
    today's spend carried over from ``before``), with a controller for each daily budget
    (``before``'s, when the settings did not change)."""
    pacing = config.pacing
    curve = (
        TargetCurve.even() if pacing.profile is None else TargetCurve.from_profile(pacing.profile)
    )
    gains = PidGains(
        kp=pacing.gains.kp,
        ki=pacing.gains.ki,
        kd=pacing.gains.kd,
        derivative_filter_seconds=pacing.gains.derivative_filter_seconds,
    )
    campaigns: dict[str, _Campaign] = {}
    for key, (budget, cells) in _paced_budgets(config).items():
        old = before.get(key)
        controller = None
        if budget is not None and budget > 0:
            if same_settings and old is not None and old.controller is not None:
                controller = old.controller
                controller.budget_micros = budget  # the loop's memory suits any budget
            else:
                controller = PacingController(
                    budget,
                    curve,
                    mode=pacing.mode,
                    gains=gains,
                    min_throttle=pacing.min_throttle,
                    min_multiplier=pacing.min_multiplier,
                    max_multiplier=pacing.max_multiplier,
                    interval_seconds=pacing.interval_seconds,
                    utc_offset_seconds=pacing.utc_offset_seconds,
                )
        campaign = _Campaign(budget, controller, cells)
        if old is not None:
            campaign.spent, campaign.fleet = old.spent, old.fleet
            campaign.throttle_ppm, campaign.multiplier_ppm = old.throttle_ppm, old.multiplier_ppm
            campaign.target = old.target
        campaigns[key] = campaign
    return campaigns
