"""Money as integer micros, exactly as ``docs/engine.md`` (Money) defines it.

Every rounding here is part of the contract the native engine is held to bit for bit, so each
function does one conversion in one written order: a float only where the spec says "double".
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Final

from bidcore.config import Fx

__all__ = [
    "FLOOR_LIMIT",
    "MICROS_PER_UNIT",
    "PRICE_BUCKET_CAP",
    "PRICE_BUCKET_STEP",
    "convert_down",
    "convert_up",
    "convertible",
    "floor_micros",
    "price_bucket",
    "price_number",
]

MICROS_PER_UNIT: Final = 1_000_000
FLOOR_LIMIT: Final = 1e12
"""Floors at or above this many currency units cannot be met: the config caps every amount at
10^12 units, and a bigger floor would not fit micros in 64 bits on the native side."""
PRICE_BUCKET_STEP: Final = 100_000
PRICE_BUCKET_CAP: Final = 20_000_000


def floor_micros(bidfloor: float) -> int | None:
    """The least ``m`` from ``floor(bidfloor * 1e6) - 1`` up with ``m / 1e6 >= bidfloor`` in
    double arithmetic; ``None`` for a floor no bid can meet (:data:`FLOOR_LIMIT`).

    Searching upwards from ``floor(x * 1e6) - 1`` instead of rounding ``x * 1e6`` keeps the
    floor from ever dropping below what the exchange sent, whatever the product rounded to.
    """
    if bidfloor >= FLOOR_LIMIT:
        return None
    m = math.floor(bidfloor * 1e6) - 1
    while m / 1e6 < bidfloor:  # int / float: the int becomes a double first, as in Rust
        m += 1
    return m


def _rates(source: str, target: str, fx: Fx) -> tuple[int, int] | None:
    if source == target:
        return 1, 1
    source_rate = fx.rate_nanos(source)
    target_rate = fx.rate_nanos(target)
    if source_rate is None or target_rate is None:
        return None
    return source_rate, target_rate


def convertible(source: str, target: str, fx: Fx) -> bool:
    """Whether amounts in ``source`` can be converted to ``target`` (a rate for each, or the
    same currency)."""
    return _rates(source, target, fx) is not None


def convert_up(m: int, source: str, target: str, fx: Fx) -> int | None:
    """``ceil(m * rate_source / rate_target)``, for floors: a converted floor is never below the
    true one. ``None`` without a rate; zero, and the same currency, need none."""
    if m == 0:
        return 0
    rates = _rates(source, target, fx)
    if rates is None:
        return None
    return -(-(m * rates[0]) // rates[1])


def convert_down(m: int, source: str, target: str, fx: Fx) -> int | None:
    """``floor(m * rate_source / rate_target)``, for prices and caps: a converted price never
    exceeds what the campaign allows. ``None`` without a rate; zero, and the same currency, need
    none."""
    if m == 0:
        return 0
    rates = _rates(source, target, fx)
    if rates is None:
        return None
    return m * rates[0] // rates[1]


def price_number(m: int) -> float:
    """The JSON number the engine writes for ``m`` micros, as a JSON reader gets it back: the
    double nearest the exact decimal text."""
    return float(Decimal(m) / MICROS_PER_UNIT)


def price_bucket(m: int) -> str:
    """The price rounded down to 0.10 and capped at 20.00, with two decimals (``"1.20"``): coarse
    enough to put in a notice URL without revealing the exact bid."""
    bucket = min(m, PRICE_BUCKET_CAP) // PRICE_BUCKET_STEP * PRICE_BUCKET_STEP
    return f"{bucket // MICROS_PER_UNIT}.{bucket % MICROS_PER_UNIT // 10_000:02d}"
