"""The metrics of an experiment: each one a ratio of two per-unit sums, times a scale.

A metric whose denominator is ``requests`` with one request per unit is a plain mean; the others
(win rate per bid, CTR per impression, ...) are ratio metrics, whose variance the delta method
gives (:mod:`.stats`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["METRICS", "Metric", "available"]


@dataclass(frozen=True)
class Metric:
    """``scale * sum(numerator) / sum(denominator)`` over the units of an arm.

    ``better`` is the direction that is good news (``+1`` higher, ``-1`` lower, ``0`` neither:
    a metric to watch rather than to win on).

    >>> METRICS[0]
    Metric(name='bid_rate', label='bid rate', numerator='bid_requests', denominator='requests', scale=1.0, better=0)
    """  # noqa: E501

    name: str
    label: str
    numerator: str
    denominator: str
    scale: float = 1.0
    better: int = 0


METRICS: Final = (
    Metric("bid_rate", "bid rate", "bid_requests", "requests"),
    Metric("win_rate", "win rate", "wins", "bids"),
    Metric("spend", "spend per 1000 requests", "spend", "requests", scale=1000.0),
    Metric("ecpm", "eCPM", "spend", "impressions", scale=1000.0),
    Metric("ctr", "CTR", "clicks", "impressions", better=1),
    Metric("cpa", "CPA", "spend", "conversions", better=-1),
    Metric("roi", "ROI", "profit", "spend", better=1),
)
"""The default metrics: bid rate (requests bid on per request), win rate (wins per imp bid on),
spend per 1000 requests, eCPM (spend per 1000 impressions), CTR (clicks per impression), CPA
(spend per conversion) and ROI ((value - spend) / spend)."""


def available(
    metrics: tuple[Metric, ...], columns: Mapping[str, npt.NDArray[np.float64]]
) -> tuple[Metric, ...]:
    """The metrics whose two columns are in ``columns`` (CTR needs clicks, CPA conversions).

    >>> [m.name for m in available(METRICS, {"requests": np.ones(1), "bid_requests": np.ones(1)})]
    ['bid_rate']
    """
    return tuple(m for m in metrics if m.numerator in columns and m.denominator in columns)
