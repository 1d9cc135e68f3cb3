"""The bidder's configuration: msgspec Structs read from TOML, JSON or YAML.

Every money amount is a decimal in currency units, read exactly (``1.1`` is 1,100,000 micros,
never a float's approximation) and checked to fit micros; FX rates are decimals with up to 9
places. Errors are :class:`bidcore.ConfigError` and name the key path::

    campaigns[3].targeting.countries: Expected `array`, got `str`

The decision these settings drive is written down rule by rule in ``docs/engine.md``.

>>> config = loads('''
... [bidder]
... seat = "s1"
... [[campaigns]]
... id = "c1"
... goal = "cpm"
... cpm = 1.5
... max_bid = 2
... [[campaigns.creatives]]
... id = "cr1"
... media = "banner"
... w = 300
... h = 250
... adomain = ["shop.example"]
... ''')
>>> (config.bidder.seat, micros(config.campaigns[0].cpm))
('s1', 1500000)
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import math
import re
import zoneinfo
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Literal

import msgspec

from bidcore._amounts import micros, nanos
from bidcore._decoding import Format, decode
from bidcore.errors import ConfigError
from bidcore.experiments.assignment import Experiments

__all__ = [
    "Bidder",
    "Campaign",
    "Config",
    "Creative",
    "Daypart",
    "Experiments",
    "Fx",
    "Models",
    "Pacing",
    "PacingGains",
    "Shading",
    "ShadingSegment",
    "Targeting",
    "load",
    "loads",
    "micros",
    "nanos",
    "schema",
    "zone_transitions",
]

Goal = Literal["cpm", "cpc", "cpa"]
Media = Literal["banner", "video", "audio", "native"]

_CURRENCY: Final = re.compile(r"^[A-Z]{3}$")
_MAX_UTC_OFFSET: Final = 14 * 3_600  # wider than any civil time zone (UTC-12 to UTC+14)
_PLACEHOLDER: Final = re.compile(r"\{([a-z_]+)\}")
PLACEHOLDERS: Final = frozenset(
    {"campaign", "creative", "imp", "request", "arm", "price_bucket", "bid"}
)


def _check_amount(name: str, value: Decimal | None, *, positive: bool = False) -> None:
    if value is None:
        return
    try:
        m = micros(value)
    except (ValueError, decimal.InvalidOperation) as err:
        raise ValueError(f"{name}: {err}") from None
    if m < 0 or (positive and m == 0):
        raise ValueError(f"{name} must be {'positive' if positive else '>= 0'}, got {value}")


def _check_template(name: str, template: str | None) -> None:
    if template is None:
        return
    for found in _PLACEHOLDER.findall(template):
        if found not in PLACEHOLDERS:
            raise ValueError(
                f"{name}: unknown placeholder {{{found}}}; known: "
                + ", ".join(f"{{{p}}}" for p in sorted(PLACEHOLDERS))
            )


class _Struct(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class Bidder(_Struct, frozen=True):
    """Who bids, in which currency, and the notice URL templates every creative inherits."""

    seat: str = "bidcore"
    currency: str = "USD"
    tmax_margin_ms: int = 10
    """Network time kept back from the request's ``tmax`` (used by the server's deadline)."""
    nurl: str | None = None
    burl: str | None = None
    lurl: str | None = None

    def __post_init__(self) -> None:
        if not _CURRENCY.match(self.currency):
            raise ValueError(f"currency must be a 3-letter upper-case code, got {self.currency!r}")
        if not self.seat:
            raise ValueError("seat must not be empty")
        if self.tmax_margin_ms < 0:
            raise ValueError("tmax_margin_ms must be >= 0")
        for name in ("nurl", "burl", "lurl"):
            _check_template(name, getattr(self, name))


class Fx(_Struct, frozen=True):
    """Exchange rates: units of ``base`` per one unit of each currency (``EUR = 1.08``)."""

    base: str = "USD"
    rates: dict[str, Decimal] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _CURRENCY.match(self.base):
            raise ValueError(f"base must be a 3-letter upper-case code, got {self.base!r}")
        for code, rate in self.rates.items():
            if not _CURRENCY.match(code):
                raise ValueError(f"rates: {code!r} is not a 3-letter upper-case code")
            try:
                nanos(rate)
            except (ValueError, decimal.InvalidOperation) as err:
                raise ValueError(f"rates.{code}: {err}") from None

    def rate_nanos(self, currency: str) -> int | None:
        """Base nanos per unit of ``currency``; ``None`` when there is no rate for it."""
        if currency == self.base:
            return 10**9
        rate = self.rates.get(currency)
        return None if rate is None else nanos(rate)


class Models(_Struct, frozen=True):
    """Model artifacts by role (paths relative to the config file) and the scorer to use."""

    ctr: str | None = None
    cvr: str | None = None
    win_rate: str | None = None
    """A regression on the natural log of the CPM (bidder's currency) that wins an imp half the
    time: with it, first-price shading takes each imp's curve center from the model (the
    ``[shading]`` scale stays). Its features may not read campaign attributes."""
    scorer: Literal["native", "compiled"] = "native"


class Daypart(_Struct, frozen=True):
    """Hours (0-23) and weekdays (0 = Monday) in an IANA time zone; empty lists allow all."""

    timezone: str = "UTC"
    hours: list[int] = msgspec.field(default_factory=list)
    weekdays: list[int] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone: unknown time zone {self.timezone!r}") from None
        if any(not 0 <= h <= 23 for h in self.hours):
            raise ValueError("hours must be in 0..23")
        if any(not 0 <= d <= 6 for d in self.weekdays):
            raise ValueError("weekdays must be in 0..6 (0 = Monday)")


class Targeting(_Struct, frozen=True):
    """Request-level rules; an empty list does not restrict (``docs/engine.md``)."""

    countries: list[str] = msgspec.field(default_factory=list)
    regions: list[str] = msgspec.field(default_factory=list)
    device_types: list[int] = msgspec.field(default_factory=list)
    os: list[str] = msgspec.field(default_factory=list)
    connection_types: list[int] = msgspec.field(default_factory=list)
    domains: list[str] = msgspec.field(default_factory=list)
    domains_block: list[str] = msgspec.field(default_factory=list)
    bundles: list[str] = msgspec.field(default_factory=list)
    bundles_block: list[str] = msgspec.field(default_factory=list)
    categories: list[str] = msgspec.field(default_factory=list)
    categories_block: list[str] = msgspec.field(default_factory=list)
    segments: list[str] = msgspec.field(default_factory=list)
    daypart: Daypart | None = None

    def __post_init__(self) -> None:
        for code in self.countries:
            if not _CURRENCY.match(code):  # ISO 3166-1 alpha-3, as OpenRTB sends it
                raise ValueError(f"countries: {code!r} is not a 3-letter upper-case code")


class FrequencyCap(_Struct, frozen=True):
    """At most ``count`` impressions per user in any ``window_seconds``, counted from win or
    bill notices, with bids in flight holding their slot (``docs/budget.md``, Frequency caps).
    Enforced by an engine with a ledger (``[budget] enabled``)."""

    count: int
    window_seconds: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_CAP_COUNT:
            raise ValueError(
                f"frequency_cap.count must be in [1, {MAX_CAP_COUNT}], got {self.count}"
            )
        if not 1 <= self.window_seconds <= MAX_CAP_WINDOW_SECONDS:
            raise ValueError(
                f"frequency_cap.window_seconds must be in [1, {MAX_CAP_WINDOW_SECONDS}], "
                f"got {self.window_seconds}"
            )


# A cap's impressions are kept one timestamp each, per user and campaign: bounded so that one
# entry's memory is too.
MAX_CAP_COUNT: Final = 1000
MAX_CAP_WINDOW_SECONDS: Final = 90 * 86_400


class Creative(_Struct, frozen=True):
    """What a campaign shows. ``markup`` becomes ``adm``; notice templates override the
    bidder's. ``w``/``h`` are required for banners, ``duration`` and ``mime`` for video and
    audio."""

    id: str
    media: Media
    adomain: list[str]
    w: int | None = None
    h: int | None = None
    duration: int | None = None
    mime: str | None = None
    cat: list[str] = msgspec.field(default_factory=list)
    attr: list[int] = msgspec.field(default_factory=list)
    bundle: str | None = None
    markup: str | None = None
    nurl: str | None = None
    burl: str | None = None
    lurl: str | None = None

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("id must not be empty")
        if not self.adomain:
            raise ValueError("adomain must list at least one domain (every bid carries one)")
        if self.media == "banner" and (self.w is None or self.h is None):
            raise ValueError("a banner creative needs w and h")
        if self.media in ("video", "audio") and (self.duration is None or self.mime is None):
            raise ValueError(f"a {self.media} creative needs duration and mime")
        for name in ("w", "h", "duration"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive")
        for name in ("markup", "nurl", "burl", "lurl"):
            _check_template(name, getattr(self, name))

    @property
    def secure(self) -> bool:
        """Whether the markup and notice URLs load nothing over plain http."""
        texts = (self.markup, self.nurl, self.burl, self.lurl)
        return not any(t is not None and "http://" in t for t in texts)


class Campaign(_Struct, frozen=True):
    """A line item: its goal and money (in the bidder's currency), targeting and creatives.

    ``cpm`` is the fixed CPM of a ``cpm`` goal; ``target_cpc`` and ``target_cpa`` are what a
    click or an action is worth for ``cpc`` and ``cpa`` goals. ``features`` are the campaign's
    attributes the models read (``campaign = "name"`` in a feature spec). An ``id`` has no
    ``@``: that character separates an experiment arm's share in a budget account's id.
    """

    id: str
    goal: Goal
    max_bid: Decimal
    creatives: list[Creative]
    cpm: Decimal | None = None
    target_cpc: Decimal | None = None
    target_cpa: Decimal | None = None
    min_bid: Decimal = Decimal(0)
    daily_budget: Decimal | None = None
    deals: list[str] = msgspec.field(default_factory=list)
    deals_only: bool = False
    targeting: Targeting = msgspec.field(default_factory=Targeting)
    frequency_cap: FrequencyCap | None = None
    features: dict[str, float] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("id must not be empty")
        if "@" in self.id:
            # "@" starts an experiment arm's share of a campaign's budget in an account id
            # (campaign@experiment:arm), which names its campaign only while ids have none.
            raise ValueError(f"id must not contain '@', got {self.id!r}")
        wanted = {"cpm": "cpm", "cpc": "target_cpc", "cpa": "target_cpa"}[self.goal]
        if getattr(self, wanted) is None:
            raise ValueError(f"goal {self.goal!r} needs {wanted}")
        for name in ("cpm", "target_cpc", "target_cpa", "min_bid", "daily_budget"):
            _check_amount(name, getattr(self, name))
        _check_amount("max_bid", self.max_bid, positive=True)
        if micros(self.min_bid) > micros(self.max_bid):
            raise ValueError("min_bid must not exceed max_bid")
        if not self.creatives:
            raise ValueError("a campaign needs at least one creative")
        ids = [c.id for c in self.creatives]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(
                f"creatives: ids must be unique within a campaign, repeated: {repeated}"
            )
        if self.deals_only and not self.deals:
            raise ValueError("deals_only needs deals")


class ShadingSegment(_Struct, frozen=True):
    """A win-rate curve for the requests it matches (every non-empty list must match)."""

    center: Decimal
    scale: float
    countries: list[str] = msgspec.field(default_factory=list)
    device_types: list[int] = msgspec.field(default_factory=list)
    media: list[Media] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        _check_amount("center", self.center, positive=True)
        if not (self.scale > 0 and self.scale < float("inf")):
            raise ValueError("scale must be positive and finite")


class Shading(_Struct, frozen=True):
    """First-price shading on the win-rate curve ``w(b) = 1 / (1 + exp(-(ln b - ln center) /
    scale))``, ``b`` and ``center`` in CPM currency units: ``center`` is the price that wins
    half the time, ``scale`` how quickly the win rate rises around it."""

    enabled: bool = True
    center: Decimal = Decimal(1)
    scale: float = 0.5
    segments: list[ShadingSegment] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        _check_amount("center", self.center, positive=True)
        if not (self.scale > 0 and self.scale < float("inf")):
            raise ValueError("scale must be positive and finite")


class PacingGains(_Struct, frozen=True):
    """The pacing controller's PID gains, for an error in shares of the daily budget
    (``bidcore.budget.PidGains``, whose defaults these are; ``docs/pacing.md`` says how they
    were tuned)."""

    kp: float = 40.0
    ki: float = 30.0
    kd: float = 2.0
    derivative_filter_seconds: float = 300.0

    def __post_init__(self) -> None:
        for name in ("kp", "ki", "kd", "derivative_filter_seconds"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {value}")


class Pacing(_Struct, frozen=True):
    """Budget pacing in the server (``bidcore.budget.Pacer``): every campaign with a
    ``daily_budget`` gets a controller that aims its day's spend, counted from billing notices,
    at a target curve (``docs/pacing.md``); with the budget ledger on, so does each experiment
    arm's ``budget_share`` of it. Campaigns without a daily budget are not paced.

    ``mode`` picks what moves: ``throttle`` the share of requests entered, within
    ``[min_throttle, 1]``; ``multiplier`` the bid value, within ``[min_multiplier,
    max_multiplier]``. A day starts at midnight UTC plus ``utc_offset_seconds``. ``profile``
    is 24 hourly weights to spend in proportion to (none: evenly).
    """

    enabled: bool = False
    mode: Literal["throttle", "multiplier"] = "throttle"
    interval_seconds: float = 60.0
    utc_offset_seconds: int = 0
    profile: list[float] | None = None
    min_throttle: float = 0.01
    min_multiplier: float = 0.2
    max_multiplier: float = 1.5
    gains: PacingGains = msgspec.field(default_factory=PacingGains)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.interval_seconds) and 0 < self.interval_seconds <= 86_400):
            raise ValueError(f"interval_seconds must be in (0, 86400], got {self.interval_seconds}")
        if abs(self.utc_offset_seconds) > _MAX_UTC_OFFSET:
            raise ValueError(
                f"utc_offset_seconds must be within +-14 h (50400), got {self.utc_offset_seconds}"
            )
        if self.profile is not None:
            if len(self.profile) != 24:
                raise ValueError(f"profile: need 24 hourly weights, got {len(self.profile)}")
            if any(not (math.isfinite(w) and w >= 0) for w in self.profile):
                raise ValueError("profile: each weight must be finite and >= 0")
            if not math.fsum(self.profile) > 0:
                raise ValueError("profile: at least one weight must be > 0")
        if not 0 <= self.min_throttle <= 1:
            raise ValueError(f"min_throttle must be in [0, 1], got {self.min_throttle}")
        if not 0 < self.min_multiplier <= self.max_multiplier <= 100:
            raise ValueError(
                "multiplier bounds need 0 < min_multiplier <= max_multiplier <= 100, "
                f"got [{self.min_multiplier}, {self.max_multiplier}]"
            )


class Budget(_Struct, frozen=True):
    """The budget ledger in the server (``bidcore.budget.BudgetLedger``, ``docs/budget.md``):
    when enabled, every bid is registered under its ``{bid}`` token, a campaign with a
    ``daily_budget`` holds each bid's cost against the day's money and stops when it cannot
    cover one more, and notices that carry ``bid`` settle the bids (duplicates and unknown
    tokens counted and ignored). ``spend_on`` picks the notice whose price is spent;
    ``bid_ttl_seconds`` is how long a bid waits for its notices before its hold is released;
    ``max_capped_users`` bounds the (user, campaign) entries of the frequency caps.

    ``store`` is where the money comes from: ``local``, each process grants itself the whole
    daily budget (``BudgetLedger``); ``redis``, the processes of a fleet lease slices of it
    from the Redis at ``redis_url`` (``bidcore.budget.SharedBudgetLedger``), under keys
    starting ``key_prefix``. A lease is ``lease_share`` of the campaign's daily budget (at
    least one impression at its ``max_bid``); the shared ledger's thread renews leases and
    reports spend every ``tick_seconds``, and gives up on a call Redis has not answered within
    ``store_timeout_seconds`` (the next tick calls again). ``lease_share`` takes effect at a
    reload, the others at a restart."""

    enabled: bool = False
    spend_on: Literal["bill", "win"] = "bill"
    bid_ttl_seconds: float = 300.0
    max_in_flight: int = 4_000_000
    max_capped_users: int = 1_000_000
    store: Literal["local", "redis"] = "local"
    redis_url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "bidcore:budget"
    lease_share: float = 0.01
    tick_seconds: float = 0.1
    store_timeout_seconds: float = 0.25

    def __post_init__(self) -> None:
        if not (math.isfinite(self.bid_ttl_seconds) and 0 < self.bid_ttl_seconds <= 86_400):
            raise ValueError(f"bid_ttl_seconds must be in (0, 86400], got {self.bid_ttl_seconds}")
        if not 1 <= self.max_in_flight <= 1_000_000_000:
            raise ValueError(f"max_in_flight must be in [1, 10^9], got {self.max_in_flight}")
        if not 1 <= self.max_capped_users <= 1_000_000_000:
            raise ValueError(f"max_capped_users must be in [1, 10^9], got {self.max_capped_users}")
        if not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                f"redis_url must start with redis://, rediss:// or unix://, got {self.redis_url!r}"
            )
        if not self.key_prefix or any(c.isspace() for c in self.key_prefix):
            raise ValueError(f"key_prefix must be non-empty, without spaces: {self.key_prefix!r}")
        if not (math.isfinite(self.lease_share) and 0 < self.lease_share <= 1):
            raise ValueError(f"lease_share must be in (0, 1], got {self.lease_share}")
        if not (math.isfinite(self.tick_seconds) and 0.01 <= self.tick_seconds <= 1):
            raise ValueError(f"tick_seconds must be in [0.01, 1], got {self.tick_seconds}")
        timeout = self.store_timeout_seconds
        if not (math.isfinite(timeout) and 0.01 <= timeout <= 10):
            raise ValueError(f"store_timeout_seconds must be in [0.01, 10], got {timeout}")


class Config(_Struct, frozen=True):
    """A whole bidder: ``Engine(config)`` compiles it into the native engine."""

    campaigns: list[Campaign]
    bidder: Bidder = msgspec.field(default_factory=Bidder)
    fx: Fx = msgspec.field(default_factory=Fx)
    models: Models = msgspec.field(default_factory=Models)
    shading: Shading = msgspec.field(default_factory=Shading)
    experiments: Experiments = msgspec.field(default_factory=Experiments)
    pacing: Pacing = msgspec.field(default_factory=Pacing)
    budget: Budget = msgspec.field(default_factory=Budget)
    version: int = 1

    def __post_init__(self) -> None:
        ids = [c.id for c in self.campaigns]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"campaigns: ids must be unique, repeated: {repeated}")
        if self.fx.rate_nanos(self.bidder.currency) is None and self.fx.rates:
            raise ValueError(
                f"fx has no rate for the bidder's currency {self.bidder.currency} "
                f"(base {self.fx.base})"
            )
        for goal, role in (("cpc", "ctr"), ("cpa", "ctr"), ("cpa", "cvr")):
            if getattr(self.models, role) is None and any(c.goal == goal for c in self.campaigns):
                raise ValueError(f"{goal} campaigns need a {role} model (models.{role})")
        self._check_experiments(set(ids))
        if self.budget.enabled and not self._templates_have("{bid}"):
            raise ValueError(
                "budget: enabled, but no nurl, burl or lurl template has {bid}: "
                "no notice could find its bid"
            )

    def _templates_have(self, placeholder: str) -> bool:
        templates = [self.bidder.nurl, self.bidder.burl, self.bidder.lurl]
        for c in self.campaigns:
            for cr in c.creatives:
                templates += [cr.nurl, cr.burl, cr.lurl]
        return any(t is not None and placeholder in t for t in templates)

    def _check_experiments(self, campaigns: set[str]) -> None:
        for layer, experiment, arm in self.experiments.arms():
            where = f"experiments: {layer.name}/{experiment.key}"
            unknown = sorted(set(experiment.campaigns) - campaigns)
            if unknown:
                raise ValueError(f"{where}: unknown campaigns {unknown}")
            unknown = sorted(set(arm.campaigns or ()) - campaigns)
            if unknown:
                raise ValueError(f"{where}/{arm.name}: unknown campaigns {unknown}")
            for role in arm.models:
                if getattr(self.models, role) is None:
                    raise ValueError(
                        f"{where}/{arm.name}: models.{role} replaces the bidder's {role} model, "
                        f"which it has none of (models.{role})"
                    )


def loads(data: bytes | str, *, format: Format = "toml") -> Config:
    """A config from text. Raises :class:`ConfigError` naming the key path."""
    return decode(data, format, Config)


def load(path: str | Path) -> Config:
    """A config from a ``.toml``, ``.json``, ``.yaml`` or ``.yml`` file (by its suffix)."""
    path = Path(path)
    suffix = path.suffix.lower()
    formats: dict[str, Format] = {".toml": "toml", ".json": "json", ".yaml": "yaml", ".yml": "yaml"}
    if suffix not in formats:
        raise ConfigError(f"{path}: unknown config format {suffix!r} (toml, json, yaml)")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: {err.strerror or err}") from None
    return loads(data, format=formats[suffix])


def schema() -> dict[str, Any]:
    """The JSON Schema of a config, for editors (``bidcore config schema``)."""
    document: dict[str, Any] = _numbers_for_decimals(msgspec.json.schema(Config))
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "bidcore bidder configuration"
    return document


def _numbers_for_decimals(node: Any) -> Any:
    """msgspec describes a Decimal as a string (its JSON encoding); configs write amounts as
    numbers, which ``loads`` reads exactly, so the schema allows both."""
    if isinstance(node, dict):
        if node.get("type") == "string" and node.get("format") == "decimal":
            return {"anyOf": [{"type": "number"}, node]}
        return {key: _numbers_for_decimals(value) for key, value in node.items()}
    if isinstance(node, list | tuple):  # tuple defaults (experiments) become JSON arrays
        return [_numbers_for_decimals(item) for item in node]
    return node


@functools.cache
def zone_transitions(
    timezone: str, *, start_year: int = 2000, end_year: int = 2100
) -> tuple[tuple[int, int], ...]:
    """The UTC offsets of ``timezone`` as ``(from_unix_seconds, offset_seconds)``, sorted, the
    first from ``start_year``: what the native engine looks dayparts up in, since it carries no
    time-zone database. Found by stepping a day at a time and bisecting each change to the
    second. Cached: the table of a zone is built once per process."""
    zone = zoneinfo.ZoneInfo(timezone)

    def offset(t: int) -> int:
        moment = dt.datetime.fromtimestamp(t, tz=dt.UTC).astimezone(zone)
        delta = moment.utcoffset()
        return 0 if delta is None else int(delta.total_seconds())

    t = int(dt.datetime(start_year, 1, 1, tzinfo=dt.UTC).timestamp())
    end = int(dt.datetime(end_year, 1, 1, tzinfo=dt.UTC).timestamp())
    day = 86_400
    current = offset(t)
    table = [(t, current)]
    while t < end:
        after = offset(t + day)
        if after != current:
            low, high = t, t + day  # offset(low) == current, offset(high) == after
            while high - low > 1:
                middle = (low + high) // 2
                if offset(middle) == current:
                    low = middle
                else:
                    high = middle
            table.append((high, after))
            current = after
        t += day
    return tuple(table)
