"""Budgets: pacing a daily budget along a target curve (issue 7).

:mod:`bidcore.budget.pacing` holds the controller the hot path's throttle and bid multiplier
come from; :mod:`bidcore.budget.simulation` a simulated market to check it against.
"""

from bidcore.budget.pacing import (
    DAY_SECONDS,
    PacingController,
    PacingMode,
    PacingState,
    PidGains,
    TargetCurve,
    budget_share_micros,
    day_position,
)

__all__ = [
    "DAY_SECONDS",
    "PacingController",
    "PacingMode",
    "PacingState",
    "PidGains",
    "TargetCurve",
    "budget_share_micros",
    "day_position",
]
