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
``bidcore_campaign_imp_bids_total``            impressions bid on, by ``campaign`` and ``arm``
``bidcore_campaign_bid_value_total``           what those bids offered: the sum of their
                                               prices / 1000 (prices are CPM), in units of the
                                               ``currency`` label (the bidder's currency)
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
``bidcore_decision_log_records_total{outcome}`` decision-log records ``logged``, ``dropped``,
                                               ``written``, ``lost`` (when a log is attached)
``bidcore_decision_log_pending``               records logged, not yet written
=============================================  ================================================

Label cardinality is bounded: reasons, routes, notice kinds and outcomes are fixed sets (an
unknown route or kind is counted as ``other``); campaigns get their own label in the order they
are first seen (config order) up to ``max_campaigns`` (200), and every later campaign is
counted under ``campaign="_other"`` for the life of the process, so no series ever changes
meaning. ``arm`` is ``""`` (Prometheus stores it as no label) until the engine reports
experiment arms. Score histograms and PSI exist only for the models of the engine being served.

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
... '''))
>>> metrics = BidderMetrics(engine)
>>> body = b'{"id":"r1","imp":[{"id":"1","banner":{"w":300,"h":250},"bidfloor":0.5}]}'
>>> engine.bid(body) is not None
True
>>> metrics.record_response("bid", 200)
>>> text, content_type = metrics.render()
>>> for line in text.decode().splitlines():
...     if line.startswith(("bidcore_bids_total", "bidcore_campaign", "bidcore_http_responses_t")):
...         print(line)
bidcore_bids_total 1.0
bidcore_campaign_imp_bids_total{arm="",campaign="c1"} 1.0
bidcore_campaign_bid_value_total{arm="",campaign="c1",currency="USD"} 0.002
bidcore_http_responses_total{route="bid",status="200"} 1.0
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
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
    ) -> None:
        if max_campaigns < 0:
            raise ValueError(f"max_campaigns must be >= 0, got {max_campaigns}")
        if psi_window is not None and not psi_window > 0:
            raise ValueError(f"psi_window must be > 0 seconds or None, got {psi_window}")
        self.registry: Final = CollectorRegistry()
        self._routes = frozenset((*routes, *ROUTES_ELSE))
        self._notice_kinds = frozenset(notice_kinds)
        self._engines = _EngineCollector(max_campaigns, psi_window, clock)
        self.registry.register(self._engines)
        self._responses = Counter(
            "bidcore_http_responses",
            "HTTP responses, by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        reloads = Counter(
            "bidcore_reloads", "Engine reloads, by result", ["result"], registry=self.registry
        )
        notices = Counter(
            "bidcore_notices",
            "Win, billing and loss notices, by kind and result",
            ["kind", "result"],
            registry=self.registry,
        )
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

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The ``/metrics`` body and its content type: Prometheus' text format, or the format
        an ``Accept`` header asks for (OpenMetrics 1.0)."""
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
        self.latency_bounds: tuple[float, ...] = ()
        self.latency_counts: list[int] = []
        self.latency_sum = 0.0
        self.models: dict[tuple[str, str], _ModelCounts] = {}  # (role, model id)

    def copy(self) -> _Totals:
        other = _Totals()
        other.requests, other.bids, other.imp_bids = self.requests, self.bids, self.imp_bids
        other.no_bids = dict(self.no_bids)
        other.campaigns = {key: list(v) for key, v in self.campaigns.items()}
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
        return self._families(_Totals(), None, {}, {})

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            engine = self._engine
            snapshot = engine.metrics() if engine is not None else None
            self._retire_all(_model_keys(snapshot) if snapshot is not None else set())
            totals = self._retained.copy()
            drifts = {}
            if engine is not None and snapshot is not None:
                currency = engine.config.bidder.currency
                totals.add(snapshot, label=self._label, currency=currency)
                drifts = self._drifts(engine, totals)
            log_counts: dict[str, int] = dict(self._log_retained)
            for outcome, count in self._read_log().items():
                log_counts[outcome] = log_counts.get(outcome, 0) + count
        return self._families(totals, engine, drifts, log_counts)

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

    def _families(
        self,
        totals: _Totals,
        engine: Engine | None,
        drifts: Mapping[tuple[str, str], monitoring.ModelDrift],
        log_counts: Mapping[str, int],
    ) -> Iterator[Metric]:
        """The page; the engines' series only once an engine was tracked."""
        for name, documentation, count in (
            ("bidcore_requests", "Bid requests decided, invalid ones included", totals.requests),
            ("bidcore_bids", "Bid requests answered with a bid", totals.bids),
            ("bidcore_imp_bids", "Impressions bid on", totals.imp_bids),
        ):
            family = CounterMetricFamily(name, documentation, labels=[])
            if engine is not None:
                family.add_metric([], count)
            yield family
        no_bids = CounterMetricFamily("bidcore_no_bids", "No-bids, by reason", labels=["reason"])
        for reason, count in sorted(totals.no_bids.items()):
            no_bids.add_metric([reason], count)
        yield no_bids

        imps = CounterMetricFamily(
            "bidcore_campaign_imp_bids",
            "Impressions bid on, by campaign and experiment arm",
            labels=["campaign", "arm"],
        )
        value = CounterMetricFamily(
            "bidcore_campaign_bid_value",
            "What the bids offered: the sum of their prices / 1000 (prices are CPM), in units "
            "of the currency label, by campaign and experiment arm",
            labels=["campaign", "arm", "currency"],
        )
        per_label: dict[str, int] = {}
        for (campaign, currency), (count, micros) in sorted(totals.campaigns.items()):
            per_label[campaign] = per_label.get(campaign, 0) + count
            value.add_metric([campaign, "", currency], micros / _MICROS_PER_CPM_UNIT)
        for campaign, count in sorted(per_label.items()):
            imps.add_metric([campaign, ""], count)
        yield imps
        yield value

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
            value=self._loaded_at if engine is not None else None,
        )

        records = CounterMetricFamily(
            "bidcore_decision_log_records",
            "Decision-log records: logged (queued), dropped (queue full), written, lost",
            labels=["outcome"],
        )
        if self._log_stats is not None or any(log_counts.values()):
            for outcome in DECISION_LOG_OUTCOMES:
                records.add_metric([outcome], log_counts.get(outcome, 0))
        yield records
        yield GaugeMetricFamily(
            "bidcore_decision_log_pending",
            "Decision-log records logged and not yet written",
            value=log_counts.get("pending"),
        )


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
