"""GrowthBook's bucketing, bit for bit, with integer bucket comparison.

Every GrowthBook SDK places a unit with the same few functions; they are reproduced here under
the names of the JavaScript SDK (``hash``, ``getBucketRanges``, ``chooseVariation``,
``inNamespace``, ``getEqualWeights``), written in snake case, and held to GrowthBook's
cross-language test cases and to the official Python SDK by ``tests/``. ``docs/experiments.md``
states the rules the native engine follows.

- **FNV-1a 32** runs over the UTF-16 code units of the text, as JavaScript's ``charCodeAt`` loop
  does: a character outside the Basic Multilingual Plane counts as its two surrogates, and a
  lone surrogate in a Python ``str`` (``json.loads('"\\\\ud800"')``) as its own code unit.
- **Hash v2**: ``fnv(str(fnv(seed + id))) % 10000``; **hash v1**: ``fnv(id + seed) % 1000``.
  GrowthBook divides by 10,000 or 1,000 and compares the float against float range bounds;
  :func:`bucket` keeps the integer and :func:`integer_bound` turns each float bound into the
  first integer bucket at or above it, so ``lo <= bucket < hi`` holds exactly when GrowthBook's
  ``lo_float <= bucket / D < hi_float`` does, for every bucket.

>>> bucket("seed", "a", 2), hash("seed", "a", 2)
(505, 0.0505)
>>> ranges = bucket_ranges(2, 0.5)           # half the units, split evenly
>>> ranges
[(0.0, 0.25), (0.5, 0.75)]
>>> choose_variation(0.6, ranges)
1
>>> Bucketing.build(seed="seed", hash_version=2, variations=2, coverage=0.5).choose("a")
(0, 505)
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Final

__all__ = [
    "BUCKETS",
    "Bucketing",
    "bucket",
    "bucket_ranges",
    "choose_variation",
    "equal_weights",
    "fnv1a32",
    "hash",
    "in_namespace",
    "in_range",
    "integer_bound",
    "namespace_bucket",
    "utf16_units",
]

BUCKETS: Final = {1: 1000, 2: 10000}
"""How many buckets each hash version has (the ``D`` it divides by)."""

_OFFSET: Final = 0x811C9DC5
_PRIME: Final = 0x01000193
_MASK: Final = 0xFFFFFFFF
_UTF16_NATIVE: Final = "utf-16-le" if sys.byteorder == "little" else "utf-16-be"
# GrowthBook's weight-sum tolerance: outside it the SDKs fall back to equal weights.
_WEIGHT_SUM_MIN: Final = 0.99
_WEIGHT_SUM_MAX: Final = 1.01

Range = tuple[float, float]


def utf16_units(text: str) -> Sequence[int]:
    """The UTF-16 code units JavaScript sees in ``text``: one per code point of the Basic
    Multilingual Plane, a surrogate pair per code point above it, and a lone surrogate (which a
    Python ``str`` can hold, a JavaScript string too) as itself.

    >>> list(utf16_units("a\\u00e9\\U0001F600")), list(utf16_units("\\ud800"))
    ([97, 233, 55357, 56832], [55296])
    """
    if text.isascii():
        return text.encode("ascii")
    return memoryview(text.encode(_UTF16_NATIVE, "surrogatepass")).cast("H")


def fnv1a32(text: str) -> int:
    """FNV-1a, 32 bits, over the UTF-16 code units of ``text`` (each unit XORed in whole, as the
    JavaScript SDK's ``hval ^= str.charCodeAt(i)`` does).

    >>> fnv1a32(""), fnv1a32("a")
    (2166136261, 3826002220)
    """
    value = _OFFSET
    for unit in utf16_units(text):
        value = ((value ^ unit) * _PRIME) & _MASK
    return value


def bucket(seed: str, unit: str, version: int) -> int:
    """The integer bucket of ``unit``: in ``[0, 10000)`` for hash v2, ``[0, 1000)`` for v1.
    Raises ``ValueError`` for any other version (GrowthBook's ``hash`` returns null)."""
    if version == 2:
        return fnv1a32(str(fnv1a32(seed + unit))) % 10000
    if version == 1:
        return fnv1a32(unit + seed) % 1000
    raise ValueError(f"unknown hash version {version!r} (1 or 2)")


def hash(seed: str, unit: str, version: int) -> float | None:  # GrowthBook's name
    """GrowthBook's ``hash``: the bucket divided by the number of buckets, in ``[0, 1)``;
    ``None`` for an unknown version."""
    if version not in BUCKETS:
        return None
    return bucket(seed, unit, version) / BUCKETS[version]


def namespace_bucket(namespace: str, unit: str) -> int:
    """The v1 bucket (``[0, 1000)``) GrowthBook's ``inNamespace`` reads: seed ``"__" + id``."""
    return bucket("__" + namespace, unit, 1)


def in_namespace(unit: str, namespace: tuple[str, float, float]) -> bool:
    """GrowthBook's ``inNamespace``: ``start <= hash("__" + id, unit, 1) < end``."""
    name, start, end = namespace
    n = namespace_bucket(name, unit) / 1000
    return start <= n < end


def in_range(n: float, bounds: Range) -> bool:
    """GrowthBook's ``inRange``: half open, ``start <= n < end``."""
    return bounds[0] <= n < bounds[1]


def choose_variation(n: float, ranges: Sequence[Range]) -> int:
    """GrowthBook's ``chooseVariation``: the first range holding ``n``, or -1."""
    for index, bounds in enumerate(ranges):
        if in_range(n, bounds):
            return index
    return -1


def equal_weights(variations: int) -> list[float]:
    """GrowthBook's ``getEqualWeights``: ``1 / n`` each, none for ``n <= 0``."""
    if variations <= 0:
        return []
    return [1 / variations] * variations


def bucket_ranges(
    variations: int, coverage: float = 1.0, weights: Sequence[float] | None = None
) -> list[Range]:
    """GrowthBook's ``getBucketRanges``: coverage clamped to ``[0, 1]``; equal weights when
    ``weights`` is missing, of another length, or sums (left to right, as JavaScript's
    ``reduce``) outside ``[0.99, 1.01]``; then arm ``i`` gets ``[c_i, c_i + coverage * w_i)``
    where ``c_i`` is the running sum of the weights before it. Plain double arithmetic in that
    order, no rounding: the SDKs' own tests compare ranges floored to 1e-8."""
    coverage = min(max(coverage, 0.0), 1.0)
    chosen = list(weights) if weights is not None else []
    if len(chosen) != variations:
        chosen = equal_weights(variations)
    total = 0.0
    for w in chosen:
        total += w
    if not _WEIGHT_SUM_MIN <= total <= _WEIGHT_SUM_MAX:
        chosen = equal_weights(variations)
    ranges: list[Range] = []
    cumulative = 0.0
    for w in chosen:
        start = cumulative
        cumulative += w
        ranges.append((start, start + coverage * w))
    return ranges


def integer_bound(x: float, buckets: int) -> int:
    """The least integer ``k`` in ``[0, buckets]`` with ``k == buckets`` or ``k / buckets >= x``
    (a double division, as GrowthBook computes a hash).

    Because ``k / buckets`` never decreases as ``k`` grows, ``k / buckets >= x`` holds exactly
    when ``k >= integer_bound(x, buckets)``, for every bucket ``k < buckets``: a float range
    ``[a, b)`` holds the same buckets as the integer range
    ``[integer_bound(a), integer_bound(b))``.

    >>> integer_bound(0.25, 10000), integer_bound(0.04000000000000001, 10000)
    (2500, 401)
    >>> integer_bound(-0.5, 1000), integer_bound(1.5, 1000)
    (0, 1000)
    """
    if math.isnan(x):  # no bucket compares >= NaN
        return buckets
    estimate = x * buckets
    k = 0 if estimate <= 0 else buckets if estimate >= buckets else int(estimate)
    while k > 0 and (k - 1) / buckets >= x:
        k -= 1
    while k < buckets and k / buckets < x:
        k += 1
    return k


class Bucketing:
    """One experiment's placement, compiled to integers: the hash seed and version, each
    variation's ``[lo, hi)`` bucket range, and the namespace's ``[lo, hi)`` over the 1,000 v1
    buckets. What GrowthBook's ``run`` does between "get the hash value" and "choose a
    variation", minus conditions, forcing and sticky buckets.

    >>> b = Bucketing.build(seed="k", hash_version=2, variations=3, weights=[0.2, 0.3, 0.5])
    >>> b.ranges
    ((0, 2000), (2000, 5000), (5000, 10000))
    """

    __slots__ = ("buckets", "hash_version", "namespace", "ranges", "seed")

    def __init__(
        self,
        *,
        seed: str,
        hash_version: int,
        ranges: tuple[tuple[int, int], ...],
        namespace: tuple[str, int, int] | None = None,
    ) -> None:
        if hash_version not in BUCKETS:
            raise ValueError(f"unknown hash version {hash_version!r} (1 or 2)")
        self.seed = seed
        self.hash_version = hash_version
        self.buckets = BUCKETS[hash_version]
        self.ranges = ranges
        self.namespace = namespace

    @classmethod
    def build(
        cls,
        *,
        seed: str,
        hash_version: int,
        variations: int,
        coverage: float = 1.0,
        weights: Sequence[float] | None = None,
        ranges: Sequence[Range] | None = None,
        namespace: tuple[str, float, float] | None = None,
    ) -> Bucketing:
        """From GrowthBook's experiment fields: explicit ``ranges`` win over ``coverage`` and
        ``weights``, as in the SDKs."""
        if hash_version not in BUCKETS:
            raise ValueError(f"unknown hash version {hash_version!r} (1 or 2)")
        buckets = BUCKETS[hash_version]
        floats = (
            list(ranges) if ranges is not None else bucket_ranges(variations, coverage, weights)
        )
        integer = tuple(
            (integer_bound(lo, buckets), integer_bound(hi, buckets)) for lo, hi in floats
        )
        space = None
        if namespace is not None:
            name, start, end = namespace
            space = (name, integer_bound(start, 1000), integer_bound(end, 1000))
        return cls(seed=seed, hash_version=hash_version, ranges=integer, namespace=space)

    def in_namespace(self, unit: str) -> bool:
        """Whether ``unit`` falls in the namespace (always, without one)."""
        if self.namespace is None:
            return True
        name, lo, hi = self.namespace
        return lo <= namespace_bucket(name, unit) < hi

    def bucket(self, unit: str) -> int:
        """The unit's integer bucket under this seed and hash version."""
        return bucket(self.seed, unit, self.hash_version)

    def variation(self, bucket_index: int) -> int:
        """The first variation whose integer range holds the bucket, or -1 (not covered)."""
        for index, (lo, hi) in enumerate(self.ranges):
            if lo <= bucket_index < hi:
                return index
        return -1

    def choose(self, unit: str) -> tuple[int, int] | None:
        """``(variation, bucket)`` with variation -1 when the bucket is outside every range;
        ``None`` when the unit id is empty or outside the namespace (GrowthBook's "skip")."""
        if not unit or not self.in_namespace(unit):
            return None
        index = self.bucket(unit)
        return self.variation(index), index

    def __repr__(self) -> str:
        return (
            f"Bucketing(seed={self.seed!r}, hash_version={self.hash_version}, "
            f"ranges={self.ranges!r}, namespace={self.namespace!r})"
        )
