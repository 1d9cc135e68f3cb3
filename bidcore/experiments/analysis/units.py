"""Per-unit sums of an experiment: decision, notice, click and conversion records joined.

The analysis works on one row per *unit* (whatever was randomised) and the arm it was assigned:
the counts and amounts of its requests summed. Ratio metrics (win rate, CTR, eCPM, ...) are
ratios of such sums, which is what makes the delta method apply (:mod:`.stats`).

Joins. A :class:`~bidcore.decisionlog.DecisionRecord` carries the arm of each experiment the
request is in (``arms``, by experiment key), its unit in each (``units``) and its imps; a win
or bill :class:`~bidcore.decisionlog.NoticeRecord` joins the imp it names by
``(request, imp)``, and only when its campaign (if any) is the imp's winner. Duplicate notices
of one kind for one imp count once. A click (:class:`ClickRecord`) or a conversion
(:class:`ConversionRecord`) joins an impression the same way; clicks count at most once per
impression. Records that join nothing are counted in :attr:`UnitTable.unmatched`.

Clicks and conversions are not in the decision log yet (the click endpoint arrives later):
until then they come from the caller, as these Structs or, for clicks, as ``(request, imp)``
keys.

Units. A decision record names, per experiment, the unit it was randomised by: ``units``
maps the experiment key to the unit's pseudonymous key (:func:`bidcore.experiments.unit_key`
of the unit id, 16 hex digits). By default that key is the decision's unit, so the decisions of
one user are summed into one row: their outcomes are correlated, and only per-unit sums give
intervals of the right width when an experiment randomises users. A unit seen in two arms of
one experiment (a config change that moved it, say) is left out and counted. Records without
that key (written before the log had ``units``) fall back to the request: each such decision is
a unit of its own, which is right only when the experiment randomises by request id
(:attr:`UnitTable.request_units` counts them, and the analysis notes them). ``unit_of`` (a
decision to its unit id, or ``None`` to leave it out) overrides both.

Money. A notice's ``price_micros`` is a CPM in micros, so an impression costs
``price_micros / 1e9`` currency units (CPM / 1000). ``value`` is what the won impressions were
worth: the conversions' ``value_micros`` when conversions with values are given, else the
engine's own ``value_micros`` of each impression (the model's estimate, in the bidder's
currency).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, TypeAlias

import msgspec
import numpy as np
import numpy.typing as npt

from bidcore.decisionlog import DecisionRecord, NoticeRecord

__all__ = [
    "AnyRecord",
    "ClickRecord",
    "ConversionRecord",
    "SpendSource",
    "UnitTable",
    "unit_table",
]

Floats: TypeAlias = npt.NDArray[np.float64]
Ints: TypeAlias = npt.NDArray[np.intp]
SpendSource: TypeAlias = Literal["auto", "bill", "win"]

_CPM_MICROS: Final = 1e9  # CPM micros per currency unit of one impression
_MICROS: Final = 1e6


class ClickRecord(msgspec.Struct, frozen=True, gc=False):
    """A click on an impression, joined to its decision by ``(request, imp)``.

    Not written by bidcore yet (the click endpoint arrives later); an ad server's click log
    converted to these, or ``(request, imp)`` keys, stand in for it.

    >>> ClickRecord("r1", "1", 1795390260.0)
    ClickRecord(request='r1', imp='1', ts=1795390260.0)
    """

    request: str
    imp: str
    ts: float


class ConversionRecord(msgspec.Struct, frozen=True, gc=False):
    """A conversion attributed to an impression: ``value_micros`` is its worth in micros of
    the currency (not a CPM), ``None`` when it has none.

    >>> ConversionRecord("r1", "1", 1795393800.0, value_micros=25_000_000).value_micros
    25000000
    """

    request: str
    imp: str
    ts: float
    value_micros: int | None = None


AnyRecord: TypeAlias = DecisionRecord | NoticeRecord | ClickRecord | ConversionRecord

COLUMNS: Final = (
    "requests",
    "bid_requests",
    "bids",
    "wins",
    "impressions",
    "spend",
    "value",
    "profit",
    "clicks",
    "conversions",
)
"""Every column a table may have (``clicks`` and ``conversions`` only when given)."""


@dataclass(frozen=True)
class UnitTable:
    """One row per unit: its arm (an index into :attr:`arms`) and its sums.

    :attr:`columns` (float64 arrays, one value per unit): ``requests`` (decisions),
    ``bid_requests`` (decisions with a bid), ``bids`` (imps bid on), ``wins`` (imps won),
    ``impressions`` (imps whose spend is counted: billed, or won, see ``spend_from``),
    ``spend`` and ``value`` (currency units), ``profit`` (value - spend), and ``clicks`` and
    ``conversions`` when they were given. :attr:`latency_ns` holds every decision's latency
    with its arm in :attr:`latency_arm`. :attr:`units` holds the unit ids (unit keys, request
    ids for decisions without one, or ``unit_of``'s ids), ``None`` when every unit is a
    request; :attr:`request_units` counts the units that are requests for want of a unit key.
    :attr:`experiment` is the experiment key the table is of. Build one from arrays with
    :meth:`from_arrays`.

    >>> table = UnitTable.from_arrays(["a", "b", "a"], requests=[1, 2, 1], spend=[0.5, 0, 1])
    >>> table.arms, table.arm.tolist(), table.counts().tolist()
    (('a', 'b'), [0, 1, 0], [2, 1])
    """

    arms: tuple[str, ...]
    arm: Ints
    columns: Mapping[str, Floats]
    units: tuple[str, ...] | None = None
    latency_ns: Floats = field(default_factory=lambda: np.zeros(0))
    latency_arm: Ints = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    experiment: str | None = None
    currency: str | None = None
    value_source: Literal["conversions", "bids"] = "bids"
    unmatched: Mapping[str, int] = field(default_factory=dict)
    request_units: int = 0

    def __post_init__(self) -> None:
        for name, column in self.columns.items():
            if column.shape != self.arm.shape:
                raise ValueError(f"column {name!r}: {column.shape[0]} rows for {self.size} units")
        if self.units is not None and len(self.units) != self.size:
            raise ValueError(f"{len(self.units)} unit ids for {self.size} units")

    @classmethod
    def from_arrays(
        cls,
        arm: Iterable[str],
        *,
        units: Iterable[str] | None = None,
        latency_ns: npt.ArrayLike | None = None,
        latency_arm: Iterable[str] | None = None,
        **columns: npt.ArrayLike,
    ) -> UnitTable:
        """A table from each unit's arm name and columns of per-unit sums (any subset of the
        column names above, any float-convertible arrays); ``latency_ns`` with
        ``latency_arm`` (arm names) are per decision."""
        names = np.asarray(list(arm), dtype=str)
        arms, index = np.unique(names, return_inverse=True)
        cols = {name: np.asarray(values, dtype=np.float64) for name, values in columns.items()}
        latencies = np.zeros(0) if latency_ns is None else np.asarray(latency_ns, np.float64)
        lat_names = np.asarray(list(latency_arm or ()), dtype=str)
        lookup = {str(a): i for i, a in enumerate(arms)}
        lat_arm = np.fromiter((lookup[str(a)] for a in lat_names), np.intp, len(lat_names))
        return cls(
            arms=tuple(str(a) for a in arms),
            arm=index.astype(np.intp),
            columns=cols,
            units=None if units is None else tuple(units),
            latency_ns=latencies,
            latency_arm=lat_arm,
        )

    @property
    def size(self) -> int:
        """The number of units."""
        return int(self.arm.shape[0])

    def counts(self) -> Ints:
        """Units per arm, in the order of :attr:`arms`."""
        return np.bincount(self.arm, minlength=len(self.arms)).astype(np.intp)

    def aligned(self, other: UnitTable) -> dict[str, Floats]:
        """``other``'s columns (a pre-period table, say) in this table's unit order: a unit
        ``other`` lacks gets zeros. Both tables need unit ids."""
        if self.units is None or other.units is None:
            raise ValueError("joining two tables needs unit ids in both")
        position = {unit: i for i, unit in enumerate(other.units)}
        rows = np.fromiter((position.get(u, -1) for u in self.units), np.intp, self.size)
        found = rows >= 0
        out: dict[str, Floats] = {}
        for name, column in other.columns.items():
            values = np.zeros(self.size)
            values[found] = column[rows[found]]
            out[name] = values
        return out


def unit_table(
    records: Iterable[AnyRecord],
    *,
    experiment: str | None,
    unit_of: Callable[[DecisionRecord], str | None] | None = None,
    clicks: Iterable[ClickRecord | tuple[str, str]] | None = None,
    include_test: bool = False,
    spend_from: SpendSource = "auto",
    fx: Mapping[str, float] | None = None,
) -> UnitTable:
    """The per-unit sums of ``records`` for the arms of ``experiment`` (an experiment key, as
    in the decisions' ``arms``).

    Decisions without an arm in ``experiment`` (outside it), without a request id (refused
    bodies) or marked ``test`` (unless ``include_test``) are left out. ``experiment=None`` takes
    every decision with one arm named ``""``: a pre-period table for CUPED. A decision's unit is
    its ``units[experiment]`` (the unit's key), or the request when it has none (an older
    record: each such decision is a unit); ``unit_of`` overrides both, giving a decision's unit
    id (``None``: leave it out). A unit seen in two arms is left out (counted in
    ``unmatched["units_in_two_arms"]``).

    Spend is counted from bill notices, or from win notices when ``spend_from="win"``;
    ``"auto"`` takes bills when there are any, else wins. Amounts in several currencies need
    ``fx``: currency units of the report per unit of each currency.

    >>> from bidcore.decisionlog import ImpRecord
    >>> imp = ImpRecord(imp="1", campaign="c1", creative=None, deal=None, price_micros=2_000_000,
    ...                 value_micros=3_000_000, floor_micros=None, reason=None, scores={},
    ...                 features={})
    >>> decision = DecisionRecord(v=1, ts=0.0, request="r1", bid=True, reason=None, nbr=None,
    ...     error=None, currency="USD", test=False, latency_ns=9000, arms={"ctr-v7": "b"},
    ...     units={"ctr-v7": "af63dc4c8601ec8c"}, models={}, imps=[imp])
    >>> win = NoticeRecord(v=1, kind="win", ts=1.0, request="r1", imp="1", campaign="c1",
    ...     creative=None, price_micros=1_500_000, currency="USD", loss_reason=None,
    ...     min_to_win_micros=None)
    >>> table = unit_table([decision, win, ClickRecord("r1", "1", 2.0)], experiment="ctr-v7")
    >>> table.units
    ('af63dc4c8601ec8c',)
    >>> {name: float(column[0]) for name, column in table.columns.items()}  # doctest: +NORMALIZE_WHITESPACE
    {'requests': 1.0, 'bid_requests': 1.0, 'bids': 1.0, 'wins': 1.0, 'impressions': 1.0,
     'spend': 0.0015, 'value': 0.003, 'profit': 0.0015, 'clicks': 1.0}
    """  # noqa: E501
    joiner = _Joiner(experiment, unit_of, include_test)
    notices: list[NoticeRecord] = []
    click_keys: set[tuple[str, str]] | None = None
    conversions: list[ConversionRecord] = []
    for record in records:
        if isinstance(record, DecisionRecord):
            joiner.add_decision(record)
        elif isinstance(record, NoticeRecord):
            if record.kind != "loss":
                notices.append(record)
        elif isinstance(record, ClickRecord):
            click_keys = set() if click_keys is None else click_keys
            click_keys.add((record.request, record.imp))
        elif isinstance(record, ConversionRecord):
            conversions.append(record)
        else:  # pragma: no cover - the type says it cannot happen
            raise TypeError(f"not a record: {type(record).__name__}")
    if clicks is not None:
        click_keys = set() if click_keys is None else click_keys
        for click in clicks:
            click_keys.add((click.request, click.imp) if isinstance(click, ClickRecord) else click)
    return joiner.table(notices, click_keys, conversions, spend_from, fx)


class _Joiner:
    """Accumulates decisions (per-decision and per-imp lists), then joins the rest."""

    def __init__(
        self,
        experiment: str | None,
        unit_of: Callable[[DecisionRecord], str | None] | None,
        include_test: bool,
    ) -> None:
        self.experiment = experiment
        self.unit_of = unit_of
        self.include_test = include_test
        self.arm_index: dict[str, int] = {}
        # units with an id (a unit key or unit_of's) by id; a request unit has none
        self.unit_index: dict[str, int] = {}
        self.unit_id: list[str] = []  # per unit, its id (a request unit: the request id)
        self.unit_arm: list[int] = []
        self.request_units: set[int] = set()
        self.conflicted: set[int] = set()
        # per decision
        self.d_unit: list[int] = []
        self.d_bid: list[bool] = []
        self.d_latency: list[int] = []
        self.d_arm: list[int] = []
        # per imp bid on: (request, imp) -> position in the per-imp lists
        self.imp_key: dict[tuple[str, str], int] = {}
        self.i_unit: list[int] = []
        self.i_campaign: list[str | None] = []
        self.i_value: list[int] = []
        self.i_currency: list[str | None] = []

    def add_decision(self, record: DecisionRecord) -> None:
        if record.request is None or (record.test and not self.include_test):
            return
        arm_name = "" if self.experiment is None else record.arms.get(self.experiment)
        if arm_name is None:
            return
        arm = self.arm_index.setdefault(arm_name, len(self.arm_index))
        if self.unit_of is not None:
            unit_id = self.unit_of(record)
            if unit_id is None:
                return
        else:  # the unit's key; None in records written before the log had units
            unit_id = None if self.experiment is None else record.units.get(self.experiment)
        if unit_id is None:  # the request is the unit: a unit per decision, even for a repeat
            unit = len(self.unit_arm)
            self.unit_arm.append(arm)
            self.unit_id.append(record.request)
            self.request_units.add(unit)
        else:
            unit = self.unit_index.setdefault(unit_id, len(self.unit_arm))
            if unit == len(self.unit_arm):
                self.unit_arm.append(arm)
                self.unit_id.append(unit_id)
            elif self.unit_arm[unit] != arm:
                self.conflicted.add(unit)
        self.d_unit.append(unit)
        self.d_bid.append(record.bid)
        self.d_latency.append(record.latency_ns)
        self.d_arm.append(arm)
        for imp in record.imps:
            if imp.price_micros is None:
                continue
            self.imp_key[(record.request, imp.imp)] = len(self.i_unit)
            self.i_unit.append(unit)
            self.i_campaign.append(imp.campaign)
            self.i_value.append(imp.value_micros or 0)
            self.i_currency.append(record.currency)

    def table(
        self,
        notices: list[NoticeRecord],
        click_keys: set[tuple[str, str]] | None,
        conversions: list[ConversionRecord],
        spend_from: SpendSource,
        fx: Mapping[str, float] | None,
    ) -> UnitTable:
        n_imps = len(self.i_unit)
        unmatched = {"notices": 0, "clicks": 0, "conversions": 0}
        won = np.zeros(n_imps, dtype=bool)
        billed = np.zeros(n_imps, dtype=bool)
        win_price = np.zeros(n_imps)
        bill_price = np.zeros(n_imps)
        price_currency: dict[str, list[str | None]] = {
            "win": list(self.i_currency),
            "bill": list(self.i_currency),
        }
        for notice in notices:
            position = self._imp_of(notice.request, notice.imp)
            campaign = None if position is None else self.i_campaign[position]
            if position is None or (notice.campaign is not None and notice.campaign != campaign):
                unmatched["notices"] += 1
                continue
            flags, prices = (won, win_price) if notice.kind == "win" else (billed, bill_price)
            if flags[position]:
                continue  # a repeated notice counts once
            flags[position] = True
            prices[position] = notice.price_micros or 0
            if notice.currency is not None:
                price_currency[notice.kind][position] = notice.currency
        source = spend_from if spend_from != "auto" else ("bill" if billed.any() else "win")
        shown, price = (billed, bill_price) if source == "bill" else (won, win_price)
        rates, currency = _rates(price_currency[source], shown, fx)
        spend = price * rates / _CPM_MICROS

        clicked = np.zeros(n_imps)
        if click_keys is not None:
            for request, imp in click_keys:
                position = self._imp_of(request, imp)
                if position is None or not shown[position]:
                    unmatched["clicks"] += 1
                else:
                    clicked[position] = 1.0
        converted = np.zeros(n_imps)
        conversion_value = np.zeros(n_imps)
        valued = False
        for conversion in conversions:
            position = self._imp_of(conversion.request, conversion.imp)
            if position is None or not shown[position]:
                unmatched["conversions"] += 1
                continue
            converted[position] += 1.0
            if conversion.value_micros is not None:
                valued = True
                conversion_value[position] += conversion.value_micros / _MICROS
        value = (
            conversion_value
            if valued
            else np.where(shown, np.asarray(self.i_value, np.float64) / _CPM_MICROS, 0.0)
        )

        n_units = len(self.unit_arm)
        d_unit = np.asarray(self.d_unit, np.intp)
        i_unit = np.asarray(self.i_unit, np.intp)

        def per_decision(weights: npt.ArrayLike | None) -> Floats:
            return np.bincount(d_unit, weights=weights, minlength=n_units).astype(np.float64)

        def per_imp(weights: npt.ArrayLike | None) -> Floats:
            return np.bincount(i_unit, weights=weights, minlength=n_units).astype(np.float64)

        columns = {
            "requests": per_decision(None),
            "bid_requests": per_decision(np.asarray(self.d_bid, np.float64)),
            "bids": per_imp(None),
            "wins": per_imp(won.astype(np.float64)),
            "impressions": per_imp(shown.astype(np.float64)),
            "spend": per_imp(spend),
            "value": per_imp(value),
        }
        columns["profit"] = columns["value"] - columns["spend"]
        if click_keys is not None:
            columns["clicks"] = per_imp(clicked)
        if conversions:
            columns["conversions"] = per_imp(converted)

        keep = np.ones(n_units, dtype=bool)
        keep[list(self.conflicted)] = False
        unmatched["units_in_two_arms"] = len(self.conflicted)
        every_unit_a_request = len(self.request_units) == n_units
        arms = sorted(self.arm_index)  # by name; arm_index numbers them as first seen
        rank = np.zeros(len(arms), np.intp)
        for position, name in enumerate(arms):
            rank[self.arm_index[name]] = position
        unit_arm = rank[np.asarray(self.unit_arm, np.intp)]
        return UnitTable(
            arms=tuple(arms),
            arm=unit_arm[keep],
            columns={name: column[keep] for name, column in columns.items()},
            units=None
            if every_unit_a_request
            else tuple(np.asarray(self.unit_id, object)[keep].tolist()),
            latency_ns=np.asarray(self.d_latency, np.float64),
            latency_arm=rank[np.asarray(self.d_arm, np.intp)],
            experiment=self.experiment,
            currency=currency,
            value_source="conversions" if valued else "bids",
            unmatched=unmatched,
            request_units=len(self.request_units),
        )

    def _imp_of(self, request: str | None, imp: str | None) -> int | None:
        if request is None or imp is None:
            return None
        return self.imp_key.get((request, imp))


def _rates(
    currencies: list[str | None], shown: npt.NDArray[np.bool_], fx: Mapping[str, float] | None
) -> tuple[Floats, str | None]:
    """Per imp, the factor to the report's currency, and that currency's name (when known)."""
    seen = sorted({c for c, s in zip(currencies, shown, strict=True) if s and c is not None})
    if fx is None:
        if len(seen) > 1:
            raise ValueError(f"spend in several currencies ({', '.join(seen)}): pass fx")
        return np.ones(len(currencies)), (seen[0] if seen else None)
    missing = [c for c in seen if c not in fx]
    if missing:
        raise ValueError(f"no fx rate for {', '.join(missing)}")
    rates = [fx[c] if s and c is not None else 1.0 for c, s in zip(currencies, shown, strict=True)]
    return np.asarray(rates, np.float64), None
