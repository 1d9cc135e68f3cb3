"""Prometheus metrics of a bidder: the native engine's counters, read at scrape time, the model
drift they show, and the HTTP layer's own counts.

:class:`BidderMetrics` owns a :class:`prometheus_client.CollectorRegistry` (not the global
one). At every scrape it reads ``Engine.metrics()`` (one native snapshot: a few microseconds)
and adds what the engines it tracked before had counted, so every counter keeps growing across
reloads although each reloaded engine counts from zero. The server calls :meth:`track` with each
engine it starts serving, ``record_*`` per request, reload and notice (a dictionary lookup and a
locked increment each), and serves :meth:`render` at ``/metrics``.

=============================================  ================================================
``bidcore_requests_total``                     bid requests decided (invalid ones included)
``bidcore_bids_total``                         requests answered with a bid
``bidcore_imp_bids_total``                     impressions bid on
``bidcore_no_bids_total{reason}``              no-bids by reason (the engine's fixed set)
``bidcore_campaign_imp_bids_total``            impressions bid on, by ``campaign``
``bidcore_campaign_bid_value_total``           what those bids offered: the sum of their
                                               prices / 1000 (prices are CPM), in units of the
                                               ``currency`` label (the bidder's currency)
``bidcore_experiment_requests_total``          requests assigned to an experiment arm, by
                                               ``experiment`` and ``arm``
``bidcore_experiment_bids_total``              of those, the requests answered with a bid
``bidcore_experiment_imp_bids_total``          the impressions those requests were bid on
``bidcore_experiment_bid_value_total``         what those bids offered, as the campaigns' bid
                                               value, by ``experiment``, ``arm`` and
                                               ``currency``
``bidcore_decision_seconds``                   histogram of the native decision's duration
``bidcore_model_score{role,model}``            histogram of the model's scores, on the bins of
                                               its artifact's reference histogram (closed on
                                               the left: ``le=e`` counts the scores below e)
``bidcore_model_psi{role,model,feature}``      PSI of the live score (``feature="score"``) and
                                               features against the artifact's reference, over
                                               the last ``psi_window`` seconds
``bidcore_engine_loaded_timestamp_seconds``    when the engine being served was tracked
``bidcore_http_responses_total{route,status}`` HTTP responses
``bidcore_reloads_total{result}``              reloads, ``ok`` or ``failed``
``bidcore_notices_total{kind,result}``         notices, ``accepted`` or ``rejected``
``bidcore_spend_total{campaign,currency}``     what bill notices say was paid: clearing price
                                               / 1000 per impression; campaigns and currencies
                                               the config does not know count as ``_other``
``bidcore_decision_log_records_total{outcome}`` decision-log records ``logged``, ``dropped``,
                                               ``written``, ``lost`` (when a log is attached)
``bidcore_decision_log_pending``               records logged, not yet written
=============================================  ================================================

Label cardinality is bounded: reasons, routes, notice kinds and outcomes are fixed sets (an
unknown route or kind is counted as ``other``); campaigns get their own label in the order they
are first seen (config order) up to ``max_campaigns`` (200), and every later campaign is
counted under ``campaign="_other"`` for the life of the process, so no series ever changes
meaning. Experiment arms are those of the configs tracked: every arm of an engine tracked has
its series from then on (at zero until it counts), for the life of the process, so the arms of
the previous configs go on being exported with what they counted. An experiment's key is unique
across the layers, so ``experiment`` and ``arm`` name one arm; each layer places a request in
at most one arm, so a request counts once per layer it is placed in (the arms of one experiment
sum to its requests; summing over experiments counts a request once per layer). A request's
imps bid on and their value count in each of its arms, whichever campaigns the arm applies to
(``docs/experiments.md``, section 12). Score histograms and PSI exist only for the models of
the engine being served.

Several workers (``bidcore serve --workers N``): N processes behind one port, each with its
own engine and its own :class:`BidderMetrics`, and a scrape reaches one of them. Given a
``shared_dir`` (``bidcore serve`` makes one per run), each worker writes a snapshot of what it
would export there: its engines' counts (with those of the engines it replaced), its decision
log's, its HTTP counters. It writes them as ``<pid>-<token>.json``, a temporary file renamed
over the last one (readers never see half a file): every ``share_interval`` seconds (1), at
each scrape it answers, before answering, and at shutdown. A scrape, whichever worker answers
it, sums that worker's counts, taken then, with the latest snapshot of every other worker:
counters and histogram buckets are summed, PSI is computed from the summed score and feature
histograms against the served model's reference, ``bidcore_decision_log_pending`` is summed
and ``bidcore_engine_loaded_timestamp_seconds`` is the latest load among the workers still
running (a snapshot younger than 5 intervals and not written at shutdown).

The page is stale by at most one write interval for the other workers' counts (never for the
answering worker's), and it never goes back: a worker's snapshots only grow, the answering
worker writes its own before it answers (the next scrape, wherever it lands, sees at least as
much), and the snapshots are added in one fixed order (by file name), so not even a float sum
wobbles between workers. A worker that exits, crashed or restarted, leaves its last snapshot
behind and its counts still count (a restarted worker has a new pid and a new file, and starts
from zero); what a crashed worker counted after its last write (under one interval) is lost.
Another worker's campaign labels go through the answering worker's cap like its own (first
seen, first labelled): workers agree on them unless they were given more than
``max_campaigns`` campaigns in different orders. Its experiment arms are summed under their
own labels (they come from the configs it tracked); a snapshot of the format written before
the engine counted arms (1) is read as counting none. The histograms of models the answering
worker does not serve are left out (between the workers' reloads, for a moment). Without a
``shared_dir`` there is no file and nothing changes.

>>> import bidcore
>>> engine = bidcore.Engine(bidcore.config.loads('''
... [[campaigns]]
... id = "c1"
... goal = "cpm"
... cpm = 2
... max_bid = 5
... [[campaigns.creatives]]
... id = "cr1"
... media = "banner"
... w = 300
... h = 250
... adomain = ["shop.example"]
... markup = "<a href='https://shop.example/?c={campaign}'>ad</a>"
... [[experiments.layers]]
... name = "pricing"
... seed = "pricing-2026"
... [[experiments.layers.experiments]]
... key = "boost"
... arms = [{name = "control"}, {name = "boosted", bid_multiplier = 1.5}]
... '''))
>>> metrics = BidderMetrics(engine)
>>> body = b'{"id":"r1","imp":[{"id":"1","banner":{"w":300,"h":250},"bidfloor":0.5}]}'
>>> engine.bid(body) is not None
True
>>> metrics.record_response("bid", 200)
>>> text, content_type = metrics.render()
>>> shown = ("bidcore_bids_total", "bidcore_campaign", "bidcore_experiment_requests",
...          "bidcore_experiment_bid_value", "bidcore_http_responses_total")
>>> for line in text.decode().splitlines():
...     if line.startswith(shown):
...         print(line)
bidcore_bids_total 1.0
bidcore_campaign_imp_bids_total{campaign="c1"} 1.0
bidcore_campaign_bid_value_total{campaign="c1",currency="USD"} 0.003
bidcore_experiment_requests_total{arm="boosted",experiment="boost"} 1.0
bidcore_experiment_requests_total{arm="control",experiment="boost"} 0.0
bidcore_experiment_bid_value_total{arm="boosted",currency="USD",experiment="boost"} 0.003
bidcore_experiment_bid_value_total{arm="control",currency="USD",experiment="boost"} 0.0
bidcore_http_responses_total{route="bid",status="200"} 1.0
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder, generate_latest
from prometheus_client.utils import floatToGoString

from bidcore import monitoring

if TYPE_CHECKING:
    from bidcore.engine import Engine

__all__ = [
    "DECISION_LOG_OUTCOMES",
    "MAX_CAMPAIGNS",
    "NOTICE_KINDS",
    "OTHER",
    "OTHER_CAMPAIGN",
    "PSI_WINDOW",
    "ROUTES",
    "ROUTES_ELSE",
    "SHARE_INTERVAL",
    "BidderMetrics",
]

log = logging.getLogger("bidcore.metrics")

MAX_CAMPAIGNS: Final = 200
"""Campaigns with a label of their own; the rest are counted as ``campaign="_other"``."""

OTHER_CAMPAIGN: Final = "_other"
OTHER: Final = "other"
"""The label of a route, notice kind or status outside the known set."""

ROUTES: Final = ("bid", "win", "bill", "loss", "metrics", "healthz", "readyz", "reload")
ROUTES_ELSE: Final = ("unknown", "websocket")
"""The endpoints of :mod:`bidcore.asgi`, and what it counts a request as when no route matched
(``unknown``) or for a websocket it turned away."""

NOTICE_KINDS: Final = ("win", "bill", "loss")
DECISION_LOG_OUTCOMES: Final = ("logged", "dropped", "written", "lost")

PSI_WINDOW: Final = 3600.0
"""Seconds of live traffic the exported PSI looks at, by default."""

SHARE_INTERVAL: Final = 1.0
"""Seconds between the snapshots a worker writes for the others, by default (``shared_dir``)."""

_LIVE_FOR: Final = 5.0  # a worker whose last snapshot is this many intervals old has stopped
_SNAPSHOT_FORMAT: Final = 2  # 2: the totals have ``arms``
_SNAPSHOT_FORMATS_READ: Final = (1, 2)  # a format 1 file (no arms) counts no arm
_HTTP_COUNTERS: Final = (
    ("bidcore_http_responses", "HTTP responses, by route and status", ("route", "status")),
    ("bidcore_reloads", "Engine reloads, by result", ("result",)),
    ("bidcore_notices", "Win, billing and loss notices, by kind and result", ("kind", "result")),
    (
        "bidcore_spend",
        "What the exchanges billed (bill notices' clearing prices, per impression), by campaign",
        ("campaign", "currency"),
    ),
)
"""The HTTP layer's counters: name, help and label names."""

_MICROS_PER_CPM_UNIT: Final = 1e9  # price micros per currency unit, times 1000 imps per CPM
_le: Final[Callable[[float], str]] = floatToGoString  # how prometheus-client writes bounds


class BidderMetrics:
    """The Prometheus metrics of one bidder process (see the module's docstring for the list).

    ``engine`` is the engine to track from the start (:meth:`track` it later otherwise).
    ``max_campaigns`` caps the campaigns with a label of their own. ``routes`` (besides
    :data:`ROUTES_ELSE`) and ``notice_kinds`` are the label values :meth:`record_response` and
    :meth:`record_notice` accept; anything else is counted as ``other``. ``psi_window`` is how
    many seconds of live traffic the exported PSI compares with the reference (``None``:
    everything since the model was first tracked); ``clock`` is the monotonic clock that window
    is measured with.
    ``shared_dir`` is the directory the workers of one server share (see the module's
    docstring): this worker's snapshots go there, every ``share_interval`` seconds once
    :meth:`start_publishing` was called, and the scrapes sum them all. The directory must exist
    and hold nothing but the snapshots of this server's workers.
    Thread-safe: the ``record_*`` methods may run in any thread, scrapes too.
    """

    def __init__(
        self,
        engine: Engine | None = None,
        *,
        max_campaigns: int = MAX_CAMPAIGNS,
        routes: Iterable[str] = ROUTES,
        notice_kinds: Iterable[str] = NOTICE_KINDS,
        psi_window: float | None = PSI_WINDOW,
        clock: Callable[[], float] = time.monotonic,
        shared_dir: Path | None = None,
        share_interval: float = SHARE_INTERVAL,
    ) -> None:
        if max_campaigns < 0:
            raise ValueError(f"max_campaigns must be >= 0, got {max_campaigns}")
        if psi_window is not None and not psi_window > 0:
            raise ValueError(f"psi_window must be > 0 seconds or None, got {psi_window}")
        if not share_interval > 0:
            raise ValueError(f"share_interval must be > 0 seconds, got {share_interval}")
        self.registry: Final = CollectorRegistry()
        self._routes = frozenset((*routes, *ROUTES_ELSE))
        self._notice_kinds = frozenset(notice_kinds)
        self._engines = _EngineCollector(max_campaigns, psi_window, clock)
        counters = tuple(
            Counter(name, documentation, labels, registry=None)
            for name, documentation, labels in _HTTP_COUNTERS
        )
        self._responses, reloads, notices, spend = counters
        self._spend: Final = spend
        self._spend_children: dict[tuple[str, str], Any] = {}
        # Labels the spend counter accepts: the tracked engines' campaigns and currencies.
        self._known_campaigns: set[str] = set()
        self._known_currencies: set[str] = set()
        self._default_currency = ""
        self._server: _ServerCollector | None = None
        if shared_dir is None:
            self.registry.register(self._engines)
            for counter in counters:
                self.registry.register(counter)
        else:
            self._server = _ServerCollector(self._engines, counters, shared_dir, share_interval)
            self.registry.register(self._server)
        # Children bound once: a label lookup costs more than the increment. Reloads and notices
        # are bound up front, so their series exist (at 0) before the first event.
        self._reloads: Final = {
            ok: reloads.labels("ok" if ok else "failed") for ok in (True, False)
        }
        self._notices: Final = {
            (kind, accepted): notices.labels(kind, "accepted" if accepted else "rejected")
            for kind in (*sorted(self._notice_kinds), OTHER)
            for accepted in (True, False)
        }
        self._response_children: dict[tuple[str, int], Any] = {}
        if engine is not None:
            self.track(engine)

    def track(self, engine: Engine) -> None:
        """Serve ``engine``'s counters from now on. The engine tracked before is read one last
        time at the next scrape (so requests it finishes after the swap still count) and its
        totals are kept: exported counters never go down. Tracking the same engine again
        does nothing."""
        config = engine.config
        self._known_campaigns.update(c.id for c in config.campaigns)
        self._known_currencies.update((config.bidder.currency, config.fx.base, *config.fx.rates))
        self._default_currency = config.bidder.currency
        self._engines.track(engine)

    def track_decision_log(self, stats: Callable[[], Mapping[str, int]] | None) -> None:
        """Export the decision log's counts: ``stats()`` is called at each scrape and its
        ``logged``, ``dropped``, ``written`` and ``lost`` entries (monotonic counts) become
        ``bidcore_decision_log_records_total{outcome}``, its ``pending`` entry
        ``bidcore_decision_log_pending`` (``DecisionLogWriter.stats`` has them all). Replacing
        a log keeps the counts of the one before; ``None`` detaches (the counts so far stay
        exported)."""
        self._engines.track_decision_log(stats)

    def record_response(self, route: str, status: int) -> None:
        """Count one HTTP response; ``route`` is one of ``routes`` (else ``other``)."""
        child = self._response_children.get((route, status))
        if child is None:
            child = self._response_child(route, status)
        child.inc()

    def _response_child(self, route: str, status: int) -> Any:
        label = route if route in self._routes else OTHER
        code = str(status) if 100 <= status <= 599 else OTHER
        child = self._responses.labels(label, code)
        if label == route and code != OTHER:
            # Only known (route, status) pairs are kept: the map stays as small as the labels.
            self._response_children[route, status] = child
        return child

    def record_reload(self, ok: bool) -> None:
        """Count one reload of the engine, successful or not."""
        self._reloads[bool(ok)].inc()

    def record_notice(self, kind: str, accepted: bool) -> None:
        """Count one notice (``win``, ``bill``, ``loss``), taken or refused."""
        child = self._notices.get((kind, accepted))
        if child is None:
            child = self._notices[OTHER, bool(accepted)]
        child.inc()

    def record_spend(self, campaign: str | None, currency: str | None, price_micros: int) -> None:
        """Count what one bill notice says was paid: ``price_micros`` is the clearing price
        (CPM, micros), so the impression cost ``price_micros / 1e9`` units of ``currency`` (the
        bidder's when None). Campaigns and currencies no tracked engine knows, or past the
        campaign cap, are counted as ``_other`` / ``other``: labels stay bounded whatever the
        query string says."""
        key = (campaign or "", currency or self._default_currency)
        child = self._spend_children.get(key)
        if child is None:
            known = key[0] in self._known_campaigns
            label = self._engines.campaign_label(key[0]) if known else OTHER_CAMPAIGN
            unit = key[1] if key[1] in self._known_currencies else OTHER
            child = self._spend.labels(label, unit)
            if known and unit != OTHER:
                self._spend_children[key] = child
        child.inc(price_micros / _MICROS_PER_CPM_UNIT)

    def publish(self) -> None:
        """Write this worker's snapshot to ``shared_dir`` now (without one: nothing). Scrapes
        and the thread :meth:`start_publishing` starts call it; a failure is logged."""
        if self._server is not None:
            self._server.publish()

    def start_publishing(self) -> None:
        """Publish now, then every ``share_interval`` seconds from a daemon thread, until
        :meth:`stop_publishing` (without ``shared_dir``: nothing). Call it in the process that
        serves: a thread does not survive a fork."""
        if self._server is not None:
            self._server.start()

    def stop_publishing(self) -> None:
        """Stop the thread and publish one last time, as a worker that stopped: its counters
        keep counting in the others' scrapes, its gauges no longer do."""
        if self._server is not None:
            self._server.stop()

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The ``/metrics`` body and its content type: Prometheus' text format, or the format
        an ``Accept`` header asks for (OpenMetrics 1.0). With ``shared_dir``, the whole
        server's: every worker's counts summed (this one's published first)."""
        if accept:
            encoder, content_type = choose_encoder(accept)
            return encoder(self.registry), content_type
        return generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4


# --- What the engines counted --------------------------------------------------------------


class _Bins:
    """A histogram's counts on fixed edges (``bidcore.artifact.Histogram``'s rule)."""

    __slots__ = ("counts", "edges", "missing")

    def __init__(self, edges: Iterable[float], counts: Iterable[int], missing: int) -> None:
        self.edges = tuple(float(e) for e in edges)
        self.counts = [int(c) for c in counts]
        self.missing = int(missing)

    @classmethod
    def read(cls, native: Mapping[str, Any]) -> _Bins:
        return cls(native["edges"], native["counts"], native.get("missing", 0))

    def copy(self) -> _Bins:
        return _Bins(self.edges, self.counts, self.missing)

    def add(self, other: _Bins, sign: int = 1) -> None:
        """Add (``sign=-1``: subtract) counts on the same edges. Counts on other edges (another
        model under the same id) replace these when added, and are ignored when subtracted."""
        if other.edges != self.edges or len(other.counts) != len(self.counts):
            if sign > 0:
                self.edges, self.counts = other.edges, list(other.counts)
                self.missing = other.missing
            return
        self.counts = [a + sign * b for a, b in zip(self.counts, other.counts, strict=True)]
        self.missing += sign * other.missing

    def native(self) -> dict[str, Any]:
        return {"edges": list(self.edges), "counts": self.counts, "missing": self.missing}


class _ModelCounts:
    """One model's live histograms: its score and its monitored features."""

    __slots__ = ("features", "score")

    def __init__(self, score: _Bins, features: dict[str, _Bins]) -> None:
        self.score = score
        self.features = features

    @classmethod
    def read(cls, native: Mapping[str, Any]) -> _ModelCounts:
        features = {name: _Bins.read(h) for name, h in native["features"].items()}
        return cls(_Bins.read(native["scores"]), features)

    def copy(self) -> _ModelCounts:
        return _ModelCounts(self.score.copy(), {n: b.copy() for n, b in self.features.items()})

    def add(self, other: _ModelCounts, sign: int = 1) -> None:
        self.score.add(other.score, sign)
        for name, bins in other.features.items():
            mine = self.features.get(name)
            if mine is not None:
                mine.add(bins, sign)
            elif sign > 0:
                self.features[name] = bins.copy()

    def native(self, model: str) -> dict[str, Any]:
        features = {name: bins.native() for name, bins in self.features.items()}
        return {"model": model, "scores": self.score.native(), "features": features}


class _Totals:
    """Counts summed over engines, campaigns under their (capped) labels."""

    def __init__(self) -> None:
        self.requests = self.bids = self.imp_bids = 0
        self.no_bids: dict[str, int] = {}
        self.campaigns: dict[tuple[str, str], list[int]] = {}  # (label, currency) -> imps, micros
        # (experiment, arm, currency) -> requests, bids, imps, micros
        self.arms: dict[tuple[str, str, str], list[int]] = {}
        self.latency_bounds: tuple[float, ...] = ()
        self.latency_counts: list[int] = []
        self.latency_sum = 0.0
        self.models: dict[tuple[str, str], _ModelCounts] = {}  # (role, model id)

    def copy(self) -> _Totals:
        other = _Totals()
        other.requests, other.bids, other.imp_bids = self.requests, self.bids, self.imp_bids
        other.no_bids = dict(self.no_bids)
        other.campaigns = {key: list(v) for key, v in self.campaigns.items()}
        other.arms = {key: list(v) for key, v in self.arms.items()}
        other.latency_bounds = self.latency_bounds
        other.latency_counts = list(self.latency_counts)
        other.latency_sum = self.latency_sum
        other.models = {key: m.copy() for key, m in self.models.items()}
        return other

    def add(
        self,
        snapshot: Mapping[str, Any],
        *,
        label: Callable[[str], str],
        currency: str,
        models: Iterable[tuple[str, str]] | None = None,
    ) -> None:
        """Add an engine's snapshot (``Engine.metrics()``); only the ``models`` keys given."""
        self.requests += snapshot["requests"]
        self.bids += snapshot["bids"]
        self.imp_bids += snapshot["imp_bids"]
        for reason, count in snapshot["no_bids"].items():
            self.no_bids[reason] = self.no_bids.get(reason, 0) + count
        for campaign, counts in snapshot["campaigns"].items():
            slot = self.campaigns.setdefault((label(campaign), currency), [0, 0])
            slot[0] += counts["imp_bids"]
            slot[1] += counts["bid_micros"]
        for arm in snapshot["arms"]:
            self._add_arm(
                (str(arm["experiment"]), str(arm["arm"]), currency),
                [arm[k] for k in ("requests", "bids", "imp_bids", "bid_micros")],
            )
        self._add_latency(snapshot["latency"])
        wanted = None if models is None else set(models)
        for role, native in snapshot["models"].items():
            key = (role, str(native["model"]))
            if wanted is not None and key not in wanted:
                continue
            live = _ModelCounts.read(native)
            if key in self.models:
                self.models[key].add(live)
            else:
                self.models[key] = live

    def merge(
        self,
        other: _Totals,
        *,
        label: Callable[[str], str],
        models: Iterable[tuple[str, str]] | None = None,
    ) -> None:
        """Add another worker's totals, its campaign labels through ``label``; only the
        ``models`` keys given."""
        self.requests += other.requests
        self.bids += other.bids
        self.imp_bids += other.imp_bids
        for reason, count in other.no_bids.items():
            self.no_bids[reason] = self.no_bids.get(reason, 0) + count
        for (campaign, currency), (imps, micros) in other.campaigns.items():
            slot = self.campaigns.setdefault((label(campaign), currency), [0, 0])
            slot[0] += imps
            slot[1] += micros
        for arm, arm_counts in other.arms.items():
            self._add_arm(arm, arm_counts)
        if other.latency_bounds:
            latency = {
                "bounds_s": other.latency_bounds,
                "counts": other.latency_counts,
                "sum_s": other.latency_sum,
            }
            self._add_latency(latency)
        wanted = None if models is None else set(models)
        for key, counts in other.models.items():
            if wanted is not None and key not in wanted:
                continue
            if key in self.models:
                self.models[key].add(counts)
            else:
                self.models[key] = counts.copy()

    def dump(self) -> dict[str, Any]:
        """The totals as JSON values (:meth:`load` reads them back)."""
        return {
            "requests": self.requests,
            "bids": self.bids,
            "imp_bids": self.imp_bids,
            "no_bids": self.no_bids,
            "campaigns": [[*key, *counts] for key, counts in self.campaigns.items()],
            "arms": [[*key, *counts] for key, counts in self.arms.items()],
            "latency": {
                "bounds_s": list(self.latency_bounds),
                "counts": self.latency_counts,
                "sum_s": self.latency_sum,
            },
            "models": [
                {"role": role, **counts.native(model)}
                for (role, model), counts in self.models.items()
            ],
        }

    @classmethod
    def load(cls, data: Mapping[str, Any], *, arms: bool = True) -> _Totals:
        """``arms``: whether ``data`` has them (format 1 has none)."""
        totals = cls()
        totals.requests = int(data["requests"])
        totals.bids = int(data["bids"])
        totals.imp_bids = int(data["imp_bids"])
        totals.no_bids = {str(reason): int(n) for reason, n in data["no_bids"].items()}
        totals.campaigns = {
            (str(campaign), str(currency)): [int(imps), int(micros)]
            for campaign, currency, imps, micros in data["campaigns"]
        }
        for experiment, arm, currency, *counts in data["arms"] if arms else ():
            if len(counts) != 4:
                raise ValueError(f"arm {experiment}/{arm}: 4 counts expected, got {counts}")
            totals._add_arm((str(experiment), str(arm), str(currency)), [int(n) for n in counts])
        latency = data["latency"]
        if latency["bounds_s"]:
            totals._add_latency(latency)
        totals.models = {
            (str(m["role"]), str(m["model"])): _ModelCounts.read(m) for m in data["models"]
        }
        return totals

    def _add_arm(self, key: tuple[str, str, str], counts: Sequence[int]) -> None:
        slot = self.arms.setdefault(key, [0, 0, 0, 0])
        for i, count in enumerate(counts):  # as many as the slot: callers check
            slot[i] += count

    def _add_latency(self, latency: Mapping[str, Any]) -> None:
        bounds = tuple(float(b) for b in latency["bounds_s"])
        counts = [int(c) for c in latency["counts"]]
        if not self.latency_bounds:
            self.latency_bounds, self.latency_counts = bounds, [0] * (len(bounds) + 1)
        if bounds != self.latency_bounds:
            # Another build's buckets: each count goes to the first bucket holding its bound.
            uppers = [*bounds, math.inf]
            moved = [0] * (len(self.latency_bounds) + 1)
            for upper, count in zip(uppers, counts, strict=True):
                moved[bisect.bisect_left(self.latency_bounds, upper)] += count
            counts = moved
        self.latency_counts = [a + b for a, b in zip(self.latency_counts, counts, strict=True)]
        self.latency_sum += float(latency["sum_s"])


class _EngineCollector:
    """The custom collector: everything read from the engines (and the decision log) at
    scrape time."""

    def __init__(
        self, max_campaigns: int, psi_window: float | None, clock: Callable[[], float]
    ) -> None:
        self._lock = threading.Lock()
        self._max_campaigns = max_campaigns
        self._labels: dict[str, str] = {}  # campaign id -> its own label, while there is room
        self._engine: Engine | None = None
        self._loaded_at = math.nan
        self._retiring: list[Engine] = []  # engines replaced since the last scrape
        self._retained = _Totals()  # what replaced engines counted
        self._psi_window = psi_window
        self._clock = clock
        # Per (role, model): (time, counts then) marks; the oldest is the PSI window's start.
        self._marks: dict[tuple[str, str], deque[tuple[float, _ModelCounts | None]]] = {}
        self._log_stats: Callable[[], Mapping[str, int]] | None = None
        self._log_retained: dict[str, int] = dict.fromkeys(DECISION_LOG_OUTCOMES, 0)

    # -- state changes --

    def track(self, engine: Engine) -> None:
        with self._lock:
            if engine is self._engine:
                return
            keys = _model_keys(engine.metrics())
            self._retire_all(keys)  # an engine replaced before any scrape: read it now
            if self._engine is not None:
                self._retiring.append(self._engine)
            self._engine = engine
            self._loaded_at = time.time()
            for campaign in engine.config.campaigns:
                self._label(campaign.id)
            # Only the served models' histograms are exported: forget the others.
            self._retained.models = {k: v for k, v in self._retained.models.items() if k in keys}
            self._marks = {k: v for k, v in self._marks.items() if k in keys}
            now = self._clock()
            for key in keys:
                self._marks.setdefault(key, deque([(now, None)]))

    def track_decision_log(self, stats: Callable[[], Mapping[str, int]] | None) -> None:
        with self._lock:
            # `!=`, not `is not`: each `writer.stats` is a new bound method, equal to the last.
            if self._log_stats is not None and stats != self._log_stats:
                for outcome, count in self._read_log().items():
                    if outcome in self._log_retained:
                        self._log_retained[outcome] += count
            self._log_stats = stats

    def campaign_label(self, campaign: str) -> str:
        """The label ``campaign`` is exported under (its id, or ``_other`` past the cap)."""
        with self._lock:
            return self._label(campaign)

    def _label(self, campaign: str) -> str:
        label = self._labels.get(campaign)
        if label is None:
            if len(self._labels) >= self._max_campaigns:
                return OTHER_CAMPAIGN
            label = self._labels[campaign] = campaign
        return label

    def _retire_all(self, keys: set[tuple[str, str]]) -> None:
        for old in self._retiring:
            currency = old.config.bidder.currency
            self._retained.add(old.metrics(), label=self._label, currency=currency, models=keys)
        self._retiring.clear()

    def _read_log(self) -> dict[str, int]:
        if self._log_stats is None:
            return {}
        try:
            stats = self._log_stats()
        except Exception:  # a failing log must not take the whole page down
            log.exception("the decision log's stats() failed")
            return {}
        return {k: int(stats[k]) for k in (*DECISION_LOG_OUTCOMES, "pending") if k in stats}

    # -- the scrape --

    def describe(self) -> Iterator[Metric]:
        """The families, without samples: the registry refuses a name registered twice."""
        return _engine_families(
            _Totals(), {}, has_engine=False, loaded_at=None, log_attached=False, log_counts={}
        )

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            reading = self._read()
            drifts = {}
            if reading.engine is not None:
                drifts = self._drifts(reading.engine, reading.totals)
        return reading.families(reading.totals, drifts)

    def read(self) -> _Reading:
        """What this process counted, now."""
        with self._lock:
            return self._read()

    def merge(
        self, reading: _Reading, workers: Iterable[_Totals]
    ) -> tuple[_Totals, dict[tuple[str, str], monitoring.ModelDrift]]:
        """The totals of every worker (``reading``'s among them) summed, in the order given,
        under this process's campaign labels and for its served models only; their PSI."""
        with self._lock:
            served = set(reading.totals.models)
            totals = _Totals()
            for other in workers:
                totals.merge(other, label=self._relabel, models=served)
            drifts = {}
            if reading.engine is not None:
                drifts = self._drifts(reading.engine, totals)
        return totals, drifts

    def _relabel(self, label: str) -> str:
        """Another worker's campaign label, under this process's cap."""
        return label if label == OTHER_CAMPAIGN else self._label(label)

    def _read(self) -> _Reading:
        engine = self._engine
        snapshot = engine.metrics() if engine is not None else None
        self._retire_all(_model_keys(snapshot) if snapshot is not None else set())
        totals = self._retained.copy()
        if engine is not None and snapshot is not None:
            currency = engine.config.bidder.currency
            totals.add(snapshot, label=self._label, currency=currency)
        log_counts: dict[str, int] = dict(self._log_retained)
        for outcome, count in self._read_log().items():
            log_counts[outcome] = log_counts.get(outcome, 0) + count
        attached = self._log_stats is not None
        return _Reading(engine, totals, self._loaded_at, attached, log_counts)

    def _drifts(
        self, engine: Engine, totals: _Totals
    ) -> dict[tuple[str, str], monitoring.ModelDrift]:
        """PSI per served model over the window, from the marks kept per model."""
        now = self._clock()
        window = self._psi_window
        found = {}
        for key, current in totals.models.items():
            role, model = key
            served = engine.models.get(role)
            reference = None if served is None else served.reference
            marks = self._marks.setdefault(key, deque([(now, None)]))
            if window is not None:
                # Keep one mark at or before the window's start; it is where the window begins.
                while len(marks) >= 2 and marks[1][0] <= now - window:
                    marks.popleft()
                if now - marks[-1][0] >= window / 10:
                    marks.append((now, current.copy()))
            if reference is None:
                continue
            live = current.copy()
            start = marks[0][1]
            if start is not None:
                live.add(start, -1)
            found[key] = monitoring.model_drift(reference, live.native(model))
        return found


@dataclass(frozen=True, slots=True)
class _Reading:
    """What one process counted at one moment, before it becomes a page."""

    engine: Engine | None
    totals: _Totals
    loaded_at: float  # when the engine was tracked; nan before that
    log_attached: bool
    log_counts: dict[str, int]  # the decision log's outcomes, and pending

    def families(
        self, totals: _Totals, drifts: Mapping[tuple[str, str], monitoring.ModelDrift]
    ) -> Iterator[Metric]:
        return _engine_families(
            totals,
            drifts,
            has_engine=self.engine is not None,
            loaded_at=self.loaded_at,
            log_attached=self.log_attached,
            log_counts=self.log_counts,
        )


def _engine_families(
    totals: _Totals,
    drifts: Mapping[tuple[str, str], monitoring.ModelDrift],
    *,
    has_engine: bool,
    loaded_at: float | None,
    log_attached: bool,
    log_counts: Mapping[str, int],
) -> Iterator[Metric]:
    """The page but the HTTP layer's counters: the engines' series only once an engine was
    tracked, the decision log's once one was attached (or has counted)."""
    for name, documentation, count in (
        ("bidcore_requests", "Bid requests decided, invalid ones included", totals.requests),
        ("bidcore_bids", "Bid requests answered with a bid", totals.bids),
        ("bidcore_imp_bids", "Impressions bid on", totals.imp_bids),
    ):
        family = CounterMetricFamily(name, documentation, labels=[])
        if has_engine:
            family.add_metric([], count)
        yield family
    no_bids = CounterMetricFamily("bidcore_no_bids", "No-bids, by reason", labels=["reason"])
    for reason, count in sorted(totals.no_bids.items()):
        no_bids.add_metric([reason], count)
    yield no_bids

    imps = CounterMetricFamily(
        "bidcore_campaign_imp_bids", "Impressions bid on, by campaign", labels=["campaign"]
    )
    value = CounterMetricFamily(
        "bidcore_campaign_bid_value",
        "What the bids offered: the sum of their prices / 1000 (prices are CPM), in units "
        "of the currency label, by campaign",
        labels=["campaign", "currency"],
    )
    per_label: dict[str, int] = {}
    for (campaign, currency), (count, micros) in sorted(totals.campaigns.items()):
        per_label[campaign] = per_label.get(campaign, 0) + count
        value.add_metric([campaign, currency], micros / _MICROS_PER_CPM_UNIT)
    for campaign, count in sorted(per_label.items()):
        imps.add_metric([campaign], count)
    yield imps
    yield value

    yield from _arm_families(totals.arms)

    latency = HistogramMetricFamily(
        "bidcore_decision_seconds",
        "Duration of the native decision (parse, targeting, scoring, pricing, response)",
        labels=[],
    )
    if totals.latency_bounds:
        latency.add_metric(
            [], _cumulative(totals.latency_bounds, totals.latency_counts), totals.latency_sum
        )
    yield latency

    scores = HistogramMetricFamily(
        "bidcore_model_score",
        "Scores of each model, on the bins of its artifact's reference histogram",
        labels=["role", "model"],
    )
    for (role, model), counts in sorted(totals.models.items()):
        edges = counts.score.edges
        scores.add_metric([role, model], _cumulative(edges[1:-1], counts.score.counts), None)
    yield scores

    psi = GaugeMetricFamily(
        "bidcore_model_psi",
        "Population stability index of the live score (feature=score) and features "
        "against the model artifact's reference histograms: < 0.1 stable, 0.1-0.25 "
        "moderate, > 0.25 significant",
        labels=["role", "model", "feature"],
    )
    for (role, model), found in sorted(drifts.items()):
        for feature, value_ in [(monitoring.SCORE, found.score), *found.features.items()]:
            if not math.isnan(value_):
                psi.add_metric([role, model, feature], value_)
    yield psi

    yield GaugeMetricFamily(
        "bidcore_engine_loaded_timestamp_seconds",
        "When the engine being served was put in service (seconds since the epoch)",
        value=loaded_at if has_engine else None,
    )

    records = CounterMetricFamily(
        "bidcore_decision_log_records",
        "Decision-log records: logged (queued), dropped (queue full), written, lost",
        labels=["outcome"],
    )
    if log_attached or any(log_counts.values()):
        for outcome in DECISION_LOG_OUTCOMES:
            records.add_metric([outcome], log_counts.get(outcome, 0))
    yield records
    yield GaugeMetricFamily(
        "bidcore_decision_log_pending",
        "Decision-log records logged and not yet written",
        value=log_counts.get("pending"),
    )


def _arm_families(arms: Mapping[tuple[str, str, str], Sequence[int]]) -> Iterator[Metric]:
    """The experiment arms' counters: counts summed over the bidder's currencies, the value
    bid per currency."""
    labels = ["experiment", "arm"]
    counters = [
        CounterMetricFamily(name, documentation, labels=labels)
        for name, documentation in (
            ("bidcore_experiment_requests", "Bid requests assigned to each experiment arm"),
            ("bidcore_experiment_bids", "Requests of each experiment arm answered with a bid"),
            ("bidcore_experiment_imp_bids", "Impressions bid on, by experiment arm"),
        )
    ]
    value = CounterMetricFamily(
        "bidcore_experiment_bid_value",
        "What the bids offered: the sum of their prices / 1000 (prices are CPM), in units "
        "of the currency label, by experiment arm",
        labels=[*labels, "currency"],
    )
    per_arm: dict[tuple[str, str], list[int]] = {}
    for (experiment, arm, currency), counts in sorted(arms.items()):
        slot = per_arm.setdefault((experiment, arm), [0, 0, 0])
        for i in range(len(slot)):
            slot[i] += counts[i]
        value.add_metric([experiment, arm, currency], counts[3] / _MICROS_PER_CPM_UNIT)
    for (experiment, arm), counts in sorted(per_arm.items()):
        for family, count in zip(counters, counts, strict=True):
            family.add_metric([experiment, arm], count)
    yield from counters
    yield value


def _model_keys(snapshot: Mapping[str, Any]) -> set[tuple[str, str]]:
    return {(role, str(m["model"])) for role, m in snapshot["models"].items()}


def _cumulative(bounds: Iterable[float], counts: list[int]) -> list[tuple[str, float]]:
    """Prometheus buckets (``le``, cumulative count) from per-bin counts: bin ``i`` ends at
    ``bounds[i]``, the last bin (above every bound) is ``+Inf``. Equal bounds are merged."""
    buckets: list[tuple[str, float]] = []
    running = 0
    previous = None
    for bound, count in zip(bounds, counts, strict=False):
        running += count
        le = _le(bound)
        if le == previous:
            buckets[-1] = (le, running)
        else:
            buckets.append((le, running))
        previous = le
    buckets.append(("+Inf", sum(counts)))
    return buckets


# --- Several workers -------------------------------------------------------------------------

_HttpCounts = dict[tuple[str, ...], tuple[float, float | None]]  # labels -> count, created


class _Snapshot:
    """What one worker would export, as it writes it for the others: summable counts and the
    two gauges, which only the workers still running add to."""

    __slots__ = (
        "final",
        "has_engine",
        "http",
        "loaded_at",
        "log_attached",
        "log_counts",
        "totals",
        "written",
    )

    def __init__(
        self,
        *,
        written: float,
        final: bool,
        has_engine: bool,
        loaded_at: float | None,
        totals: _Totals,
        log_attached: bool,
        log_counts: dict[str, int],
        http: dict[str, _HttpCounts],
    ) -> None:
        self.written = written  # time.time() when taken
        self.final = final  # written at shutdown
        self.has_engine = has_engine
        self.loaded_at = loaded_at
        self.totals = totals
        self.log_attached = log_attached
        self.log_counts = log_counts
        self.http = http  # by counter name (_HTTP_COUNTERS)

    def running(self, now: float, interval: float) -> bool:
        """Whether the worker that wrote it still runs, as far as its files tell."""
        return not self.final and now - self.written <= _LIVE_FOR * interval

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "format": _SNAPSHOT_FORMAT,
                "pid": os.getpid(),
                "written": self.written,
                "final": self.final,
                "has_engine": self.has_engine,
                "loaded_at": self.loaded_at,
                "totals": self.totals.dump(),
                "log_attached": self.log_attached,
                "log_counts": self.log_counts,
                "http": {
                    name: [[list(labels), *counts] for labels, counts in series.items()]
                    for name, series in self.http.items()
                },
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> _Snapshot:
        """Raises ``ValueError`` (or ``KeyError``, ``TypeError``, ``AttributeError``) for
        anything but a snapshot :meth:`to_json` wrote."""
        found = json.loads(data)
        if found.get("format") not in _SNAPSHOT_FORMATS_READ:
            formats = " or ".join(str(f) for f in _SNAPSHOT_FORMATS_READ)
            raise ValueError(f"not a format {formats} snapshot")
        loaded_at = found["loaded_at"]
        return cls(
            written=float(found["written"]),
            final=bool(found["final"]),
            has_engine=bool(found["has_engine"]),
            loaded_at=None if loaded_at is None else float(loaded_at),
            totals=_Totals.load(found["totals"], arms=found["format"] >= 2),
            log_attached=bool(found["log_attached"]),
            log_counts={str(k): int(v) for k, v in found["log_counts"].items()},
            http={
                str(name): {
                    tuple(str(v) for v in labels): (
                        float(count),
                        None if created is None else float(created),
                    )
                    for labels, count, created in series
                }
                for name, series in found["http"].items()
            },
        )


class _ServerCollector:
    """The collector of a worker among several: its own counts, taken at the scrape and
    published first, summed with the latest snapshot of every other worker in the shared
    directory (the module's docstring says why the sum never goes back)."""

    def __init__(
        self,
        engines: _EngineCollector,
        counters: Sequence[Counter],
        directory: Path,
        interval: float,
    ) -> None:
        self._engines = engines
        self._counters = counters  # in _HTTP_COUNTERS' order
        self.directory = Path(directory)
        self.interval = interval
        # One publish at a time, each written in the order it was taken: a file only grows.
        # The cache of the other workers' snapshots is kept under it too.
        self._lock = threading.Lock()
        self._pid = 0
        self._name = ""
        self._others: dict[str, tuple[tuple[int, int, int], _Snapshot | None]] = {}
        self._failing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- this worker's snapshot --

    def _file_name(self) -> str:
        """This process's file: the pid, for whoever looks, and a token, so that a later
        worker given the same pid never overwrites an earlier one's counts."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._name = f"{self._pid}-{secrets.token_hex(4)}.json"
        return self._name

    def snapshot(self, *, final: bool = False) -> tuple[_Reading, _Snapshot]:
        reading = self._engines.read()
        http = {
            name: _counter_values(counter, labels)
            for (name, _, labels), counter in zip(_HTTP_COUNTERS, self._counters, strict=True)
        }
        snapshot = _Snapshot(
            written=time.time(),
            final=final,
            has_engine=reading.engine is not None,
            loaded_at=reading.loaded_at if reading.engine is not None else None,
            totals=reading.totals,
            log_attached=reading.log_attached,
            log_counts=reading.log_counts,
            http=http,
        )
        return reading, snapshot

    def publish(self, *, final: bool = False) -> tuple[_Reading, _Snapshot]:
        """Take this worker's snapshot and write it (a failure is logged, once until the
        next success)."""
        with self._lock:
            reading, snapshot = self.snapshot(final=final)
            name = self._file_name()
            temporary = self.directory / f".{name}.tmp"
            try:
                temporary.write_bytes(snapshot.to_json())
                os.replace(temporary, self.directory / name)
            except OSError as err:
                if not self._failing:
                    log.error("cannot publish this worker's metrics to %s: %s", self.directory, err)
                self._failing = True
            else:
                self._failing = False
        return reading, snapshot

    def start(self) -> None:
        if self._thread is not None:
            return
        self.publish()  # at once: the other workers count this one from its start
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name="bidcore-metrics-publisher", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.publish()
            except Exception:  # the thread must go on: the next one may work
                log.exception("publishing this worker's metrics failed")

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join()
        self.publish(final=True)

    # -- the others' --

    def _read_others(self) -> list[tuple[str, _Snapshot]]:
        """The latest snapshot of every other worker, by file name; a file that did not change
        since the last scrape is not read again."""
        own = self._file_name()
        found: list[tuple[str, _Snapshot]] = []
        with self._lock:
            try:
                entries = list(os.scandir(self.directory))
            except OSError as err:
                log.error("cannot read the other workers' metrics in %s: %s", self.directory, err)
                return found
            seen = set()
            for entry in entries:
                name = entry.name
                if name == own or name.startswith(".") or not name.endswith(".json"):
                    continue
                try:
                    stat = entry.stat()
                except OSError:  # gone since the listing
                    continue
                seen.add(name)
                key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
                cached = self._others.get(name)
                if cached is None or cached[0] != key:
                    cached = key, self._read_snapshot(Path(entry.path))
                    self._others[name] = cached
                if cached[1] is not None:
                    found.append((name, cached[1]))
            for gone in self._others.keys() - seen:
                del self._others[gone]
        return found

    @staticmethod
    def _read_snapshot(path: Path) -> _Snapshot | None:
        try:
            return _Snapshot.from_json(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            log.error("%s is not a worker's metrics snapshot, left out: %s", path, err)
            return None

    # -- the scrape --

    def describe(self) -> Iterator[Metric]:
        yield from self._engines.describe()
        yield from _http_families([])

    def collect(self) -> Iterator[Metric]:
        reading, own = self.publish()  # before reading the others': see the module docstring
        workers = sorted([(self._file_name(), own), *self._read_others()], key=lambda w: w[0])
        snapshots = [snapshot for _, snapshot in workers]
        totals, drifts = self._engines.merge(reading, (s.totals for s in snapshots))
        now = time.time()
        running = [s for s in snapshots if s is own or s.running(now, self.interval)]
        loads = [s.loaded_at for s in running if s.has_engine and s.loaded_at is not None]
        log_counts: dict[str, int] = {}
        for snapshot in snapshots:
            for outcome in DECISION_LOG_OUTCOMES:
                if outcome in snapshot.log_counts:
                    count = snapshot.log_counts[outcome]
                    log_counts[outcome] = log_counts.get(outcome, 0) + count
        pending = [s.log_counts["pending"] for s in running if "pending" in s.log_counts]
        if pending:
            log_counts["pending"] = sum(pending)
        yield from _engine_families(
            totals,
            drifts,
            has_engine=any(s.has_engine for s in snapshots),
            loaded_at=max(loads) if loads else None,
            log_attached=any(s.log_attached for s in snapshots),
            log_counts=log_counts,
        )
        yield from _http_families(snapshots)


def _counter_values(counter: Counter, labels: Sequence[str]) -> _HttpCounts:
    """A counter's series: count and creation time by label values."""
    counts: dict[tuple[str, ...], float] = {}
    created: dict[tuple[str, ...], float] = {}
    for family in counter.collect():
        for sample in family.samples:
            key = tuple(sample.labels[label] for label in labels)
            if sample.name.endswith("_total"):
                counts[key] = sample.value
            elif sample.name.endswith("_created"):
                created[key] = sample.value
    return {key: (count, created.get(key)) for key, count in counts.items()}


def _http_families(snapshots: Iterable[_Snapshot]) -> Iterator[Metric]:
    """The HTTP layer's counters summed over the workers (created: the earliest)."""
    snapshots = list(snapshots)
    for name, documentation, labels in _HTTP_COUNTERS:
        counts: dict[tuple[str, ...], float] = {}
        created: dict[tuple[str, ...], float] = {}
        for snapshot in snapshots:
            for key, (count, since) in snapshot.http.get(name, {}).items():
                counts[key] = counts.get(key, 0.0) + count
                if since is not None:
                    created[key] = min(since, created.get(key, since))
        family = CounterMetricFamily(name, documentation, labels=list(labels))
        for key, count in counts.items():
            family.add_metric(list(key), count, created=created.get(key))
        yield family
