"""Budgets: pacing a daily budget along a target curve (issue 7).

:mod:`bidcore.budget.pacing` holds the controller the hot path's throttle and bid multiplier
come from; :mod:`bidcore.budget.pacer` runs one per campaign in a server, fed by billing
notices, and writes them into the engine; :mod:`bidcore.budget.simulation` is a simulated
market to check the controller against. :class:`BudgetLedger` holds each process's bids to its
daily budgets (:mod:`bidcore.budget.ledger`); :class:`SharedBudgetLedger` shares the budgets of
a fleet through leases from Redis (:mod:`bidcore.budget.shared`, ``docs/budget.md``).
"""

from bidcore.budget.draw import pacing_draw
from bidcore.budget.ledger import BudgetLedger
from bidcore.budget.pacer import CampaignPacing, PacedEngine, Pacer, PacingCollector
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
from bidcore.budget.shared import SharedBudgetLedger

__all__ = [
    "DAY_SECONDS",
    "BudgetLedger",
    "CampaignPacing",
    "PacedEngine",
    "Pacer",
    "PacingCollector",
    "PacingController",
    "PacingMode",
    "PacingState",
    "PidGains",
    "SharedBudgetLedger",
    "TargetCurve",
    "budget_share_micros",
    "day_position",
    "pacing_draw",
]
