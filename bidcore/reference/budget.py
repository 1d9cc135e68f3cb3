"""The budget ledger in the decision (``docs/budget.md``), read rule by rule.

A campaign the ledger limits has money available in this process, in *nanos* (thousandths of
a micro of the bidder's currency): what ``Ledger.grant`` put there, less what its bids in
flight hold and what notices spent. :func:`bidcore.reference.decide` takes it as ``budget``,
account id to nanos available; an account it does not list is not limited.

A campaign's account is its id; under an experiment arm with a ``budget_share`` that applies
to it, its bids hold against the arm's share instead, the account ``campaign@experiment:arm``
(:func:`bidcore.reference.arms.budget_account`).

1. A candidate's cost is its price converted from the bid currency to the bidder's, rounded
   up (a hold never falls short of the bid), and at least one nano. A CPM price in micros is
   the cost of one impression in nanos.
2. After pricing, a candidate whose cost exceeds its account's available money, less what
   the request's earlier imps' winners of that campaign hold, is excluded with reason
   ``budget``; the imp's best candidate is chosen among the others.
3. ``budget`` counts in the imp's most common reason, and wins ties against the per-imp
   reasons (it comes first in the engine's order of reasons).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeAlias

from bidcore.config import Config

from .arms import account_ids
from .money import convert_up

__all__ = ["Budget", "check_budget", "cost_nanos", "covered"]

Budget: TypeAlias = Mapping[str, int]
"""Campaign id to its available money in nanos; a campaign not listed is not limited."""


def check_budget(config: Config, budget: Budget) -> None:
    """Raises ``ValueError`` for an account ``config`` has not: neither a campaign's nor an
    arm's share of one."""
    known = set(account_ids(config))
    for account in budget:
        if account not in known:
            raise ValueError(f"no campaign or arm share {account!r}")


def cost_nanos(price: int, currency: str, config: Config) -> int | None:
    """Rule 1: the hold of a bid at ``price`` micros CPM in ``currency`` (``None``: the price
    does not convert to the bidder's currency, so no money can cover it)."""
    cost = convert_up(price, currency, config.bidder.currency, config.fx)
    return None if cost is None else max(cost, 1)


def covered(budget: Budget, held: Mapping[str, int], account: str, cost: int | None) -> bool:
    """Rule 2: whether ``account`` (limited or not) can take a bid costing ``cost``, given
    what the request's earlier winners ``held``."""
    if account not in budget:
        return True
    return cost is not None and budget[account] - held.get(account, 0) >= cost
