"""The bidder: ``Engine.bid(body)`` answers a bid request natively, with the GIL released.

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
>>> body = b'{"id":"r1","at":2,"imp":[{"id":"1","banner":{"w":300,"h":250},"bidfloor":0.5}]}'
>>> engine.bid(body)
b'{"id":"r1","seatbid":[{"bid":[{"id":"1-c1","impid":"1","price":2,"adid":"cr1",...
>>> engine.bid(body.replace(b"0.5", b"2.5")) is None  # the floor is above the value
True
>>> engine.explain(body.replace(b"0.5", b"2.5"))["imps"][0]["reason"]
'below_floor'
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import msgspec

from bidcore import config as config_module
from bidcore._core import DecisionLog, Ledger, Limits, NativeEngine
from bidcore.config import Config, micros
from bidcore.errors import ConfigError, ModelError
from bidcore.experiments.assignment import Arm, Layer, compiled_layer
from bidcore.models import Model
from bidcore.models import load as load_model

if TYPE_CHECKING:
    from bidcore.budget.ledger import NoticeOutcome

__all__ = ["DecisionLog", "Engine", "Ledger", "arm_model_key", "arm_models", "plan"]

SCORE_BINS: Final = 20
"""Bins of a model's live score histogram when its artifact has no reference histograms."""


class Engine(NativeEngine):
    """A bidder built from a :class:`bidcore.config.Config` and its models.

    The native state is built once, immutable and shared by every thread; ``bid``, ``bid_many``
    and ``explain`` release the GIL. It stays usable in a child process after ``fork``.
    ``models`` maps roles (``ctr``, ``cvr``, and ``win_rate`` for shading) to loaded models
    with feature specs; by default they are loaded from the artifacts the config names
    (relative to ``base_dir``).

    ``bid``, ``bid_many``, ``explain``, ``counters`` and ``metrics`` are the native engine's
    own methods (this class subclasses :class:`bidcore._core.NativeEngine`), so a call goes
    straight from the caller into Rust: no Python frame in between, the least time holding the
    GIL per decision (a wrapper method cost ~0.4 µs a call and a fifth of the 2-thread
    throughput over the corpus).
    """

    __slots__ = ("config", "ledger", "log", "models")
    config: Config
    models: dict[str, Model]
    """The models by role, and each experiment arm's by its key (``ctr/experiment/arm``)."""
    log: DecisionLog | None
    """Where every decision is recorded (see :mod:`bidcore.decisionlog`), or None."""
    ledger: Ledger | None
    """Where every bid is registered, holding a limited campaign's money while in flight
    (``docs/budget.md``), or None."""

    def __new__(
        cls,
        config: Config,
        *,
        models: Mapping[str, Model] | None = None,
        base_dir: str | os.PathLike[str] | None = None,
        limits: Limits | None = None,
        log: DecisionLog | None = None,
        ledger: Ledger | None = None,
    ) -> Engine:
        loaded = dict(models) if models is not None else _load_models(config, base_dir)
        for key, path in arm_models(config).items():
            if key not in loaded:
                try:
                    loaded[key] = _load_artifact(base_dir, path, config)
                except ModelError as err:
                    # Say which arm names the artifact: the path alone does not.
                    role, experiment, arm = key.split("/")
                    raise ModelError(
                        f"experiment {experiment}, arm {arm}: models.{role}: {err}"
                    ) from None
        native_models: dict[str, Any] = {}
        for key, model in loaded.items():
            # The engine scores natively: it takes the model's native scorer and extractor.
            extractor = model._extractor
            if extractor is None:
                raise ConfigError(f"models.{key}: the model has no feature spec")
            native_models[key] = (
                _model_id(key, model),
                model._scorer,
                extractor._native,
                extractor.spec.campaign_attributes,
            )
        self = super().__new__(
            cls,
            msgspec.json.encode(plan(config)).decode(),
            native_models,
            limits,
            {role: _monitor(role, model) for role, model in loaded.items() if role in ROLES},
            log,
            ledger,
        )
        self.config = config
        self.models = loaded
        self.log = log
        self.ledger = ledger
        return self

    def win(
        self,
        token: str,
        price_micros: int,
        *,
        currency: str | None = None,
        now: float | None = None,
    ) -> NoticeOutcome:
        """Settles the win notice of the bid ``token`` (its ``{bid}``) at the clearing price
        (``${AUCTION_PRICE}``, micros CPM in ``currency``, the bidder's by default) in the
        engine's ledger; spent when ``[budget] spend_on = "win"`` (``docs/budget.md``)."""
        return self._notice("win", token, price_micros, currency, now)

    def bill(
        self,
        token: str,
        price_micros: int,
        *,
        currency: str | None = None,
        now: float | None = None,
    ) -> NoticeOutcome:
        """Settles the billing notice of the bid ``token`` at the clearing price: spent by
        default, counted once however often the exchange sends it."""
        return self._notice("bill", token, price_micros, currency, now)

    def loss(self, token: str, *, now: float | None = None) -> NoticeOutcome:
        """Settles the loss notice of the bid ``token``: its hold is released."""
        return self._notice("loss", token, None, None, now)

    def _notice(
        self,
        kind: Literal["win", "bill", "loss"],
        token: str,
        price_micros: int | None,
        currency: str | None,
        now: float | None,
    ) -> NoticeOutcome:
        # Imported here: the budget package imports the engine's module.
        from bidcore.budget.ledger import settle_notice

        if self.ledger is None:
            raise ConfigError("notices settle bids in a ledger: build the engine with ledger=")
        when = time.time() if now is None else now
        return settle_notice(
            self.ledger, self.config, kind, token, price_micros, currency=currency, now=when
        )

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        limits: Limits | None = None,
        log: DecisionLog | None = None,
        ledger: Ledger | None = None,
    ) -> Engine:
        """An engine from a config file (TOML, JSON or YAML); model paths are relative to it."""
        path = Path(path)
        return cls(
            config_module.load(path), base_dir=path.parent, limits=limits, log=log, ledger=ledger
        )


_Monitor = tuple[str, list[float], list[tuple[str, int, list[float]]]]

ROLES: Final = ("ctr", "cvr")
WIN_RATE: Final = "win_rate"
"""The key of the win-rate model (``models.win_rate``), which sets shading curves' centers."""


def arm_models(config: Config) -> dict[str, str]:
    """The artifacts experiment arms score with, by the key the engine knows them by:
    ``"{role}/{experiment}/{arm}"`` (paths as the config gives them)."""
    return {
        arm_model_key(role, experiment.key, arm.name): path
        for _, experiment, arm in config.experiments.arms()
        for role, path in arm.models.items()
    }


def arm_model_key(role: str, experiment: str, arm: str) -> str:
    """The key of an arm's model for ``role`` in :attr:`Engine.models` and the native plan."""
    return f"{role}/{experiment}/{arm}"


def _model_id(key: str, model: Model) -> str:
    """The model's id in the decision log and metrics: its artifact's name, else its key."""
    return model.name or f"{key}-model"


def _monitor(role: str, model: Model) -> _Monitor:
    """The live histograms of one model: on its artifact's reference edges when it has them."""
    name = _model_id(role, model)
    reference = model.reference
    spec = model.features
    if reference is None or spec is None:
        return name, [i / SCORE_BINS for i in range(SCORE_BINS + 1)], []
    columns = {feature: column for column, feature in enumerate(spec.names)}
    features = [
        (feature, columns[feature], list(h.edges))
        for feature, h in reference.features.items()
        if feature in columns
    ]
    return name, list(reference.score.edges), features


def _load_models(config: Config, base_dir: str | os.PathLike[str] | None) -> dict[str, Model]:
    models: dict[str, Model] = {}
    for role in ROLES:
        where = getattr(config.models, role)
        if where is not None:
            models[role] = _load_artifact(base_dir, where, config)
    if config.models.win_rate is not None:
        models[WIN_RATE] = _load_artifact(base_dir, config.models.win_rate, config)
    return models


def _load_artifact(base_dir: str | os.PathLike[str] | None, where: str, config: Config) -> Model:
    root = Path(base_dir) if base_dir is not None else Path.cwd()
    return load_model(root / where, scorer=config.models.scorer)


def plan(config: Config) -> dict[str, Any]:
    """The config as the native engine reads it: amounts in micros, FX rates in nanos, time
    zones as offset tables."""
    bidder = config.bidder
    fx = [(config.fx.base, 10**9)] + [
        (code, config_module.nanos(rate)) for code, rate in config.fx.rates.items()
    ]
    if len(fx) == 1 and bidder.currency != config.fx.base:
        fx = []  # no rates at all: only the bidder's own currency can be served
    return {
        "seat": bidder.seat,
        "currency": bidder.currency,
        "fx": fx,
        "nurl": bidder.nurl,
        "burl": bidder.burl,
        "lurl": bidder.lurl,
        "tmax_margin_ms": bidder.tmax_margin_ms,
        "shading": {
            "enabled": config.shading.enabled,
            "center": micros(config.shading.center),
            "scale": config.shading.scale,
            "segments": [
                {
                    "center": micros(s.center),
                    "scale": s.scale,
                    "countries": s.countries,
                    "device_types": s.device_types,
                    "media": list(s.media),
                }
                for s in config.shading.segments
            ],
        },
        "campaigns": [_campaign_plan(c) for c in config.campaigns],
        "experiments": [_layer_plan(layer) for layer in config.experiments.layers],
    }


def _layer_plan(layer: Layer) -> dict[str, Any]:
    """A layer as the native engine assigns it: the bucket ranges already integers (the very
    bounds :func:`bidcore.experiments.assign` compares with), so both sides agree exactly."""
    return {
        "name": layer.name,
        "seed": layer.seed,
        "hash_version": layer.hash_version,
        "unit": list(layer.unit),
        "experiments": [
            {
                "key": experiment.key,
                "seed": bucketing.seed,
                "namespace": [lo, hi],
                "ranges": [list(r) for r in bucketing.ranges],
                "countries": list(experiment.countries),
                "device_types": list(experiment.device_types),
                "campaigns": list(experiment.campaigns),
                "arms": [_arm_plan(experiment.key, arm) for arm in experiment.arms],
            }
            for experiment, (lo, hi), bucketing in compiled_layer(layer)
        ],
    }


def _arm_plan(experiment: str, arm: Arm) -> dict[str, Any]:
    shading = arm.shading
    return {
        "name": arm.name,
        "models": [(role, arm_model_key(role, experiment, arm.name)) for role in arm.models],
        "shading": None
        if shading is None
        else {
            "enabled": shading.enabled,
            "center": None if shading.center is None else micros(shading.center),
            "scale": shading.scale,
        },
        "multiplier_ppm": arm.multiplier_ppm,
        "campaigns": None if arm.campaigns is None else list(arm.campaigns),
        "budget_share": arm.budget_share,
    }


def _campaign_plan(c: config_module.Campaign) -> dict[str, Any]:
    amount = {"cpm": c.cpm, "cpc": c.target_cpc, "cpa": c.target_cpa}[c.goal]
    targeting = msgspec.structs.asdict(c.targeting)
    daypart = c.targeting.daypart
    targeting["daypart"] = (
        None
        if daypart is None
        else {
            "transitions": config_module.zone_transitions(daypart.timezone),
            "hours": daypart.hours,
            "weekdays": daypart.weekdays,
        }
    )
    return {
        "id": c.id,
        "goal": c.goal,
        "amount": micros(amount) if amount is not None else 0,
        "max_bid": micros(c.max_bid),
        "min_bid": micros(c.min_bid),
        "deals": c.deals,
        "deals_only": c.deals_only,
        "targeting": targeting,
        "features": list(c.features.items()),
        "frequency_cap": None
        if c.frequency_cap is None
        else {"count": c.frequency_cap.count, "window_seconds": c.frequency_cap.window_seconds},
        "creatives": [
            {
                key: value
                for key, value in msgspec.structs.asdict(creative).items()
                if value is not None
            }
            for creative in c.creatives
        ],
    }
