"""A model's inputs, declared once and computed natively for training and serving alike.

A feature spec (TOML) lists the model's columns in order. Each is a number read from the request
by its OpenRTB path, a string encoded through a vocabulary learned at training or a hash, a value
derived from several fields (hour and weekday, banner area, floor in USD, counts, flags), or an
attribute of the campaign being scored. :func:`matrix` builds training matrices with the same
native code the engine runs per request, so training and serving cannot drift apart.

>>> spec = loads('''
... [fx]
... EUR = 1.1
... [[features]]
... name = "floor_usd"
... derived = "floor_usd"
... [[features]]
... name = "country"
... text = "device.geo.country"
... vocabulary = ["USA", "FRA"]
... ''')
>>> body = b'{"id":"r","imp":[{"id":"1","bidfloor":2,"bidfloorcur":"EUR","banner":{"w":1}}],'
>>> body += b'"site":{},"device":{"geo":{"country":"FRA"}}}'
>>> matrix([body], spec).tolist()
[[2.2, 1.0]]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Final, Literal

import msgspec
import numpy as np
import numpy.typing as npt

from bidcore._core import FeatureExtractor, feature_sources

__all__ = [
    "Extractor",
    "Feature",
    "FeatureSpec",
    "Matrix",
    "extract",
    "learn_vocabularies",
    "load",
    "loads",
    "matrix",
    "matrix_from_jsonl",
    "matrix_with_index",
]

NUMBER_SOURCES, TEXT_SOURCES, DERIVED_SOURCES = (frozenset(s) for s in feature_sources())

Unseen = Literal["own_code", "missing"]


class Feature(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One column: exactly one of ``number``, ``text``, ``derived`` or ``campaign``.

    A ``text`` feature takes a ``vocabulary`` (code = index; an unseen string gets its own code,
    ``len(vocabulary)``, or NaN with ``unseen = "missing"``) or ``buckets`` (FNV-1a 64 of the
    UTF-8 bytes, modulo ``buckets``). Absent fields are NaN (missing).
    """

    name: str
    number: str | None = None
    text: str | None = None
    derived: str | None = None
    campaign: str | None = None
    vocabulary: list[str] | None = None
    unseen: Unseen = "own_code"
    buckets: int | None = None

    def __post_init__(self) -> None:
        chosen = [
            k for k in ("number", "text", "derived", "campaign") if getattr(self, k) is not None
        ]
        if len(chosen) != 1:
            raise ValueError(
                f"feature {self.name!r} needs exactly one of number, text, derived, campaign"
            )
        for kind, known in (
            ("number", NUMBER_SOURCES),
            ("text", TEXT_SOURCES),
            ("derived", DERIVED_SOURCES),
        ):
            source = getattr(self, kind)
            if source is not None and source not in known:
                raise ValueError(
                    f"unknown {kind} source {source!r}; known: {', '.join(sorted(known))}"
                )
        if self.text is not None and (self.vocabulary is None) == (self.buckets is None):
            raise ValueError(f"text feature {self.name!r} needs a vocabulary or buckets (one)")
        if self.text is None and (self.vocabulary is not None or self.buckets is not None):
            raise ValueError(f"feature {self.name!r}: vocabulary and buckets are for text features")
        if self.buckets is not None and not 1 <= self.buckets <= 2**31:
            raise ValueError(f"feature {self.name!r}: buckets must be in 1..2^31")

    @property
    def categorical(self) -> bool:
        """Whether LightGBM should treat the column as categorical (encoded strings, and the
        derived codes: hour, weekday, media type)."""
        return self.text is not None or (
            self.derived is not None
            and self.derived.startswith(("hour_", "weekday_", "media_type"))
        )


class FeatureSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The model's inputs in column order, and USD rates (USD per unit) for ``floor_usd``."""

    features: list[Feature]
    fx: dict[str, float] = msgspec.field(default_factory=dict)
    version: int = 1

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ValueError("feature names must be unique")
        for currency, rate in self.fx.items():
            if len(currency) != 3 or not (math.isfinite(rate) and rate > 0):
                raise ValueError(f"fx.{currency}: a 3-letter code with a positive, finite rate")

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def campaign_attributes(self) -> list[str]:
        """The campaign attributes the spec reads, in the order ``campaign`` values are given."""
        return [f.campaign for f in self.features if f.campaign is not None]

    def categorical_columns(self) -> list[int]:
        """Column indices to pass to LightGBM as ``categorical_feature``."""
        return [i for i, f in enumerate(self.features) if f.categorical]


def loads(text: str | bytes) -> FeatureSpec:
    """A spec from TOML text. Raises ``msgspec.ValidationError`` naming the bad key."""
    return msgspec.toml.decode(text, type=FeatureSpec)


def load(path: str | Path) -> FeatureSpec:
    return loads(Path(path).read_bytes())


_EXTRACTORS: dict[bytes, FeatureExtractor] = {}


def _extractor(spec: FeatureSpec) -> FeatureExtractor:
    """The native extractor of a spec, built once per distinct spec."""
    key = msgspec.json.encode(spec)
    found = _EXTRACTORS.get(key)
    if found is None:
        attributes = spec.campaign_attributes
        tuples: list[tuple[str, str, list[str] | None, float, int]] = []
        for f in spec.features:
            if f.number is not None:
                tuples.append(("number", f.number, None, math.nan, 0))
            elif f.text is not None and f.vocabulary is not None:
                unseen = float(len(f.vocabulary)) if f.unseen == "own_code" else math.nan
                tuples.append(("vocabulary", f.text, f.vocabulary, unseen, 0))
            elif f.text is not None:
                tuples.append(("hash", f.text, None, math.nan, f.buckets or 0))
            elif f.derived is not None:
                tuples.append(("derived", f.derived, None, math.nan, 0))
            else:
                tuples.append(
                    ("campaign", str(attributes.index(f.campaign or "")), None, math.nan, 0)
                )
        found = FeatureExtractor(tuples, dict(spec.fx))
        _EXTRACTORS[key] = found
    return found


def _campaign_values(spec: FeatureSpec, campaign: Mapping[str, float] | None) -> list[float]:
    campaign = campaign or {}
    return [float(campaign.get(name, math.nan)) for name in spec.campaign_attributes]


class Matrix(msgspec.Struct, frozen=True):
    """Rows of features with, per row, the request and imp it came from."""

    values: npt.NDArray[np.float64]
    index: npt.NDArray[np.int64]
    rejected: list[tuple[int, str]]
    """Requests skipped as invalid (``skip_invalid=True``): their position and reason."""


def matrix(
    bodies: Sequence[bytes],
    spec: FeatureSpec,
    *,
    timestamps: npt.ArrayLike | None = None,
    campaign: Mapping[str, float] | None = None,
) -> npt.NDArray[np.float64]:
    """One row per impression of every request, in order: ``(rows, len(spec.features))``.

    ``timestamps`` (seconds since the epoch, one per body) feed the hour and weekday features;
    ``campaign`` the campaign attributes. Raises ``InvalidRequestError`` for a body the engine
    would refuse. Runs natively with the GIL released.
    """
    return matrix_with_index(bodies, spec, timestamps=timestamps, campaign=campaign).values


def matrix_with_index(
    bodies: Sequence[bytes],
    spec: FeatureSpec,
    *,
    timestamps: npt.ArrayLike | None = None,
    campaign: Mapping[str, float] | None = None,
    skip_invalid: bool = False,
) -> Matrix:
    """Like :func:`matrix`, with each row's ``(request, imp)`` and, when ``skip_invalid``, the
    invalid requests skipped (with their reason) instead of raising."""
    times = None if timestamps is None else np.ascontiguousarray(timestamps, dtype=np.float64)
    values, index, rejected = _extractor(spec).matrix(
        list(bodies),
        timestamps=times,
        campaign=_campaign_values(spec, campaign),
        skip_invalid=skip_invalid,
    )
    return Matrix(values=values, index=index, rejected=rejected)


class _LogLine(msgspec.Struct):
    request: msgspec.Raw
    timestamp: float | None = None


_LINE_DECODER: Final = msgspec.json.Decoder(_LogLine)


def matrix_from_jsonl(
    path: str | Path,
    spec: FeatureSpec,
    *,
    campaign: Mapping[str, float] | None = None,
    skip_invalid: bool = True,
) -> Matrix:
    """The matrix of a JSON-lines file: each line a bid request, or ``{"timestamp": seconds,
    "request": {...}}``. Blank lines are skipped; invalid requests too (listed in ``rejected``)
    unless ``skip_invalid=False``."""
    bodies: list[bytes] = []
    times: list[float] = []
    for line in Path(path).read_bytes().splitlines():
        if not line.strip():
            continue
        if b'"request"' in line:
            try:
                wrapped = _LINE_DECODER.decode(line)
            except msgspec.DecodeError:
                wrapped = None
            if wrapped is not None:
                bodies.append(bytes(wrapped.request))
                times.append(math.nan if wrapped.timestamp is None else wrapped.timestamp)
                continue
        bodies.append(line)
        times.append(math.nan)
    return matrix_with_index(
        bodies, spec, timestamps=times, campaign=campaign, skip_invalid=skip_invalid
    )


class Extractor:
    """A spec compiled once for native extraction: what a caller scoring request after request
    holds, instead of looking the spec's extractor up on every call as :func:`extract` does."""

    __slots__ = ("_native", "spec")

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec: Final = spec
        self._native: Final = _extractor(spec)

    def extract(
        self,
        body: bytes,
        *,
        imp: int = 0,
        timestamp: float = math.nan,
        campaign: Mapping[str, float] | None = None,
    ) -> npt.NDArray[np.float64]:
        """The features of one impression of one request (see :func:`extract`)."""
        return self._native.extract(
            body, imp=imp, timestamp=timestamp, campaign=_campaign_values(self.spec, campaign)
        )


def extract(
    body: bytes,
    spec: FeatureSpec,
    *,
    imp: int = 0,
    timestamp: float = math.nan,
    campaign: Mapping[str, float] | None = None,
) -> npt.NDArray[np.float64]:
    """The features of one impression of one request: what the engine computes for it."""
    return _extractor(spec).extract(
        body, imp=imp, timestamp=timestamp, campaign=_campaign_values(spec, campaign)
    )


def learn_vocabularies(
    spec: FeatureSpec, bodies: Iterable[bytes], *, min_count: int = 1, max_size: int | None = None
) -> FeatureSpec:
    """The spec with the vocabulary of every vocabulary feature learned from ``bodies``: the
    strings seen at least ``min_count`` times, most frequent first (ties in string order)."""
    from bidcore.features.reference import text_value
    from bidcore.openrtb.reference import inspect_request_py

    wanted = [f for f in spec.features if f.vocabulary is not None and f.text is not None]
    counts: dict[str, dict[str, int]] = {f.name: {} for f in wanted}
    for body in bodies:
        try:
            view = inspect_request_py(body)
        except ValueError:
            continue
        for imp in range(len(view.get("imp", []))):
            for f in wanted:
                value = text_value(view, imp, f.text or "")
                if value is not None:
                    counts[f.name][value] = counts[f.name].get(value, 0) + 1
    features = []
    for f in spec.features:
        if f.name in counts:
            ranked = sorted(
                (s for s, n in counts[f.name].items() if n >= min_count),
                key=lambda s, c=counts[f.name]: (-c[s], s),  # type: ignore[misc]
            )
            f = msgspec.structs.replace(f, vocabulary=ranked[:max_size])
        features.append(f)
    return msgspec.structs.replace(spec, features=features)
