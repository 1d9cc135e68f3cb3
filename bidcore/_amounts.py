"""Money amounts from exact decimals: integer micros of a currency and FX rates in nanos."""

from __future__ import annotations

from decimal import Decimal
from typing import Final

__all__ = ["micros", "nanos"]

# A billion currency units (a JPY budget of billions fits). Below it an amount with 6 decimals
# has at most 15 significant digits, which survive the double that TOML and YAML numbers pass
# through: so every amount accepted is read exactly as written.
_MICROS_MAX: Final = 10**15


def micros(amount: Decimal) -> int:
    """An amount in currency units as integer micros, exactly; raises ``ValueError`` when the
    amount has more than 6 decimal places or is out of range."""
    if not amount.is_finite():
        raise ValueError(f"{amount} is not a number")
    scaled = amount.scaleb(6)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more than 6 decimal places")
    value = int(scaled)
    if not -_MICROS_MAX <= value <= _MICROS_MAX:
        raise ValueError(f"{amount} is out of range (at most 1e9 units)")
    return value


def nanos(rate: Decimal) -> int:
    """An FX rate as integer billionths, exactly; at most 9 decimal places, positive."""
    scaled = rate.scaleb(9)
    if not rate.is_finite() or scaled != scaled.to_integral_value():
        raise ValueError(f"{rate} has more than 9 decimal places")
    value = int(scaled)
    if not 0 < value <= 10**18:
        raise ValueError(f"rate {rate} must be positive and at most 1e9")
    return value
