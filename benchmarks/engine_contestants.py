"""The bidder ``benchmarks/engine.py`` measures, and the three ways of answering its requests.

The bidder (:func:`typical_config`): 50 campaigns, 45 of them ``cpc`` (their value needs the CTR
model) and 5 ``cpm``, targeted by country, device type, OS, connection type and app bundle so
that about 10 pass targeting for the typical request (:data:`TYPICAL_REQUEST`: one in-app
300x250/320x50 banner imp, ~1 KB, first price, from an Android phone in the USA); first-price
shading on, with one segment for US mobile banners.

The CTR model (:func:`ctr_model_path`): LightGBM, binary, 300 trees x 63 leaves, over
:data:`SPEC_TOML` (12 request features and 3 campaign attributes), trained on rows of the fixture
corpus with campaign attributes drawn like the config's and labels from a fixed logistic
function; trained once and cached in ``.benchmarks/models/``.

The paths:

- bidcore: ``Engine.bid`` (the contestant of ``engine.py`` itself);
- :class:`PurePython`: ``json.loads``, the reference decision of ``bidcore.reference`` (the
  spec read rule by rule) and ``Booster.predict`` on the block of the imp's candidates;
- :class:`BestPython`: what a careful Python bidder would write without bidcore: a msgspec decode
  into small typed Structs, targeting precomputed into per-rule bitmasks (Python ints) so that a
  request costs a few dict lookups and ANDs, the request's features computed once per imp and
  broadcast over the block with numpy into the scorer's preallocated buffer, the fastest model
  scorer Python can call (chosen by measurement in ``engine.py``; here lleaves' compiled entry
  point called through ctypes), the shading grid of every candidate at once in numpy,
  templates split once at load, msgspec to encode. It answers every corpus request as the
  engine does (``engine.py`` checks it on each run).

Both Python paths read ``now`` as the engine does and answer with the same response bytes'
content (``engine.py`` checks it before timing anything).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Protocol
from urllib.parse import quote

import lightgbm
import msgspec
import numpy as np
import numpy.typing as npt

from bidcore import features
from bidcore.config import Campaign, Config, Creative, micros
from bidcore.features import FeatureSpec
from bidcore.features.reference import fnv1a64
from bidcore.openrtb.view import _apply_defaults, _lift_legacy_signals
from bidcore.reference import RoleModel
from bidcore.reference.auction import _decide_imp
from bidcore.reference.gates import bid_currency, is_personal, seat_blocked
from bidcore.reference.response import Won, response
from bidcore.reference.targeting import failed_rule

__all__ = [
    "NOW",
    "SPEC_TOML",
    "TYPICAL_REQUEST",
    "BestPython",
    "BlockScorer",
    "BufferScorer",
    "PurePython",
    "Rows",
    "Scorer",
    "ctr_model_path",
    "typical_config",
]

Rows = npt.NDArray[np.float64]
Scorer = Callable[[Rows], Rows]
"""A block of rows (float64, spec order) to click probabilities."""

NOW: Final = 1_763_800_000.0
"""The request time every contestant is given (a Saturday, 08:26 UTC)."""

SPEC_TOML: Final = """
[[features]]
name = "floor"
number = "imp.bidfloor"
[[features]]
name = "devicetype"
number = "device.devicetype"
[[features]]
name = "connectiontype"
number = "device.connectiontype"
[[features]]
name = "yob"
number = "user.yob"
[[features]]
name = "area"
derived = "banner_area"
[[features]]
name = "hour"
derived = "hour_utc"
[[features]]
name = "weekday"
derived = "weekday_utc"
[[features]]
name = "has_ifa"
derived = "has_ifa"
[[features]]
name = "media"
derived = "media_type"
[[features]]
name = "os"
text = "device.os"
vocabulary = ["iOS", "Android", "ios", "android"]
[[features]]
name = "country"
text = "device.geo.country"
vocabulary = ["USA", "GBR", "FRA", "DEU", "CAN"]
[[features]]
name = "placement"
text = "placement"
buckets = 64
[[features]]
name = "campaign_bid"
campaign = "campaign_bid"
[[features]]
name = "advertiser"
campaign = "advertiser"
[[features]]
name = "campaign_ctr"
campaign = "campaign_ctr"
"""

COUNTRIES: Final = ("USA", "GBR", "FRA", "DEU", "CAN")
BUNDLE: Final = "com.example.puzzle"
ADVERTISERS: Final = 20
TARGET_CPCS: Final = tuple(round(0.6 + 0.1 * k, 1) for k in range(17))
CAMPAIGN_CTRS: Final = tuple(round(0.002 + 0.0003 * k, 4) for k in range(13))

TYPICAL_REQUEST: Final = (
    b'{"id":"7f3a9c2e-41d8-4b6a-9e0f-2c5d8b1a6e43","at":1,"tmax":120,"cur":["USD"],'
    b'"imp":[{"id":"1","tagid":"puzzle-banner-bottom","secure":1,"bidfloor":0.45,'
    b'"bidfloorcur":"USD","banner":{"w":320,"h":50,"format":[{"w":320,"h":50},'
    b'{"w":300,"h":250}],"pos":3,"battr":[3,8],"api":[3,5]},"instl":0}],'
    b'"app":{"id":"a-88412","name":"Puzzle Garden","bundle":"com.example.puzzle",'
    b'"cat":["IAB9","IAB9-30"],"ver":"3.2.1","publisher":{"id":"pub-5521"}},'
    b'"device":{"ua":"Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like '
    b'Gecko) Chrome/119.0 Mobile Safari/537.36","ip":"203.0.113.45","geo":{"lat":37.77,'
    b'"lon":-122.41,"country":"USA","region":"CA","type":2,"utcoffset":-480},'
    b'"devicetype":4,"make":"Google","model":"Pixel 7","os":"android","osv":"13","h":2400,'
    b'"w":1080,"language":"en","connectiontype":2,'
    b'"ifa":"6d92078a-8246-4ba4-ae5b-76104861e7dc","lmt":0},'
    b'"user":{"id":"u-40c1d2","yob":1988},"regs":{"coppa":0,"gdpr":0},'
    b'"bcat":["IAB25","IAB26"],"badv":["blocked.example"],'
    b'"source":{"tid":"7f3a9c2e-41d8-4b6a-9e0f-2c5d8b1a6e43"}}'
)
"""The typical request: one banner imp (320x50, 300x250 allowed), in an app, first price."""


# ---- the bidder ----------------------------------------------------------------------------


def typical_config() -> Config:
    """50 campaigns; about 10 pass targeting for :data:`TYPICAL_REQUEST`.

    Campaigns 0-37 target one country each (round robin), 38-49 any country; on top, spread by
    index: desktop-only (every 4th), one OS (every 6th iOS, every 6th Android), ethernet only
    (every 7th), the typical request's app blocked (every 9th). Campaigns 44 and 49 target
    nothing at all (run of network). Every 10th campaign from 7 on is ``cpm``, the rest ``cpc``.
    """
    markup = (
        "<a href='https://ads.example/c/{campaign}/{creative}?r={request}&i={imp}"
        "&p=${AUCTION_PRICE}'><img src='https://cdn.example/{creative}.png'></a>"
    )
    campaigns: list[dict[str, Any]] = []
    for i in range(50):
        targeting: dict[str, Any] = {}
        if i < 38:
            targeting["countries"] = [COUNTRIES[i % len(COUNTRIES)]]
        if i not in (44, 49):
            targeting["device_types"] = [2] if i % 4 == 3 else [1, 4, 5]
            if i % 6 == 5:
                targeting["os"] = ["iOS"]
            elif i % 6 == 2:
                targeting["os"] = ["Android", "ios"]
            if i % 7 == 6:
                targeting["connection_types"] = [1]
            if i % 9 == 4:
                targeting["bundles_block"] = [BUNDLE]
        sizes = [(300, 250)] + ([(320, 50)] if i % 2 else []) + ([(728, 90)] if i % 3 == 0 else [])
        creatives = [
            {
                "id": f"cr{i}-{w}x{h}",
                "media": "banner",
                "w": w,
                "h": h,
                "adomain": [f"brand{i % ADVERTISERS}.example"],
                "cat": [f"IAB{1 + i % 20}"],
                "attr": [1] if i % 5 else [],
                "markup": markup,
            }
            for w, h in sizes
        ]
        goal = "cpm" if i % 10 == 7 else "cpc"
        target_cpc = TARGET_CPCS[i % len(TARGET_CPCS)]
        campaign: dict[str, Any] = {
            "id": f"c{i:02d}",
            "goal": goal,
            "max_bid": Decimal(f"{6 + i % 7}"),
            "min_bid": Decimal("0.1"),
            "creatives": creatives,
            "targeting": targeting,
            "features": {
                "campaign_bid": target_cpc,
                "advertiser": float(i % ADVERTISERS),
                "campaign_ctr": CAMPAIGN_CTRS[i % len(CAMPAIGN_CTRS)],
            },
        }
        if goal == "cpc":
            campaign["target_cpc"] = Decimal(str(target_cpc))
        else:
            campaign["cpm"] = Decimal(f"{1 + i % 3}.5")
        campaigns.append(campaign)
    data = {
        "bidder": {
            "seat": "bidcore-demo",
            "currency": "USD",
            "nurl": "https://win.example/n?p=${AUCTION_PRICE}&c={campaign}&b={price_bucket}",
            "burl": "https://win.example/b?p=${AUCTION_PRICE}&r={request}&i={imp}",
        },
        "fx": {"base": "USD", "rates": {"EUR": Decimal("1.08"), "GBP": Decimal("1.27")}},
        "models": {"ctr": "ctr.txt"},
        "shading": {
            "enabled": True,
            "center": Decimal("1.2"),
            "scale": 0.6,
            "segments": [
                {
                    "center": Decimal("2"),
                    "scale": 0.5,
                    "countries": ["USA"],
                    "device_types": [4, 5],
                    "media": ["banner"],
                }
            ],
        },
        "campaigns": campaigns,
    }
    return msgspec.convert(data, Config)


# ---- the CTR model -------------------------------------------------------------------------

TREES: Final = 300
LEAVES: Final = 63
TRAINING_REPEATS: Final = 6
"""Each corpus request gives this many training rows (other times, other campaign values)."""
TRAINING_SEED: Final = 11


def _params(seed: int) -> dict[str, Any]:
    return {
        "objective": "binary",
        "num_leaves": LEAVES,
        "learning_rate": 0.05,
        "min_data_in_leaf": 20,
        "max_cat_to_onehot": 4,
        "num_threads": 1,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
    }


def ctr_model_path(bodies: Sequence[bytes], directory: Path) -> Path:
    """The CTR model's text file in ``directory``, trained on first use; the name carries a
    digest of everything that shapes it (spec, parameters, training bodies)."""
    corpus = hashlib.sha256(b"\n".join(bodies)).hexdigest()
    key = json.dumps(
        {
            "spec": SPEC_TOML,
            "params": _params(TRAINING_SEED),
            "trees": TREES,
            "repeats": TRAINING_REPEATS,
            "corpus": corpus,
            "lightgbm": lightgbm.__version__,
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    path = directory / f"engine-ctr-{TREES}x{LEAVES}-{digest}.txt"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        booster = train_ctr_model(bodies, features.loads(SPEC_TOML))
        partial = path.with_suffix(".tmp")
        booster.save_model(partial)
        partial.replace(path)
    return path


def train_ctr_model(bodies: Sequence[bytes], spec: FeatureSpec) -> lightgbm.Booster:
    """300 x 63 on the corpus's feature rows, campaign attributes drawn as the config's are,
    labels from a fixed logistic function of request and campaign features plus noise."""
    rng = np.random.default_rng(TRAINING_SEED)
    blocks = []
    for _ in range(TRAINING_REPEATS):
        times = rng.uniform(NOW - 180 * 86_400, NOW + 180 * 86_400, len(bodies))
        found = features.matrix_with_index(bodies, spec, timestamps=times, skip_invalid=True)
        blocks.append(found.values)
    x = np.vstack(blocks)
    n = len(x)
    col = {name: i for i, name in enumerate(spec.names)}
    x[:, col["campaign_bid"]] = rng.choice(TARGET_CPCS, n)
    x[:, col["advertiser"]] = rng.integers(0, ADVERTISERS, n).astype(np.float64)
    x[:, col["campaign_ctr"]] = rng.choice(CAMPAIGN_CTRS, n)
    f = np.nan_to_num(x)
    advertiser_effect = rng.normal(0.0, 0.5, ADVERTISERS)
    placement_effect = rng.normal(0.0, 0.4, 64)
    country_effect = rng.normal(0.0, 0.3, len(COUNTRIES) + 1)
    logit = (
        -4.0
        + 0.8 * np.log(f[:, col["campaign_ctr"]] / 0.005)
        + 0.15 * f[:, col["campaign_bid"]]
        + advertiser_effect[f[:, col["advertiser"]].astype(int)]
        + placement_effect[f[:, col["placement"]].astype(int) % 64]
        + country_effect[f[:, col["country"]].astype(int) % (len(COUNTRIES) + 1)]
        + 0.3 * (f[:, col["devicetype"]] == 4)
        + 0.25 * f[:, col["has_ifa"]]
        + 0.1 * np.minimum(f[:, col["floor"]], 5.0)
        + 0.3 * np.sin(f[:, col["hour"]] / 24.0 * 2 * np.pi)
        - 0.2 * (f[:, col["weekday"]] >= 5)
        + 0.000002 * np.minimum(f[:, col["area"]], 200_000.0)
        + rng.normal(0.0, 0.3, n)
    )
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.float64)
    data = lightgbm.Dataset(
        x,
        y,
        feature_name=spec.names,
        categorical_feature=spec.categorical_columns(),
        params={"verbose": -1},
        free_raw_data=True,
    )
    return lightgbm.train(_params(TRAINING_SEED), data, num_boost_round=TREES)


# ---- pure Python ---------------------------------------------------------------------------


class PurePython:
    """``json.loads``, the normalization the engine applies (2.5 ``ext`` signals lifted, floor
    and auction-type defaults), then ``bidcore.reference``'s decision rule by rule, scoring each
    imp's candidates with one ``Booster.predict`` call on the block, and ``json.dumps``."""

    def __init__(self, config: Config, booster: lightgbm.Booster, spec: FeatureSpec) -> None:
        self.config = config
        self.booster = booster
        self.models = {"ctr": RoleModel(predict=self.score, spec=spec)}

    def score(self, block: Rows) -> Rows:
        return np.asarray(self.booster.predict(block, num_threads=1), dtype=np.float64)

    def bid(self, body: bytes, *, now: float) -> bytes | None:
        view: dict[str, Any] = json.loads(body)
        _lift_legacy_signals(view)
        _apply_defaults(view)
        config = self.config
        if seat_blocked(view, config.bidder.seat):
            return None
        currency = bid_currency(view, config.bidder.currency, config.fx)
        if currency is None:
            return None
        personal = is_personal(view)
        targeting = {
            c.id: failed_rule(c.targeting, view, personal=personal, now=now)
            for c in config.campaigns
        }
        if all(reason is not None for reason in targeting.values()):
            return None
        won: list[Won] = []
        for index in range(len(view["imp"])):
            _, winner = _decide_imp(view, index, config, self.models, targeting, currency, now=now)
            if winner is not None:
                won.append(winner)
        if not won:
            return None
        return json.dumps(response(view, won, currency, config)).encode()


# ---- best Python ---------------------------------------------------------------------------


class _Format(msgspec.Struct):
    w: int | None = None
    h: int | None = None


class _Banner(msgspec.Struct):
    w: int | None = None
    h: int | None = None
    format: list[_Format] = []
    battr: list[int] = []


class _OtherMedia(msgspec.Struct):
    """Video, audio or native: present or not (this bidder has banner creatives only)."""


class _Deal(msgspec.Struct):
    id: str
    bidfloor: float = 0.0
    bidfloorcur: str = "USD"
    at: int | None = None
    wseat: list[str] | None = None


class _Pmp(msgspec.Struct):
    private_auction: int = 0
    deals: list[_Deal] = []


class _Imp(msgspec.Struct):
    id: str
    banner: _Banner | None = None
    video: _OtherMedia | None = None
    audio: _OtherMedia | None = None
    native: _OtherMedia | None = None
    pmp: _Pmp | None = None
    bidfloor: float = 0.0
    bidfloorcur: str = "USD"
    secure: int | None = None


class _Geo(msgspec.Struct):
    country: str | None = None
    region: str | None = None


class _Device(msgspec.Struct):
    devicetype: int | None = None
    os: str | None = None
    connectiontype: int | None = None
    ifa: str | None = None
    lmt: int | None = None
    geo: _Geo | None = None


class _Publisher(msgspec.Struct):
    domain: str | None = None
    bundle: str | None = None
    cat: list[str] = []


class _Segment(msgspec.Struct):
    id: str | None = None


class _Data(msgspec.Struct):
    segment: list[_Segment] = []


class _User(msgspec.Struct):
    yob: int | None = None
    consent: str | None = None
    data: list[_Data] = []
    ext: Any = None
    """2.5's ``user.ext.consent``: any JSON (an ``ext`` that is not an object is ignored)."""


class _Regs(msgspec.Struct):
    coppa: int | None = None
    gdpr: int | None = None
    ext: Any = None
    """2.5's ``regs.ext.gdpr``; any JSON, as ``user.ext``."""


class _Request(msgspec.Struct):
    id: str
    imp: list[_Imp]
    at: int = 2
    cur: list[str] | None = None
    wseat: list[str] = []
    bseat: list[str] | None = None
    bcat: list[str] | None = None
    badv: list[str] | None = None
    bapp: list[str] | None = None
    site: _Publisher | None = None
    app: _Publisher | None = None
    device: _Device | None = None
    user: _User | None = None
    regs: _Regs | None = None
    test: int = 0


_DECODER: Final = msgspec.json.Decoder(_Request)
_ENCODER: Final = msgspec.json.Encoder()
_TO_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_TO_UPPER: Final = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_PLACEHOLDER: Final = re.compile(
    r"(\$\{[^}]*\})|\{(campaign|creative|imp|request|arm|price_bucket)\}"
)
_GRID: Final = np.arange(33, dtype=np.int64)
_VALUE_CAP: Final = 10**18
_NAN: Final = math.nan


def _compile_template(template: str) -> tuple[tuple[bool, str], ...]:
    """``(is_placeholder, text)`` parts: a template is split once, filled per bid by a join."""
    parts: list[tuple[bool, str]] = []
    at = 0
    for match in _PLACEHOLDER.finditer(template):
        if match.group(2) is None:  # an exchange macro: kept as it is
            continue
        parts.append((False, template[at : match.start()]))
        parts.append((True, match.group(2)))
        at = match.end()
    parts.append((False, template[at:]))
    return tuple(p for p in parts if p[0] or p[1])


def _floor_micros(bidfloor: float) -> int | None:
    if bidfloor >= 1e12:
        return None
    m = math.floor(bidfloor * 1e6) - 1
    while m / 1e6 < bidfloor:
        m += 1
    return m


class _Creative:
    __slots__ = (
        "adomain",
        "attr",
        "bid",
        "cat",
        "creative",
        "id",
        "quoted",
        "secure",
        "size",
        "templates",
    )

    def __init__(self, creative: Creative, campaign: Campaign, config: Config) -> None:
        bidder = config.bidder
        self.creative = creative
        self.id = creative.id
        self.quoted = quote(creative.id, safe="-_.~")
        self.size = (creative.w, creative.h)
        self.cat = frozenset(creative.cat)
        self.adomain = frozenset(creative.adomain)
        self.attr = frozenset(creative.attr)
        notices: dict[str, str] = {}
        for name in ("nurl", "burl", "lurl"):
            own: str | None = getattr(creative, name)
            text = own if own is not None else getattr(bidder, name)
            if text is not None:
                notices[name] = text
        texts = [creative.markup, *notices.values()]
        self.secure = not any(t is not None and "http://" in t for t in texts)
        self.templates = {
            name: _compile_template(text)
            for name, text in (("adm", creative.markup), *notices.items())
            if text is not None
        }
        static: dict[str, Any] = {
            "adid": creative.id,
            "crid": creative.id,
            "cid": campaign.id,
            "adomain": list(creative.adomain),
            "mtype": 1,
            "w": creative.w,
            "h": creative.h,
        }
        if creative.cat:
            static["cat"] = list(creative.cat)
        if creative.attr:
            static["attr"] = list(creative.attr)
        self.bid = static


class BlockScorer(Protocol):
    """Click probabilities of the first ``n`` rows of its own input buffer ``rows``, which the
    caller fills in place: a scorer with preallocated buffers, as a latency-minded caller writes
    it (and the only way to call lleaves' compiled entry point without per-call glue)."""

    rows: Rows

    def __call__(self, n: int) -> Rows: ...


class BufferScorer:
    """A :class:`BlockScorer` over any scorer of whole blocks."""

    def __init__(self, score: Scorer, capacity: int, width: int) -> None:
        self.rows = np.zeros((capacity, width))
        self._score = score

    def __call__(self, n: int) -> Rows:
        return self._score(self.rows[:n])


class BestPython:
    """The fastest bidder this benchmark could write in Python for this config without bidcore
    (see the module's docstring); ``scorer`` scores the rows written into its buffer.

    It implements what the config uses: banner creatives, ``cpm`` and ``cpc`` goals, every
    targeting rule but dayparts, deals, first-price shading with segments, FX. It validates
    nothing beyond the types of the fields it reads (the engine validates every OpenRTB rule it
    relies on), and it is not thread-safe (one scoring buffer).
    """

    def __init__(self, config: Config, spec: FeatureSpec, scorer: BlockScorer) -> None:
        campaigns = config.campaigns
        if scorer.rows.shape != (len(campaigns), len(spec.features)):
            raise ValueError("the scorer's buffer must hold a row per campaign")
        for c in campaigns:
            if c.goal == "cpa" or c.targeting.daypart is not None:
                raise ValueError(f"campaign {c.id}: cpa and dayparts are not implemented here")
            if any(cr.media != "banner" for cr in c.creatives):
                raise ValueError(f"campaign {c.id}: only banner creatives are implemented here")
        self.config = config
        self.scorer = scorer
        self.buffer = scorer.rows
        self.seat = config.bidder.seat
        self.currency = config.bidder.currency
        self.fx = {config.fx.base: 10**9} | {
            code: int(rate.scaleb(9)) for code, rate in config.fx.rates.items()
        }
        self.campaigns = campaigns
        self.all = (1 << len(campaigns)) - 1

        def allow(values: Callable[[Campaign], Sequence[Any]]) -> tuple[int, dict[Any, int]]:
            open_mask, by_value = 0, dict[Any, int]()
            for i, c in enumerate(campaigns):
                listed = values(c)
                if not listed:
                    open_mask |= 1 << i
                for v in set(listed):
                    by_value[v] = by_value.get(v, 0) | 1 << i
            return open_mask, by_value

        def lower(texts: list[str]) -> list[str]:
            return [t.translate(_TO_LOWER) for t in texts]

        self.countries = allow(lambda c: c.targeting.countries)
        self.regions = allow(lambda c: c.targeting.regions)
        self.device_types = allow(lambda c: c.targeting.device_types)
        self.os = allow(lambda c: lower(c.targeting.os))
        self.connection_types = allow(lambda c: c.targeting.connection_types)
        self.domains = allow(lambda c: lower(c.targeting.domains))
        self.bundles = allow(lambda c: c.targeting.bundles)
        self.categories = allow(lambda c: c.targeting.categories)
        self.segments = allow(lambda c: c.targeting.segments)
        self.domains_block = allow(lambda c: lower(c.targeting.domains_block))[1]
        self.bundles_block = allow(lambda c: c.targeting.bundles_block)[1]
        self.categories_block = allow(lambda c: c.targeting.categories_block)[1]

        self.creatives = [[_Creative(cr, c, config) for cr in c.creatives] for c in campaigns]
        self.max_bid = [micros(c.max_bid) for c in campaigns]
        self.min_bid_raw = [micros(c.min_bid) for c in campaigns]
        self.min_bid = [max(m, 1) for m in self.min_bid_raw]
        self.cpm = [micros(c.cpm) if c.cpm is not None else 0 for c in campaigns]
        self.target_cpc = np.array(
            [float(micros(c.target_cpc)) if c.target_cpc is not None else 0.0 for c in campaigns]
        )
        self.needs_ctr = [c.goal == "cpc" for c in campaigns]
        self.deals = [frozenset(c.deals) for c in campaigns]
        self.deals_only = [c.deals_only for c in campaigns]
        self.quoted = [quote(c.id, safe="-_.~") for c in campaigns]

        shading = config.shading
        self.shading = shading.enabled
        self.curve = (micros(shading.center), shading.scale)
        self.segment_curves = [
            (
                frozenset(s.countries),
                frozenset(s.device_types),
                frozenset(s.media),
                (micros(s.center), s.scale),
            )
            for s in shading.segments
        ]

        # Features: request columns computed once per imp, campaign columns from a table.
        self.width = len(spec.features)
        attributes = spec.campaign_attributes
        self.campaign_columns = [i for i, f in enumerate(spec.features) if f.campaign is not None]
        self.campaign_values = np.array(
            [[float(c.features.get(a, _NAN)) for a in attributes] for c in campaigns]
        ).reshape(len(campaigns), len(attributes))
        self.request_features = [
            (i, f.number or f.derived or f.text or "", f)
            for i, f in enumerate(spec.features)
            if f.campaign is None
        ]
        for _, source, f in self.request_features:
            if source not in _SUPPORTED_SOURCES:
                raise ValueError(f"feature {f.name}: source {source} not implemented here")
        self.vocabularies = {
            f.name: {word: float(code) for code, word in enumerate(f.vocabulary)}
            for _, _, f in self.request_features
            if f.vocabulary is not None
        }
        self.hashes: dict[tuple[str, int], float] = {}

    # -- the decision

    def bid(self, body: bytes, *, now: float) -> bytes | None:
        r = _DECODER.decode(body)
        seat = self.seat
        if (r.wseat and seat not in r.wseat) or (r.bseat and seat in r.bseat):
            return None
        currency = self._currency(r.cur)
        if currency is None:
            return None
        device, user, regs = r.device, r.user, r.regs
        geo = device.geo if device is not None else None
        consent = None
        if user is not None:
            consent = user.consent
            if consent is None and isinstance(user.ext, dict):
                consent = user.ext.get("consent")
        coppa = gdpr = None
        if regs is not None:
            coppa = regs.coppa
            gdpr = regs.gdpr
            if gdpr is None and isinstance(regs.ext, dict):
                gdpr = regs.ext.get("gdpr")
        personal = not (
            coppa == 1 or (device is not None and device.lmt == 1) or (gdpr == 1 and not consent)
        )

        # Targeting: one AND per rule.
        country = geo.country.translate(_TO_UPPER) if geo and geo.country is not None else None
        os = device.os.translate(_TO_LOWER) if device and device.os is not None else None
        domain = r.site.domain if r.site is not None else None
        if domain is not None:
            domain = domain.translate(_TO_LOWER)
        bundle = r.app.bundle if r.app is not None else None
        m = self.all
        m &= self.countries[0] | self.countries[1].get(country, 0)
        m &= self.regions[0] | self.regions[1].get(geo.region if geo else None, 0)
        m &= self.device_types[0] | self.device_types[1].get(device and device.devicetype, 0)
        m &= self.os[0] | self.os[1].get(os, 0)
        m &= self.connection_types[0] | self.connection_types[1].get(
            device and device.connectiontype, 0
        )
        m &= self.domains[0] | self.domains[1].get(domain, 0)
        m &= ~self.domains_block.get(domain, 0)
        m &= self.bundles[0] | self.bundles[1].get(bundle, 0)
        m &= ~self.bundles_block.get(bundle, 0)
        holder = r.site if r.site is not None else r.app
        if holder is not None and holder.cat:
            allowed = self.categories[0]
            for cat in holder.cat:
                allowed |= self.categories[1].get(cat, 0)
                m &= ~self.categories_block.get(cat, 0)
            m &= allowed
        else:
            m &= self.categories[0]
        allowed = self.segments[0]
        if personal and user is not None and self.segments[1]:
            for data in user.data:
                for segment in data.segment:
                    allowed |= self.segments[1].get(segment.id, 0)
        m &= allowed
        if not m:
            return None
        targeted = []
        while m:
            low = m & -m
            targeted.append(low.bit_length() - 1)
            m ^= low

        bids = []
        for imp in r.imp:
            found = self._imp(r, imp, targeted, currency, personal, now)
            if found is not None:
                bids.append(found)
        if not bids:
            return None
        answer: dict[str, Any] = {
            "id": r.id,
            "seatbid": [{"bid": bids, "seat": seat}],
            "cur": currency,
        }
        if r.test == 1:
            answer["ext"] = {"bidcore": {"test": 1}}
        return _ENCODER.encode(answer)

    def _currency(self, allowed: list[str] | None) -> str | None:
        if not allowed:
            return self.currency
        allowed = [code.translate(_TO_UPPER) for code in allowed]
        if self.currency in allowed:
            return self.currency
        return next((code for code in allowed if code in self.fx), None)

    def _convert(self, m: int, source: str, target: str, up: bool) -> int | None:
        if m == 0 or source == target:
            return m
        a, b = self.fx.get(source), self.fx.get(target)
        if a is None or b is None:
            return None
        return -(-(m * a) // b) if up else m * a // b

    def _floor(self, priced: _Imp | _Deal, currency: str) -> int | None:
        m = _floor_micros(priced.bidfloor)
        if m is None:
            return None
        return self._convert(m, priced.bidfloorcur.translate(_TO_UPPER), currency, up=True)

    def _imp(
        self,
        r: _Request,
        imp: _Imp,
        targeted: list[int],
        currency: str,
        personal: bool,
        now: float,
    ) -> dict[str, Any] | None:
        banner = imp.banner
        if banner is None:
            return None  # banner creatives only
        sizes = {(banner.w, banner.h), *((f.w, f.h) for f in banner.format)}
        battr, bcat, badv, bapp = banner.battr, r.bcat or (), r.badv or (), r.bapp or ()
        insecure_ok = imp.secure != 1
        pmp = imp.pmp
        open_deals = (
            [d for d in pmp.deals if not d.wseat or self.seat in d.wseat] if pmp is not None else []
        )
        private = pmp is not None and pmp.private_auction == 1
        imp_floor = self._floor(imp, currency)

        # Steps 1-3 per targeted campaign: deal, creative, floor.
        chosen: list[int] = []
        creatives: list[_Creative] = []
        deals: list[_Deal | None] = []
        floors: list[int] = []
        for i in targeted:
            deal = None
            if open_deals and self.deals[i]:
                deal = next((d for d in open_deals if d.id in self.deals[i]), None)
            if deal is None and (private or self.deals_only[i]):
                continue
            for cr in self.creatives[i]:
                if (
                    cr.size in sizes
                    and (insecure_ok or cr.secure)
                    and cr.cat.isdisjoint(bcat)
                    and cr.adomain.isdisjoint(badv)
                    and (cr.creative.bundle is None or cr.creative.bundle not in bapp)
                    and cr.attr.isdisjoint(battr)
                ):
                    break
            else:
                continue
            floor = imp_floor if deal is None else self._floor(deal, currency)
            if floor is None:
                continue
            chosen.append(i)
            creatives.append(cr)
            deals.append(deal)
            floors.append(floor)
        if not chosen:
            return None

        # Step 4: one model call on the block of the cpc candidates.
        needs_ctr = self.needs_ctr
        scored = [i for i in chosen if needs_ctr[i]]
        products: list[float] = []
        if scored:
            n = len(scored)
            block = self.buffer
            block[:n] = self._request_row(r, imp, personal, now)
            block[:n, self.campaign_columns] = self.campaign_values[scored]
            products = (self.scorer(n) * self.target_cpc[scored] * 1000.0).tolist()
        values = []
        next_product = iter(products)
        for i in chosen:
            if not needs_ctr[i]:
                values.append(self.cpm[i])
                continue
            product = next(next_product)
            if product > 0.0:  # NaN and <= 0 are worth 0
                values.append(_VALUE_CAP if product >= _VALUE_CAP else math.floor(product))
            else:
                values.append(0)

        # Steps 5-7: bounds, price, rank.
        bidder = self.currency
        same = currency == bidder
        live: list[int] = []
        lowers: list[int] = []
        uppers: list[int] = []
        for k, i in enumerate(chosen):
            value = min(values[k], self.max_bid[i])
            if same:
                upper, min_bid = value, self.min_bid[i]
            else:
                upper = self._convert(value, bidder, currency, up=False) or 0
                min_bid = self._convert(self.min_bid_raw[i], bidder, currency, up=True) or 0
                min_bid = max(min_bid, 1)
            lower = floors[k] if floors[k] > min_bid else min_bid
            if upper >= lower:
                live.append(k)
                lowers.append(lower)
                uppers.append(upper)
        if not live:
            return None
        prices = uppers
        ranks: list[float] = [float(u) for u in uppers]
        shaded: list[int] = []
        if self.shading:
            for k, at in enumerate(live):
                deal = deals[at]
                if (deal.at if deal is not None and deal.at is not None else r.at) == 1:
                    shaded.append(k)
        if shaded:
            # The 33-point grid of every shaded candidate at once (one row each), in the spec's
            # operations and order, in place where numpy allows it.
            log_center, scale = self._curve(r, currency)
            lo = np.array([lowers[k] for k in shaded], dtype=np.int64)
            up = np.array([uppers[k] for k in shaded], dtype=np.int64)
            grid = (up - lo)[:, None] * _GRID
            grid //= 32
            grid += lo[:, None]
            win = grid / 1e6
            np.log(win, out=win)
            np.subtract(log_center, win, out=win)  # -(ln b - ln center), exactly
            win /= scale
            np.exp(win, out=win)
            win += 1.0
            np.divide(1.0, win, out=win)
            surplus = (up[:, None] - grid) * win
            at = surplus.argmax(axis=1) + np.arange(0, 33 * len(shaded), 33)
            prices = list(uppers)
            for k, price, rank in zip(
                shaded, grid.ravel()[at].tolist(), surplus.ravel()[at].tolist(), strict=True
            ):
                prices[k], ranks[k] = price, rank
        top = max(range(len(live)), key=ranks.__getitem__)
        k = live[top]
        return self._bid(r, imp, chosen[k], creatives[k], deals[k], prices[top])

    def _curve(self, r: _Request, currency: str) -> tuple[float, float]:
        """``ln(center)`` (bid-currency units) and ``scale`` of the banner curve."""
        device = r.device
        geo = device.geo if device is not None else None
        country = geo.country.translate(_TO_UPPER) if geo and geo.country is not None else None
        device_type = device.devicetype if device is not None else None
        center, scale = self.curve
        for countries, device_types, medias, curve in self.segment_curves:
            if (
                (not countries or country in countries)
                and (not device_types or device_type in device_types)
                and (not medias or "banner" in medias)
            ):
                center, scale = curve
                break
        if currency != self.currency:
            center = self._convert(center, self.currency, currency, up=False) or 0
        return math.log(max(center, 1) / 1e6), scale

    def _request_row(self, r: _Request, imp: _Imp, personal: bool, now: float) -> list[float]:
        """The request's columns of a feature row (campaign columns left NaN)."""
        row = [_NAN] * self.width
        device = r.device
        for column, source, f in self.request_features:
            value = _NAN
            if source == "imp.bidfloor":
                value = imp.bidfloor
            elif source == "device.devicetype":
                if device is not None and device.devicetype is not None:
                    value = float(device.devicetype)
            elif source == "device.connectiontype":
                if device is not None and device.connectiontype is not None:
                    value = float(device.connectiontype)
            elif source == "user.yob":
                if personal and r.user is not None and r.user.yob is not None:
                    value = float(r.user.yob)
            elif source == "banner_area":
                banner = imp.banner
                if banner is not None:
                    if banner.w is not None and banner.h is not None:
                        value = float(banner.w) * float(banner.h)
                    elif banner.format:
                        first = banner.format[0]
                        if first.h is not None and first.w is not None:
                            value = float(first.w) * float(first.h)
            elif source == "hour_utc":
                value = float(math.floor(now) % 86_400 // 3_600)
            elif source == "weekday_utc":
                value = float((math.floor(now) // 86_400 + 3) % 7)
            elif source == "has_ifa":
                if personal:
                    value = 1.0 if device is not None and device.ifa else 0.0
            elif source == "media_type":
                for code, present in enumerate((imp.banner, imp.video, imp.audio, imp.native)):
                    if present is not None:
                        value = float(code)
                        break
            else:
                text = None
                if source == "device.os":
                    text = device.os if device is not None else None
                elif source == "device.geo.country":
                    geo = device.geo if device is not None else None
                    text = geo.country if geo is not None else None
                else:  # placement
                    text = r.site.domain if r.site is not None else None
                    if text is None and r.app is not None:
                        text = r.app.bundle
                if text is not None:
                    value = self._encode(f.name, f.vocabulary, f.buckets, text)
            row[column] = value
        return row

    def _encode(
        self, name: str, vocabulary: list[str] | None, buckets: int | None, text: str
    ) -> float:
        if vocabulary is not None:
            return self.vocabularies[name].get(text, float(len(vocabulary)))
        key = (text, buckets or 1)
        found = self.hashes.get(key)
        if found is None:  # memoized: a bidder sees the same apps and sites again and again
            found = float(fnv1a64(text.encode()) % key[1])
            self.hashes[key] = found
        return found

    def _bid(
        self,
        r: _Request,
        imp: _Imp,
        i: int,
        creative: _Creative,
        deal: _Deal | None,
        price: int,
    ) -> dict[str, Any]:
        bucket = min(price, 20_000_000) // 100_000 * 100_000
        values = {
            "campaign": self.quoted[i],
            "creative": creative.quoted,
            "imp": quote(imp.id, safe="-_.~"),
            "request": quote(r.id, safe="-_.~"),
            "arm": "",
            "price_bucket": f"{bucket // 1_000_000}.{bucket % 1_000_000 // 10_000:02d}",
        }
        bid = creative.bid.copy()
        bid["id"] = f"{imp.id}-{self.campaigns[i].id}"
        bid["impid"] = imp.id
        bid["price"] = price / 1e6
        if deal is not None:
            bid["dealid"] = deal.id
        for name, parts in creative.templates.items():
            bid[name] = "".join(
                [values[text] if placeholder else text for placeholder, text in parts]
            )
        return bid


_SUPPORTED_SOURCES: Final = frozenset(
    {
        "imp.bidfloor",
        "device.devicetype",
        "device.connectiontype",
        "user.yob",
        "banner_area",
        "hour_utc",
        "weekday_utc",
        "has_ifa",
        "media_type",
        "device.os",
        "device.geo.country",
        "placement",
    }
)
