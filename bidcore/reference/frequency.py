"""Frequency caps in the decision (``docs/budget.md``, Frequency caps), read rule by rule.

A campaign with a ``frequency_cap`` shows at most ``count`` impressions to one user in any
``window_seconds``. The ledger counts, per user and campaign, the slots in use: impressions in
the window (from win or bill notices) and bids in flight, each of which holds a slot until its
notice settles it. :func:`bidcore.reference.decide` takes them as ``frequency``, (user key,
campaign id) to slots in use; a pair it does not list has none. Without ``frequency`` (an
engine without a ledger) caps are not enforced.

1. The request's user key: none when personal data may not be used (``is_personal``); else
   ``b:`` and ``user.buyeruid``, else ``u:`` and ``user.id``, else ``d:`` and ``device.ifa``,
   the first that is a non-empty string.
2. After the budget check (:mod:`bidcore.reference.budget`), a candidate of a capped campaign
   is excluded with reason ``frequency_cap`` when the request has no user key, or when the
   slots in use plus the request's earlier imps' winners of that campaign leave none for it.
3. ``frequency_cap`` counts in the imp's most common reason and wins ties against the per-imp
   reasons (it comes right after ``budget`` in the engine's order of reasons).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeAlias

from bidcore.config import Campaign

from .view import View, lookup

__all__ = ["Frequency", "has_slot", "user_key"]

Frequency: TypeAlias = Mapping[tuple[str, str], int]
"""(user key, campaign id) to the slots in use: impressions in the window and bids in flight."""

_USER_IDS = (("b:", ("user", "buyeruid")), ("u:", ("user", "id")), ("d:", ("device", "ifa")))


def user_key(view: View, *, personal: bool) -> str | None:
    """Rule 1: the key the request's user is capped under, or ``None``."""
    if not personal:
        return None
    for kind, path in _USER_IDS:
        value = lookup(view, *path)
        if isinstance(value, str) and value:
            return kind + value
    return None


def has_slot(
    frequency: Frequency, user: str | None, campaign: Campaign, earlier_winners: int
) -> bool:
    """Rule 2: whether ``campaign`` may bid to ``user``, after ``earlier_winners`` of this
    request's imps went to it."""
    cap = campaign.frequency_cap
    if cap is None:
        return True
    if user is None:
        return False
    return frequency.get((user, campaign.id), 0) + earlier_winners + 1 <= cap.count
