"""The budget ledger of a fleet: each process leases slices of a campaign's daily budget from
Redis, spends them locally through the native :class:`bidcore.Ledger`, and renews or returns
them (``docs/budget.md``, "Across a fleet").

The hot path is the local one: a bid holds its cost against the money the process already
has, with the native ledger's atomics, and never waits for Redis. All Redis I/O happens in
:meth:`SharedBudgetLedger.tick`, in the ledger's own thread: one script call a tick, for the
campaigns that need one (a lease running low, spend to report, a day's carry-over to charge,
money to give back). When Redis does not answer, a process spends what its leases hold, then
its campaigns stop bidding until Redis answers again.

>>> import bidcore
>>> from bidcore.testing.servers import redis_server
>>> config = bidcore.config.loads('''
... [budget]
... enabled = true
... store = "redis"
... lease_share = 0.25
... [[campaigns]]
... id = "c1"
... goal = "cpm"
... cpm = 2
... max_bid = 2
... daily_budget = 0.01
... [[campaigns.creatives]]
... id = "cr1"
... media = "banner"
... w = 300
... h = 250
... adomain = ["shop.example"]
... burl = "https://bill.example/b?bid={bid}&price=${AUCTION_PRICE}"
... ''')
>>> with redis_server() as server:
...     fleet = [bidcore.Ledger(), bidcore.Ledger()]
...     budgets = [
...         SharedBudgetLedger(config, ledger, url=server.url, clock=lambda: 43_200.0)
...         for ledger in fleet
...     ]
...     for budget in budgets:
...         budget.tick()  # leases a quarter of the day's $0.01: 2,500 micros
...     [ledger.accounts()["c1"][1] for ledger in fleet]  # available, in nanos
...     budgets[0].record("c1")["leased"]  # micros leased from the record, fleet-wide
...     for budget in budgets:
...         budget.stop()  # gives the leases back
...     budgets[0].record("c1")["leased"]
[2500000, 2500000]
5000
0
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Final, cast

from bidcore._amounts import micros as to_micros
from bidcore._core import Ledger
from bidcore._redis import fail_fast_client
from bidcore._redis import process_id as new_process_id
from bidcore.budget.frequency import SharedFrequency
from bidcore.budget.ledger import NANOS_PER_MICRO, BudgetCollector, BudgetLedger, account_budgets
from bidcore.budget.pacing import day_position
from bidcore.config import Config

if TYPE_CHECKING:
    import redis
    from prometheus_client.core import Metric

__all__ = ["LEASE_SCRIPT", "SharedBudgetCollector", "SharedBudgetLedger"]

log = logging.getLogger("bidcore.budget")

RECORD_TTL_SECONDS: Final = 3 * 86_400
"""How long a campaign-day record outlives its last call."""

_ERROR_LOG_SECONDS: Final = 10.0

EXPIRE_SECONDS: Final = 1.0
"""How often at most a tick forgets the bids past their time to live."""

# One call leases for every campaign that needs it: KEYS are campaign-day records, ARGV the
# process id, the records' time to live (s), the fresh window (ms), then 7 values per record:
# budget (micros; -1 keeps the record's), mine (micros this process has received from the
# record, net of what it gave back), charge (micros carried over from yesterday, applied once
# per process and record), ret (micros given back), want (micros asked for), and the spend
# report: the record's s:{pid} as this process last saw it and the nanos to add to it (decimal
# strings, compared and added by Redis as 64-bit integers, so a report whose answer was lost is
# not counted twice). Micros are Lua doubles, exact below 2^53 (9e9 currency units); they are
# written back with %d, never in the exponent notation Lua would otherwise use.
#
# Per record, atomically: set the budget; if this process has received more than the record
# says (the store lost the record), close the record for the day (leased >= budget, and money
# given back is no longer taken off leased) and count it (lost); apply the charge; apply the
# return; lease min(want, budget - leased), but only one
# lease per process while the record is younger than the fresh window (so that after a loss,
# processes that had nothing from the lost record take one lease each before a process that
# had something closes it); add the spend. Answers {take, p, leased, budget, lost, s, spent} per
# record, where p is this process's new p:{pid}, s its s:{pid} and spent the whole fleet's
# spend (spent_nanos; what the pacers pace on).
LEASE_SCRIPT: Final = """
local pid = ARGV[1]
local ttl = ARGV[2]
local fresh_ms = tonumber(ARGV[3])
local p_field, c_field, s_field = 'p:' .. pid, 'c:' .. pid, 's:' .. pid
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local function int(x) return string.format('%d', x) end
local out = {}
for i, key in ipairs(KEYS) do
  local a = 3 + (i - 1) * 7
  local budget = tonumber(ARGV[a + 1])
  local mine = tonumber(ARGV[a + 2])
  local charge = tonumber(ARGV[a + 3])
  local ret = tonumber(ARGV[a + 4])
  local want = tonumber(ARGV[a + 5])
  local h = redis.call('HMGET', key, 'budget', 'leased', 'fresh_until', p_field, c_field, s_field)
  local fresh_until = tonumber(h[3] or '0')
  if not h[1] then
    fresh_until = now_ms + fresh_ms
    redis.call('HSET', key, 'fresh_until', int(fresh_until))
    redis.call('HSETNX', key, 'spent_nanos', '0')
  end
  if budget < 0 then budget = tonumber(h[1] or '0') end
  local leased = tonumber(h[2] or '0')
  local p = tonumber(h[4] or '0')
  local charged = tonumber(h[5] or '0')
  local lost = 0
  local closed = redis.call('HEXISTS', key, 'lost') == 1
  if mine + ret > p then
    lost = 1
    closed = true
    p = mine + ret
    if leased < budget then leased = budget end
    redis.call('HINCRBY', key, 'lost', 1)
  end
  if charge > 0 and not h[5] then
    leased = leased + charge
    p = p + charge
    charged = charge
    redis.call('HSET', key, c_field, int(charge))
  end
  if ret > 0 then
    local d = math.min(ret, p)
    p = p - d
    if not closed then leased = math.max(0, leased - d) end
  end
  local take = 0
  if want > 0 and leased < budget and not (now_ms < fresh_until and p - charged > 0) then
    take = math.min(want, budget - leased)
  end
  leased = leased + take
  p = p + take
  redis.call('HSET', key, 'budget', int(budget), 'leased', int(leased), p_field, int(p))
  local s = h[6] or '0'
  if s == ARGV[a + 6] and ARGV[a + 7] ~= '0' then
    redis.call('HINCRBY', key, 'spent_nanos', ARGV[a + 7])
    redis.call('HINCRBY', key, s_field, ARGV[a + 7])
    s = redis.call('HGET', key, s_field)
  end
  redis.call('EXPIRE', key, ttl)
  out[i] = {take, p, leased, budget, lost, s, redis.call('HGET', key, 'spent_nanos') or '0'}
end
return out
"""


@dataclass
class _Share:
    """This process's part of one campaign-day record, as far as it knows."""

    key: str
    mine: int = 0
    """Micros received from the record (leases and charges), net of returns: its p:{pid}."""
    charge: int = 0
    """Micros carried over from the day before, still to be charged to the record."""
    reported: int = 0
    """Nanos of the day's spend the record has from this process: its s:{pid}."""
    others: int = 0
    """Nanos of the day's spend the record has from the other processes, at the last answer."""
    last_call: float = -math.inf
    budget_sent: int | None = None
    exhausted: bool = False
    lost: bool = False


@dataclass(frozen=True, slots=True)
class _Call:
    campaign: str
    share: _Share
    budget: int
    charge: int
    ret: int
    want: int
    spent_delta: int
    grants: bool = True
    """Whether money the record says this process has and it does not is granted here: not
    for returns and not for yesterday's last report."""


class SharedBudgetLedger(BudgetLedger):
    """A :class:`~bidcore.budget.ledger.BudgetLedger` whose money comes from Redis in leases:
    every ``tick_seconds`` (``config.budget``) its thread renews the lease of each campaign
    whose available money fell below half a lease, reports spend, and charges a new day with
    what the day before left in flight. :meth:`stop` gives the leases back.

    ``client`` is a ``redis.Redis`` (by default one on ``url``, else
    ``config.budget.redis_url``, failing fast: ``store_timeout_seconds`` to connect or answer,
    by default 0.25 s, and no retries); ``process_id`` names this process in the records (by
    default host, pid and a random suffix: unique); ``clock`` is the wall clock that days are
    counted in. A campaign with money from its record or spend to report is called for at least
    every ``report_seconds``, lease or not: how soon spend reaches Redis, and how soon a process
    notices that the store lost a record. A new record gives each process one lease only for
    ``fresh_seconds`` (by default ``report_seconds`` plus two ticks and two timeouts: by then
    every process that had money from a lost record has noticed). ``key_prefix``, ``redis_url``,
    ``store_timeout_seconds`` and ``tick_seconds`` are read once, here and at :meth:`start`.
    Needs the ``redis`` package (the ``bidcore[serve]`` extra)."""

    def __init__(
        self,
        config: Config,
        ledger: Ledger,
        *,
        client: redis.Redis | None = None,
        url: str | None = None,
        process_id: str | None = None,
        clock: Callable[[], float] = time.time,
        report_seconds: float = 1.0,
        fresh_seconds: float | None = None,
    ) -> None:
        if client is None:
            client = fail_fast_client(
                url or config.budget.redis_url,
                timeout=config.budget.store_timeout_seconds,
                needed_by="SharedBudgetLedger",
            )
        from redis.exceptions import RedisError

        if not (math.isfinite(report_seconds) and report_seconds > 0):
            raise ValueError(f"report_seconds must be positive, got {report_seconds}")
        self.client: Final = client
        self.process_id: Final = process_id or new_process_id()
        self.report_seconds: Final = report_seconds
        self.key_prefix: Final = config.budget.key_prefix
        # A process with money from a record calls at least every report_seconds, plus a tick,
        # plus a slow call: within that a process that had a lease notices a lost record.
        budget = config.budget
        self.fresh_seconds: Final = (
            report_seconds + 2 * budget.tick_seconds + 2 * budget.store_timeout_seconds
            if fresh_seconds is None
            else fresh_seconds
        )
        self._errors: Final = (RedisError, OSError)
        self._script: Final = client.register_script(LEASE_SCRIPT)
        self._tick_lock = threading.Lock()
        self._shares: dict[str, _Share] = {}
        self._lease_sizes: dict[str, int] = {}
        self._monotonic = time.monotonic
        self._last_error_log = -math.inf
        self._expired_at = -math.inf
        self._counts = {"calls": 0, "store_errors": 0, "leases": 0, "lost": 0}
        super().__init__(config, ledger, clock=clock)
        windows = [c.frequency_cap.window_seconds for c in config.campaigns if c.frequency_cap]
        # Impressions travel between the processes' frequency caps on the same ticks.
        self.frequency: Final = SharedFrequency(
            ledger,
            client,
            key_prefix=self.key_prefix,
            max_window_seconds=max(windows, default=0),
            process_id=self.process_id,
            clock=clock,
        )

    # --- Config ---------------------------------------------------------------------------------

    def _apply(self, config: Config) -> None:
        super()._apply(config)
        self._capped = any(c.frequency_cap for c in config.campaigns)
        share = config.budget.lease_share
        self._lease_sizes = {}
        max_bids = {c.id: to_micros(c.max_bid) for c in config.campaigns}
        # Every account: a campaign's, and its share under an arm with a budget_share.
        for account, (campaign, nanos) in account_budgets(config).items():
            if nanos is None:
                continue
            budget = nanos // NANOS_PER_MICRO
            # At least one impression at max_bid (its cost in micros is the CPM's micros / 1000),
            # or a campaign with a small lease could never bid; never more than the budget.
            one_bid = -(-max_bids[campaign] // 1000)
            # The share as written (0.3, not the double just below it), rounded down.
            part = math.floor(budget * Fraction(repr(share)))
            self._lease_sizes[account] = min(budget, max(part, one_bid))

    def _rebalance_all(self) -> None:
        """No grants of whole budgets: the money comes in leases, from :meth:`tick`."""

    def lease_micros(self, campaign: str) -> int | None:
        """The size of the campaign's lease, in micros (None: not limited)."""
        with self._lock:
            return self._lease_sizes.get(campaign)

    # --- The ticker -----------------------------------------------------------------------------

    def start(self, interval_seconds: float | None = None) -> None:
        """Ticks every ``interval_seconds`` (by default ``config.budget.tick_seconds``) in a
        background thread until :meth:`stop`."""
        interval = (
            self._config.budget.tick_seconds if interval_seconds is None else interval_seconds
        )
        super().start(interval)

    def stop(self) -> None:
        """Stops the thread, then reports the spend and gives back the money no bid holds
        (:meth:`release`)."""
        super().stop()
        self.release()

    def tick(self, now: float | None = None, *, flush: bool = False) -> None:
        """Forgets bids past their time to live (at most once a second) and makes the calls
        due, in one round trip: leases for campaigns whose available money fell below half a
        lease, spend reports (at least every ``report_seconds``), the carry-over of a new day,
        the money of campaigns no longer limited. ``flush`` calls for every campaign with money
        from its record or spend to report. A store that does not answer is counted and
        logged; the calls are made again at the next tick."""
        now = self._clock() if now is None else now
        if not now - EXPIRE_SECONDS < self._expired_at <= now:
            # Once a second, as the local ledger does: the scan is the native ledger's, and
            # the leases need ticks ten times as often.
            self.ledger.expire(now)
            self._expired_at = now
        with self._tick_lock:
            with self._lock:
                calls = self._plan(now, flush=flush, release=False)
                capped = self._capped
            self._execute(calls)
            if capped:
                self.frequency.tick()

    def release(self) -> None:
        """Gives back every campaign's available money (taken out of the native ledger first,
        so the process can no longer spend it) and reports the spend. If the store does not
        answer, the money is lost for the day: the fleet spends less, never more."""
        with self._tick_lock:
            for _round in range(2):  # a second when a report found the record lost (resync)
                with self._lock:
                    calls = self._plan(self._clock(), flush=True, release=True)
                if not self._execute(calls):
                    return

    def _plan(self, now: float, *, flush: bool, release: bool) -> list[_Call]:
        day, _ = day_position(now, self._config.pacing.utc_offset_seconds)
        accounts = self.ledger.accounts()
        calls: list[_Call] = []
        if day != self._day:
            calls += self._new_day(day, accounts)
        mono = self._monotonic()
        for campaign, account in self._accounts.items():
            _limited, available, _exposure, spent = accounts.get(campaign, (False, 0, 0, 0))
            share = self._shares.get(campaign)
            budget_nanos = account.budget_nanos
            if budget_nanos is None and share is None:
                continue
            if share is None:
                share = self._shares[campaign] = _Share(self._key(campaign, day))
            unreported = max(0, spent - account.day_start_spent - share.reported)
            due = mono - share.last_call >= self.report_seconds
            if budget_nanos is None or release:
                # Gone, unlimited or stopping: give back the money no bid holds (taken out here
                # first, so it is never both spent here and leased elsewhere).
                ret = available // NANOS_PER_MICRO if available > 0 else 0
                if ret:
                    self.ledger.grant(campaign, -ret * NANOS_PER_MICRO)
                    share.mine -= ret
                if ret or (unreported and (due or flush)) or share.charge:
                    budget = -1 if budget_nanos is None else budget_nanos // NANOS_PER_MICRO
                    calls.append(
                        _Call(campaign, share, budget, share.charge, ret, 0, unreported, False)
                    )
                continue
            budget = budget_nanos // NANOS_PER_MICRO
            lease = self._lease_sizes.get(campaign, 0)
            want = 0
            # A record with nothing left is asked again every report_seconds (others may give
            # money back) or when the budget changes, not at every tick.
            waiting = share.exhausted and not due and share.budget_sent == budget
            if 2 * available < lease * NANOS_PER_MICRO and not waiting:
                want = min(lease, (lease * NANOS_PER_MICRO - available) // NANOS_PER_MICRO)
            if (
                want > 0
                or share.charge
                or share.budget_sent != budget
                or ((share.mine or unreported) and (due or flush))
            ):
                calls.append(_Call(campaign, share, budget, share.charge, 0, want, unreported))
        return calls

    def _new_day(self, day: int, accounts: dict[str, tuple[bool, int, int, int]]) -> list[_Call]:
        """The first tick of a day: yesterday's spend not yet reported goes to yesterday's
        records; what each campaign has left (available and held by bids in flight) stays here
        and is charged to today's record, so yesterday's bids still in flight count against
        today's budget."""
        calls: list[_Call] = []
        for campaign, account in self._accounts.items():
            _limited, available, exposure, spent = accounts.get(campaign, (False, 0, 0, 0))
            old = self._shares.pop(campaign, None)
            if old is not None:
                unreported = spent - account.day_start_spent - old.reported
                if unreported > 0:
                    calls.append(_Call(campaign, old, -1, 0, 0, 0, unreported, False))
            account.day_start_spent = spent
            if account.budget_nanos is not None:
                leftover = available + exposure
                charge = -(-leftover // NANOS_PER_MICRO) if leftover > 0 else 0
                self._shares[campaign] = _Share(self._key(campaign, day), charge=charge)
        self._day = day
        return calls

    def _key(self, campaign: str, day: int) -> str:
        return f"{self.key_prefix}:{campaign}:{day}"

    def _execute(self, calls: Sequence[_Call]) -> bool:
        """Makes the calls; whether a spend report must be sent again (the record had another
        count of this process's spend than it knew: it was lost, or an answer was)."""
        if not calls:
            return False
        args: list[str | int] = [
            self.process_id,
            RECORD_TTL_SECONDS,
            max(0, round(self.fresh_seconds * 1000)),
        ]
        for call in calls:
            args += [
                call.budget,
                call.share.mine,
                call.charge,
                call.ret,
                call.want,
                call.share.reported,
                call.spent_delta,
            ]
        self._counts["calls"] += 1
        try:
            answers: list[list[Any]] = self._script(
                keys=[call.share.key for call in calls], args=args
            )
        except self._errors as err:
            self._counts["store_errors"] += 1
            mono = self._monotonic()
            if mono - self._last_error_log >= _ERROR_LOG_SECONDS:
                self._last_error_log = mono
                log.warning(
                    "budget store unreachable (%s): spending what the leases hold, then no "
                    "bids for those campaigns until it answers",
                    err,
                )
            return False
        resync = False
        mono = self._monotonic()
        for call, (take, p, leased, budget, lost, s, spent) in zip(calls, answers, strict=True):
            share = call.share
            if call.grants:
                # p is what the record says this process has received: more than it knows of
                # when an earlier answer was lost on the way back (or a return never arrived).
                grant = int(p) - share.mine - call.charge
                if grant > 0:
                    self.ledger.grant(call.campaign, grant * NANOS_PER_MICRO)
                share.mine = int(p)
            share.charge = 0
            resync |= call.spent_delta > 0 and int(s) != share.reported + call.spent_delta
            share.reported = int(s)
            share.others = max(0, int(spent) - int(s))
            share.last_call = mono
            share.budget_sent = call.budget
            share.exhausted = int(leased) >= int(budget)
            if take > 0:
                self._counts["leases"] += 1
            if lost:
                self._counts["lost"] += 1
                if not share.lost:
                    log.warning(
                        "budget store lost the record %s: no more leases from it today "
                        "(the fleet spends what it holds)",
                        share.key,
                    )
                share.lost = True
        return resync

    # --- Reading --------------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """``calls`` (script calls, one per tick with something to do), ``store_errors``
        (calls that failed), ``leases`` (records that granted money), ``lost`` (records found
        lost, fail closed)."""
        return dict(self._counts)

    def fleet_spent_micros(self) -> dict[str, int]:
        """Per account, today's spend of the whole fleet as far as this process knows, in
        micros (rounded down): the other processes' as the record had it at this process's
        last call (at most ``report_seconds`` and a tick old while it holds money), plus its
        own, reported or not. What :class:`~bidcore.budget.Pacer` paces on in a fleet
        (``fleet_spend``), where each process's own bills are a fraction of the spend."""
        accounts = self.ledger.accounts()
        fleet: dict[str, int] = {}
        with self._lock:
            for account, share in self._shares.items():
                known = self._accounts.get(account)
                if known is None:
                    continue
                spent = accounts.get(account, (False, 0, 0, 0))[3]
                own = max(0, spent - known.day_start_spent)
                fleet[account] = (share.others + own) // NANOS_PER_MICRO
        return fleet

    def leased_micros(self) -> dict[str, int]:
        """Per campaign, the micros this process has received from today's record (leases and
        the day's carry-over, net of returns)."""
        with self._lock:
            return {c: share.mine for c, share in self._shares.items()}

    def record(self, campaign: str, day: int | None = None) -> dict[str, int]:
        """The campaign-day record in Redis (today's by default), its numbers as integers: a
        read for tests and operators, not used by the ledger itself."""
        if day is None:
            day, _ = day_position(self._clock(), self._config.pacing.utc_offset_seconds)
        raw = cast("dict[bytes, bytes]", self.client.hgetall(self._key(campaign, day)))
        return {k.decode(): int(v) for k, v in raw.items()}

    def collector(self) -> SharedBudgetCollector:
        return SharedBudgetCollector(self)


class SharedBudgetCollector(BudgetCollector):
    """:class:`BudgetCollector`'s metrics and the store's: ``bidcore_budget_store_errors``,
    ``bidcore_budget_leases``, ``bidcore_budget_store_lost`` (counters) and
    ``bidcore_budget_leased{campaign,currency}`` (what this process received today)."""

    def __init__(self, budget: SharedBudgetLedger) -> None:
        super().__init__(budget)
        self._shared = budget

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        yield from super().collect()
        counts = self._shared.stats()
        yield CounterMetricFamily(
            "bidcore_budget_store_errors",
            "Calls to the budget store that failed (the process spent its leases meanwhile)",
            counts["store_errors"],
        )
        yield CounterMetricFamily(
            "bidcore_budget_leases", "Leases the budget store granted", counts["leases"]
        )
        yield CounterMetricFamily(
            "bidcore_budget_store_lost",
            "Records the budget store had lost (closed for the day: fail closed)",
            counts["lost"],
        )
        leased = GaugeMetricFamily(
            "bidcore_budget_leased",
            "Money this process received from today's budget records, per campaign",
            labels=["campaign", "currency"],
        )
        currency = self._shared.config.bidder.currency
        for campaign, micros in self._shared.leased_micros().items():
            leased.add_metric([campaign, currency], micros / 1e6)
        yield leased
