"""Layers of mutually exclusive experiments, and which arm a unit gets in each.

The plain-Python reference of the assignment rules of ``docs/experiments.md``: the native
engine reproduces them, the tests hold both to GrowthBook's cross-language cases, the official
GrowthBook SDK and bidcore's own vectors (``tests/fixtures/assignment_vectors.json``).

A layer (``[[experiments.layers]]``) has a seed and holds experiments on disjoint parts of its
traffic (their ``namespace`` ranges); an experiment splits the units of its part between arms
by weight, over the first ``coverage`` of each arm's range, so raising the coverage only adds
units. Layers are independent of each other: a unit gets at most one experiment per layer.

>>> layer = loads_layers('''
... [[experiments.layers]]
... name = "models"
... seed = "models-2026"
... [[experiments.layers.experiments]]
... key = "ctr-v7"
... coverage = 0.5
... arms = [{name = "control", weight = 0.5}, {name = "ctr-v7", weight = 0.5}]
... ''')[0]
>>> a = assign("user-8", layer)
>>> (a.experiment, a.arm, a.in_experiment, a.bucket, a.bucket_int)
('ctr-v7', 'ctr-v7', True, 0.6851, 6851)
>>> [getattr(assign(f"user-{i}", layer), "arm") for i in (1, 2, 9)]  # 2: beyond the coverage
['control', None, 'ctr-v7']
>>> growthbook_experiment(layer, "ctr-v7")["seed"]
'models-2026:ctr-v7:1'
"""

from __future__ import annotations

import decimal
import functools
import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple, get_args

import msgspec

from bidcore._amounts import micros
from bidcore._decoding import decode
from bidcore.errors import ConfigError
from bidcore.features.reference import fnv1a64, personal_data_allowed

from .hashing import Bucketing, equal_weights, namespace_bucket

__all__ = [
    "UNIT_SOURCES",
    "Arm",
    "ArmShading",
    "Assignment",
    "Experiment",
    "Experiments",
    "Layer",
    "UnitSource",
    "arm_seed",
    "assign",
    "assign_request",
    "compiled_layer",
    "growthbook_experiment",
    "load_layers",
    "loads_layers",
    "unit_id",
    "unit_key",
    "unit_text",
]

UnitSource = Literal["user.id", "user.buyeruid", "device.ifa", "id"]
UNIT_SOURCES: Final[tuple[UnitSource, ...]] = get_args(UnitSource)
"""The default order of a layer's ``unit``; the request ``id`` ends every list regardless."""

WEIGHT_TOLERANCE: Final = 1e-6
"""How far from 1 the arms' weights may sum. Under 1/10,000, so at full coverage every bucket
of hash v2 falls in an arm; far inside GrowthBook's 0.99..1.01, so no SDK replaces the weights."""

_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_COUNTRY: Final = re.compile(r"^[A-Z]{3}$")
_TO_UPPER: Final = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_PERSONAL: Final = frozenset({"user.id", "user.buyeruid", "device.ifa"})


def _check_name(field: str, value: str) -> None:
    if not _NAME.match(value):
        raise ValueError(
            f"{field} must be ASCII letters, digits, '_', '.' or '-' (not first), got {value!r}"
        )


def _repeated(values: Iterable[object]) -> list[str]:
    seen: set[object] = set()
    out: set[str] = set()
    for value in values:
        if value in seen:
            out.add(str(value))
        seen.add(value)
    return sorted(out)


class _Struct(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class ArmShading(_Struct, frozen=True):
    """An arm's first-price shading, each field over the bidder's ``[shading]``: ``enabled``
    turns it on or off; a ``center`` or ``scale`` gives the arm its own curve, used for every
    request (the bidder's segments do not apply to it)."""

    enabled: bool | None = None
    center: Decimal | None = None
    scale: float | None = None

    def __post_init__(self) -> None:
        if self.center is not None:
            try:
                positive = micros(self.center) > 0
            except (ValueError, decimal.InvalidOperation) as err:
                raise ValueError(f"center: {err}") from None
            if not positive:
                raise ValueError(f"center must be positive, got {self.center}")
        if self.scale is not None and not (0 < self.scale < math.inf):
            raise ValueError("scale must be positive and finite")

    @property
    def own_curve(self) -> bool:
        """Whether the arm brings its own curve (replacing the bidder's and its segments)."""
        return self.center is not None or self.scale is not None


Role = Literal["ctr", "cvr"]

MULTIPLIER_MAX: Final = Decimal(100)


class Arm(_Struct, frozen=True):
    """One arm of an experiment: its name (in logs, metric labels and notice URLs), its share
    of the experiment's units, and what it changes for the experiment's campaigns.

    Leave every weight out for equal shares. An arm that changes nothing is a control.

    - ``models``: a model artifact per role (``ctr``, ``cvr``), in place of the bidder's;
    - ``shading``: shading on or off, or its own curve (:class:`ArmShading`);
    - ``bid_multiplier``: scales the value of an impression (exact, up to 6 decimals, in
      ``(0, 100]``) before the caps, so ``max_bid`` still holds;
    - ``campaigns``: only these of the experiment's campaigns bid in this arm;
    - ``budget_share``: the arm's share of its campaigns' budgets (pacing and budgets, the
      ledger of issue 7, enforce it; the engine carries it).
    """

    name: str
    weight: float | None = None
    models: dict[Role, str] = msgspec.field(default_factory=dict)
    shading: ArmShading | None = None
    bid_multiplier: Decimal | None = None
    campaigns: tuple[str, ...] | None = None
    budget_share: float | None = None

    def __post_init__(self) -> None:
        _check_name("name", self.name)
        if self.weight is not None and not (0 <= self.weight <= 1):
            raise ValueError(f"weight must be in [0, 1], got {self.weight}")
        if any(not path for path in self.models.values()):
            raise ValueError("models: an artifact path must not be empty")
        if self.bid_multiplier is not None:
            try:
                ppm = micros(self.bid_multiplier)
            except (ValueError, decimal.InvalidOperation) as err:
                raise ValueError(f"bid_multiplier: {err}") from None
            if not 0 < ppm <= micros(MULTIPLIER_MAX):
                raise ValueError(f"bid_multiplier must be in (0, 100], got {self.bid_multiplier}")
        if self.campaigns is not None:
            if not self.campaigns:
                raise ValueError("campaigns: list at least one (leave it out for all)")
            repeated = _repeated(self.campaigns)
            if repeated:
                raise ValueError(f"campaigns: repeated: {repeated}")
        if self.budget_share is not None and not (0 < self.budget_share <= 1):
            raise ValueError(f"budget_share must be in (0, 1], got {self.budget_share}")

    @property
    def multiplier_ppm(self) -> int | None:
        """``bid_multiplier`` in millionths (1.25 -> 1,250,000)."""
        return None if self.bid_multiplier is None else micros(self.bid_multiplier)

    def overrides(self) -> frozenset[str]:
        """The parameters the arm sets: ``models.ctr``, ``models.cvr``, ``shading``,
        ``bid_multiplier``, ``campaigns``, ``budget_share`` (each owned by one layer)."""
        names = {f"models.{role}" for role in self.models}
        for name in ("shading", "bid_multiplier", "campaigns", "budget_share"):
            if getattr(self, name) is not None:
                names.add(name)
        return frozenset(names)


class Experiment(_Struct, frozen=True):
    """An experiment in a layer.

    ``coverage`` is the share of each arm's range in use (a ramp from 0.01 to 1 only adds
    units). ``namespace`` is the ``[start, end)`` part of the layer's traffic it owns (the whole
    layer when absent). ``countries`` and ``device_types`` restrict who enters (a request
    without the field never matches a non-empty list); ``campaigns`` restricts which campaigns'
    bids the arm changes, not who is assigned. Changing the weights or arms reshuffles units:
    do it with a new ``bucket_version``, which is part of the hash seed (:func:`arm_seed`).
    """

    key: str
    arms: tuple[Arm, ...]
    coverage: float = 1.0
    namespace: tuple[float, float] | None = None
    bucket_version: int = 1
    countries: tuple[str, ...] = ()
    device_types: tuple[int, ...] = ()
    campaigns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_name("key", self.key)
        if not 0 <= self.coverage <= 1:
            raise ValueError(f"coverage must be in [0, 1], got {self.coverage}")
        if len(self.arms) < 2:
            raise ValueError("arms: an experiment needs at least two arms")
        repeated = _repeated(arm.name for arm in self.arms)
        if repeated:
            raise ValueError(f"arms: names must be unique, repeated: {repeated}")
        given = [arm.weight for arm in self.arms if arm.weight is not None]
        if given and len(given) != len(self.arms):
            raise ValueError("arms: give every arm a weight, or none (equal weights)")
        total = math.fsum(given) if given else 1.0
        if abs(total - 1) > WEIGHT_TOLERANCE:
            raise ValueError(f"arms: weights sum to {total}, not 1 (within {WEIGHT_TOLERANCE})")
        if self.namespace is not None:
            start, end = self.namespace
            if not 0 <= start < end <= 1:
                raise ValueError(
                    "namespace must be [start, end) with 0 <= start < end <= 1, "
                    f"got {list(self.namespace)}"
                )
        if self.bucket_version < 1:
            raise ValueError(f"bucket_version must be >= 1, got {self.bucket_version}")
        for code in self.countries:
            if not _COUNTRY.match(code):
                raise ValueError(f"countries: {code!r} is not a 3-letter upper-case code")
        if any(not campaign for campaign in self.campaigns):
            raise ValueError("campaigns: ids must not be empty")
        for arm in self.arms:
            outside = sorted(set(arm.campaigns or ()) - set(self.campaigns or arm.campaigns or ()))
            if outside:
                raise ValueError(
                    f"arms: {arm.name!r} lists campaigns outside the experiment's: {outside}"
                )
        shares = [arm.budget_share for arm in self.arms if arm.budget_share is not None]
        if shares and len(shares) != len(self.arms):
            raise ValueError("arms: give every arm a budget_share, or none")
        if math.fsum(shares) > 1 + WEIGHT_TOLERANCE:
            raise ValueError(f"arms: budget shares sum to {math.fsum(shares)}, more than 1")

    @property
    def weights(self) -> tuple[float, ...]:
        """The arms' weights, equal (``1 / n`` each, as GrowthBook's) when none is given."""
        if self.arms[0].weight is None:
            return tuple(equal_weights(len(self.arms)))
        return tuple(arm.weight or 0.0 for arm in self.arms)


class Layer(_Struct, frozen=True):
    """A seed, the unit id's sources in order, and experiments on disjoint namespaces."""

    name: str
    seed: str
    hash_version: Literal[1, 2] = 2
    unit: tuple[UnitSource, ...] = UNIT_SOURCES
    experiments: tuple[Experiment, ...] = ()

    def __post_init__(self) -> None:
        _check_name("name", self.name)
        if not self.seed:
            raise ValueError("seed must not be empty")
        if not self.unit:
            raise ValueError('unit must list at least one source (["id"]: the request id)')
        repeated = _repeated(self.unit)
        if repeated:
            raise ValueError(f"unit: sources must be unique, repeated: {repeated}")
        repeated = _repeated(e.key for e in self.experiments)
        if repeated:
            raise ValueError(f"experiments: keys must be unique, repeated: {repeated}")
        if len(self.experiments) > 1:
            whole = [e.key for e in self.experiments if e.namespace is None]
            if whole:
                raise ValueError(
                    f"experiments: {whole[0]!r} has no namespace (the whole layer) but shares "
                    "the layer; give each experiment a namespace"
                )
            spans = sorted((e.namespace or (0.0, 1.0), e.key) for e in self.experiments)
            for (before, first), (after, second) in itertools.pairwise(spans):
                if after[0] < before[1]:
                    raise ValueError(
                        f"experiments: the namespaces of {first!r} {list(before)} and "
                        f"{second!r} {list(after)} overlap"
                    )


class Experiments(_Struct, frozen=True):
    """The ``[experiments]`` table of a bidder configuration."""

    layers: tuple[Layer, ...] = ()

    def __post_init__(self) -> None:
        for what, values in (
            ("names", [layer.name for layer in self.layers]),
            ("seeds", [layer.seed for layer in self.layers]),
            ("experiment keys", [e.key for layer in self.layers for e in layer.experiments]),
        ):
            repeated = _repeated(values)
            if repeated:
                raise ValueError(
                    f"layers: {what} must be unique across layers, repeated: {repeated}"
                )
        # Overlapping experiments stay independent when each parameter belongs to one layer:
        # two layers setting the same one would decide, per unit, which of them wins.
        owner: dict[str, str] = {}
        for layer in self.layers:
            for name in sorted(
                {p for e in layer.experiments for a in e.arms for p in a.overrides()}
            ):
                if name in owner:
                    raise ValueError(
                        f"layers: {name} is set by arms in layers {owner[name]!r} and "
                        f"{layer.name!r}; a parameter belongs to one layer"
                    )
                owner[name] = layer.name

    def arms(self) -> Iterable[tuple[Layer, Experiment, Arm]]:
        """Every arm with its experiment and layer, in config order."""
        for layer in self.layers:
            for experiment in layer.experiments:
                for arm in experiment.arms:
                    yield layer, experiment, arm


class _Document(msgspec.Struct, frozen=True, kw_only=True):
    # A whole bidder configuration; only its [experiments] table is read here.
    experiments: Experiments = msgspec.field(default_factory=Experiments)


def loads_layers(
    data: bytes | str, *, format: Literal["toml", "json", "yaml"] = "toml"
) -> tuple[Layer, ...]:
    """The layers of a configuration's ``[experiments]`` table (other tables are ignored).
    Raises :class:`bidcore.ConfigError` naming the key path, like :mod:`bidcore.config`::

        experiments.layers[0].experiments[1]: arms: weights sum to 0.9, not 1 (within 1e-06)
    """
    return decode(data, format, _Document).experiments.layers


def load_layers(path: str | Path) -> tuple[Layer, ...]:
    """:func:`loads_layers` from a ``.toml``, ``.json``, ``.yaml`` or ``.yml`` file."""
    path = Path(path)
    formats: dict[str, Literal["toml", "json", "yaml"]] = {
        ".toml": "toml",
        ".json": "json",
        ".yaml": "yaml",
        ".yml": "yaml",
    }
    fmt = formats.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(f"{path}: unknown config format {path.suffix!r} (toml, json, yaml)")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: {err.strerror or err}") from None
    return loads_layers(data, format=fmt)


def arm_seed(layer: Layer, experiment: Experiment) -> str:
    """The seed an experiment's arms are hashed with: ``"{layer.seed}:{key}:{bucket_version}"``
    (a key holds no ``:``, so distinct experiments never share a seed)."""
    return f"{layer.seed}:{experiment.key}:{experiment.bucket_version}"


class Assignment(msgspec.Struct, frozen=True, kw_only=True):
    """Where a unit landed in one layer.

    ``in_experiment`` is false when the unit is in the experiment's namespace and passes its
    filters but its bucket is outside every arm's covered range (coverage below 1): then
    ``arm`` is ``None`` and ``variation`` -1, and the engine applies no arm. ``bucket`` is
    GrowthBook's ``Result.bucket`` (``bucket_int / 10000`` for hash v2, ``/ 1000`` for v1).
    ``unit_source`` is where the unit id came from (``None`` when it was given directly).
    """

    layer: str
    experiment: str
    arm: str | None
    variation: int
    in_experiment: bool
    bucket: float
    bucket_int: int
    unit: str
    unit_source: UnitSource | None = None
    campaigns: tuple[str, ...] = ()

    def applies_to(self, campaign: str) -> bool:
        """Whether the arm changes ``campaign``'s bids: in the experiment, and the experiment
        lists no campaigns or lists this one."""
        return self.in_experiment and (not self.campaigns or campaign in self.campaigns)


class _Entry(NamedTuple):
    experiment: Experiment
    lo: int  # the namespace [lo, hi) over the 1,000 v1 buckets
    hi: int
    bucketing: Bucketing
    countries: frozenset[str]
    device_types: frozenset[int]


def _compile(layer: Layer) -> tuple[_Entry, ...]:
    try:
        return _compile_cached(layer)
    except TypeError:  # built in Python with lists for tuples: unhashable, compiled each time
        return _compile_layer(layer)


@functools.lru_cache(maxsize=256)
def _compile_cached(layer: Layer) -> tuple[_Entry, ...]:
    return _compile_layer(layer)


def _compile_layer(layer: Layer) -> tuple[_Entry, ...]:
    entries = []
    for experiment in layer.experiments:
        bucketing = Bucketing.build(
            seed=arm_seed(layer, experiment),
            hash_version=layer.hash_version,
            variations=len(experiment.arms),
            coverage=experiment.coverage,
            weights=experiment.weights,
            namespace=(layer.seed, *(experiment.namespace or (0.0, 1.0))),
        )
        assert bucketing.namespace is not None
        _, lo, hi = bucketing.namespace
        entries.append(
            _Entry(
                experiment,
                lo,
                hi,
                bucketing,
                frozenset(experiment.countries),
                frozenset(experiment.device_types),
            )
        )
    return tuple(entries)


def compiled_layer(layer: Layer) -> list[tuple[Experiment, tuple[int, int], Bucketing]]:
    """Each experiment of ``layer`` with its namespace ``[lo, hi)`` over the 1,000 namespace
    buckets and its :class:`Bucketing` (integer arm ranges): what the native engine is given."""
    return [(e.experiment, (e.lo, e.hi), e.bucketing) for e in _compile(layer)]


def unit_key(unit: str) -> str:
    """The unit's pseudonymous key in the decision log (``units``): FNV-1a 64 of its UTF-8 as
    16 hex digits. Stable across processes and languages, and not the id itself.

    >>> unit_key("a")
    'af63dc4c8601ec8c'
    """
    return f"{fnv1a64(unit.encode('utf-8', 'surrogatepass')):016x}"


def unit_text(value: object) -> str | None:
    """The text a unit id value is hashed as: a non-empty ``str`` as it is (lone surrogates
    included); an ``int`` (JSON integer) as its decimal digits, ``-`` first when negative;
    ``None`` for anything else (empty strings, floats, booleans, ``None``, containers), which
    counts as absent.

    >>> unit_text("u-1"), unit_text(1234567890123456789), unit_text(""), unit_text(1.5)
    ('u-1', '1234567890123456789', None, None)
    """
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(int(value))  # int(): an IntEnum's str() is not its digits everywhere
    return None


def _lookup(view: Mapping[str, Any], path: str) -> object:
    node: object = view
    for key in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _personal(view: Mapping[str, Any]) -> bool:
    # docs/engine.md "Privacy", the very rule the models' user features follow.
    return personal_data_allowed(dict(view))


def unit_id(
    view: Mapping[str, Any],
    sources: Sequence[UnitSource] = UNIT_SOURCES,
    *,
    personal: bool | None = None,
) -> tuple[str, UnitSource] | None:
    """The unit id of a request (its normalized view, :func:`bidcore.inspect_request`) and its
    source: the first of ``sources`` whose value :func:`unit_text` accepts, then the request
    ``id``. When the request allows no personal data (``personal``; by default computed from
    the view as ``docs/engine.md`` does), ``user.*`` and ``device.ifa`` count as absent.
    ``None`` when even the request id is missing or empty.

    >>> view = {"id": "r1", "user": {"id": ""}, "device": {"ifa": "6D92078A"}}
    >>> unit_id(view)
    ('6D92078A', 'device.ifa')
    >>> unit_id({**view, "device": {"ifa": "6D92078A", "lmt": 1}})
    ('r1', 'id')
    """
    if personal is None:
        personal = _personal(view)
    for source in (*sources, "id"):
        if not personal and source in _PERSONAL:
            continue
        text = unit_text(_lookup(view, source))
        if text is not None:
            return text, source
    return None


def assign(
    unit_id: str | int,
    layer: Layer,
    *,
    country: str | None = None,
    device_type: int | None = None,
    unit_source: UnitSource | None = None,
) -> Assignment | None:
    """The unit's experiment and arm in ``layer``; ``None`` when the unit id is empty, its
    namespace bucket is in no experiment's namespace, or it fails that experiment's
    ``countries`` (compared after ASCII upper-casing) or ``device_types``. Every GrowthBook
    SDK given :func:`growthbook_experiment` and the same id agrees. Raises ``TypeError`` for an
    id that is neither ``str`` nor ``int``."""
    if not isinstance(unit_id, str | int) or isinstance(unit_id, bool):
        raise TypeError(f"a unit id is a str or an int, not {type(unit_id).__name__}")
    unit = unit_text(unit_id)
    if unit is None:
        return None
    entries = _compile(layer)
    if not entries:
        return None
    slot = namespace_bucket(layer.seed, unit)
    entry = next((e for e in entries if e.lo <= slot < e.hi), None)
    if entry is None:
        return None
    if entry.countries and (country is None or country.translate(_TO_UPPER) not in entry.countries):
        return None
    if entry.device_types and device_type not in entry.device_types:
        return None
    bucketing = entry.bucketing
    index = bucketing.bucket(unit)
    variation = bucketing.variation(index)
    experiment = entry.experiment
    return Assignment(
        layer=layer.name,
        experiment=experiment.key,
        arm=experiment.arms[variation].name if variation >= 0 else None,
        variation=variation,
        in_experiment=variation >= 0,
        bucket=index / bucketing.buckets,
        bucket_int=index,
        unit=unit,
        unit_source=unit_source,
        campaigns=experiment.campaigns,
    )


def assign_request(
    body_or_view: bytes | Mapping[str, Any], layers: Iterable[Layer]
) -> dict[str, Assignment]:
    """The assignment of a bid request in each layer that places it, by layer name. A body is
    parsed (and validated: :class:`bidcore.InvalidRequestError`) by
    :func:`bidcore.inspect_request`; a mapping is taken as such a view. The unit id follows
    each layer's ``unit`` (:func:`unit_id`), the filters read ``device.geo.country`` and
    ``device.devicetype``."""
    if isinstance(body_or_view, bytes | bytearray | memoryview):
        from bidcore.parsing import inspect_request

        view: Mapping[str, Any] = inspect_request(bytes(body_or_view))
    elif isinstance(body_or_view, Mapping):
        view = body_or_view
    else:
        raise TypeError(
            f"a request is bytes or a mapping (its view), not {type(body_or_view).__name__}"
        )
    personal = _personal(view)
    country = _lookup(view, "device.geo.country")
    device_type = _lookup(view, "device.devicetype")
    found: dict[str, Assignment] = {}
    for layer in layers:
        unit = unit_id(view, layer.unit, personal=personal)
        if unit is None:
            continue
        result = assign(
            unit[0],
            layer,
            country=country if isinstance(country, str) else None,
            device_type=device_type if isinstance(device_type, int) else None,
            unit_source=unit[1],
        )
        if result is not None:
            found[layer.name] = result
    return found


def growthbook_experiment(layer: Layer, key: str) -> dict[str, Any]:
    """The experiment as GrowthBook's SDKs take it (``Experiment`` / ``gb.run``), so another
    service assigns its units exactly as bidcore does: pass the unit id as the ``id`` attribute
    (and ``country``, upper-case, and ``device_type`` when the experiment filters on them)."""
    experiment = next((e for e in layer.experiments if e.key == key), None)
    if experiment is None:
        raise KeyError(f"layer {layer.name!r} has no experiment {key!r}")
    definition: dict[str, Any] = {
        "key": experiment.key,
        "variations": [arm.name for arm in experiment.arms],
        "weights": list(experiment.weights),
        "coverage": experiment.coverage,
        "hashAttribute": "id",
        "hashVersion": layer.hash_version,
        "seed": arm_seed(layer, experiment),
    }
    if experiment.namespace is not None:
        definition["namespace"] = [layer.seed, *experiment.namespace]
    condition: dict[str, Any] = {}
    if experiment.countries:
        condition["country"] = {"$in": list(experiment.countries)}
    if experiment.device_types:
        condition["device_type"] = {"$in": list(experiment.device_types)}
    if condition:
        definition["condition"] = condition
    return definition
