"""Pacing in the decision (``docs/engine.md``, Pacing), read rule by rule.

Each account (a campaign's, or its share under an experiment arm with a ``budget_share``,
``campaign@experiment:arm``) has a pacing state, ``(throttle_ppm, multiplier_ppm)``, which the
engine takes at run time (``Engine.set_pacing``) and :func:`bidcore.reference.decide` as its
``pacing`` argument: the share of requests the account's campaign enters and the multiplier of
its value, both in millionths, ``(10^6, 10^6)`` for an account not listed. A campaign is paced
on the account it would spend on in the request (:func:`bidcore.reference.arms.account_of`).
After targeting and the experiment arms' exclusions, each campaign left with a throttle below
10^6 enters the request only when the request's draw for the campaign
(:func:`bidcore.budget.draw.pacing_draw`, of the campaign's id whatever the account) is below
the throttle; the others are excluded with reason ``budget``. The multiplier scales the value
after the arm's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, TypeAlias

from bidcore.budget.draw import pacing_draw
from bidcore.config import Config

from .arms import PPM, account_ids

__all__ = ["MULTIPLIER_MAX", "UNPACED", "Pacing", "check_pacing", "enters", "pacing_of"]

Pacing: TypeAlias = Mapping[str, tuple[int, int]]
"""Account id to ``(throttle_ppm, multiplier_ppm)``."""

UNPACED: Final = (PPM, PPM)
"""An account the pacer has not set: it enters every request, its value as it is."""

MULTIPLIER_MAX: Final = 100 * PPM
"""The largest multiplier the pacer may set (x100), as for an experiment arm's."""


def check_pacing(config: Config, pacing: Pacing) -> None:
    """Raises ``ValueError``, as ``Engine.set_pacing`` does, for an account ``config`` lacks, a
    throttle outside ``[0, 10^6]`` or a multiplier outside ``(0, 10^8]``."""
    known = set(account_ids(config))
    for account, (throttle_ppm, multiplier_ppm) in pacing.items():
        if account not in known:
            what = "arm share" if "@" in account else "campaign"
            raise ValueError(f"no {what} {account!r}")
        if not 0 <= throttle_ppm <= PPM:
            raise ValueError(f"throttle must be in [0, {PPM}] ppm, got {throttle_ppm}")
        if not 0 < multiplier_ppm <= MULTIPLIER_MAX:
            raise ValueError(
                f"multiplier must be in (0, {MULTIPLIER_MAX}] ppm, got {multiplier_ppm}"
            )


def pacing_of(pacing: Pacing, account: str) -> tuple[int, int]:
    """``account``'s ``(throttle_ppm, multiplier_ppm)``: as ``pacing`` sets it, else
    :data:`UNPACED`."""
    return pacing.get(account, UNPACED)


def enters(pacing: Pacing, request_id: str, campaign: str, account: str) -> bool:
    """Whether ``campaign``, past targeting and the arms, enters the request ``request_id`` when
    paced on ``account``: the account is not throttled, or the campaign's draw is below its
    throttle. (A throttle of 10^6 lets every draw in; the engine does not draw for it.)"""
    throttle_ppm, _ = pacing_of(pacing, account)
    return throttle_ppm >= PPM or pacing_draw(request_id, campaign) < throttle_ppm
